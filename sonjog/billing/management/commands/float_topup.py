from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from sonjog.billing.exceptions import BillingError
from sonjog.billing.models import FloatEntry
from sonjog.billing.services.floats import float_topup
from sonjog.core.cli import SonjogCommand, amount_arg, column_arg, to_json, usage_error
from sonjog.operators.models import Operator


class Command(SonjogCommand):
    help = "Top up a reseller's float at its parent: money the reseller paid, added to the float."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--operator", required=True, help="the reseller's code", type=column_arg(Operator, "code"))
        parser.add_argument("--amount", required=True, type=amount_arg())
        parser.add_argument(
            "--method",
            default=FloatEntry.Method.CASH,
            help=", ".join(FloatEntry.Method.values),
            type=column_arg(FloatEntry, "method"),
        )
        parser.add_argument("--reference", default="", type=column_arg(FloatEntry, "reference"))
        parser.add_argument("--note", default="", type=column_arg(FloatEntry, "memo"))
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        amount = options["amount"]
        if amount <= 0:
            raise usage_error(f"the amount must be more than zero (got {options['amount']})")
        if options["method"] not in FloatEntry.Method.values:
            raise usage_error(f"unknown method '{options['method']}'; use one of {', '.join(FloatEntry.Method.values)}")
        operator = Operator.objects.filter(code=options["operator"]).first()
        if operator is None:
            raise usage_error(f"no operator with code '{options['operator']}'")
        try:
            entry = float_topup(
                operator=operator,
                amount=amount,
                method=options["method"],
                reference=options["reference"],
                memo=options["note"],
            )
        except BillingError as error:
            raise usage_error(str(error)) from None
        data = {
            "entry_id": entry.pk,
            "operator": operator.code,
            "amount": entry.amount,
            "method": entry.method,
            "reference": entry.reference,
            "note": entry.memo,
            "created_at": entry.created_at,
            "balance_after": entry.balance_after,
        }
        if options["json"]:
            self.stdout.write(to_json(data))
        else:
            self.stdout.write(
                f"Float entry {entry.pk}: topped up {entry.amount} {entry.method} for {operator.code}; "
                f"balance {entry.balance_after}"
            )
