"""Graph dateTimeTimeZone -> UTC instants."""

from datetime import UTC, datetime

import pytest

from shared.storage import timeconv


@pytest.mark.parametrize(("value", "expected"), [
    ({"dateTime": "2024-06-03T09:30:00.0000000", "timeZone": "UTC"}, datetime(2024, 6, 3, 9, 30, tzinfo=UTC)),
    ({"dateTime": "2024-06-03T09:30:00.1234567", "timeZone": "UTC"},
     datetime(2024, 6, 3, 9, 30, 0, 123456, tzinfo=UTC)),
    ({"dateTime": "2024-01-15T09:00:00.0000000", "timeZone": "Pacific Standard Time"},
     datetime(2024, 1, 15, 17, 0, tzinfo=UTC)),
    ({"dateTime": "2024-07-15T09:00:00.0000000", "timeZone": "Pacific Standard Time"},
     datetime(2024, 7, 15, 16, 0, tzinfo=UTC)),
    ({"dateTime": "2024-07-15T09:00:00", "timeZone": "Europe/Berlin"}, datetime(2024, 7, 15, 7, 0, tzinfo=UTC)),
    ({"dateTime": "2024-07-15T09:00:00", "timeZone": "India Standard Time"},
     datetime(2024, 7, 15, 3, 30, tzinfo=UTC)),
    ({"dateTime": "2024-07-15T09:00:00", "timeZone": "tzone://Microsoft/Utc"}, datetime(2024, 7, 15, 9, tzinfo=UTC)),
    ({"dateTime": "2024-07-15T09:00:00", "timeZone": "Etc/GMT"}, datetime(2024, 7, 15, 9, tzinfo=UTC)),
    ({"dateTime": "2024-07-15T09:00:00", "timeZone": "UTC+02:00"}, datetime(2024, 7, 15, 7, tzinfo=UTC)),
    ({"dateTime": "2024-07-15T09:00:00Z", "timeZone": "Tokyo Standard Time"}, datetime(2024, 7, 15, 9, tzinfo=UTC)),
    ({"dateTime": "2024-07-15T09:00:00", "timeZone": "Not A Zone"}, datetime(2024, 7, 15, 9, tzinfo=UTC)),
    (None, None),
])
def test_to_instant(value, expected):
    assert timeconv.to_instant(value) == expected


def test_every_windows_name_in_the_cldr_table_resolves():
    from tzlocal.windows_tz import win_tz

    for name in win_tz:
        assert timeconv.to_instant({"dateTime": "2024-03-01T12:00:00", "timeZone": name}) is not None


def test_all_day_keeps_its_date_whatever_the_zone():
    value = {"dateTime": "2024-12-31T00:00:00.0000000", "timeZone": "Hawaiian Standard Time"}
    assert timeconv.to_instant(value, all_day=True) == datetime(2024, 12, 31, tzinfo=UTC)


def test_versions_sort_with_seven_digits():
    assert timeconv.sortable("2024-05-01T00:00:00.1234567Z") == "2024-05-01T00:00:00.1234567Z"
    assert timeconv.sortable("2024-05-01T02:00:00+02:00") == "2024-05-01T00:00:00.0000000Z"
    assert timeconv.sortable("2024-05-01T00:00:00.1234568Z") > timeconv.sortable("2024-05-01T00:00:00.1234567Z")
    assert timeconv.sortable(None) == ""
    with pytest.raises(ValueError):
        timeconv.sortable("yesterday")


@pytest.mark.parametrize("fraction", ["", ".1", ".12", ".123456", ".1234567", ".9999999"])
def test_sortable_fast_path_for_graphs_utc_form_equals_the_general_path(fraction):
    """Graph's `...Z` texts take a string fast path; the result must equal full parsing in UTC."""
    for text in (f"2024-05-01T00:00:00{fraction}Z", f"2024-12-31T23:59:59{fraction}Z"):
        general = timeconv.sortable(text.replace("Z", "+00:00"))  # an offset forces the general path
        assert timeconv.sortable(text) == general
