"""Resellers' floats: the prepaid (or limited postpaid) money a reseller keeps at its parent, charged at
every level of the tree when one of its subscribers is billed.

Why the float is billing's (ADR 0015): a charge must be written in the same transaction as the bill it
funds, and the period bills are written set-based by generation, which lives here; a float app above
billing could only follow in a second transaction (a bill without its charge after a crash) or through
a hook the one-way house forbids.

Levels. A subscriber of sub-reseller S (under reseller R, under the root ISP) is charged on S's float
at the wholesale price of S's package (the parent package it maps to, priced by R), then on R's float
at the wholesale price of that package (mapped to the root's, priced by the root). The chain stops at
the first operator without a float (the root, or a reseller its parent does not run on a float).

Locks. The floats of one chain are locked in tree-path order (the reseller nearest the root first), so
two transactions under different branches that share an ancestor queue on that ancestor and never
deadlock. The database refuses a balance below `-credit_limit` (the last word at commit); the checks
here come first so that the refusal names each level, its cost and its balance after.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Sum
from django.utils import timezone

from sonjog.billing.calculation import remaining_share
from sonjog.billing.exceptions import BillingError, InvalidAmount
from sonjog.billing.models import Bill, FloatAccount, FloatEntry
from sonjog.catalog.models import Package
from sonjog.core.audit import audit
from sonjog.core.money import ZERO, format_money, round_money
from sonjog.core.periods import Period
from sonjog.operators.models import Operator

MAX_TOPUP = Decimal("100000000.00")


class FloatError(BillingError):
    pass


@dataclass(frozen=True)
class LevelCharge:
    """What one level's float is charged for one bill."""

    account_id: int
    operator_id: int
    operator_name: str
    package_id: int
    unit_price: Decimal
    amount: Decimal  # positive: what the float loses


@dataclass
class LevelShort:
    operator_name: str
    cost: Decimal
    balance: Decimal
    after: Decimal
    floor: Decimal


class FloatShort(FloatError):
    """The floats cannot cover a charge: the message names every level, its cost and its balance after."""

    def __init__(self, levels: Sequence[LevelShort], currency: str, what: str = "this") -> None:
        self.levels = list(levels)
        parts = [
            f"{level.operator_name}: {format_money(level.cost, currency)} from "
            f"{format_money(level.balance, currency)} leaves {format_money(level.after, currency)}"
            f" (lowest allowed {format_money(level.floor, currency)})"
            for level in self.levels
        ]
        super().__init__(f"The reseller's float cannot cover {what}: " + "; ".join(parts) + ". Top the float up first.")


# -- accounts and top-ups ----------------------------------------------------------------------------


def float_account_open(
    *,
    operator: Operator,
    credit_limit: Decimal = ZERO,
    minimum_balance: Decimal | None = None,
    hold_renewals: bool = False,
    low_balance_alert: Decimal = ZERO,
    credit_back: str = FloatAccount.CreditBack.PRORATED,
    actor: User | None = None,
) -> FloatAccount:
    """Run a reseller on a float at its parent (or change its float's settings)."""
    if operator.parent_id is None:
        raise FloatError("The root ISP has no parent to keep a float at; floats are for resellers.")
    for name, value in (("credit limit", credit_limit), ("alert level", low_balance_alert)):
        if not value.is_finite() or value < 0 or value > MAX_TOPUP:
            raise InvalidAmount(f"The {name} must be between 0 and {MAX_TOPUP}.")
    if minimum_balance is not None and (not minimum_balance.is_finite() or abs(minimum_balance) > MAX_TOPUP):
        raise InvalidAmount(f"The minimum balance must be between -{MAX_TOPUP} and {MAX_TOPUP}.")
    if credit_back not in FloatAccount.CreditBack.values:
        raise FloatError(f"Unknown credit-back rule '{credit_back}'.")
    values: dict[str, Any] = {
        "credit_limit": round_money(credit_limit),
        "minimum_balance": None if minimum_balance is None else round_money(minimum_balance),
        "hold_renewals": hold_renewals,
        "low_balance_alert": round_money(low_balance_alert),
        "credit_back": credit_back,
    }
    with transaction.atomic():
        account = FloatAccount.objects.select_for_update().filter(operator=operator).first()
        if account is None:
            # Waits for every run still billing this operator's subtree (they hold its row FOR KEY
            # SHARE, see `chain_prices`): their bills are before the float, every later one is charged.
            Operator.objects.select_for_update().filter(pk=operator.pk).first()
            account = FloatAccount.objects.select_for_update().filter(operator=operator).first()
        created = account is None
        if account is None:
            account = FloatAccount.objects.create(
                operator=operator, bills_from_id=Bill.objects.aggregate(last=Max("id"))["last"] or 0, **values
            )
        before = {name: str(getattr(account, name)) for name in values}
        if not created:
            if account.balance < -values["credit_limit"]:
                raise FloatError(
                    f"The float stands at {format_money(account.balance, operator.currency)}: the credit limit "
                    "cannot be set below what is already owed."
                )
            for name, new in values.items():
                setattr(account, name, new)
            account.save(update_fields=list(values))
        audit(
            operator=operator,
            action="float.open" if created else "float.settings",
            actor=actor,
            before=None if created else before,
            after={name: str(value) for name, value in values.items()},
        )
    return account


def _locked(operator_ids: Collection[int]) -> dict[int, FloatAccount]:
    """The floats of these operators, locked in tree-path order (see the module's docstring)."""
    rows = (
        FloatAccount.objects.select_for_update(of=("self",))
        .select_related("operator")
        .filter(operator_id__in=list(operator_ids))
        .order_by("operator__path")
    )
    return {account.operator_id: account for account in rows}


def _append(
    account: FloatAccount,
    *,
    kind: str,
    amount: Decimal,
    actor: User | None = None,
    **fields: object,
) -> FloatEntry:
    """One entry and the balance that goes with it, in the caller's transaction on a locked account."""
    account.balance = account.balance + amount
    try:
        with transaction.atomic():
            FloatAccount.objects.filter(pk=account.pk).update(balance=account.balance)
            return FloatEntry.objects.create(
                account=account,
                kind=kind,
                amount=amount,
                balance_after=account.balance,
                created_by=actor if actor is not None and actor.pk else None,
                **fields,
            )
    except IntegrityError as error:
        account.balance = account.balance - amount
        if "float_balance_above_floor" in str(error):
            raise FloatShort(
                [LevelShort(account.operator.name, -amount, account.balance, account.balance + amount, account.floor)],
                account.operator.currency,
            ) from None
        raise


def float_topup(
    *,
    operator: Operator,
    amount: Decimal,
    method: str,
    reference: str = "",
    memo: str = "",
    actor: User | None = None,
) -> FloatEntry:
    """Money the reseller paid its parent, added to its float (the receipt is the entry)."""
    amount = _positive(amount, "top-up")
    if method not in FloatEntry.Method.values:
        raise FloatError(f"Unknown top-up method '{method}': use cash, bank, bkash or nagad.")
    if method != FloatEntry.Method.CASH and not reference.strip():
        raise FloatError("A bank, bKash or Nagad top-up needs its transaction reference.")
    with transaction.atomic():
        account = _account_of(operator)
        entry = _append(
            account,
            kind=FloatEntry.Kind.TOPUP,
            amount=amount,
            actor=actor,
            method=method,
            reference=reference.strip()[:100],
            memo=memo.strip()[:300],
        )
        audit(operator=operator, action="float.topup", actor=actor, entry=entry.pk, amount=str(amount), method=method)
    return entry


def float_adjust(*, operator: Operator, amount: Decimal, memo: str, actor: User | None = None) -> FloatEntry:
    """A correction by the parent (positive adds, negative takes), with the reason."""
    if not memo.strip():
        raise FloatError("Say why: a float adjustment needs a note.")
    if amount == 0 or abs(amount) > MAX_TOPUP:
        raise InvalidAmount(f"An adjustment must be non-zero and at most {MAX_TOPUP}.")
    with transaction.atomic():
        account = _account_of(operator)
        entry = _append(
            account, kind=FloatEntry.Kind.ADJUSTMENT, amount=round_money(amount), actor=actor, memo=memo.strip()[:300]
        )
        audit(operator=operator, action="float.adjust", actor=actor, entry=entry.pk, amount=str(amount), memo=memo)
    return entry


def float_transfer(
    *, source: Operator, target: Operator, amount: Decimal, memo: str = "", actor: User | None = None
) -> tuple[FloatEntry, FloatEntry]:
    """Move float between two resellers of the same parent (both entries in one transaction)."""
    amount = _positive(amount, "transfer")
    if source.pk == target.pk:
        raise FloatError("A transfer needs two different resellers.")
    if source.parent_id != target.parent_id:
        raise FloatError("Float moves only between resellers of the same parent.")
    with transaction.atomic():
        accounts = _locked([source.pk, target.pk])
        if source.pk not in accounts or target.pk not in accounts:
            raise FloatError("Both resellers need a float first.")
        out = _append(accounts[source.pk], kind=FloatEntry.Kind.TRANSFER, amount=-amount, actor=actor, memo=memo[:300])
        into = _append(accounts[target.pk], kind=FloatEntry.Kind.TRANSFER, amount=amount, actor=actor, memo=memo[:300])
        audit(operator=source, action="float.transfer", actor=actor, to=target.pk, amount=str(amount))
    return out, into


def _positive(amount: Decimal, what: str) -> Decimal:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0 or amount > MAX_TOPUP:
        raise InvalidAmount(f"A {what} must be more than 0 and at most {MAX_TOPUP}.")
    if round_money(amount) != amount:
        raise InvalidAmount(f"A {what} is in whole paisa (two decimals).")
    return amount


def _account_of(operator: Operator) -> FloatAccount:
    accounts = _locked([operator.pk])
    if operator.pk not in accounts:
        raise FloatError(f"{operator.name} does not run on a float: open one first.")
    return accounts[operator.pk]


# -- the chain and its prices ------------------------------------------------------------------------


def chain_operator_ids(operator: Operator) -> list[int]:
    """The operator and its ancestors below the root, nearest first (the levels a subscriber of
    `operator` may be charged at)."""
    ids = [int(part) for part in operator.path.strip("/").split("/") if part] if operator.path else []
    # path lists the root first; the root keeps no float.
    return list(reversed(ids[1:])) if ids else []


@dataclass
class ChainPrices:
    """For one operator's packages: each level's float and the wholesale price of the package there."""

    accounts: dict[int, FloatAccount]
    levels: list[int]  # operator ids charged, nearest first
    packages: dict[int, Package] = field(default_factory=dict)

    @property
    def charged(self) -> bool:
        return bool(self.levels)

    def charges(self, package_id: int, unit_amount: object) -> list[LevelCharge]:
        """The charge at each level for a bill of `package_id`: `unit_amount(price)` turns a wholesale
        price per billing unit into this bill's share of it (proration), rounded once per level."""
        found: list[LevelCharge] = []
        package = self.packages.get(package_id)
        for operator_id in self.levels:
            account = self.accounts[operator_id]
            if package is None or package.operator_id != operator_id:
                raise FloatError(f"A package of {account.operator.name} is not among its packages.")
            if package.wholesale_package_id is None or package.wholesale_price is None:
                raise FloatError(
                    f"{account.operator.name}'s package '{package.name}' is not mapped to a package of its "
                    "parent: map it on the Packages page before its subscribers are billed."
                )
            amount = unit_amount(package.wholesale_price)  # type: ignore[operator]
            found.append(
                LevelCharge(account.pk, operator_id, account.operator.name, package.pk, package.wholesale_price, amount)
            )
            package = self.packages.get(package.wholesale_package_id)
        return found


def chain_prices(operator: Operator, *, lock: bool) -> ChainPrices:
    """The floats a subscriber of `operator` is charged on (locked when `lock`), with every package
    of those levels. Stops at the first operator without a float."""
    ids = chain_operator_ids(operator)
    if not ids:
        return ChainPrices({}, [])
    if lock:
        # A float opened at any level meanwhile waits for this transaction (`float_account_open`).
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM operators_operator WHERE id = ANY(%s) ORDER BY path FOR KEY SHARE", [ids])
        accounts = _locked(ids)
    else:
        accounts = {
            account.operator_id: account
            for account in FloatAccount.objects.select_related("operator").filter(operator_id__in=ids)
        }
    levels = []
    for operator_id in ids:
        if operator_id not in accounts:
            break
        levels.append(operator_id)
    packages = {package.pk: package for package in Package.objects.filter(operator_id__in=levels)} if levels else {}
    return ChainPrices(accounts, levels, packages)


# -- charging bills ----------------------------------------------------------------------------------


@dataclass
class FundedBill:
    """A bill to be written, with its charge at each level."""

    subscriber_id: int
    period_month: dt.date
    charges: list[LevelCharge]


def floats_fund(
    chain: ChainPrices,
    bills: Iterable[tuple[int, dt.date, int, Period, bool]],
    *,
    renewal: bool,
) -> tuple[list[FundedBill], dict[int, str]]:
    """Which of `bills` (subscriber id, period month, package id, period, prorated) the locked floats
    can cover, taken in the order given (generation passes subscriber and period order); a
    subscriber refused once is refused for its later periods too. Returns the funded bills and, per
    refused subscriber, why. The balances on `chain.accounts` are not changed: `float_charges_write`
    writes what is funded."""
    remaining = {operator_id: chain.accounts[operator_id].balance for operator_id in chain.levels}
    funded: list[FundedBill] = []
    refused: dict[int, str] = {}
    for subscriber_id, period_month, package_id, period, prorate in bills:
        if subscriber_id in refused:
            continue
        try:
            charges = chain.charges(
                package_id, lambda price, p=period, r=prorate: p.prorate(price) if r else round_money(price)
            )
        except FloatError as error:
            refused[subscriber_id] = str(error)
            continue
        short = _shortfalls(chain, charges, remaining, renewal=renewal)
        if short:
            account = chain.accounts[chain.levels[0]]
            refused[subscriber_id] = str(FloatShort(short, account.operator.currency, "this bill"))
            continue
        for charge in charges:
            remaining[charge.operator_id] -= charge.amount
        funded.append(FundedBill(subscriber_id, period_month, charges))
    return funded, refused


def _shortfalls(
    chain: ChainPrices, charges: list[LevelCharge], remaining: dict[int, Decimal], *, renewal: bool
) -> list[LevelShort]:
    short = []
    for charge in charges:
        account = chain.accounts[charge.operator_id]
        lowest = account.floor
        if account.minimum_balance is not None and (not renewal or account.hold_renewals):
            lowest = max(lowest, account.minimum_balance)
        after = remaining[charge.operator_id] - charge.amount
        if after < lowest:
            short.append(LevelShort(account.operator.name, charge.amount, remaining[charge.operator_id], after, lowest))
    return short


def float_charges_write(chain: ChainPrices, funded: list[FundedBill], bill_ids: dict[tuple[int, dt.date], int]) -> int:
    """The charges of the funded bills that were written (`bill_ids` maps (subscriber, period) to the
    bill), set-based: one INSERT of every entry and one UPDATE of every level's balance. Returns how
    many entries were written. The unique (bill, level) index makes a second write impossible."""
    rows: list[tuple[int, int, Decimal, Decimal, int, int, int, Decimal]] = []
    balances = {operator_id: chain.accounts[operator_id].balance for operator_id in chain.levels}
    for bill in funded:
        bill_id = bill_ids.get((bill.subscriber_id, bill.period_month))
        if bill_id is None:
            continue
        for charge in bill.charges:
            balances[charge.operator_id] -= charge.amount
            rows.append(
                (
                    charge.account_id,
                    bill_id,
                    -charge.amount,
                    balances[charge.operator_id],
                    bill.subscriber_id,
                    charge.package_id,
                    charge.account_id,
                    charge.unit_price,
                )
            )
    if not rows:
        return 0
    columns = list(zip(*rows, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO billing_floatentry (account_id, kind, amount, balance_after, bill_id, subscriber_id,
                                            package_id, unit_price, method, reference, memo, created_at)
            SELECT t.account_id, 'charge', t.amount, t.balance_after, t.bill_id, t.subscriber_id, t.package_id,
                   t.unit_price, '', '', '', %s
            FROM unnest(%s::bigint[], %s::bigint[], %s::numeric[], %s::numeric[], %s::bigint[], %s::bigint[],
                        %s::numeric[]) AS t(account_id, bill_id, amount, balance_after, subscriber_id, package_id,
                                            unit_price)
            """,
            [
                # Dated by the services' clock, like the bills they fund and every other entry.
                timezone.now(),
                list(columns[0]),
                list(columns[1]),
                list(columns[2]),
                list(columns[3]),
                list(columns[4]),
                list(columns[5]),
                list(columns[7]),
            ],
        )
        for operator_id, balance in balances.items():
            account = chain.accounts[operator_id]
            if balance != account.balance:
                cursor.execute("UPDATE billing_floataccount SET balance = %s WHERE id = %s", [balance, account.pk])
                account.balance = balance
    return len(rows)


def float_check_new_connection(
    *, operator: Operator, package: Package, period: Period, prorate: bool, what: str = "this connection"
) -> list[LevelCharge]:
    """Refuse (FloatShort) a new connection, a reactivation or an upgrade the floats cannot cover
    above each level's minimum balance; lock the floats for the caller's transaction. Returns what
    each level would be charged."""
    chain = chain_prices(operator, lock=True)
    if not chain.charged:
        return []
    charges = chain.charges(package.pk, lambda price: period.prorate(price) if prorate else round_money(price))
    remaining = {operator_id: chain.accounts[operator_id].balance for operator_id in chain.levels}
    short = _shortfalls(chain, charges, remaining, renewal=False)
    if short:
        raise FloatShort(short, operator.currency, what)
    return charges


# -- credit back -------------------------------------------------------------------------------------


def float_credit_back(
    *,
    bill_id: int,
    remaining_days: int | None = None,
    total_days: int | None = None,
    actor: User | None = None,
    rule: str | None = None,
) -> list[FloatEntry]:
    """Give back, at every level, what the bill's charge still has outstanding: all of it (a void, or
    a float set to "full"), the share of `remaining_days` of `total_days` ("prorated": an early end),
    or nothing ("none"); `rule` overrides the floats' own (a package change always gives back the
    unused days). Never more than is left of a charge (a trigger holds it too)."""
    charges = list(
        FloatEntry.objects.filter(bill_id=bill_id, kind=FloatEntry.Kind.CHARGE).select_related("account").order_by("pk")
    )
    if not charges:
        return []
    accounts = _locked([charge.account.operator_id for charge in charges])
    given = {
        row["charge_id"]: row["total"]
        for row in FloatEntry.objects.filter(charge__in=charges, kind=FloatEntry.Kind.CREDIT_BACK)
        .values("charge_id")
        .annotate(total=Sum("amount"))
    }
    written = []
    for charge in charges:
        account = next(each for each in accounts.values() if each.pk == charge.account_id)
        left = -charge.amount - given.get(charge.pk, ZERO)
        applied = rule or account.credit_back
        if remaining_days is None or applied == FloatAccount.CreditBack.FULL:
            amount = left
        elif applied == FloatAccount.CreditBack.NONE:
            amount = ZERO
        else:
            amount = min(left, remaining_share(-charge.amount, remaining_days, total_days or 0))
        if amount <= 0:
            continue
        written.append(
            _append(
                account,
                kind=FloatEntry.Kind.CREDIT_BACK,
                amount=amount,
                actor=actor,
                charge=charge,
                bill_id=bill_id,
                subscriber_id=charge.subscriber_id,
                package_id=charge.package_id,
                unit_price=charge.unit_price,
            )
        )
    return written


def float_package_change(
    *,
    subscriber_operator: Operator,
    subscriber_id: int,
    old_bill_id: int | None,
    new_package: Package,
    charge_bill_id: int | None,
    remaining_days: int,
    billed_days: int,
    nominal_days: int,
    upgrade: bool,
    actor: User | None = None,
) -> None:
    """A package change inside a billed period, at every level: the old package's charges give back
    their unused days, and the new package's wholesale price for those days is charged on the new
    charge bill (`charge_bill_id`). An upgrade the floats cannot cover above their minimum balance is
    refused (FloatShort), a downgrade only below the floor. In the caller's transaction."""
    chain = chain_prices(subscriber_operator, lock=True)
    if not chain.charged:
        return
    if old_bill_id is not None:
        float_credit_back(
            bill_id=old_bill_id,
            remaining_days=remaining_days,
            total_days=billed_days,
            actor=actor,
            rule=FloatAccount.CreditBack.PRORATED,
        )
    if charge_bill_id is None:
        return
    chain = chain_prices(subscriber_operator, lock=True)  # the balances after the credit back
    charges = chain.charges(
        new_package.pk, lambda price: remaining_share(round_money(price), remaining_days, nominal_days)
    )
    remaining = {operator_id: chain.accounts[operator_id].balance for operator_id in chain.levels}
    short = _shortfalls(chain, charges, remaining, renewal=not upgrade)
    if short:
        raise FloatShort(short, subscriber_operator.currency, "this package change")
    key = (subscriber_id, dt.date.min)
    float_charges_write(chain, [FundedBill(subscriber_id, key[1], charges)], {key: charge_bill_id})


def float_reactivation_check(*, operator: Operator, package: Package, period: Period | None, billed: bool) -> None:
    """A suspended or disabled subscriber back in service: when its current period is not billed yet
    (the floats held it, or it was disabled), its floats must cover that bill above their minimum
    balance, or the reactivation is refused (FloatShort). Locks the floats for the caller's
    transaction; the bill itself comes with the next run."""
    if billed or period is None:
        return
    float_check_new_connection(
        operator=operator, package=package, period=period, prorate=False, what="this reactivation"
    )
