"""Writes of a subscriber's own state: the row, activation, intent, package, termination, add-on
stretches, contact details and zones. Each runs on a subscriber the caller has locked where it says
so; what other apps do about a change (bills, router commands, messages) is added by the flows in
`sonjog.flows.subscribers`, in the same transaction."""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from sonjog.catalog.models import AddOn, Package
from sonjog.core.audit import audit
from sonjog.core.money import ZERO
from sonjog.customers.exceptions import DiscountNotPermitted, PasswordRevealNotPermitted, SubscriberError, ZoneError
from sonjog.customers.models import ServiceIntent, Subscriber, SubscriberAddOn, Zone
from sonjog.customers.phone import normalize_phone
from sonjog.operators.dates import business_date_problem, operator_today
from sonjog.operators.models import Operator


def subscriber_date_check(operator: Operator, day: dt.date, what: str, actor: User | None = None) -> None:
    """A business date (activation, package change, termination, add-on start or end) inside the
    operator's window, or a SubscriberError saying why not."""
    problem = business_date_problem(operator, day, operator_today(operator), what=what, actor=actor)
    if problem:
        raise SubscriberError(problem)


def _can_grant_discount(actor: User | None) -> bool:
    # None is the system itself (seeding, migration imports); people need the permission.
    return actor is None or actor.has_perm("customers.grant_discount")


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


def subscriber_register(
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
    billing_mode: str | None = None,
    billing_cycle: str | None = None,
    billing_day: int | None = None,
    monthly_discount: Decimal = ZERO,
    is_vip: bool = False,
    actor: User | None = None,
) -> Subscriber:
    """Create the subscriber row with the operator's next customer ID, audited; nothing else. Signing a
    subscriber up (welcome message, activation, first bill, router) is `sonjog.flows.subscribers`."""
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
    return subscriber


def subscriber_activation_set(*, subscriber: Subscriber, activation_date: dt.date, actor: User | None = None) -> None:
    """On a locked subscriber: start service from `activation_date` (which anchors an anniversary
    cycle; an earlier activation date stays), intend it active, audited. The activation flow
    (`sonjog.flows.subscribers.subscriber_activate`) adds the router command, the message and the bills."""
    if subscriber.service_intent == ServiceIntent.TERMINATED:
        raise SubscriberError(f"{subscriber.customer_id} is terminated; create a new subscriber instead")
    if subscriber.activation_date is None:
        subscriber.activation_date = activation_date
    subscriber.service_intent = ServiceIntent.ACTIVE
    subscriber.service_intent_at = timezone.now()
    subscriber.save(update_fields=["activation_date", "service_intent", "service_intent_at"])
    audit(
        operator=subscriber.operator,
        action="subscriber.activate",
        actor=actor,
        subscriber=subscriber,
        activation_date=subscriber.activation_date,
    )


def subscriber_intent_set(*, subscriber: Subscriber, intent: str, reason: str, actor: User | None = None) -> str | None:
    """On a locked subscriber: suspend, reactivate or disable service (VIPs are never suspended),
    audited. Returns the intent it had, or None when it already had this one. The flow
    (`sonjog.flows.subscribers.subscriber_set_intent`) adds the router command and the message."""
    if intent not in (ServiceIntent.ACTIVE, ServiceIntent.SUSPENDED, ServiceIntent.DISABLED):
        raise SubscriberError(f"use subscriber_terminate to end service, not intent '{intent}'")
    if subscriber.service_intent == ServiceIntent.TERMINATED:
        raise SubscriberError(f"{subscriber.customer_id} is terminated")
    if intent == ServiceIntent.SUSPENDED and subscriber.is_vip:
        raise SubscriberError(f"{subscriber.customer_id} is a VIP and is never suspended")
    if subscriber.service_intent == intent:
        return None
    previous = subscriber.service_intent
    subscriber.service_intent = intent
    subscriber.service_intent_at = timezone.now()
    subscriber.save(update_fields=["service_intent", "service_intent_at"])
    audit(
        operator=subscriber.operator,
        action=f"subscriber.intent.{intent}",
        actor=actor,
        subscriber=subscriber,
        reason=reason,
    )
    return previous


def subscriber_package_check(*, subscriber: Subscriber, package: Package, day: dt.date, actor: User | None) -> None:
    """Whether a locked subscriber may move to `package` on `day` (its operator's, not the one it is
    on, a date inside the operator's window); a SubscriberError says why not."""
    if package.operator_id != subscriber.operator_id:
        raise SubscriberError(f"package '{package}' belongs to another operator")
    if package.pk == subscriber.package_id:
        raise SubscriberError(f"{subscriber.customer_id} is already on '{package}'")
    subscriber_date_check(subscriber.operator, day, _("package change"), actor)


def subscriber_package_set(*, subscriber: Subscriber, package: Package, day: dt.date, actor: User | None) -> None:
    """Put a locked subscriber on `package` from `day`, audited. The package change flow
    (`sonjog.flows.subscribers.subscriber_change_package`) settles the bill and reprovisions first."""
    old_package = subscriber.package
    subscriber.package = package
    subscriber.save(update_fields=["package"])
    audit(
        operator=subscriber.operator,
        action="subscriber.change_package",
        actor=actor,
        subscriber=subscriber,
        old=old_package.name,
        new=package.name,
        effective=day,
    )


def subscriber_termination_start(*, subscriber: Subscriber, day: dt.date, reason: str, actor: User | None) -> dt.date:
    """Whether a locked subscriber may end service on `day`, and the day it ends: never before its
    activation (a subscriber never activated is activated and ended on the same day)."""
    if not reason.strip():
        raise SubscriberError("termination needs a reason")
    if subscriber.service_intent == ServiceIntent.TERMINATED:
        raise SubscriberError(f"{subscriber.customer_id} is already terminated")
    subscriber_date_check(subscriber.operator, day, _("termination"), actor)
    if subscriber.activation_date is None or day < subscriber.activation_date:
        subscriber.activation_date = subscriber.activation_date or day
        day = max(day, subscriber.activation_date)
    return day


def subscriber_termination_set(*, subscriber: Subscriber, day: dt.date, reason: str, actor: User | None) -> None:
    """End a locked subscriber's service on `day`, audited; add-ons running at the end stop with it
    (billing stops anyway; the profile must not say "running"). The termination flow settles the
    bills first (`billing.services.lifecycle.termination_settle`)."""
    running = SubscriberAddOn.objects.filter(subscriber=subscriber, end_date__isnull=True, start_date__lt=day)
    running.update(end_date=day)
    subscriber.terminated_on = day
    subscriber.service_intent = ServiceIntent.TERMINATED
    subscriber.service_intent_at = timezone.now()
    subscriber.save(update_fields=["terminated_on", "service_intent", "service_intent_at", "activation_date"])
    audit(
        operator=subscriber.operator,
        action="subscriber.terminate",
        actor=actor,
        subscriber=subscriber,
        terminated_on=day,
        reason=reason,
    )


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


def subscriber_addon_start(
    *, subscriber: Subscriber, addon: AddOn, day: dt.date, actor: User | None
) -> SubscriberAddOn:
    """Start a stretch of `addon` on a locked subscriber from `day`: the add-on is the operator's and
    on sale, the subscriber not terminated, not already on it and not before its last stretch ended.
    The flow (`sonjog.flows.subscribers.subscriber_addon_activate`) charges periods already billed."""
    addon = AddOn.objects.get(pk=addon.pk)
    if addon.operator_id != subscriber.operator_id:
        raise SubscriberError(f"add-on '{addon}' belongs to another operator")
    if not addon.is_active:
        raise SubscriberError(f"'{addon}' is not on sale")
    if subscriber.service_intent == ServiceIntent.TERMINATED:
        raise SubscriberError(f"{subscriber.customer_id} is terminated")
    subscriber_date_check(subscriber.operator, day, _("add-on start"), actor)
    stretches = SubscriberAddOn.objects.filter(subscriber=subscriber, addon=addon)
    if stretches.filter(end_date__isnull=True).exists():
        raise SubscriberError(f"{subscriber.customer_id} already has '{addon}'")
    last_end = stretches.aggregate(last=Max("end_date"))["last"]
    if last_end is not None and day < last_end:
        raise SubscriberError(
            f"{subscriber.customer_id} had '{addon}' until {last_end:%Y-%m-%d}; start it on or after that day"
        )
    try:
        with transaction.atomic():
            return SubscriberAddOn.objects.create(subscriber=subscriber, addon=addon, start_date=day)
    except IntegrityError:
        # The partial unique index: a concurrent activation of the same add-on won.
        raise SubscriberError(f"{subscriber.customer_id} already has '{addon}'") from None


def subscriber_addon_running(
    *, subscriber: Subscriber, addon: AddOn, day: dt.date, actor: User | None
) -> SubscriberAddOn:
    """The running stretch of `addon` on a locked subscriber, locked, that is to end on `day`."""
    if addon.operator_id != subscriber.operator_id:
        raise SubscriberError(f"add-on '{addon}' belongs to another operator")
    stretch = (
        SubscriberAddOn.objects.select_for_update()
        .select_related("addon")
        .filter(subscriber=subscriber, addon=addon, end_date__isnull=True)
        .first()
    )
    if stretch is None:
        raise SubscriberError(f"{subscriber.customer_id} does not have '{addon}'")
    subscriber_date_check(subscriber.operator, day, _("add-on end"), actor)
    return stretch


def subscriber_addon_end(*, stretch: SubscriberAddOn, day: dt.date) -> None:
    """The stretch's last day is the day before `day`."""
    stretch.end_date = day
    stretch.save(update_fields=["end_date"])


# -- the PPPoE password ------------------------------------------------------------------------------


def pppoe_password_generate() -> str:
    """A new random PPPoE password: 12 URL-safe characters, easy to read out and type on a router."""
    return secrets.token_urlsafe(9)


def subscriber_pppoe_password_reveal(*, subscriber: Subscriber, actor: User | None) -> str:
    """The subscriber's PPPoE password for a person allowed to read it, the reading audited (who looked
    at whose password, never the password itself)."""
    if actor is not None and not actor.has_perm("customers.reveal_pppoe_password"):
        raise PasswordRevealNotPermitted("you may not see PPPoE passwords (permission customers.reveal_pppoe_password)")
    with transaction.atomic():
        audit(
            operator=subscriber.operator, action="subscriber.pppoe_password.reveal", actor=actor, subscriber=subscriber
        )
    return Subscriber.objects.values_list("pppoe_password", flat=True).get(pk=subscriber.pk)


def subscriber_pppoe_password_reset(*, subscriber: Subscriber, actor: User | None, password: str = "") -> str:
    """On a locked subscriber: a new PPPoE password (`password`, or a random one), audited without the
    password; returns it. The flow (`sonjog.flows.subscribers.subscriber_reset_pppoe_password`) puts it
    on the router and, if asked, sends it to the subscriber."""
    if subscriber.service_intent == ServiceIntent.TERMINATED:
        raise SubscriberError(f"{subscriber.customer_id} is terminated")
    new_password = password.strip() or pppoe_password_generate()
    if len(new_password) > Subscriber._meta.get_field("pppoe_password").max_length:  # type: ignore[operator]
        raise SubscriberError("the PPPoE password is too long")
    subscriber.pppoe_password = new_password
    subscriber.save(update_fields=["pppoe_password"])
    audit(operator=subscriber.operator, action="subscriber.pppoe_password.reset", actor=actor, subscriber=subscriber)
    return new_password
