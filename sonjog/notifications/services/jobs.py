"""Notifications' background jobs: their names, priorities and retry policy, and deferring them.

Jobs are deferred by name through Procrastinate's app rather than by importing `tasks.py`: the task
functions call these services, so the services must not import them back. `tasks.py` registers its
tasks under the names defined here, and `allow_unknown=False` makes a name that is not registered
fail loudly instead of queueing a job no worker would pick up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence

from django.conf import settings as django_settings
from django.db import connection, transaction
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.types import JSONValue

from sonjog.notifications.models import Message

QUEUE = "notifications"
SEND_MESSAGE = "notifications.send_message"
BILL_NOTICES = "notifications.bill_notices"
EVENT_NOTICES = "notifications.event_notices"

# Waits before the 2nd, 3rd and 4th attempt after a temporary failure; then the message fails.
DEFAULT_RETRY_MINUTES = (1, 5, 15)
# Workers take higher priorities first: a one-time code must not wait behind a 30,000-message campaign.
PRIORITY_URGENT = 10
PRIORITY_NORMAL = 0
PRIORITY_BULK = -10


def retry_minutes() -> Sequence[int]:
    return tuple(getattr(django_settings, "SONJOG_NOTIFY_RETRY_MINUTES", DEFAULT_RETRY_MINUTES))


def job_lock(message_id: int) -> str:
    return f"notifications.message:{message_id}"


def message_priority(message: Message) -> int:
    return priority_of(message.is_urgent, message.bulk_id)


def priority_of(is_urgent: bool, bulk_id: int | None) -> int:
    if is_urgent:
        return PRIORITY_URGENT
    return PRIORITY_BULK if bulk_id is not None else PRIORITY_NORMAL


def defer_send(message_id: int, at: dt.datetime | None = None, priority: int = PRIORITY_NORMAL) -> None:
    # The savepoint keeps the caller's transaction usable should a job for the message already wait.
    with contextlib.suppress(AlreadyEnqueued), transaction.atomic():
        app.configure_task(
            SEND_MESSAGE,
            allow_unknown=False,
            schedule_at=at,
            queueing_lock=job_lock(message_id),
            priority=priority,
        ).defer(message_id=message_id)


# Procrastinate's own batch function, fed from SQL: building 30,000 Job objects and adapting them one by
# one costs seconds in Python, and Task.batch_defer cannot give each job its own queueing lock.
_DEFER_MANY_SQL = """
SELECT cardinality(procrastinate_defer_jobs_v1(ARRAY(
    SELECT ROW(%(queue)s, %(task)s, %(priority)s, NULL, 'notifications.message:' || id,
               jsonb_build_object('message_id', id), %(at)s)::procrastinate_job_to_defer_v1
    FROM unnest(%(ids)s::bigint[]) AS id)))
"""


def defer_many(message_ids: Sequence[int], at: dt.datetime | None, priority: int) -> None:
    if not message_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _DEFER_MANY_SQL,
            {"queue": QUEUE, "task": SEND_MESSAGE, "priority": priority, "at": at, "ids": list(message_ids)},
        )


def bill_notices_defer(*, run_id: int) -> None:
    """Ask a worker to tell the subscribers of a billing run about their bills; call it inside the run's
    transaction. A job, not inline: a 30,000-bill run must stay within its seconds."""
    app.configure_task(BILL_NOTICES, allow_unknown=False).defer(run_id=run_id)


def event_notices_defer(*, event: str, subscriber_ids: list[int], dedup_prefix: str) -> None:
    """Ask a worker to send one event's message to many subscribers (the overdue sweep's suspension
    notices); call it inside the caller's transaction. Each message's key is `<prefix>:<subscriber>`,
    so a repeated sweep queues nothing twice."""
    if subscriber_ids:
        ids: list[JSONValue] = list(subscriber_ids)
        app.configure_task(EVENT_NOTICES, allow_unknown=False).defer(
            event=event, subscriber_ids=ids, dedup_prefix=dedup_prefix
        )
