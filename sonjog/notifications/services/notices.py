"""Event notices: telling subscribers about an event (a payment, a bill, a suspension) in the operator's
wording, one at a time or 30,000 at once, in batches, de-duplicated by key.

The wording is rendered by `selectors.render` (from `rendering.py`); this module picks the audience,
the channels and the recipients, and writes the messages with one INSERT.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from sonjog.billing.models import Bill, BillingRun
from sonjog.billing.terms import operator_today
from sonjog.core.money import ZERO
from sonjog.customers.models import Subscriber
from sonjog.notifications import selectors
from sonjog.notifications.exceptions import InvalidRecipient, NotificationError, UnknownEvent
from sonjog.notifications.models import URGENT_EVENTS, Channel, Event, Message
from sonjog.notifications.segments import count_segments
from sonjog.notifications.services.jobs import PRIORITY_NORMAL, PRIORITY_URGENT, defer_many, retry_minutes
from sonjog.notifications.services.queueing import first_attempt_at, normalize_recipient
from sonjog.operators.models import Operator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """One subscriber to tell about an event: the values the caller knows (a payment's amount, a bill's
    due date), the channels to use (None: the operator's defaults) and the key that makes it send once."""

    subscriber_id: int
    context: Mapping[str, Any] | None = None
    channels: Sequence[str] | None = None
    dedup_key: str = ""


def notify_event(
    *,
    subscriber: Subscriber,
    event: str,
    context: Mapping[str, Any] | None = None,
    channels: Iterable[str] | None = None,
    dedup_key: str = "",
) -> list[Message]:
    """Tell one subscriber about an event; see `notify_event_many`. Returns the messages it queued."""
    notice = Notice(subscriber.pk, context, list(channels) if channels is not None else None, dedup_key)
    message_ids = notify_event_many(operator=subscriber.operator, event=event, notices=[notice])
    return list(Message.objects.filter(pk__in=message_ids).order_by("pk")) if message_ids else []


# One row per message, whatever its channel: 30,000 reminders are one INSERT, not 30,000.
_NOTICES_INSERT_SQL = """
INSERT INTO notifications_message (operator_id, subscriber_id, account_id, channel, provider, event,
    is_urgent, recipient, language, subject, body, encoding, segments, cost, status, failure_reason,
    provider_message_id, attempts, max_attempts, next_attempt_at, last_error, dedup_key, created_at)
SELECT %(operator)s, r.subscriber_id, r.account_id, r.channel, r.provider, %(event)s, %(urgent)s, r.recipient,
    r.language, r.subject, r.body, r.encoding, r.segments, r.cost, 'queued', '', '', 0, %(max_attempts)s,
    %(next_attempt_at)s, '', r.dedup_key, %(now)s
FROM unnest(%(subscriber_ids)s::bigint[], %(account_ids)s::bigint[], %(channels)s::text[], %(providers)s::text[],
            %(recipients)s::text[], %(languages)s::text[], %(subjects)s::text[], %(bodies)s::text[],
            %(encodings)s::text[], %(segments)s::int[], %(costs)s::numeric[], %(dedup_keys)s::text[])
     AS r(subscriber_id, account_id, channel, provider, recipient, language, subject, body, encoding, segments,
          cost, dedup_key)
ON CONFLICT (operator_id, channel, dedup_key) WHERE dedup_key <> '' DO NOTHING
RETURNING id
"""


def notify_event_many(*, operator: Operator, event: str, notices: Sequence[Notice]) -> list[int]:
    """Tell many subscribers of one operator about an event on each channel it has an active account
    for; returns the ids of the messages queued.

    Runs inside the caller's transaction. Picks the operator's wording (its own template, else the
    built-in one) in each subscriber's language, renders it and queues it. A channel without an active
    account, without a recipient (no e-mail address) or muted by the subscriber is skipped, and so is an
    event the operator muted, so this queues nothing for an operator that set up no messaging at all.
    A notice whose `dedup_key` was already used on a channel queues nothing there again, even when two
    callers race. The reads are a handful of queries and the writes two statements, whatever the count:
    a 30,000-subscriber reminder run renders and queues in seconds."""
    if event not in Event.values:
        raise UnknownEvent(f"unknown event '{event}'")
    settings = selectors.notification_settings_for(operator)
    urgent = event in URGENT_EVENTS
    if (event in settings.muted_events and not urgent) or not notices:
        return []
    default_channels = list(settings.default_channels or selectors.DEFAULT_CHANNELS)
    for notice in notices:
        unknown = sorted(set(notice.channels or ()) - set(Channel.values))
        if unknown:
            raise NotificationError(f"unknown channel(s) {', '.join(unknown)}")
    accounts = selectors.active_accounts(operator)
    if not accounts:
        return []
    audience = selectors.notice_audience(
        operator, event, [notice.subscriber_id for notice in notices], notices, settings=settings
    )
    rows: dict[str, list[Any]] = {name: [] for name in _NOTICE_COLUMNS}
    for notice in notices:
        person = audience.people.get(notice.subscriber_id)
        if person is None:
            continue  # another operator's subscriber, or gone: never message across operators
        wanted = notice.channels if notice.channels is not None else default_channels
        raw: dict[str, Any] | None = None
        for channel in dict.fromkeys(wanted):
            account = accounts.get(channel)
            if account is None or (channel in person.muted_channels and not urgent):
                continue
            recipient = person.email if channel == Channel.EMAIL else person.phone
            wording = audience.wording(channel, person.language)
            if not recipient or wording is None:
                continue
            try:
                recipient = normalize_recipient(channel, recipient, operator)
            except InvalidRecipient:
                # A stored address that no longer validates must not roll back the caller's payment.
                logger.warning("subscriber %s has an unusable %s recipient", notice.subscriber_id, channel)
                continue
            if raw is None:
                raw = audience.values(person, notice.context)
            subject, body = selectors.render(wording, raw, operator=operator, language=person.language, channel=channel)
            if not body:
                continue
            encoding, segments, cost = "", 0, ZERO
            if channel == Channel.SMS:
                count = count_segments(body)
                encoding, segments, cost = count.encoding, count.segments, selectors.sms_cost(count.segments, account)
            for name, value in zip(
                _NOTICE_COLUMNS,
                (
                    notice.subscriber_id,
                    account.pk,
                    channel,
                    account.kind,
                    recipient,
                    person.language,
                    subject[:200],
                    body,
                    encoding,
                    segments,
                    cost,
                    notice.dedup_key[:200],
                ),
                strict=True,
            ):
                rows[name].append(value)
    if not rows["subscriber_ids"]:
        return []
    now = timezone.now()
    first_attempt = first_attempt_at(operator, urgent, now, settings)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _NOTICES_INSERT_SQL,
            {
                "operator": operator.pk,
                "event": event,
                "urgent": urgent,
                "max_attempts": len(retry_minutes()) + 1,
                "next_attempt_at": first_attempt,
                "now": now,
                **rows,
            },
        )
        message_ids = sorted(row[0] for row in cursor.fetchall())
        defer_many(
            message_ids, first_attempt if first_attempt > now else None, PRIORITY_URGENT if urgent else PRIORITY_NORMAL
        )
    return message_ids


_NOTICE_COLUMNS = (
    "subscriber_ids",
    "account_ids",
    "channels",
    "providers",
    "recipients",
    "languages",
    "subjects",
    "bodies",
    "encodings",
    "segments",
    "costs",
    "dedup_keys",
)


# Notices are queued in batches of this many, one transaction each: a crash loses at most one batch's
# work, which the dedup keys let the next run redo without sending anything twice.
NOTICE_BATCH = 5000


def event_notices_queue(event: str, subscriber_ids: list[int], dedup_prefix: str, *, batch: int = NOTICE_BATCH) -> int:
    by_operator: dict[int, list[int]] = {}
    for subscriber_id, operator_id in Subscriber.objects.filter(pk__in=subscriber_ids).values_list("pk", "operator"):
        by_operator.setdefault(operator_id, []).append(subscriber_id)
    queued = 0
    for operator in Operator.objects.filter(pk__in=by_operator).order_by("pk"):
        notices = [Notice(pk, dedup_key=f"{dedup_prefix}:{pk}") for pk in sorted(by_operator[operator.pk])]
        queued += notices_queue_batched(operator=operator, event=event, notices=notices, batch=batch)
    return queued


def notices_queue_batched(
    *, operator: Operator, event: str, notices: Sequence[Notice], batch: int = NOTICE_BATCH
) -> int:
    """`notify_event_many` in batches, each its own transaction; returns how many messages were queued."""
    queued = 0
    for start in range(0, len(notices), batch):
        with transaction.atomic():
            queued += len(notify_event_many(operator=operator, event=event, notices=notices[start : start + batch]))
    return queued


def bill_notices_queue(run_id: int, *, batch: int = NOTICE_BATCH) -> int:
    """Queue "bill generated" for each subscriber billed in the run, quoting its latest bill of the run
    (a backfilled activation does not text once per month). A bill already past its due date when the
    job runs gets no notice: a job that waited (a worker down, an SMS account set up only now, a year
    of history loaded at once) must not announce old bills; reminders and suspension notices speak
    for those. Safe to repeat: one message per bill."""
    run = BillingRun.objects.select_related("operator").filter(pk=run_id).first()
    if run is None or not selectors.active_accounts(run.operator):
        return 0
    latest = (
        Bill.objects.filter(run_id=run_id, reversed_at__isnull=True, due_date__gte=operator_today(run.operator))
        .order_by("subscriber_id", "-period_month")
        .distinct("subscriber_id")
        .values_list("pk", "subscriber_id", "due_date")
    )
    notices = [
        Notice(subscriber_id, {"due_date": due_date}, dedup_key=f"bill_generated:bill:{bill_id}")
        for bill_id, subscriber_id, due_date in latest
    ]
    return notices_queue_batched(operator=run.operator, event=Event.BILL_GENERATED, notices=notices, batch=batch)
