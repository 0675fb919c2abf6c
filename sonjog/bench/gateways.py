"""`sonjog bench --gateways`: N suspended subscribers pay online at once, every IPN arrives twice
(issue 15: 0 duplicates, payment -> router enabled p95 <= 5 s, and the throughput).

The set-up goes through the real services and the real processes, as production runs them: one ISP
(`bench-gw-isp`) with one package, one zone and one router on the RouterOS emulator; N subscribers
signed up 45 days ago (so their first bill is past due and grace), provisioned on the router by a
`sonjog worker` process, then suspended by the overdue sweep (secrets disabled on the emulator by the
same worker); an SSLCommerz store on the gateway emulator. SSLCommerz because its IPN is a plain
form post signed by the store (`verify_sign`): the bench posts exactly the signed fields the
emulator produced for the payment, so the endpoint checks a genuine signature and asks the gateway
as it would in production. (bKash's webhook is a message signed with the gateway's certificate,
which only the emulator can produce, and it posts it itself, one delivery after the other.)

Then N checkouts are opened (`checkout_start`, from CHECKOUT_THREADS threads), the emulator pays
every one (its own IPN is off: `ipn_times=0`), and the bench posts each completion twice to
`/hooks/gateways/sslcommerz/` on uvicorn (`web_workers` processes, as deployed), from `clients`
threads taking the deliveries in the order a1, a1, a2, a2, ...: the two copies of one completion
leave together from two threads and race for the attempt's lock. Meanwhile the worker (network queue
only, so the periodic online-payment recheck cannot settle an attempt the IPN should) runs the
reconnections on the router. Both emulators run in the bench's own process, as in the network bench,
and share its interpreter with the client threads.

Payment -> enabled is, per subscriber, the time from the first copy of its IPN leaving the bench to
its secret first seen enabled on the emulator, polled every POLL_SECONDS (the router's own state,
not Sonjog's record of it); `OutboxCommand.completed_at` gives the same figure from Sonjog's side.
The baseline of the same run: the endpoint's round trip for an unknown reference (stored, looked
up, refused), one client and `clients` at once, and bare `payment_receive` inside transactions that
are rolled back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import IO, Any, TypeVar

import httpx
from django.db import connection, transaction
from django.db.models import Count, Min

from sonjog.billing.models import Payment, PaymentMethod
from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.terms import operator_today
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.customers.services import zone_create
from sonjog.flows.catalog import package_create
from sonjog.flows.enforcement import overdue_sweep
from sonjog.flows.gateways import checkout_start
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import subscriber_create
from sonjog.gateways.emulator.sslcommerz import SslcommerzEmulator
from sonjog.gateways.models import AttemptState, Gateway, InboundRequest, PaymentAttempt
from sonjog.gateways.services import gateway_account_create
from sonjog.network.models import OutboxCommand, OutboxStatus
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.routers import router_create
from sonjog.operators.models import Operator
from sonjog.operators.services import operator_create

GATEWAY_STEPS = 6
OPERATOR_CODE = "bench-gw-isp"
ROUTER_USER = "bench"
ROUTER_PASSWORD = "bench-router"
STORE_ID = "benchstore"
STORE_PASSWORD = "benchstore@ssl"
PROFILE = "home-10m"
HOOK_PATH = f"/hooks/gateways/{Gateway.SSLCOMMERZ}/"
POLL_SECONDS = 0.05
# Checkouts are set-up, not the measurement: opened from a few threads, since the gateway emulator's
# listen backlog is the standard library's 5 and 32 clients at once find connections reset.
CHECKOUT_THREADS = 4
# The baseline's sequential round trips, and how many bare payments are timed (rolled back).
BASELINE_ROUND_TRIPS = 200
BASELINE_PAYMENTS = 50

T = TypeVar("T")
R = TypeVar("R")


class _Rollback(Exception):
    pass


def run_gateway_bench(
    *,
    payments: int,
    progress: Callable[[str], None],
    clients: int = 32,
    web_workers: int = 2,
    worker_concurrency: int = 4,
    baseline_requests: int = BASELINE_ROUND_TRIPS,
) -> dict[str, Any]:
    """Build the ISP, measure the baseline, then the payments (see the module's docstring); the
    figures as one flat dict of `gateway_*` keys."""
    results: dict[str, Any] = {
        "gateway_payments": payments,
        "gateway_clients": clients,
        "gateway_web_workers": web_workers,
        "gateway_worker_concurrency": worker_concurrency,
        "gateway": Gateway.SSLCOMMERZ.value,
    }
    started = time.perf_counter()
    router_emulator = RouterOSEmulator(username=ROUTER_USER, password=ROUTER_PASSWORD, identity="bench-gw").start()
    gateway = SslcommerzEmulator(stores={STORE_ID: STORE_PASSWORD}, ipn_times=0).start()
    try:
        with _process(_worker_command(worker_concurrency), "sonjog worker") as worker:
            operator = _isp(router_emulator.port, payments)
            progress("gateway ISP and subscribers")
            _suspend(operator, router_emulator, worker)
            progress("gateway subscribers suspended")
            port = _free_port()
            with _process(_web_command(port, web_workers), "uvicorn") as web:
                site = f"http://127.0.0.1:{port}/"
                _wait_for(lambda: _answers(site + HOOK_PATH.lstrip("/")), "uvicorn to serve", 90, web)
                results["gateway_setup_s"] = round(time.perf_counter() - started, 1)
                results.update(_baseline(site, operator, clients, baseline_requests))
                progress("gateway baseline")
                attempts, opened_seconds = _checkouts(operator, gateway, site)
                results["gateway_checkouts_per_s"] = round(len(attempts) / opened_seconds, 1)
                notices = [(attempt, gateway.pay(attempt.gateway_payment_id, method="bkash")) for attempt in attempts]
                progress("gateway checkouts opened and paid")
                results.update(_deliver_and_measure(operator, site, notices, router_emulator, clients, progress))
        results.update(_outcomes(operator))
    finally:
        gateway.stop()
        router_emulator.stop()
    progress("gateway figures")
    return results


# -- the ISP ---------------------------------------------------------------------------------------
def _isp(router_port: int, count: int) -> Operator:
    """The operator, its package, zone and router, and `count` subscribers signed up 45 days ago."""
    operator = operator_create(
        code=OPERATOR_CODE,
        name="Gateway bench ISP",
        customer_id_prefix="GW",
        vat_rate=Decimal("0"),
        grace_days=3,
        due_days=7,
    )
    package = package_create(
        operator=operator,
        name="Home 10 Mbps",
        price=Decimal("800.00"),
        download_kbps=10_240,
        upload_kbps=10_240,
        router_profile=PROFILE,
        vat_applicable=False,
    )
    zone = zone_create(operator=operator, name="Bench zone")
    router_create(
        operator=operator,
        name="bench-gw-router",
        address="127.0.0.1",
        api_port=router_port,
        username=ROUTER_USER,
        password=ROUTER_PASSWORD,
        zones=[zone],
    )
    activation = operator_today(operator) - dt.timedelta(days=45)
    for number in range(1, count + 1):
        subscriber_create(
            operator=operator,
            name=f"Gateway subscriber {number}",
            phone=f"017{number:08d}",
            package=package,
            zone=zone,
            activation_date=activation,
        )
    return operator


def _suspend(operator: Operator, emulator: RouterOSEmulator, worker: _Child) -> None:
    """The overdue sweep suspends them all; the worker disables every secret on the router."""
    count = Subscriber.objects.filter(operator=operator).count()
    suspended = overdue_sweep(operator=operator)["suspended"]
    if suspended != count:
        raise RuntimeError(f"gateway bench: the sweep suspended {suspended} of {count} subscribers")
    names = set(Subscriber.objects.filter(operator=operator).values_list("pppoe_username", flat=True))

    def all_disabled() -> bool:
        secrets = {row["name"]: row for row in emulator.secrets() if row["name"] in names}
        return len(secrets) == len(names) and all(row.get("disabled") == "true" for row in secrets.values())

    _wait_for(lambda: _network_idle(operator) and all_disabled(), "the worker to suspend everyone", 120 + count, worker)


def _network_idle(operator: Operator) -> bool:
    """Nothing left for the worker: no router command of the operator waiting or running, and no
    network job due (a full run leaves the earlier benches' jobs; they go first)."""
    failed = OutboxCommand.objects.filter(subscriber__operator=operator, status=OutboxStatus.FAILED).count()
    if failed:
        raise RuntimeError(f"gateway bench: {failed} router commands failed")
    if OutboxCommand.objects.filter(
        subscriber__operator=operator, status__in=[OutboxStatus.PENDING, OutboxStatus.RUNNING]
    ).exists():
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE queue_name = 'network'
                   AND status IN ('todo', 'doing') AND (scheduled_at IS NULL OR scheduled_at <= now()))"""
        )
        row = cursor.fetchone()
    return not (row and row[0])


# -- the processes ---------------------------------------------------------------------------------
def _child_env() -> dict[str, str]:
    """This process's environment, pointed at the database this process uses (a test's, in tests)."""
    env = dict(os.environ)
    name = str(connection.settings_dict["NAME"])
    if env.get("DATABASE_URL"):
        parts = urllib.parse.urlsplit(env["DATABASE_URL"])
        env["DATABASE_URL"] = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    else:
        env["SONJOG_DATABASE_NAME"] = name
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def _worker_command(concurrency: int) -> list[str]:
    # The network queue only: the periodic online-payment recheck (billing queue) would otherwise
    # settle attempts a minute after they open, before their IPN, and the figure would not be the IPN's.
    return [sys.executable, "-m", "sonjog.cli", "worker", "--queues", "network", "--concurrency", str(concurrency)]


def _web_command(port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "sonjog.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]


class _Child:
    """A process the bench runs (the worker, the web server), its output kept in a temporary file."""

    def __init__(self, command: list[str], label: str, log: IO[bytes]) -> None:
        self.label = label
        self.log = log
        self.process = subprocess.Popen(command, env=_child_env(), stdout=self.log, stderr=subprocess.STDOUT)

    def check(self) -> None:
        """Raise, with the end of its output, if the process has ended."""
        if self.process.poll() is not None:
            self.log.seek(0)
            output = self.log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"gateway bench: {self.label} exited with {self.process.returncode}: {output}")

    def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it has not ended within 20 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextlib.contextmanager
def _process(command: list[str], label: str) -> Iterator[_Child]:
    with tempfile.TemporaryFile() as log:
        child = _Child(command, label, log)
        try:
            yield child
            child.check()
        finally:
            child.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    """The hook answers (a GET is refused with 405 before anything is stored)."""
    try:
        return httpx.get(url, timeout=2).status_code == 405
    except httpx.HTTPError:
        return False


def _wait_for(condition: Callable[[], bool], what: str, seconds: float, child: _Child | None = None) -> None:
    """Wait until `condition()` holds; give up after `seconds`, or at once if `child` has ended."""
    deadline = time.monotonic() + seconds
    while not condition():
        if child is not None:
            child.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"gateway bench: timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.2)


# -- threads ---------------------------------------------------------------------------------------
def _in_threads(items: Sequence[T], function: Callable[[httpx.Client, T], R], threads: int) -> list[R]:
    """`function(client, item)` for every item, taken in order by `threads` threads (each with its
    own HTTP client and database connection); the results in the items' order. The first error
    raised in any thread is raised here once all have stopped."""
    work: queue.Queue[int] = queue.Queue()
    for index in range(len(items)):
        work.put(index)
    results: list[Any] = [None] * len(items)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with httpx.Client(timeout=60) as client:
                while not errors:
                    try:
                        index = work.get_nowait()
                    except queue.Empty:
                        return
                    results[index] = function(client, items[index])
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    pool = [threading.Thread(target=run, name=f"gateway-bench-{n}") for n in range(min(threads, len(items)))]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0


# -- the baseline ----------------------------------------------------------------------------------
def _unknown_notice(number: int) -> dict[str, str]:
    return {"tran_id": f"SJBENCHUNKNOWN{number:06d}", "val_id": "x", "status": "VALID", "amount": "800.00"}


def _baseline(site: str, operator: Operator, clients: int, requests: int) -> dict[str, Any]:
    """The endpoint's round trip for a reference nobody issued (stored, looked up, refused with 404):
    `requests` one after another, then `requests` from `clients` threads at once; and bare
    `payment_receive`, rolled back. Any other answer than 404 is counted, not timed."""
    url = site + HOOK_PATH.lstrip("/")

    def post(client: httpx.Client, number: int) -> tuple[int, float]:
        begun = time.perf_counter()
        answer = client.post(url, data=_unknown_notice(number))
        return answer.status_code, (time.perf_counter() - begun) * 1000

    with httpx.Client(timeout=60) as client:
        for number in range(20):  # warm-up: both web processes, their imports and plans
            post(client, number)
        sequential = [post(client, number) for number in range(requests)]
    begun = time.perf_counter()
    concurrent = _in_threads(list(range(requests)), post, clients)
    concurrent_seconds = time.perf_counter() - begun
    timings = [elapsed for status, elapsed in sequential if status == 404]
    return {
        "gateway_unknown_reference_p50_ms": round(statistics.median(timings), 1) if timings else None,
        "gateway_unknown_reference_p95_ms": round(_percentile(timings, 0.95), 1) if timings else None,
        "gateway_unknown_reference_per_s": round(requests / concurrent_seconds, 1),
        "gateway_unknown_reference_not_404": dict(
            Counter(status for status, _elapsed in sequential + concurrent if status != 404)
        ),
        **_payment_receive_baseline(operator),
    }


def _payment_receive_baseline(operator: Operator) -> dict[str, Any]:
    """`payment_receive` alone (allocation, receipt, reactivation, the router command queued, the
    message), for as many subscribers as the gateway payments will pay, each rolled back."""
    subscribers = list(Subscriber.objects.filter(operator=operator).order_by("pk")[:BASELINE_PAYMENTS])
    timings: list[float] = []
    for number, subscriber in enumerate(subscribers):
        owed = subscriber_balance(subscriber.pk)
        try:
            with transaction.atomic():
                begun = time.perf_counter()
                payment_receive(
                    subscriber=subscriber,
                    amount=owed,
                    method=PaymentMethod.CARD,
                    reference=f"BENCH-BASELINE-{number}",
                    confirm_duplicate=True,
                    gateway=Gateway.SSLCOMMERZ,
                    gateway_transaction_id=f"BENCH-BASELINE-{number}",
                )
                timings.append((time.perf_counter() - begun) * 1000)
                raise _Rollback
        except _Rollback:
            pass
    return {
        "gateway_payment_receive_p50_ms": round(statistics.median(timings), 1),
        "gateway_payment_receive_p95_ms": round(_percentile(timings, 0.95), 1),
    }


# -- the payments ----------------------------------------------------------------------------------
def _checkouts(operator: Operator, gateway: SslcommerzEmulator, site: str) -> tuple[list[PaymentAttempt], float]:
    """One checkout per subscriber for what it owes, opened at the gateway from CHECKOUT_THREADS threads."""
    account = gateway_account_create(
        operator=operator,
        gateway=Gateway.SSLCOMMERZ,
        name="SSLCommerz",
        base_url=gateway.url,
        merchant_account=STORE_ID,
        credentials={"store_id": STORE_ID, "store_password": STORE_PASSWORD},
    )
    subscribers = list(Subscriber.objects.filter(operator=operator).select_related("operator").order_by("pk"))

    def start(_client: httpx.Client, subscriber: Subscriber) -> PaymentAttempt:
        return checkout_start(
            subscriber=subscriber,
            account=account,
            amount=subscriber_balance(subscriber.pk),
            source=PaymentAttempt.Source.SUSPENSION,
            return_url=site + "pay/{reference}/return/",
            notify_url=site + HOOK_PATH.lstrip("/"),
        )

    begun = time.perf_counter()
    attempts = _in_threads(subscribers, start, CHECKOUT_THREADS)
    seconds = time.perf_counter() - begun
    refused = [attempt for attempt in attempts if attempt.state != AttemptState.PENDING]
    if refused:
        raise RuntimeError(f"gateway bench: {len(refused)} checkouts did not open: {refused[0].last_error}")
    return attempts, seconds


class _RouterWatch:
    """Polls the router emulator and notes when each watched secret is first seen enabled."""

    def __init__(self, emulator: RouterOSEmulator, names: set[str]) -> None:
        self.emulator = emulator
        self.names = names
        self.enabled_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-bench-router-watch", daemon=True)

    def __enter__(self) -> _RouterWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(POLL_SECONDS)

    def poll(self) -> None:
        # The live table under the device lock, not `secrets()`: rendering 1,000 rows every poll
        # would cost the emulator (and the bench's one interpreter) twenty times as much.
        moment = time.time()
        with self.emulator.lock:
            rows = [(row.get("name"), row.get("disabled")) for row in self.emulator.state.table("ppp/secret").rows]
        for name, disabled in rows:
            if name in self.names and name not in self.enabled_at and disabled != "true":
                self.enabled_at[str(name)] = moment

    @property
    def complete(self) -> bool:
        return len(self.enabled_at) == len(self.names)


def _deliver_and_measure(
    operator: Operator,
    site: str,
    notices: list[tuple[PaymentAttempt, dict[str, str]]],
    emulator: RouterOSEmulator,
    clients: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Post every IPN twice, both copies at once, and time each subscriber's way back online."""
    url = site + HOOK_PATH.lstrip("/")
    login_of = dict(Subscriber.objects.filter(operator=operator).values_list("pk", "pppoe_username"))
    first_sent: dict[str, float] = {}
    sent_lock = threading.Lock()
    deliveries = [notice for notice in notices for _copy in range(2)]

    def deliver(client: httpx.Client, notice: tuple[PaymentAttempt, dict[str, str]]) -> tuple[int, str, float]:
        attempt, fields = notice
        with sent_lock:
            first_sent.setdefault(attempt.merchant_reference, time.time())
        begun = time.perf_counter()
        try:
            answer = client.post(url, data=fields)
        except httpx.HTTPError as error:  # counted: a gateway would post it again later
            return 0, type(error).__name__, (time.perf_counter() - begun) * 1000
        elapsed_ms = (time.perf_counter() - begun) * 1000
        is_json = answer.headers.get("content-type") == "application/json"
        outcome = answer.json().get("outcome", "") if is_json else f"http_{answer.status_code}"
        return answer.status_code, str(outcome), elapsed_ms

    phase_started = dt.datetime.now(tz=dt.UTC)
    with _RouterWatch(emulator, {login_of[attempt.subscriber_id] for attempt, _ in notices}) as watch:
        begun = time.perf_counter()
        answers = _in_threads(deliveries, deliver, clients)
        seconds = time.perf_counter() - begun
        progress("gateway IPNs delivered twice")
        with contextlib.suppress(RuntimeError):  # those never enabled show in gateway_enabled_on_router
            _wait_for(lambda: watch.complete, "every secret enabled", 60 + len(notices) / 5)
        watch.poll()
    by_reference = {attempt.merchant_reference: login_of[attempt.subscriber_id] for attempt, _ in notices}
    enabled = [
        watch.enabled_at[login] - first_sent[reference]
        for reference, login in by_reference.items()
        if login in watch.enabled_at
    ]
    completed = dict(
        OutboxCommand.objects.filter(
            subscriber__operator=operator, status=OutboxStatus.DONE, requested_at__gte=phase_started
        )
        .values_list("subscriber_id")
        .annotate(first=Min("completed_at"))
    )
    reference_of = {attempt.subscriber_id: attempt.merchant_reference for attempt, _ in notices}
    done = [
        completed_at.timestamp() - first_sent[reference_of[subscriber_id]]
        for subscriber_id, completed_at in completed.items()
        if subscriber_id in reference_of and completed_at is not None
    ]
    round_trips = [elapsed for _status, _outcome, elapsed in answers]
    return {
        "gateway_ipn_deliveries": len(deliveries),
        "gateway_ipn_not_ok": sum(1 for status, _outcome, _elapsed in answers if status != 200),
        "gateway_ipn_answers": dict(Counter(outcome for _status, outcome, _elapsed in answers)),
        "gateway_completions_s": round(seconds, 2),
        "gateway_completions_per_s": round(len(notices) / seconds, 1),
        "gateway_ipn_p50_ms": round(statistics.median(round_trips), 1),
        "gateway_ipn_p95_ms": round(_percentile(round_trips, 0.95), 1),
        "gateway_enabled_on_router": len(enabled),
        "gateway_paid_to_enabled_p50_s": round(statistics.median(enabled), 2) if enabled else None,
        "gateway_paid_to_enabled_p95_s": round(_percentile(enabled, 0.95), 2) if enabled else None,
        "gateway_paid_to_enabled_max_s": round(max(enabled), 2) if enabled else None,
        "gateway_paid_to_outbox_done_p50_s": round(statistics.median(done), 2) if done else None,
        "gateway_paid_to_outbox_done_p95_s": round(_percentile(done, 0.95), 2) if done else None,
    }


def _outcomes(operator: Operator) -> dict[str, Any]:
    """What the database holds afterwards: attempts by state, payments per subscriber (one attempt
    each, so a second payment is a duplicate), the IPNs' recorded outcomes, who is back online."""
    states = Counter(PaymentAttempt.objects.filter(operator=operator).values_list("state", flat=True))
    per_subscriber = (
        Payment.objects.filter(subscriber__operator=operator).values("subscriber_id").annotate(count=Count("pk"))
    )
    recorded = sum(row["count"] for row in per_subscriber)
    stored = Counter(
        InboundRequest.objects.filter(attempt__operator=operator, kind=InboundRequest.Kind.IPN).values_list(
            "outcome", flat=True
        )
    )
    return {
        "gateway_applied": states.get(AttemptState.APPLIED, 0),
        "gateway_attempt_states": dict(states),
        "gateway_payments_recorded": recorded,
        "gateway_duplicates": recorded - len(per_subscriber),
        "gateway_ipn_stored_outcomes": dict(stored),
        "gateway_reactivated": Subscriber.objects.filter(
            operator=operator, service_intent=ServiceIntent.ACTIVE
        ).count(),
    }
