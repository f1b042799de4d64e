"""Issue 12 item 9 on POST /api/users: hostile bodies answer 4xx with a message, never 500."""

from __future__ import annotations

import json

import pytest

from tests.accounts.helpers import post_json

URL = "http://127.0.0.1:7071/api/users"


@pytest.mark.parametrize(("body", "status"), [
    (b'{"type": "RESYNC", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400),
    (b"[" * 100_000, 400),
    (json.dumps({"type": "RESYNC", "microsoft_user_id": "\ud800"}).encode(), 400),
    (json.dumps({"type": "RESYNC", "microsoft_user_id": "a\x00b"}).encode(), 400),
    (json.dumps({"type": "UNLINKED", "microsoft_user_id": "a\nb"}).encode(), 400),
    (json.dumps({"type": ["LINKED"], "microsoft_user_id": "u"}).encode(), 400),
    (b'{"type": "RESYNC", "microsoft_user_id": "' + b"x" * 300_000 + b'"}', 413),
])
def test_hostile_user_requests_are_4xx(repo, body, status):
    answer = post_json("users", URL, body)
    assert answer.status_code == status, answer.get_body()
    assert "error" in json.loads(answer.get_body())
