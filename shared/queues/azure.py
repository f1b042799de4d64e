"""Azure Storage Queues (or Azurite) through azure-storage-queue.

Bodies are base64-encoded, as the Functions host's queue trigger expects.

Every call is bounded: the notification endpoint enqueues inside Graph's 3 s,
so the SDK's default retry loop (15 s backoff, three retries, 20 s connect
timeout: 80 s against an unreachable queue) is replaced by one quick retry with
short timeouts, and a failure surfaces as `QueueUnavailable` within 2 s.

The environment's proxy and CA-bundle settings are read once per client, not on every request
(see `_environment_settings`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from shared.queues.base import Queue, QueueMessage, QueueUnavailable

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

CONNECT_TIMEOUT_SECONDS = 0.8
READ_TIMEOUT_SECONDS = 5
RETRIES = 1
RETRY_BACKOFF_SECONDS = 0.2
SEND_CONCURRENCY = 8  # messages of one send_many in flight at once (a packed outbox batch is a few dozen)


def _environment_settings(url: str) -> dict[str, Any]:
    """The proxies (NO_PROXY honoured) and CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) requests
    would take from the environment for `url`, as client keywords, with the per-request lookup off.

    By default requests repeats that lookup on every request, walking os.environ twice: a fifth of
    the SDK's CPU per queue request (bench/bench_steady.py profile), more in a Functions host's large
    environment. A client only ever calls one URL, so one lookup gives the same answer."""
    import requests

    found = requests.Session().merge_environment_settings(url, {}, None, None, None)
    settings: dict[str, Any] = {"use_env_settings": False, "connection_verify": found["verify"]}
    if found["proxies"]:
        settings["proxies"] = dict(found["proxies"])
    return settings


def _client(name: str, connection_string: str | None, account_url: str | None) -> QueueClient:
    """A client whose every call is short (see the module docstring), base64 bodies as the host expects."""
    from azure.storage.queue import LinearRetry, QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    from shared.queues.wiring import service_url

    retry = LinearRetry(backoff=RETRY_BACKOFF_SECONDS, retry_total=RETRIES,  # type: ignore[arg-type]  # stub says int; a float sleeps fine
                        random_jitter_range=0)
    options: dict[str, Any] = {
        "message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy(),
        "connection_timeout": CONNECT_TIMEOUT_SECONDS, "read_timeout": READ_TIMEOUT_SECONDS, "retry_policy": retry}
    if connection_string:
        options.update(_environment_settings(service_url(connection_string)))
        return QueueClient.from_connection_string(connection_string, name, **options)
    if not account_url:
        raise ValueError(f"queue {name}: neither a connection string nor an account URL")
    from azure.identity import DefaultAzureCredential

    options.update(_environment_settings(account_url))
    return QueueClient(account_url, name, credential=DefaultAzureCredential(), **options)


@contextlib.contextmanager
def _unavailable_on_error(action: str, name: str) -> Iterator[None]:
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:
        raise QueueUnavailable(f"queue {name}: {action} failed ({type(exc).__name__})") from exc


class AzureStorageQueue(Queue):
    def __init__(self, name: str, connection_string: str | None, account_url: str | None) -> None:
        from azure.core.exceptions import ResourceExistsError

        self.name = name
        self._client = _client(name, connection_string, account_url)
        with _unavailable_on_error("create", name), contextlib.suppress(ResourceExistsError):
            self._client.create_queue()

    def send_many(self, bodies: Iterable[str], *, delay_seconds: int = 0) -> int:
        """One request per message (the service has no batch send), up to SEND_CONCURRENCY at a time.

        Order between messages is not kept (nor is it by the service); every message is checked for
        size before any is sent, and the first failure is raised after the others finished, so the
        caller re-sends the lot (at-least-once)."""
        bodies = list(bodies)
        for body in bodies:
            self.check_size(body)
        if len(bodies) <= 1:
            for body in bodies:
                self._send(body, delay_seconds)
            return len(bodies)
        with ThreadPoolExecutor(max_workers=min(SEND_CONCURRENCY, len(bodies))) as pool:
            futures = [pool.submit(self._send, body, delay_seconds) for body in bodies]
        for future in futures:
            future.result()
        return len(bodies)

    def _send(self, body: str, delay_seconds: int) -> None:
        with _unavailable_on_error("send", self.name):
            self._client.send_message(body, visibility_timeout=delay_seconds or None)

    def receive(self, max_messages: int = 16, visibility_timeout: int = 30) -> list[QueueMessage]:
        found = self._client.receive_messages(
            messages_per_page=min(max_messages, 32), visibility_timeout=visibility_timeout
        )
        messages = []
        for page in found.by_page():
            for item in page:
                messages.append(
                    QueueMessage(item.id, item.content, item.dequeue_count or 0, item.pop_receipt or "",
                                 item.inserted_on.timestamp() if item.inserted_on else None)
                )
            break  # one page: the rest stays for the next poll
        return messages[:max_messages]

    def delete(self, message: QueueMessage) -> None:
        """Acknowledge; a message already gone (404) counts as deleted, as in the Functions host: the
        usual cause is the client's retry of a delete whose first answer was lost (a stalled Azurite)."""
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self._client.delete_message(message.id, message.pop_receipt)

    def release(self, message: QueueMessage, delay_seconds: int = 0) -> None:
        self._client.update_message(message.id, message.pop_receipt, visibility_timeout=delay_seconds)

    def depth(self) -> int:
        return int(self._client.get_queue_properties().approximate_message_count or 0)

    def peek(self, max_messages: int = 32) -> list[QueueMessage]:
        items = self._client.peek_messages(max_messages=min(max_messages, 32))
        return [QueueMessage(i.id, i.content, i.dequeue_count or 0, "", None) for i in items]

    def clear(self) -> None:
        self._client.clear_messages()
