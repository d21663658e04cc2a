"""Business hours: open or closed, and when people are back, across weekends, holidays and daylight saving."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from botkit.hours import Schedule

PARIS = ZoneInfo("Europe/Paris")
WEEK = "Europe/Paris; mon-fri 09:00-12:30,13:30-18:00; sat 10:00-13:00"


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def test_open_inside_a_range_and_closed_at_lunch_and_at_closing_time() -> None:
    schedule = Schedule.parse(WEEK)
    assert schedule.is_open(paris(2026, 12, 1, 9, 0))  # a Tuesday, opening minute
    assert not schedule.is_open(paris(2026, 12, 1, 12, 45))
    assert not schedule.is_open(paris(2026, 12, 1, 18, 0))  # the end is not included
    assert schedule.is_open(paris(2026, 12, 5, 12, 59))  # Saturday
    assert not schedule.is_open(paris(2026, 12, 6, 11, 0))  # Sunday is not listed: closed


def test_next_opening_after_friday_evening_is_monday_morning_in_the_zone() -> None:
    schedule = Schedule.parse("Europe/Paris; mon-fri 09:00-17:00")
    friday_evening = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)  # 19:00 in Paris
    assert schedule.next_opening(friday_evening) == paris(2026, 12, 7, 9, 0)
    assert schedule.next_opening(paris(2026, 12, 1, 10, 0)) == paris(2026, 12, 1, 10, 0)  # open now: now


def test_holidays_are_closed_and_skipped() -> None:
    schedule = Schedule.parse("Europe/Paris; mon-fri 09:00-17:00", holidays="2026-12-25,2026-12-28")
    assert not schedule.is_open(paris(2026, 12, 25, 10, 0))
    # Thursday evening the 24th: Friday is Christmas, the weekend, Monday the 28th a holiday too.
    assert schedule.next_opening(paris(2026, 12, 24, 17, 30)) == paris(2026, 12, 29, 9, 0)


def test_opening_hours_stay_on_the_wall_clock_across_daylight_saving() -> None:
    schedule = Schedule.parse("Europe/Paris; mon-fri 09:00-17:00")
    # Clocks go back on Sunday 25 October 2026: 09:00 on Monday is 08:00 UTC, not 07:00.
    opening = schedule.next_opening(paris(2026, 10, 23, 18, 0))
    assert opening == paris(2026, 10, 26, 9, 0)
    assert opening.astimezone(UTC) == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    # Clocks go forward on Sunday 29 March 2026: Friday 09:00 is 08:00 UTC, Monday 09:00 is 07:00 UTC.
    assert schedule.next_opening(paris(2026, 3, 27, 18, 0)).astimezone(UTC) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


def test_an_opening_inside_the_skipped_hour_opens_when_the_gap_ends() -> None:
    schedule = Schedule.parse("Europe/Paris; sun 02:30-04:00")
    opening = schedule.next_opening(paris(2026, 3, 28, 12, 0))
    assert opening is not None
    assert opening.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST, the gap's end
    assert schedule.is_open(opening)


def test_a_schedule_that_never_opens_has_no_next_opening() -> None:
    assert Schedule.parse("UTC").next_opening(datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_chatwoot_inbox_working_hours() -> None:
    # The shape of GET /api/v1/accounts/1/inboxes/1 (app/views/api/v1/models/_inbox.json.jbuilder), with
    # Chatwoot's default week (app/models/concerns/out_of_offisable.rb) and Saturday open all day.
    days = [{"day_of_week": 0, "closed_all_day": True, "open_hour": None, "open_minutes": None,
             "close_hour": None, "close_minutes": None, "open_all_day": False}]
    days += [{"day_of_week": d, "closed_all_day": False, "open_hour": 9, "open_minutes": 0, "close_hour": 17,
              "close_minutes": 0, "open_all_day": False} for d in range(1, 6)]
    days += [{"day_of_week": 6, "closed_all_day": False, "open_hour": 0, "open_minutes": 0, "close_hour": 23,
              "close_minutes": 59, "open_all_day": True}]
    inbox = {"id": 1, "working_hours_enabled": True, "timezone": "America/New_York", "working_hours": days}
    schedule = Schedule.from_inbox(inbox)
    new_york = ZoneInfo("America/New_York")
    assert schedule.is_open(datetime(2026, 12, 1, 9, 0, tzinfo=new_york))  # Tuesday (day_of_week 2)
    assert not schedule.is_open(datetime(2026, 12, 6, 12, 0, tzinfo=new_york))  # Sunday (0) closed
    assert schedule.is_open(datetime(2026, 12, 5, 23, 59, 30, tzinfo=new_york))  # Saturday open all day
    assert schedule.next_opening(datetime(2026, 12, 6, 12, 0, tzinfo=new_york)) == datetime(
        2026, 12, 7, 9, 0, tzinfo=new_york)
    # Working hours switched off in Chatwoot: always open.
    assert Schedule.from_inbox({**inbox, "working_hours_enabled": False}).is_open(
        datetime(2026, 12, 6, 3, 0, tzinfo=new_york))


@pytest.mark.parametrize(("text", "words"), [
    ("", "time zone"),
    ("Mars/Olympus; mon 09:00-17:00", "not a time zone"),
    ("UTC; mon-fry 09:00-17:00", "not a day"),
    ("UTC; mon 17:00-09:00", "closes before it opens"),
    ("UTC; mon 9-17", "not a range"),
    ("UTC; mon", "days then ranges"),
])
def test_a_wrong_schedule_says_which_part_is_wrong(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Schedule.parse(text)


def test_days_wrap_around_the_week_and_describe_round_trips() -> None:
    schedule = Schedule.parse("UTC; fri-mon 08:00-24:00", holidays=[date(2026, 1, 2)])
    assert [bool(ranges) for ranges in schedule.week] == [True, False, False, False, True, True, True]
    assert Schedule.parse(schedule.describe()).week == schedule.week
