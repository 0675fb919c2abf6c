"""Hypothesis: random days in the life of a three-level reseller tree never break the floats.

The tree: the root ISP; resellers R1 and R2 under it; sub-reseller S under R1. Every level has two
packages, each reseller's mapped to its parent's at a wholesale price, some of them odd (333.33,
1,111.11, 0.00) so that proration rounds. R1, R2 and S run on floats; the root keeps none, so a
subscriber of S is charged at S and at R1, one of R1 at R1, one of R2 at R2, one of the root nowhere.

The machine signs subscribers up (the floats may refuse: then nothing of the sign-up stays), tops the
floats up, generates the current or the next period of an operator, moves the pinned clock month by
month from January to May 2028 (through 29 February and through the hours after midnight in Dhaka
while the server's own clock, in UTC, is still on the day before), voids invoices (moving what was
paid), terminates subscribers on a day of a billed period, records payments, changes packages,
transfers between R1 and R2, adjusts floats and changes a float's credit-back rule or credit limit.
After every step the ledger verifies, every float is the sum of its entries and above its floor
(and what moved on it other than through bills is what the machine moved), its entries are dated in
order by the services' clock, every period bill is charged exactly once at each floated level of its
chain at that level's price, prorated like the bill, and nowhere else, no charge is given back more
than it was, and a voided bill's charges are given back in full. A fixed walk through every stop of
the clock runs beside the random examples, so that every run crosses 29 February and midnight in
Dhaka.

Each example runs in a savepoint of its own, rolled back when it ends, so examples never see each
other's rows. `SONJOG_PROPERTY_EXAMPLES` raises the example count (the default keeps the file
within a minute)."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.test import override_settings
from hypothesis import HealthCheck, currently_in_test_context, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from sonjog.billing.calculation import remaining_share
from sonjog.billing.models import (
    AdjustmentReason,
    Allocation,
    Bill,
    BillingRun,
    BillLine,
    EntryKind,
    FloatAccount,
    FloatEntry,
    Invoice,
    LedgerEntry,
    Statement,
)
from sonjog.billing.services import invoice_void
from sonjog.billing.services.floats import (
    FloatError,
    FloatShort,
    float_account_open,
    float_adjust,
    float_topup,
    float_transfer,
)
from sonjog.billing.terms import subscriber_terms
from sonjog.billing.verification import ledger_verify
from sonjog.catalog.models import Package
from sonjog.catalog.services import package_wholesale_set
from sonjog.conftest import make_package
from sonjog.core.models import AuditEvent
from sonjog.core.money import ZERO, round_money
from sonjog.core.periods import add_months, month_start, nominal_period
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.generation import bills_generate
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import subscriber_change_package, subscriber_create, subscriber_terminate
from sonjog.network.models import OutboxCommand
from sonjog.notifications.models import Message
from sonjog.operators.models import Operator
from sonjog.operators.services import operator_create

D = dt.date
M = Decimal
DHAKA = dt.timezone(dt.timedelta(hours=6))
pytestmark = pytest.mark.django_db

# The pinned clock's stops, in Dhaka (the server runs in UTC): month ends and the first hours of the
# next month, when UTC is still on the day before; 29 February 2028 in Dhaka, and again in UTC at
# 05:30 on 1 March in Dhaka.
CLOCK = [
    dt.datetime(2028, 1, 20, 12, 0, tzinfo=DHAKA),
    dt.datetime(2028, 1, 31, 23, 30, tzinfo=DHAKA),
    dt.datetime(2028, 2, 1, 0, 30, tzinfo=DHAKA),
    dt.datetime(2028, 2, 29, 12, 0, tzinfo=DHAKA),
    dt.datetime(2028, 3, 1, 5, 30, tzinfo=DHAKA),
    dt.datetime(2028, 3, 31, 12, 0, tzinfo=DHAKA),
    dt.datetime(2028, 4, 1, 0, 30, tzinfo=DHAKA),
    dt.datetime(2028, 4, 30, 23, 59, tzinfo=DHAKA),
    dt.datetime(2028, 5, 1, 3, 0, tzinfo=DHAKA),
]
LEVELS = ["root", "r1", "r2", "s"]
FLOATED = ["r1", "r2", "s"]
# (level, name, retail price, parent package's index, wholesale price at the parent)
PACKAGES = [
    ("root", "Root 10M", "500.00", None, None),
    ("root", "Root 40M", "1200.00", None, None),
    ("r1", "R1 10M", "800.00", 0, "333.33"),
    ("r1", "R1 40M", "1499.99", 1, "777.77"),
    ("r2", "R2 10M", "650.00", 0, "410.01"),
    ("r2", "R2 40M", "1300.00", 1, "0.00"),
    ("s", "S 10M", "999.99", 0, "555.55"),
    ("s", "S 40M", "1750.00", 1, "1111.11"),
]
PARENT = {"r1": "root", "r2": "root", "s": "r1"}
# The floated levels a subscriber of each level is charged at, nearest first (from the tree).
CHAIN = {"root": [], "r1": ["r1"], "r2": ["r2"], "s": ["s", "r1"]}
CYCLES = [(None, None), ("calendar", None), ("anniversary", None), ("fixed_day", 29), ("fixed_day", 31)]

_numbers = itertools.count(1)
money = st.decimals(min_value=M("0.01"), max_value=M("3000.00"), places=2)
# Sign-ups and generation fall on the floated levels more often than on the root.
level = st.sampled_from(["s", "r1", "r2", "root", "s", "r1"])
floated = st.sampled_from(FLOATED)
pick = st.integers(min_value=0, max_value=10_000)


def seen(what: str) -> None:
    """Counted in Hypothesis's statistics when a random example runs (the fixed walk runs outside one)."""
    if currently_in_test_context():
        event(what)


def footprint() -> dict[str, int]:
    """How many rows every table a sign-up may write holds."""
    counted = [Subscriber, Bill, BillLine, LedgerEntry, Statement, Invoice, BillingRun, FloatEntry]
    counted += [Allocation, OutboxCommand, Message, AuditEvent]
    with connection.cursor() as cursor:
        found = {}
        for model in counted:
            cursor.execute(f"SELECT count(*) FROM {model._meta.db_table}")
            found[model._meta.db_table] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM procrastinate_jobs")
        found["procrastinate_jobs"] = cursor.fetchone()[0]
    return found


class FloatTree(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.savepoint = transaction.atomic()
        self.savepoint.__enter__()
        self.clock_at = 0
        self.traveller = time_machine.travel(CLOCK[0], tick=False)
        self.clock = self.traveller.start()
        self.ops: dict[str, Operator] = {}
        self.packages: dict[str, list[Package]] = {}
        # Money that moved on each float other than through bills (top-ups, adjustments, transfers).
        self.external: dict[str, Decimal] = {name: ZERO for name in FLOATED}

    def teardown(self) -> None:
        self.traveller.stop()
        transaction.set_rollback(True)
        self.savepoint.__exit__(None, None, None)

    # -- the tree --------------------------------------------------------------------------------

    @initialize(
        balances=st.fixed_dictionaries(
            {name: st.sampled_from([M("0"), M("3000.00"), M("8000.00"), M("20000.00")]) for name in FLOATED}
        ),
        r2_prorates_last=st.booleans(),
        rules=st.fixed_dictionaries({name: st.sampled_from(FloatAccount.CreditBack.values) for name in FLOATED}),
        starters=st.lists(
            st.tuples(
                level,
                st.integers(min_value=0, max_value=1),
                st.integers(min_value=0, max_value=60),
                st.sampled_from(CYCLES),
            ),
            min_size=3,
            max_size=8,
        ),
    )
    def tree(
        self,
        balances: dict[str, Decimal],
        r2_prorates_last: bool,
        rules: dict[str, str],
        starters: list[tuple[str, int, int, tuple[str | None, int | None]]],
    ) -> None:
        n = next(_numbers)
        root = operator_create(code=f"fp-root-{n}", name="Root ISP", customer_id_prefix=f"FP{n}X", vat_rate=M("7.50"))
        r1 = operator_create(code=f"fp-r1-{n}", name="Reseller R1", parent=root, customer_id_prefix=f"FA{n}X")
        r2 = operator_create(
            code=f"fp-r2-{n}",
            name="Reseller R2",
            parent=root,
            customer_id_prefix=f"FB{n}X",
            prorate_last_period=r2_prorates_last,
        )
        s = operator_create(code=f"fp-s-{n}", name="Sub-reseller S", parent=r1, customer_id_prefix=f"FC{n}X")
        self.ops = {"root": root, "r1": r1, "r2": r2, "s": s}
        for name, label, price, parent_index, wholesale in PACKAGES:
            package = make_package(self.ops[name], price, vat=name != "r2", name=label)
            if parent_index is not None:
                assert wholesale is not None
                parent = self.packages[PARENT[name]][parent_index]
                package = package_wholesale_set(package=package, parent_package=parent, wholesale_price=M(wholesale))
            self.packages.setdefault(name, []).append(package)
        for name in FLOATED:
            float_account_open(operator=self.ops[name], credit_back=rules[name])
            if balances[name]:
                float_topup(operator=self.ops[name], amount=balances[name], method="cash")
                self.external[name] += balances[name]
        # A few subscribers from the start (signed up like any other, so the floats may refuse some).
        for name, package_index, days_back, cycle in starters:
            self.sign_up(name=name, package_index=package_index, days_back=days_back, cycle=cycle)

    # -- helpers ---------------------------------------------------------------------------------

    def today(self) -> dt.date:
        return CLOCK[self.clock_at].astimezone(DHAKA).date()

    def level_of(self, operator_id: int) -> str:
        return next(name for name, operator in self.ops.items() if operator.pk == operator_id)

    def accounts(self) -> dict[str, FloatAccount]:
        levels = {self.ops[name].pk: name for name in FLOATED}
        return {levels[account.operator_id]: account for account in FloatAccount.objects.filter(operator_id__in=levels)}

    def balances(self) -> dict[str, Decimal]:
        return {name: account.balance for name, account in self.accounts().items()}

    def subscribers(self, *, live: bool = False) -> list[Subscriber]:
        found = Subscriber.objects.filter(operator__in=self.ops.values()).order_by("pk")
        if live:
            found = found.exclude(service_intent=ServiceIntent.TERMINATED).exclude(activation_date=None)
        return list(found)

    def given_back(self, bill_id: int) -> dict[int, Decimal]:
        """Per charge of the bill: what was given back of it so far."""
        rows = (
            FloatEntry.objects.filter(bill_id=bill_id, kind=FloatEntry.Kind.CREDIT_BACK)
            .values("charge_id")
            .annotate(total=Sum("amount"))
        )
        return {row["charge_id"]: row["total"] for row in rows}

    # -- rules -----------------------------------------------------------------------------------

    @rule(name=floated, amount=money)
    def top_up(self, name: str, amount: Decimal) -> None:
        before = self.balances()
        float_topup(operator=self.ops[name], amount=amount, method="bkash", reference=f"TX{next(_numbers)}")
        self.external[name] += amount
        assert self.balances() == {**before, name: before[name] + amount}

    @rule(
        name=level,
        package_index=st.integers(min_value=0, max_value=1),
        days_back=st.integers(min_value=0, max_value=45),
        cycle=st.sampled_from(CYCLES),
    )
    def sign_up(self, name: str, package_index: int, days_back: int, cycle: tuple[str | None, int | None]) -> None:
        operator = self.ops[name]
        before, balances = footprint(), self.balances()
        # Days back 0: the activation date is left to the service, which must take Dhaka's today.
        activation = None if days_back == 0 else self.today() - dt.timedelta(days=days_back)
        number = next(_numbers)
        try:
            subscriber = subscriber_create(
                operator=operator,
                name=f"Subscriber {number}",
                phone=f"0181{number % 10_000_000:07d}",
                package=self.packages[name][package_index],
                activation_date=activation,
                billing_cycle=cycle[0],
                billing_day=cycle[1],
            )
        except FloatError as refused:
            # Refused by a float: nothing of the sign-up stays, and only a floated level can refuse.
            assert CHAIN[name] and "cannot cover" in str(refused), refused
            seen("sign-up refused by a float")
            assert footprint() == before
            assert self.balances() == balances
            return
        assert subscriber.activation_date == (activation or self.today())
        seen(f"sign-up at {name}")
        bills = Bill.objects.filter(subscriber=subscriber)
        assert bills.exists()
        charged = FloatEntry.objects.filter(bill__in=bills, kind=FloatEntry.Kind.CHARGE)
        after = self.balances()
        for level_name in FLOATED:
            spent = charged.filter(account__operator=self.ops[level_name]).aggregate(total=Sum("amount"))["total"]
            assert after[level_name] == balances[level_name] + (spent or ZERO)
            # A new connection never takes a float below its floor (no minimum balance is set here).
            assert after[level_name] >= -self.accounts()[level_name].credit_limit

    @precondition(lambda self: self.clock_at + 1 < len(CLOCK))
    @rule()
    def advance(self) -> None:
        self.clock_at += 1
        self.clock.move_to(CLOCK[self.clock_at])
        seen(f"clock reached {CLOCK[self.clock_at]:%Y-%m-%d %H:%M}")

    @rule(name=level, ahead=st.booleans())
    def generate(self, name: str, ahead: bool) -> None:
        operator = self.ops[name]
        today = self.today()
        period = add_months(month_start(today), 1) if ahead else month_start(today)
        # The nightly run bills what has begun by today; the staff's run bills a month ahead.
        started_by = None if ahead else today
        charges_before = FloatEntry.objects.filter(kind=FloatEntry.Kind.CHARGE).count()
        result = bills_generate(
            operator=operator, period_month=period, trigger=BillingRun.Trigger.NIGHTLY, started_by=started_by
        )
        seen(f"generation at {name}, ahead: {ahead}, charged: {bool(result.float_charges)}")
        assert result.float_charges == FloatEntry.objects.filter(kind=FloatEntry.Kind.CHARGE).count() - charges_before
        # The only errors are the floats' refusals, one per subscriber refused.
        assert len(result.errors) == result.float_refused, result.errors
        for error in result.errors:
            assert "cannot cover this bill" in error["error"], error
        if result.float_refused:
            seen("generation left bills out")
            assert CHAIN[name]
            # The floats were used greedily, oldest periods first: with nothing changed, a second
            # run finds every refused subscriber refused again and writes nothing.
            again = bills_generate(
                operator=operator, period_month=period, trigger=BillingRun.Trigger.NIGHTLY, started_by=started_by
            )
            assert (again.created, again.backfilled, again.float_charges) == (0, 0, 0), again.as_dict()
            assert again.float_refused == result.float_refused

    @rule(which=pick, move=st.booleans())
    def void(self, which: int, move: bool) -> None:
        invoices = list(
            Invoice.objects.filter(bill__subscriber__operator__in=self.ops.values(), voided_at__isnull=True).order_by(
                "pk"
            )
        )
        if not invoices:
            return
        invoice = invoices[which % len(invoices)]
        paid = Allocation.objects.filter(bill=invoice.bill, source__kind="payment").exists()
        charges = list(FloatEntry.objects.filter(bill=invoice.bill, kind=FloatEntry.Kind.CHARGE))
        given = self.given_back(invoice.bill_id)
        before = self.balances()
        invoice_void(invoice=invoice, reason="property test", move_payments=move or paid)
        seen("void of a paid invoice" if paid else "void")
        # Every level gets back what was left of its charge, to the paisa.
        after = self.balances()
        expected = dict(before)
        for charge in charges:
            name = self.level_of(charge.account.operator_id)
            expected[name] += -charge.amount - given.get(charge.pk, ZERO)
        assert after == expected

    @rule(which=pick, day_share=st.floats(min_value=0, max_value=0.999))
    def terminate(self, which: int, day_share: float) -> None:
        subscribers = self.subscribers(live=True)
        bills = list(
            Bill.objects.filter(subscriber__in=subscribers, kind=Bill.Kind.PERIOD, reversed_at__isnull=True).order_by(
                "pk"
            )
        )
        if not bills:
            return
        bill = bills[which % len(bills)]
        subscriber = Subscriber.objects.select_related("operator").get(pk=bill.subscriber_id)
        # A random day of that billed period (never after the business-date window's horizon).
        days = (bill.period_end - bill.period_start).days
        day = bill.period_start + dt.timedelta(days=int(days * day_share))
        holding = [
            each
            for each in Bill.objects.filter(subscriber=subscriber, kind=Bill.Kind.PERIOD, reversed_at__isnull=True)
            if each.period_start < day < each.period_end
        ]
        # What each charge of the bill holding the end day should have been given back afterwards:
        # the unused days' share by its float's rule, when the operator prorates last periods.
        expected: dict[int, Decimal] = {}
        prorates_last = subscriber_terms(subscriber).prorate_last
        checked: list[Bill] = []
        for current in holding:
            unused = (current.period_end - day).days
            # After a package change in the period, the change gave back the period bill's later days
            # (prorated) and its own charge stands for the new package from the change to the end.
            changed_on = (
                LedgerEntry.objects.filter(
                    subscriber=subscriber,
                    kind=EntryKind.ADJUSTMENT,
                    adjustment_reason=AdjustmentReason.PACKAGE_CHANGE,
                    reversed_by__isnull=True,
                    effective_date__gte=current.period_start,
                    effective_date__lte=day,
                    effective_date__lt=current.period_end,
                )
                .order_by("-effective_date")
                .values_list("effective_date", flat=True)
                .first()
            )
            segments: list[tuple[Bill, int, int]] = [
                (current, 0 if changed_on else unused, (current.period_end - current.period_start).days)
            ]
            if changed_on is not None:
                segment = (
                    Bill.objects.filter(
                        subscriber=subscriber, kind=Bill.Kind.CHARGE, reversed_at__isnull=True, period_start=changed_on
                    )
                    .order_by("-pk")
                    .first()
                )
                if segment is not None:
                    segments.append((segment, unused, (current.period_end - changed_on).days))
            for bill_of, days_unused, total in segments:
                checked.append(bill_of)
                given = self.given_back(bill_of.pk)
                for charge in FloatEntry.objects.filter(bill=bill_of, kind=FloatEntry.Kind.CHARGE).select_related(
                    "account"
                ):
                    left = -charge.amount - given.get(charge.pk, ZERO)
                    if not prorates_last or charge.account.credit_back == FloatAccount.CreditBack.NONE:
                        back = ZERO
                    elif charge.account.credit_back == FloatAccount.CreditBack.FULL:
                        back = left
                    else:
                        back = min(left, remaining_share(-charge.amount, days_unused, total))
                    expected[charge.pk] = given.get(charge.pk, ZERO) + back
        subscriber_terminate(subscriber=subscriber, terminated_on=day, reason="property test")
        found: dict[int, Decimal] = {}
        for current in checked:
            given = self.given_back(current.pk)
            for charge_id in FloatEntry.objects.filter(bill=current, kind=FloatEntry.Kind.CHARGE).values_list(
                "pk", flat=True
            ):
                found[charge_id] = given.get(charge_id, ZERO)
        assert found == expected
        seen("termination gave a float back part of a charge" if any(expected.values()) else "termination")

    @rule(which=pick, amount=money)
    def pay(self, which: int, amount: Decimal) -> None:
        subscribers = self.subscribers()
        if not subscribers:
            return
        before, entries = self.balances(), FloatEntry.objects.count()
        payment_receive(
            subscriber=subscribers[which % len(subscribers)], amount=amount, method="cash", confirm_duplicate=True
        )
        # A subscriber's payment is the reseller's money, not its parent's: the floats do not move.
        assert self.balances() == before and FloatEntry.objects.count() == entries

    @rule(which=pick, to_second=st.booleans(), day_back=st.integers(min_value=0, max_value=20))
    def change_package(self, which: int, to_second: bool, day_back: int) -> None:
        subscribers = self.subscribers(live=True)
        if not subscribers:
            return
        subscriber = subscribers[which % len(subscribers)]
        name = self.level_of(subscriber.operator_id)
        package = self.packages[name][1 if to_second else 0]
        if package.pk == subscriber.package_id:
            package = self.packages[name][0 if to_second else 1]
        assert subscriber.activation_date is not None
        day = max(subscriber.activation_date, self.today() - dt.timedelta(days=day_back))
        before, balances = footprint(), self.balances()
        try:
            subscriber_change_package(subscriber=subscriber, package=package, effective_date=day)
            seen(f"package change at {name}")
        except FloatShort:
            # An upgrade the floats cannot cover: refused, and nothing of it stays.
            seen("package change refused by a float")
            assert CHAIN[name]
            assert footprint() == before and self.balances() == balances

    @rule(source_is_r1=st.booleans(), amount=money)
    def transfer(self, source_is_r1: bool, amount: Decimal) -> None:
        source, target = ("r1", "r2") if source_is_r1 else ("r2", "r1")
        before = self.balances()
        try:
            float_transfer(source=self.ops[source], target=self.ops[target], amount=amount, memo="property test")
        except FloatShort:
            assert before[source] - amount < -self.accounts()[source].credit_limit
            assert self.balances() == before
            return
        self.external[source] -= amount
        self.external[target] += amount
        assert self.balances() == {**before, source: before[source] - amount, target: before[target] + amount}

    @rule(name=floated, amount=money, take=st.booleans())
    def adjust(self, name: str, amount: Decimal, take: bool) -> None:
        signed = -amount if take else amount
        before = self.balances()
        try:
            float_adjust(operator=self.ops[name], amount=signed, memo="property test")
        except FloatShort:
            assert take and before[name] - amount < -self.accounts()[name].credit_limit
            assert self.balances() == before
            return
        self.external[name] += signed
        assert self.balances() == {**before, name: before[name] + signed}

    @rule(
        name=floated,
        credit_back=st.none() | st.sampled_from(FloatAccount.CreditBack.values),
        credit_limit=st.none() | st.sampled_from([M("0"), M("500.00"), M("1234.56"), M("5000.00")]),
    )
    def float_settings(self, name: str, credit_back: str | None, credit_limit: Decimal | None) -> None:
        account = self.accounts()[name]
        change: dict[str, Any] = {
            "credit_limit": account.credit_limit if credit_limit is None else credit_limit,
            "minimum_balance": account.minimum_balance,
            "hold_renewals": account.hold_renewals,
            "low_balance_alert": account.low_balance_alert,
            "credit_back": account.credit_back if credit_back is None else credit_back,
        }
        try:
            float_account_open(operator=self.ops[name], **change)
        except FloatError as refused:
            # Only a limit below what is already owed is refused, and the float stays as it was.
            assert account.balance < -change["credit_limit"], refused
            after = self.accounts()[name]
            assert (after.credit_limit, after.credit_back) == (account.credit_limit, account.credit_back)
            return
        after = self.accounts()[name]
        assert (after.credit_limit, after.credit_back, after.balance) == (
            change["credit_limit"],
            change["credit_back"],
            account.balance,
        )

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def the_ledger_verifies(self) -> None:
        if not self.ops:
            return
        report = ledger_verify()
        assert report.ok, {name: rows for name, rows in report.violations.items() if rows}

    @invariant()
    def every_float_is_its_entries_and_above_its_floor(self) -> None:
        accounts = self.accounts()
        outside = Q(kind__in=[FloatEntry.Kind.TOPUP, FloatEntry.Kind.ADJUSTMENT, FloatEntry.Kind.TRANSFER])
        totals = {
            row["account_id"]: (row["total"], row["outside"] or ZERO)
            for row in FloatEntry.objects.filter(account__in=accounts.values())
            .values("account_id")
            .annotate(total=Sum("amount"), outside=Sum("amount", filter=outside))
        }
        for name, account in accounts.items():
            total, moved = totals.get(account.pk, (ZERO, ZERO))
            assert account.balance == total, (name, account.balance, total)
            assert account.balance >= -account.credit_limit, (name, account.balance, account.credit_limit)
            # What moved other than through bills is what the machine moved.
            assert moved == self.external[name], (name, moved, self.external[name])

    @invariant()
    def every_float_runs_in_time_order(self) -> None:
        """A float's statement lists its entries in order with their dates: no entry is dated before
        the one it follows, nor after the clock."""
        now = CLOCK[self.clock_at]
        accounts = self.accounts().values()
        dates: dict[int, dt.datetime] = {}
        for account_id, entry_id, kind, created_at in FloatEntry.objects.filter(account__in=accounts).values_list(
            "account_id", "pk", "kind", "created_at"
        ):
            assert created_at <= now, (entry_id, kind, created_at, now)
            assert created_at >= dates.get(account_id, created_at), (entry_id, kind, created_at, dates[account_id])
            dates[account_id] = created_at

    @invariant()
    def every_bill_is_charged_once_per_floated_level_of_its_chain(self) -> None:
        if not self.ops:
            return
        accounts = self.accounts()
        account_level = {account.pk: name for name, account in accounts.items()}
        packages = {package.pk: package for packages in self.packages.values() for package in packages}
        charges: dict[int, list[FloatEntry]] = {}
        for entry in FloatEntry.objects.filter(kind=FloatEntry.Kind.CHARGE, account__in=accounts.values()):
            assert entry.bill_id is not None
            charges.setdefault(entry.bill_id, []).append(entry)
        backs: dict[int, Decimal] = {}
        for row in (
            FloatEntry.objects.filter(kind=FloatEntry.Kind.CREDIT_BACK, account__in=accounts.values())
            .values("charge_id")
            .annotate(total=Sum("amount"))
        ):
            backs[row["charge_id"]] = row["total"]
        terms_of: dict[int, Any] = {}
        bills = Bill.objects.filter(subscriber__operator__in=self.ops.values()).select_related("subscriber__operator")
        for bill in bills:
            chain = CHAIN[self.level_of(bill.subscriber.operator_id)]
            found = charges.pop(bill.pk, [])
            if bill.kind == Bill.Kind.PERIOD:
                assert sorted(account_level[entry.account_id] for entry in found) == sorted(chain), (bill.pk, found)
                if bill.subscriber_id not in terms_of:
                    terms_of[bill.subscriber_id] = subscriber_terms(bill.subscriber)
                start, end = nominal_period(bill.period_month, terms_of[bill.subscriber_id].anchor_day)
                package = packages[bill.package_id]
                for entry in sorted(found, key=lambda each: chain.index(account_level[each.account_id])):
                    # Each level's own package and wholesale price, prorated exactly like the bill.
                    assert package.wholesale_price is not None and package.wholesale_package_id is not None
                    assert (entry.package_id, entry.unit_price) == (package.pk, package.wholesale_price)
                    price = package.wholesale_price
                    days = (bill.period_end - bill.period_start).days
                    cost = round_money(price * days / (end - start).days) if bill.is_prorated else round_money(price)
                    assert entry.amount == -cost, (bill.pk, entry.amount, cost)
                    package = packages[package.wholesale_package_id]
            else:
                # A package change's charge: at most the chain's levels, each once.
                levels = [account_level[entry.account_id] for entry in found]
                assert len(levels) == len(set(levels)) and set(levels) <= set(chain), (bill.pk, levels)
            for entry in found:
                back = backs.get(entry.pk, ZERO)
                assert ZERO <= back <= -entry.amount, (entry.pk, back, entry.amount)
                if bill.reversed_at is not None:
                    assert back == -entry.amount, (bill.pk, entry.pk, back, entry.amount)
        # No charge stands on a bill outside the tree.
        assert not charges, charges


@override_settings(TIME_ZONE="UTC")
def test_random_days_of_a_reseller_tree_keep_every_float_invariant():
    run_state_machine_as_test(
        FloatTree,
        settings=settings(
            max_examples=int(os.environ.get("SONJOG_PROPERTY_EXAMPLES", "10")),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@override_settings(TIME_ZONE="UTC")
def test_a_walk_through_every_stop_of_the_clock_keeps_every_float_invariant():
    """The machine's rules in a fixed order through every stop of CLOCK, so that every run of the file
    crosses 29 February and the first hours of a month in Dhaka (the day before in UTC) with
    sign-ups, generation, payments, terminations and voids, whatever the random examples drew. S's
    float is kept short, so that some of its sign-ups and renewals are refused on the way."""
    machine = FloatTree()
    try:
        machine.tree(
            balances={"r1": M("2500.00"), "r2": M("2500.00"), "s": M("900.00")},
            r2_prorates_last=True,
            rules={"r1": "prorated", "r2": "full", "s": "none"},
            starters=[],
        )

        def check() -> None:
            machine.the_ledger_verifies()
            machine.every_float_is_its_entries_and_above_its_floor()
            machine.every_float_runs_in_time_order()
            machine.every_bill_is_charged_once_per_floated_level_of_its_chain()

        for stop in range(len(CLOCK)):
            if stop:
                machine.advance()
            for n, name in enumerate(LEVELS):
                # The first sign-up of each stop is activated "today", as the service reads it.
                days_back = 0 if n == 0 else (stop * 7 + n * 11) % 40
                machine.sign_up(
                    name=name, package_index=(stop + n) % 2, days_back=days_back, cycle=CYCLES[(stop + n) % len(CYCLES)]
                )
            check()
            for name in LEVELS:
                machine.generate(name=name, ahead=False)
                machine.generate(name=name, ahead=True)
            check()
            machine.pay(which=stop, amount=M("700.00"))
            machine.terminate(which=stop * 3, day_share=0.4)
            check()
            machine.void(which=stop * 5, move=stop % 2 == 0)
            machine.top_up(name=FLOATED[stop % 3], amount=M("1500.00"))
            check()
        assert machine.today() == D(2028, 5, 1)
        # Bills stand for the leap February at every level, and charges on them at the floated ones.
        february = Bill.objects.filter(subscriber__operator__in=machine.ops.values(), period_month=D(2028, 2, 1))
        assert {bill.subscriber.operator_id for bill in february} == {operator.pk for operator in machine.ops.values()}
        assert FloatEntry.objects.filter(bill__in=february, kind=FloatEntry.Kind.CHARGE).exists()
    finally:
        machine.teardown()


def test_a_charge_is_dated_by_the_services_clock_like_its_bill():
    """Generation writes its charges set-based; they must carry the clock every other entry and the
    bill itself carry, or a float's statement dates a charge before the top-up that paid for it."""
    machine = FloatTree()
    try:
        machine.tree(
            balances={name: M("5000.00") for name in FLOATED},
            r2_prorates_last=True,
            rules={name: "prorated" for name in FLOATED},
            starters=[("s", 0, 0, (None, None))],
        )
        charges = FloatEntry.objects.filter(kind=FloatEntry.Kind.CHARGE).select_related("bill")
        assert len(charges) == 2
        for charge in charges:
            assert charge.bill is not None
            assert charge.created_at == charge.bill.created_at == CLOCK[0]
        machine.every_float_runs_in_time_order()
    finally:
        machine.teardown()


def test_a_termination_after_a_mid_period_upgrade_gives_back_the_new_packages_unused_days():
    machine = FloatTree()
    try:
        machine.tree(
            balances={name: M("20000.00") for name in FLOATED},
            r2_prorates_last=True,
            rules={name: "prorated" for name in FLOATED},
            # A subscriber of S on "S 10M" from 1 January: January's bill is a whole month.
            starters=[("s", 0, 19, ("calendar", None))],
        )
        subscriber = Subscriber.objects.get(operator=machine.ops["s"])
        period_bill = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.PERIOD)
        subscriber_change_package(
            subscriber=subscriber, package=machine.packages["s"][1], effective_date=D(2028, 1, 11)
        )
        change = Bill.objects.get(subscriber=subscriber, kind=Bill.Kind.CHARGE)
        given_by_the_change = machine.given_back(period_bill.pk)
        subscriber_terminate(subscriber=subscriber, terminated_on=D(2028, 1, 21), reason="moved away")
        # The old package's 1-10 January were used, its 11-31 January given back by the change.
        assert machine.given_back(period_bill.pk) == given_by_the_change
        # The new package's 21-31 January, 11 of the 21 days its charge paid for, come back at S and R1.
        back = machine.given_back(change.pk)
        charges = FloatEntry.objects.filter(bill=change, kind=FloatEntry.Kind.CHARGE)
        assert {charge.pk: back.get(charge.pk) for charge in charges} == {
            charge.pk: remaining_share(-charge.amount, 11, 21) for charge in charges
        }
    finally:
        machine.teardown()
