"""graphsim/graph_schema.json is what devtools/graph_schema.py makes of the installed msgraph-sdk models."""

from __future__ import annotations

from devtools import graph_schema
from graphsim import schema


def test_committed_schema_matches_the_sdk_models():
    assert graph_schema.OUT.read_text() == graph_schema.render(), \
        "regenerate: .venv/bin/python -m devtools.graph_schema"


def test_schema_covers_every_type_the_simulator_serves():
    types = schema.schema()["types"]
    for name in ("event", "calendar", "message", "mailFolder", "subscription", "user", "scheduleInformation",
                 "timeZoneInformation", "localeInfo", "attendee", "itemBody", "patternedRecurrence"):
        assert types[name].get("props"), name
    assert schema.schema()["enums"]["freeBusyStatus"] == ["unknown", "free", "tentative", "busy", "oof",
                                                          "workingElsewhere"]
