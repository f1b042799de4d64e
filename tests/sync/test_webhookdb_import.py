"""`import-webhookdb` from a WebhookDB-shaped PostgreSQL database, against the Graph simulator.

The source has WebhookDB's three tables under per-integration names, tokens encrypted the
WebhookDB way (AES-256-CBC, zero IV, URL-safe base64 key), rows WebhookDB would hold (taken
from the simulator, then the mailbox changes: an event deleted, one edited, one moved with
mutable ids, one created, a calendar deleted), plus a user whose token does not decrypt.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import urllib.parse

import psycopg
import pytest
import requests
from psycopg.types.json import Jsonb

from shared.importer import webhookdb_crypto
from tests.sync.world import slot, weekly

KEY = "6vHQcB8xlVSmHO2Wxsqk713k7oi_SpIWirUG0YTGUa4="
USERS, CALENDARS, EVENTS = "microsoft_calendar_user_v1_8a3f", "microsoft_calendar_v1_2b9c", \
    "microsoft_calendar_event_v1_71d0"
CREATED = dt.datetime(2023, 3, 14, 15, 9, 26, 535897, tzinfo=dt.UTC)  # WebhookDB's row_created_at
SCOPE = "User.Read Calendars.ReadWrite offline_access"

# WebhookDB's DDL for its three Outlook tables (its fixture's shape, per-integration names).
WEBHOOKDB_DDL = f"""
CREATE TABLE public.{USERS} (
  pk bigserial PRIMARY KEY, microsoft_user_id text UNIQUE NOT NULL, row_created_at timestamptz,
  row_updated_at timestamptz, encrypted_refresh_token text, events_subscription_id text,
  events_subscription_expiration timestamptz, data jsonb NOT NULL);
CREATE INDEX IF NOT EXISTS svi_8a3f_row_created_at_idx ON public.{USERS} (row_created_at);
CREATE INDEX IF NOT EXISTS svi_8a3f_row_updated_at_idx ON public.{USERS} (row_updated_at);
CREATE INDEX IF NOT EXISTS svi_8a3f_events_subscription_id_idx ON public.{USERS} (events_subscription_id);
CREATE INDEX IF NOT EXISTS svi_8a3f_events_subscription_expiration_idx ON public.{USERS}
  (events_subscription_expiration);
CREATE TABLE public.{CALENDARS} (
  pk bigserial PRIMARY KEY, microsoft_calendar_id text UNIQUE NOT NULL, row_created_at timestamptz,
  row_updated_at timestamptz, microsoft_user_id text, is_default_calendar boolean, delta_url text,
  data jsonb NOT NULL);
CREATE INDEX IF NOT EXISTS svi_2b9c_microsoft_user_id_idx ON public.{CALENDARS} (microsoft_user_id);
CREATE TABLE public.{EVENTS} (
  pk bigserial PRIMARY KEY, microsoft_event_id text UNIQUE NOT NULL, microsoft_calendar_id text,
  microsoft_user_id text, row_created_at timestamptz, row_updated_at timestamptz, created timestamptz,
  updated timestamptz, is_all_day boolean, start_at timestamptz, start_timezone text,
  original_start_timezone text, end_at timestamptz, end_timezone text, original_end_timezone text,
  data jsonb NOT NULL);
CREATE INDEX IF NOT EXISTS svi_71d0_row_updated_at_idx ON public.{EVENTS} (row_updated_at);
CREATE INDEX IF NOT EXISTS svi_71d0_start_at_idx ON public.{EVENTS} (start_at);
CREATE INDEX IF NOT EXISTS svi_71d0_end_at_idx ON public.{EVENTS} (end_at);
"""


def test_known_vector():
    key = webhookdb_crypto.parse_key(KEY)
    assert webhookdb_crypto.encrypt(key, "asdfghjkl4567") == "lGfCermPAzJuhsbRalipbg=="
    assert webhookdb_crypto.decrypt(key, "lGfCermPAzJuhsbRalipbg==") == "asdfghjkl4567"
    other = webhookdb_crypto.parse_key(base64.urlsafe_b64encode(bytes(range(32))).decode())
    with pytest.raises(webhookdb_crypto.WebhookDbDecryptError):
        webhookdb_crypto.decrypt(other, "lGfCermPAzJuhsbRalipbg==")
    with pytest.raises(webhookdb_crypto.WebhookDbKeyError):
        webhookdb_crypto.parse_key("c2hvcnQ=")


def refresh_token(world, user: str) -> str:
    """A real refresh token for `user` from the simulator (what WebhookDB was handed by LINKED)."""
    sim = world.sim
    sim.set_consent_user(world.tenant, user)
    base = f"{sim.base_url}/{world.tenant}/oauth2/v2.0"
    redirect = world.settings.app_base_url + "/api/oauth/callback"
    answer = requests.get(f"{base}/authorize", params={
        "client_id": world.client_id, "response_type": "code", "redirect_uri": redirect, "scope": SCOPE,
        "state": "x"}, verify=sim.ca_file, allow_redirects=False, timeout=10)
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["Location"]).query)["code"][0]
    token = requests.post(f"{base}/token", data={
        "client_id": world.client_id, "client_secret": world.secret, "grant_type": "authorization_code",
        "code": code, "redirect_uri": redirect, "scope": SCOPE}, verify=sim.ca_file, timeout=10)
    token.raise_for_status()
    return token.json()["refresh_token"]


def webhookdb_snapshot(conn, world, user: str, token_ciphertext: str) -> None:
    """The rows WebhookDB holds for `user`: what Graph returned in the window, as its replicators store it."""
    truth = world.expected(user)
    conn.execute(f"INSERT INTO {USERS} (microsoft_user_id, row_created_at, row_updated_at, encrypted_refresh_token, "
                 "events_subscription_id, events_subscription_expiration, data) VALUES (%s, %s, now(), %s, %s, "
                 "now() + interval '2 days', %s)",
                 (f"crm-{user}", CREATED, token_ciphertext, f"whdb-sub-{user}", Jsonb({"customer_ref": f"c-{user}"})))
    for calendar in truth["calendars"].values():
        conn.execute(f"INSERT INTO {CALENDARS} (microsoft_calendar_id, row_created_at, row_updated_at, "
                     "microsoft_user_id, is_default_calendar, delta_url, data) VALUES (%s, %s, now(), %s, %s, %s, %s)",
                     (calendar["id"], CREATED, f"crm-{user}", calendar.get("isDefaultCalendar"),
                      "https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=whdb", Jsonb(calendar)))
    for event_id, (calendar_id, data) in truth["events"].items():
        body = {k: v for k, v in data.items() if k != "id"} | {"id": event_id}
        conn.execute(f"INSERT INTO {EVENTS} (microsoft_event_id, microsoft_calendar_id, microsoft_user_id, "
                     "row_created_at, row_updated_at, data) VALUES (%s, %s, %s, %s, now(), %s)",
                     (event_id, calendar_id, f"crm-{user}", CREATED, Jsonb(body)))


def run_import(monkeypatch, *extra: str, key: str = KEY) -> int:
    """The CLI in this process, the key on stdin (never on the command line)."""
    from shared.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(key + "\n"))
    return main(["import-webhookdb", "--users-table", USERS, "--calendars-table", CALENDARS,
                 "--events-table", EVENTS, *extra])


def state(world, users: list[str]) -> dict:
    """Everything an import could change, per user, to compare two runs."""
    repo = world.repo
    out = {}
    for user in users:
        u = repo.get_user(user)
        out[user] = {"user": u, "account": repo.get_account(user), "calendars": repo.list_calendars(user),
                     "events": repo.list_events(user), "outbox": repo.pending_changes(user, 100_000)}
    out["queued"] = [m.body for m in world.queue().peek(32)]
    out["subscriptions"] = world.sim.list_subscriptions()
    return out


@pytest.mark.postgres
@pytest.mark.parametrize(("backend", "keep_mutable"), [("sqlite", False), ("sqlite", True), ("postgres", False),
                                                       ("tables", False)])
def test_import_from_webhookdb(world, pg_dsn, request, backend, keep_mutable, monkeypatch):
    from devhost.host import DevHost
    from shared.auth.tokens import get_token_service
    from shared.crypto import get_token_cipher
    from shared.graph.factory import client_for_user

    target = {"sqlite": {"DATABASE_BACKEND": "sqlite"}, "postgres": {"DATABASE_BACKEND": "postgres", "PG_DSN": pg_dsn}}
    if backend == "tables":
        azurite = request.getfixturevalue("azurite")
        target["tables"] = {"DATABASE_BACKEND": "tables", "TABLES_CONNECTION_STRING": azurite,
                            "TABLE_PREFIX": f"imp{os.getpid()}{abs(hash(request.node.name)) % 10**6}"}
    sim = world.sim
    host = DevHost(port=0, timers=False, queues=False).start()
    try:
        world.configure(**target[backend])
        world.register(host.base_url)
        alice, bob, carol = world.user("Alice"), world.user("Bob"), world.user("Carol")
        team = sim.create_calendar(alice, "Team")
        old = sim.create_calendar(alice, "Old")
        sim.create_event(alice, calendar_id=old["id"], subject="in a calendar deleted later", **slot(3))
        sim.create_event(alice, subject="weekly", **weekly(-14, 8))
        ids = [sim.create_event(alice, subject=f"alice {i}", **slot(i - 5))["id"] for i in range(12)]
        sim.create_event(alice, calendar_id=team["id"], subject="team", **slot(2))
        sim.create_event(bob, subject="bob only", **slot(1))

        key = webhookdb_crypto.parse_key(KEY)
        monkeypatch.setenv("WEBHOOKDB_DSN", pg_dsn)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(WEBHOOKDB_DDL)
            webhookdb_snapshot(conn, world, alice, webhookdb_crypto.encrypt(key, refresh_token(world, alice)))
            webhookdb_snapshot(conn, world, bob, webhookdb_crypto.encrypt(key, refresh_token(world, bob)))
            webhookdb_snapshot(conn, world, carol, "not-a-token-encrypted-with-this-key")
            conn.execute(f"INSERT INTO {EVENTS} (microsoft_event_id, microsoft_calendar_id, microsoft_user_id, "
                         "row_created_at, data) VALUES ('whdb-stale', %s, %s, %s, %s)",
                         (sim.default_calendar_id(alice), f"crm-{alice}", CREATED, Jsonb({"subject": "gone"})))
        # The mailbox moves on after WebhookDB's last sync.
        sim.delete_event(alice, ids[0])
        sim.update_event(alice, ids[1], subject="edited after the snapshot")
        moved = sim.move_event(alice, ids[2], team["id"], immutable_ids=False)["id"]
        assert moved != ids[2]
        sim.create_event(alice, subject="created after the snapshot", **slot(4))
        sim.delete_calendar(alice, old["id"])

        # Users are stored under the client's ids (crm-<graph id>), as WebhookDB had them.
        stored = {f"crm-{alice}": alice, f"crm-{bob}": bob}
        args = ("--keep-mutable-ids",) if keep_mutable else ()
        assert run_import(monkeypatch, *args) == 1  # carol's token does not decrypt: reported, exit code 1
        assert world.repo.get_user(f"crm-{carol}") is None and world.repo.get_account(f"crm-{carol}") is None
        for user_id in stored:
            row = world.repo.get_user(user_id)
            assert row.row_created_at == CREATED and row.data == {"customer_ref": f"c-{stored[user_id]}"}
            assert row.events_subscription_id is None  # WebhookDB's subscription is not adopted
            imported = world.repo.list_events(user_id)
            assert imported and all(e.row_created_at == CREATED for e in imported)

        world.drain()  # the queued full syncs (with new subscriptions)
        for user_id, graph_user in stored.items():
            expected = world.expected(graph_user)
            actual = world.actual(user_id)
            assert actual == expected
            rows = world.repo.list_events(user_id)
            assert len(rows) == len({r.microsoft_event_id for r in rows}) == len(expected["events"])
            same_id = [r for r in rows if r.microsoft_event_id in ids[3:] or r.data["subject"] == "bob only"]
            assert same_id and all(r.row_created_at == CREATED for r in same_id)  # same id: the age is kept
            for calendar in world.repo.list_calendars(user_id):
                cursor = world.repo.get_cursor(user_id, calendar.microsoft_calendar_id)
                assert calendar.delta_url == (cursor.delta_link if cursor else None)
                assert "whdb" not in (calendar.delta_url or "")
            account = world.repo.get_account(user_id)
            assert account.status == "linked" and account.extra["imported_from"] == "webhookdb"
            assert (account.extra.get("event_ids") == "mutable") is keep_mutable
            assert ("IdType" in client_for_user(user_id).prefer_headers) is not keep_mutable
            # The re-encrypted token refreshes.
            service = get_token_service()
            service.invalidate(user_id)
            me = requests.get(f"{world.settings.graph_base_url}/me", verify=sim.ca_file, timeout=10,
                              headers={"Authorization": f"Bearer {service.access_token(user_id)}"}).json()
            assert me["id"] == graph_user
            assert get_token_cipher().decrypt(world.repo.get_user(user_id).encrypted_refresh_token, user_id)
        assert moved in world.actual(f"crm-{alice}")["events"] and ids[2] not in world.actual(f"crm-{alice}")["events"]

        subscriptions = sim.list_subscriptions()  # one per replicated calendar, all pointing here
        per_calendar = {r.subscription_id for u in stored for r in world.repo.list_calendar_subscriptions(u)}
        assert per_calendar == {s["id"] for s in subscriptions}
        assert len(subscriptions) == sum(len(world.repo.list_calendars(u)) for u in stored)
        assert all(s["notificationUrl"].startswith(host.base_url) for s in subscriptions)
        assert {world.repo.get_user(u).events_subscription_id for u in stored} <= per_calendar

        before = state(world, list(stored))
        assert run_import(monkeypatch, *args) == 1  # a second run: nothing changes (carol is reported again)
        assert state(world, list(stored)) == before
    finally:
        host.stop()


def test_import_reports_a_wrong_key_per_user(world, pg_dsn, monkeypatch, capsys):
    alice = world.user("Alice")
    good = webhookdb_crypto.parse_key(KEY)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(WEBHOOKDB_DDL)
        webhookdb_snapshot(conn, world, alice, webhookdb_crypto.encrypt(good, "1.AbCdEf-refresh"))
    monkeypatch.setenv("WEBHOOKDB_DSN", pg_dsn)
    code = run_import(monkeypatch, key=base64.urlsafe_b64encode(bytes(32)).decode())
    out = capsys.readouterr()
    assert code == 1
    assert f"failed crm-{alice}: refresh token not readable" in out.out
    assert "1.AbCdEf-refresh" not in out.out + out.err
    assert world.repo.get_user(f"crm-{alice}") is None and world.queue().peek(32) == []


def test_an_interrupted_import_resumes(world, pg_dsn, monkeypatch):
    """A run that stops half-way through a user (here: the source connection drops while reading
    its events) is run again and finishes that user, with nothing doubled."""
    alice = world.user("Alice")
    for i in range(3):
        world.sim.create_event(alice, subject=f"e{i}", **slot(i))
    key = webhookdb_crypto.parse_key(KEY)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(WEBHOOKDB_DDL)
        webhookdb_snapshot(conn, world, alice, webhookdb_crypto.encrypt(key, refresh_token(world, alice)))
    monkeypatch.setenv("WEBHOOKDB_DSN", pg_dsn)
    from shared.importer.webhookdb import WebhookDbSource

    real_events = WebhookDbSource.events

    def dropped(self: WebhookDbSource, user_id: str, batch: int = 1000) -> None:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(WebhookDbSource, "events", dropped)
    assert run_import(monkeypatch) == 1  # reported as one line, not a traceback
    user_id = f"crm-{alice}"
    assert world.repo.get_user(user_id) is not None and world.repo.get_account(user_id) is None
    assert world.queue().peek(32) == []

    monkeypatch.setattr(WebhookDbSource, "events", real_events)
    assert run_import(monkeypatch) == 0
    assert len(world.repo.list_events(user_id)) == len(world.expected(alice)["events"])
    assert [json.loads(m.body)["user_id"] for m in world.queue().peek(32)] == [user_id]
    assert world.repo.get_account(user_id).extra["imported_from"] == "webhookdb"
