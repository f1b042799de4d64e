"""Calendars, events, recurrence, schedule, time zones and mail against the documented shapes."""

from __future__ import annotations

from tests.graphsim.helpers import bearer, setup, slot, user_token


def _h(graphsim, session):
    s = setup(graphsim)
    return s, bearer(user_token(graphsim, s, session, ("Calendars.ReadWrite", "Mail.ReadWrite",
                                                         "Mail.Send"))["access_token"])


def test_calendars_paging_and_default_rules(graphsim, graphsim_session):
    _, h = _h(graphsim, graphsim_session)
    g = graphsim.graph_url
    for i in range(11):
        assert graphsim_session.post(f"{g}/me/calendars", headers=h, json={"name": f"c{i}"}).status_code == 201
    first = graphsim_session.get(f"{g}/me/calendars", headers=h).json()
    assert len(first["value"]) == 10 and "@odata.nextLink" in first
    rest = graphsim_session.get(first["@odata.nextLink"], headers=h).json()
    assert len(rest["value"]) == 2 and "@odata.nextLink" not in rest
    default = graphsim_session.get(f"{g}/me/calendar", headers=h).json()
    assert default["isDefaultCalendar"] and default["canEdit"] and default["owner"]["address"] == "adele@contoso.test"
    assert graphsim_session.delete(f"{g}/me/calendars/{default['id']}", headers=h).status_code == 400
    cid = rest["value"][-1]["id"]
    r = graphsim_session.patch(f"{g}/me/calendars/{cid}", headers=h, json={"name": "renamed"})
    assert r.status_code == 200 and r.json()["name"] == "renamed"
    assert graphsim_session.delete(f"{g}/me/calendars/{cid}", headers=h).status_code == 204
    assert graphsim_session.get(f"{g}/me/calendars/{cid}", headers=h).status_code == 404


def test_events_recurrence_instances_and_cancel(graphsim, graphsim_session):
    s, h = _h(graphsim, graphsim_session)
    g = graphsim.graph_url
    r = graphsim_session.post(f"{g}/me/events", headers=h, json={"subject": "daily", **slot("2024-04-01", 9),
                              "recurrence": {"pattern": {"type": "daily", "interval": 2},
                                             "range": {"type": "endDate", "startDate": "2024-04-01",
                                                       "endDate": "2024-04-09"}}})
    master = r.json()
    assert r.status_code == 201 and master["type"] == "seriesMaster"
    assert master["recurrence"]["pattern"]["interval"] == 2
    win = "startDateTime=2024-04-01T00:00:00Z&endDateTime=2024-05-01T00:00:00Z"
    inst = graphsim_session.get(f"{g}/me/events/{master['id']}/instances?{win}", headers=h).json()["value"]
    assert [i["start"]["dateTime"][:10] for i in inst] == ["2024-04-01", "2024-04-03", "2024-04-05",
                                                           "2024-04-07", "2024-04-09"]
    events = graphsim_session.get(f"{g}/me/events", headers=h).json()["value"]
    assert [e["type"] for e in events] == ["seriesMaster"]
    view = graphsim_session.get(f"{g}/me/calendarView?{win}", headers=h).json()["value"]
    assert len(view) == 5 and all(v["type"] == "occurrence" for v in view)
    r = graphsim_session.patch(f"{g}/me/events/{inst[1]['id']}", headers=h, json={"subject": "moved"})
    assert r.json()["type"] == "exception" and r.json()["seriesMasterId"] == master["id"]
    assert graphsim_session.delete(f"{g}/me/events/{inst[2]['id']}", headers=h).status_code == 204
    view = graphsim_session.get(f"{g}/me/calendarView?{win}", headers=h).json()["value"]
    assert [v["type"] for v in view] == ["occurrence", "exception", "occurrence", "occurrence"]

    invite = graphsim.create_event(s.user, subject="their meeting", organizer={"emailAddress": {
        "name": "Alex", "address": "alex@contoso.test"}}, **slot("2024-04-02", 9))
    r = graphsim_session.post(f"{g}/me/events/{invite['id']}/cancel", headers=h, json={"Comment": "no"})
    assert r.status_code == 400
    assert graphsim_session.post(f"{g}/me/events/{master['id']}/cancel", headers=h,
                                 json={"Comment": "bye"}).status_code == 202
    assert graphsim_session.get(f"{g}/me/events/{master['id']}", headers=h).status_code == 404


def test_schedule_time_zones_languages(graphsim, graphsim_session):
    s, h = _h(graphsim, graphsim_session)
    g = graphsim.graph_url
    graphsim.create_event(s.user, subject="busy", **slot("2024-04-01", 9))
    r = graphsim_session.post(f"{g}/me/calendar/getSchedule", headers=h, json={
        "schedules": ["adele@contoso.test"], "availabilityViewInterval": 60,
        "startTime": {"dateTime": "2024-04-01T08:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2024-04-01T12:00:00", "timeZone": "UTC"}})
    info = r.json()["value"][0]
    assert info["availabilityView"] == "0200" and info["scheduleItems"][0]["status"] == "busy"
    assert graphsim_session.post(f"{g}/me/calendar/getSchedule", headers=h, json={
        "schedules": ["a"], "availabilityViewInterval": 4,
        "startTime": {"dateTime": "2024-04-01T08:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2024-04-01T12:00:00", "timeZone": "UTC"}}).status_code == 400
    tz = graphsim_session.get(f"{g}/me/outlook/supportedTimeZones", headers=h).json()["value"]
    assert any(z["alias"] == "Pacific Standard Time" for z in tz)
    iana = graphsim_session.get(f"{g}/me/outlook/supportedTimeZones(TimeZoneStandard=microsoft.graph."
                                "timeZoneStandard'Iana')", headers=h).json()["value"]
    assert any(z["alias"] == "America/Los_Angeles" for z in iana)
    langs = graphsim_session.get(f"{g}/me/outlook/supportedLanguages", headers=h).json()["value"]
    assert {"locale": "en-US", "displayName": "English (United States)"} in langs


def test_mail_folders_messages_send_and_delta(graphsim, graphsim_session):
    s, h = _h(graphsim, graphsim_session)
    g = graphsim.graph_url
    folders = graphsim_session.get(f"{g}/me/mailFolders", headers=h).json()["value"]
    assert {"Inbox", "Sent Items", "Drafts", "Deleted Items"} <= {f["displayName"] for f in folders}
    r = graphsim_session.post(f"{g}/me/mailFolders/inbox/childFolders", headers=h, json={"displayName": "Sub"})
    assert r.status_code == 201
    assert graphsim_session.delete(f"{g}/me/mailFolders/{r.json()['id']}", headers=h).status_code == 204
    d = graphsim_session.get(f"{g}/me/mailFolders/inbox/messages/delta", headers=h).json()
    assert d["value"] == [] and "@odata.deltaLink" in d
    r = graphsim_session.post(f"{g}/me/sendMail", headers=h, json={"message": {
        "subject": "report", "body": {"contentType": "text", "content": "see attached"},
        "toRecipients": [{"emailAddress": {"address": "alex@contoso.test"}}],
        "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt",
                         "contentBytes": "aGVsbG8="}]}})
    assert r.status_code == 202
    sent = graphsim_session.get(f"{g}/me/mailFolders/sentitems/messages", headers=h).json()["value"]
    assert sent[0]["subject"] == "report" and sent[0]["hasAttachments"]
    mime = graphsim_session.get(f"{g}/me/messages/{sent[0]['id']}/$value", headers=h)
    assert b"Subject: report" in mime.content and b"a.txt" in mime.content
    assert graphsim_session.get(f"{g}/me/messages?$search=\"report\"&$filter=isRead eq true",
                                headers=h).status_code == 400
    assert len(graphsim_session.get(f"{g}/me/messages?$filter=isRead eq true", headers=h).json()["value"]) == 1
    graphsim.send_mail(s.other, {"subject": "to adele", "toRecipients": [{"emailAddress": {
        "address": "adele@contoso.test"}}]})
    d2 = graphsim_session.get(d["@odata.deltaLink"], headers=h).json()
    assert [m["subject"] for m in d2["value"]] == ["to adele"]
    assert graphsim_session.delete(f"{g}/me/messages/{d2['value'][0]['id']}", headers=h).status_code == 204
    d3 = graphsim_session.get(d2["@odata.deltaLink"], headers=h).json()
    assert d3["value"][0]["@removed"] == {"reason": "deleted"}
