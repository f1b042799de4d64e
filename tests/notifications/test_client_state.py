"""clientState: derived by HMAC from the notification URL, checked in constant time."""

from urllib.parse import parse_qs, urlsplit

import pytest

from shared.notifications import client_state


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def settings(app_env):
    return app_env(APP_BASE_URL="https://calendar.example.com")


def test_issued_state_verifies_from_the_url_alone(settings):
    target = client_state.issue(client_state.SYNC, "user-1")
    assert target.notification_url.startswith("https://calendar.example.com/api/graph/notifications?")
    assert target.lifecycle_notification_url.startswith("https://calendar.example.com/api/graph/lifecycle?")
    assert len(target.client_state) <= 128
    query = _query(target.notification_url)
    assert query == _query(target.lifecycle_notification_url) == {"sid": target.sid, "kid": target.kid}
    routing = client_state.verify(query["sid"], query["kid"], target.client_state)
    assert routing == client_state.Routing("sync", "user-1")


def test_wrong_state_other_user_or_unknown_key_are_refused(settings):
    target = client_state.issue(client_state.SYNC, "user-1")
    other = client_state.issue(client_state.SYNC, "user-2")
    query = _query(target.notification_url)
    tampered = target.client_state[:-1] + ("B" if target.client_state.endswith("A") else "A")  # 1 in 16 ends in A
    assert client_state.verify(query["sid"], query["kid"], tampered) is None
    assert client_state.verify(query["sid"], query["kid"], other.client_state) is None
    assert client_state.verify(query["sid"], "ffffffff", target.client_state) is None
    assert client_state.verify(query["sid"], "../etc", target.client_state) is None
    assert client_state.verify(query["sid"], query["kid"], None) is None
    assert client_state.verify(None, query["kid"], target.client_state) is None
    assert client_state.verify(query["sid"], query["kid"], "x" * 500) is None


def test_old_keys_keep_verifying_after_rotation(settings):
    before = client_state.issue(client_state.OUTBOUND, "mail-watch")
    new_kid = client_state.rotate_key()
    after = client_state.issue(client_state.OUTBOUND, "mail-watch")
    assert _query(after.notification_url)["kid"] == new_kid
    for target in (before, after):
        query = _query(target.notification_url)
        assert client_state.verify(query["sid"], query["kid"], target.client_state).kind == "out"


def test_the_key_survives_a_process_restart(settings):
    from shared import runtime

    target = client_state.issue(client_state.SYNC, "user-1")
    runtime.reset()  # a new worker process: caches gone, secret store on disk remains
    query = _query(target.notification_url)
    assert client_state.verify(query["sid"], query["kid"], target.client_state) is not None


def test_calendar_routing_roundtrips_and_reads_back_from_a_listed_url(settings):
    target = client_state.issue(client_state.SYNC, "user-1", settings, calendar_id="AAMk/cal+1==")
    routing = client_state.verify(target.sid, target.kid, target.client_state)
    assert (routing.kind, routing.value, routing.calendar_id) == (client_state.SYNC, "user-1", "AAMk/cal+1==")
    assert client_state.routing_of_url(target.notification_url) == routing
    assert client_state.routing_of_url("https://elsewhere.example/hook?x=1") is None
    assert client_state.routing_of_url(None) is None
    plain = client_state.issue(client_state.SYNC, "user-1", settings)
    assert client_state.verify(plain.sid, plain.kid, plain.client_state).calendar_id is None
    with pytest.raises(ValueError):
        client_state.encode_sid(client_state.OUTBOUND, "label", "cal")
