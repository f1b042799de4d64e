"""Issue 12, item 5: a queue outage never hangs the acknowledgement path.

The notification endpoint and POST /api/users answer 503 with Retry-After within
2 s when the queue cannot be reached (Graph gives 3 s; it retries a 503), and the
local host's queue worker outlives the outage and resumes when the queue is back.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from devtools import azurite as azurite_process
from shared.notifications import client_state, receiver
from tests.notifications.test_receiver import _item, _post
from tests.services import unavailable


def _closed_queue(port: int) -> str:
    """A connection string whose queue endpoint is a port nobody listens on."""
    key = azurite_process.KEY
    return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};"
            f"QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")


@pytest.fixture
def outage(app_env):
    app_env(QUEUE_CONNECTION_STRING=_closed_queue(azurite_process.free_port()))
    receiver.COUNTERS.__init__()
    return app_env


def test_the_notification_endpoint_answers_503_within_2_s_when_the_queue_is_unreachable(outage):
    alice = client_state.issue(client_state.SYNC, "alice")
    body = json.dumps({"value": [_item(alice)]}).encode()
    # The first call also imports the queue SDK (the cold start, measured by bench_cold_start);
    # it answers 503 too, and every call of the warm instance answers within 2 s.
    started = time.monotonic()
    assert _post("graph_notifications", alice.notification_url, body).status_code == 503
    took = [time.monotonic() - started]
    for _ in range(3):
        started = time.monotonic()
        answer = _post("graph_notifications", alice.notification_url, body)
        took.append(time.monotonic() - started)
        assert answer.status_code == 503 and took[-1] < 2.0, took
        assert answer.headers.get("Retry-After") == str(receiver.RETRY_AFTER_SECONDS)
    print(f"\nqueue unreachable: 503 in {', '.join(f'{t:.2f}s' for t in took)} (first call cold)")


def test_post_users_answers_503_within_2_s_when_the_queue_is_unreachable(outage):
    import azure.functions as func

    import function_app
    from devhost.host import registered_functions
    from shared.storage import open_repository

    open_repository().upsert_user("alice", {"id": "alice"})
    request = func.HttpRequest("POST", "http://127.0.0.1:7071/api/users", headers={},
                               body=json.dumps({"type": "RESYNC", "microsoft_user_id": "alice"}).encode())
    users = next(f for f in registered_functions(function_app.app) if f.get_function_name() == "users")
    users.get_user_function()(request)  # warm: the queue SDK imported (see above)
    started = time.monotonic()
    answer = users.get_user_function()(request)
    assert time.monotonic() - started < 2.0
    assert answer.status_code == 503 and answer.headers.get("Retry-After") == "5"
    assert "queue" in json.loads(answer.get_body())["error"]


def test_the_devhost_queue_worker_survives_an_outage_and_resumes(app_env):
    from devhost.host import DevHost
    from shared.queues import SYNC_QUEUE, open_queue
    from shared.queues.messages import SyncRequest

    if not azurite_process.installed():
        unavailable("Azurite", "run `npm ci` (make test does) so node_modules/.bin/azurite exists")
    ports = (azurite_process.free_port(), azurite_process.free_port(), azurite_process.free_port())
    started = azurite_process.Azurite(None, *ports, "")  # the connection string before it runs
    app_env(AzureWebJobsStorage=started.connection_string, TABLE_PREFIX=f"o{uuid.uuid4().hex[:8]}")
    with DevHost(port=0, function_key="fkey", master_key="mkey", timers=False, poll_interval=0.05) as host:
        time.sleep(2.0)  # the queue worker polls a queue that is not there
        assert all(t.is_alive() for t in host._threads if "queue" in t.name)
        server = azurite_process.start(ports=ports)
        assert server is not None
        try:
            open_queue(SYNC_QUEUE).send(SyncRequest("nobody", "notification").to_json())
            deadline = time.monotonic() + 15
            while open_queue(SYNC_QUEUE).depth() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert open_queue(SYNC_QUEUE).depth() == 0  # handled (an unknown user is skipped)
        finally:
            server.stop()
