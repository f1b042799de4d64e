"""Table Storage has no transaction across entity groups: a unit can fail after some of its batches
applied. The retry must still report every row the unit changed (the outbox and the caller count on it)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ServiceResponseError

from shared.storage import schema
from tests.storage.conftest import make_repository
from tests.storage.test_contract import CAL, USER, event


class ResetAfterApplying:
    """Wraps a TableClient: the first transaction that writes row key `*suffix` is applied, then its
    reply is lost (as when a pooled connection resets under the POST)."""

    def __init__(self, client, suffix: str) -> None:
        self._client, self._suffix, self.failed = client, suffix, False

    def submit_transaction(self, operations, **kwargs):
        result = self._client.submit_transaction(operations, **kwargs)
        if not self.failed and any(op[1]["RowKey"].endswith(self._suffix) for op in operations):
            self.failed = True
            raise ServiceResponseError("Connection reset by peer (reply lost after the batch applied)")
        return result

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.mark.parametrize("kind", ["created", "updated"])
def test_retry_after_a_partly_applied_unit_reports_every_changed_row(request, tmp_path, kind):
    repo = make_repository("tables", request, tmp_path)
    repo.ensure_schema()
    try:
        repo.parallel_batches = 1  # batches in order, so the lost reply falls mid-unit deterministically
        count = 450  # five entity-group batches of rows
        if kind == "updated":
            repo.upsert_events(USER, CAL, [event(f"e-{i:04d}") for i in range(count)])
        rows = [event(f"e-{i:04d}", 2 if kind == "updated" else 1) for i in range(count)]
        wrapped = ResetAfterApplying(repo._clients["events"], suffix="e-0150")  # the second of five row batches
        repo._clients["events"] = wrapped

        changes = repo.upsert_events(USER, CAL, rows)

        assert wrapped.failed, "the unit was retried"
        assert sorted(c.remote_id for c in changes) == [f"e-{i:04d}" for i in range(count)]
        assert {c.kind for c in changes} == {kind}
        assert repo.counts(USER)[schema.EVENTS.name] == count
    finally:
        repo.close()
