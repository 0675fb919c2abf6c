"""A synthetic ISP for demos and benchmarks: one root ISP, two resellers, zones, six packages, and
subscribers spread over all three billing modes and cycles with months of bills and payments.

Bills come from the real generation service, month by month, so seeded data is exactly what
production would hold. Payments take a bulk path (set-based SQL) that writes the same rows
`payment_record` would: payment, ledger entry, allocation to the bill it pays. Payers settle bills in
order, so the direct allocation equals FIFO. Statements are then projected once for everybody.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from sonjog.billing.models import BillingRun
from sonjog.billing.services import statements_reproject
from sonjog.billing.terms import operator_today
from sonjog.catalog.models import AddOn, Package
from sonjog.core.periods import add_months, month_start
from sonjog.customers.models import ServiceIntent, Subscriber, SubscriberAddOn, Zone
from sonjog.flows.generation import bills_generate
from sonjog.operators.models import BillingCycle, BillingMode, Operator
from sonjog.operators.services import operator_create

PACKAGES = [
    ("Home 5 Mbps", "500", 5_120),
    ("Home 10 Mbps", "800", 10_240),
    ("Home 20 Mbps", "1050", 20_480),
    ("Family 40 Mbps", "1500", 40_960),
    ("Pro 80 Mbps", "2200", 81_920),
    ("Business 150 Mbps", "4500", 153_600),
]
ZONES = {
    "Mirpur": ["Section 1", "Section 10", "Pallabi"],
    "Uttara": ["Sector 4", "Sector 7", "Sector 11"],
    "Dhanmondi": ["Road 27", "Jigatola"],
    "Mohammadpur": ["Shyamoli", "Adabor"],
}
FIRST_NAMES = [
    "Rahim",
    "Karim",
    "Fatema",
    "Ayesha",
    "Tanvir",
    "Nusrat",
    "Sabbir",
    "Mitu",
    "Arif",
    "Sumaiya",
    "Jamal",
    "Rupa",
    "Hasan",
    "Farzana",
    "Imran",
    "Shirin",
    "Rakib",
    "Nadia",
    "Sohel",
    "Taslima",
]
LAST_NAMES = ["Ahmed", "Hossain", "Islam", "Rahman", "Khan", "Chowdhury", "Akter", "Begum", "Uddin", "Sarker"]


@dataclass
class SeedResult:
    operators: list[Operator]
    subscribers: int
    bills: int
    payments: int
    months: int


def _ensure_operators() -> list[Operator]:
    root = operator_create(
        code="demo-isp",
        name="Sonjog Demo Broadband",
        customer_id_prefix="SD",
        billing_mode=BillingMode.MONTHLY,
        billing_cycle=BillingCycle.CALENDAR,
    )
    north = operator_create(
        code="demo-north",
        name="North Net (reseller)",
        parent=root,
        customer_id_prefix="NN",
        billing_mode=BillingMode.CUMULATIVE,
        billing_cycle=BillingCycle.FIXED_DAY,
        billing_day=10,
    )
    south = operator_create(
        code="demo-south",
        name="South Link (reseller)",
        parent=root,
        customer_id_prefix="SL",
        billing_mode=BillingMode.PREPAID,
        billing_cycle=BillingCycle.ANNIVERSARY,
        vat_inclusive=False,
    )
    return [root, north, south]


@transaction.atomic
def seed_isp(
    *,
    subscribers: int,
    months: int,
    random_seed: int = 1,
    progress: Callable[[str], None] | None = None,
) -> SeedResult:
    """Seed into an empty Sonjog; months counts back from the current month, which is included."""
    rng = random.Random(random_seed)
    say = progress or (lambda _note: None)
    with transaction.atomic():
        operators = _ensure_operators()
        packages: dict[int, list[Package]] = {}
        zones: dict[int, list[Zone]] = {}
        for operator in operators:
            packages[operator.pk] = [
                Package.objects.create(
                    operator=operator,
                    name=name,
                    price=Decimal(price),
                    download_kbps=kbps,
                    upload_kbps=kbps,
                    router_profile=name.split()[0].lower() + f"-{kbps // 1024}m",
                    data_allowance_gb=None if kbps > 40_000 else 500,
                )
                for name, price, kbps in PACKAGES
            ]
            zones[operator.pk] = []
            for zone_name, subzones in ZONES.items():
                parent = Zone.objects.create(operator=operator, name=zone_name)
                zones[operator.pk].extend(
                    Zone.objects.create(operator=operator, parent=parent, name=s) for s in subzones
                )
    say("operators, packages and zones")

    today = operator_today(operators[0])
    first_month = add_months(month_start(today), -(months - 1))
    shares = [0.7, 0.2, 0.1]
    counts = [int(subscribers * share) for share in shares]
    counts[0] += subscribers - sum(counts)
    window_days = (today - first_month).days
    rows: list[Subscriber] = []
    payer_kind: dict[str, str] = {}
    for operator, count in zip(operators, counts, strict=True):
        for sequence in range(1, count + 1):
            customer_id = f"{operator.customer_id_prefix}{sequence:0{operator.customer_id_digits}d}"
            # 40% joined just before the window (so they are billed all of it); the rest joined
            # evenly across it.
            if rng.random() < 0.4:
                activation = first_month - dt.timedelta(days=rng.randint(1, 27))
            else:
                activation = first_month + dt.timedelta(days=rng.randint(0, max(window_days, 0)))
            mode = rng.choices([BillingMode.MONTHLY, BillingMode.CUMULATIVE, BillingMode.PREPAID], [60, 25, 15])[0]
            cycle = rng.choices(
                [BillingCycle.CALENDAR, BillingCycle.ANNIVERSARY, BillingCycle.FIXED_DAY], [60, 25, 15]
            )[0]
            package = rng.choice(packages[operator.pk])
            rows.append(
                Subscriber(
                    operator=operator,
                    customer_id=customer_id,
                    name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                    phone=f"+8801{rng.choice('3456789')}{rng.randint(0, 99_999_999):08d}",
                    address=f"House {rng.randint(1, 200)}, Road {rng.randint(1, 40)}",
                    zone=rng.choice(zones[operator.pk]),
                    package=package,
                    pppoe_username=customer_id.lower(),
                    pppoe_password=f"pw{rng.randint(100_000, 999_999)}",
                    activation_date=activation,
                    billing_mode=None if mode == operator.billing_mode else mode,
                    billing_cycle=None if cycle == operator.billing_cycle else cycle,
                    billing_day=20 if cycle == BillingCycle.FIXED_DAY else None,
                    is_vip=rng.random() < 0.01,
                    monthly_discount=Decimal("50.00") if rng.random() < 0.05 else Decimal("0.00"),
                    service_intent=ServiceIntent.ACTIVE,
                    service_intent_at=timezone.now(),
                )
            )
            payer_kind[customer_id] = rng.choices(["prompt", "late", "stopped"], [78, 15, 7])[0]
        Operator.objects.filter(pk=operator.pk).update(customer_id_next=count + 1)
    with transaction.atomic():
        Subscriber.objects.bulk_create(rows, batch_size=5000)
        addon_rows = _seed_addons(rng, operators, rows)
    _analyze()
    say(f"{len(rows)} subscribers, {addon_rows} add-ons running")

    bills = 0
    for index in range(months):
        month = add_months(first_month, index)
        for operator in operators:
            result = bills_generate(operator=operator, period_month=month, trigger=BillingRun.Trigger.CLI, today=today)
            bills += result.created + result.backfilled
        if index % 4 == 0:
            _analyze()
        say(f"bills {month:%Y-%m}")

    payments = _seed_payments(rng, payer_kind, today)
    _analyze()
    say(f"{payments} payments")
    with transaction.atomic():
        ids = list(Subscriber.objects.filter(operator__in=operators).values_list("pk", flat=True))
        statements_reproject((pk, dt.date(1900, 1, 1)) for pk in ids)
        _seed_intents_and_expiry(today)
    say("statements")
    return SeedResult(operators=operators, subscribers=len(rows), bills=bills, payments=payments, months=months)


# Value-added services: a fifth of the subscribers hold one or two, from their activation on.
ADDONS = [("Static IP", "300.00", True), ("IPTV", "250.00", True), ("Gaming boost", "150.00", False)]
ADDON_SHARE = 0.2


def _seed_addons(rng: random.Random, operators: list[Operator], subscribers: list[Subscriber]) -> int:
    catalogue = {
        operator.pk: [
            AddOn.objects.create(operator=operator, name=name, price=Decimal(price), vat_applicable=vat)
            for name, price, vat in ADDONS
        ]
        for operator in operators
    }
    stretches = []
    for subscriber in subscribers:
        if rng.random() >= ADDON_SHARE or subscriber.activation_date is None:
            continue
        for addon in rng.sample(catalogue[subscriber.operator_id], rng.choice([1, 1, 2])):
            stretches.append(SubscriberAddOn(subscriber=subscriber, addon=addon, start_date=subscriber.activation_date))
    SubscriberAddOn.objects.bulk_create(stretches, batch_size=5000)
    return len(stretches)


def _analyze() -> None:
    """The seed is one transaction, so autovacuum never sees its rows; without fresh statistics the
    planner would treat million-row tables as empty and pick nested-loop plans."""
    with connection.cursor() as cursor:
        for table in (
            "customers_subscriber",
            "billing_bill",
            "billing_ledgerentry",
            "billing_statement",
            "billing_allocation",
            "billing_payment",
            "billing_invoice",
            "billing_billline",
            "customers_subscriberaddon",
        ):
            cursor.execute(f"ANALYZE {table}")


_SEED_PAYMENTS_SQL = """
WITH payer AS (
    SELECT * FROM unnest(%(customer_ids)s::text[], %(kinds)s::text[], %(offsets)s::int[])
        AS p(customer_id, kind, offset_days)
), chosen AS (
    SELECT b.id AS bill_id, b.subscriber_id, b.operator_id, b.total,
           (b.period_start + CASE p.kind WHEN 'late' THEN 30 + p.offset_days ELSE p.offset_days END)::date AS paid_on,
           row_number() OVER (PARTITION BY b.subscriber_id ORDER BY b.period_month) AS nth,
           count(*) OVER (PARTITION BY b.subscriber_id) AS bills, p.kind
    FROM billing_bill b
    JOIN customers_subscriber s ON s.id = b.subscriber_id
    JOIN payer p ON p.customer_id = s.customer_id
    WHERE b.reversed_at IS NULL AND b.total > 0
), payable AS (
    SELECT * FROM chosen
    WHERE paid_on <= %(today)s AND NOT (kind = 'stopped' AND nth > bills / 2)
), payments AS (
    INSERT INTO billing_payment (operator_id, subscriber_id, amount, method, reference, gateway,
        gateway_transaction_id, received_at, confirmed_duplicate, created_at)
    SELECT operator_id, subscriber_id, total,
           (ARRAY['cash', 'cash', 'bkash', 'nagad', 'bank'])[1 + (bill_id %% 5)],
           'seed-' || bill_id, '', '', (paid_on + time '11:00') AT TIME ZONE %(tz)s, false, now()
    FROM payable ORDER BY bill_id
    RETURNING id, subscriber_id, operator_id, amount, received_at, reference
), entries AS (
    INSERT INTO billing_ledgerentry (operator_id, subscriber_id, kind, category, amount, effective_date,
        period_month, payment_id, adjustment_reason, memo, created_at)
    SELECT p.operator_id, p.subscriber_id, 'payment', 'paid', -p.amount,
           (p.received_at AT TIME ZONE %(tz)s)::date,
           CASE WHEN extract(day FROM (p.received_at AT TIME ZONE %(tz)s)) >= a.anchor
                THEN date_trunc('month', p.received_at AT TIME ZONE %(tz)s)
                ELSE date_trunc('month', p.received_at AT TIME ZONE %(tz)s) - interval '1 month' END::date,
           p.id, '', p.reference, now()
    FROM payments p
    JOIN LATERAL (
        SELECT LEAST(
            CASE COALESCE(s.billing_cycle, o.billing_cycle)
                WHEN 'calendar' THEN 1
                WHEN 'anniversary' THEN extract(day FROM s.activation_date)::int
                ELSE COALESCE(s.billing_day, o.billing_day) END,
            extract(day FROM date_trunc('month', p.received_at AT TIME ZONE %(tz)s)
                + interval '1 month - 1 day')::int) AS anchor
        FROM customers_subscriber s JOIN operators_operator o ON o.id = s.operator_id
        WHERE s.id = p.subscriber_id) a ON true
    RETURNING id, payment_id, amount
)
INSERT INTO billing_allocation (source_id, bill_id, amount, created_at)
SELECT e.id, substr(pm.reference, 6)::bigint, -e.amount, now()
FROM entries e JOIN payments pm ON pm.id = e.payment_id
"""


def _seed_payments(rng: random.Random, payer_kind: dict[str, str], today: dt.date) -> int:
    customer_ids = list(payer_kind)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _SEED_PAYMENTS_SQL,
            {
                "customer_ids": customer_ids,
                "kinds": [payer_kind[c] for c in customer_ids],
                "offsets": [rng.randint(0, 9) for _ in customer_ids],
                "today": today,
                "tz": "Asia/Dhaka",
            },
        )
        return cursor.rowcount


def _seed_intents_and_expiry(today: dt.date) -> None:
    """Suspend the seeded non-payers past due + grace (never VIPs) and set prepaid validity, as the
    enforcement sweep and the payment service would have done."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE customers_subscriber s SET service_intent = 'suspended', service_intent_at = now()
            FROM operators_operator o
            WHERE o.id = s.operator_id AND NOT s.is_vip AND s.service_intent = 'active'
              AND EXISTS (
                SELECT 1 FROM billing_bill b WHERE b.subscriber_id = s.id AND b.reversed_at IS NULL
                  AND b.due_date + o.grace_days < %(today)s
                  AND b.total > b.allocated)
            """,
            {"today": today},
        )
        cursor.execute(
            """
            UPDATE customers_subscriber s SET expires_on = (
                SELECT max(b.period_end) FROM billing_bill b
                WHERE b.subscriber_id = s.id AND b.reversed_at IS NULL
                  AND b.total <= b.allocated)
            FROM operators_operator o
            WHERE o.id = s.operator_id AND COALESCE(s.billing_mode, o.billing_mode) = 'prepaid'
            """
        )
