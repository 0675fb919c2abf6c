"""`sonjog bench --network`: intent changes drained against the RouterOS emulator, and the overdue
sweep over the whole seeded ISP."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from sonjog.customers.models import ServiceIntent, Subscriber, Zone
from sonjog.flows.enforcement import overdue_sweep
from sonjog.network.enforcement import outbox_enqueue_many
from sonjog.network.models import OutboxCommand, OutboxStatus, Router
from sonjog.network.reconcile import served_subscribers
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.services import outbox_drain, router_create
from sonjog.operators.models import Operator

BENCH_USER = "bench"
BENCH_PASSWORD = "bench-router"


class _Rollback(Exception):
    pass


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0


def run_network_bench(*, changes: int, workers: int, progress: Callable[[str], None]) -> dict[str, Any]:
    root = Operator.objects.get(code="demo-isp")
    results: dict[str, Any] = {"network_changes": changes, "network_workers": workers}
    results["overdue_sweep_s"], results["overdue_sweep_suspended"] = _sweep_timing(root)
    progress("overdue sweep")

    emulator = RouterOSEmulator(username=BENCH_USER, password=BENCH_PASSWORD, identity="bench").start()
    try:
        router = router_create(
            operator=root,
            name="bench-router",
            address="127.0.0.1",
            api_port=emulator.port,
            username=BENCH_USER,
            password=BENCH_PASSWORD,
        )
        router.zones.set(Zone.objects.filter(operator__path__startswith=root.path, parent__isnull=True))
        served = list(served_subscribers(router).filter(service_intent=ServiceIntent.ACTIVE).order_by("pk")[:changes])
        for profile in {s.package.router_profile for s in served} | {router.suspended_profile}:
            emulator.add_profile(profile, rate_limit="10M/10M")
        emulator.bulk_load_secrets(
            [
                {
                    "name": s.pppoe_username,
                    "password": s.pppoe_password,
                    "profile": s.package.router_profile,
                    "comment": s.customer_id,
                }
                for s in served
            ]
        )
        progress("router loaded")
        results.update(_drain_timing(router, [s.pk for s in served], workers))
        results["network_router_secrets"] = len(emulator.secrets())
        progress("outbox drained")
    finally:
        emulator.stop()
    return results


def _sweep_timing(root: Operator) -> tuple[float, int]:
    """The daily sweep over every subscriber, from a state where everyone is active (rolled back)."""
    try:
        with transaction.atomic():
            Subscriber.objects.filter(operator__path__startswith=root.path, service_intent="suspended").update(
                service_intent="active"
            )
            started = time.perf_counter()
            result = overdue_sweep()
            seconds = time.perf_counter() - started
            raise _Rollback((seconds, result["suspended"]))
    except _Rollback as rollback:
        seconds, suspended = rollback.args[0]
    return round(seconds, 3), suspended


def _drain_timing(router: Router, subscriber_ids: list[int], workers: int) -> dict[str, Any]:
    """Suspend every chosen subscriber at once (one intent change each), then let `workers` drains
    apply them; latency is intent change -> confirmed router state, per command."""
    with transaction.atomic():
        Subscriber.objects.filter(pk__in=subscriber_ids).update(
            service_intent=ServiceIntent.SUSPENDED, service_intent_at=timezone.now()
        )
        outbox_enqueue_many(subscriber_ids, "bench")
    started = time.perf_counter()

    def drain() -> None:
        try:
            while outbox_drain(limit=200):
                pass
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    commands = OutboxCommand.objects.filter(router=router, requested_by="bench")
    latencies = [
        float(value)
        for value in commands.filter(status=OutboxStatus.DONE).values_list("latency_ms", flat=True)
        if value is not None
    ]
    done = len(latencies)
    return {
        "network_done": done,
        "network_not_done": commands.exclude(status=OutboxStatus.DONE).count(),
        "network_drain_s": round(seconds, 2),
        "network_changes_per_s": round(done / seconds, 1) if seconds else None,
        "network_latency_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "network_latency_p95_ms": round(_percentile(latencies, 0.95), 1) if latencies else None,
    }
