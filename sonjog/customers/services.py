"""Writes for subscribers. Money consequences go through the billing services, in the same
transaction."""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from sonjog.billing.calculation import addon_amounts, remaining_share
from sonjog.billing.exceptions import DiscountNotPermitted
from sonjog.billing.models import AdjustmentReason, Bill, BillingRun, BillLine, Invoice, LedgerEntry
from sonjog.billing.services import bill_generate_period
from sonjog.billing.services.locks import subscriber_lock
from sonjog.billing.services.money import (
    _adjustment_append,
    _invoice_void_locked,
    _reverse_locked,
    bill_creditable,
)
from sonjog.billing.terms import operator_today, subscriber_terms
from sonjog.catalog.models import AddOn, AddOnEffect, Package
from sonjog.core.audit import audit
from sonjog.core.money import ZERO, round_money
from sonjog.core.periods import Period, nominal_period, subscriber_period
from sonjog.customers.exceptions import SubscriberError, ZoneError
from sonjog.customers.models import ServiceIntent, Subscriber, SubscriberAddOn, Zone
from sonjog.customers.phone import normalize_phone
from sonjog.operators.dates import business_date_problem
from sonjog.operators.models import Operator


def _date_check(operator: Operator, day: dt.date, what: str, actor: User | None = None) -> None:
    problem = business_date_problem(operator, day, operator_today(operator), what=what, actor=actor)
    if problem:
        raise SubscriberError(problem)


def _can_grant_discount(actor: User | None) -> bool:
    # None is the system itself (seeding, migration imports); people need the permission.
    return actor is None or actor.has_perm("customers.grant_discount")


def notify_event(**kwargs: Any) -> None:
    """Queue the subscriber's messages for an event in the caller's transaction."""
    from sonjog.notifications.services import notify_event as queue

    queue(**kwargs)


def _bill_notices_queue(run_id: int) -> None:
    from sonjog.notifications.services import bill_notices_defer

    bill_notices_defer(run_id=run_id)


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
        _date_check(operator, activation_date, _("activation"), actor)
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
    _date_check(subscriber.operator, activation_date, _("activation"), actor)
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
                on_bills_created=_bill_notices_queue,
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
        _date_check(locked.operator, day, _("package change"), actor)
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
            # Only the package's part of the bill changes: its add-on lines run on as they are.
            package_total = bill.total - _addon_lines_total(bill)
            credit = min(remaining_share(package_total, remaining, billed_days), bill_creditable(bill))
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
        _date_check(locked.operator, day, _("termination"), actor)
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
        # Add-ons running at the end stop with it (billing stops anyway; the profile must not say
        # "running"). The unused days were credited with the bill above.
        running = SubscriberAddOn.objects.filter(subscriber=locked, end_date__isnull=True, start_date__lt=day)
        running.update(end_date=day)
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


# -- contact details and zones ---------------------------------------------------------------------


def subscriber_update_contact(
    *,
    subscriber: Subscriber,
    name: str,
    phone: str,
    email: str = "",
    address: str = "",
    national_id: str = "",
    zone: Zone | None = None,
    actor: User | None = None,
) -> Subscriber:
    """Identity and contact details; nothing here touches money or the network."""
    if not name.strip():
        raise SubscriberError("a subscriber needs a name")
    if zone is not None and zone.operator_id != subscriber.operator_id:
        raise SubscriberError(f"zone '{zone}' belongs to another operator")
    normalized = normalize_phone(phone, subscriber.operator.phone_country)
    with transaction.atomic():
        locked = Subscriber.objects.select_for_update(no_key=True).get(pk=subscriber.pk)
        new = {
            "name": name.strip(),
            "phone": normalized,
            "email": email.strip(),
            "address": address.strip(),
            "national_id": national_id.strip(),
            "zone_id": zone.pk if zone is not None else None,
        }
        changed = {key: value for key, value in new.items() if getattr(locked, key) != value}
        if not changed:
            return locked
        for key, value in changed.items():
            setattr(locked, key, value)
        locked.save(update_fields=list(changed))
        audit(
            operator=subscriber.operator,
            action="subscriber.update_contact",
            actor=actor,
            subscriber=locked,
            fields=", ".join(sorted(changed)),
        )
    return locked


def zone_create(*, operator: Operator, name: str, parent: Zone | None = None, actor: User | None = None) -> Zone:
    """A zone, or a sub-zone of `parent` (one level deep); names are unique among siblings."""
    if not name.strip():
        raise ZoneError("a zone needs a name")
    if parent is not None and parent.operator_id != operator.pk:
        raise ZoneError(f"zone '{parent}' belongs to another operator")
    if Zone.objects.filter(operator=operator, parent=parent, name=name.strip()).exists():
        raise ZoneError(f"a zone named '{name.strip()}' already exists there")
    with transaction.atomic():
        zone = Zone.objects.create(operator=operator, parent=parent, name=name.strip())
        audit(operator=operator, action="zone.create", actor=actor, zone=zone.pk, name=str(zone))
    return zone


def zone_update(*, zone: Zone, name: str, parent: Zone | None = None, actor: User | None = None) -> Zone:
    """Rename a zone or move it under another (never under itself, never two levels deep)."""
    if not name.strip():
        raise ZoneError("a zone needs a name")
    if parent is not None:
        if parent.operator_id != zone.operator_id:
            raise ZoneError(f"zone '{parent}' belongs to another operator")
        if parent.pk == zone.pk or parent.parent_id == zone.pk:
            raise ZoneError("a zone cannot sit inside itself")
        if Zone.objects.filter(parent=zone).exists():
            raise ZoneError("a zone with sub-zones cannot become a sub-zone")
    duplicate = Zone.objects.filter(operator_id=zone.operator_id, parent=parent, name=name.strip()).exclude(pk=zone.pk)
    if duplicate.exists():
        raise ZoneError(f"a zone named '{name.strip()}' already exists there")
    with transaction.atomic():
        Zone.objects.filter(pk=zone.pk).update(name=name.strip(), parent=parent)
        zone.refresh_from_db()
        audit(operator=zone.operator, action="zone.update", actor=actor, zone=zone.pk, name=str(zone))
    return zone


# -- add-ons ----------------------------------------------------------------------------------------


def _addon_lines_total(bill: Bill) -> Decimal:
    """What a bill charges for add-ons, VAT included."""
    total = BillLine.objects.filter(bill=bill, kind=BillLine.Kind.ADDON).aggregate(total=Sum(F("amount") + F("vat")))[
        "total"
    ]
    return total if total is not None else ZERO


def _addon_router_change(subscriber: Subscriber, addon: AddOn, what: str) -> None:
    # An add-on that changes what the router holds reconciles the subscriber there, in this transaction.
    if addon.effect != AddOnEffect.NONE:
        _enqueue(subscriber, f"add-on {addon.name} {what}")


def subscriber_addon_activate(
    *,
    subscriber: Subscriber,
    addon: AddOn,
    start_date: dt.date | None = None,
    actor: User | None = None,
) -> SubscriberAddOn:
    """Start an add-on for a subscriber from `start_date` (today if empty). Periods not billed yet get
    it as a line of their bill when they are generated. A period already billed that it starts in (or
    before) is charged now, as a one-off charge of the add-on's prorated share of the rest of that
    period, with VAT as its bill line would carry; the charge's line names the add-on."""
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        addon = AddOn.objects.get(pk=addon.pk)
        if addon.operator_id != locked.operator_id:
            raise SubscriberError(f"add-on '{addon}' belongs to another operator")
        if not addon.is_active:
            raise SubscriberError(f"'{addon}' is not on sale")
        if locked.service_intent == ServiceIntent.TERMINATED:
            raise SubscriberError(f"{locked.customer_id} is terminated")
        day = start_date or operator_today(locked.operator)
        _date_check(locked.operator, day, _("add-on start"), actor)
        stretches = SubscriberAddOn.objects.filter(subscriber=locked, addon=addon)
        if stretches.filter(end_date__isnull=True).exists():
            raise SubscriberError(f"{locked.customer_id} already has '{addon}'")
        last_end = stretches.aggregate(last=Max("end_date"))["last"]
        if last_end is not None and day < last_end:
            raise SubscriberError(
                f"{locked.customer_id} had '{addon}' until {last_end:%Y-%m-%d}; start it on or after that day"
            )
        try:
            with transaction.atomic():
                stretch = SubscriberAddOn.objects.create(subscriber=locked, addon=addon, start_date=day)
        except IntegrityError:
            # The partial unique index: a concurrent activation of the same add-on won.
            raise SubscriberError(f"{locked.customer_id} already has '{addon}'") from None
        terms = subscriber_terms(locked)
        vat = terms.vat_for(addon.vat_applicable)
        charged = ZERO
        billed = Bill.objects.filter(
            subscriber=locked, reversed_at__isnull=True, kind=Bill.Kind.PERIOD, period_end__gt=day
        ).order_by("period_month")
        for bill in billed:
            nominal_start, nominal_end = nominal_period(bill.period_month, terms.anchor_day)
            period = Period(bill.period_month, nominal_start, nominal_end, bill.period_start, bill.period_end)
            # As generation would have billed it: a whole period like the package, part of one by days.
            amounts = addon_amounts(
                monthly_price=addon.price, period=period, start=day, end=None, vat=vat, prorate=bill.is_prorated
            )
            if amounts is None or amounts.total <= 0:
                continue
            effective = max(day, bill.period_start)
            note = (
                f"{addon.name} {effective:%Y-%m-%d} to {bill.period_end:%Y-%m-%d} "
                f"({(bill.period_end - effective).days} days; {bill.period_month:%Y-%m} was already billed)"
            )
            entry = _adjustment_append(locked, amounts.total, AdjustmentReason.ADDON, note, actor, effective)
            # The charge's one line is the add-on's: what revenue counts and what ending it credits.
            BillLine.objects.filter(bill=entry.bill).update(kind=BillLine.Kind.ADDON, subscriber_addon=stretch)
            charged += amounts.total
        _addon_router_change(locked, addon, "on")
        audit(
            operator=locked.operator,
            action="subscriber.addon.activate",
            actor=actor,
            subscriber=locked,
            addon=addon.name,
            start=day,
            charged=charged,
        )
    return stretch


def _covered_by(line: BillLine, stretch: SubscriberAddOn, subscriber: Subscriber) -> tuple[dt.date, dt.date] | None:
    """The days [start, end) an add-on line bills. A period bill's line covers its period from the
    add-on's start; a one-off charge (the add-on started in a period already billed) covers the rest
    of its period, which the subscriber's terms give from the charge's period label."""
    bill = line.bill
    if bill.kind == Bill.Kind.PERIOD:
        return max(stretch.start_date, bill.period_start), bill.period_end
    if subscriber.activation_date is None:
        return None
    period = subscriber_period(
        bill.period_month, subscriber_terms(subscriber).anchor_day, subscriber.activation_date, subscriber.terminated_on
    )
    if period is None:
        return None
    return max(stretch.start_date, period.start), period.end


def subscriber_addon_deactivate(
    *,
    subscriber: Subscriber,
    addon: AddOn,
    end_date: dt.date | None = None,
    actor: User | None = None,
) -> SubscriberAddOn | None:
    """End a running add-on from `end_date` (the first day without it; today if empty). Every bill
    that already charged it for days from then on (the current period's, any billed ahead, a one-off
    charge) is credited for those days, the credit naming that bill and never more than is left to
    credit on it. An add-on ended on or before its start never took effect: if nothing billed it, it
    is withdrawn (None is returned)."""
    with transaction.atomic():
        locked = subscriber_lock(subscriber.pk)
        if addon.operator_id != locked.operator_id:
            raise SubscriberError(f"add-on '{addon}' belongs to another operator")
        stretch = (
            SubscriberAddOn.objects.select_for_update()
            .filter(subscriber=locked, addon=addon, end_date__isnull=True)
            .first()
        )
        if stretch is None:
            raise SubscriberError(f"{locked.customer_id} does not have '{addon}'")
        day = end_date or operator_today(locked.operator)
        _date_check(locked.operator, day, _("add-on end"), actor)
        lines = list(
            BillLine.objects.filter(
                bill__subscriber=locked,
                bill__reversed_at__isnull=True,
                kind=BillLine.Kind.ADDON,
                subscriber_addon=stretch,
            )
            .select_related("bill")
            .order_by("bill__period_month", "bill_id")
        )
        if day <= stretch.start_date:
            # Reversed charges count too: their lines keep naming the stretch.
            if BillLine.objects.filter(
                bill__subscriber=locked, kind=BillLine.Kind.ADDON, subscriber_addon=stretch
            ).exists():
                raise SubscriberError(
                    f"'{addon}' has been billed from {stretch.start_date:%Y-%m-%d}; end it after that day"
                )
            stretch.delete()
            _addon_router_change(locked, addon, "withdrawn")
            audit(
                operator=locked.operator,
                action="subscriber.addon.withdraw",
                actor=actor,
                subscriber=locked,
                addon=addon.name,
                start=stretch.start_date,
            )
            return None
        credited = ZERO
        for line in lines:
            covered = _covered_by(line, stretch, locked)
            if covered is None:
                continue
            covered_start, covered_end = covered
            unused_from = max(day, covered_start)
            unused_days = (covered_end - unused_from).days
            if unused_days <= 0:
                continue
            share = remaining_share(line.amount + line.vat, unused_days, (covered_end - covered_start).days)
            credit = min(share, bill_creditable(line.bill))
            if credit <= 0:
                continue
            _adjustment_append(
                locked,
                -credit,
                AdjustmentReason.ADDON,
                f"{addon.name} ended {day:%Y-%m-%d}: {unused_days} unused days of {line.bill.period_month:%Y-%m}",
                actor,
                unused_from,
                credits_bill=line.bill,
            )
            credited += credit
        stretch.end_date = day
        stretch.save(update_fields=["end_date"])
        _addon_router_change(locked, addon, "off")
        audit(
            operator=locked.operator,
            action="subscriber.addon.deactivate",
            actor=actor,
            subscriber=locked,
            addon=addon.name,
            end=day,
            credited=credited,
        )
    return stretch
