"""The simulator is at least as strict as Graph: what Graph rejects is rejected here with Graph's status
and code, what Graph accepts (and how it normalises it) is accepted here. One test per item of issue 13.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.parse

import msal
import pytest

from graphsim import GraphSimulator
from graphsim.receiver import Receiver
from tests.graphsim.helpers import REDIRECT, bearer, consent, msal_app, setup, slot, user_token

SCOPES = ("Calendars.ReadWrite", "Mail.ReadWrite", "Mail.Send")


@pytest.fixture
def api(graphsim, graphsim_session):
    """(session, graph url, headers, setup) for a signed-in user."""
    s = setup(graphsim)
    h = bearer(user_token(graphsim, s, graphsim_session, SCOPES)["access_token"])
    return graphsim_session, graphsim.graph_url, h, s


def _event(api, **extra):
    session, g, h, _ = api
    r = session.post(f"{g}/me/events", headers=h, json={"subject": "x", **slot("2030-01-07", 9), **extra})
    return r


def _code(r):
    return r.status_code, r.json()["error"]["code"]


# -- accepted here, rejected by Graph ------------------------------------------------------------------
@pytest.mark.parametrize("body", [{"importance": "urgent"}, {"showAs": "banana"},
                                  {"reminderMinutesBeforeStart": "soon"}, {"categories": "x"},
                                  {"isAllDay": "yes"}, {"body": "text"}, {"uid": "040000008200E0"},
                                  {"attendees": [{"emailAddress": {"address": "a@b.test"}, "type": "boss"}]}])
def test_invalid_event_bodies_are_rejected_on_create(api, body):
    assert _code(_event(api, **body)) == (400, "RequestBodyRead")


@pytest.mark.parametrize("body", [{"showAs": "banana"}, {"reminderMinutesBeforeStart": "soon"},
                                  {"categories": "x"}, {"notAProperty": 1}, {"Subject": "case matters"}])
def test_invalid_event_bodies_are_rejected_on_patch(api, body):
    session, g, h, _ = api
    ev = _event(api).json()
    r = session.patch(f"{g}/me/events/{ev['id']}", headers=h, json=body)
    assert _code(r) == (400, "RequestBodyRead")
    assert session.get(f"{g}/me/events/{ev['id']}", headers=h).json()["lastModifiedDateTime"] == \
        ev["lastModifiedDateTime"]


def test_invalid_bodies_for_calendars_messages_and_subscriptions(api, graphsim):
    session, g, h, s = api
    assert _code(session.post(f"{g}/me/calendars", headers=h, json={"name": "c", "color": "pink"})) == \
        (400, "RequestBodyRead")
    graphsim.send_mail(s.user, {"subject": "m", "toRecipients": [{"emailAddress": {"address":
                                                                                    "adele@contoso.test"}}]})
    mid = session.get(f"{g}/me/messages", headers=h).json()["value"][0]["id"]
    assert _code(session.patch(f"{g}/me/messages/{mid}", headers=h, json={"isRead": "yes"})) == \
        (400, "RequestBodyRead")
    assert _code(session.post(f"{g}/subscriptions", headers=h, json={"changeType": "created",
                 "resource": "me/events", "notificationUrl": "https://x.test", "expirationDateTime": "soon",
                 "clientState": "s"})) == (400, "RequestBodyRead")


def test_stored_items_are_normalised_as_graph_does(api):
    r = _event(api, body={"contentType": "HTML", "content": "<b>hi</b>"}, importance="HIGH",
               location={"displayName": "Room 1"},
               attendees=[{"emailAddress": {"address": "alex@contoso.test"}, "type": "Required"}])
    ev = r.json()
    assert r.status_code == 201
    assert ev["body"]["contentType"] == "html" and ev["body"]["content"].startswith("<html>")
    assert ev["body"]["content"].endswith("<b>hi</b></body></html>")
    assert ev["importance"] == "high"
    assert ev["attendees"][0]["type"] == "required"
    assert ev["attendees"][0]["status"] == {"response": "none", "time": "0001-01-01T00:00:00Z"}
    assert ev["location"]["uniqueId"] == "Room 1" and ev["location"]["uniqueIdType"] == "private"


def test_stale_if_match_is_412(api):
    session, g, h, _ = api
    ev = _event(api).json()
    fresh = session.patch(f"{g}/me/events/{ev['id']}", headers={**h, "If-Match": ev["@odata.etag"]},
                          json={"subject": "y"})
    assert fresh.status_code == 200
    stale = {**h, "If-Match": ev["@odata.etag"]}
    assert _code(session.patch(f"{g}/me/events/{ev['id']}", headers=stale, json={"subject": "z"})) == \
        (412, "ErrorIrresolvableConflict")
    assert _code(session.delete(f"{g}/me/events/{ev['id']}", headers=stale)) == (412, "ErrorIrresolvableConflict")
    assert session.delete(f"{g}/me/events/{ev['id']}", headers={**h, "If-Match": fresh.json()["@odata.etag"]}
                          ).status_code == 204


def test_query_options_are_applied_or_rejected(api):
    session, g, h, _ = api
    for subject in ("b", "a", "c"):
        _event(api, subject=subject)
    r = session.get(f"{g}/me/events?$filter=subject eq 'a' or subject eq 'c'&$orderby=subject desc&$count=true",
                    headers=h).json()
    assert [e["subject"] for e in r["value"]] == ["c", "a"] and r["@odata.count"] == 2
    r = session.get(f"{g}/me/calendars?$filter=startswith(name,'Cal')", headers=h).json()
    assert [c["name"] for c in r["value"]] == ["Calendar"]
    assert _code(session.get(f"{g}/me/events?$filter=nope eq 1", headers=h)) == (400, "BadRequest")
    assert _code(session.get(f"{g}/me/events?$filter=any(x)", headers=h)) == (400, "ErrorInvalidUrlQueryFilter")
    assert _code(session.get(f"{g}/me/events?$orderby=nope", headers=h)) == (400, "BadRequest")
    inbox = session.get(f"{g}/me/mailFolders/inbox?$select=displayName", headers=h).json()
    assert set(inbox) - {"@odata.context", "@odata.etag"} == {"id", "displayName"}
    assert _code(session.get(f"{g}/me/mailFolders/inbox?$select=sizeInBytes", headers=h)) == (400, "BadRequest")


def _subscription(session, g, h, url, **extra):
    return session.post(f"{g}/subscriptions", headers=h, json={
        "changeType": "created,updated", "notificationUrl": url, "resource": "me/events", "clientState": "s",
        "expirationDateTime": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(), **extra})


def test_http_notification_url_and_resource_data_without_certificate(graphsim_session):
    with GraphSimulator(validation_timeout=1.0) as sim:      # Graph's defaults
        session = graphsim_session
        session.verify = sim.ca_file
        s = setup(sim)
        h = bearer(user_token(sim, s, session)["access_token"])
        plain, tls = Receiver(), Receiver(tls=sim.certs.server_context())
        try:
            assert _code(_subscription(session, sim.graph_url, h, plain.url)) == (400, "InvalidRequest")
            assert plain.validations == []
            assert _code(_subscription(session, sim.graph_url, h, tls.url, includeResourceData=True)) == \
                (400, "ValidationError")
            assert _subscription(session, sim.graph_url, h, tls.url).status_code == 201
        finally:
            plain.close()
            tls.close()


def test_unconsented_scopes_fail_at_authorize_and_refresh(graphsim, graphsim_session):
    s = setup(graphsim, delegated_permissions=["Calendars.Read"])
    app = msal_app(graphsim, s, graphsim_session)
    flow = app.initiate_auth_code_flow(["Calendars.ReadWrite"], redirect_uri=REDIRECT)
    r = graphsim_session.get(flow["auth_uri"], allow_redirects=False)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["Location"]).query))
    assert q["error"] == "consent_required" and q["error_description"].startswith("AADSTS65001")
    flow, q = consent(app, graphsim_session, ("Calendars.Read",))
    result = app.acquire_token_by_auth_code_flow(flow, q)
    assert "access_token" in result
    wider = app.acquire_token_by_refresh_token(result["refresh_token"], ["Calendars.ReadWrite"])
    assert wider["error"] == "invalid_grant" and 65001 in wider["error_codes"]


# -- shapes ----------------------------------------------------------------------------------------------
def test_notification_shapes(graphsim, graphsim_session, webhook_receiver):
    s = setup(graphsim)
    session, g = graphsim_session, graphsim.graph_url
    h = bearer(user_token(graphsim, s, session)["access_token"])
    sub = _subscription(session, g, h, webhook_receiver.url)
    assert sub.status_code == 201
    ev = session.post(f"{g}/me/events", headers=h, json={"subject": "n", **slot("2030-01-07", 9)}).json()
    note = webhook_receiver.wait_for(1)[0]
    assert note["resourceData"]["id"] == ev["id"]
    assert note["resourceData"]["@odata.etag"] != ev["@odata.etag"]     # never usable as If-Match
    assert note["subscriptionExpirationDateTime"].endswith("+00:00")
    assert dt.datetime.fromisoformat(note["subscriptionExpirationDateTime"][:26] + "+00:00")
    token = webhook_receiver.validations[0]
    assert " " in token and "%20" not in token


def test_validation_token_is_plus_encoded(graphsim, graphsim_session):
    seen = []
    receiver = Receiver()
    original = receiver.httpd.RequestHandlerClass.do_POST

    def spy(handler):
        seen.append(handler.path)
        original(handler)
    receiver.httpd.RequestHandlerClass.do_POST = spy
    try:
        s = setup(graphsim)
        h = bearer(user_token(graphsim, s, graphsim_session)["access_token"])
        assert _subscription(graphsim_session, graphsim.graph_url, h, receiver.url).status_code == 201
    finally:
        receiver.close()
    assert "validationToken=Validation%3A+Testing+client" in seen[0]


def test_response_shapes(api, graphsim):
    session, g, h, s = api
    series = _event(api, recurrence={"pattern": {"type": "daily", "interval": 1},
                                     "range": {"type": "numbered", "startDate": "2030-01-07",
                                               "numberOfOccurrences": 3}}).json()
    assert "@odata.context" in series and "uid" not in series
    win = "startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z"
    inst = session.get(f"{g}/me/events/{series['id']}/instances?{win}", headers=h).json()
    assert "@odata.context" in inst
    assert [i["originalStart"] for i in inst["value"]] == ["2030-01-07T09:00:00Z", "2030-01-08T09:00:00Z",
                                                           "2030-01-09T09:00:00Z"]
    assert {i["@odata.etag"] for i in inst["value"]} == {series["@odata.etag"]}
    one = session.get(f"{g}/me/events/{series['id']}", headers=h).json()
    assert one["@odata.context"].endswith("/events/$entity")
    graphsim.send_mail(s.user, {"subject": "m", "toRecipients": [{"emailAddress": {"address":
                                                                                    "adele@contoso.test"}}]})
    msg = session.get(f"{g}/me/messages", headers=h).json()["value"][0]
    assert dt.datetime.strptime(msg["receivedDateTime"], "%Y-%m-%dT%H:%M:%SZ")
    folder = session.get(f"{g}/me/mailFolders/inbox", headers=h).json()
    assert "sizeInBytes" not in folder and "@odata.context" in folder
    sched = session.post(f"{g}/me/calendar/getSchedule", headers=h, json={
        "schedules": ["adele@contoso.test"], "startTime": {"dateTime": "2030-01-07T00:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2030-01-08T00:00:00", "timeZone": "UTC"}}).json()
    assert set(sched["value"][0]["scheduleItems"][0]) == {"isPrivate", "status", "subject", "location", "start",
                                                           "end"}


def test_error_shapes(api, graphsim):
    session, g, h, _ = api
    r = session.get(f"{g}/me", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer ")
    r = session.get(f"{g}/me/calendarView/delta?$deltatoken=gone", headers=h)
    assert _code(r) == (410, "syncStateNotFound")
    graphsim.throttle.concurrency = 0
    try:
        r = session.get(f"{g}/me/events", headers=h)
    finally:
        graphsim.throttle.concurrency = 4
    assert r.status_code == 429 and r.json()["error"]["innerError"]["code"] == "MailboxConcurrency"
    assert {"date", "request-id", "client-request-id"} <= set(r.json()["error"]["innerError"])


def test_id_token_carries_auth_time(graphsim, graphsim_session):
    s = setup(graphsim)
    app = msal_app(graphsim, s, graphsim_session)
    flow, q = consent(app, graphsim_session)
    result = app.acquire_token_by_auth_code_flow(flow, q)
    claims = json.loads(base64.urlsafe_b64decode(result["id_token"].split(".")[1] + "=="))
    assert claims["auth_time"] <= claims["iat"]
    assert isinstance(app, msal.ConfidentialClientApplication)


# -- rejected here, accepted by Graph ------------------------------------------------------------------
def test_function_call_parentheses_are_accepted(api):
    session, g, h, _ = api
    win = "startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z"
    assert session.get(f"{g}/me/calendarView/delta()?{win}", headers=h).status_code == 200
    assert session.get(f"{g}/me/outlook/supportedLanguages()", headers=h).status_code == 200
    assert session.get(f"{g}/me/mailFolders/inbox/messages/delta()", headers=h).status_code == 200


def test_action_parameters_are_case_insensitive(api):
    session, g, h, _ = api
    r = session.post(f"{g}/me/sendMail", headers=h, json={
        "Message": {"subject": "Pascal", "toRecipients": [{"emailAddress": {"address": "adele@contoso.test"}}]},
        "SaveToSentItems": False})
    assert r.status_code == 202
    r = session.post(f"{g}/me/calendar/getSchedule", headers=h, json={
        "Schedules": ["adele@contoso.test"], "StartTime": {"dateTime": "2030-01-07T00:00:00", "timeZone": "UTC"},
        "EndTime": {"dateTime": "2030-01-08T00:00:00", "timeZone": "UTC"}, "AvailabilityViewInterval": 60})
    assert r.status_code == 200 and len(r.json()["value"][0]["availabilityView"]) == 24
    ev = _event(api).json()
    assert session.post(f"{g}/me/events/{ev['id']}/cancel", headers=h, json={"Comment": "x"}).status_code == 202
    assert _code(session.post(f"{g}/me/sendMail", headers=h, json={"Mesage": {}})) == (400, "BadRequest")


def test_single_value_extended_properties_on_create(api):
    r = _event(api, singleValueExtendedProperties=[{"id": "String {66f5a359-4659-4830-9070-00047ec6ac6e} "
                                                          "Name Color", "value": "Green"}])
    assert r.status_code == 201
