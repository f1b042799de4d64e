"""`python -m shared rows`: the replicated rows from the terminal, the same on every backend."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest

from shared.ops.rows import RowQuery, parse_since, render_text, select


def _event(event_id: str, subject: str) -> dict:
    return {"id": event_id, "subject": subject, "type": "singleInstance",
            "start": {"dateTime": "2025-03-03T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2025-03-03T10:00:00.0000000", "timeZone": "UTC"},
            "lastModifiedDateTime": "2025-03-01T08:00:00Z", "changeKey": subject}


def _fill(repo) -> tuple[str, str, dt.datetime]:
    ada, bob = f"ada-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
    repo.upsert_user(ada, {"mail": "ada@contoso.com", "displayName": "Ada Lovelace"})
    repo.upsert_user(bob, {"userPrincipalName": "bob@contoso.com"})
    repo.upsert_calendars(ada, [{"id": "ada-cal", "name": "Calendar", "isDefaultCalendar": True}])
    repo.upsert_calendars(bob, [{"id": "bob-cal", "name": "Travel"}])
    repo.upsert_events(ada, "ada-cal", [_event("e-old", "Old review")])
    repo.upsert_events(bob, "bob-cal", [_event("e-bob", "Bob's trip")])
    time.sleep(0.05)
    cut = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    repo.upsert_events(ada, "ada-cal", [_event("e-new", "New planning")])
    return ada, bob, cut


def test_rows_by_user_address_and_since_on_every_backend(repo):
    ada, bob, cut = _fill(repo)
    assert [e.microsoft_event_id for e in select(repo, RowQuery("events", "ada@contoso.com"))] == ["e-new", "e-old"]
    assert [e.microsoft_event_id for e in select(repo, RowQuery("events", "ADA@contoso.com", since=cut))] == ["e-new"]
    assert {e.microsoft_event_id for e in select(repo, RowQuery("events"))} >= {"e-new", "e-old", "e-bob"}
    assert [c.name for c in select(repo, RowQuery("calendars", bob))] == ["Travel"]
    assert [u.microsoft_user_id for u in select(repo, RowQuery("users", "bob@contoso.com"))] == [bob]
    assert len(select(repo, RowQuery("events", ada, limit=1))) == 1
    text = render_text(repo, "events", select(repo, RowQuery("events", ada)))
    lines = text.splitlines()
    assert lines[0].split() == ["user", "calendar", "start", "subject", "type", "row_updated_at"]
    assert lines[2].startswith("ada@contoso.com  Calendar  2025-03-03 09:00:00Z  New planning")
    with pytest.raises(LookupError):
        select(repo, RowQuery("events", "nobody@contoso.com"))


def test_since_accepts_iso_times_and_ages():
    now = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    assert parse_since("15m", now) == now - dt.timedelta(minutes=15)
    assert parse_since("2d", now) == now - dt.timedelta(days=2)
    assert parse_since("2025-03-01T08:00Z", now) == dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
    assert parse_since("2025-03-01T08:00", now) == dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="--since 'yesterday'"):
        parse_since("yesterday", now)


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "tables"])
def test_rows_command(app_env, backend, request, capsys):
    from shared.cli import main
    from shared.storage import open_repository

    if backend == "postgres":
        app_env(DATABASE_BACKEND="postgres", PG_DSN=request.getfixturevalue("pg_dsn"))
    elif backend == "tables":
        app_env(DATABASE_BACKEND="tables", TABLES_CONNECTION_STRING=request.getfixturevalue("azurite"),
                TABLE_PREFIX=f"r{uuid.uuid4().hex[:10]}")
    else:
        app_env()
    ada, _, cut = _fill(open_repository())
    assert main(["rows", "events", "--user", "ada@contoso.com", "--since", cut.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "New planning" in out and "Old review" not in out
    assert main(["rows", "users", "--json"]) == 0
    users = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert ada in {u["microsoft_user_id"] for u in users}
    assert all("encrypted_refresh_token" not in u for u in users)
    assert main(["rows", "events", "--user", "nobody@contoso.com"]) == 1
    assert "no replicated user 'nobody@contoso.com'" in capsys.readouterr().err
    assert main(["rows", "events", "--since", "soon"]) == 1
