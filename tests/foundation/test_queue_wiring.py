"""Acceptance 2: the queue the app sends sync requests to is the queue the registered trigger reads.

For each settings combination, a sync request goes out through the app's real
sending path (`enqueue_sync`) and is read back the way the Functions host reads
the `sync_worker` trigger: from the setting its `connection` names, with
azure-storage-queue, or (nothing set, the local host only) from the embedded
queue. Combinations that would leave the trigger deaf are refused by the local
host and reported by doctor.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _sync_trigger():
    """The registered queue trigger of function_app (its metadata, as the host indexes it)."""
    from devhost.host import registered_functions
    from function_app import app

    for function in registered_functions(app):
        trigger = function.get_trigger()
        if type(trigger).__name__ == "QueueTrigger" and function.get_function_name() == "sync_worker":
            return trigger
    raise AssertionError("function_app registers no sync_worker queue trigger")


def _sample_values_as_func_start_reads_them(azurite: str, tmp_path: Path) -> dict[str, str | None]:
    """local.settings.sample.json's Values; Core Tools puts empty values in the environment as empty
    strings. UseDevelopmentStorage=true names Azurite's default ports; the test's Azurite runs on free
    ports, so its explicit connection string (same account) stands in for it."""
    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["QUEUE_CONNECTION_STRING"] == ""
    values["AzureWebJobsStorage"] = azurite
    values.update(SQLITE_PATH=str(tmp_path / "calendar.db"), LOCAL_QUEUE_PATH=str(tmp_path / "queue.db"),
                  LOCAL_SECRETS_DIR=str(tmp_path / "secrets"))
    return values


def _read_as_the_trigger(trigger, settings) -> list[str]:
    """Receive from the queue the trigger listens on, without the app's own queue code."""
    import os

    connection = os.environ.get(trigger.connection)
    if connection:
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy

        client = QueueClient.from_connection_string(connection, trigger.queue_name,
                                                    message_decode_policy=TextBase64DecodePolicy())
        received = list(client.receive_messages(messages_per_page=32, visibility_timeout=1))
        for message in received:  # handled, as the trigger would: nothing is left for later tests' hosts
            client.delete_message(message)
        return [m.content for m in received]
    # Nothing configured: the local host runs the trigger on the embedded queue (func start would refuse).
    from shared.queues.local import LocalQueue

    queue = LocalQueue(trigger.queue_name, settings.local_queue_path)
    received = queue.receive(32, 1)
    for message in received:
        queue.delete(message)
    return [m.body for m in received]


def _sent_reaches_trigger(settings) -> None:
    from devhost import DevHost
    from shared.queues.messages import SyncRequest, enqueue_sync

    host = DevHost(port=0, timers=False, queues=False)  # refuses to serve a miswired queue trigger
    job = next(j for j in host.queue_jobs if j.name == "sync_worker")
    trigger = _sync_trigger()
    assert job.connection == trigger.connection == "AzureWebJobsStorage"
    user = f"wiring-{uuid.uuid4().hex}"
    enqueue_sync(SyncRequest(user, "notification"))
    seen: list[str] = []
    for _ in range(10):
        seen += _read_as_the_trigger(trigger, settings)
        if any(user in body for body in seen):
            break
    assert any(user in body for body in seen), f"the trigger's queue never saw the request of {user}"


@pytest.mark.azurite
def test_sample_settings_as_func_start_reads_them(app_env, azurite, tmp_path):
    settings = app_env(**_sample_values_as_func_start_reads_them(azurite, tmp_path))
    assert settings.queue_connection_string is None
    _sent_reaches_trigger(settings)


@pytest.mark.azurite
def test_queue_connection_string_set(app_env, azurite):
    settings = app_env(QUEUE_CONNECTION_STRING=azurite, AzureWebJobsStorage=azurite)
    _sent_reaches_trigger(settings)


def test_nothing_set_is_the_embedded_queue(app_env):
    from shared.queues.wiring import EMBEDDED, app_endpoint

    settings = app_env()
    assert app_endpoint(settings).kind == EMBEDDED
    _sent_reaches_trigger(settings)


@pytest.mark.parametrize("host_storage", [None, "UseDevelopmentStorage=true"])
@pytest.mark.azurite
def test_app_queue_elsewhere_than_the_trigger_is_refused_and_reported(app_env, azurite, host_storage):
    """QUEUE_CONNECTION_STRING on another account than AzureWebJobsStorage (or without it): the local
    host will not serve a deaf sync worker, and doctor says what to set."""
    from devhost import DevHost
    from devhost.host import QueueWiringError
    from shared.ops.doctor import check_queue_wiring

    settings = app_env(QUEUE_CONNECTION_STRING=azurite, AzureWebJobsStorage=host_storage)
    with pytest.raises(QueueWiringError, match="AzureWebJobsStorage"):
        DevHost(port=0, timers=False, queues=False)
    (check,) = check_queue_wiring(settings)
    assert not check.ok and "QUEUE_CONNECTION_STRING" in check.detail and "AzureWebJobsStorage" in check.detail


def test_identity_based_connection_names_the_same_account():
    """In Azure: QUEUE_ACCOUNT_URL and AzureWebJobsStorage__queueServiceUri name one endpoint."""
    from shared.config import load_settings
    from shared.queues.wiring import app_endpoint, connection_endpoint, wiring_problem

    settings = load_settings({"QUEUE_ACCOUNT_URL": "https://acct.queue.core.windows.net/",
                              "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net",
                              "AzureWebJobsStorage__credential": "managedidentity"})
    trigger = connection_endpoint("AzureWebJobsStorage", settings)
    assert wiring_problem(app_endpoint(settings), trigger, "AzureWebJobsStorage") is None
    other = load_settings({"QUEUE_ACCOUNT_URL": "https://other.queue.core.windows.net",
                           "AzureWebJobsStorage__accountName": "acct"})
    assert "acct.queue.core.windows.net" in wiring_problem(
        app_endpoint(other), connection_endpoint("AzureWebJobsStorage", other), "AzureWebJobsStorage")
