"""Acceptance 3: subscription handshake, limits, notification shape, lifecycle events, expiry."""

from __future__ import annotations

import datetime as dt

import pytest

from graphsim.receiver import Receiver
from tests.graphsim.helpers import app_token, bearer, setup, slot, user_token


def _exp(minutes: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _sub(url: str, resource: str = "me/events", minutes: int = 60, **extra: object) -> dict:
    return {"changeType": "created,updated,deleted", "notificationUrl": url, "resource": resource,
            "expirationDateTime": _exp(minutes), "clientState": "s3cret", **extra}


def test_handshake_and_documented_notifications(graphsim, graphsim_session, webhook_receiver):
    s = setup(graphsim)
    h = bearer(user_token(graphsim, s, graphsim_session)["access_token"])
    url = webhook_receiver.url + "?tenant=abc"
    r = graphsim_session.post(f"{graphsim.graph_url}/subscriptions", headers=h,
                              json=_sub(url, lifecycleNotificationUrl=url))
    assert r.status_code == 201, r.text
    sub = r.json()
    assert len(webhook_receiver.validations) == 2 and sub["clientState"] == "s3cret"
    assert sub["expirationDateTime"].endswith("Z") and sub["latestSupportedTlsVersion"] == "v1_2"

    ev = graphsim.create_event(s.user, subject="a", **slot("2024-05-01", 9))
    graphsim.update_event(s.user, ev["id"], subject="b")
    graphsim.delete_event(s.user, ev["id"])
    other_cal = graphsim.create_calendar(s.user, "Other")
    graphsim.create_event(s.user, calendar_id=other_cal["id"], **slot("2024-05-01", 9))  # not me/events
    assert graphsim.flush_notifications(5)
    got = webhook_receiver.wait_for(3)
    assert [n["changeType"] for n in got] == ["created", "updated", "deleted"]
    n = got[0]
    assert n["subscriptionId"] == sub["id"] and n["clientState"] == "s3cret" and n["tenantId"] == s.tenant
    assert n["resource"] == f"Users/{s.user}/Events/{ev['id']}"
    assert n["resourceData"]["id"] == ev["id"] and n["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event"
    assert n["resourceData"]["@odata.etag"].startswith('W/"')
    assert graphsim.deliveries[-1]["url"] == url   # posted to the URL exactly, query string kept

    graphsim.send_lifecycle(sub["id"], "reauthorizationRequired")
    graphsim.remove_subscription(sub["id"])
    assert graphsim.flush_notifications(5)
    life = [i for i in webhook_receiver.wait_for(5) if "lifecycleEvent" in i]
    assert [i["lifecycleEvent"] for i in life] == ["reauthorizationRequired", "subscriptionRemoved"]
    r = graphsim_session.get(f"{graphsim.graph_url}/subscriptions/{sub['id']}", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"


@pytest.mark.parametrize("mode", ["wrong-echo", "slow", "error"])
def test_failed_handshake_rejects_creation(graphsim, graphsim_session, mode):
    s = setup(graphsim)
    h = bearer(user_token(graphsim, s, graphsim_session)["access_token"])
    recv = Receiver(mode=mode, delay_s=1.5)   # fixture's simulator uses a 1 s validation limit
    try:
        r = graphsim_session.post(f"{graphsim.graph_url}/subscriptions", headers=h, json=_sub(recv.url))
    finally:
        recv.close()
    assert r.status_code == 400
    msg = r.json()["error"]["message"]
    assert ("timed out" in msg) if mode == "slow" else msg.startswith("Subscription validation request failed")


def test_limits_renew_reauthorize_list_delete_expire(graphsim, graphsim_session, webhook_receiver):
    s = setup(graphsim)
    h = bearer(app_token(graphsim, s, graphsim_session))
    api = f"{graphsim.graph_url}/subscriptions"
    r = graphsim_session.post(api, headers=h, json=_sub(webhook_receiver.url, f"users/{s.user}/events", 10081))
    assert r.status_code == 400 and r.json()["error"] == {**r.json()["error"], "code": "ExtensionError",
                                                          "message": "Subscription expiration can only be 10080 "
                                                                     "minutes in the future."}
    r = graphsim_session.post(api, headers=h, json=_sub(webhook_receiver.url, f"users/{s.user}/events",
                                                        clientState="x" * 129))
    assert r.status_code == 400
    r = graphsim_session.post(api, headers=h, json=_sub(webhook_receiver.url,
                                                        f"users/{s.user}/mailFolders('inbox')/messages"))
    assert r.status_code == 201
    mail_sub = r.json()
    r = graphsim_session.post(api, headers=h, json=_sub(webhook_receiver.url, f"users/{s.user}/events"))
    sub = r.json()
    r = graphsim_session.patch(f"{api}/{sub['id']}", headers=h, json={"expirationDateTime": _exp(4000)})
    assert r.status_code == 200 and r.json()["expirationDateTime"][:16] == _exp(4000)[:16]
    assert graphsim_session.post(f"{api}/{sub['id']}/reauthorize", headers=h).status_code == 204
    listed = graphsim_session.get(api, headers=h).json()["value"]
    assert {x["id"] for x in listed} == {sub["id"], mail_sub["id"]} and all(x["clientState"] is None for x in listed)
    graphsim.send_mail(s.other, {"subject": "hi", "toRecipients": [{"emailAddress": {
        "address": "adele@contoso.test"}}], "body": {"contentType": "text", "content": "hello"}})
    assert graphsim.flush_notifications(5)
    got = webhook_receiver.wait_for(1)
    assert got[0]["resourceData"]["@odata.type"] == "#Microsoft.Graph.Message"
    assert graphsim_session.delete(f"{api}/{mail_sub['id']}", headers=h).status_code == 204
    graphsim.expire_subscription(sub["id"])
    r = graphsim_session.patch(f"{api}/{sub['id']}", headers=h, json={"expirationDateTime": _exp(60)})
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"


def test_delivery_retries_and_faults(graphsim, graphsim_session):
    s = setup(graphsim)
    h = bearer(user_token(graphsim, s, graphsim_session)["access_token"])
    recv = Receiver(status=500)
    try:
        r = graphsim_session.post(f"{graphsim.graph_url}/subscriptions", headers=h, json=_sub(recv.url))
        assert r.status_code == 201
        graphsim.create_event(s.user, **slot("2024-05-01", 9))
        assert graphsim.flush_notifications(5)
        attempts = [d for d in graphsim.deliveries if d["url"] == recv.url]
        assert [d["attempt"] for d in attempts] == [0, 1, 2] and not any(d["ok"] for d in attempts)
        recv.status = 202
        graphsim.faults.set(duplicate_notifications=1.0, seed=1)
        graphsim.create_event(s.user, **slot("2024-05-02", 9))
        assert graphsim.flush_notifications(5)
        assert len(recv.wait_for(5)) >= 4   # 3 failed-but-received + 2 duplicates
        graphsim.faults.set(drop_notifications=1.0)
        before = len(recv.notifications)
        graphsim.create_event(s.user, **slot("2024-05-03", 9))
        assert graphsim.flush_notifications(5) and len(recv.notifications) == before
    finally:
        recv.close()


def test_calendar_subscription_notifies_for_that_calendar_only(graphsim, graphsim_session, webhook_receiver):
    """`calendars/{id}/events` notifies changes of that calendar; `me/events` those of the default one only."""
    import urllib.parse

    s = setup(graphsim)
    h = bearer(user_token(graphsim, s, graphsim_session)["access_token"])
    team = graphsim.create_calendar(s.user, "Team")["id"]
    api = f"{graphsim.graph_url}/subscriptions"
    r = graphsim_session.post(api, headers=h, json=_sub(webhook_receiver.url,
                                                        f"me/calendars/{urllib.parse.quote(team, safe='=')}/events"))
    assert r.status_code == 201, r.text
    graphsim.create_event(s.user, **slot("2024-05-01", 9))                       # default calendar: not notified
    in_team = graphsim.create_event(s.user, calendar_id=team, **slot("2024-05-01", 10))
    assert graphsim.flush_notifications(5)
    got = webhook_receiver.wait_for(1)
    assert [n["resourceData"]["id"] for n in got] == [in_team["id"]]


def test_delegated_token_lists_only_its_own_subscriptions(graphsim, graphsim_session, webhook_receiver):
    s = setup(graphsim)
    user_h = bearer(user_token(graphsim, s, graphsim_session)["access_token"])
    app_h = bearer(app_token(graphsim, s, graphsim_session))
    api = f"{graphsim.graph_url}/subscriptions"
    mine = graphsim_session.post(api, headers=user_h, json=_sub(webhook_receiver.url)).json()
    other = graphsim_session.post(api, headers=app_h, json=_sub(webhook_receiver.url,
                                                                f"users/{s.other}/events")).json()
    assert {x["id"] for x in graphsim_session.get(api, headers=user_h).json()["value"]} == {mine["id"]}
    assert {x["id"] for x in graphsim_session.get(api, headers=app_h).json()["value"]} == {mine["id"], other["id"]}


def test_lifetime_limit_defaults_to_10080_minutes_and_is_configurable(graphsim, graphsim_session,
                                                                     webhook_receiver, monkeypatch):
    from graphsim.subscriptions import DEFAULT_LIFETIME_LIMIT_MINUTES

    assert DEFAULT_LIFETIME_LIMIT_MINUTES == 10080 == graphsim.subscriptions.lifetime_limit_minutes
    s = setup(graphsim)
    h = bearer(app_token(graphsim, s, graphsim_session))
    api = f"{graphsim.graph_url}/subscriptions"
    ok = graphsim_session.post(api, headers=h, json=_sub(webhook_receiver.url, f"users/{s.user}/events", 10079))
    assert ok.status_code == 201
    monkeypatch.setattr(graphsim.subscriptions, "lifetime_limit_minutes", 4230)
    r = graphsim_session.post(api, headers=h, json=_sub(webhook_receiver.url, f"users/{s.user}/events", 4231))
    assert r.status_code == 400 and "can only be 4230 minutes" in r.json()["error"]["message"]
