"""A seeded demo tenant for `python -m graphsim --demo` and local runs of the product."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .simulator import GraphSimulator

DEMO_REDIRECT = "http://127.0.0.1:7071/api/oauth/callback"


def seed(sim: GraphSimulator) -> dict[str, Any]:
    """Two users; Adele with three calendars, Alex with two; single and recurring events; one app."""
    tenant = sim.create_tenant(domain="contoso.onmicrosoft.com")
    client_id, secret = sim.register_app(tenant, redirect_uris=[DEMO_REDIRECT])
    adele = sim.create_user(tenant, "Adele Vance", "adele@contoso.onmicrosoft.com")
    alex = sim.create_user(tenant, "Alex Wilber", "alex@contoso.onmicrosoft.com")
    sim.set_consent_user(tenant, adele)
    team = sim.create_calendar(adele, "Team")
    adele_travel = sim.create_calendar(adele, "Travel")
    sim.create_calendar(alex, "Travel")
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def slot(days: int, hour: int, minutes: int = 60) -> dict[str, Any]:
        s = today + dt.timedelta(days=days, hours=hour)
        return {"start": {"dateTime": s.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                "end": {"dateTime": (s + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S"),
                        "timeZone": "UTC"}}

    sim.create_event(adele, subject="Quarterly review", **slot(1, 14))
    sim.create_event(adele, subject="Daily stand-up", **slot(0, 9, 15), recurrence={
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": today.date().isoformat(), "numberOfOccurrences": 20}})
    sim.create_event(adele, calendar_id=team["id"], subject="Team sync", **slot(2, 10), recurrence={
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [today.strftime("%A").lower()]},
        "range": {"type": "noEnd", "startDate": (today + dt.timedelta(days=2)).date().isoformat()}})
    sim.create_event(adele, subject="Offsite", isAllDay=True,
                     start={"dateTime": (today + dt.timedelta(days=5)).strftime("%Y-%m-%dT00:00:00"),
                            "timeZone": "UTC"},
                     end={"dateTime": (today + dt.timedelta(days=6)).strftime("%Y-%m-%dT00:00:00"),
                          "timeZone": "UTC"})
    sim.create_event(adele, calendar_id=adele_travel["id"], subject="Flight to Oslo", **slot(9, 7, 150))
    sim.create_event(alex, subject="Customer call", **slot(1, 16, 30))
    return {"tenant_id": tenant, "client_id": client_id, "client_secret": secret,
            "redirect_uri": DEMO_REDIRECT,
            "users": {"adele@contoso.onmicrosoft.com": adele, "alex@contoso.onmicrosoft.com": alex}}
