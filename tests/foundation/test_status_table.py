"""`status` for people: one aligned line per user, named by address; `--json` for machines."""

from __future__ import annotations

import datetime as dt

from shared.ops.status import StatusReport, SubscriptionStatus, UserStatus

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def _user(user_id: str, address: str | None, *, state: str = "live", error: str | None = None) -> UserStatus:
    expires = NOW + dt.timedelta(days=2) if state == "live" else NOW - dt.timedelta(hours=1)
    return UserStatus(user_id=user_id, address=address, name=None, status="linked", status_reason=None,
                      mode="delegated", subscriptions=(SubscriptionStatus("events", "sub-1", expires, state),),
                      last_sync_at=NOW - dt.timedelta(minutes=5), last_error=error, last_error_at=None,
                      rows={"microsoft_calendar_v1": 2, "microsoft_calendar_event_v1": 1234},
                      problems=("subscription expired",) if state == "expired" else ())


def test_table_is_aligned_and_names_users_by_address():
    from shared.ops.status import render_text

    report = StatusReport(NOW, (
        _user("0d4f6c1e-0000-4000-8000-000000000001", "a@contoso.com"),
        _user("0d4f6c1e-0000-4000-8000-000000000002", None, state="expired", error="GraphError: 503 " + "x" * 200),
    ), {"calendar-sync": 0, "calendar-sync-poison": 0})
    lines = render_text(report).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("user "))
    rows = lines[header + 2: header + 4]
    for column in ("state", "subscriptions", "last sync", "last error"):
        offset = lines[header].index(column)
        filled = [row for row in rows if len(row) > offset]  # an empty last cell is trimmed
        assert filled and all(row[offset - 2: offset] == "  " and row[offset] != " " for row in filled), (column, rows)
    assert rows[0].startswith("a@contoso.com ")
    assert "events until 03-03 12:00Z (2d)" in rows[0] and "5m ago" in rows[0] and "1234" in rows[0]
    assert rows[1].startswith("0d4f6c1e-0000-4000-8000-000000000002")  # no address: the id
    assert "events expired 03-01 11:00Z" in rows[1] and rows[1].endswith("…") and len(rows[1]) < 200
    assert "problems:" in lines and "  0d4f6c1e-0000-4000-8000-000000000002: subscription expired" in lines


def test_json_document_keeps_the_subscription_and_lists_all():
    document = StatusReport(NOW, (_user("u1", "a@contoso.com"),), {"calendar-sync-poison": 0}).as_dict()
    (user,) = document["users"]
    assert user["address"] == "a@contoso.com" and user["subscription"]["state"] == "live"
    assert user["subscriptions"] == [user["subscription"]] and user["subscription"]["resource"] == "events"
    assert user["subscription"]["expires_in_minutes"] == 2 * 24 * 60
    assert document["healthy"] is True and document["totals"]["subscriptions"] == {"live": 1}
