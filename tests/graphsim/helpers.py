"""Shared set-up for simulator tests: a tenant, users, an app and tokens obtained through real MSAL."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import msal
import requests

from graphsim import GraphSimulator

REDIRECT = "http://localhost:7071/api/oauth/callback"


@dataclass
class Setup:
    tenant: str
    client_id: str
    secret: str
    user: str
    other: str


def setup(sim: GraphSimulator, **app_kwargs: object) -> Setup:
    t = sim.create_tenant()
    cid, secret = sim.register_app(t, redirect_uris=[REDIRECT], **app_kwargs)  # type: ignore[arg-type]
    u = sim.create_user(t, "Adele Vance", "adele@contoso.test")
    o = sim.create_user(t, "Alex Wilber", "alex@contoso.test")
    sim.set_consent_user(t, u)
    return Setup(t, cid, secret, u, o)


def msal_app(sim: GraphSimulator, s: Setup, session: requests.Session,
             tenant: str | None = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        s.client_id, client_credential=s.secret, authority=sim.authority(tenant or s.tenant),
        instance_discovery=False, validate_authority=False, http_client=session)


def consent(app: msal.ConfidentialClientApplication, session: requests.Session,
            scopes: tuple[str, ...] = ("Calendars.ReadWrite",)) -> tuple[dict, dict[str, str]]:
    """Start an auth code flow and follow its authorize URL: (flow, query of the redirect back)."""
    flow = app.initiate_auth_code_flow(list(scopes), redirect_uri=REDIRECT)
    r = session.get(flow["auth_uri"], allow_redirects=False)
    assert r.status_code == 302, r.text
    return flow, dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["Location"]).query))


def user_token(sim: GraphSimulator, s: Setup, session: requests.Session,
               scopes: tuple[str, ...] = ("Calendars.ReadWrite",)) -> dict:
    app = msal_app(sim, s, session)
    flow, q = consent(app, session, scopes)
    result = app.acquire_token_by_auth_code_flow(flow, q)
    assert "access_token" in result, result
    return result


def app_token(sim: GraphSimulator, s: Setup, session: requests.Session) -> str:
    result = msal_app(sim, s, session).acquire_token_for_client(["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    return result["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def slot(day: str, hour: int, minutes: int = 60, tz: str = "UTC") -> dict:
    import datetime as dt
    s = dt.datetime.fromisoformat(day).replace(hour=hour)
    e = s + dt.timedelta(minutes=minutes)
    return {"start": {"dateTime": s.isoformat(), "timeZone": tz}, "end": {"dateTime": e.isoformat(), "timeZone": tz}}
