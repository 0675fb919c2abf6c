from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from sonjog.billing.selectors import subscriber_balance, subscriber_statement
from sonjog.core.cli import SonjogCommand, column_arg, to_json, usage_error
from sonjog.customers.models import Subscriber


class Command(SonjogCommand):
    help = "Print a subscriber's statement: opening, billed, paid, adjusted and closing due per period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("customer_id", type=column_arg(Subscriber, "customer_id"))
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        subscriber = Subscriber.objects.select_related("operator").filter(customer_id=options["customer_id"]).first()
        if subscriber is None:
            raise usage_error(f"no subscriber with customer ID '{options['customer_id']}'")
        rows = subscriber_statement(subscriber.pk)
        if options["json"]:
            self.stdout.write(
                to_json(
                    {
                        "subscriber": subscriber.customer_id,
                        "name": subscriber.name,
                        "currency": subscriber.operator.currency,
                        "balance": subscriber_balance(subscriber.pk),
                        "periods": rows,
                    }
                )
            )
            return
        self.stdout.write(f"{subscriber.customer_id}  {subscriber.name}  ({subscriber.operator.currency})")
        header = f"{'period':<8} {'opening':>12} {'billed':>12} {'paid':>12} {'adjusted':>12} {'closing':>12}"
        self.stdout.write(header)
        for row in rows:
            self.stdout.write(
                f"{row['period']:<8} {row['opening_due']:>12} {row['billed']:>12} {row['paid']:>12} "
                f"{row['adjusted']:>12} {row['closing_due']:>12}"
            )
