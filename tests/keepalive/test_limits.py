"""Lifetime parsing and the renewal horizon from the NCRONTAB schedule."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.subscriptions import limits


def test_extension_error_message_gives_the_limit():
    message = "Subscription expiration can only be 4230 minutes in the future."
    assert limits.parse_extension_limit(message) == 4230
    assert limits.parse_extension_limit("Access is denied.") is None


@pytest.mark.parametrize(("expression", "period"), [
    ("0 */30 * * * *", dt.timedelta(minutes=30)),
    ("0 0 * * * *", dt.timedelta(hours=1)),
    ("0 15 3 * * *", dt.timedelta(days=1)),
    ("*/5 * * * * *", dt.timedelta(minutes=1)),
    ("0 0,20 * * * *", dt.timedelta(minutes=40)),
    ("0 0 9 * * mon-fri", dt.timedelta(days=3)),
])
def test_schedule_period(expression, period):
    assert limits.schedule_period(expression) == period


@pytest.mark.parametrize("expression", ["0 */30 * * *", "0 99 * * * *", "x * * * * *"])
def test_bad_schedules_are_reported(expression):
    with pytest.raises(ValueError):
        limits.schedule_period(expression)


def test_horizon_is_two_runs_plus_the_margin(app_env):
    settings = app_env(RENEWAL_SCHEDULE="0 */30 * * * *", RENEWAL_MARGIN_MINUTES="60")
    now = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert limits.renewal_horizon(settings, now) == now + dt.timedelta(hours=2)
    assert limits.lifetime_minutes(settings) == 10070  # the connector seed's default; Outlook allows 10080
    assert limits.lifetime_minutes(settings, learned=1000) == 1000


def test_iso_roundtrip():
    value = dt.datetime(2024, 5, 1, 12, 0, 5, 123456, tzinfo=dt.UTC)
    assert limits.iso(value) == "2024-05-01T12:00:05.123Z"
    assert limits.parse_iso("2024-05-01T12:00:05.1234567Z") == value.replace(microsecond=123456)
