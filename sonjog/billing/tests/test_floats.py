"""Resellers' floats: top-ups, charges at every level when a subscriber is billed, refusals that name
each level, credit back on a void and on an early end, and the database's last word.

The tree: the root ISP, reseller R under it, sub-reseller S under R. S sells "S 20M" at 1,000.00,
mapped to R's "R 20M" at a wholesale 600.00; R's "R 20M" is mapped to the root's "Root 20M" at
400.00. A subscriber of S is charged 600.00 on S's float and 400.00 on R's for a full month."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from sonjog.billing.models import Bill, BillingRun, FloatAccount, FloatEntry, Invoice
from sonjog.billing.services import bill_generate_period, invoice_void
from sonjog.billing.services.floats import (
    FloatError,
    FloatShort,
    chain_operator_ids,
    float_account_open,
    float_adjust,
    float_topup,
    float_transfer,
)
from sonjog.billing.verification import ledger_verify
from sonjog.catalog.exceptions import CatalogError
from sonjog.catalog.services import package_wholesale_set
from sonjog.conftest import make_operator, make_package, make_subscriber, run_at_once
from sonjog.flows.subscribers import (
    subscriber_change_package,
    subscriber_create,
    subscriber_set_intent,
    subscriber_terminate,
)
from sonjog.operators.services import operator_create

D = dt.date
M = Decimal
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]  # 15 June 2027


class Tree:
    def __init__(self) -> None:
        self.root = make_operator(vat_rate=M("0"))
        self.r = operator_create(code=f"r-{self.root.pk}", name="Reseller R", parent=self.root)
        self.s = operator_create(code=f"s-{self.root.pk}", name="Sub-reseller S", parent=self.r)
        self.root_pkg = make_package(self.root, "500.00", vat=False, name="Root 20M")
        self.r_pkg = make_package(self.r, "800.00", vat=False, name="R 20M")
        self.s_pkg = make_package(self.s, "1000.00", vat=False, name="S 20M")
        package_wholesale_set(package=self.r_pkg, parent_package=self.root_pkg, wholesale_price=M("400.00"))
        package_wholesale_set(package=self.s_pkg, parent_package=self.r_pkg, wholesale_price=M("600.00"))
        self.r_float = float_account_open(operator=self.r)
        self.s_float = float_account_open(operator=self.s)

    def balances(self) -> tuple[Decimal, Decimal]:
        return (
            FloatAccount.objects.get(operator=self.r).balance,
            FloatAccount.objects.get(operator=self.s).balance,
        )


@pytest.fixture
def tree() -> Tree:
    return Tree()


def charges_of(bill: Bill) -> list[tuple[str, Decimal, Decimal | None]]:
    return [
        (entry.account.operator.name, entry.amount, entry.unit_price)
        for entry in FloatEntry.objects.filter(bill=bill, kind="charge").select_related("account__operator")
    ]


def test_the_chain_is_every_level_below_the_root_nearest_first(tree):
    assert chain_operator_ids(tree.s) == [tree.s.pk, tree.r.pk]
    assert chain_operator_ids(tree.r) == [tree.r.pk]
    assert chain_operator_ids(tree.root) == []


def test_a_sub_resellers_subscriber_is_charged_at_every_level_once(tree):
    float_topup(operator=tree.r, amount=M("5000.00"), method="cash")
    float_topup(operator=tree.s, amount=M("5000.00"), method="bkash", reference="8N7A6B5C")
    # Activated on 1 June: a full month.
    subscriber = make_subscriber(tree.s, tree.s_pkg, activation_date=D(2027, 6, 1))
    bill = Bill.objects.get(subscriber=subscriber)
    assert sorted(charges_of(bill)) == [
        ("Reseller R", M("-400.00"), M("400.00")),
        ("Sub-reseller S", M("-600.00"), M("600.00")),
    ]
    assert tree.balances() == (M("4600.00"), M("4400.00"))
    # Billing the period again (the nightly run, a retry) writes nothing twice.
    result = bill_generate_period(operator=tree.s, period_month=D(2027, 6, 1), trigger=BillingRun.Trigger.STAFF)
    assert result.created == 0 and result.float_charges == 0
    assert FloatEntry.objects.filter(kind="charge").count() == 2
    report = ledger_verify()
    assert report.ok, report.violations


def test_a_prorated_first_period_charges_the_same_share_at_every_level(tree):
    float_topup(operator=tree.r, amount=M("5000.00"), method="cash")
    float_topup(operator=tree.s, amount=M("5000.00"), method="cash")
    # From 10 June: 21 of 30 days.
    subscriber = make_subscriber(tree.s, tree.s_pkg, activation_date=D(2027, 6, 10))
    bill = Bill.objects.get(subscriber=subscriber)
    assert bill.total == M("700.00")
    assert sorted(charges_of(bill)) == [
        ("Reseller R", M("-280.00"), M("400.00")),
        ("Sub-reseller S", M("-420.00"), M("600.00")),
    ]


def test_a_float_that_cannot_cover_a_connection_refuses_it_and_names_each_level(tree):
    float_topup(operator=tree.r, amount=M("200.00"), method="cash")
    float_topup(operator=tree.s, amount=M("5000.00"), method="cash")
    before = FloatEntry.objects.count()
    with pytest.raises(FloatError) as refused:
        subscriber_create(operator=tree.s, name="New one", phone="01711000001", package=tree.s_pkg)
    message = str(refused.value)
    # Signed up today, 15 June: 16 of 30 days, 213.33 of R's 400.00.
    assert "Reseller R: ৳213.33 from ৳200.00 leaves ৳-13.33" in message
    assert "Top the float up first." in message
    # Nothing of the sign-up stays: no subscriber, no bill, no charge.
    assert not tree.s.subscribers.exists()
    assert FloatEntry.objects.count() == before and tree.balances() == (M("200.00"), M("5000.00"))


def test_the_minimum_balance_stops_new_connections_before_the_floor(tree):
    float_account_open(operator=tree.s, minimum_balance=M("4500.00"))
    float_topup(operator=tree.r, amount=M("5000.00"), method="cash")
    float_topup(operator=tree.s, amount=M("5000.00"), method="cash")
    with pytest.raises(FloatError, match=r"leaves ৳4,400.00 \(lowest allowed ৳4,500.00\)"):
        make_subscriber(tree.s, tree.s_pkg, activation_date=D(2027, 6, 1))
    # Renewals run on to the floor unless the float holds them too.
    assert FloatAccount.objects.get(operator=tree.s).hold_renewals is False


def waiting(tree: Tree, count: int, since: dt.date) -> list:
    """Active subscribers of S from `since` that no run has billed yet (as after an import)."""
    from sonjog.customers.models import Subscriber

    made = [
        subscriber_create(
            operator=tree.s, name=f"Waiting {n}", phone=f"0171300{n:04d}", package=tree.s_pkg, activate=False
        )
        for n in range(count)
    ]
    Subscriber.objects.filter(pk__in=[each.pk for each in made]).update(activation_date=since, service_intent="active")
    return made


def test_generation_bills_what_the_floats_cover_and_names_the_rest(tree):
    float_topup(operator=tree.r, amount=M("10000.00"), method="cash")
    float_topup(operator=tree.s, amount=M("3000.00"), method="cash")
    subscribers = waiting(tree, 3, D(2027, 5, 1))
    result = bill_generate_period(operator=tree.s, period_month=D(2027, 6, 1), trigger=BillingRun.Trigger.NIGHTLY)
    # May and June for three: 6 x 600.00 = 3,600.00 > 3,000.00. Oldest periods first, in subscriber
    # order: the third subscriber's May is billed, its June is left out and named.
    assert (result.created, result.backfilled, result.float_charges, result.float_refused) == (2, 3, 10, 1)
    assert result.errors[0]["subscriber"] == subscribers[2].customer_id
    assert "Sub-reseller S: ৳600.00 from ৳0.00 leaves ৳-600.00" in result.errors[0]["error"]
    assert Bill.objects.filter(subscriber=subscribers[2]).count() == 1
    assert tree.balances() == (M("10000.00") - 5 * M("400.00"), M("0.00"))
    float_topup(operator=tree.s, amount=M("1000.00"), method="cash")
    result = bill_generate_period(operator=tree.s, period_month=D(2027, 6, 1), trigger=BillingRun.Trigger.NIGHTLY)
    assert (result.created, result.backfilled, result.float_charges, result.float_refused) == (1, 0, 2, 0)
    assert tree.balances() == (M("10000.00") - 6 * M("400.00"), M("400.00"))
    # A month later the float covers none of the three renewals, then two of them.
    result = bill_generate_period(operator=tree.s, period_month=D(2027, 7, 1), trigger=BillingRun.Trigger.NIGHTLY)
    assert (result.created, result.float_refused) == (0, 3)
    float_topup(operator=tree.s, amount=M("800.00"), method="cash")
    result = bill_generate_period(operator=tree.s, period_month=D(2027, 7, 1), trigger=BillingRun.Trigger.NIGHTLY)
    assert (result.created, result.float_refused) == (2, 1)
    assert tree.balances()[1] == M("0.00")
    report = ledger_verify()
    assert report.ok, report.violations


def test_an_unmapped_package_is_refused_with_what_to_do(tree):
    float_topup(operator=tree.r, amount=M("5000.00"), method="cash")
    float_topup(operator=tree.s, amount=M("5000.00"), method="cash")
    loose = make_package(tree.s, "700.00", vat=False, name="S unmapped")
    with pytest.raises(FloatError, match="'S unmapped' is not mapped to a package of its parent"):
        make_subscriber(tree.s, loose, activation_date=D(2027, 6, 1))


def test_a_postpaid_reseller_runs_down_to_its_credit_limit_and_no_further(tree):
    float_account_open(operator=tree.r, credit_limit=M("1000.00"))
    float_topup(operator=tree.s, amount=M("5000.00"), method="cash")
    make_subscriber(tree.s, tree.s_pkg, activation_date=D(2027, 6, 1))
    make_subscriber(tree.s, tree.s_pkg, activation_date=D(2027, 6, 1))
    assert tree.balances()[0] == M("-800.00")
    with pytest.raises(FloatError, match=r"lowest allowed ৳-1,000\.00"):
        make_subscriber(tree.s, tree.s_pkg, activation_date=D(2027, 6, 1))
    with pytest.raises(FloatError, match="cannot be set below what is already owed"):
        float_account_open(operator=tree.r, credit_limit=M("500.00"))


def test_the_database_refuses_a_balance_below_the_floor_and_any_edit(tree):
    with pytest.raises(IntegrityError), transaction.atomic():
        FloatAccount.objects.filter(pk=tree.r_float.pk).update(balance=M("-0.01"))
    entry = float_topup(operator=tree.r, amount=M("10.00"), method="cash")
    for sql in (
        "UPDATE billing_floatentry SET amount = 1 WHERE id = %s",
        "DELETE FROM billing_floatentry WHERE id = %s",
    ):
        with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])


def test_a_void_gives_every_level_back_its_charge_once(tree):
    float_topup(operator=tree.r, amount=M("5000.00"), method="cash")
    float_topup(operator=tree.s, amount=M("5000.00"), method="cash")
    subscriber = make_subscriber(tree.s, tree.s_pkg, activation_date=D(2027, 6, 1))
    invoice = Invoice.objects.get(bill__subscriber=subscriber)
    invoice_void(invoice=invoice, reason="signed up by mistake")
    assert tree.balances() == (M("5000.00"), M("5000.00"))
    assert FloatEntry.objects.filter(kind="credit_back").count() == 2
    # A credit back beyond the charge is refused by the database too.
    charge = FloatEntry.objects.filter(kind="charge", account=tree.r_float).get()
    with pytest.raises(Exception, match="exceeds what is left"), transaction.atomic():
        FloatEntry.objects.create(
            account=tree.r_float, kind="credit_back", amount=M("0.01"), balance_after=M("0"), charge=charge
        )
    report = ledger_verify()
    assert report.ok, report.violations


@pytest.mark.parametrize(("rule", "back"), [("prorated", M("320.00")), ("full", M("600.00")), ("none", M("0"))])
def test_an_early_end_credits_back_by_each_floats_rule(tree, rule, back):
    float_account_open(operator=tree.s, credit_back=rule)
    float_topup(operator=tree.r, amount=M("5000.00"), method="cash")
    float_topup(operator=tree.s, amount=M("5000.00"), method="cash")
    subscriber = make_subscriber(tree.s, tree.s_pkg, activation_date=D(2027, 6, 1))
    # Today, 15 June: 16 of the period's 30 days unused.
    subscriber_terminate(subscriber=subscriber, terminated_on=D(2027, 6, 15), reason="moved away")
    r_balance, s_balance = tree.balances()
    assert s_balance == M("4400.00") + back
    # R's float keeps its own rule (prorated): 16 of 30 days of 400.00.
    assert r_balance == M("4600.00") + M("213.33")
    report = ledger_verify()
    assert report.ok, report.violations


def test_top_ups_adjustments_and_transfers_are_checked(tree):
    with pytest.raises(FloatError, match="needs its transaction reference"):
        float_topup(operator=tree.r, amount=M("10.00"), method="bank")
    for bad in (M("0"), M("-5"), M("0.001"), M("1e12"), M("NaN")):
        with pytest.raises(FloatError.__mro__[1]):
            float_topup(operator=tree.r, amount=bad, method="cash")
    with pytest.raises(FloatError, match="root ISP"):
        float_account_open(operator=tree.root)
    with pytest.raises(FloatError, match="needs a note"):
        float_adjust(operator=tree.r, amount=M("5"), memo=" ")
    other = operator_create(code=f"r2-{tree.root.pk}", name="Reseller R2", parent=tree.root)
    float_account_open(operator=other)
    float_topup(operator=tree.r, amount=M("100.00"), method="cash")
    with pytest.raises(FloatShort):
        float_transfer(source=tree.r, target=other, amount=M("100.01"))
    float_transfer(source=tree.r, target=other, amount=M("60.00"), memo="moving customers")
    with pytest.raises(FloatError, match="same parent"):
        float_transfer(source=tree.s, target=other, amount=M("1.00"))
    assert FloatAccount.objects.get(operator=other).balance == M("60.00")
    assert tree.balances()[0] == M("40.00")
    report = ledger_verify()
    assert report.ok, report.violations


def test_the_tariff_mapper_refuses_what_does_not_fit(tree):
    with pytest.raises(CatalogError, match="not a package of"):
        package_wholesale_set(package=tree.s_pkg, parent_package=tree.root_pkg, wholesale_price=M("1"))
    with pytest.raises(CatalogError, match="root ISP"):
        package_wholesale_set(package=tree.root_pkg, parent_package=tree.root_pkg, wholesale_price=M("1"))
    with pytest.raises(CatalogError, match="both"):
        package_wholesale_set(package=tree.s_pkg, parent_package=tree.r_pkg, wholesale_price=None)
    with pytest.raises(CatalogError, match="two decimal"):
        package_wholesale_set(package=tree.s_pkg, parent_package=tree.r_pkg, wholesale_price=M("1.005"))


@pytest.mark.django_db(transaction=True)
def test_concurrent_generation_top_ups_and_sign_ups_never_double_charge_nor_pass_the_floor():
    tree = Tree()
    float_topup(operator=tree.r, amount=M("100000.00"), method="cash")
    float_topup(operator=tree.s, amount=M("6000.00"), method="cash")
    waiting(tree, 8, D(2027, 6, 1))

    def generate():
        return bill_generate_period(operator=tree.s, period_month=D(2027, 6, 1), trigger=BillingRun.Trigger.STAFF)

    def top_up():
        return float_topup(operator=tree.s, amount=M("600.00"), method="cash")

    def sign_up(n):
        def run():
            return subscriber_create(operator=tree.s, name=f"Now {n}", phone=f"0171400{n:04d}", package=tree.s_pkg)

        return run

    results = run_at_once(generate, generate, generate, generate, top_up, sign_up(1), sign_up(2))
    for result in results:
        assert not isinstance(result, Exception) or isinstance(result, FloatError), result
    charges = FloatEntry.objects.filter(kind="charge")
    bills = Bill.objects.filter(subscriber__operator=tree.s)
    # Exactly one charge per bill and level, and the float never below zero.
    assert charges.count() == 2 * bills.count()
    assert FloatAccount.objects.get(operator=tree.s).balance >= 0
    # 6,600.00 covers eleven bills of 600.00 at most (the sign-ups' first bills are 320.00).
    assert bills.count() <= 12
    report = ledger_verify()
    assert report.ok, report.violations


def test_a_package_change_gives_back_the_old_days_and_charges_the_new_at_every_level(tree):
    bigger_r = make_package(tree.r, "1200.00", vat=False, name="R 50M")
    bigger_s = make_package(tree.s, "1500.00", vat=False, name="S 50M")
    package_wholesale_set(package=bigger_r, parent_package=tree.root_pkg, wholesale_price=M("700.00"))
    package_wholesale_set(package=bigger_s, parent_package=bigger_r, wholesale_price=M("900.00"))
    float_topup(operator=tree.r, amount=M("5000.00"), method="cash")
    float_topup(operator=tree.s, amount=M("5000.00"), method="cash")
    subscriber = make_subscriber(tree.s, tree.s_pkg, activation_date=D(2027, 6, 1))
    # Upgraded today, 15 June: 16 of 30 days left.
    subscriber_change_package(subscriber=subscriber, package=bigger_s)
    r_balance, s_balance = tree.balances()
    # S: 600.00 charged, 320.00 back, 480.00 (16/30 of 900.00) charged: 4,400 + 320 - 480.
    assert s_balance == M("4240.00")
    # R: 400.00 charged, 213.33 back, 373.33 (16/30 of 700.00) charged.
    assert r_balance == M("4600.00") + M("213.33") - M("373.33")
    charge_bill = Bill.objects.get(subscriber=subscriber, kind="charge")
    assert sorted(charges_of(charge_bill)) == [
        ("Reseller R", M("-373.33"), M("700.00")),
        ("Sub-reseller S", M("-480.00"), M("900.00")),
    ]
    report = ledger_verify()
    assert report.ok, report.violations


def test_an_upgrade_the_float_cannot_cover_is_refused_and_changes_nothing(tree):
    bigger_r = make_package(tree.r, "1200.00", vat=False, name="R 50M")
    bigger_s = make_package(tree.s, "1500.00", vat=False, name="S 50M")
    package_wholesale_set(package=bigger_r, parent_package=tree.root_pkg, wholesale_price=M("700.00"))
    package_wholesale_set(package=bigger_s, parent_package=bigger_r, wholesale_price=M("900.00"))
    float_topup(operator=tree.r, amount=M("5000.00"), method="cash")
    float_topup(operator=tree.s, amount=M("700.00"), method="cash")
    subscriber = make_subscriber(tree.s, tree.s_pkg, activation_date=D(2027, 6, 1))  # S left with 100.00
    entries = FloatEntry.objects.count()
    with pytest.raises(FloatShort, match="cannot cover this package change"):
        subscriber_change_package(subscriber=subscriber, package=bigger_s)
    subscriber.refresh_from_db()
    assert subscriber.package == tree.s_pkg
    assert FloatEntry.objects.count() == entries and tree.balances()[1] == M("100.00")
    assert not Bill.objects.filter(subscriber=subscriber, kind="charge").exists()


def test_a_reactivation_of_an_unbilled_period_needs_the_float(tree):
    float_topup(operator=tree.r, amount=M("5000.00"), method="cash")
    (subscriber,) = waiting(tree, 1, D(2027, 5, 1))
    from sonjog.customers.models import Subscriber

    Subscriber.objects.filter(pk=subscriber.pk).update(service_intent="suspended")
    subscriber.refresh_from_db()
    with pytest.raises(FloatShort, match="cannot cover this reactivation"):
        subscriber_set_intent(subscriber=subscriber, intent="active", reason="paid")
    subscriber.refresh_from_db()
    assert subscriber.service_intent == "suspended"
    float_topup(operator=tree.s, amount=M("600.00"), method="cash")
    subscriber_set_intent(subscriber=subscriber, intent="active", reason="paid")
    subscriber.refresh_from_db()
    assert subscriber.service_intent == "active"
