"""Hostile text from Graph (issue 12, item 3): one event never stops a page, on every backend.

An unpaired UTF-16 surrogate, a NUL and a subject over one Table Storage property
used to fail the whole page (and with it the mailbox). Now each row keeps what the
backend can hold, degrades the rest and lists it under `_replica_degraded`.
"""

from __future__ import annotations

from shared.storage.base import Repository
from shared.storage.textsafety import DEGRADED_KEY
from tests.storage.test_contract import CAL, USER, WINDOW, event

LONG = "Ω" * 40_000  # over 32,767 UTF-16 units: one Table Storage property cannot hold it


def _hostile() -> list[dict]:
    return [
        event("lone", subject="a\ud800b", body={"contentType": "text", "content": "x\udc00y"},
              location={"displayName": "room \ud83d"}, attendees=[{"emailAddress": {"name": "Zo\udfffë"}}]),
        event("nul", subject="a\x00b", body={"contentType": "text", "content": "x\x00y"}),
        event("long", subject=LONG),
        event("plain"),
    ]


def test_a_hostile_event_never_stops_the_page(repo: Repository):
    result = repo.save_page(USER, CAL, events=_hostile(), removed_ids=[], next_link=None,
                            delta_link="https://graph/delta", window=WINDOW)
    assert sorted(c.remote_id for c in result.changes) == ["lone", "long", "nul", "plain"]
    rows = {r.microsoft_event_id: r for r in repo.list_events(USER)}
    assert set(rows) == {"lone", "long", "nul", "plain"}
    assert repo.get_cursor(USER, CAL).delta_link == "https://graph/delta"

    plain = rows["plain"]
    assert DEGRADED_KEY not in plain.data and plain.subject == "Meeting plain v1"

    lone = rows["lone"]
    assert "\ud800" not in lone.subject and lone.subject.startswith("a") and lone.subject.endswith("b")
    if repo.backend == "postgres":  # jsonb cannot hold an unpaired surrogate: replaced, and said so
        assert lone.data["subject"] == "a\ufffdb" and "data:subject" in lone.data[DEGRADED_KEY]
        assert "data:body.content" in lone.data[DEGRADED_KEY]
    else:  # the data stored losslessly; only the text column (bound as UTF-8) is degraded
        assert lone.data[DEGRADED_KEY] == ["column:subject"]
        assert lone.data["subject"] == "a\ud800b" and lone.data["body"]["content"] == "x\udc00y"
        assert lone.data["attendees"][0]["emailAddress"]["name"] == "Zo\udfffë"

    nul = rows["nul"]
    if repo.backend == "postgres":
        assert nul.subject == "a\ufffdb" and nul.data["subject"] == "a\ufffdb"
        assert nul.data[DEGRADED_KEY] == ["data:body.content", "data:subject"]
    else:
        assert nul.subject == "a\x00b" and nul.data["subject"] == "a\x00b" and DEGRADED_KEY not in nul.data

    long = rows["long"]
    assert long.data["subject"] == LONG  # the data keeps it whole everywhere
    if repo.backend == "tables":
        assert long.subject == LONG[:32_767] and long.data[DEGRADED_KEY] == ["column:subject"]
    else:
        assert long.subject == LONG and DEGRADED_KEY not in long.data


def test_the_same_hostile_page_twice_changes_nothing(repo: Repository):
    for _ in range(2):
        result = repo.save_page(USER, CAL, events=_hostile(), removed_ids=[], next_link=None,
                                delta_link="d", window=WINDOW)
    assert result.changes == []


def test_a_row_that_cannot_be_mapped_is_left_out_and_the_others_stored(repo: Repository):
    broken = event("broken", start={"dateTime": "not a time", "timeZone": "Nowhere/Else"})
    result = repo.save_page(USER, CAL, events=[broken, event("fine")], removed_ids=[], next_link=None,
                            delta_link="d", window=WINDOW)
    assert [c.remote_id for c in result.changes] == ["fine"]
    assert result.skipped == ["broken"]
    assert [r.microsoft_event_id for r in repo.list_events(USER)] == ["fine"]
    assert repo.get_cursor(USER, CAL).delta_link == "d"
