"""The cron next-fire calculator: hand-worked cases, then agreement with croniter (Procrastinate's own
cron engine, installed with it) over every expression the jobs use."""

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from sonjog.automation.cron import CronError, next_fire, parse_cron
from sonjog.automation.registry import JOBS

UTC = dt.UTC


def at(*parts, tz=UTC):
    return dt.datetime(*parts).replace(tzinfo=tz)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("17 * * * *", at(2027, 6, 15, 6, 0), at(2027, 6, 15, 6, 17)),
        # Strictly after: a moment exactly on a fire time gives the next one.
        ("17 * * * *", at(2027, 6, 15, 6, 17), at(2027, 6, 15, 7, 17)),
        ("17 * * * *", at(2027, 6, 15, 6, 16, 59, 999), at(2027, 6, 15, 6, 17)),
        ("17 * * * *", at(2027, 12, 31, 23, 30), at(2028, 1, 1, 0, 17)),
        ("* * * * *", at(2027, 6, 15, 6, 0, 30), at(2027, 6, 15, 6, 1)),
        ("*/15 * * * *", at(2027, 6, 15, 6, 14, 59), at(2027, 6, 15, 6, 15)),
        ("*/15 * * * *", at(2027, 6, 15, 6, 45), at(2027, 6, 15, 7, 0)),
        ("5/20 * * * *", at(2027, 6, 15, 6, 26), at(2027, 6, 15, 6, 45)),
        ("0,30 8-9 * * *", at(2027, 6, 15, 9, 30), at(2027, 6, 16, 8, 0)),
        ("45 21 28-31 * *", at(2027, 2, 10), at(2027, 2, 28, 21, 45)),
        ("45 21 28-31 * *", at(2027, 2, 28, 21, 45), at(2027, 3, 28, 21, 45)),
        ("45 21 28-31 * *", at(2027, 4, 30, 21, 46), at(2027, 5, 28, 21, 45)),
        ("0 12 1 * *", at(2027, 6, 15), at(2027, 7, 1, 12, 0)),
        ("0 12 1 * *", at(2027, 12, 5), at(2028, 1, 1, 12, 0)),
        ("0 0 29 2 *", at(2027, 3, 1), at(2028, 2, 29, 0, 0)),
        ("0 0 31 * *", at(2027, 4, 1), at(2027, 5, 31, 0, 0)),
        # Tuesday 15 June 2027: the next Monday, and Sunday written as 0 or 7.
        ("0 9 * * 1", at(2027, 6, 15), at(2027, 6, 21, 9, 0)),
        ("0 9 * * 0", at(2027, 6, 15), at(2027, 6, 20, 9, 0)),
        ("0 9 * * 7", at(2027, 6, 15), at(2027, 6, 20, 9, 0)),
        ("0 9 * * 1-5", at(2027, 6, 18, 10), at(2027, 6, 21, 9, 0)),
        # Both day fields restricted: either may match (the 13th, or any Friday).
        ("0 0 13 * 5", at(2027, 6, 15), at(2027, 6, 18, 0, 0)),
        ("0 0 16 * 5", at(2027, 6, 15), at(2027, 6, 16, 0, 0)),
        ("0 0 1 1 *", at(2027, 6, 15), at(2028, 1, 1, 0, 0)),
        # An aware moment in another zone: 06:00 in Dhaka is midnight UTC.
        ("30 0 * * *", at(2027, 6, 15, 6, 0, tz=ZoneInfo("Asia/Dhaka")), at(2027, 6, 15, 0, 30)),
    ],
)
def test_next_fire(expression, after, expected):
    result = next_fire(expression, after)
    assert result == expected
    assert result.tzinfo is not None and result.utcoffset() == dt.timedelta(0)
    assert parse_cron(expression).matches(result)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day of month"),
        ("* * * 13 *", "month"),
        ("* * * * 8", "day of week"),
        ("*/0 * * * *", "minute"),
        ("a * * * *", "minute"),
        ("5-1 * * * *", "minute"),
        ("* * * *", "five fields"),
        ("* * * * * *", "five fields"),
    ],
)
def test_bad_expressions_are_refused_with_the_field_named(expression, message):
    with pytest.raises(CronError, match=message):
        parse_cron(expression)


def test_an_impossible_date_never_fires():
    with pytest.raises(CronError, match="never fires"):
        next_fire("0 0 31 2 *", at(2027, 1, 1))


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        next_fire("* * * * *", dt.datetime(2027, 1, 1))


EXTRA = ["0 9 * * 1-5", "0,30 8-9 * * *", "0 0 29 2 *", "5/20 * * * *", "0 0 1 */3 *"]
STARTS = [
    at(2027, 1, 1),
    at(2027, 2, 27, 23, 59, 30),
    at(2027, 6, 15, 6, 17),
    at(2027, 12, 31, 21, 45),
    at(2028, 2, 28, 12, 1),
    at(2030, 6, 30, 23, 59),
]


@pytest.mark.parametrize(
    ("expression", "start"), list(itertools.product(sorted({job.cron for job in JOBS.values()} | set(EXTRA)), STARTS))
)
def test_agrees_with_croniter(expression, start):
    expected = croniter(expression, start).get_next(dt.datetime)
    assert next_fire(expression, start) == expected.astimezone(UTC)
