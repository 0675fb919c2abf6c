from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from sonjog.billing.exceptions import BillingError, DuplicatePaymentSuspected
from sonjog.billing.models import Payment, PaymentMethod
from sonjog.billing.selectors import subscriber_balance
from sonjog.core.cli import SonjogCommand, amount_arg, column_arg, to_json, usage_error
from sonjog.customers.models import Subscriber
from sonjog.flows.payments import payment_receive


class Command(SonjogCommand):
    help = (
        "Record a payment for a subscriber; it settles the oldest open bills first, and reconnects a "
        "suspended subscriber it clears."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--subscriber", required=True, help="customer ID", type=column_arg(Subscriber, "customer_id")
        )
        parser.add_argument("--amount", required=True, type=amount_arg())
        parser.add_argument(
            "--method", required=True, help=", ".join(PaymentMethod.values), type=column_arg(Payment, "method")
        )
        parser.add_argument("--reference", default="", type=column_arg(Payment, "reference"))
        parser.add_argument(
            "--confirm-duplicate", action="store_true", help="record even if identical to one just made"
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        amount = options["amount"]
        if amount <= 0:
            raise usage_error(f"the amount must be more than zero (got {options['amount']})")
        if options["method"] not in PaymentMethod.values:
            raise usage_error(f"unknown method '{options['method']}'; use one of {', '.join(PaymentMethod.values)}")
        subscriber = Subscriber.objects.filter(customer_id=options["subscriber"]).first()
        if subscriber is None:
            raise usage_error(f"no subscriber with customer ID '{options['subscriber']}'")
        try:
            payment = payment_receive(
                subscriber=subscriber,
                amount=amount,
                method=options["method"],
                reference=options["reference"],
                confirm_duplicate=options["confirm_duplicate"],
            )
        except DuplicatePaymentSuspected as error:
            raise usage_error(f"{error} (add --confirm-duplicate)") from None
        except BillingError as error:
            raise usage_error(str(error)) from None
        balance = subscriber_balance(subscriber.pk)
        data = {
            "payment_id": payment.pk,
            "subscriber": subscriber.customer_id,
            "amount": payment.amount,
            "method": payment.method,
            "reference": payment.reference,
            "received_at": payment.received_at,
            "balance": balance,
        }
        if options["json"]:
            self.stdout.write(to_json(data))
        else:
            state = f"owes {balance}" if balance > 0 else f"credit {-balance}"
            self.stdout.write(f"Recorded {payment.amount} {payment.method} for {subscriber.customer_id}; now {state}")
