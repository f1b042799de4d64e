"""Azure Storage Queues (or Azurite) through azure-storage-queue.

Bodies are base64-encoded, as the Functions host's queue trigger expects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from shared.queues.base import Queue, QueueMessage


class AzureStorageQueue(Queue):
    def __init__(self, name: str, connection_string: str | None, account_url: str | None) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        self.name = name
        policies = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
        }
        if connection_string:
            self._client = QueueClient.from_connection_string(connection_string, name, **policies)
        else:
            from azure.identity import DefaultAzureCredential

            self._client = QueueClient(account_url, name, credential=DefaultAzureCredential(), **policies)
        with contextlib.suppress(ResourceExistsError):
            self._client.create_queue()

    def send_many(self, bodies: Iterable[str], *, delay_seconds: int = 0) -> int:
        sent = 0
        for body in bodies:
            self.check_size(body)
            self._client.send_message(body, visibility_timeout=delay_seconds or None)
            sent += 1
        return sent

    def receive(self, max_messages: int = 16, visibility_timeout: int = 30) -> list[QueueMessage]:
        found = self._client.receive_messages(
            messages_per_page=min(max_messages, 32), visibility_timeout=visibility_timeout
        )
        messages = []
        for page in found.by_page():
            for item in page:
                messages.append(
                    QueueMessage(item.id, item.content, item.dequeue_count, item.pop_receipt,
                                 item.inserted_on.timestamp() if item.inserted_on else None)
                )
            break  # one page: the rest stays for the next poll
        return messages[:max_messages]

    def delete(self, message: QueueMessage) -> None:
        self._client.delete_message(message.id, message.pop_receipt)

    def release(self, message: QueueMessage, delay_seconds: int = 0) -> None:
        self._client.update_message(message.id, message.pop_receipt, visibility_timeout=delay_seconds)

    def depth(self) -> int:
        return int(self._client.get_queue_properties().approximate_message_count or 0)

    def peek(self, max_messages: int = 32) -> list[QueueMessage]:
        items = self._client.peek_messages(max_messages=min(max_messages, 32))
        return [QueueMessage(i.id, i.content, i.dequeue_count, "", None) for i in items]

    def clear(self) -> None:
        self._client.clear_messages()
