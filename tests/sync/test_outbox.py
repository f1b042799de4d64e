"""No change event lost: the outbox keeps changes until the outbound queue took them, across failed
attempts of the sync message (the queue failing mid-batch, a crash between send and acknowledge)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from shared.queues import OUTBOUND_QUEUE, open_queue
from shared.queues.messages import SyncRequest, enqueue_sync
from shared.storage import schema
from tests.feed.contract import drain
from tests.sync.world import slot, weekly


class QueueDown(RuntimeError):
    pass


def fail_next_send(monkeypatch, world, *, after: int) -> list[int]:
    """The next send of more than `after` messages to the outbound queue delivers `after`, then raises;
    later sends work."""
    queue_type = type(open_queue(OUTBOUND_QUEUE, world.settings))
    original = queue_type.send_many
    failures: list[int] = []

    def send_many(self, bodies, *, delay_seconds: int = 0) -> int:
        bodies = list(bodies)
        if self.name != OUTBOUND_QUEUE or failures or len(bodies) <= after:
            return original(self, bodies, delay_seconds=delay_seconds)
        failures.append(len(bodies))
        original(self, bodies[:after], delay_seconds=delay_seconds)
        raise QueueDown("outbound queue unavailable")

    monkeypatch.setattr(queue_type, "send_many", send_many)
    return failures


def drain_retrying(world, limit: int = 20) -> list[Any]:
    """The host's behaviour: a message whose function raised becomes visible again and is retried."""
    from shared.sync.worker import handle_message

    queue, results = world.queue(), []
    for _ in range(limit):
        messages = queue.receive(16, visibility_timeout=300)
        if not messages:
            return results
        for message in messages:
            try:
                results.append(handle_message(message.body).status)
                queue.delete(message)
            except Exception as exc:  # recorded; the message is retried, as the host would
                results.append(type(exc).__name__)
                queue.release(message)
    raise AssertionError("the sync queue did not drain")


def consume(world) -> list[dict[str, Any]]:
    """Everything on the outbound queue (received and deleted, as a consumer would), each one validated."""
    return drain(OUTBOUND_QUEUE, world.settings)


def unique(messages: list[dict[str, Any]]) -> Counter:
    """What a consumer de-duplicating on `id` sees: (table, remote id, type) per distinct id."""
    by_id = {m["id"]: (m["table"], m["remote_id"], m["type"]) for m in messages}
    return Counter(by_id.values())


def test_changes_survive_a_failing_outbound_queue(world, no_subscribe, monkeypatch):
    world.configure(FEED_ROW_SCHEMA="row-change.v1")  # one message per row: the failure cuts between rows
    sim = world.sim
    alice = world.user("Alice")
    team = sim.create_calendar(alice, "Team")
    single = sim.create_event(alice, subject="single", **slot(1))["id"]
    sim.create_event(alice, subject="series", **weekly(-3, 6))
    doomed = sim.create_event(alice, calendar_id=team["id"], subject="team", **slot(2))["id"]

    # First sync: the queue takes 5 messages, then fails; the retried message publishes the rest.
    failures = fail_next_send(monkeypatch, world, after=5)
    world.link(alice)
    assert drain_retrying(world) == ["QueueDown", "synced"]
    assert failures and failures[0] > 5
    world.assert_converged(alice)
    assert world.repo.pending_changes(alice) == []
    messages = consume(world)
    rows = {(schema.CALENDARS.name, c.microsoft_calendar_id) for c in world.repo.list_calendars(alice)}
    rows |= {(schema.EVENTS.name, e.microsoft_event_id) for e in world.repo.list_events(alice)}
    rows |= {(schema.USERS.name, alice)}  # the profile stored at sign-in
    assert unique(messages) == Counter({(t, i, "row.created"): 1 for t, i in rows})
    assert len(messages) == len(rows) + 5  # at-least-once: the 5 sent before the failure came again

    # Changes while the queue fails before sending anything (this patch wraps the spent one).
    sim.update_event(alice, single, subject="renamed")
    sim.delete_event(alice, doomed)
    added = sim.create_event(alice, subject="new", **slot(3))["id"]
    fail_next_send(monkeypatch, world, after=0)
    enqueue_sync(SyncRequest(alice, "notification"), world.settings)
    assert drain_retrying(world) == ["QueueDown", "synced"]
    world.assert_converged(alice)
    assert unique(consume(world)) == Counter({(schema.EVENTS.name, single, "row.updated"): 1,
                                              (schema.EVENTS.name, doomed, "row.deleted"): 1,
                                              (schema.EVENTS.name, added, "row.created"): 1})


def test_a_crash_between_send_and_ack_resends_with_the_same_ids(world, no_subscribe, monkeypatch):
    sim = world.sim
    alice = world.user("Alice")
    sim.create_event(alice, subject="one", **slot(1))
    world.link(alice)
    world.drain()
    consume(world)
    changed = sim.create_event(alice, subject="two", **slot(2))["id"]

    repo_type = type(world.repo)
    original, crashed = repo_type.ack_changes, []

    def ack_changes(self, user_id, entry_ids):
        if not crashed:
            crashed.append(list(entry_ids))
            raise QueueDown("killed before the acknowledgement")
        return original(self, user_id, entry_ids)

    monkeypatch.setattr(repo_type, "ack_changes", ack_changes)
    enqueue_sync(SyncRequest(alice, "notification"), world.settings)
    assert drain_retrying(world) == ["QueueDown", "synced"]
    messages = consume(world)
    assert [(m["remote_id"], m["type"]) for m in messages] == [(changed, "row.created")] * 2
    assert messages[0]["id"] == messages[1]["id"]  # the consumer drops the second
    assert world.repo.pending_changes(alice) == []


def test_packed_changes_survive_a_queue_failing_between_messages(world, no_subscribe, monkeypatch):
    sim = world.sim
    alice = world.user("Alice")
    big = "x" * 12_000  # four such rows fill a queue message: the sync's changes need several
    created = [sim.create_event(alice, subject=f"big {i}", body={"contentType": "text", "content": big},
                                **slot(i + 1))["id"] for i in range(8)]
    failures = fail_next_send(monkeypatch, world, after=1)
    world.link(alice)
    assert drain_retrying(world) == ["QueueDown", "synced"]
    assert failures and failures[0] > 1
    assert world.repo.pending_changes(alice) == []
    packed: list[dict[str, Any]] = []
    messages = drain(OUTBOUND_QUEUE, world.settings, packed=packed)
    assert len(packed) >= failures[0] + 1 and all(p["user_id"] == alice for p in packed)
    seen = Counter(c["id"] for p in packed for c in p["changes"])
    first = {i for i, n in seen.items() if n > 1}  # the changes of the message the queue took before failing
    assert first and set(seen.values()) == {1, 2}
    assert any({c["id"] for c in p["changes"]} == first for p in packed)  # one whole message, sent twice
    rows = {(schema.EVENTS.name, e.microsoft_event_id) for e in world.repo.list_events(alice)}
    rows |= {(schema.CALENDARS.name, c.microsoft_calendar_id) for c in world.repo.list_calendars(alice)}
    rows |= {(schema.USERS.name, alice)}
    assert set(created) <= {i for _, i in rows}
    assert unique(messages) == Counter({(t, i, "row.created"): 1 for t, i in rows})
    assert len(messages) == len(rows) + len(first)  # at-least-once: the first message's changes came again
    for p in packed:  # commit order within a message
        sequences = [c["sequence"] for c in p["changes"]]
        assert sequences == sorted(set(sequences))


def _mailbox_of_three_pages(world) -> str:
    """Alice with 120 events: three pages of 50."""
    alice = world.user("Alice")
    for i in range(120):
        world.sim.create_event(alice, subject=f"e{i}", **slot(i % 20 + 1))
    return alice


def _backfill_with_slow_graph(world, user: str) -> None:
    """Link `user` and run the sync while Graph answers 300 ms late: the next page is always in flight."""
    world.sim.faults.set(latency_ms=300)
    try:
        world.link(user)
        assert drain_retrying(world) == ["synced"]
    finally:
        world.sim.faults.clear()


def _assert_everything_published(world, user: str) -> None:
    assert world.repo.pending_changes(user) == []
    events = {e["remote_id"] for e in consume(world) if e["table"] == schema.EVENTS.name}
    assert len(events) == 120


def test_changes_are_published_while_the_next_page_is_on_its_way(world, no_subscribe, monkeypatch):
    """A slow Graph leaves the worker idle between pages: the pages stored so far are published then,
    not all at the end of the sync."""
    alice = _mailbox_of_three_pages(world)
    queue_type = type(open_queue(OUTBOUND_QUEUE, world.settings))
    original, stored = queue_type.send_many, []

    def send_many(self, bodies, *, delay_seconds: int = 0) -> int:
        if self.name == OUTBOUND_QUEUE:
            stored.append(world.repo.counts(alice)[schema.EVENTS.name])  # event rows stored at this send
        return original(self, bodies, delay_seconds=delay_seconds)

    monkeypatch.setattr(queue_type, "send_many", send_many)
    _backfill_with_slow_graph(world, alice)
    assert any(0 < n < 120 for n in stored), stored  # sent after a page, before the last page was stored
    _assert_everything_published(world, alice)


def test_a_queue_failing_between_pages_stops_no_row_from_being_stored(world, no_subscribe, monkeypatch):
    """Publishing between pages meets a queue outage: the round still stores every page and stops
    publishing between pages; the end of the sync publishes everything (its own failure would fail the
    sync message, which is retried: test_changes_survive_a_failing_outbound_queue)."""
    alice = _mailbox_of_three_pages(world)
    queue_type = type(open_queue(OUTBOUND_QUEUE, world.settings))
    original, refused = queue_type.send_many, []

    def send_many(self, bodies, *, delay_seconds: int = 0) -> int:
        stored = world.repo.counts(alice)[schema.EVENTS.name]
        if self.name == OUTBOUND_QUEUE and 0 < stored < 120:  # down while the round goes on
            refused.append(stored)
            raise QueueDown("outbound queue unavailable")
        return original(self, bodies, delay_seconds=delay_seconds)

    monkeypatch.setattr(queue_type, "send_many", send_many)
    _backfill_with_slow_graph(world, alice)
    assert len(refused) == 1, refused  # tried once between pages, then left to the end of the sync
    _assert_everything_published(world, alice)
