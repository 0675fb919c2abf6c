"""Writes for subscribers. Money consequences go through the billing services, in the same
transaction."""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sonjog.billing.calculation import remaining_share
from sonjog.billing.exceptions import DiscountNotPermitted
from sonjog.billing.models import AdjustmentReason, Bill, BillingRun, Invoice, LedgerEntry
from sonjog.billing.services import bill_generate_period
from sonjog.billing.services.locks import subscriber_lock
from sonjog.billing.services.money import (
    _adjustment_append,
    _invoice_void_locked,
    _reverse_locked,
    bill_creditable,
)
from sonjog.billing.terms import operator_today, subscriber_terms
from sonjog.catalog.models import Package
from sonjog.core.audit import audit
from sonjog.core.money import ZERO, round_money
from sonjog.customers.exceptions import SubscriberError
from sonjog.customers.models import ServiceIntent, Subscriber, Zone
from sonjog.customers.phone import normalize_phone
from sonjog.operators.dates import business_date_problem
from sonjog.operators.models import Operator


def _date_check(operator: Operator, day: dt.date, what: str) -> None:
    problem = business_date_problem(operator, day, operator_today(operator), what=what)
    if problem:
        raise SubscriberError(problem)


def _can_grant_discount(actor: User | None) -> bool:
    # None is the system itself (seeding, migration imports); people need the permission.
    return actor is None or actor.has_perm("customers.grant_discount")


def notify_event(**kwargs: Any) -> None:
    """Queue the subscriber's messages for an event in the caller's transaction."""
    from sonjog.notifications.services import notify_event as queue

    queue(**kwargs)


def _enqueue(subscriber: Subscriber, reason: str) -> None:
    """Queue the router command for this intent in the caller's transaction (never a signal)."""
    from sonjog.network.services import outbox_enqueue

    outbox_enqueue(subscriber=subscriber, requested_by=reason)


def customer_id_next(operator: Operator) -> str:
    """Take the operator's next customer ID. The operator row lock serialises concurrent sign-ups; it is
    NO KEY UPDATE so that concurrent writers of rows referencing the operator (their foreign-key
    checks take KEY SHARE) are not blocked, which would deadlock against the invoice sequence."""
    locked = Operator.objects.select_for_update(no_key=True).get(pk=operator.pk)
    sequence = locked.customer_id_next
    Operator.objects.filter(pk=operator.pk).update(customer_id_next=sequence + 1)
    return (
        f"{locked.customer_id_prefix}{locked.customer_id_infix}"
        f"{sequence:0{locked.customer_id_digits}d}{locked.customer_id_postfix}"
    )


def subscriber_create(
    *,
    operator: Operator,
    name: str,
    phone: str,
    package: Package,
    zone: Zone | None = None,
    email: str = "",
    address: str = "",
    pppoe_username: str = "",
    pppoe_password: str = "",
    activation_date: dt.date | None = None,
    activate: bool = True,
    billing_mode: str | None = None,
    billing_cycle: str | None = None,
    billing_day: int | None = None,
    monthly_discount: Decimal = ZERO,
    is_vip: bool = False,
    actor: User | None = None,
) -> Subscriber:
    """Create a subscriber with the next customer ID; by default activate it today, which bills its
    first (prorated) period at once."""
    if not name.strip():
        raise SubscriberError("a subscriber needs a name")
    if package.operator_id != operator.pk:
        raise SubscriberError(f"package '{package}' belongs to another operator")
    if zone is not None and zone.operator_id != operator.pk:
        raise SubscriberError(f"zone '{zone}' belongs to another operator")
    if monthly_discount < 0:
        raise SubscriberError("a discount cannot be negative")
    if monthly_discount > 0 and not _can_grant_discount(actor):
        raise DiscountNotPermitted("you may not give discounts (permission customers.grant_discount)")
    if billing_day is not None and not 1 <= billing_day <= 31:
        raise SubscriberError("the billing day must be between 1 and 31")
    if activate and activation_date is not None:
        _date_check(operator, activation_date, _("activation"))
    phone = normalize_phone(phone, operator.phone_country)
    with transaction.atomic():
        customer_id = customer_id_next(operator)
        username = pppoe_username.strip() or customer_id.lower()
        if Subscriber.objects.filter(pppoe_username=username).exists():
            raise SubscriberError(f"the PPPoE username '{username}' is already in use")
        try:
            with transaction.atomic():
                subscriber = Subscriber.objects.create(
                    operator=operator,
                    customer_id=customer_id,
                    name=name.strip(),
                    phone=phone,
                    email=email,
                    address=address,
                    zone=zone,
                    package=package,
                    pppoe_username=username,
                    pppoe_password=pppoe_password or secrets.token_urlsafe(9),
                    billing_mode=billing_mode,
                    billing_cycle=billing_cycle,
                    billing_day=billing_day,
                    monthly_discount=monthly_discount,
                    is_vip=is_vip,
                )
        except IntegrityError as error:
            raise SubscriberError(f"could not create the subscriber: {customer_id} or '{username}' exists") from error
        audit(operator=operator, action="subscriber.create", actor=actor, subscriber=subscriber)
        notify_event(subscriber=subscriber, event="welcome", dedup_key=f"welcome:subscriber:{subscriber.pk}")
        if activate:
            subscriber_activate(
                subscriber=subscriber, activation_date=activation_date or operator_today(operator), actor=actor
            )
            subscriber.refresh_from_db()
    return subscriber


def subscriber_activate(*, subscriber: Subscriber, activation_date: dt.date, actor: User | None = None) -> Subscriber:
    """Start service: set the activation date (which anchors an anniversary cycle), intend it active,
    and bill from activation up to the current period through the one generation service."""
    _date_check(subscriber.operator, activation_date, _("activation"))
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        if locked.service_intent == ServiceIntent.TERMINATED:
            raise SubscriberError(f"{locked.customer_id} is terminated; create a new subscriber instead")
        if locked.activation_date is None:
            locked.activation_date = activation_date
        locked.service_intent = ServiceIntent.ACTIVE
        locked.service_intent_at = timezone.now()
        locked.save(update_fields=["activation_date", "service_intent", "service_intent_at"])
        _enqueue(locked, "activation")
        notify_event(
            subscriber=locked,
            event="activation",
            dedup_key=f"activation:subscriber:{locked.pk}:{locked.activation_date}",
        )
        audit(
            operator=locked.operator,
            action="subscriber.activate",
            actor=actor,
            subscriber=locked,
            activation_date=locked.activation_date,
        )
        today = operator_today(locked.operator)
        current = subscriber_terms(locked).period_month_of(max(today, locked.activation_date))
        if locked.activation_date <= today:
            bill_generate_period(
                operator=locked.operator,
                period_month=subscriber_terms(locked).period_month_of(today),
                trigger=BillingRun.Trigger.ACTIVATION,
                actor=actor,
                subscriber_ids=[locked.pk],
                today=today,
            )
        del current
    return locked


def subscriber_set_intent(*, subscriber: Subscriber, intent: str, reason: str, actor: User | None = None) -> Subscriber:
    """Suspend, reactivate or disable service. VIP subscribers are never suspended."""
    if intent not in (ServiceIntent.ACTIVE, ServiceIntent.SUSPENDED, ServiceIntent.DISABLED):
        raise SubscriberError(f"use subscriber_terminate to end service, not intent '{intent}'")
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        if locked.service_intent == ServiceIntent.TERMINATED:
            raise SubscriberError(f"{locked.customer_id} is terminated")
        if intent == ServiceIntent.SUSPENDED and locked.is_vip:
            raise SubscriberError(f"{locked.customer_id} is a VIP and is never suspended")
        if locked.service_intent != intent:
            previous = locked.service_intent
            locked.service_intent = intent
            locked.service_intent_at = timezone.now()
            locked.save(update_fields=["service_intent", "service_intent_at"])
            _enqueue(locked, reason or f"intent {intent}")
            if intent == ServiceIntent.SUSPENDED:
                notify_event(subscriber=locked, event="suspension")
            elif intent == ServiceIntent.ACTIVE and previous == ServiceIntent.SUSPENDED:
                notify_event(subscriber=locked, event="reactivation")
            audit(
                operator=locked.operator,
                action=f"subscriber.intent.{intent}",
                actor=actor,
                subscriber=locked,
                reason=reason,
            )
    return locked


def subscriber_change_package(
    *,
    subscriber: Subscriber,
    package: Package,
    effective_date: dt.date | None = None,
    actor: User | None = None,
) -> Subscriber:
    """Switch package. If the current period is already billed, credit the old package's remaining
    days and charge the new one's, both prorated by days and with VAT as billed."""
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        if package.operator_id != locked.operator_id:
            raise SubscriberError(f"package '{package}' belongs to another operator")
        if package.pk == locked.package_id:
            raise SubscriberError(f"{locked.customer_id} is already on '{package}'")
        day = effective_date or operator_today(locked.operator)
        _date_check(locked.operator, day, _("package change"))
        old_package = locked.package
        terms = subscriber_terms(locked)
        bill = (
            Bill.objects.filter(
                subscriber=locked,
                reversed_at__isnull=True,
                kind=Bill.Kind.PERIOD,
                period_start__lte=day,
                period_end__gt=day,
            )
            .order_by("-period_month")
            .first()
        )
        if bill is not None:
            from sonjog.billing.calculation import bill_amounts
            from sonjog.core.periods import subscriber_period

            period = subscriber_period(bill.period_month, terms.anchor_day, bill.period_start)
            assert period is not None
            remaining = (bill.period_end - day).days
            billed_days = (bill.period_end - bill.period_start).days
            credit = min(remaining_share(bill.total, remaining, billed_days), bill_creditable(bill))
            new_full = bill_amounts(
                monthly_price=package.price,
                monthly_discount=locked.monthly_discount,
                period=period,
                vat=terms.vat_for(package.vat_applicable),
                prorate=False,
            ).total
            charge = remaining_share(new_full, remaining, period.nominal_days)
            note = f"{old_package.name} -> {package.name} from {day:%Y-%m-%d}"
            if credit > 0:
                _adjustment_append(
                    locked, -credit, AdjustmentReason.PACKAGE_CHANGE, f"Credit: {note}", actor, day, credits_bill=bill
                )
            if charge > 0:
                _adjustment_append(locked, charge, AdjustmentReason.PACKAGE_CHANGE, f"Charge: {note}", actor, day)
        locked.package = package
        locked.save(update_fields=["package"])
        _enqueue(locked, f"package change to {package.name}")
        notify_event(subscriber=locked, event="package_change")
        audit(
            operator=locked.operator,
            action="subscriber.change_package",
            actor=actor,
            subscriber=locked,
            old=old_package.name,
            new=package.name,
            effective=day,
        )
    return locked


def subscriber_terminate(
    *,
    subscriber: Subscriber,
    terminated_on: dt.date | None = None,
    reason: str,
    actor: User | None = None,
) -> Subscriber:
    """End service. Bills for periods after the end are reversed; the period holding the end date is
    credited for its unused days when the operator prorates last periods."""
    if not reason.strip():
        raise SubscriberError("termination needs a reason")
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        if locked.service_intent == ServiceIntent.TERMINATED:
            raise SubscriberError(f"{locked.customer_id} is already terminated")
        day = terminated_on or operator_today(locked.operator)
        _date_check(locked.operator, day, _("termination"))
        if locked.activation_date is None or day < locked.activation_date:
            locked.activation_date = locked.activation_date or day
            day = max(day, locked.activation_date)
        terms = subscriber_terms(locked)
        for bill in Bill.objects.filter(
            subscriber=locked, reversed_at__isnull=True, kind=Bill.Kind.PERIOD, period_start__gte=day
        ):
            why = f"Terminated before this period: {reason}"
            invoice = Invoice.objects.filter(bill=bill, voided_at__isnull=True).first()
            if invoice is not None:
                # The invoice goes with its bill (a credit note); what was paid on it becomes credit.
                _invoice_void_locked(invoice, why, actor, None, release_payments=True)
            else:
                _reverse_locked(LedgerEntry.objects.get(bill=bill, kind="bill"), why, actor, None)
        current = Bill.objects.filter(
            subscriber=locked, reversed_at__isnull=True, kind=Bill.Kind.PERIOD, period_start__lt=day, period_end__gt=day
        ).first()
        if current is not None and terms.prorate_last:
            unused = (current.period_end - day).days
            credit = min(
                remaining_share(current.total, unused, (current.period_end - current.period_start).days),
                bill_creditable(current),
            )
            if credit > 0:
                _adjustment_append(
                    locked,
                    -round_money(credit),
                    AdjustmentReason.TERMINATION,
                    f"Unused {unused} days after termination on {day:%Y-%m-%d}",
                    actor,
                    day,
                    credits_bill=current,
                )
        locked.terminated_on = day
        locked.service_intent = ServiceIntent.TERMINATED
        locked.service_intent_at = timezone.now()
        locked.save(update_fields=["terminated_on", "service_intent", "service_intent_at", "activation_date"])
        _enqueue(locked, "termination")
        audit(
            operator=locked.operator,
            action="subscriber.terminate",
            actor=actor,
            subscriber=locked,
            terminated_on=day,
            reason=reason,
        )
    return locked
