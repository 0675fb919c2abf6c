import datetime as dt
import itertools
from decimal import Decimal

import pytest

from sonjog.billing.models import Bill, BillingRun, BillLine, Invoice, LedgerEntry, Statement
from sonjog.billing.services import bill_generate_period
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.customers.models import Subscriber

D = dt.date
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]


def generate(operator, month, **kwargs):
    return bill_generate_period(operator=operator, period_month=month, trigger="cli", today=D(2027, 6, 15), **kwargs)


def test_activation_bills_the_first_prorated_period_at_once(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 11))
    bill = Bill.objects.get(subscriber=subscriber)
    # 20 of June's 30 days at 1000/month.
    assert (bill.period_start, bill.period_end, bill.total, bill.is_prorated) == (
        D(2027, 6, 11),
        D(2027, 7, 1),
        Decimal("666.67"),
        True,
    )
    run = BillingRun.objects.get(bills=bill)
    assert run.trigger == BillingRun.Trigger.ACTIVATION


def test_five_outcomes_and_idempotent_rerun(operator, package):
    billed = make_subscriber(operator, package, activation_date=D(2027, 1, 1))  # billed up to today at activation
    gap = Subscriber.objects.get(pk=make_subscriber(operator, package, activation_date=None).pk)
    Subscriber.objects.filter(pk=gap.pk).update(activation_date=D(2027, 3, 1), service_intent="active")
    future = Subscriber.objects.get(pk=make_subscriber(operator, package, activation_date=None).pk)
    Subscriber.objects.filter(pk=future.pk).update(activation_date=D(2027, 9, 5), service_intent="active")

    first = generate(operator, D(2027, 7, 1))
    assert first.created == 2  # `billed` and `gap` for July
    assert first.backfilled == 4  # `gap`: March to June
    assert first.skipped_existing == 0
    assert first.skipped_future_joiners == 1
    assert first.errors == []
    again = generate(operator, D(2027, 7, 1))
    assert (again.created, again.backfilled, again.skipped_existing, again.skipped_future_joiners) == (0, 0, 2, 1)
    assert Bill.objects.filter(subscriber=billed).count() == 7
    assert ledger_verify().ok


def test_generation_reports_per_subscriber_errors_without_aborting(operator, package):
    good = make_subscriber(operator, package, activation_date=D(2027, 1, 1))
    broken = make_subscriber(operator, package, activation_date=None)
    # A fixed-day override with no usable day cannot be billed: reported, and the run goes on.
    Subscriber.objects.filter(pk=broken.pk).update(
        activation_date=D(2027, 1, 1), billing_cycle="bogus", service_intent="active"
    )
    result = generate(operator, D(2027, 7, 1))
    assert result.created == 1
    assert result.errors == [{"subscriber": broken.customer_id, "error": "unknown billing cycle 'bogus'"}]
    assert Bill.objects.filter(subscriber=good, period_month=D(2027, 7, 1)).exists()
    assert BillingRun.objects.get(pk=result.run_id).error_count == 1


def test_vat_exclusive_and_inclusive_lines():
    exclusive = make_operator(vat_rate=Decimal("5.00"), vat_inclusive=False)
    subscriber = make_subscriber(exclusive, make_package(exclusive, "1000.00"), activation_date=D(2027, 6, 1))
    bill = Bill.objects.get(subscriber=subscriber)
    assert (bill.subtotal, bill.vat, bill.total) == (Decimal("1000.00"), Decimal("50.00"), Decimal("1050.00"))
    inclusive = make_operator(vat_rate=Decimal("5.00"), vat_inclusive=True)
    subscriber = make_subscriber(inclusive, make_package(inclusive, "1050.00"), activation_date=D(2027, 6, 1))
    bill = Bill.objects.get(subscriber=subscriber)
    assert (bill.subtotal, bill.vat, bill.total) == (Decimal("1000.00"), Decimal("50.00"), Decimal("1050.00"))
    lines = dict(BillLine.objects.filter(bill=bill).values_list("kind", "amount"))
    assert lines == {"package": Decimal("1000.00"), "vat": Decimal("50.00")}


def test_vat_not_applicable_package_has_no_vat():
    operator = make_operator(vat_rate=Decimal("15.00"), vat_inclusive=False)
    subscriber = make_subscriber(operator, make_package(operator, "700.00", vat=False), activation_date=D(2027, 6, 1))
    assert Bill.objects.get(subscriber=subscriber).total == Decimal("700.00")


def test_anniversary_cycle_bills_from_the_activation_day(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 1, 31), billing_cycle="anniversary")
    periods = list(Bill.objects.filter(subscriber=subscriber).values_list("period_start", "period_end", "total"))
    assert periods[:4] == [
        (D(2027, 1, 31), D(2027, 2, 28), Decimal("1000.00")),
        (D(2027, 2, 28), D(2027, 3, 31), Decimal("1000.00")),
        (D(2027, 3, 31), D(2027, 4, 30), Decimal("1000.00")),
        (D(2027, 4, 30), D(2027, 5, 31), Decimal("1000.00")),
    ]


def test_fixed_day_cycle_prorates_the_first_period():
    operator = make_operator(vat_rate=Decimal("0"), billing_cycle="fixed_day", billing_day=10)
    subscriber = make_subscriber(operator, make_package(operator, "3000.00"), activation_date=D(2027, 5, 20))
    first = Bill.objects.filter(subscriber=subscriber).order_by("period_month").first()
    assert first is not None
    # [May 20, Jun 10) is 21 of the 31 days in [May 10, Jun 10).
    assert (first.period_start, first.period_end, first.total) == (D(2027, 5, 20), D(2027, 6, 10), Decimal("2032.26"))


def test_started_by_bills_anniversary_subscribers_on_their_own_day(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 1, 20), billing_cycle="anniversary")
    Bill.objects.filter(subscriber=subscriber)  # billed through the current period at activation
    before = generate(operator, D(2027, 7, 1), started_by=D(2027, 7, 19))
    assert before.created == 0
    on_the_day = generate(operator, D(2027, 7, 1), started_by=D(2027, 7, 20))
    assert on_the_day.created == 1


def test_statements_chain_and_invoices_are_numbered(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 1, 1))
    rows = list(Statement.objects.filter(subscriber=subscriber).order_by("period_month"))
    assert len(rows) == Bill.objects.filter(subscriber=subscriber).count()
    for previous, current in itertools.pairwise(rows):
        assert current.opening_due == previous.closing_due
    numbers = sorted(Invoice.objects.filter(operator=operator).values_list("number", flat=True))
    assert numbers == list(range(1, len(numbers) + 1))
    assert LedgerEntry.objects.filter(subscriber=subscriber, kind="bill").count() == len(rows)


def test_discount_needs_permission(operator, package, clerk, owner):
    from sonjog.customers.exceptions import DiscountNotPermitted
    from sonjog.flows.subscribers import subscriber_create

    with pytest.raises(DiscountNotPermitted):
        subscriber_create(
            operator=operator,
            name="X",
            phone="01711111111",
            package=package,
            monthly_discount=Decimal("100"),
            actor=clerk,
        )
    subscriber = subscriber_create(
        operator=operator,
        name="Y",
        phone="01711111112",
        package=package,
        monthly_discount=Decimal("100"),
        actor=owner,
        activation_date=D(2027, 6, 1),
    )
    bill = Bill.objects.get(subscriber=subscriber)
    assert (bill.discount, bill.total) == (Decimal("100.00"), Decimal("900.00"))


def test_nightly_job_bills_what_has_started_and_is_idempotent(operator, package, frozen_clock):
    from sonjog.flows.generation import due_bills_generate as generate_due_bills

    anniversary = make_subscriber(operator, package, activation_date=D(2027, 1, 20), billing_cycle="anniversary")
    calendar = make_subscriber(operator, package, activation_date=D(2027, 3, 1))
    assert generate_due_bills("nightly")["created"] == 0  # 15 June: nobody's period has started today
    frozen_clock.advance(days=5)  # 20 June: the anniversary subscriber's June period begins
    first = generate_due_bills("nightly")
    second = generate_due_bills("nightly")
    assert (first["created"], first["errors"]) == (1, 0)
    assert (second["created"], second["backfilled"]) == (0, 0)
    assert Bill.objects.filter(subscriber=anniversary, period_month=D(2027, 6, 1)).exists()
    assert not Bill.objects.filter(subscriber=calendar, period_month=D(2027, 7, 1)).exists()
    assert BillingRun.objects.filter(operator=operator, trigger="nightly").count() == 3
