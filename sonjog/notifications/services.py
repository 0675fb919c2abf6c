"""Writes for notifications: accounts, templates, settings, SMS credit, queueing, sending, reports.

Sending never happens in a request. `message_queue` writes the Message and defers its job inside the
caller's transaction, so a rolled-back payment never texts its receipt and a committed one always does.
The job (`message_send`) claims the message, debits the SMS credit, calls the provider outside any
transaction, and records the outcome: sent, queued again with backoff (temporary failures), or failed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from procrastinate.exceptions import AlreadyEnqueued

from sonjog.core.audit import audit
from sonjog.core.money import ZERO, round_money
from sonjog.core.outbound import OutboundRefused
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
    KIND_CHANNEL,
    URGENT_EVENTS,
    BulkSend,
    Channel,
    CreditEntryKind,
    Event,
    Language,
    Message,
    MessageStatus,
    MessageTemplate,
    NotificationSettings,
    ProviderAccount,
    SmsBalance,
    SmsCreditEntry,
    SubscriberPreference,
)
from sonjog.notifications.providers import (
    DeliveryUpdate,
    FailureReason,
    OutgoingMessage,
    SendResult,
    provider_for,
)
from sonjog.notifications.rendering import validate_template_text
from sonjog.notifications.scheduling import quiet_hours_end
from sonjog.notifications.segments import count_segments
from sonjog.operators.models import Operator

logger = logging.getLogger(__name__)

# Waits before the 2nd, 3rd and 4th attempt after a temporary failure; then the message fails.
DEFAULT_RETRY_MINUTES = (1, 5, 15)
# A worker holds a claimed message this long; past it the drain assumes the worker died mid-send.
SEND_LEASE = dt.timedelta(minutes=10)
# A queued message whose time came this long ago without any job waiting for it lost its job.
LOST_JOB_AFTER = dt.timedelta(minutes=2)
# The failure reason of a message the network reported undeliverable after the provider accepted it.
UNDELIVERED = "undelivered"
# Workers take higher priorities first: a one-time code must not wait behind a 30,000-message campaign.
PRIORITY_URGENT = 10
PRIORITY_NORMAL = 0
PRIORITY_BULK = -10


def _retry_minutes() -> Sequence[int]:
    return tuple(getattr(django_settings, "SONJOG_NOTIFY_RETRY_MINUTES", DEFAULT_RETRY_MINUTES))


def _job_lock(message_id: int) -> str:
    return f"notifications.message:{message_id}"


# --- configuration -------------------------------------------------------------------------------


def provider_account_create(
    *,
    operator: Operator,
    name: str,
    kind: str,
    sender_id: str = "",
    username: str = "",
    credentials: Mapping[str, str] | None = None,
    base_url: str = "",
    options: Mapping[str, Any] | None = None,
    cost_per_segment: Decimal = Decimal("0"),
    is_active: bool = True,
    webhook_token: str = "",
    actor: User | None = None,
) -> ProviderAccount:
    """Add a channel account. Activating it retires the operator's other active account on the channel."""
    if kind not in KIND_CHANNEL:
        raise ProviderAccountError(f"unknown provider '{kind}'; use one of {', '.join(KIND_CHANNEL)}")
    if cost_per_segment < 0:
        raise ProviderAccountError("the cost per segment cannot be negative")
    if not name.strip():
        raise ProviderAccountError("the account needs a name")
    channel = KIND_CHANNEL[kind]
    account = ProviderAccount(
        operator=operator,
        name=name.strip(),
        channel=channel,
        kind=kind,
        sender_id=sender_id,
        username=username,
        base_url=base_url,
        options=dict(options or {}),
        cost_per_segment=cost_per_segment,
        is_active=is_active,
    )
    account.credentials = dict(credentials or {})
    account.webhook_token = webhook_token or secrets.token_urlsafe(24)
    with transaction.atomic():
        if is_active:
            ProviderAccount.objects.filter(operator=operator, channel=channel, is_active=True).update(is_active=False)
        try:
            with transaction.atomic():
                account.save()
        except IntegrityError as error:
            raise ProviderAccountError(f"an account named '{name}' already exists") from error
        audit(operator=operator, action="notifications.account_create", actor=actor, account=account.pk, kind=kind)
    return account


def provider_account_set_active(*, account: ProviderAccount, active: bool, actor: User | None = None) -> None:
    with transaction.atomic():
        was_active = ProviderAccount.objects.filter(pk=account.pk).values_list("is_active", flat=True).first()
        if active:
            ProviderAccount.objects.filter(
                operator_id=account.operator_id, channel=account.channel, is_active=True
            ).exclude(pk=account.pk).update(is_active=False)
        ProviderAccount.objects.filter(pk=account.pk).update(is_active=active)
        account.is_active = active
        audit(
            operator=account.operator,
            action="notifications.account_active",
            actor=actor,
            account=account.pk,
            active=active,
            before={"is_active": was_active},
            after={"is_active": active},
        )


def template_save(
    *,
    operator: Operator,
    event: str,
    channel: str,
    language: str,
    body: str,
    subject: str = "",
    is_active: bool = True,
    actor: User | None = None,
) -> MessageTemplate:
    """Create or replace the operator's wording for an event, channel and language (audited: what a
    subscriber was told can be traced to who wrote the wording)."""
    if event not in Event.values:
        raise UnknownEvent(f"unknown event '{event}'")
    if channel not in Channel.values:
        raise InvalidTemplate(f"unknown channel '{channel}'")
    if language not in Language.values:
        raise InvalidTemplate(f"unknown language '{language}'; use en or bn")
    if not body.strip():
        raise InvalidTemplate("the template body is empty")
    validate_template_text(body)
    validate_template_text(subject)
    wording = {"body": body.strip(), "subject": subject.strip(), "is_active": is_active}
    with transaction.atomic():
        key: dict[str, Any] = {"operator": operator, "event": event, "channel": channel, "language": language}
        previous = MessageTemplate.objects.select_for_update().filter(**key).values(*wording).first() or {}
        template, _created = MessageTemplate.objects.update_or_create(**key, defaults=wording)
        changed = [name for name, value in wording.items() if previous.get(name) != value]
        audit(
            operator=operator,
            action="notifications.template_save",
            actor=actor,
            template=template.pk,
            template_event=event,
            channel=channel,
            language=language,
            active=is_active,
            body=template.body,
            before={name: previous[name] for name in changed if name in previous},
            after={name: wording[name] for name in changed},
        )
    return template


def notification_settings_save(
    *,
    operator: Operator,
    quiet_hours_enabled: bool | None = None,
    quiet_start: dt.time | None = None,
    quiet_end: dt.time | None = None,
    default_language: str | None = None,
    default_channels: Sequence[str] | None = None,
    muted_events: Sequence[str] | None = None,
    portal_url: str | None = None,
    payment_instructions: str | None = None,
    actor: User | None = None,
) -> NotificationSettings:
    if default_language is not None and default_language not in Language.values:
        raise NotificationError(f"unknown language '{default_language}'; use en or bn")
    if default_channels is not None and not set(default_channels) <= set(Channel.values):
        raise NotificationError(f"unknown channel in {list(default_channels)}; use {', '.join(Channel.values)}")
    if muted_events is not None and not set(muted_events) <= set(Event.values):
        raise UnknownEvent(f"unknown event in {list(muted_events)}")
    changes = {
        "quiet_hours_enabled": quiet_hours_enabled,
        "quiet_start": quiet_start,
        "quiet_end": quiet_end,
        "default_language": default_language,
        "default_channels": list(default_channels) if default_channels is not None else None,
        "muted_events": list(muted_events) if muted_events is not None else None,
        "portal_url": portal_url,
        "payment_instructions": payment_instructions.strip() if payment_instructions is not None else None,
    }
    given = {k: v for k, v in changes.items() if v is not None}
    with transaction.atomic():
        previous = NotificationSettings.objects.select_for_update().filter(operator=operator).values(*given).first()
        found, _created = NotificationSettings.objects.update_or_create(operator=operator, defaults=given)
        changed = [name for name, value in given.items() if previous is None or previous[name] != value]
        audit(
            operator=operator,
            action="notifications.settings_save",
            actor=actor,
            changes="; ".join(f"{name}={value}" for name, value in sorted(given.items())),
            before={name: previous[name] for name in changed} if previous is not None else {},
            after={name: given[name] for name in changed},
        )
    return found


def subscriber_preference_save(
    *, subscriber: Subscriber, language: str | None = None, muted_channels: Sequence[str] | None = None
) -> SubscriberPreference:
    if language is not None and language not in (*Language.values, ""):
        raise NotificationError(f"unknown language '{language}'; use en or bn")
    if muted_channels is not None and not set(muted_channels) <= set(Channel.values):
        raise NotificationError(f"unknown channel in {list(muted_channels)}")
    changes: dict[str, Any] = {}
    if language is not None:
        changes["language"] = language
    if muted_channels is not None:
        changes["muted_channels"] = list(muted_channels)
    preference, _created = SubscriberPreference.objects.update_or_create(subscriber=subscriber, defaults=changes)
    return preference


# --- SMS credit ----------------------------------------------------------------------------------


def sms_credit_add(*, operator: Operator, amount: Decimal, note: str = "", actor: User | None = None) -> SmsBalance:
    """Top up the operator's SMS credit; a top-up that lifts it above the threshold closes the alert."""
    if amount <= 0 or amount != round_money(amount):
        raise NotificationError(f"a top-up must be a positive amount with at most two decimals, not {amount}")
    now = timezone.now()
    with transaction.atomic():
        SmsBalance.objects.get_or_create(operator=operator)
        balance = SmsBalance.objects.select_for_update().get(operator=operator)
        balance.balance += amount
        balance.save(update_fields=["balance", "updated_at"])
        SmsCreditEntry.objects.create(
            operator=operator,
            kind=CreditEntryKind.TOP_UP,
            amount=amount,
            balance_after=balance.balance,
            note=note[:200],
            created_at=now,
        )
        if balance.balance >= balance.low_balance_threshold:
            _resolve_low_balance_alert(operator.pk, now)
        audit(operator=operator, action="notifications.sms_credit_add", actor=actor, amount=amount)
    return balance


def sms_credit_threshold_set(*, operator: Operator, threshold: Decimal, actor: User | None = None) -> SmsBalance:
    if threshold < 0:
        raise NotificationError("the low-balance threshold cannot be negative")
    with transaction.atomic():
        balance, _created = SmsBalance.objects.get_or_create(operator=operator)
        balance.low_balance_threshold = round_money(threshold)
        balance.save(update_fields=["low_balance_threshold", "updated_at"])
        if balance.balance >= balance.low_balance_threshold:
            _resolve_low_balance_alert(operator.pk, timezone.now())
        audit(operator=operator, action="notifications.sms_threshold_set", actor=actor, threshold=threshold)
    return balance


def _resolve_low_balance_alert(operator_id: int, now: dt.datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE notifications_lowbalancealert SET resolved_at = %s WHERE operator_id = %s AND resolved_at IS NULL",
            [now, operator_id],
        )


def _raise_low_balance_alert(operator_id: int, now: dt.datetime) -> None:
    """Once per crossing: the partial unique index allows one open alert per operator."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO notifications_lowbalancealert (operator_id, balance, threshold, created_at)
            SELECT operator_id, balance, low_balance_threshold, %s FROM notifications_smsbalance
            WHERE operator_id = %s
            ON CONFLICT (operator_id) WHERE resolved_at IS NULL DO NOTHING
            """,
            [now, operator_id],
        )


def _credit_debit(message: Message, now: dt.datetime) -> bool:
    """Take the message's cost from the operator's credit, atomically and never below zero."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE notifications_smsbalance SET balance = balance - %(cost)s, updated_at = %(now)s
            WHERE operator_id = %(operator)s AND balance >= %(cost)s
            RETURNING balance, low_balance_threshold
            """,
            {"cost": message.cost, "now": now, "operator": message.operator_id},
        )
        row = cursor.fetchone()
    if row is None:
        _raise_low_balance_alert(message.operator_id, now)
        return False
    balance_after, threshold = row
    SmsCreditEntry.objects.create(
        operator_id=message.operator_id,
        kind=CreditEntryKind.DEBIT,
        amount=-message.cost,
        balance_after=balance_after,
        message=message,
        created_at=now,
    )
    if balance_after < threshold:
        _raise_low_balance_alert(message.operator_id, now)
    return True


def _credit_refund(message: Message, now: dt.datetime) -> None:
    # A refund does not close a low-balance alert: only a top-up does, or the alert would flap with
    # every failed message near the threshold.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE notifications_smsbalance SET balance = balance + %(cost)s, updated_at = %(now)s
            WHERE operator_id = %(operator)s RETURNING balance
            """,
            {"cost": message.cost, "now": now, "operator": message.operator_id},
        )
        row = cursor.fetchone()
    assert row is not None, "a debited operator has a balance row"
    SmsCreditEntry.objects.create(
        operator_id=message.operator_id,
        kind=CreditEntryKind.REFUND,
        amount=message.cost,
        balance_after=row[0],
        message=message,
        created_at=now,
    )


def _charges_credit(message: Message) -> bool:
    return message.channel == Channel.SMS and message.cost > 0


# --- queueing ------------------------------------------------------------------------------------


def _normalize_recipient(channel: str, recipient: str, operator: Operator) -> str:
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


def _first_attempt_at(
    operator: Operator, urgent: bool, now: dt.datetime, settings: NotificationSettings | None = None
) -> dt.datetime:
    if urgent:
        return now
    settings = settings or selectors.notification_settings_for(operator)
    return quiet_hours_end(settings, operator.time_zone, now) or now


def _priority(message: Message) -> int:
    return _priority_of(message.is_urgent, message.bulk_id)


def _priority_of(is_urgent: bool, bulk_id: int | None) -> int:
    if is_urgent:
        return PRIORITY_URGENT
    return PRIORITY_BULK if bulk_id is not None else PRIORITY_NORMAL


def _defer_send(message_id: int, at: dt.datetime | None = None, priority: int = PRIORITY_NORMAL) -> None:
    from sonjog.notifications.tasks import send_message

    # The savepoint keeps the caller's transaction usable should a job for the message already wait.
    with contextlib.suppress(AlreadyEnqueued), transaction.atomic():
        send_message.configure(schedule_at=at, queueing_lock=_job_lock(message_id), priority=priority).defer(
            message_id=message_id
        )


# Procrastinate's own batch function, fed from SQL: building 30,000 Job objects and adapting them one by
# one costs seconds in Python, and Task.batch_defer cannot give each job its own queueing lock.
_DEFER_MANY_SQL = """
SELECT cardinality(procrastinate_defer_jobs_v1(ARRAY(
    SELECT ROW(%(queue)s, %(task)s, %(priority)s, NULL, 'notifications.message:' || id,
               jsonb_build_object('message_id', id), %(at)s)::procrastinate_job_to_defer_v1
    FROM unnest(%(ids)s::bigint[]) AS id)))
"""


def _defer_many(message_ids: Sequence[int], at: dt.datetime | None, priority: int) -> None:
    from sonjog.notifications.tasks import send_message

    if not message_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _DEFER_MANY_SQL,
            {
                "queue": send_message.queue,
                "task": send_message.name,
                "priority": priority,
                "at": at,
                "ids": list(message_ids),
            },
        )


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
    recipient = _normalize_recipient(channel, recipient, operator)
    body = body.strip()
    if not body:
        raise InvalidTemplate("the message is empty")
    now = timezone.now()
    urgent = event in URGENT_EVENTS
    first_attempt = _first_attempt_at(operator, urgent, now)
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
                max_attempts=len(_retry_minutes()) + 1,
                next_attempt_at=first_attempt,
                dedup_key=dedup_key[:200],
                created_at=now,
            )
            _defer_send(message.pk, first_attempt if first_attempt > now else None, _priority(message))
    except IntegrityError as error:
        if _violated_constraint(error) == "message_dedup":
            return None
        raise
    return message


def _violated_constraint(error: IntegrityError) -> str:
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", "") or ""


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
                recipient = _normalize_recipient(channel, recipient, operator)
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
    first_attempt = _first_attempt_at(operator, urgent, now, settings)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _NOTICES_INSERT_SQL,
            {
                "operator": operator.pk,
                "event": event,
                "urgent": urgent,
                "max_attempts": len(_retry_minutes()) + 1,
                "next_attempt_at": first_attempt,
                "now": now,
                **rows,
            },
        )
        message_ids = sorted(row[0] for row in cursor.fetchall())
        _defer_many(
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
    first_attempt = _first_attempt_at(operator, False, now)
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
                    "max_attempts": len(_retry_minutes()) + 1,
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
        _defer_many(message_ids, first_attempt if first_attempt > now else None, PRIORITY_BULK)
        bulk.queued = len(message_ids)
        bulk.skipped = plan.skipped + len(rows) - len(message_ids)
        BulkSend.objects.filter(pk=bulk.pk).update(queued=bulk.queued, skipped=bulk.skipped)
        audit(operator=operator, action="notifications.bulk_sms", actor=actor, bulk=bulk.pk, queued=bulk.queued)
    return bulk


def bill_notices_defer(*, run_id: int) -> None:
    """Ask a worker to tell the subscribers of a billing run about their bills; call it inside the run's
    transaction. A job, not inline: a 30,000-bill run must stay within its seconds."""
    from sonjog.notifications.tasks import bill_notices

    bill_notices.defer(run_id=run_id)


def event_notices_defer(*, event: str, subscriber_ids: list[int], dedup_prefix: str) -> None:
    """Ask a worker to send one event's message to many subscribers (the overdue sweep's suspension
    notices); call it inside the caller's transaction. Each message's key is `<prefix>:<subscriber>`,
    so a repeated sweep queues nothing twice."""
    from sonjog.notifications.tasks import event_notices

    if subscriber_ids:
        event_notices.defer(event=event, subscriber_ids=subscriber_ids, dedup_prefix=dedup_prefix)


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
    from sonjog.billing.models import Bill, BillingRun
    from sonjog.billing.terms import operator_today

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
    first_attempt = _first_attempt_at(operator, False, now)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                _RESEND_SQL,
                {
                    "operator": operator.pk,
                    "ids": list(message_ids),
                    "max_attempts": len(_retry_minutes()) + 1,
                    "now": now,
                    "first_attempt": first_attempt,
                },
            )
            queued = cursor.fetchall()
        groups: dict[tuple[dt.datetime | None, int], list[int]] = {}
        for message_id, next_attempt_at, is_urgent, bulk_id in queued:
            at = next_attempt_at if next_attempt_at > now else None
            groups.setdefault((at, _priority_of(is_urgent, bulk_id)), []).append(message_id)
        for (at, priority), ids in groups.items():
            _defer_many(ids, at, priority)
        if queued:
            audit(operator=operator, action="notifications.resend", actor=actor, queued=len(queued))
    return len(queued)


# --- sending (jobs) ------------------------------------------------------------------------------


def status_callback_url(account: ProviderAccount) -> str:
    """Where the provider should post delivery reports, when the site's public address is known."""
    public = getattr(django_settings, "SONJOG_PUBLIC_URL", "").rstrip("/")
    if not public:
        return ""
    path = reverse("notifications:delivery_report", kwargs={"provider": account.kind, "account_id": account.pk})
    return f"{public}{path}?token={account.webhook_token}"


def _claim(message_id: int, now: dt.datetime) -> tuple[Message | None, str]:
    """Take the message for one attempt: (message, "") when this worker sends it, else (None, why not)."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("operator")
            .filter(pk=message_id)
            .first()
        )
        if message is None:
            return None, "busy" if Message.objects.filter(pk=message_id).exists() else "missing"
        if message.status != MessageStatus.QUEUED:
            return None, message.status
        if message.next_attempt_at > now:
            # An early job (a duplicate, or one from before a reschedule): make sure one waits for the
            # right time; if one already does, the queueing lock keeps this from adding another.
            _defer_send(message.pk, message.next_attempt_at, _priority(message))
            return None, message.status
        if not message.is_urgent:
            quiet_end = quiet_hours_end(
                selectors.notification_settings_for(message.operator), message.operator.time_zone, now
            )
            if quiet_end is not None:
                Message.objects.filter(pk=message.pk).update(next_attempt_at=quiet_end)
                _defer_send(message.pk, quiet_end, _priority(message))
                return None, message.status
        # The operator may have switched gateways since the message was queued: the active one sends it.
        account = selectors.active_accounts(message.operator).get(message.channel)
        if account is None:
            _fail(message, FailureReason.CONFIGURATION, f"no active {message.channel} account", now)
            return None, MessageStatus.FAILED
        if account.pk != message.account_id:
            message.provider = account.kind
            if message.channel == Channel.SMS:
                message.cost = selectors.sms_cost(message.segments, account)
        message.account = account  # the row just read: sending must not load it again
        if _charges_credit(message) and not _credit_debit(message, now):
            credit = selectors.sms_balance(message.operator).balance
            _fail(
                message,
                FailureReason.INSUFFICIENT_BALANCE,
                f"the operator's SMS credit ({credit}) does not cover this message ({message.cost})",
                now,
            )
            return None, MessageStatus.FAILED
        message.status = MessageStatus.SENDING
        message.attempts += 1
        message.next_attempt_at = now + SEND_LEASE
        message.save(update_fields=["status", "attempts", "next_attempt_at", "account", "provider", "cost"])
    return message, ""


def _fail(message: Message, reason: str, detail: str, now: dt.datetime) -> None:
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.FAILED, failure_reason=reason, last_error=detail[:2000], failed_at=now
    )


def message_send(message_id: int) -> str:
    """One attempt at sending a queued message; returns its status afterwards. Safe to run twice: a
    message is claimed by exactly one worker, and a message not due yet or already handled is left be."""
    message, status = _claim(message_id, timezone.now())
    if message is None:
        return status
    assert message.account is not None
    outgoing = OutgoingMessage(
        recipient=message.recipient,
        body=message.body,
        subject=message.subject,
        encoding=message.encoding,
        reference=f"sj{message.pk}",
        status_callback_url=status_callback_url(message.account),
    )
    try:
        result = provider_for(message.account).send(outgoing)
    except OutboundRefused as error:
        # The gateway's address leads somewhere this installation does not send to (it may have been
        # re-pointed since the account was saved): a configuration fault, not worth retrying.
        result = SendResult.failed(FailureReason.CONFIGURATION, str(error))
    except Exception as error:
        # A bug in one provider must not leave the message claimed until the lease runs out.
        logger.exception("provider %s raised while sending message %s", message.provider, message.pk)
        result = SendResult.failed(FailureReason.UNKNOWN, f"{type(error).__name__}: {error}")
    return _record_result(message, result)


def _record_result(message: Message, result: SendResult) -> str:
    now = timezone.now()
    with transaction.atomic():
        if result.ok:
            Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
                status=MessageStatus.SENT,
                provider_message_id=result.provider_message_id[:128],
                sent_at=now,
                failure_reason="",
                last_error="",
            )
            return MessageStatus.SENT
        return _attempt_failed(message, result.reason or FailureReason.UNKNOWN, result.detail, result.retryable, now)


def _attempt_failed(message: Message, reason: str, detail: str, retryable: bool, now: dt.datetime) -> str:
    """After a failed attempt (inside a transaction): refund, then queue again with backoff or fail."""
    if _charges_credit(message):
        _credit_refund(message, now)
    error = f"attempt {message.attempts}: {detail}"[:2000]
    waits = _retry_minutes()
    if retryable and message.attempts < message.max_attempts:
        next_at = now + dt.timedelta(minutes=waits[min(message.attempts, len(waits)) - 1])
        Message.objects.filter(pk=message.pk).update(
            status=MessageStatus.QUEUED, next_attempt_at=next_at, failure_reason=reason, last_error=error
        )
        _defer_send(message.pk, next_at, _priority(message))
        return MessageStatus.QUEUED
    _fail(message, reason, error, now)
    return MessageStatus.FAILED


_LOST_JOBS_SQL = """
SELECT m.id FROM notifications_message m
WHERE m.status = 'queued' AND m.next_attempt_at <= %(cutoff)s
  AND NOT EXISTS (
      SELECT 1 FROM procrastinate_jobs j
      WHERE j.queueing_lock = 'notifications.message:' || m.id AND j.status = 'todo')
ORDER BY m.next_attempt_at
LIMIT 5000
"""


def messages_drain() -> dict[str, int]:
    """The safety net, every minute: messages whose worker died mid-send (their lease ran out) count
    a temporary failure; queued messages whose time came but that no job waits for get a new job."""
    now = timezone.now()
    expired = 0
    for message in Message.objects.filter(status=MessageStatus.SENDING, next_attempt_at__lte=now):
        with transaction.atomic():
            locked = Message.objects.select_for_update(skip_locked=True).filter(
                pk=message.pk, status=MessageStatus.SENDING, next_attempt_at__lte=now
            )
            claimed = locked.first()
            if claimed is None:
                continue
            # The provider may or may not have taken it; sending again risks a duplicate, not a loss.
            _attempt_failed(claimed, FailureReason.TEMPORARY, "the worker stopped during the attempt", True, now)
            expired += 1
    with connection.cursor() as cursor:
        cursor.execute(_LOST_JOBS_SQL, {"cutoff": now - LOST_JOB_AFTER})
        lost = [row[0] for row in cursor.fetchall()]
    for message_id in lost:
        _defer_send(message_id)
    return {"expired_leases": expired, "requeued_jobs": len(lost)}


# --- delivery reports ----------------------------------------------------------------------------


def delivery_reports_apply(*, account: ProviderAccount, updates: Iterable[DeliveryUpdate]) -> dict[str, int]:
    """Apply a provider's delivery reports to the account's own messages (never another account's).
    Only a sent message moves: delivered and failed are final, and a late 'failed' never undoes a
    'delivered'."""
    now = timezone.now()
    counts = {"delivered": 0, "failed": 0, "unchanged": 0, "unknown": 0}
    with transaction.atomic():
        for update in updates:
            mine = Message.objects.filter(account=account, provider_message_id=update.provider_message_id)
            if update.status == MessageStatus.DELIVERED:
                changed = mine.filter(status=MessageStatus.SENT).update(
                    status=MessageStatus.DELIVERED, delivered_at=now
                )
            else:
                changed = mine.filter(status=MessageStatus.SENT).update(
                    status=MessageStatus.FAILED,
                    failure_reason=UNDELIVERED,
                    last_error=(update.error or "reported undelivered")[:2000],
                    failed_at=now,
                )
            if changed:
                counts[update.status] += changed
            elif mine.exists():
                counts["unchanged"] += 1
            else:
                counts["unknown"] += 1
    return counts


# --- console edits -------------------------------------------------------------------------------


def provider_account_update(
    *,
    account: ProviderAccount,
    name: str,
    sender_id: str = "",
    username: str = "",
    base_url: str = "",
    cost_per_segment: Decimal = Decimal("0"),
    options: Mapping[str, Any] | None = None,
    credentials: Mapping[str, str] | None = None,
    actor: User | None = None,
) -> ProviderAccount:
    """Change an account's settings. Only the secrets given a value in `credentials` are replaced: the
    console never shows a stored secret, so an empty field has to mean "keep what is stored"."""
    if cost_per_segment < 0:
        raise ProviderAccountError("the cost per segment cannot be negative")
    if not name.strip():
        raise ProviderAccountError("the account needs a name")
    replaced = {key: value for key, value in (credentials or {}).items() if value}
    with transaction.atomic():
        locked = ProviderAccount.objects.select_for_update().select_related("operator").get(pk=account.pk)
        # The secrets are never copied into the log: `secrets_replaced` names which ones changed.
        settings_fields = ("name", "sender_id", "username", "base_url", "cost_per_segment", "options")
        before = {field: getattr(locked, field) for field in settings_fields}
        locked.name = name.strip()
        locked.sender_id = sender_id
        locked.username = username
        locked.base_url = base_url
        locked.cost_per_segment = cost_per_segment
        locked.options = dict(options or {})
        if replaced:
            locked.credentials = {**locked.credentials, **replaced}
        try:
            with transaction.atomic():
                locked.save(
                    update_fields=[
                        "name",
                        "sender_id",
                        "username",
                        "base_url",
                        "cost_per_segment",
                        "options",
                        "credentials_encrypted",
                    ]
                )
        except IntegrityError as error:
            raise ProviderAccountError(f"an account named '{name.strip()}' already exists") from error
        changed = [field for field in settings_fields if getattr(locked, field) != before[field]]
        audit(
            operator=locked.operator,
            action="notifications.account_update",
            actor=actor,
            account=locked.pk,
            secrets_replaced=",".join(sorted(replaced)),
            before={field: before[field] for field in changed},
            after={field: getattr(locked, field) for field in changed},
        )
    return locked
