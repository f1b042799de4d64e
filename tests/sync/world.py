"""A small world for sync tests: the Graph simulator, the app configured against it, linked users.

Users are linked through the real sign-in flow (oauth/start -> the simulator's
authorize -> oauth/callback), so the worker uses real tokens and MSAL.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
import requests

from tests.replica import expected_rows, replica_rows

CALLBACK = "http://127.0.0.1:7071/api/oauth/callback"


def call(name: str, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    """Call a registered function the way the Functions host does."""
    import function_app
    from devhost.host import registered_functions

    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))
    request = func.HttpRequest(method, url, headers=headers or {}, params=query, body=body)
    for registered in registered_functions(function_app.app):
        if registered.get_function_name() == name:
            return registered.get_user_function()(request)
    raise KeyError(name)


@dataclass
class World:
    sim: Any
    tenant: str
    client_id: str
    secret: str
    app_env: Any
    env: dict[str, str] = field(default_factory=dict)
    settings: Any = None

    def register(self, base_url: str) -> None:
        """A new app registration whose redirect URI is under `base_url` (a host on a free port)."""
        self.client_id, self.secret = self.sim.register_app(self.tenant,
                                                            redirect_uris=[f"{base_url}/api/oauth/callback"])
        self.configure(APP_BASE_URL=base_url, CLIENT_ID=self.client_id)

    def configure(self, **extra: Any) -> Any:
        self.env.update({k: str(v) for k, v in extra.items()})
        self.settings = self.app_env(**self.env)
        from shared.secrets import CLIENT_SECRET, open_secret_store
        from shared.storage import open_repository

        open_secret_store(self.settings).set(CLIENT_SECRET, self.secret)
        open_repository(self.settings)
        return self.settings

    @property
    def repo(self) -> Any:
        from shared.storage import open_repository

        return open_repository(self.settings)

    def user(self, name: str) -> str:
        upn = f"{name.lower()}@{self.tenant}.test"
        return self.sim.create_user(self.tenant, display_name=name, user_principal_name=upn)

    def link(self, user: str) -> str:
        """Sign `user` in through the app's real flow; returns the stored user id."""
        self.sim.set_consent_user(self.tenant, user)
        start = call("oauth_start", "GET", f"{self.settings.app_base_url}/api/oauth/start")
        assert start.status_code == 302, start.get_body()
        consent = requests.get(start.headers["Location"], verify=self.sim.ca_file, allow_redirects=False, timeout=10)
        assert consent.status_code == 302, consent.text
        page = call("oauth_callback", "GET", consent.headers["Location"])
        assert page.status_code == 200, page.get_body()
        return user

    def queue(self, name: str | None = None) -> Any:
        from shared.queues import SYNC_QUEUE, open_queue

        return open_queue(name or SYNC_QUEUE, self.settings)

    def drain(self, limit: int = 1000, crash_after_pages: int | None = None, **kwargs: Any) -> list[Any]:
        """Run the worker on every queued sync message (in queue order) until the queue is empty.

        `crash_after_pages=n`: the worker's repository fails the page write after n stored pages
        (tests.sync.crash), as a worker killed mid-round would leave it."""
        from shared.sync.worker import handle_message
        from tests.sync.crash import crash_after_pages as crashing

        if crash_after_pages is not None:
            kwargs["repo"] = crashing(kwargs.get("repo") or self.repo, crash_after_pages)

        outcomes = []
        queue = self.queue()
        for _ in range(limit):
            messages = queue.receive(16, visibility_timeout=300)
            if not messages:
                return outcomes
            for message in messages:
                outcomes.append(handle_message(message.body, **kwargs))
                queue.delete(message)
        raise AssertionError("the sync queue did not drain")

    def outbound(self) -> list[dict[str, Any]]:
        from shared.queues import OUTBOUND_QUEUE
        from tests.feed.contract import expand, validate

        return [change for m in self.queue(OUTBOUND_QUEUE).peek(32) for change in expand(validate(m.body))]

    # --- comparing with the simulator ------------------------------------------------------
    def expected(self, user: str) -> dict[str, Any]:
        return expected_rows(self.sim, self.settings, user)

    def actual(self, user: str) -> dict[str, Any]:
        return replica_rows(self.repo, user)

    def assert_converged(self, user: str) -> None:
        expected, actual = self.expected(user), self.actual(user)
        assert set(actual["calendars"]) == set(expected["calendars"])
        assert actual["calendars"] == expected["calendars"]
        missing = set(expected["events"]) - set(actual["events"])
        extra = set(actual["events"]) - set(expected["events"])
        assert not missing and not extra, f"{len(missing)} missing, {len(extra)} extra rows"
        wrong = [i for i in expected["events"] if expected["events"][i] != actual["events"][i]]
        assert not wrong, f"{len(wrong)} rows differ, e.g. {wrong[:1]}"
        assert not any("@removed" in data for _, data in actual["events"].values())


def slot(days: float, hours: float = 9, minutes: int = 30) -> dict[str, Any]:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today + dt.timedelta(days=days, hours=hours)
    end = start + dt.timedelta(minutes=minutes)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {"start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
            "end": {"dateTime": end.strftime(fmt), "timeZone": "UTC"}}


def weekly(days: float, count: int | None = None, **extra: Any) -> dict[str, Any]:
    body = slot(days)
    start_date = body["start"]["dateTime"][:10]
    weekday = dt.date.fromisoformat(start_date).strftime("%A").lower()
    rng = ({"type": "numbered", "startDate": start_date, "numberOfOccurrences": count} if count
           else {"type": "noEnd", "startDate": start_date})
    return {**body, "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [weekday]},
                                   "range": rng}, **extra}
