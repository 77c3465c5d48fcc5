"""Quiet hours: the send window, the local hours and days in which SMS may leave.

A :class:`SendWindow` is a daily opening (``start`` to ``end``, wall-clock times of ``tz``) on
some days of the week. Times are read on the wall clock of the time zone, so the window follows
daylight saving time (README, "Quiet hours"): ``09:00`` in ``Europe/Rome`` is 08:00 UTC in winter
and 07:00 UTC in summer. On the day the clocks move:

- an opening or closing time that the clock skips (spring forward) falls at the moment the clock
  jumps (the first instant whose wall time is at or after it);
- one that the clock shows twice (fall back) is its first occurrence.

An ``end`` earlier than ``start`` is a window over midnight (``22:00``-``06:00``): the day of
the week is the day it opens. ``end="24:00"`` is midnight at the end of the day.

No Airflow inside: the SMS operator defers to :meth:`SendWindow.next_opening` and stops
starting requests at :meth:`SendWindow.closes_at`.

Example::

    window = SendWindow(start="09:00", end="20:00", days="mon-sat", tz="Europe/Rome")
    window.is_open(datetime(2026, 3, 29, 8, 0, tzinfo=UTC))  # False: a Sunday
    window.next_opening(datetime(2026, 3, 29, 8, 0, tzinfo=UTC))  # Monday 09:00 in Rome (07:00 UTC)
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TZ = "Europe/Rome"
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_ONE_SECOND = dt.timedelta(seconds=1)


def parse_time(text: str, *, name: str) -> dt.time | None:
    """``"HH:MM"`` or ``"HH:MM:SS"`` (24-hour) as a time; ``"24:00"`` as None (the end of the day).

    :raises ValueError: anything else, naming the argument.
    """
    match = _TIME.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{name} must be a time like '09:00' or '20:30:00' (24-hour clock), got {text!r}.")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if (hour, minute, second) == (24, 0, 0):
        return None
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{name} {text!r} is not a time of day (00:00 to 23:59:59, or 24:00).")
    return dt.time(hour, minute, second)


def parse_days(text: str) -> frozenset[int]:
    """``"mon-sat"``, ``"mon,wed,fri"``, ``"fri-mon"`` (a range may wrap), ``"mon-fri,sun"``: weekday numbers (Monday 0).

    :raises ValueError: an unknown day name or an empty list.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"days must name days of the week like 'mon-sat' or 'mon,wed,fri', got {text!r}.")
    found: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        ends = part.split("-")
        if len(ends) > 2 or any(e not in DAY_NAMES for e in ends):
            raise ValueError(
                f"Unknown days {part!r} in {text!r}: use {', '.join(DAY_NAMES)}, ranges (mon-fri) and commas."
            )
        first, last = DAY_NAMES.index(ends[0]), DAY_NAMES.index(ends[-1])
        found.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    return frozenset(found)


@dataclass(frozen=True)
class SendWindow:
    """The hours (``start`` to ``end``, wall clock of ``tz``) and days in which messages may leave.

    :param start: when the window opens each day, ``"HH:MM"`` or ``"HH:MM:SS"``.
    :param end: when it closes (not included); earlier than ``start``: the next day; ``"24:00"``:
        midnight at the end of the day.
    :param days: the days it opens, English three-letter names, ranges and commas (``"mon-sat"``).
    :param tz: an IANA time zone (default ``Europe/Rome``).
    :raises ValueError: a time, day list or time zone that cannot be read, or ``start == end``.
    """

    start: str = "09:00"
    end: str = "20:00"
    days: str = "mon-sun"
    tz: str = DEFAULT_TZ
    _weekdays: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        opens = parse_time(self.start, name="start")
        if opens is None:
            raise ValueError("start cannot be '24:00': give '00:00' for a window that opens at midnight.")
        closes = parse_time(self.end, name="end")
        if closes == opens:
            raise ValueError(
                f"start and end are both {self.start!r}: for a window open all day give start='00:00', end='24:00'."
            )
        object.__setattr__(self, "_weekdays", parse_days(self.days))
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(f"Unknown time zone {self.tz!r}: give an IANA name like 'Europe/Rome'.") from exc

    @cached_property
    def zone(self) -> ZoneInfo:
        """The window's time zone."""
        return ZoneInfo(self.tz)

    def to_dict(self) -> dict[str, str]:
        """The window as its four settings (for logs and XCom)."""
        return {"start": self.start, "end": self.end, "days": self.days, "tz": self.tz}

    # ----------------------------------------------------------------- instants

    def _at(self, day: dt.date, wall: dt.time | None) -> dt.datetime:
        """The first instant (UTC) whose wall time on ``day`` is at or after ``wall`` (None: the next midnight)."""
        if wall is None:
            day, wall = day + dt.timedelta(days=1), dt.time(0)
        naive = dt.datetime.combine(day, wall)
        first = naive.replace(tzinfo=self.zone, fold=0).astimezone(dt.UTC)
        if first.astimezone(self.zone).replace(tzinfo=None) == naive:
            return first  # the wall time exists (its first occurrence when it comes twice)
        # The clock skips it: the earliest instant whose wall time is past it is the jump itself.
        low = naive.replace(tzinfo=self.zone, fold=1).astimezone(dt.UTC)
        high = first
        low, high = min(low, high), max(low, high)
        while high - low > _ONE_SECOND:
            middle = low + (high - low) / 2
            if middle.astimezone(self.zone).replace(tzinfo=None) >= naive:
                high = middle
            else:
                low = middle
        return high.replace(microsecond=0) if high.microsecond else high

    def _opening(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """``(opens, closes)`` in UTC of the opening that starts on ``day``, None on a closed day."""
        if day.weekday() not in self._weekdays:
            return None
        opens = parse_time(self.start, name="start")
        closes = parse_time(self.end, name="end")
        over_midnight = closes is not None and opens is not None and closes < opens
        return self._at(day, opens), self._at(day + dt.timedelta(days=1) if over_midnight else day, closes)

    def _openings(self, now: dt.datetime, days: int = 9) -> list[tuple[dt.datetime, dt.datetime]]:
        """The openings from the day before ``now``'s local date on, in order."""
        local = _aware(now).astimezone(self.zone).date()
        found = (self._opening(local + dt.timedelta(days=n)) for n in range(-1, days))
        return [o for o in found if o is not None]

    def is_open(self, now: dt.datetime) -> bool:
        """True if messages may leave at ``now`` (an aware datetime)."""
        moment = _aware(now)
        return any(opens <= moment < closes for opens, closes in self._openings(moment, days=1))

    def next_opening(self, now: dt.datetime) -> dt.datetime:
        """The first instant at or after ``now`` when the window is open (``now`` itself when open), in UTC."""
        moment = _aware(now)
        for opens, closes in self._openings(moment):
            if moment < closes:
                return max(opens, moment)
        raise AssertionError("unreachable: a window opens at least once a week")  # pragma: no cover

    def closes_at(self, now: dt.datetime) -> dt.datetime:
        """When the opening that holds ``now`` ends (of the next opening when closed), in UTC.

        Openings that touch (``00:00``-``24:00`` on consecutive days) count as one, up to a week.
        """
        moment = _aware(now)
        openings = self._openings(moment)
        end: dt.datetime | None = None
        for opens, closes in openings:
            if end is None:
                if moment < closes:
                    end = closes
            elif opens <= end:
                end = max(end, closes)
            else:
                break
        if end is None:  # pragma: no cover - _openings spans more than a week
            raise AssertionError("unreachable: a window opens at least once a week")
        return end


def _aware(moment: dt.datetime) -> dt.datetime:
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"The send window needs a timezone-aware time, got {moment!r}.")
    return moment.astimezone(dt.UTC)
