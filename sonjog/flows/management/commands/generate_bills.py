from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import CommandParser

from sonjog.billing.models import BillingRun
from sonjog.billing.services import GenerationResult
from sonjog.core.bounds import OutOfBounds, check_date
from sonjog.core.cli import SonjogCommand, column_arg, text_arg, to_json, usage_error
from sonjog.core.periods import add_months, parse_period
from sonjog.flows.generation import bills_generate
from sonjog.operators.models import Operator


class Command(SonjogCommand):
    help = "Generate bills for one period (YYYY-MM) for every operator, or one with --operator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", required=True, help="YYYY-MM", type=text_arg(20))
        parser.add_argument(
            "--operator", help="operator code; all operators when omitted", type=column_arg(Operator, "code")
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            period = parse_period(options["period"])
            # The whole period, its last day included, within the dates anything is billed for.
            check_date(period)
            check_date(add_months(period, 1) - dt.timedelta(days=1))
        except OutOfBounds as error:
            raise usage_error(f"period '{options['period']}': {error}") from None
        except ValueError as error:
            raise usage_error(str(error)) from None
        operators = Operator.objects.filter(is_active=True).order_by("pk")
        if options["operator"]:
            operators = operators.filter(code=options["operator"])
            if not operators.exists():
                raise usage_error(f"no operator with code '{options['operator']}'")
        total = GenerationResult(period=period)
        for operator in operators:
            result = bills_generate(operator=operator, period_month=period, trigger=BillingRun.Trigger.CLI)
            total.add(result)
            total.seconds += result.seconds
        if options["json"]:
            self.stdout.write(to_json(total.as_dict()))
            return
        summary = total.as_dict()
        self.stdout.write(
            f"Period {summary['period']}: created {total.created}, backfilled {total.backfilled}, "
            f"skipped (existing) {total.skipped_existing}, skipped (future joiners) "
            f"{total.skipped_future_joiners}, errors {len(total.errors)} in {summary['seconds']} s"
        )
        for failure in total.errors:
            self.stdout.write(f"  {failure['subscriber']}: {failure['error']}")
