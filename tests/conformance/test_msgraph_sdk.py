"""Microsoft's Graph SDK (msgraph-sdk, kiota, httpx) against the simulator, as an application would use it.

Every response is parsed by the SDK's v1.0 models and audited (tests/conformance/audit.py): no property
outside v1.0 and no enum value the models cannot read, across every call. The simulator runs with its
default (strictest) settings and an https notification endpoint, as Graph requires.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.attendee import Attendee
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.calendar import Calendar
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.models.importance import Importance
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.location import Location
from msgraph.generated.models.mail_folder import MailFolder
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.patterned_recurrence import PatternedRecurrence
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.recurrence_pattern import RecurrencePattern
from msgraph.generated.models.recurrence_pattern_type import RecurrencePatternType
from msgraph.generated.models.recurrence_range import RecurrenceRange
from msgraph.generated.models.recurrence_range_type import RecurrenceRangeType
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.users.item.calendar.get_schedule.get_schedule_post_request_body import (
    GetSchedulePostRequestBody,
)
from msgraph.generated.users.item.events.item.cancel.cancel_post_request_body import CancelPostRequestBody
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody
from msgraph.graph_request_adapter import options as SDK_OPTIONS
from msgraph_core import GraphClientFactory
from msgraph_core.requests.batch_request_content import BatchRequestContent

from graphsim import GraphSimulator
from graphsim.receiver import Receiver
from tests.conformance.audit import audit
from tests.graphsim.helpers import app_token, setup, user_token

pytestmark = pytest.mark.timeout(120)
SCOPES = ("User.Read", "User.ReadBasic.All", "Calendars.ReadWrite", "Mail.ReadWrite",
          "Mail.Send")


class _Token(AccessTokenProvider):
    def __init__(self, token: str) -> None:
        self.token = token

    async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
        return self.token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator(["127.0.0.1"])


@dataclass
class Harness:
    """A GraphServiceClient on the simulator that audits every response it parses."""

    sim: GraphSimulator
    token: str
    raw: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    audited: int = 0

    def client(self) -> GraphServiceClient:
        async def keep(response: httpx.Response) -> None:
            await response.aread()
            ctype = response.headers.get("content-type", "")
            self.raw.append(json.loads(response.content) if "json" in ctype and response.content else None)

        # The SDK's own middleware options (e.g. /users/me-token-to-replace -> /me); only TLS trust differs.
        http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(verify=self.sim.ca_file, trust_env=False, event_hooks={"response": [keep]}),
            options=SDK_OPTIONS)
        adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(_Token(self.token)), client=http)
        adapter.base_url = self.sim.graph_url
        return GraphServiceClient(request_adapter=adapter)

    async def call(self, label: str, awaitable: Any) -> Any:
        result = await awaitable
        if result is not None:
            self.problems += [f"{label}: {p}" for p in audit(result, self.raw[-1])]
            self.audited += 1
        return result


@pytest.fixture(scope="module")
def strict_sim() -> Iterator[GraphSimulator]:
    """A simulator with Graph's defaults (https notification URLs only, ...)."""
    sim = GraphSimulator(validation_timeout=2.0, retry_delays=(0.2,)).start()
    yield sim
    sim.stop()


@pytest.fixture
def https_receiver(strict_sim: GraphSimulator) -> Iterator[Receiver]:
    assert strict_sim.certs is not None
    r = Receiver(tls=strict_sim.certs.server_context())
    yield r
    r.close()


def _dt(t: dt.datetime) -> DateTimeTimeZone:
    return DateTimeTimeZone(date_time=t.strftime("%Y-%m-%dT%H:%M:%S"), time_zone="UTC")


def test_calendar_mail_and_directory_calls_parse_as_v1(strict_sim: GraphSimulator,
                                                        https_receiver: Receiver) -> None:
    sim = strict_sim
    sim.reset()
    session = requests.Session()
    session.verify, session.trust_env = sim.ca_file, False
    s = setup(sim, delegated_permissions=list(SCOPES))
    tok = user_token(sim, s, session, SCOPES)["access_token"]
    h = Harness(sim, tok)
    asyncio.run(_delegated_calls(h, sim, s, https_receiver))
    app_h = Harness(sim, app_token(sim, s, session))
    asyncio.run(_app_calls(app_h, s))
    assert h.problems + app_h.problems == []
    assert h.audited >= 30 and app_h.audited >= 2


async def _delegated_calls(h: Harness, sim: GraphSimulator, s: Any, receiver: Receiver) -> None:
    from msgraph.generated.users.item.calendar_view.calendar_view_request_builder import (
        CalendarViewRequestBuilder,
    )
    from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import DeltaRequestBuilder
    from msgraph.generated.users.item.events.item.instances.instances_request_builder import (
        InstancesRequestBuilder,
    )

    g = h.client()
    me = await h.call("me", g.me.get())
    assert me.id == s.user
    await h.call("user", g.users.by_user_id(s.user).get())

    # calendars
    cals = await h.call("calendars", g.me.calendars.get())
    assert any(c.is_default_calendar for c in cals.value)
    cal = await h.call("create calendar", g.me.calendars.post(Calendar(name="Projects")))
    await h.call("get calendar", g.me.calendars.by_calendar_id(cal.id).get())
    await h.call("patch calendar", g.me.calendars.by_calendar_id(cal.id).patch(Calendar(name="Projects 2")))
    await g.me.calendars.by_calendar_id(cal.id).delete()

    # events
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0, minute=0) + dt.timedelta(days=1)
    win = (t0 - dt.timedelta(days=1), t0 + dt.timedelta(days=10))
    ev = await h.call("create event", g.me.events.post(Event(
        subject="Review", start=_dt(t0), end=_dt(t0 + dt.timedelta(hours=1)), importance=Importance.High,
        body=ItemBody(content_type=BodyType.Html, content="<b>agenda</b>"),
        location=Location(display_name="Room 1"),
        attendees=[Attendee(email_address=EmailAddress(address="alex@contoso.test", name="Alex"))])))
    assert ev.body.content_type == BodyType.Html and ev.attendees[0].status is not None
    got = await h.call("get event", g.me.events.by_event_id(ev.id).get())
    assert got.subject == "Review"
    await h.call("patch event", g.me.events.by_event_id(ev.id).patch(Event(subject="Review 2")))
    series = await h.call("create series", g.me.events.post(Event(
        subject="Standup", start=_dt(t0 + dt.timedelta(hours=2)), end=_dt(t0 + dt.timedelta(hours=3)),
        recurrence=PatternedRecurrence(
            pattern=RecurrencePattern(type=RecurrencePatternType.Daily, interval=1),
            range=RecurrenceRange(type=RecurrenceRangeType.Numbered, start_date=t0.date(),
                                  number_of_occurrences=3)))))
    cfg: RequestConfiguration = RequestConfiguration()
    cfg.query_parameters = InstancesRequestBuilder.InstancesRequestBuilderGetQueryParameters(
        start_date_time=win[0].isoformat(), end_date_time=win[1].isoformat())
    insts = await h.call("instances", g.me.events.by_event_id(series.id).instances.get(cfg))
    assert len(insts.value) == 3 and all(i.original_start for i in insts.value)
    cv_cfg: RequestConfiguration = RequestConfiguration()
    cv_cfg.query_parameters = CalendarViewRequestBuilder.CalendarViewRequestBuilderGetQueryParameters(
        start_date_time=win[0].isoformat(), end_date_time=win[1].isoformat())
    view = await h.call("calendarView", g.me.calendar_view.get(cv_cfg))
    assert len(view.value) == 4

    # calendarView/delta: nextLink pages, deltaLink, then @removed after a delete
    d_cfg: RequestConfiguration = RequestConfiguration()
    d_cfg.query_parameters = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
        start_date_time=win[0].isoformat(), end_date_time=win[1].isoformat())
    d_cfg.headers.add("Prefer", "odata.maxpagesize=2")
    page = await h.call("delta", g.me.calendar_view.delta.get(d_cfg))
    seen = list(page.value)
    while page.odata_next_link:
        page = await h.call("delta next", g.me.calendar_view.delta.with_url(page.odata_next_link).get())
        seen += page.value
    assert len(seen) == 4 and page.odata_delta_link
    await g.me.events.by_event_id(ev.id).delete()
    page = await h.call("delta round 2", g.me.calendar_view.delta.with_url(page.odata_delta_link).get())
    removed = [e for e in page.value if "@removed" in (e.additional_data or {})]
    assert [e.id for e in removed] == [ev.id]

    # cancel (organizer) on a fresh event
    ev2 = await h.call("create event 2", g.me.events.post(Event(
        subject="Cancel me", start=_dt(t0), end=_dt(t0 + dt.timedelta(minutes=30)),
        attendees=[Attendee(email_address=EmailAddress(address="alex@contoso.test"))])))
    await g.me.events.by_event_id(ev2.id).cancel.post(CancelPostRequestBody(comment="sorry"))

    # schedule, time zones, languages
    sched = await h.call("getSchedule", g.me.calendar.get_schedule.post(GetSchedulePostRequestBody(
        schedules=["adele@contoso.test", "nobody@contoso.test"], start_time=_dt(win[0]), end_time=_dt(win[1]),
        availability_view_interval=60)))
    assert sched.value[0].schedule_items
    await h.call("supportedTimeZones", g.me.outlook.supported_time_zones.get())
    await h.call("supportedTimeZones(Iana)",
                 g.me.outlook.supported_time_zones_with_time_zone_standard("Iana").get())
    langs = await h.call("supportedLanguages", g.me.outlook.supported_languages.get())
    assert langs.value

    # mail folders, sendMail, messages, messages/delta
    folders = await h.call("mailFolders", g.me.mail_folders.get())
    assert folders.value
    await h.call("inbox", g.me.mail_folders.by_mail_folder_id("inbox").get())
    child = await h.call("create folder", g.me.mail_folders.post(MailFolder(display_name="Archive 2")))
    await h.call("child folders", g.me.mail_folders.by_mail_folder_id(child.id).child_folders.get())
    await g.me.send_mail.post(SendMailPostRequestBody(message=Message(
        subject="Hello", body=ItemBody(content_type=BodyType.Text, content="hi"),
        to_recipients=[Recipient(email_address=EmailAddress(address="adele@contoso.test"))]),
        save_to_sent_items=True))
    msgs = await h.call("messages", g.me.messages.get())
    assert len(msgs.value) == 2
    mid = msgs.value[0].id
    await h.call("get message", g.me.messages.by_message_id(mid).get())
    await h.call("patch message", g.me.messages.by_message_id(mid).patch(Message(is_read=True)))
    md = await h.call("messages delta", g.me.mail_folders.by_mail_folder_id("inbox").messages.delta.get())
    assert md.odata_delta_link
    await g.me.messages.by_message_id(mid).delete()

    # subscriptions (https endpoint: the strict default)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    sub = await h.call("create subscription", g.subscriptions.post(Subscription(
        change_type="created,updated,deleted", notification_url=receiver.url, resource="me/events",
        expiration_date_time=expires, client_state="s" * 20)))
    await h.call("list subscriptions", g.subscriptions.get())
    await h.call("get subscription", g.subscriptions.by_subscription_id(sub.id).get())
    await h.call("renew subscription", g.subscriptions.by_subscription_id(sub.id).patch(
        Subscription(expiration_date_time=expires + dt.timedelta(hours=1))))
    await g.me.events.post(Event(subject="Ping", start=_dt(t0), end=_dt(t0 + dt.timedelta(minutes=5))))
    note = receiver.wait_for(1)[0]
    assert note["subscriptionId"] == sub.id and note["resourceData"]["@odata.etag"].startswith('W/"')
    await g.subscriptions.by_subscription_id(sub.id).delete()

    # $batch through the SDK's batch support
    batch = BatchRequestContent({})
    batch.add_request_information(g.me.to_get_request_information(), "1")
    batch.add_request_information(g.me.calendars.to_get_request_information(), "2")
    result = await g.batch.post(batch_request_content=batch)
    assert {r.status for r in result.responses.values()} == {200}

    # errors parse as ODataError
    with pytest.raises(ODataError) as err:
        await g.me.events.by_event_id("AAMkAGI2missing").get()
    assert err.value.response_status_code == 404 and err.value.error.code == "ErrorItemNotFound"


async def _app_calls(h: Harness, s: Any) -> None:
    g = h.client()
    users = await h.call("users", g.users.get())
    assert {u.id for u in users.value} == {s.user, s.other}
    await h.call("user events", g.users.by_user_id(s.other).events.get())


def test_receiver_over_http_is_refused_by_default(strict_sim: GraphSimulator) -> None:
    sim = strict_sim
    sim.reset()
    session = requests.Session()
    session.verify, session.trust_env = sim.ca_file, False
    s = setup(sim)
    tok = user_token(sim, s, session)["access_token"]
    plain = Receiver()
    try:
        r = session.post(f"{sim.graph_url}/subscriptions", headers={"Authorization": f"Bearer {tok}"}, json={
            "changeType": "created", "notificationUrl": plain.url, "resource": "me/events",
            "expirationDateTime": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()})
    finally:
        plain.close()
    assert r.status_code == 400 and plain.validations == []


def test_msal_flows_against_the_default_simulator(strict_sim: GraphSimulator) -> None:
    """MSAL's auth code + PKCE, refresh, client credentials, and the errors it must surface."""
    import msal

    from tests.graphsim.helpers import consent, msal_app

    sim = strict_sim
    sim.reset()
    session = requests.Session()
    session.verify, session.trust_env = sim.ca_file, False
    s = setup(sim)
    app = msal_app(sim, s, session)
    flow, q = consent(app, session)
    assert flow["code_verifier"] and "code_challenge=" in flow["auth_uri"]
    first = app.acquire_token_by_auth_code_flow(flow, q)
    assert first["id_token_claims"]["auth_time"] and first["refresh_token"]
    assert "error" in app.acquire_token_by_auth_code_flow(flow, q)           # a code redeems once
    again = app.acquire_token_by_refresh_token(first["refresh_token"], ["Calendars.ReadWrite"])
    assert again["access_token"] != first["access_token"]
    wider = app.acquire_token_by_refresh_token(first["refresh_token"], ["Files.Read"])
    assert wider["error"] == "invalid_grant" and 65001 in wider["error_codes"]
    assert app.acquire_token_for_client(["https://graph.microsoft.com/.default"])["token_type"] == "Bearer"
    bad = msal.ConfidentialClientApplication(s.client_id, client_credential="wrong", authority=sim.authority(s.tenant),
                                             instance_discovery=False, validate_authority=False,
                                             http_client=session)
    assert bad.acquire_token_for_client(["https://graph.microsoft.com/.default"])["error"] == "invalid_client"
