"""What the portal's pages read, composed from the domain apps' own selectors. Every function takes the
signed-in subscriber and reads that subscriber's rows only.

"Owes now" and "overdue" are billing's one definition (`billing.selectors.subscriber_dues`); the date
to pay by is the due date of the oldest bill still open, since payments settle the oldest first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce

from sonjog.billing.models import Bill, Payment
from sonjog.billing.selectors import Dues, next_invoice_date, subscriber_dues, with_reversed
from sonjog.billing.terms import subscriber_terms
from sonjog.catalog.models import AddOn, Package
from sonjog.core.money import ZERO
from sonjog.customers.exceptions import InvalidPhone
from sonjog.customers.models import ServiceIntent, Subscriber, SubscriberAddOn
from sonjog.customers.phone import normalize_phone
from sonjog.network.models import RadAcct
from sonjog.notifications.models import Event
from sonjog.notifications.selectors import TimelineMessage, subscriber_messages
from sonjog.operators.dates import operator_today

# How many subscribers one typed phone number may offer to choose from.
IDENTITY_MATCHES = 10


def subscribers_for_identity(text: str) -> list[Subscriber]:
    """The subscribers a typed customer ID or phone number names, of active operators, by operator name:
    a customer ID is one subscriber, a phone number may be several (of one operator or of several)."""
    text = text.strip()
    if not text:
        return []
    phones: set[str] = set()
    compact = "".join(ch for ch in text if ch.isdigit() or ch == "+")
    for country in ("BD", "E164"):
        try:
            phones.add(normalize_phone(compact, country))
        except InvalidPhone:
            continue
    condition = Q(customer_id__iexact=text)
    if phones:
        condition |= Q(phone__in=sorted(phones))
    return list(
        Subscriber.objects.filter(condition, operator__is_active=True)
        .select_related("operator")
        .order_by("operator__name", "customer_id")[:IDENTITY_MATCHES]
    )


# -- home --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountState:
    """The service as the subscriber should understand it: `key` is active, suspended_unpaid (suspended
    with money overdue), suspended (by the provider, for another reason), disabled, terminated or
    expired (prepaid validity run out)."""

    intent: str
    key: str


@dataclass(frozen=True)
class Home:
    subscriber: Subscriber
    today: dt.date
    mode: str
    dues: Dues
    pay_by: dt.date | None
    open_bills: list[Bill]
    next_bill_on: dt.date | None
    valid_until: dt.date | None
    addons: list[SubscriberAddOn]
    state: AccountState

    @property
    def owes(self) -> Decimal:
        return max(self.dues.due, ZERO)

    @property
    def credit(self) -> Decimal:
        return max(-self.dues.due, ZERO)


def running_addons(subscriber: Subscriber, today: dt.date) -> list[SubscriberAddOn]:
    return list(
        SubscriberAddOn.objects.filter(subscriber_id=subscriber.pk, start_date__lte=today)
        .filter(Q(end_date__isnull=True) | Q(end_date__gt=today))
        .select_related("addon")
        .order_by("addon__name")
    )


def open_bills(subscriber: Subscriber) -> list[Bill]:
    """The subscriber's bills still (partly) unpaid, oldest due first: what a payment settles next."""
    return list(
        Bill.objects.filter(
            subscriber_id=subscriber.pk,
            operator_id=subscriber.operator_id,
            reversed_at__isnull=True,
            allocated__lt=F("total"),
        ).order_by("due_date", "period_month", "pk")
    )


def _state(subscriber: Subscriber, dues: Dues, mode: str, today: dt.date) -> AccountState:
    intent = subscriber.service_intent
    if intent == ServiceIntent.SUSPENDED:
        return AccountState(intent, "suspended_unpaid" if dues.is_overdue else "suspended")
    if intent in (ServiceIntent.DISABLED, ServiceIntent.TERMINATED):
        return AccountState(intent, intent)
    if mode == "prepaid" and subscriber.expires_on is not None and subscriber.expires_on <= today:
        return AccountState(intent, "expired")
    return AccountState(intent, "active")


def home(subscriber: Subscriber) -> Home:
    today = operator_today(subscriber.operator)
    dues = subscriber_dues(subscriber.operator_id, [subscriber.pk], today).get(subscriber.pk, Dues(ZERO, False, ZERO))
    mode = subscriber_terms(subscriber).mode
    unpaid = open_bills(subscriber) if dues.due > 0 else []
    return Home(
        subscriber=subscriber,
        today=today,
        mode=mode,
        dues=dues,
        pay_by=unpaid[0].due_date if unpaid else None,
        open_bills=unpaid,
        next_bill_on=next_invoice_date(subscriber),
        valid_until=subscriber.expires_on if mode == "prepaid" else None,
        addons=running_addons(subscriber, today),
        state=_state(subscriber, dues, mode, today),
    )


# -- bills and payments --------------------------------------------------------------------------------


def bills(subscriber: Subscriber, limit: int = 36) -> list[Bill]:
    return list(
        Bill.objects.filter(subscriber_id=subscriber.pk, operator_id=subscriber.operator_id)
        .select_related("invoice", "invoice__credit_note")
        .order_by("-period_month", "-pk")[:limit]
    )


def bill_state(bill: Bill) -> str:
    """void, paid, partly_paid or unpaid: what is paid of the bill now."""
    if bill.reversed_at is not None:
        return "void"
    if bill.allocated >= bill.total:
        return "paid"
    return "partly_paid" if bill.allocated > 0 else "unpaid"


def payments(subscriber: Subscriber, limit: int = 36) -> list[Payment]:
    """The subscriber's payments, newest first, each annotated `reversed` (billing's own annotation)."""
    rows: QuerySet[Payment] = Payment.objects.filter(subscriber_id=subscriber.pk, operator_id=subscriber.operator_id)
    return list(with_reversed(rows)[:limit])


# -- change requests -------------------------------------------------------------------------------------


def packages_offered(subscriber: Subscriber) -> QuerySet[Package]:
    return Package.objects.filter(operator_id=subscriber.operator_id, is_active=True).exclude(pk=subscriber.package_id)


def addons_offered(subscriber: Subscriber, today: dt.date) -> QuerySet[AddOn]:
    running = [row.addon_id for row in running_addons(subscriber, today)]
    return AddOn.objects.filter(operator_id=subscriber.operator_id, is_active=True).exclude(pk__in=running)


def addons_running(subscriber: Subscriber, today: dt.date) -> QuerySet[AddOn]:
    running = [row.addon_id for row in running_addons(subscriber, today)]
    return AddOn.objects.filter(operator_id=subscriber.operator_id, pk__in=running)


# -- sessions and data usage (RADIUS accounting) --------------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    started_at: dt.datetime
    ended_at: dt.datetime | None  # None: still online
    seconds: int
    download: int
    upload: int
    address: str | None
    end_cause: str


@dataclass
class UsageDay:
    day: dt.date
    download: int = 0
    upload: int = 0

    @property
    def total(self) -> int:
        return self.download + self.upload


@dataclass
class Usage:
    days: list[UsageDay]
    sessions: list[SessionRow] = field(default_factory=list)

    @property
    def download(self) -> int:
        return sum(day.download for day in self.days)

    @property
    def upload(self) -> int:
        return sum(day.upload for day in self.days)


def _radacct(subscriber: Subscriber) -> QuerySet[RadAcct]:
    # radacct knows a subscriber by its PPPoE user name, which is unique across every operator.
    return RadAcct.objects.filter(username=subscriber.pppoe_username, acctstarttime__isnull=False)


_LAST_SEEN = Coalesce("acctstoptime", "acctupdatetime", "acctstarttime")


def _spread(
    per_day: dict[dt.date, UsageDay],
    began: dt.datetime,
    seen: dt.datetime,
    *,
    download: int,
    upload: int,
    zone: ZoneInfo,
) -> None:
    """Add one session's bytes to the days it ran on, each day's share by the time it spent in it; days
    outside `per_day` (before the window) keep their share to themselves."""
    span = (seen - began).total_seconds()
    if span <= 0:
        bucket = per_day.get(began.astimezone(zone).date())
        if bucket is not None:
            bucket.download += download
            bucket.upload += upload
        return
    day = began.astimezone(zone).date()
    day_start = dt.datetime.combine(day, dt.time(), zone)
    while day_start < seen:
        day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
        overlap = (min(seen, day_end) - max(began, day_start)).total_seconds()
        bucket = per_day.get(day)
        if bucket is not None and overlap > 0:
            bucket.download += round(download * overlap / span)
            bucket.upload += round(upload * overlap / span)
        day += dt.timedelta(days=1)
        day_start = day_end


def usage(subscriber: Subscriber, *, days: int = 30, sessions: int = 50) -> Usage:
    """Data moved per day over the last `days` days of the operator's calendar (today included), and the
    latest sessions. radacct keeps only a session's running totals, so a session that spans midnight is
    shared between its days by the time it spent in each (as fair usage counts a period's share).
    Download is what the NAS sent to the subscriber (Acct-Output-Octets), upload what it received."""
    zone = ZoneInfo(subscriber.operator.time_zone)
    today = operator_today(subscriber.operator)
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), zone)
    per_day = {first + dt.timedelta(days=n): UsageDay(first + dt.timedelta(days=n)) for n in range(days)}
    rows = (
        _radacct(subscriber).filter(acctstarttime__lt=end).annotate(last_seen=_LAST_SEEN).filter(last_seen__gte=start)
    )
    for began, seen, up, down in rows.values_list("acctstarttime", "last_seen", "acctinputoctets", "acctoutputoctets"):
        if began is not None:
            _spread(per_day, began, seen or began, download=down or 0, upload=up or 0, zone=zone)
    latest = [
        SessionRow(
            started_at=row.acctstarttime,  # type: ignore[arg-type]
            ended_at=row.acctstoptime,
            seconds=int(row.acctsessiontime or (row.last_seen - row.acctstarttime).total_seconds()),
            download=row.acctoutputoctets or 0,
            upload=row.acctinputoctets or 0,
            address=row.framedipaddress,
            end_cause=row.acctterminatecause or "",
        )
        for row in _radacct(subscriber).annotate(last_seen=_LAST_SEEN).order_by("-acctstarttime")[:sessions]
    ]
    return Usage(days=list(per_day.values()), sessions=latest)


# -- messages ---------------------------------------------------------------------------------------------

# Messages whose text is a secret: the portal lists them without their words (a one-time code, a PPPoE
# password), so a session left open on a shared phone does not give them away.
SECRET_EVENTS = frozenset({Event.OTP, Event.PPPOE_PASSWORD})


def messages(subscriber: Subscriber, limit: int = 50) -> list[TimelineMessage]:
    """The messages sent to the subscriber (the notifications app's delivery log), newest first."""
    return subscriber_messages(subscriber, limit=limit)
