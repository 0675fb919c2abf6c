"""The window of business dates an operator accepts (activation, payment received, adjustment,
package change, termination): from its start of records (default two years back) to a short horizon
ahead. A date outside it is a typing slip (1900-01-01 once created 1,524 bills in one request), not
history: loading older history means setting the operator's start of records first."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from sonjog.operators.models import Operator


def operator_today(operator: Operator) -> dt.date:
    """Today's calendar date where the operator is, whatever the server's own time zone."""
    return timezone.localdate(timezone=ZoneInfo(operator.time_zone))


def operator_date_of(operator: Operator, moment: dt.datetime) -> dt.date:
    """The operator's calendar date of a moment."""
    return timezone.localtime(moment, ZoneInfo(operator.time_zone)).date()


def operator_local_now(operator: Operator, now: dt.datetime | None = None) -> dt.datetime:
    """Now (or `now`) on the operator's wall clock."""
    return timezone.localtime(now or timezone.now(), ZoneInfo(operator.time_zone))


def business_date_window(operator: Operator, today: dt.date) -> tuple[dt.date, dt.date]:
    """[earliest, latest] business dates the operator accepts on `today` (its own calendar day)."""
    if operator.records_start is not None:
        earliest = operator.records_start
    else:
        # Two years back, on the same calendar day (29 February falls back to the 28th).
        try:
            earliest = today.replace(year=today.year - 2)
        except ValueError:
            earliest = today.replace(year=today.year - 2, day=28)
    return earliest, today + dt.timedelta(days=settings.SONJOG_BUSINESS_DATE_HORIZON_DAYS)


def business_date_problem(
    operator: Operator, day: dt.date, today: dt.date, *, what: str, actor: Any = None
) -> str | None:
    """Why `day` is refused as the operator's `what` date, or None when it is accepted. A date in a
    closed period (on or before `books_closed_through`) needs the actor's permission to backdate; the
    system itself (no actor: jobs, the command line run by the installation's administrator) may."""
    closed = operator.books_closed_through
    acting = actor is not None and getattr(actor, "pk", None)
    if closed is not None and day <= closed and acting and not actor.has_perm("operators.backdate_closed_period"):
        return _(
            "The books of %(operator)s are closed through %(closed)s; a %(what)s dated %(day)s needs "
            "the permission to backdate into a closed period (ask an owner or a manager)."
        ) % {
            "operator": operator.name,
            "closed": date_format(closed, "SHORT_DATE_FORMAT"),
            "what": what,
            "day": date_format(day, "SHORT_DATE_FORMAT"),
        }
    earliest, latest = business_date_window(operator, today)
    if day < earliest:
        return _(
            "The %(what)s date %(day)s is before %(operator)s's start of records (%(earliest)s); "
            "set an earlier start of records to enter older history."
        ) % {
            "what": what,
            "day": date_format(day, "SHORT_DATE_FORMAT"),
            "operator": operator.name,
            "earliest": date_format(earliest, "SHORT_DATE_FORMAT"),
        }
    if day > latest:
        return _("The %(what)s date %(day)s is more than %(days)d days ahead; check the year.") % {
            "what": what,
            "day": date_format(day, "SHORT_DATE_FORMAT"),
            "days": settings.SONJOG_BUSINESS_DATE_HORIZON_DAYS,
        }
    return None
