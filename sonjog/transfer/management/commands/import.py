"""`sonjog import`: bring subscribers in from a CSV/XLSX file or a MikroTik router, or undo a batch.

    sonjog import subscribers FILE --operator CODE [--dry-run] [--json] [--map field=Column ...]
    sonjog import mikrotik ROUTER --operator CODE [--dry-run] [--json]
    sonjog import undo BATCH

Columns are matched to fields by their names (ISPBills, phpnuxbill and Splynx exports are known);
`--map` changes a match, `--map zone=` drops one. The dry run lists every row's problem and writes
nothing. Without `--dry-run` a file with any problem is refused the same way: the problems listed,
exit code 2, nothing written. Bad input (no such file, operator, router or batch) is one line, exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from sonjog.core.cli import SonjogCommand, column_arg, to_json, usage_error
from sonjog.core.progress import Progress
from sonjog.network.models import Router
from sonjog.operators.models import Operator
from sonjog.transfer.columns import FIELD_KEYS
from sonjog.transfer.exceptions import TransferError
from sonjog.transfer.imports import (
    BALANCE_SIGNS,
    CheckResult,
    batch_configure,
    batch_from_file,
    batch_from_router,
    import_apply,
    import_check,
    import_undo,
)
from sonjog.transfer.models import ImportBatch


class Command(SonjogCommand):
    help = "Import subscribers from a CSV/XLSX file or a MikroTik router's PPP secrets, or undo an import batch."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["subscribers", "mikrotik", "undo"])
        parser.add_argument("target", help="the file, the router's name, or the batch number to undo")
        parser.add_argument("--operator", help="the operator's code", type=column_arg(Operator, "code"))
        parser.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FIELD=COLUMN",
            help=f"map a column to a field (fields: {', '.join(FIELD_KEYS)}); FIELD= leaves it out",
        )
        parser.add_argument(
            "--billing-from",
            default="next",
            help="next (default: the old system billed the current period), current, or a date",
        )
        parser.add_argument("--balance", default="owes", choices=BALANCE_SIGNS, help="a positive balance means")
        parser.add_argument("--no-create-zones", action="store_true", help="refuse rows naming an unknown zone")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["what"] == "undo":
            self._undo(options)
            return
        code = options["operator"]
        if not code:
            raise usage_error("--operator is required: the code of the operator the subscribers belong to")
        operator = Operator.objects.filter(code=code).first()
        if operator is None:
            raise usage_error(f"no operator with code '{code}'")
        try:
            batch = self._batch(operator, options)
            mapping = dict(batch.mapping)
            for item in options["map"]:
                field, equals, column = item.partition("=")
                if not equals:
                    raise usage_error(f"--map {item}: write FIELD=COLUMN, e.g. --map phone=Mobile")
                mapping[field.strip()] = column.strip()
            batch_configure(
                batch=batch,
                mapping=mapping,
                options={
                    "billing_from": options["billing_from"],
                    "balance_sign": options["balance"],
                    "create_zones": not options["no_create_zones"],
                },
            )
            result = import_check(batch)
        except TransferError as error:
            raise usage_error(str(error)) from None
        if options["dry_run"] or result.problems:
            self._report(batch, result, options["json"], dry_run=options["dry_run"])
            if result.problems:
                raise usage_error(
                    f"{result.rows_with_problems} of {result.total} rows have problems; nothing was written"
                )
            return
        batch.save()
        progress = Progress(len(result.ready), "importing", enabled=not options["json"] and sys.stderr.isatty())
        try:
            applied = import_apply(batch=batch, progress=lambda done, _total: progress.advance(done - progress.done))
        except TransferError as error:
            raise usage_error(str(error)) from None
        summary = {
            "batch": applied.pk,
            "created": applied.created,
            "opening_balances": applied.opening_balances,
            "zones_created": result.zones_to_create,
        }
        if options["json"]:
            self.stdout.write(to_json(summary))
        else:
            self.stdout.write(
                f"import #{applied.pk}: {applied.created} subscribers, {applied.opening_balances} opening balances"
                + (f", zones created: {', '.join(result.zones_to_create)}" if result.zones_to_create else "")
                + f" (undo: sonjog import undo {applied.pk})"
            )

    def _batch(self, operator: Operator, options: dict[str, Any]) -> ImportBatch:
        if options["what"] == "subscribers":
            path = Path(options["target"])
            try:
                data = path.read_bytes() if path.is_file() else None
            except (OSError, ValueError):
                data = None
            if data is None:
                raise usage_error(f"no file '{options['target'][:200]}' that can be read")
            return batch_from_file(operator=operator, file_name=path.name, data=data, save=False)
        # The reseller's own routers, or those of the operators above it (a reseller often shares its ISP's NAS).
        chain = [int(part) for part in operator.path.strip("/").split("/") if part]
        name = options["target"]
        router = Router.objects.filter(name=name, operator_id__in=chain).first() if "\x00" not in name else None
        if router is None:
            raise usage_error(f"no router named '{name[:100]}' for {operator.code} or the operators above it")
        return batch_from_router(router=router, operator=operator, save=False)

    def _report(self, batch: ImportBatch, result: CheckResult, as_json: bool, *, dry_run: bool) -> None:
        if as_json:
            self.stdout.write(to_json({"mapping": batch.mapping, **result.as_dict()}))
            return
        mapped = ", ".join(f"{field}={column}" for field, column in batch.mapping.items())
        self.stdout.write(f"columns: {mapped}")
        for problem in result.problems:
            self.stdout.write(f"row {problem.row}: {problem.field}: {problem.message}")
        for warning in result.warnings[:20]:
            self.stdout.write(f"row {warning.row}: note: {warning.message}")
        if len(result.warnings) > 20:
            self.stdout.write(f"... and {len(result.warnings) - 20} more notes")
        if result.zones_to_create:
            self.stdout.write(f"zones to create: {', '.join(result.zones_to_create)}")
        if not result.problems and dry_run:
            self.stdout.write(
                f"dry run: {len(result.ready)} subscribers would be imported "
                f"(owed {result.owed}, credit {result.credit}); nothing was written"
            )

    def _undo(self, options: dict[str, Any]) -> None:
        target = options["target"]
        batch = (
            ImportBatch.objects.filter(pk=int(target)).first()
            if target.isascii() and target.isdigit() and len(target) < 10
            else None
        )
        if batch is None:
            raise usage_error(f"no import batch #{target[:40]}")
        try:
            removed = import_undo(batch=batch)
        except TransferError as error:
            raise usage_error(str(error)) from None
        if options["json"]:
            self.stdout.write(to_json({"batch": batch.pk, "removed": removed}))
        else:
            self.stdout.write(f"import #{batch.pk} undone: {removed} subscribers removed")
