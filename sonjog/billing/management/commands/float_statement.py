from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from sonjog.billing.models import FloatAccount
from sonjog.core.cli import SonjogCommand, column_arg, to_json, usage_error
from sonjog.operators.models import Operator


class Command(SonjogCommand):
    help = "Print a reseller's float: its entries, oldest first, and its balance."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("operator", help="the reseller's code", type=column_arg(Operator, "code"))
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        account = FloatAccount.objects.select_related("operator").filter(operator__code=options["operator"]).first()
        if account is None:
            if not Operator.objects.filter(code=options["operator"]).exists():
                raise usage_error(f"no operator with code '{options['operator']}'")
            raise usage_error(f"operator '{options['operator']}' does not run on a float")
        entries = [
            {
                "entry_id": entry.pk,
                "created_at": entry.created_at,
                "kind": entry.kind,
                "amount": entry.amount,
                "balance_after": entry.balance_after,
                "subscriber": entry.subscriber.customer_id if entry.subscriber else None,
                "package": entry.package.name if entry.package else None,
                "wholesale_price": entry.unit_price,
                "method": entry.method,
                "reference": entry.reference,
                "note": entry.memo,
            }
            for entry in account.entries.select_related("subscriber", "package").order_by("pk")
        ]
        operator = account.operator
        if options["json"]:
            self.stdout.write(
                to_json(
                    {
                        "operator": operator.code,
                        "name": operator.name,
                        "currency": operator.currency,
                        "balance": account.balance,
                        "credit_limit": account.credit_limit,
                        "entries": entries,
                    }
                )
            )
            return
        self.stdout.write(f"{operator.code}  {operator.name}  ({operator.currency})")
        self.stdout.write(f"{'entry':>7} {'date':<16} {'kind':<12} {'amount':>12} {'balance':>12}  detail")
        for row in entries:
            detail = " ".join(
                str(part) for part in (row["subscriber"], row["package"], row["reference"], row["note"]) if part
            )
            self.stdout.write(
                f"{row['entry_id']:>7} {row['created_at']:%Y-%m-%d %H:%M} {row['kind']:<12} "
                f"{row['amount']:>12} {row['balance_after']:>12}  {detail}"
            )
        self.stdout.write(f"balance {account.balance}")
