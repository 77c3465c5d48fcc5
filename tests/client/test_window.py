"""SendWindow: parsing with clear errors, the openings on the wall clock across daylight saving time,
and properties over random instants and windows (hypothesis)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_smsend.client.window import SendWindow, parse_days

UTC = dt.UTC
ROME = ZoneInfo("Europe/Rome")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_days_ranges_lists_and_wrapping_ranges() -> None:
    assert parse_days("mon-sat") == frozenset(range(6))
    assert parse_days("Mon, wed,FRI") == {0, 2, 4}
    assert parse_days("fri-mon") == {4, 5, 6, 0}
    assert parse_days("mon-fri,sun") == {0, 1, 2, 3, 4, 6}


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"start": "9"}, "start must be a time like '09:00'"),
        ({"end": "25:00"}, "end '25:00' is not a time of day"),
        ({"start": "24:00"}, "start cannot be '24:00'"),
        ({"start": "10:00", "end": "10:00"}, "start='00:00', end='24:00'"),
        ({"days": "lun-ven"}, "Unknown days 'lun-ven'"),
        ({"days": ""}, "days must name days of the week"),
        ({"tz": "Europe/Roma"}, "Unknown time zone 'Europe/Roma'"),
    ],
)
def test_bad_settings_are_clear_errors(settings_: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SendWindow(**settings_)


def test_nine_to_eight_monday_to_saturday_in_rome_across_the_spring_change() -> None:
    window = SendWindow(start="09:00", end="20:00", days="mon-sat", tz="Europe/Rome")
    # Saturday 28 March 2026, CET (UTC+1): 08:00 to 19:00 UTC
    assert window.next_opening(utc(2026, 3, 28, 5)) == utc(2026, 3, 28, 8)
    assert window.closes_at(utc(2026, 3, 28, 5)) == utc(2026, 3, 28, 19)
    assert window.is_open(utc(2026, 3, 28, 18, 59, 59)) and not window.is_open(utc(2026, 3, 28, 19))
    # Sunday is closed; Monday 30 March is CEST (UTC+2): 07:00 UTC
    assert not window.is_open(utc(2026, 3, 29, 10))
    assert window.next_opening(utc(2026, 3, 28, 19)) == utc(2026, 3, 30, 7)
    assert window.closes_at(utc(2026, 3, 30, 7)) == utc(2026, 3, 30, 18)
    assert window.next_opening(utc(2026, 3, 30, 9)) == utc(2026, 3, 30, 9)  # open: now itself


def test_times_the_clock_skips_or_shows_twice() -> None:
    window = SendWindow(start="02:30", end="05:00")
    # 29 March 2026: 02:00 CET jumps to 03:00 CEST (01:00 UTC): the opening is the jump
    assert window.next_opening(utc(2026, 3, 29, 0)) == utc(2026, 3, 29, 1)
    assert window.next_opening(utc(2026, 3, 29, 1)).astimezone(ROME).hour == 3
    # 25 October 2026: 02:30 comes twice; the first (CEST, 00:30 UTC)
    assert window.next_opening(utc(2026, 10, 25, 0)) == utc(2026, 10, 25, 0, 30)
    assert window.closes_at(utc(2026, 10, 25, 0)) == utc(2026, 10, 25, 4)  # 05:00 CET


def test_a_window_over_midnight_belongs_to_the_day_it_opens() -> None:
    window = SendWindow(start="22:00", end="06:00", days="fri", tz="Europe/Rome")
    friday_night = utc(2026, 4, 3, 21)  # Friday 23:00 CEST
    assert window.is_open(friday_night) and window.is_open(utc(2026, 4, 4, 3))  # Saturday 05:00
    assert not window.is_open(utc(2026, 4, 4, 4))  # Saturday 06:00
    assert window.next_opening(utc(2026, 4, 4, 4)) == utc(2026, 4, 10, 20)
    assert window.closes_at(friday_night) == utc(2026, 4, 4, 4)


def test_a_window_open_all_day_every_day_closes_a_week_later_at_most() -> None:
    always = SendWindow(start="00:00", end="24:00")
    now = utc(2026, 7, 1, 12)
    assert always.is_open(now) and always.next_opening(now) == now
    assert always.closes_at(now) - now >= dt.timedelta(days=6)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SendWindow().is_open(dt.datetime(2026, 1, 1, 10))


# ----------------------------------------------------------------- properties

instants = st.datetimes(
    min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2030, 12, 31), timezones=st.just(UTC)
)
clock_times = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
day_lists = st.sets(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1).map(
    ",".join
)
zones = st.sampled_from(["Europe/Rome", "America/New_York", "Australia/Sydney", "UTC", "Asia/Kolkata"])


@settings(max_examples=300, deadline=None)
@given(now=instants, start=clock_times, end=clock_times, days=day_lists, tz=zones)
def test_the_next_opening_is_open_and_nothing_before_it_is(
    now: dt.datetime, start: str, end: str, days: str, tz: str
) -> None:
    if start == end:
        return
    window = SendWindow(start=start, end=end, days=days, tz=tz)
    opens = window.next_opening(now)
    closes = window.closes_at(now)
    assert now <= opens < closes and window.is_open(opens)
    assert opens - now <= dt.timedelta(days=8)
    if opens > now:
        assert not window.is_open(now) and not window.is_open(opens - dt.timedelta(seconds=1))
    assert window.is_open(closes - dt.timedelta(seconds=1))
    if closes - opens < dt.timedelta(days=6):  # not a window open all week
        assert not window.is_open(closes)
        assert window.next_opening(closes) > closes


@settings(max_examples=300, deadline=None)
@given(now=instants, start=clock_times, end=clock_times, days=day_lists, tz=zones)
def test_open_means_the_wall_clock_is_within_the_hours_on_an_allowed_day(
    now: dt.datetime, start: str, end: str, days: str, tz: str
) -> None:
    """Away from a clock change (3 hours either side), open is exactly: the local wall time is in
    [start, end) on an allowed day (over midnight: the day it opened)."""
    if start == end:
        return
    zone = ZoneInfo(tz)
    hours = dt.timedelta(hours=3)
    if (now - hours).astimezone(zone).utcoffset() != (now + hours).astimezone(zone).utcoffset():
        return
    window = SendWindow(start=start, end=end, days=days, tz=tz)
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    first, last = dt.time.fromisoformat(start), dt.time.fromisoformat(end)
    allowed = parse_days(days)
    if first < last:
        expected = local.weekday() in allowed and first <= wall < last
    else:
        expected = (local.weekday() in allowed and wall >= first) or (
            (local.weekday() - 1) % 7 in allowed and wall < last
        )
    assert window.is_open(now) == expected
