"""Writes for subscribers brought in from another system (an import batch): registered set-based,
thousands in a few statements, and removed again while nothing has touched them (ADR 0014).

Checking the rows (unknown package, duplicate phone or user name, bad dates) is the importer's job
(`sonjog.transfer.imports`); this module trusts its input only as far as the database does: the unique
customer ID and PPPoE user name hold whatever it is given."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from sonjog.catalog.models import Package
from sonjog.customers.exceptions import SubscriberError
from sonjog.customers.models import ServiceIntent, Subscriber, Zone
from sonjog.operators.models import Operator


@dataclass(frozen=True)
class ImportedSubscriber:
    """One checked row: the phone already normalised, the package and zone the operator's own."""

    name: str
    phone: str
    package: Package
    activation_date: dt.date
    intent: str = ServiceIntent.ACTIVE
    zone: Zone | None = None
    email: str = ""
    address: str = ""
    national_id: str = ""
    pppoe_username: str = ""
    pppoe_password: str = ""
    customer_id: str = ""
    router_id: int | None = None
    # A zone the file names that does not exist yet: created, and set, when the batch is applied.
    zone_name: str = ""
    billing_starts_on: dt.date | None = None


def customer_ids_reserve(operator: Operator, count: int) -> list[str]:
    """Take `count` consecutive customer IDs from the operator's sequence under its row lock (NO KEY
    UPDATE, as `customer_id_next`)."""
    locked = Operator.objects.select_for_update(no_key=True).get(pk=operator.pk)
    first = locked.customer_id_next
    Operator.objects.filter(pk=operator.pk).update(customer_id_next=first + count)
    return [
        f"{locked.customer_id_prefix}{locked.customer_id_infix}{number:0{locked.customer_id_digits}d}"
        f"{locked.customer_id_postfix}"
        for number in range(first, first + count)
    ]


def subscribers_import_register(*, operator: Operator, rows: Sequence[ImportedSubscriber]) -> list[Subscriber]:
    """Create the rows in order, already activated on their own dates and billed by Sonjog only from
    their `billing_starts_on` (the system they come from billed them before). A row without a customer ID
    takes the operator's next; a row without a PPPoE user name takes its customer ID, as a sign-up."""
    for row in rows:
        if row.package.operator_id != operator.pk:
            raise SubscriberError(f"package '{row.package}' belongs to another operator")
        if row.zone is not None and row.zone.operator_id != operator.pk:
            raise SubscriberError(f"zone '{row.zone}' belongs to another operator")
        if row.billing_starts_on is None:
            raise SubscriberError("an imported subscriber needs the day Sonjog starts billing it")
        if row.intent not in (ServiceIntent.ACTIVE, ServiceIntent.SUSPENDED, ServiceIntent.DISABLED):
            raise SubscriberError(f"an imported subscriber cannot start '{row.intent}'")
    now = timezone.now()
    with transaction.atomic():
        generated = iter(customer_ids_reserve(operator, sum(1 for row in rows if not row.customer_id)))
        subscribers = []
        for row in rows:
            customer_id = row.customer_id or next(generated)
            subscribers.append(
                Subscriber(
                    operator=operator,
                    customer_id=customer_id,
                    name=row.name,
                    phone=row.phone,
                    email=row.email,
                    address=row.address,
                    national_id=row.national_id,
                    zone=row.zone,
                    package=row.package,
                    pppoe_username=row.pppoe_username or customer_id.lower(),
                    pppoe_password=row.pppoe_password or secrets.token_urlsafe(9),
                    activation_date=row.activation_date,
                    billing_starts_on=row.billing_starts_on,
                    router_id=row.router_id,
                    service_intent=row.intent,
                    service_intent_at=now,
                )
            )
        try:
            with transaction.atomic():
                Subscriber.objects.bulk_create(subscribers, batch_size=1000)
        except IntegrityError as error:
            raise SubscriberError(f"a customer ID or PPPoE user name in the batch is already taken: {error}") from None
    return subscribers


def subscribers_import_remove(*, subscriber_ids: Sequence[int]) -> int:
    """Delete imported subscribers; anything still referencing one (a payment, a router command, a
    message, an audit entry) makes the database refuse, and nothing is deleted."""
    with transaction.atomic():
        deleted, _by_model = Subscriber.objects.filter(pk__in=list(subscriber_ids)).delete()
    return deleted
