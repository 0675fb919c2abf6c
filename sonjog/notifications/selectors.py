"""Reads for notifications: settings and accounts in force, wording, previews, the subscriber timeline."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum

from sonjog.billing.models import LedgerEntry
from sonjog.core.money import ZERO, round_money
from sonjog.customers.models import Subscriber
from sonjog.notifications.exceptions import InvalidTemplate, NotificationError
from sonjog.notifications.models import (
    BulkSend,
    Channel,
    Event,
    Language,
    LowBalanceAlert,
    Message,
    MessageStatus,
    MessageTemplate,
    NotificationSettings,
    ProviderAccount,
    SmsBalance,
    SmsCreditEntry,
    SubscriberPreference,
)
from sonjog.notifications.providers.base import FailureReason
from sonjog.notifications.rendering import (
    DEFAULT_WORDING,
    VARIABLES,
    Wording,
    format_values,
    render_text,
    template_variables,
    validate_template_text,
)
from sonjog.notifications.segments import count_segments, is_gsm7
from sonjog.operators.models import Operator

DEFAULT_CHANNELS = (Channel.SMS, Channel.EMAIL)


def notification_settings_for(operator: Operator) -> NotificationSettings:
    """The operator's settings, or the defaults (unsaved) when it never changed them."""
    found = NotificationSettings.objects.filter(operator=operator).first()
    return found if found is not None else NotificationSettings(operator=operator)


def active_accounts(operator: Operator) -> dict[str, ProviderAccount]:
    return {account.channel: account for account in ProviderAccount.objects.filter(operator=operator, is_active=True)}


def sms_balance(operator: Operator) -> SmsBalance:
    found = SmsBalance.objects.filter(operator=operator).first()
    return found if found is not None else SmsBalance(operator=operator)


def subscriber_preference(subscriber: Subscriber) -> SubscriberPreference:
    found = SubscriberPreference.objects.filter(subscriber=subscriber).first()
    return found if found is not None else SubscriberPreference(subscriber=subscriber)


def subscriber_language(preference: SubscriberPreference, settings: NotificationSettings) -> str:
    return preference.language or settings.default_language or Language.ENGLISH


def _balances(subscriber_ids: Iterable[int] | QuerySet[Any]) -> dict[int, Decimal]:
    rows = (
        LedgerEntry.objects.filter(subscriber_id__in=subscriber_ids)
        .values("subscriber_id")
        .annotate(total=Sum("amount"))
        .values_list("subscriber_id", "total")
    )
    return {subscriber_id: total for subscriber_id, total in rows}


def _raw_values(
    *,
    operator: Operator,
    settings: NotificationSettings,
    name: str,
    customer_id: str,
    package: str,
    expires_on: dt.date | None,
    balance: Decimal,
) -> dict[str, Any]:
    return {
        "name": name,
        "customer_id": customer_id,
        "package": package,
        "operator_name": operator.name,
        "portal_link": settings.portal_url,
        "how_to_pay": settings.payment_instructions,
        "expiry": expires_on,
        "balance": balance,
        # What a reminder quotes: the balance when it is owed, nothing when the subscriber is in credit.
        "amount_due": max(balance, ZERO),
        "due_date": None,
        "payment_amount": None,
        "otp": None,
        # Only the PPPoE password notice supplies these (in its context); nothing else quotes them.
        "pppoe_username": None,
        "pppoe_password": None,
    }


def subscriber_values(
    subscriber: Subscriber, context: Mapping[str, Any] | None, settings: NotificationSettings
) -> dict[str, Any]:
    """Raw values of every template variable for this subscriber; the caller's context wins."""
    values = _raw_values(
        operator=subscriber.operator,
        settings=settings,
        name=subscriber.name,
        customer_id=subscriber.customer_id,
        package=subscriber.package.name,
        expires_on=subscriber.expires_on,
        balance=_balances([subscriber.pk]).get(subscriber.pk, ZERO),
    )
    return _with_context(values, context)


def _with_context(values: dict[str, Any], context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The subscriber's values with what the caller knows laid over them (only known variables)."""
    unknown = sorted(set(context or {}) - set(VARIABLES))
    if unknown:
        raise NotificationError(f"unknown template variable(s) in the context: {', '.join(unknown)}")
    values.update(context or {})
    return values


def render(
    wording: Wording, raw: Mapping[str, Any], *, operator: Operator, language: str, channel: str
) -> tuple[str, str]:
    """(subject, body) with the values formatted for the operator, language and channel.

    A single "৳" turns an otherwise GSM-7 SMS into UCS-2, cutting it from 160 characters to 70, so an
    SMS quotes money with the ISO code ("BDT 500.00") unless the text is UCS-2 anyway (Bangla), where
    the symbol costs nothing."""
    currency, time_zone = operator.currency, operator.time_zone
    if channel == Channel.SMS:
        plain_values = format_values(raw, currency=currency, time_zone=time_zone, language=language, money_as_code=True)
        plain = _tidy(render_text(wording.body, plain_values))
        if is_gsm7(plain):
            return "", plain
    values = format_values(raw, currency=currency, time_zone=time_zone, language=language)
    return _tidy(render_text(wording.subject, values)), _tidy(render_text(wording.body, values))


def _tidy(text: str) -> str:
    # An empty variable ("{{ portal_link }}" with no portal) must not leave double spaces behind.
    return re.sub(r"[ \t]{2,}", " ", text).strip()


@dataclass
class Recipient:
    """What a message needs to know about one subscriber: who, where, in which language."""

    subscriber_id: int
    name: str
    customer_id: str
    phone: str
    email: str
    expires_on: dt.date | None
    package: str
    language: str
    muted_channels: list[str]


@dataclass
class NoticeAudience:
    """Everything a batch of one event's notices reads, loaded once: the subscribers with their
    preferences, the operator's wording per channel and language, and balances only when the
    wording quotes one the caller did not supply."""

    operator: Operator
    settings: NotificationSettings
    people: dict[int, Recipient]
    wordings: dict[tuple[str, str], Wording | None]
    balances: dict[int, Decimal]

    def wording(self, channel: str, language: str) -> Wording | None:
        return self.wordings.get((channel, language))

    def values(self, person: Recipient, context: Mapping[str, Any] | None) -> dict[str, Any]:
        values = _raw_values(
            operator=self.operator,
            settings=self.settings,
            name=person.name,
            customer_id=person.customer_id,
            package=person.package,
            expires_on=person.expires_on,
            balance=self.balances.get(person.subscriber_id, ZERO),
        )
        return _with_context(values, context)


def event_wordings(operator: Operator, event: str) -> dict[tuple[str, str], Wording | None]:
    """The wording in force for the event on every channel and language: the operator's active
    template, else the built-in wording (an e-mail template without a subject keeps the built-in one)."""
    own = {
        (template.channel, template.language): template
        for template in MessageTemplate.objects.filter(operator=operator, event=event, is_active=True)
    }
    wordings: dict[tuple[str, str], Wording | None] = {}
    for channel in Channel.values:
        for language in Language.values:
            default = DEFAULT_WORDING.get((event, language))
            template = own.get((channel, language))
            if template is None:
                wordings[(channel, language)] = default
            else:
                subject = template.subject or (default.subject if default is not None else "")
                wordings[(channel, language)] = Wording(subject, template.body)
    return wordings


def notice_audience(
    operator: Operator,
    event: str,
    subscriber_ids: Sequence[int],
    notices: Iterable[Any] = (),
    settings: NotificationSettings | None = None,
) -> NoticeAudience:
    """Load what `notify_event_many` needs for these subscribers of the operator (others are left out).
    `notices` (anything with a `context` mapping) tells whether the callers supplied the amounts."""
    settings = settings or notification_settings_for(operator)
    wordings = event_wordings(operator, event)
    people: dict[int, Recipient] = {}
    with connection.cursor() as cursor:
        cursor.execute(_AUDIENCE_SQL, {"operator": operator.pk, "ids": list(subscriber_ids)})
        for subscriber_id, name, customer_id, phone, email, expires_on, package, language, muted in cursor:
            people[subscriber_id] = Recipient(
                subscriber_id,
                name,
                customer_id,
                phone,
                email,
                expires_on,
                package,
                language or settings.default_language or Language.ENGLISH,
                list(muted or ()),
            )
    used: set[str] = set()
    for wording in wordings.values():
        if wording is not None:
            used.update(template_variables(wording.subject), template_variables(wording.body))
    needs_balances = "balance" in used or (
        "amount_due" in used and any("amount_due" not in (notice.context or {}) for notice in notices)
    )
    balances = _balances(list(people)) if needs_balances and people else {}
    return NoticeAudience(operator, settings, people, wordings, balances)


_AUDIENCE_SQL = """
SELECT s.id, s.name, s.customer_id, s.phone, s.email, s.expires_on, p.name, pref.language, pref.muted_channels
FROM customers_subscriber s
JOIN catalog_package p ON p.id = s.package_id
LEFT JOIN notifications_subscriberpreference pref ON pref.subscriber_id = s.id
WHERE s.operator_id = %(operator)s AND s.id = ANY(%(ids)s::bigint[])
"""


@dataclass(frozen=True)
class Preview:
    subject: str
    text: str
    encoding: str
    units: int
    segments: int
    cost: Decimal


def sms_cost(segments: int, account: ProviderAccount | None) -> Decimal:
    if account is None:
        return ZERO
    return round_money(account.cost_per_segment * segments)


def template_preview(template: MessageTemplate | str, subscriber: Subscriber) -> Preview:
    """Render a template (or raw text, as SMS) for a real subscriber, with what it would cost to send."""
    settings = notification_settings_for(subscriber.operator)
    if isinstance(template, MessageTemplate):
        if template.operator_id != subscriber.operator_id:
            raise NotificationError("the template and the subscriber belong to different operators")
        wording, channel, language = Wording(template.subject, template.body), template.channel, template.language
    else:
        validate_template_text(template)
        wording, channel = Wording("", template), Channel.SMS
        language = subscriber_language(subscriber_preference(subscriber), settings)
    subject, body = render(
        wording,
        subscriber_values(subscriber, None, settings),
        operator=subscriber.operator,
        language=language,
        channel=channel,
    )
    if channel != Channel.SMS:
        return Preview(subject, body, "", 0, 0, ZERO)
    count = count_segments(body)
    account = active_accounts(subscriber.operator).get(Channel.SMS)
    return Preview(subject, body, count.encoding, count.units, count.segments, sms_cost(count.segments, account))


@dataclass
class BulkRow:
    subscriber_id: int
    recipient: str
    body: str
    encoding: str
    segments: int
    cost: Decimal


@dataclass
class BulkPlan:
    rows: list[BulkRow] = field(default_factory=list)
    skipped: int = 0

    @property
    def total_segments(self) -> int:
        return sum(row.segments for row in self.rows)

    @property
    def cost(self) -> Decimal:
        return sum((row.cost for row in self.rows), ZERO)


def bulk_text(operator: Operator, template_or_text: MessageTemplate | str) -> tuple[str, str]:
    """(text, language) of what a bulk send says; the operator's own SMS templates only."""
    if isinstance(template_or_text, MessageTemplate):
        if template_or_text.operator_id != operator.pk:
            raise InvalidTemplate("that template belongs to another operator")
        if template_or_text.channel != Channel.SMS:
            raise InvalidTemplate("bulk messages go by SMS; pick an SMS template")
        return template_or_text.body, template_or_text.language
    if not template_or_text.strip():
        raise InvalidTemplate("the message is empty")
    validate_template_text(template_or_text)
    return template_or_text, ""


def bulk_plan(operator: Operator, subscribers: QuerySet[Subscriber], text: str, language: str) -> BulkPlan:
    """Every message a bulk send would queue, rendered per subscriber (its own name and due amount).

    Subscribers of other operators are left out, and so are those who muted SMS. One query for the
    subscribers and, only when the text quotes money, one for their balances."""
    settings = notification_settings_for(operator)
    language = language or settings.default_language
    account = active_accounts(operator).get(Channel.SMS)
    in_scope = subscribers.filter(operator=operator)
    muted = SubscriberPreference.objects.filter(muted_channels__contains=[Channel.SMS]).values("subscriber_id")
    wanted = in_scope.exclude(pk__in=muted)
    rows = list(wanted.order_by("pk").values_list("pk", "name", "customer_id", "phone", "expires_on", "package__name"))
    used = set(template_variables(text))
    balances = _balances(wanted.values("pk")) if used & {"amount_due", "balance"} else {}
    plan = BulkPlan(skipped=in_scope.count() - len(rows))
    wording = Wording("", text)
    cost_per_segment = account.cost_per_segment if account is not None else ZERO
    for subscriber_id, name, customer_id, phone, expires_on, package in rows:
        if not phone:
            plan.skipped += 1
            continue
        raw = _raw_values(
            operator=operator,
            settings=settings,
            name=name,
            customer_id=customer_id,
            package=package,
            expires_on=expires_on,
            balance=balances.get(subscriber_id, ZERO),
        )
        _subject, body = render(wording, raw, operator=operator, language=language, channel=Channel.SMS)
        count = count_segments(body)
        plan.rows.append(
            BulkRow(
                subscriber_id,
                phone,
                body,
                count.encoding,
                count.segments,
                round_money(cost_per_segment * count.segments),
            )
        )
    return plan


@dataclass(frozen=True)
class BulkPreview:
    count: int
    skipped: int
    total_segments: int
    encodings: dict[str, int]
    cost: Decimal
    sample: str


def bulk_sms_preview(
    operator: Operator, subscriber_queryset: QuerySet[Subscriber], template_or_text: MessageTemplate | str
) -> BulkPreview:
    text, language = bulk_text(operator, template_or_text)
    plan = bulk_plan(operator, subscriber_queryset, text, language)
    return BulkPreview(
        count=len(plan.rows),
        skipped=plan.skipped,
        total_segments=plan.total_segments,
        encodings=dict(Counter(row.encoding for row in plan.rows)),
        cost=plan.cost,
        sample=plan.rows[0].body if plan.rows else "",
    )


@dataclass(frozen=True)
class TimelineMessage:
    """One message as the subscriber's profile shows it beside bills and payments (sorted by `at`)."""

    id: int
    at: dt.datetime
    channel: str
    event: str
    status: str
    recipient: str
    subject: str
    body: str
    segments: int
    cost: Decimal
    failure_reason: str
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None


def subscriber_messages(subscriber: Subscriber, *, limit: int = 100) -> list[TimelineMessage]:
    """The subscriber's messages, newest first. The caller has already scoped `subscriber` to its
    operator; messages are read through the subscriber and that operator, never by id alone."""
    rows = (
        Message.objects.filter(subscriber=subscriber, operator_id=subscriber.operator_id)
        .order_by("-created_at", "-id")
        .values_list(
            "id",
            "created_at",
            "channel",
            "event",
            "status",
            "recipient",
            "subject",
            "body",
            "segments",
            "cost",
            "failure_reason",
            "sent_at",
            "delivered_at",
        )[:limit]
    )
    return [TimelineMessage(*row) for row in rows]


# --- what the console's messaging pages read -----------------------------------------------------


@dataclass(frozen=True)
class TemplateCell:
    """One event x channel x language of the templates grid: whose wording is in force."""

    event: str
    channel: str
    language: str
    source: str  # own, off (own but switched off), default (built-in), none
    text: str


def template_grid(operator: Operator) -> tuple[list[tuple[str, str, list[TemplateCell]]], int]:
    """(rows of (event, label, cells) in Channel x Language column order, how many the operator wrote)."""
    own = {(t.event, t.channel, t.language): t for t in MessageTemplate.objects.filter(operator=operator)}
    rows = []
    for event, event_label in Event.choices:
        cells = []
        for channel in Channel.values:
            for language in Language.values:
                template = own.get((event, channel, language))
                default = DEFAULT_WORDING.get((event, language))
                if template is not None:
                    source = "own" if template.is_active else "off"
                    cells.append(TemplateCell(event, channel, language, source, template.body))
                elif default is not None:
                    cells.append(TemplateCell(event, channel, language, "default", default.body))
                else:
                    cells.append(TemplateCell(event, channel, language, "none", ""))
        rows.append((event, str(event_label), cells))
    return rows, len(own)


def bulk_sends_recent(operator: Operator, limit: int = 20) -> list[BulkSend]:
    return list(
        BulkSend.objects.filter(operator=operator).select_related("requested_by").order_by("-created_at", "-pk")[:limit]
    )


def bulk_send_for_key(operator: Operator, dedup_prefix: str, since: dt.datetime) -> int | None:
    """The bulk send whose messages carry this dedup prefix (queued since `since`), if any."""
    return (
        Message.objects.filter(
            operator=operator,
            channel=Channel.SMS,
            created_at__gte=since,
            bulk__isnull=False,
            dedup_key__startswith=f"{dedup_prefix}:",
        )
        .values_list("bulk_id", flat=True)
        .first()
    )


def bulk_status_counts(bulk: BulkSend) -> dict[str, int]:
    """How many of a bulk send's messages are in each status."""
    return dict(
        Message.objects.filter(bulk=bulk, operator_id=bulk.operator_id)
        .values_list("status")
        .annotate(count=Count("pk"))
        .order_by()
    )


@dataclass(frozen=True)
class CreditOverview:
    accounts: list[ProviderAccount]
    balance: SmsBalance
    alert: LowBalanceAlert | None
    entries: list[SmsCreditEntry]


def credit_overview(operator: Operator, entries: int = 50) -> CreditOverview:
    """The operator's channel accounts, SMS credit, open low-balance alert and latest credit entries."""
    return CreditOverview(
        accounts=list(ProviderAccount.objects.filter(operator=operator).order_by("channel", "name")),
        balance=sms_balance(operator),
        alert=LowBalanceAlert.objects.filter(operator=operator, resolved_at__isnull=True).first(),
        entries=list(SmsCreditEntry.objects.filter(operator=operator).order_by("-created_at", "-id")[:entries]),
    )


def message_log(
    rows: QuerySet[Message],
    *,
    before: tuple[dt.datetime, int] | None = None,
    limit: int = 50,
) -> tuple[list[Message], bool]:
    """A page of the delivery log `rows` (the caller's scoped messages, filtered by `MessageFilterSet`),
    newest first, keyset-paginated on (created_at, id) — the log only grows, and counting it is what an
    offset page would cost on every click. Returns (rows, more)."""
    rows = rows.select_related("subscriber", "operator")
    if before is not None:
        at, pk = before
        rows = rows.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
    found = list(rows.order_by("-created_at", "-pk")[: limit + 1])
    return found[:limit], len(found) > limit


def failed_for_credit(operator: Operator, since: dt.datetime) -> list[int]:
    """Messages that failed since `since` because the SMS credit ran out, not yet sent again: what a
    top-up lets the operator send again."""
    return list(
        Message.objects.filter(
            operator=operator,
            status=MessageStatus.FAILED,
            failure_reason=FailureReason.INSUFFICIENT_BALANCE,
            created_at__gte=since,
            resent_as__isnull=True,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
