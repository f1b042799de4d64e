"""Acceptance 2: calendarView/delta rounds, pages, change reporting, window quirks and 410."""

from __future__ import annotations

import datetime as dt

from tests.graphsim.helpers import bearer, setup, slot, user_token

WINDOW = "startDateTime=2024-01-01T00:00:00Z&endDateTime=2025-01-01T00:00:00Z"


def _round(session, url, headers):
    items, pages = [], 0
    while True:
        r = session.get(url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        items.extend(body["value"])
        if "@odata.nextLink" in body:
            assert "$skiptoken=" in body["@odata.nextLink"]
            url = body["@odata.nextLink"]
            continue
        assert "$deltatoken=" in body["@odata.deltaLink"]
        return items, body["@odata.deltaLink"], pages


def test_initial_round_of_2500_then_exact_changes_then_410(graphsim, graphsim_session):
    s = setup(graphsim)
    token = user_token(graphsim, s, graphsim_session)["access_token"]
    base = dt.date(2024, 1, 2)
    bodies = [{"subject": f"e{i}", **slot((base + dt.timedelta(days=i % 360)).isoformat(), 8 + i % 9)}
              for i in range(2500)]
    ids = graphsim.create_events(s.user, bodies)
    headers = {**bearer(token), "Prefer": "odata.maxpagesize=100"}
    url = f"{graphsim.graph_url}/me/calendarView/delta?{WINDOW}"
    items, delta_link, pages = _round(graphsim_session, url, headers)
    assert pages == 25 and len(items) == 2500 and {i["id"] for i in items} == set(ids)
    assert all(i["type"] == "singleInstance" and i["start"]["timeZone"] == "UTC" for i in items)
    assert items[0]["start"]["dateTime"].endswith(".0000000")

    created = graphsim.create_event(s.user, subject="new", **slot("2024-06-01", 9))
    graphsim.update_event(s.user, ids[10], subject="renamed")
    graphsim.delete_event(s.user, ids[20])
    items, delta_link2, _ = _round(graphsim_session, delta_link, headers)
    by_id = {i["id"]: i for i in items}
    assert set(by_id) == {created["id"], ids[10], ids[20]}
    assert by_id[ids[10]]["subject"] == "renamed"
    assert by_id[ids[20]] == {"@odata.type": "#microsoft.graph.event", "id": ids[20],
                              "@removed": {"reason": "deleted"}}
    items, _, _ = _round(graphsim_session, delta_link2, headers)
    assert items == []

    graphsim.invalidate_delta_tokens(s.user)
    r = graphsim_session.get(delta_link2, headers=headers)
    assert r.status_code == 410 and r.json()["error"]["code"] == "syncStateNotFound"
    assert r.json()["error"]["message"].startswith("The sync state generation is not found;")


def test_window_rules_recurrence_and_unsupported_params(graphsim, graphsim_session):
    s = setup(graphsim)
    token = user_token(graphsim, s, graphsim_session)["access_token"]
    h = bearer(token)
    series = graphsim.create_event(s.user, subject="standup", **slot("2024-03-04", 9, 15), recurrence={
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
        "range": {"type": "numbered", "startDate": "2024-03-04", "numberOfOccurrences": 6}})
    inside = graphsim.create_event(s.user, subject="inside", **slot("2024-03-05", 9))
    url = f"{graphsim.graph_url}/me/calendarView/delta?{WINDOW}"
    items, link, _ = _round(graphsim_session, url, h)
    occ = [i for i in items if i["type"] == "occurrence"]
    assert len(occ) == 6 and all(o["seriesMasterId"] == series["id"] for o in occ)
    assert len({o["id"] for o in occ}) == 6 and not any(i["type"] == "seriesMaster" for i in items)

    outside = graphsim.create_event(s.user, subject="far", **slot("2030-01-01", 9))
    graphsim.update_event(s.user, inside["id"], **slot("2031-01-01", 9))
    changed = graphsim.update_event(s.user, occ[1]["id"], subject="moved standup")
    graphsim.delete_event(s.user, occ[2]["id"])
    items, link, _ = _round(graphsim_session, link, h)
    by_id = {i["id"]: i for i in items}
    assert by_id[outside["id"]]["@removed"] == {"reason": "deleted"}     # documented quirk
    assert by_id[inside["id"]]["@removed"] == {"reason": "deleted"}      # moved out of the window
    assert by_id[occ[1]["id"]]["type"] == "exception" and changed["subject"] == "moved standup"
    assert by_id[occ[2]["id"]]["@removed"] == {"reason": "deleted"}
    assert len(items) == 4

    r = graphsim_session.get(url + "&$select=subject", headers=h)
    assert r.status_code == 400
    r = graphsim_session.get(f"{graphsim.graph_url}/me/calendarView/delta", headers=h)
    assert r.status_code == 400
    cal = graphsim.create_calendar(s.user, "Other")
    r = graphsim_session.get(f"{graphsim.graph_url}/me/calendars/{cal['id']}/calendarView/delta?{WINDOW}",
                             headers=h)
    assert r.status_code == 400   # only behind delta_other_calendars=True


def test_timezone_preference_and_all_day(graphsim, graphsim_session):
    s = setup(graphsim)
    h = bearer(user_token(graphsim, s, graphsim_session)["access_token"])
    r = graphsim_session.post(f"{graphsim.graph_url}/me/events", headers=h, json={
        "subject": "tz", **slot("2024-07-01", 10, tz="W. Europe Standard Time")})
    assert r.status_code == 201
    ev = r.json()
    assert ev["start"] == {"dateTime": "2024-07-01T08:00:00.0000000", "timeZone": "UTC"}
    assert ev["originalStartTimeZone"] == "W. Europe Standard Time"
    r = graphsim_session.get(f"{graphsim.graph_url}/me/events/{ev['id']}",
                             headers={**h, "Prefer": 'outlook.timezone="Pacific Standard Time"'})
    assert r.json()["start"] == {"dateTime": "2024-07-01T01:00:00.0000000", "timeZone": "Pacific Standard Time"}
    assert r.headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'
    bad = graphsim_session.post(f"{graphsim.graph_url}/me/events", headers=h, json={
        "subject": "x", "isAllDay": True, **slot("2024-07-01", 10)})
    assert bad.status_code == 400 and bad.json()["error"]["code"]
    ok = graphsim_session.post(f"{graphsim.graph_url}/me/events", headers=h, json={
        "subject": "day", "isAllDay": True, "start": {"dateTime": "2024-07-02T00:00:00", "timeZone": "Europe/Paris"},
        "end": {"dateTime": "2024-07-03T00:00:00", "timeZone": "Europe/Paris"}})
    assert ok.status_code == 201 and ok.json()["start"]["dateTime"] == "2024-07-02T00:00:00.0000000"


def test_other_calendar_delta_behind_setting(graphsim, graphsim_session):
    s = setup(graphsim)
    h = bearer(user_token(graphsim, s, graphsim_session)["access_token"])
    cal = graphsim.create_calendar(s.user, "Team")
    graphsim.create_event(s.user, calendar_id=cal["id"], subject="team", **slot("2024-02-01", 9))
    graphsim.create_event(s.user, subject="primary", **slot("2024-02-01", 11))
    graphsim.delta_other_calendars = True
    try:
        url = f"{graphsim.graph_url}/me/calendars/{cal['id']}/calendarView/delta?{WINDOW}"
        items, link, _ = _round(graphsim_session, url, h)
        assert [i["subject"] for i in items] == ["team"] and f"/calendars/{cal['id']}/" in link
        moved = graphsim.move_event(s.user, items[0]["id"], graphsim.default_calendar_id(s.user))
        assert moved["id"] != items[0]["id"]            # mutable ids change on move
        items2, _, _ = _round(graphsim_session, link, h)
        assert items2 == [{"@odata.type": "#microsoft.graph.event", "id": items[0]["id"],
                           "@removed": {"reason": "deleted"}}]
    finally:
        graphsim.delta_other_calendars = False


def test_exception_of_a_moved_series_is_reported_removed(graphsim, graphsim_session):
    """An exception made before its series moved (mutable ids) and deleted after: `@removed` carries its id.

    Regression: the exception kept an id derived from the series' pre-move id while the keyed change
    of the deletion was reported under the id derived from the new one, so the client kept a row Graph
    no longer has (the intermittent convergence failure, seed 202).
    """
    s = setup(graphsim)
    h = bearer(user_token(graphsim, s, graphsim_session)["access_token"])
    team = graphsim.create_calendar(s.user, "Team")
    series = graphsim.create_event(s.user, calendar_id=team["id"], subject="weekly", **slot("2024-03-04", 9),
                                   recurrence={"pattern": {"type": "weekly", "interval": 1,
                                                           "daysOfWeek": ["monday"]},
                                               "range": {"type": "numbered", "startDate": "2024-03-04",
                                                         "numberOfOccurrences": 3}})
    occurrences = [e for e in graphsim.ground_truth(s.user)["events"] if e["seriesMasterId"] == series["id"]]
    graphsim.update_event(s.user, occurrences[1]["id"], subject="one-off")          # an exception
    moved = graphsim.move_event(s.user, series["id"], graphsim.default_calendar_id(s.user))
    assert moved["id"] != series["id"]                                              # mutable ids change on move

    url = f"{graphsim.graph_url}/me/calendarView/delta?{WINDOW}"
    items, link, _ = _round(graphsim_session, url, h)
    exception = next(i for i in items if i["type"] == "exception")
    assert exception["seriesMasterId"] == moved["id"] and exception["subject"] == "one-off"
    assert len(items) == 3

    graphsim.delete_event(s.user, exception["id"])                                  # the user deletes it
    items, _, _ = _round(graphsim_session, link, h)
    assert items == [{"@odata.type": "#microsoft.graph.event", "id": exception["id"],
                      "@removed": {"reason": "deleted"}}]
    assert exception["id"] not in {e["id"] for e in graphsim.ground_truth(s.user)["events"]}
