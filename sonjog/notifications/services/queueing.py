"""Queueing messages: one message, a bulk SMS to many subscribers, and failed messages sent again.

Each writes its Message rows and defers their sending jobs in the caller's transaction. The shared
queueing rules live here too: recipients are normalised (phone numbers to E.164, e-mail validated),
and non-urgent messages wait for the end of the operator's quiet hours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from sonjog.core.audit import audit
from sonjog.core.money import ZERO
from sonjog.customers.exceptions import InvalidPhone
from sonjog.customers.models import Subscriber
from sonjog.customers.phone import normalize_phone
from sonjog.notifications import selectors
from sonjog.notifications.exceptions import (
    InsufficientSmsCredit,
    InvalidRecipient,
    InvalidTemplate,
    NoProviderAccount,
    NotificationError,
    ProviderAccountError,
    UnknownEvent,
)
from sonjog.notifications.models import (
    URGENT_EVENTS,
    BulkSend,
    Channel,
    Event,
    Language,
    Message,
    MessageTemplate,
    NotificationSettings,
    ProviderAccount,
)
from sonjog.notifications.scheduling import quiet_hours_end
from sonjog.notifications.segments import count_segments
from sonjog.notifications.services.jobs import (
    PRIORITY_BULK,
    defer_many,
    defer_send,
    message_priority,
    priority_of,
    retry_minutes,
)
from sonjog.operators.models import Operator


def normalize_recipient(channel: str, recipient: str, operator: Operator) -> str:
    if channel == Channel.EMAIL:
        try:
            validate_email(recipient)
        except ValidationError:
            raise InvalidRecipient(f"'{recipient}' is not an e-mail address") from None
        return recipient.strip()
    try:
        return normalize_phone(recipient, operator.phone_country)
    except InvalidPhone as error:
        raise InvalidRecipient(str(error)) from error


def first_attempt_at(
    operator: Operator, urgent: bool, now: dt.datetime, settings: NotificationSettings | None = None
) -> dt.datetime:
    if urgent:
        return now
    settings = settings or selectors.notification_settings_for(operator)
    return quiet_hours_end(settings, operator.time_zone, now) or now


def message_queue(
    *,
    operator: Operator,
    channel: str,
    recipient: str,
    body: str,
    subject: str = "",
    subscriber: Subscriber | None = None,
    event: str = Event.BULK,
    language: str = Language.ENGLISH,
    dedup_key: str = "",
    account: ProviderAccount | None = None,
) -> Message | None:
    """Queue one message and defer its sending job, in the caller's transaction.

    Returns None when a message with the same `dedup_key` was already queued on this channel: the
    database refuses the second one, so concurrent callers cannot both queue it."""
    if event not in Event.values:
        raise UnknownEvent(f"unknown event '{event}'")
    if channel not in Channel.values:
        raise NotificationError(f"unknown channel '{channel}'")
    if subscriber is not None and subscriber.operator_id != operator.pk:
        raise NotificationError("the subscriber belongs to another operator")
    if account is None:
        account = selectors.active_accounts(operator).get(channel)
        if account is None:
            raise NoProviderAccount(f"no active {channel} account is set up")
    elif account.operator_id != operator.pk or account.channel != channel or not account.is_active:
        raise ProviderAccountError(f"'{account}' is not an active {channel} account of this operator")
    recipient = normalize_recipient(channel, recipient, operator)
    body = body.strip()
    if not body:
        raise InvalidTemplate("the message is empty")
    now = timezone.now()
    urgent = event in URGENT_EVENTS
    first_attempt = first_attempt_at(operator, urgent, now)
    encoding, segments, cost = "", 0, ZERO
    if channel == Channel.SMS:
        count = count_segments(body)
        encoding, segments, cost = count.encoding, count.segments, selectors.sms_cost(count.segments, account)
    try:
        with transaction.atomic():
            message = Message.objects.create(
                operator=operator,
                subscriber=subscriber,
                account=account,
                channel=channel,
                provider=account.kind,
                event=event,
                is_urgent=urgent,
                recipient=recipient,
                language=language,
                subject=subject[:200],
                body=body,
                encoding=encoding,
                segments=segments,
                cost=cost,
                max_attempts=len(retry_minutes()) + 1,
                next_attempt_at=first_attempt,
                dedup_key=dedup_key[:200],
                created_at=now,
            )
            defer_send(message.pk, first_attempt if first_attempt > now else None, message_priority(message))
    except IntegrityError as error:
        if _violated_constraint(error) == "message_dedup":
            return None
        raise
    return message


def _violated_constraint(error: IntegrityError) -> str:
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", "") or ""


_BULK_INSERT_SQL = """
INSERT INTO notifications_message (operator_id, subscriber_id, account_id, bulk_id, channel, provider, event,
    is_urgent, recipient, language, subject, body, encoding, segments, cost, status, failure_reason,
    provider_message_id, attempts, max_attempts, next_attempt_at, last_error, dedup_key, created_at)
SELECT %(operator)s, r.subscriber_id, %(account)s, %(bulk)s, 'sms', %(provider)s, 'bulk', false, r.recipient,
    %(language)s, '', r.body, r.encoding, r.segments, r.cost, 'queued', '', '', 0, %(max_attempts)s,
    %(next_attempt_at)s, '', r.dedup_key, %(now)s
FROM unnest(%(subscriber_ids)s::bigint[], %(recipients)s::text[], %(bodies)s::text[], %(encodings)s::text[],
            %(segments)s::int[], %(costs)s::numeric[], %(dedup_keys)s::text[])
     AS r(subscriber_id, recipient, body, encoding, segments, cost, dedup_key)
ON CONFLICT (operator_id, channel, dedup_key) WHERE dedup_key <> '' DO NOTHING
RETURNING id
"""


def bulk_sms_send(
    *,
    operator: Operator,
    subscribers: QuerySet[Subscriber],
    template_or_text: MessageTemplate | str,
    actor: User | None = None,
    dedup_key: str = "",
    allow_partial: bool = False,
) -> BulkSend:
    """Queue one SMS per subscriber (with its own name and due amount), in one transaction.

    Refused when the credit cannot cover the whole send, unless `allow_partial`: then messages go out
    until the credit runs dry and the rest fail with insufficient_balance. With `dedup_key`, a repeated
    send skips subscribers it already reached. Rows are written with one INSERT ... SELECT FROM unnest
    and their jobs with one more statement, so 30,000 recipients take seconds, not minutes."""
    account = selectors.active_accounts(operator).get(Channel.SMS)
    if account is None:
        raise NoProviderAccount("no active SMS account is set up")
    text, language = selectors.bulk_text(operator, template_or_text)
    plan = selectors.bulk_plan(operator, subscribers, text, language)
    credit = selectors.sms_balance(operator).balance
    if plan.cost > credit and not allow_partial:
        raise InsufficientSmsCredit(
            f"this send costs {plan.cost} for {plan.total_segments} SMS but the SMS credit is {credit}; "
            "top up or send to fewer subscribers"
        )
    now = timezone.now()
    first_attempt = first_attempt_at(operator, False, now)
    language = language or selectors.notification_settings_for(operator).default_language
    rows = plan.rows
    with transaction.atomic():
        bulk = BulkSend.objects.create(
            operator=operator,
            text=text,
            requested_by=actor,
            skipped=plan.skipped,
            total_segments=plan.total_segments,
            estimated_cost=plan.cost,
            created_at=now,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                _BULK_INSERT_SQL,
                {
                    "operator": operator.pk,
                    "account": account.pk,
                    "bulk": bulk.pk,
                    "provider": account.kind,
                    "language": language,
                    "max_attempts": len(retry_minutes()) + 1,
                    "next_attempt_at": first_attempt,
                    "now": now,
                    "subscriber_ids": [row.subscriber_id for row in rows],
                    "recipients": [row.recipient for row in rows],
                    "bodies": [row.body for row in rows],
                    "encodings": [row.encoding for row in rows],
                    "segments": [row.segments for row in rows],
                    "costs": [row.cost for row in rows],
                    "dedup_keys": [f"{dedup_key}:{row.subscriber_id}"[:200] if dedup_key else "" for row in rows],
                },
            )
            message_ids = [row[0] for row in cursor.fetchall()]
        defer_many(message_ids, first_attempt if first_attempt > now else None, PRIORITY_BULK)
        bulk.queued = len(message_ids)
        bulk.skipped = plan.skipped + len(rows) - len(message_ids)
        BulkSend.objects.filter(pk=bulk.pk).update(queued=bulk.queued, skipped=bulk.skipped)
        audit(operator=operator, action="notifications.bulk_sms", actor=actor, bulk=bulk.pk, queued=bulk.queued)
    return bulk


# A failed message sent again: a fresh row with the same words to the same recipient, queued now (or
# after quiet hours), linked to the failed one. The one-to-one link makes a second resend of the same
# failure, even from two clicks at once, add nothing.
_RESEND_SQL = """
INSERT INTO notifications_message (operator_id, subscriber_id, account_id, bulk_id, channel, provider, event,
    is_urgent, recipient, language, subject, body, encoding, segments, cost, status, failure_reason,
    provider_message_id, attempts, max_attempts, next_attempt_at, last_error, dedup_key, resent_from_id,
    created_at)
SELECT m.operator_id, m.subscriber_id, m.account_id, m.bulk_id, m.channel, m.provider, m.event, m.is_urgent,
    m.recipient, m.language, m.subject, m.body, m.encoding, m.segments, m.cost, 'queued', '', '', 0,
    %(max_attempts)s, CASE WHEN m.is_urgent THEN %(now)s ELSE %(first_attempt)s END, '', '', m.id, %(now)s
FROM notifications_message m
WHERE m.operator_id = %(operator)s AND m.id = ANY(%(ids)s::bigint[]) AND m.status = 'failed'
ORDER BY m.id
ON CONFLICT (resent_from_id) DO NOTHING
RETURNING id, next_attempt_at, is_urgent, bulk_id
"""


def messages_resend(*, operator: Operator, message_ids: Sequence[int], actor: User | None = None) -> int:
    """Send failed messages of the operator again (after a top-up, a fixed sender ID or a corrected
    number); returns how many were queued. Messages of other operators, messages that did not fail
    and failures already resent are left alone."""
    if not message_ids:
        return 0
    now = timezone.now()
    first_attempt = first_attempt_at(operator, False, now)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                _RESEND_SQL,
                {
                    "operator": operator.pk,
                    "ids": list(message_ids),
                    "max_attempts": len(retry_minutes()) + 1,
                    "now": now,
                    "first_attempt": first_attempt,
                },
            )
            queued = cursor.fetchall()
        groups: dict[tuple[dt.datetime | None, int], list[int]] = {}
        for message_id, next_attempt_at, is_urgent, bulk_id in queued:
            at = next_attempt_at if next_attempt_at > now else None
            groups.setdefault((at, priority_of(is_urgent, bulk_id)), []).append(message_id)
        for (at, priority), ids in groups.items():
            defer_many(ids, at, priority)
        if queued:
            audit(operator=operator, action="notifications.resend", actor=actor, queued=len(queued))
    return len(queued)
