"""One contract for both queue backends: the embedded SQLite queue and Azure Storage Queues (Azurite)."""

from __future__ import annotations

import time
import uuid

import pytest

from shared.queues.base import MessageTooLarge, Queue


@pytest.fixture(params=["local", "azurite"])
def make_queue(request, tmp_path):
    if request.param == "local":
        from shared.queues.local import LocalQueue

        return lambda name: LocalQueue(name, tmp_path / "queue.db")
    connection = request.getfixturevalue("azurite")
    from shared.queues.azure import AzureStorageQueue

    return lambda name: AzureStorageQueue(name, connection, None)


@pytest.fixture
def queue(make_queue) -> Queue:
    return make_queue(f"q{uuid.uuid4().hex[:12]}")


def test_send_receive_delete(queue):
    queue.send_many(["one", "two", "three"])
    assert queue.depth() == 3
    received = queue.receive(10, visibility_timeout=30)
    assert sorted(m.body for m in received) == ["one", "three", "two"]
    assert all(m.dequeue_count == 1 for m in received)
    for message in received:
        queue.delete(message)
    assert queue.depth() == 0


def test_received_messages_are_hidden_until_released(queue):
    queue.send("job")
    first = queue.receive(1, visibility_timeout=30)
    assert queue.receive(1, visibility_timeout=30) == []
    queue.release(first[0], delay_seconds=0)
    again = queue.receive(1, visibility_timeout=30)
    assert [m.body for m in again] == ["job"]
    assert again[0].dequeue_count == 2


def test_unacknowledged_message_comes_back_after_its_visibility_timeout(queue):
    queue.send("job")
    assert len(queue.receive(1, visibility_timeout=1)) == 1
    time.sleep(1.5)
    assert [m.body for m in queue.receive(1, visibility_timeout=30)] == ["job"]


def test_unicode_bodies_survive(queue):
    body = '{"subject": "Réunion 🗓️ עברית"}'
    queue.send(body)
    assert queue.receive(1)[0].body == body


def test_peek_does_not_hide_and_clear_empties(queue):
    queue.send_many(["a", "b"])
    assert sorted(m.body for m in queue.peek()) == ["a", "b"]
    assert len(queue.receive(5)) == 2
    queue.clear()
    assert queue.depth() == 0


def test_oversized_message_is_refused(queue):
    with pytest.raises(MessageTooLarge):
        queue.send("x" * 60_000)


def test_local_queue_survives_a_restart(tmp_path):
    from shared.queues.local import LocalQueue

    LocalQueue("jobs", tmp_path / "q.db").send("persisted")
    reopened = LocalQueue("jobs", tmp_path / "q.db")
    assert [m.body for m in reopened.receive(1)] == ["persisted"]


def test_local_queue_gives_each_message_to_one_consumer(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from shared.queues.local import LocalQueue

    LocalQueue("jobs", tmp_path / "q.db").send_many(str(i) for i in range(200))

    def consume(_):
        queue = LocalQueue("jobs", tmp_path / "q.db")
        got = []
        while batch := queue.receive(7, visibility_timeout=60):
            got.extend(m.body for m in batch)
        return got

    with ThreadPoolExecutor(4) as pool:
        results = [body for part in pool.map(consume, range(4)) for body in part]
    assert sorted(results, key=int) == [str(i) for i in range(200)]


def test_azure_queue_reads_the_proxy_environment_once(azurite, monkeypatch):
    """Proxies and NO_PROXY are honoured as requests would, but taken when the client is made:
    requests' own per-request lookup walked os.environ twice per queue call (a fifth of its CPU)."""
    import socket

    from shared.queues.azure import AzureStorageQueue
    from shared.queues.base import QueueUnavailable

    with socket.socket() as probe:  # a port nothing listens on: a proxy that refuses every connection
        probe.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{probe.getsockname()[1]}"
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)

    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    with pytest.raises(QueueUnavailable):
        AzureStorageQueue(f"q{uuid.uuid4().hex[:12]}", azurite, None)  # through the proxy: refused

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    queue = AzureStorageQueue(f"q{uuid.uuid4().hex[:12]}", azurite, None)  # Azurite is exempt
    monkeypatch.delenv("NO_PROXY")  # later changes are not read on each request
    queue.send("through")
    (message,) = queue.receive(1)
    assert message.body == "through"
    queue.delete(message)


def test_deleting_a_message_already_gone_is_not_an_error(queue):
    """The retry of a delete whose answer was lost finds nothing: the message is acknowledged all the same."""
    queue.send("once")
    (message,) = queue.receive(1)
    queue.delete(message)
    queue.delete(message)
    assert queue.depth() == 0
