"""Next-fire times for the five-field cron expressions the jobs use, in UTC as Procrastinate fires them.

Supported per field: `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, and comma lists of those.
Month and weekday names are not supported (no job uses them). As in Vixie cron, when both the
day-of-month and the day-of-week fields are restricted, a day matches if either one does.
Procrastinate evaluates its cron expressions against UTC timestamps, so these times are UTC too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


class CronError(ValueError):
    pass


def _parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _slash, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                start, end = low, high
            elif "-" in base:
                first, last = base.split("-", 1)
                start, end = int(first), int(last)
            else:
                start = int(base)
                # "5/15" means from 5 to the end of the range in steps of 15.
                end = high if step_text else start
        except ValueError:
            raise CronError(f"cron {name} field '{text}' is not a number, range, step or list") from None
        if step < 1 or not low <= start <= end <= high:
            raise CronError(f"cron {name} field '{text}' is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as in cron
    days_restricted: bool
    weekdays_restricted: bool

    def _day_matches(self, day: dt.date) -> bool:
        weekday = day.isoweekday() % 7
        if self.days_restricted and self.weekdays_restricted:
            return day.day in self.days or weekday in self.weekdays
        return day.day in self.days and weekday in self.weekdays

    def matches(self, moment: dt.datetime) -> bool:
        moment = moment.astimezone(dt.UTC)
        return (
            moment.month in self.months
            and self._day_matches(moment.date())
            and moment.hour in self.hours
            and moment.minute in self.minutes
        )

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first fire time strictly after `moment` (an aware datetime), as an aware UTC datetime."""
        if moment.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        start = moment.astimezone(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        day = start.date()
        # A day that matches the date fields comes within eight years even for "29 February on a
        # Sunday"-like combinations; past that the expression cannot fire.
        for _ in range(366 * 8 + 2):
            if day.month in self.months and self._day_matches(day):
                first_hour = start.hour if day == start.date() else 0
                for hour in sorted(h for h in self.hours if h >= first_hour):
                    first_minute = start.minute if (day == start.date() and hour == start.hour) else 0
                    minute = min((m for m in self.minutes if m >= first_minute), default=None)
                    if minute is not None:
                        return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)
            day += dt.timedelta(days=1)
        raise CronError(f"cron '{self.expression}' never fires")


def parse_cron(expression: str) -> CronSchedule:
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(f"cron '{expression}' needs five fields (minute hour day month weekday)")
    parsed = [_parse_field(text, name, low, high) for text, (name, low, high) in zip(fields, _FIELDS, strict=True)]
    weekdays = frozenset(value % 7 for value in parsed[4])  # 7 is Sunday too
    return CronSchedule(
        expression=expression,
        minutes=parsed[0],
        hours=parsed[1],
        days=parsed[2],
        months=parsed[3],
        weekdays=weekdays,
        # Vixie cron's rule: a field that starts with "*" (also "*/2") does not restrict the day.
        days_restricted=not fields[2].startswith("*"),
        weekdays_restricted=not fields[4].startswith("*"),
    )


def next_fire(expression: str, after: dt.datetime) -> dt.datetime:
    return parse_cron(expression).next_after(after)
