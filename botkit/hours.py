"""Business hours: when people are there to take a conversation, and when they are back.

A `Schedule` is a time zone, opening hours per weekday (several ranges a day allowed) and holidays. It comes
from the settings or from an inbox's own working hours in Chatwoot:

    BOTKIT_HOURS=Europe/Paris; mon-fri 09:00-12:30,13:30-18:00; sat 10:00-13:00
    BOTKIT_HOLIDAYS=2026-12-25,2027-01-01

    Schedule.parse("Europe/Paris; mon-fri 09:00-18:00", holidays="2026-12-25")
    Schedule.from_inbox(inbox_json)   # GET /api/v1/accounts/{id}/inboxes/{id}: working_hours, timezone

Days not listed are closed; a holiday is closed all day in the schedule's time zone. Times are wall-clock
times in that zone, so opening at 09:00 stays 09:00 across a daylight-saving change, and a range that
starts in a skipped hour (02:30 on the night clocks go forward) opens at the first instant after the gap.

Chatwoot's fields (app/models/working_hour.rb, app/models/concerns/out_of_offisable.rb): `day_of_week`
0 = Sunday .. 6, `closed_all_day`, `open_all_day` (stored as 00:00-23:59), `open_hour`/`open_minutes`,
`close_hour`/`close_minutes` (one range a day, closing after opening); the inbox's `timezone` and
`working_hours_enabled` (app/views/api/v1/models/_inbox.json.jbuilder). With `working_hours_enabled`
false the inbox is always open, as Chatwoot treats it. Chatwoot counts the closing minute as open
(`between?`); here a range is open from its start up to, not including, its end, and `open_all_day`
runs to midnight.

Errors: `ValueError` with one sentence naming the part that is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Clock = Callable[[], datetime]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
MIDNIGHT = time(0, 0)
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_LOOKAHEAD_DAYS = 400  # a year of holidays plus a margin: beyond it a schedule never opens


def utc_now() -> datetime:
    """The default clock: an aware datetime in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Range:
    """Open from `start` up to `end` (wall-clock, same day); `end` None means midnight."""

    start: time
    end: time | None

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}" if self.end else f"{self.start:%H:%M}-24:00"


@dataclass(frozen=True)
class Schedule:
    """Opening hours in one time zone. `week[0]` is Monday's ranges ... `week[6]` Sunday's."""

    zone: ZoneInfo
    week: tuple[tuple[Range, ...], ...]
    holidays: frozenset[date] = field(default_factory=frozenset)

    # building ---------------------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, holidays: str | Iterable[date] = "") -> Schedule:
        """`"Europe/Paris; mon-fri 09:00-18:00; sat 10:00-13:00"` (days: mon..sun, ranges `a-b`, commas
        between ranges, `24:00` for midnight), holidays `"2026-12-25,2027-01-01"`."""
        parts = [p.strip() for p in text.split(";") if p.strip()]
        if not parts:
            raise ValueError("business hours must start with a time zone, e.g. Europe/Paris; mon-fri 09:00-17:00")
        zone = _zone(parts[0])
        week: list[list[Range]] = [[] for _ in DAYS]
        for part in parts[1:]:
            days, _, ranges = part.partition(" ")
            if not ranges.strip():
                raise ValueError(f"'{part}' must be days then ranges, e.g. mon-fri 09:00-17:00")
            for day in _days(days):
                week[day].extend(_range(r) for r in ranges.replace(" ", "").split(","))
        return cls(zone, tuple(tuple(sorted(d, key=lambda r: r.start)) for d in week), _holidays(holidays))

    @classmethod
    def from_inbox(cls, inbox: Mapping[str, Any], holidays: str | Iterable[date] = "") -> Schedule:
        """An inbox's working hours as Chatwoot's inbox JSON gives them (see the module docstring)."""
        zone = _zone(str(inbox.get("timezone") or "UTC"))
        if not inbox.get("working_hours_enabled"):
            return cls.always(zone)
        week: list[tuple[Range, ...]] = [() for _ in DAYS]
        for hours in inbox.get("working_hours") or []:
            day = (int(hours["day_of_week"]) - 1) % 7  # Chatwoot: 0 = Sunday; here 0 = Monday
            if hours.get("closed_all_day"):
                continue
            if hours.get("open_all_day"):
                week[day] = (Range(MIDNIGHT, None),)
                continue
            start = time(int(hours["open_hour"]), int(hours["open_minutes"]))
            end = time(int(hours["close_hour"]), int(hours["close_minutes"]))
            week[day] = (Range(start, end),) if end > start else ()
        return cls(zone, tuple(week), _holidays(holidays))

    @classmethod
    def always(cls, zone: ZoneInfo | None = None) -> Schedule:
        """Open every minute (no business hours)."""
        return cls(zone or ZoneInfo("UTC"), tuple((Range(MIDNIGHT, None),) for _ in DAYS))

    # asking -----------------------------------------------------------------------------------------------
    def is_open(self, at: datetime) -> bool:
        """Is `at` (an aware datetime) inside the opening hours?"""
        local = at.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        return any(self._start(local.date(), r) <= at < self._end(local.date(), r)
                   for r in self.week[local.weekday()])

    def next_opening(self, at: datetime) -> datetime | None:
        """The first instant at or after `at` when the schedule is open (`at` itself when open now), as an
        aware datetime in the schedule's zone; None when it never opens within about a year."""
        if self.is_open(at):
            return at.astimezone(self.zone)
        day = at.astimezone(self.zone).date()
        for offset in range(_LOOKAHEAD_DAYS):
            current = day + timedelta(days=offset)
            if current in self.holidays:
                continue
            for r in self.week[current.weekday()]:
                start = self._start(current, r)
                if start >= at and start < self._end(current, r):
                    return start
        return None

    def describe(self) -> str:
        """The hours as the settings write them, e.g. `Europe/Paris; mon 09:00-17:00; ...`."""
        days = "; ".join(f"{name} {','.join(str(r) for r in ranges)}"
                         for name, ranges in zip(DAYS, self.week, strict=True) if ranges)
        return f"{self.zone.key}; {days}" if days else f"{self.zone.key} (always closed)"

    # wall-clock to instants ---------------------------------------------------------------------------------
    def _start(self, day: date, r: Range) -> datetime:
        return _instant(day, r.start, self.zone)

    def _end(self, day: date, r: Range) -> datetime:
        if r.end is None:
            return _instant(day + timedelta(days=1), MIDNIGHT, self.zone)
        return _instant(day, r.end, self.zone)


def _instant(day: date, clock_time: time, zone: ZoneInfo) -> datetime:
    """The instant a wall-clock time happens in `zone`. In a repeated hour (clocks back) the first of the two;
    in a skipped hour (clocks forward) the instant the gap ends, so an opening inside it is not lost."""
    local = datetime.combine(day, clock_time, tzinfo=zone)
    naive = local.replace(tzinfo=None)
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return local
    # Skipped: the gap lies between the two readings of the time (before and after the change); walk it.
    instant = local.replace(fold=1).astimezone(UTC)
    last = local.replace(fold=0).astimezone(UTC)
    while instant < last and instant.astimezone(zone).replace(tzinfo=None) < naive:
        instant += timedelta(minutes=1)
    return instant.astimezone(zone)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{name.strip()}' is not a time zone; use an IANA name such as Europe/Paris") from None


def _days(text: str) -> list[int]:
    found: list[int] = []
    for part in text.lower().split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"'{text}' is not a day or days; use mon..sun, e.g. mon-fri or sat,sun")
        start, end = DAYS.index(first), DAYS.index(last or first)
        found.extend(range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)])
    return found


def _range(text: str) -> Range:
    match = _RANGE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a range of hours; write it 09:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise ValueError(f"'{text}' has a time that does not exist")
    start, end = time(h1, m1), None if h2 == 24 else time(h2, m2)
    if end is not None and end <= start:
        raise ValueError(f"'{text}' closes before it opens; a range ends the same day (24:00 for midnight)")
    return Range(start, end)


def _holidays(value: str | Iterable[date]) -> frozenset[date]:
    if not isinstance(value, str):
        return frozenset(value)
    days: set[date] = set()
    for part in filter(None, (p.strip() for p in value.split(","))):
        try:
            days.add(date.fromisoformat(part))
        except ValueError:
            raise ValueError(f"holiday '{part}' is not a date; write it 2026-12-25") from None
    return frozenset(days)
