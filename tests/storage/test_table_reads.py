"""Table Storage reads what a unit needs: a page's stored rows by their keys (point reads), never the
whole mailbox (a page of 100 read every event of the user: quadratic in the mailbox, 36,000 entities
read for a 2,000-event backfill); acknowledged outbox entries by their span of numbers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.storage.conftest import make_repository
from tests.storage.test_contract import CAL, USER, event


class CountingReads:
    """Wraps a TableClient and counts the entities its queries and point reads return."""

    def __init__(self, client: Any) -> None:
        self._client, self.entities = client, 0

    def query_entities(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for entity in self._client.query_entities(*args, **kwargs):
            self.entities += 1
            yield entity

    def get_entity(self, *args: Any, **kwargs: Any) -> Any:
        entity = self._client.get_entity(*args, **kwargs)
        self.entities += 1
        return entity

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_page_reads_its_own_rows_not_the_mailbox(request, tmp_path):
    repo = make_repository("tables", request, tmp_path)
    repo.ensure_schema()
    try:
        repo.upsert_events(USER, CAL, [event(f"e-{i:04d}") for i in range(1500)])
        counting = CountingReads(repo._clients["events"])
        repo._clients["events"] = counting
        page = [event(f"e-{i:04d}", version=2) for i in range(700, 800)] + [event("e-new")]

        changes = repo.upsert_events(USER, CAL, page)

        assert sorted((c.remote_id, c.kind) for c in changes) == sorted(
            [(f"e-{i:04d}", "updated") for i in range(700, 800)] + [("e-new", "created")])
        assert counting.entities <= len(page), counting.entities  # the 100 stored rows, not 1,500
        repo._clients["events"] = counting._client
        assert repo.counts(USER)["microsoft_calendar_event_v1"] == 1501
    finally:
        repo.close()


def test_acknowledging_reads_the_span_of_the_acknowledged_entries(request, tmp_path):
    repo = make_repository("tables", request, tmp_path)
    repo.ensure_schema()
    try:
        repo.upsert_events(USER, CAL, [event(f"e-{i:04d}") for i in range(300)])
        pending = repo.pending_changes(USER, limit=1000)
        assert len(pending) == 300
        counting = CountingReads(repo._clients["events"])
        repo._clients["events"] = counting
        repo.ack_changes(USER, [e.seq for e in pending[100:150]])
        assert counting.entities <= 50, counting.entities  # not the 300 pending entries, nor the events
        repo._clients["events"] = counting._client
        assert [e.seq for e in repo.pending_changes(USER, limit=1000)] == \
            [e.seq for e in pending[:100] + pending[150:]]
    finally:
        repo.close()
