"""A subscriber's life: sign-up -> activation -> first bill -> router -> welcome; suspend, reactivate
and disable; package change -> prorate -> re-provision -> notify; termination; add-ons on and off.

Each flow takes the subscriber's lock (`customers.locks.subscriber_lock`), calls the customers
service that changes the subscriber's own state, and adds in the same transaction what the other
apps must do about it: bills (billing), the router command (network's outbox), the message
(notifications). Every entry point (console, CLI, import, bulk actions, and later the API and the
portal) calls these, never the customers services on their own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from sonjog.billing.models import Bill, BillingRun
from sonjog.billing.services.floats import FloatError, float_reactivation_check
from sonjog.billing.services.lifecycle import (
    addon_billed,
    addon_end_credit,
    addon_start_charge,
    package_change_settle,
    termination_settle,
)
from sonjog.billing.terms import operator_today, subscriber_terms
from sonjog.catalog.models import AddOn, AddOnEffect, Package
from sonjog.core.audit import audit
from sonjog.core.money import ZERO
from sonjog.core.periods import subscriber_period
from sonjog.customers.exceptions import SubscriberError
from sonjog.customers.locks import subscriber_lock
from sonjog.customers.models import ServiceIntent, Subscriber, SubscriberAddOn, Zone
from sonjog.customers.services import (
    subscriber_activation_set,
    subscriber_addon_end,
    subscriber_addon_running,
    subscriber_addon_start,
    subscriber_date_check,
    subscriber_intent_set,
    subscriber_package_check,
    subscriber_package_set,
    subscriber_pppoe_password_reset,
    subscriber_register,
    subscriber_termination_set,
    subscriber_termination_start,
)
from sonjog.flows.generation import bills_generate
from sonjog.network.services import outbox_enqueue
from sonjog.notifications.models import Channel, Event
from sonjog.notifications.services import notify_event
from sonjog.operators.models import Operator


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
    """Sign a subscriber up: the row with the next customer ID, the welcome message and, by default,
    activation today (or on `activation_date`), which bills its first (prorated) period at once."""
    with transaction.atomic():
        subscriber = subscriber_register(
            operator=operator,
            name=name,
            phone=phone,
            package=package,
            zone=zone,
            email=email,
            address=address,
            pppoe_username=pppoe_username,
            pppoe_password=pppoe_password,
            billing_mode=billing_mode,
            billing_cycle=billing_cycle,
            billing_day=billing_day,
            monthly_discount=monthly_discount,
            is_vip=is_vip,
            actor=actor,
        )
        if activate and activation_date is not None:
            subscriber_date_check(operator, activation_date, _("activation"), actor)
        notify_event(subscriber=subscriber, event="welcome", dedup_key=f"welcome:subscriber:{subscriber.pk}")
        if activate:
            subscriber_activate(
                subscriber=subscriber, activation_date=activation_date or operator_today(operator), actor=actor
            )
            subscriber.refresh_from_db()
    return subscriber


def subscriber_activate(*, subscriber: Subscriber, activation_date: dt.date, actor: User | None = None) -> Subscriber:
    """Start service: the activation date (which anchors an anniversary cycle), the router command, the
    activation message, and bills from activation up to the current period through the one generation
    service (with their notices)."""
    subscriber_date_check(subscriber.operator, activation_date, _("activation"), actor)
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        subscriber_activation_set(subscriber=locked, activation_date=activation_date, actor=actor)
        outbox_enqueue(subscriber=locked, requested_by="activation")
        notify_event(
            subscriber=locked,
            event="activation",
            dedup_key=f"activation:subscriber:{locked.pk}:{locked.activation_date}",
        )
        today = operator_today(locked.operator)
        assert locked.activation_date is not None
        if locked.activation_date <= today:
            result = bills_generate(
                operator=locked.operator,
                period_month=subscriber_terms(locked).period_month_of(today),
                trigger=BillingRun.Trigger.ACTIVATION,
                actor=actor,
                subscriber_ids=[locked.pk],
                today=today,
                new_connection=True,
            )
            if result.float_refused:
                # A reseller whose float cannot pay for the connection cannot add it: nothing of the
                # activation stays (the message says what each level would be charged).
                raise FloatError(result.errors[-1]["error"])
    return locked


def subscriber_set_intent(*, subscriber: Subscriber, intent: str, reason: str, actor: User | None = None) -> Subscriber:
    """Suspend, reactivate or disable service (VIPs are never suspended), with the router command and
    the subscriber's message ("suspended", or "reactivated" after a suspension)."""
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        if intent == ServiceIntent.ACTIVE and locked.service_intent in (
            ServiceIntent.SUSPENDED,
            ServiceIntent.DISABLED,
        ):
            _reactivation_float_check(locked)
        previous = subscriber_intent_set(subscriber=locked, intent=intent, reason=reason, actor=actor)
        if previous is not None:
            outbox_enqueue(subscriber=locked, requested_by=reason or f"intent {intent}")
            if intent == ServiceIntent.SUSPENDED:
                notify_event(subscriber=locked, event="suspension")
            elif intent == ServiceIntent.ACTIVE and previous == ServiceIntent.SUSPENDED:
                notify_event(subscriber=locked, event="reactivation")
    return locked


def _reactivation_float_check(locked: Subscriber) -> None:
    """A reseller's subscriber coming back whose current period is not billed (its floats held the
    bill, or it was disabled) needs floats that can pay for that period (FloatShort otherwise)."""
    terms = subscriber_terms(locked)
    today = operator_today(locked.operator)
    month = terms.period_month_of(today)
    period = (
        subscriber_period(month, terms.anchor_day, locked.activation_date, locked.terminated_on)
        if locked.activation_date is not None
        else None
    )
    billed = Bill.objects.filter(
        subscriber=locked, kind=Bill.Kind.PERIOD, period_month=month, reversed_at__isnull=True
    ).exists()
    float_reactivation_check(operator=locked.operator, package=locked.package, period=period, billed=billed)


@dataclass(frozen=True)
class PasswordReset:
    """A reset's new PPPoE password, and whether an SMS carrying it was queued (no SMS account, or a
    subscriber without a usable number, queues none)."""

    password: str
    sms_queued: bool


def subscriber_reset_pppoe_password(
    *, subscriber: Subscriber, send_sms: bool = False, actor: User | None = None
) -> PasswordReset:
    """A new random PPPoE password, put on the router (the reconcile command carries the subscriber's
    current secret) and, when `send_sms`, sent to the subscriber by SMS, all in one transaction."""
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        password = subscriber_pppoe_password_reset(subscriber=locked, actor=actor)
        outbox_enqueue(subscriber=locked, requested_by="PPPoE password reset")
        queued = []
        if send_sms:
            queued = notify_event(
                subscriber=locked,
                event=Event.PPPOE_PASSWORD,
                context={"pppoe_username": locked.pppoe_username, "pppoe_password": password},
                channels=[Channel.SMS],
            )
    return PasswordReset(password=password, sms_queued=bool(queued))


def subscriber_change_package(
    *,
    subscriber: Subscriber,
    package: Package,
    effective_date: dt.date | None = None,
    actor: User | None = None,
) -> Subscriber:
    """Switch package from `effective_date` (today if empty). If that period is already billed, the old
    package's remaining days are credited and the new one's charged, prorated by days with VAT as
    billed; the router gets the new profile and the subscriber a message."""
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        day = effective_date or operator_today(locked.operator)
        subscriber_package_check(subscriber=locked, package=package, day=day, actor=actor)
        package_change_settle(subscriber=locked, package=package, day=day, actor=actor)
        subscriber_package_set(subscriber=locked, package=package, day=day, actor=actor)
        outbox_enqueue(subscriber=locked, requested_by=f"package change to {package.name}")
        notify_event(subscriber=locked, event="package_change")
    return locked


def subscriber_terminate(
    *,
    subscriber: Subscriber,
    terminated_on: dt.date | None = None,
    reason: str,
    actor: User | None = None,
) -> Subscriber:
    """End service. Bills for periods after the end are reversed; the period holding the end date is
    credited for its unused days when the operator prorates last periods; the router drops the
    subscriber."""
    if not reason.strip():
        raise SubscriberError("termination needs a reason")
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        day = subscriber_termination_start(
            subscriber=locked, day=terminated_on or operator_today(locked.operator), reason=reason, actor=actor
        )
        termination_settle(subscriber=locked, day=day, reason=reason, actor=actor)
        subscriber_termination_set(subscriber=locked, day=day, reason=reason, actor=actor)
        outbox_enqueue(subscriber=locked, requested_by="termination")
    return locked


def _addon_router_change(subscriber: Subscriber, addon: AddOn, what: str) -> None:
    # An add-on that changes what the router holds reconciles the subscriber there, in this transaction.
    if addon.effect != AddOnEffect.NONE:
        outbox_enqueue(subscriber=subscriber, requested_by=f"add-on {addon.name} {what}")


def subscriber_addon_activate(
    *,
    subscriber: Subscriber,
    addon: AddOn,
    start_date: dt.date | None = None,
    actor: User | None = None,
) -> SubscriberAddOn:
    """Start an add-on from `start_date` (today if empty). Periods not billed yet get it as a line of
    their bill when they are generated; a period already billed that it starts in (or before) is
    charged now (a one-off charge of the rest of that period whose line names the add-on). An add-on
    with a router effect reconciles the subscriber on its router."""
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        day = start_date or operator_today(locked.operator)
        stretch = subscriber_addon_start(subscriber=locked, addon=addon, day=day, actor=actor)
        charged = addon_start_charge(subscriber=locked, stretch=stretch, actor=actor)
        _addon_router_change(locked, stretch.addon, "on")
        audit(
            operator=locked.operator,
            action="subscriber.addon.activate",
            actor=actor,
            subscriber=locked,
            addon=stretch.addon.name,
            start=day,
            charged=charged,
        )
    return stretch


def subscriber_addon_deactivate(
    *,
    subscriber: Subscriber,
    addon: AddOn,
    end_date: dt.date | None = None,
    actor: User | None = None,
) -> SubscriberAddOn | None:
    """End a running add-on from `end_date` (the first day without it; today if empty). Every bill that
    already charged it for days from then on is credited for those days, never more than is left to
    credit on it. An add-on ended on or before its start never took effect: if nothing billed it, it
    is withdrawn (None is returned)."""
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        day = end_date or operator_today(locked.operator)
        stretch = subscriber_addon_running(subscriber=locked, addon=addon, day=day, actor=actor)
        if day <= stretch.start_date:
            if addon_billed(stretch):
                raise SubscriberError(
                    f"'{stretch.addon}' has been billed from {stretch.start_date:%Y-%m-%d}; end it after that day"
                )
            stretch.delete()
            _addon_router_change(locked, stretch.addon, "withdrawn")
            audit(
                operator=locked.operator,
                action="subscriber.addon.withdraw",
                actor=actor,
                subscriber=locked,
                addon=stretch.addon.name,
                start=stretch.start_date,
            )
            return None
        credited = addon_end_credit(subscriber=locked, stretch=stretch, day=day, actor=actor)
        subscriber_addon_end(stretch=stretch, day=day)
        _addon_router_change(locked, stretch.addon, "off")
        audit(
            operator=locked.operator,
            action="subscriber.addon.deactivate",
            actor=actor,
            subscriber=locked,
            addon=stretch.addon.name,
            end=day,
            credited=credited,
        )
    return stretch
