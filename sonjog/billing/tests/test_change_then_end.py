"""A package change inside a billed period, then another change or the end of service in the same
period: each credit falls on the bill that charged those days, so what the subscriber owes is what it
used. The clock is pinned at 15 June 2027; June has 30 days; the operator prorates last periods."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_package, make_subscriber
from sonjog.flows.subscribers import subscriber_change_package, subscriber_terminate

D = dt.date
M = Decimal
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]


def test_an_upgrade_then_a_termination_owes_the_days_used_of_each_package(operator, package):
    bigger = make_package(operator, "1800.00", vat=False)
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))  # 1000.00 for June
    subscriber_change_package(subscriber=subscriber, package=bigger, effective_date=D(2027, 6, 11))
    # 10 days of 1000.00, then 20 of 1800.00: 333.33 + 1200.00.
    assert subscriber_balance(subscriber.pk) == M("1533.33")
    subscriber_terminate(subscriber=subscriber, terminated_on=D(2027, 6, 15), reason="moved away")
    # 10 days of the old package and 4 of the new: 333.33 + 240.00.
    assert subscriber_balance(subscriber.pk) == M("573.33")
    report = ledger_verify()
    assert report.ok, report.violations


def test_two_changes_in_one_period_each_credit_the_package_then_in_effect(operator, package):
    bigger = make_package(operator, "1800.00", vat=False)
    biggest = make_package(operator, "3000.00", vat=False)
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    subscriber_change_package(subscriber=subscriber, package=bigger, effective_date=D(2027, 6, 11))
    subscriber_change_package(subscriber=subscriber, package=biggest, effective_date=D(2027, 6, 15))
    # 10 days at 1000.00, 4 at 1800.00, 16 at 3000.00: 333.33 + 240.00 + 1600.00.
    assert subscriber_balance(subscriber.pk) == M("2173.33")
    report = ledger_verify()
    assert report.ok, report.violations


def test_a_termination_without_a_change_still_credits_the_unused_days(operator, package):
    subscriber = make_subscriber(operator, package, activation_date=D(2027, 6, 1))
    subscriber_terminate(subscriber=subscriber, terminated_on=D(2027, 6, 15), reason="moved away")
    assert subscriber_balance(subscriber.pk) == M("466.67")  # 14 of 30 days
