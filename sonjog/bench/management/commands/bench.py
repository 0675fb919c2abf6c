from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from sonjog.bench.billing import run_bench
from sonjog.bench.floats import FLOAT_ROUNDS, run_float_bench
from sonjog.bench.gateways import GATEWAY_STEPS, run_gateway_bench
from sonjog.bench.network import run_network_bench
from sonjog.bench.transfer import run_import_bench
from sonjog.core.cli import SonjogCommand, int_arg, to_json, usage_error
from sonjog.core.progress import Progress
from sonjog.customers.models import Subscriber


class Command(SonjogCommand):
    help = "Seed a synthetic ISP into an EMPTY database and print the performance figures."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--subscribers", type=int_arg(100, 1_000_000), default=30000)
        parser.add_argument("--months", type=int_arg(2, 120), default=36)
        parser.add_argument(
            "--network", action="store_true", help="also drain intent changes against an emulated router"
        )
        parser.add_argument("--network-changes", type=int_arg(1, 1_000_000), default=10000)
        parser.add_argument("--network-workers", type=int_arg(1, 64), default=2)
        parser.add_argument(
            "--send-sample",
            type=int_arg(1, 1_000_000),
            default=3000,
            help="reminders sent through the local gateway to time sending",
        )
        parser.add_argument("--send-workers", type=int_arg(1, 64), default=4, help="worker slots sending them")
        parser.add_argument(
            "--import-rows", type=int_arg(0, 100_000), default=20000, help="rows of the import benchmark (0: skip it)"
        )
        parser.add_argument("--import-only", action="store_true", help="run only the import benchmark")
        parser.add_argument(
            "--floats",
            action="store_true",
            help="also seed a reseller tree on floats (as many subscribers and months) and time a month's "
            "generation with and without the floats' charges",
        )
        parser.add_argument("--floats-only", action="store_true", help="run only the float benchmark")
        parser.add_argument(
            "--gateways",
            action="store_true",
            help="also pay suspended subscribers online at once (SSLCommerz emulator, every IPN twice, through "
            "uvicorn and a worker) and time payment -> router enabled",
        )
        parser.add_argument("--gateways-only", action="store_true", help="run only the online payment benchmark")
        parser.add_argument(
            "--gateway-payments", type=int_arg(1, 100_000), default=1000, help="online payments of that benchmark"
        )
        parser.add_argument(
            "--gateway-worker-concurrency",
            type=int_arg(1, 64),
            default=4,
            help="job slots of its `sonjog worker` (the router commands)",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if Subscriber.objects.exists():
            raise usage_error(
                "this database already holds subscribers; bench seeds its own data, so point it at an empty one "
                "(e.g. SONJOG_VAR_DIR=/tmp/sonjog-bench sonjog migrate, then the same variable for sonjog bench)"
            )
        if options["import_only"]:
            results = run_import_bench(rows=options["import_rows"] or 20000)
            self._print(results, options["json"])
            return
        if options["gateways_only"]:
            progress = Progress(GATEWAY_STEPS, "bench", enabled=True)
            results = run_gateway_bench(
                payments=options["gateway_payments"],
                worker_concurrency=options["gateway_worker_concurrency"],
                progress=lambda note: progress.advance(note=note),
            )
            self._print(results, options["json"])
            return
        float_steps = options["months"] + 3 + FLOAT_ROUNDS
        if options["floats_only"]:
            progress = Progress(float_steps, "bench", enabled=True)
            results = run_float_bench(
                subscribers=options["subscribers"],
                months=options["months"],
                progress=lambda note: progress.advance(note=note),
            )
            self._print(results, options["json"])
            return
        steps = (
            options["months"]
            + 14
            + (3 if options["network"] else 0)
            + (float_steps if options["floats"] else 0)
            + (GATEWAY_STEPS if options["gateways"] else 0)
        )
        progress = Progress(steps, "bench", enabled=True)
        results = run_bench(
            subscribers=options["subscribers"],
            months=options["months"],
            progress=lambda note: progress.advance(note=note),
            send_sample=options["send_sample"],
            send_workers=options["send_workers"],
        )
        if options["network"]:
            results.update(
                run_network_bench(
                    changes=options["network_changes"],
                    workers=options["network_workers"],
                    progress=lambda note: progress.advance(note=note),
                )
            )
        if options["floats"]:
            results.update(
                run_float_bench(
                    subscribers=options["subscribers"],
                    months=options["months"],
                    progress=lambda note: progress.advance(note=note),
                )
            )
        if options["gateways"]:
            results.update(
                run_gateway_bench(
                    payments=options["gateway_payments"],
                    worker_concurrency=options["gateway_worker_concurrency"],
                    progress=lambda note: progress.advance(note=note),
                )
            )
        if options["import_rows"]:
            results.update(run_import_bench(rows=options["import_rows"]))
        self._print(results, options["json"])

    def _print(self, results: dict[str, Any], as_json: bool) -> None:
        if as_json:
            self.stdout.write(to_json(results))
            return
        for key, value in results.items():
            self.stdout.write(f"{key:<28} {value}")
