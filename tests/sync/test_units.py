"""Small pieces of the engine without Graph: mapping, coverage, window, outbound ids, the lease lock."""

from __future__ import annotations

import json
import types
from datetime import UTC, datetime, timedelta

from shared.queues.messages import SyncRequest
from shared.sync import lock, outbound
from shared.sync.mapping import split_page
from shared.sync.window import current_window
from shared.sync.worker import covered
from tests.feed.contract import expand, validate


class RecordingQueue:
    """An outbound queue that keeps what it was sent (publish_pending's only call is send_many)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_many(self, bodies) -> int:
        bodies = list(bodies)
        self.sent.extend(bodies)
        return len(bodies)

def test_split_page_separates_removals_and_keeps_cancelled_rows():
    page = {"value": [
        {"id": "a", "type": "singleInstance", "isCancelled": True},
        {"@odata.type": "#microsoft.graph.event", "id": "b", "@removed": {"reason": "deleted"}},
        {"id": "c", "type": "occurrence", "seriesMasterId": "m"},
        {"id": "d", "type": "exception", "seriesMasterId": "m2"},
        "junk", {"no": "id"},
    ]}
    items = split_page(page)
    assert [e["id"] for e in items.events] == ["a", "c", "d"]
    assert items.removed_ids == ["b"]
    assert items.series_ids == {"m", "m2"}
    assert len(split_page({"@odata.nextLink": "x"})) == 0  # an empty nextLink page


def test_window_is_whole_days():
    settings = types.SimpleNamespace(sync_window_days_back=90, sync_window_days_ahead=365)
    now = datetime(2025, 3, 10, 17, 45, tzinfo=UTC)
    start, end = current_window(settings, now)
    assert start == datetime(2024, 12, 10, tzinfo=UTC) and end == datetime(2026, 3, 10, tzinfo=UTC)
    assert current_window(settings, now + timedelta(hours=5)) == (start, end)


def _account(started, finished, full_started=None):
    extra = {"sync": {"full_started_at": full_started}} if full_started else None
    return types.SimpleNamespace(last_sync_started_at=started, last_sync_at=finished, extra=extra)


def test_coverage_needs_a_successful_sync_started_after_receipt():
    t = datetime(2025, 1, 1, 12, tzinfo=UTC)
    before, after = (t - timedelta(seconds=1)).timestamp(), (t + timedelta(seconds=1)).timestamp()
    done = _account(t, t + timedelta(seconds=5))
    assert covered(done, SyncRequest("u", "notification", received_at=before))
    assert not covered(done, SyncRequest("u", "notification", received_at=after))
    failed = _account(t, t - timedelta(minutes=1))  # the last sync started but never succeeded
    assert not covered(failed, SyncRequest("u", "notification", received_at=before))
    assert not covered(done, SyncRequest("u", "linked", full=True, received_at=before))
    full = _account(t, t + timedelta(seconds=5), full_started=t.timestamp())
    assert covered(full, SyncRequest("u", "linked", full=True, received_at=before))


def test_outbound_collapses_and_ids_are_stable():
    from shared.storage import OutboxEntry

    entries = [OutboxEntry(1, "t", "a", "created", "1"), OutboxEntry(2, "t", "a", "updated", "2"),
               OutboxEntry(3, "t", "b", "deleted", ""), OutboxEntry(4, "t", "c", "updated", "9")]
    collapsed = outbound.collapse(entries)
    assert [(c.remote_id, c.kind, c.version) for c in collapsed] == [
        ("a", "created", "2"), ("b", "deleted", ""), ("c", "updated", "9")]
    first = outbound.message_for("u", collapsed[0], {"changeKey": "2"})
    assert first == outbound.message_for("u", collapsed[0], {"changeKey": "2"})
    assert json.loads(first)["id"] == outbound.dedup_id("t", "a", "2", "created")
    big = json.loads(outbound.message_for("u", collapsed[2], {"body": "x" * 80_000}))
    assert big["truncated"] and big["data"] is None and big["id"] == outbound.dedup_id("t", "c", "9", "updated")


def test_outbound_sends_current_data_and_skips_rows_deleted_since(tmp_path):
    from shared.storage.sqlite import SqliteRepository

    repo = SqliteRepository(tmp_path / "r.db")
    repo.ensure_schema()
    first = {"id": "e1", "subject": "first", "lastModifiedDateTime": "2026-01-01T00:00:00Z", "changeKey": "1"}
    repo.upsert_events("u", "cal", [first, {**first, "id": "e2"}])
    repo.upsert_events("u", "cal", [{**first, "subject": "second", "changeKey": "2",
                                     "lastModifiedDateTime": "2026-01-02T00:00:00Z"}])
    repo.delete_events("u", ["e2"])

    queue = RecordingQueue()
    assert outbound.publish_pending("u", repo, queue) == 2
    assert len(queue.sent) == 1  # both changes in one row-changes.v2 message
    bodies = [change for b in queue.sent for change in expand(validate(b))]
    assert [(b["remote_id"], b["type"]) for b in bodies] == [("e1", "row.created"), ("e2", "row.deleted")]
    assert bodies[0]["data"]["subject"] == "second"  # the row as stored when sent
    assert repo.pending_changes("u") == []
    repo.close()


def test_packing_fills_messages_up_to_the_queue_limit_in_sequence_order():
    from shared.queues.base import MAX_MESSAGE_BYTES, Queue
    from shared.storage import OutboxEntry

    entries = [OutboxEntry(i, "microsoft_calendar_event_v1", f"e{i}", "created", "1") for i in range(1, 301)]
    texts = [outbound.change_text(e, json.dumps({"id": e.remote_id, "body": "y" * 1000})) for e in entries]
    messages = list(outbound.pack("u", texts))
    assert 6 <= len(messages) <= 10  # ~1.2 KB per change, ~47 KB per message
    for message in messages:
        Queue.check_size(message)  # raises over the limit
        assert len(message.encode("utf-8")) > MAX_MESSAGE_BYTES * 3 // 4 - 3000 or message is messages[-1]
    sequences = [c["sequence"] for m in messages for c in expand(validate(m))]
    assert sequences == list(range(1, 301))


def test_publishing_reads_rows_back_only_for_entries_without_data(tmp_path):
    from shared.storage.sqlite import SqliteRepository

    repo = SqliteRepository(tmp_path / "r.db")
    repo.ensure_schema()
    base = {"subject": "s", "lastModifiedDateTime": "2026-01-01T00:00:00Z", "changeKey": "1"}
    repo.upsert_events("u", "cal", [{**base, "id": f"e{i}"} for i in range(50)])
    reads: list[str] = []
    select = repo.select
    repo.select = lambda table, user_id, columns, **filters: reads.append(table) or select(
        table, user_id, columns, **filters)

    queue = RecordingQueue()
    assert outbound.publish_pending("u", repo, queue) == 50
    assert reads == [] and len(queue.sent) == 1  # built from the outbox alone, one message
    repo.upsert_events("u", "cal", [{**base, "id": "e1", "subject": "later", "changeKey": "2"}])
    with repo._transaction("u") as conn:  # an entry written before migration 5 carries no row_data
        conn.execute("UPDATE microsoft_calendar_outbox_v1 SET row_data = NULL")
    assert outbound.publish_pending("u", repo, queue) == 1
    assert reads == ["microsoft_calendar_event_v1"]
    [change] = expand(validate(queue.sent[-1]))
    assert change["data"]["subject"] == "later" and change["type"] == "row.updated"
    repo.close()


def test_lock_waits_for_another_instances_lease():
    calls = []

    class Repo:
        def acquire_lease(self, name, owner, ttl_seconds):
            calls.append(name)
            return len(calls) >= 3

        def release_lease(self, name, owner):
            calls.append(("released", name))

    with lock.hold("u1", Repo(), timeout=5):
        pass
    assert calls == ["sync:u1", "sync:u1", "sync:u1", ("released", "sync:u1")]


def test_rows_drop_response_annotations_but_keep_the_etag():
    """Delta items carry @odata.type and a single GET @odata.context; the row is the event either way."""
    page = {"value": [{"@odata.type": "#microsoft.graph.event", "@odata.etag": 'W/"ck"', "id": "a",
                       "type": "singleInstance"}]}
    assert split_page(page).events == [{"@odata.etag": 'W/"ck"', "id": "a", "type": "singleInstance"}]
    from shared.sync.mapping import event_row

    assert event_row({"@odata.context": "https://graph/$metadata#users('u')/events/$entity", "id": "m"}) == {"id": "m"}
