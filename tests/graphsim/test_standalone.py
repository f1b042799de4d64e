"""Acceptance 5: `python -m graphsim --demo --port 0` starts, prints one JSON line, serves the demo tenant."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_standalone_demo_tenant():
    proc = subprocess.Popen([sys.executable, "-m", "graphsim", "--demo", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        s = requests.Session()
        s.verify, s.trust_env = info["ca_file"], False
        tok = s.post(f"{info['authority']}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": info["client_id"],
            "client_secret": info["client_secret"], "scope": "https://graph.microsoft.com/.default"}).json()
        h = {"Authorization": f"Bearer {tok['access_token']}"}
        adele = info["users"]["adele@contoso.onmicrosoft.com"]
        cals = s.get(f"{info['graph_url']}/users/adele@contoso.onmicrosoft.com/calendars", headers=h).json()
        assert {c["name"] for c in cals["value"]} == {"Calendar", "Team", "Travel"}
        assert info["redirect_uri"] == "http://127.0.0.1:7071/api/oauth/callback"
        truth = s.get(f"{info['base_url']}/_sim/ground-truth/{adele}").json()
        assert any(e["type"] == "occurrence" for e in truth["events"])
        counters = s.get(f"{info['base_url']}/_sim/counters").json()
        assert counters["GET /v1.0/users/{id}/calendars"] == 1
        created = s.post(f"{info['base_url']}/_sim/users/{adele}/events", json={
            "subject": "via control", "start": {"dateTime": "2024-05-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2024-05-01T10:00:00", "timeZone": "UTC"}}).json()
        assert created["subject"] == "via control"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
