"""`sonjog export DIR`: everything an ISP needs to leave, one file per dataset.

    sonjog export DIR [--operator CODE] [--own-only] [--format csv|xlsx] [--only subscribers,payments,...]

Writes subscribers, packages, addons, subscriber_addons, ledger, invoices and payments (or the
`--only` ones) of the operator and every operator below it (`--own-only`: the operator alone) into
DIR, created if missing, and prints one line per file with its row count; progress for the big ones
goes to stderr. Without `--operator` there must be exactly one root operator, which is exported.
Bad input (no such operator or dataset, DIR a file or not writable) is one line, exit code 2, and no
file is written."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser
from django.db import connection, transaction

from sonjog.core.cli import SonjogCommand, column_arg, text_arg, usage_error
from sonjog.core.progress import Progress
from sonjog.operators.models import Operator
from sonjog.transfer.exports import DATASETS, Dataset, subtree_ids
from sonjog.transfer.writers import write_csv, write_xlsx

# Datasets with more rows than this show a progress bar on stderr (when it is a terminal).
PROGRESS_FROM = 20_000


class Command(SonjogCommand):
    help = "Export subscribers, packages, the ledger, invoices and payments as CSV or XLSX files, one per dataset."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=text_arg(500), help="where the files go (created if missing)")
        parser.add_argument(
            "--operator", type=column_arg(Operator, "code"), help="the operator's code (default: the only root ISP)"
        )
        parser.add_argument("--own-only", action="store_true", help="leave out the operators below it")
        parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
        parser.add_argument(
            "--only", type=text_arg(500), help=f"comma-separated datasets (of: {', '.join(DATASETS)}); default all"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        names = self._datasets(options["only"])
        directory = self._directory(options["directory"])
        operator = self._operator(options["operator"])
        descendants = not options["own_only"]
        self._prepare(directory)
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            if outermost:
                # One snapshot for every file: the ledger, the invoices and the dues agree with each
                # other even while payments are being taken.
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            for name in names:
                target, written = self._write(directory, DATASETS[name], options["format"], operator, descendants)
                self.stdout.write(f"{target}: {written} rows")

    def _write(
        self, directory: Path, dataset: Dataset, extension: str, operator: Operator, descendants: bool
    ) -> tuple[Path, int]:
        target = directory / f"{dataset.name}.{extension}"
        total = dataset.count(subtree_ids(operator, descendants=descendants))
        progress = Progress(total, dataset.name, enabled=sys.stderr.isatty() and total >= PROGRESS_FROM)

        def advance(done: int) -> None:
            progress.advance(done - progress.done)

        rows = dataset.rows(operator, descendants=descendants)
        # Written beside the target and renamed when complete: an interrupted export leaves no half
        # file under the dataset's name.
        handle, partial = tempfile.mkstemp(prefix=f".{dataset.name}-", suffix=f".{extension}", dir=directory)
        try:
            if extension == "csv":
                with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
                    written = write_csv(file, rows, progress=advance)
            else:
                os.close(handle)
                written = write_xlsx(partial, rows, str(dataset.title), progress=advance)
            os.chmod(partial, 0o644)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return target, written

    def _operator(self, code: str | None) -> Operator:
        if code:
            operator = Operator.objects.filter(code=code).first()
            if operator is None:
                raise usage_error(f"no operator with code '{code}'")
            return operator
        roots = list(Operator.objects.filter(parent__isnull=True).order_by("code")[:2])
        if not roots:
            raise usage_error("there is no operator yet: run sonjog setup first")
        if len(roots) > 1:
            raise usage_error("there is more than one root operator: name one with --operator CODE")
        return roots[0]

    def _datasets(self, only: str | None) -> list[str]:
        if not only:
            return list(DATASETS)
        asked = [name.strip().lower().replace("-", "_") for name in only.split(",") if name.strip()]
        unknown = [name for name in asked if name not in DATASETS]
        if unknown or not asked:
            raise usage_error(f"--only: no dataset '{', '.join(unknown) or only}'; choose among: {', '.join(DATASETS)}")
        return [name for name in DATASETS if name in asked]

    def _directory(self, value: str) -> Path:
        directory = Path(value).expanduser()
        if directory.exists() and not directory.is_dir():
            raise usage_error(f"'{directory}' is a file, not a directory")
        # The nearest part of the path that exists must let us create files (and folders) in it.
        existing = directory
        while not existing.exists():
            if existing.parent == existing:
                break
            existing = existing.parent
        if not existing.is_dir():
            raise usage_error(f"cannot create '{directory}': '{existing}' is a file")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise usage_error(f"cannot write to '{existing}': permission denied")
        return directory

    def _prepare(self, directory: Path) -> None:
        """Create the directory and prove a file can be written in it; on failure remove what was
        created and stop with one line."""
        missing = []
        part = directory
        while not part.exists():
            missing.append(part)
            part = part.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=directory):
                pass
        except OSError as error:
            for created in missing:  # deepest first
                if created.is_dir():
                    created.rmdir()
            raise usage_error(f"cannot write to '{directory}': {error.strerror or error}") from None
