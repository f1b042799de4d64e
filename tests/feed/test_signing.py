"""The signature scheme, and the verification snippet of docs/CHANGE_FEED.md, which must keep working."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from shared.feed import signing
from shared.feed.delivery import backoff_seconds, retry_after_seconds

DOC = Path(__file__).resolve().parents[2] / "docs" / "CHANGE_FEED.md"


def documented_verifier():
    """`verify_webhook` exactly as the documentation shows it."""
    (code,) = [block for block in re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
               if "def verify_webhook(" in block]
    scope: dict = {}
    exec(compile(code, str(DOC), "exec"), scope)  # noqa: S102 - our own documentation's snippet
    return scope["verify_webhook"]


def headers_for(secret: str, body: bytes, at: int) -> dict[str, str]:
    return {signing.TIMESTAMP_HEADER: str(at), signing.SIGNATURE_HEADER: signing.sign(secret, at, body)}


def test_the_documented_snippet_verifies_a_signature_and_refuses_tampering():
    verify = documented_verifier()
    now = int(time.time())
    body = b'{"schema":"row-change.v1"}'
    good = headers_for("s3cret", body, now)
    assert verify("s3cret", good, body)
    assert not verify("s3cret", good, body + b" ")
    assert not verify("other", good, body)
    assert not verify("s3cret", headers_for("s3cret", body, now - 3600), body)  # replayed later
    assert signing.verify("s3cret", good[signing.TIMESTAMP_HEADER], body, good[signing.SIGNATURE_HEADER], now=now)


@pytest.mark.parametrize(("value", "expected"), [("7", 7), (None, None), ("soon", None),
                                                 ("Wed, 21 Oct 2015 07:28:00 GMT", 0)])
def test_retry_after_seconds(value, expected):
    assert retry_after_seconds(value, time.time()) == expected


def test_backoff_doubles_is_capped_and_honours_a_longer_retry_after():
    assert [backoff_seconds(a, 30, None) for a in (1, 2, 3)] == [30, 60, 120]
    assert backoff_seconds(20, 30, None) == 3600
    assert backoff_seconds(1, 30, 90) == 90 and backoff_seconds(2, 30, 5) == 60
