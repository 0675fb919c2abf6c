"""The jobs on two threads at once: separate PostgreSQL connections, committing for real."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from sonjog.automation import services
from sonjog.automation.models import JobRun
from sonjog.automation.selectors import credit_settlement_candidates
from sonjog.automation.tests.conftest import lose_allocations
from sonjog.billing.models import Allocation, Bill
from sonjog.billing.verification import ledger_verify
from sonjog.conftest import make_operator, make_package, make_subscriber, run_at_once
from sonjog.flows.payments import payment_receive
from sonjog.network import services as network_services
from sonjog.network.models import FupState, OutboxCommand

pytestmark = pytest.mark.django_db(transaction=True)


def assert_one_effective_run(results):
    assert all(isinstance(r, JobRun) for r in results), results
    statuses = sorted(r.status for r in results)
    # Either the runs overlapped (one did the work, the other found the job locked) or they did not
    # (the second found nothing left to do); never two runs doing the work side by side.
    assert statuses in (["ok", "ok"], ["ok", "skipped"]), statuses
    return [r for r in results if r.status == "ok"]


@pytest.fixture
def stranded_credit():
    operator = make_operator(vat_rate=Decimal("0"))
    package = make_package(operator, "1000.00", vat=False)
    today = dt.date.today()
    subscribers = []
    for _ in range(6):
        subscriber = make_subscriber(operator, package, activation_date=today - dt.timedelta(days=40))
        payment_receive(subscriber=subscriber, amount=Decimal("1500.00"), method="cash")
        lose_allocations(subscriber)
        subscribers.append(subscriber)
    return subscribers


def expected_allocation(subscribers):
    bills = Bill.objects.filter(subscriber__in=subscribers, reversed_at__isnull=True)
    return min(Decimal("1500.00") * len(subscribers), bills.aggregate(total=Sum("total"))["total"])


def test_the_settle_credit_job_on_two_threads_allocates_each_credit_once(stranded_credit):
    expected = expected_allocation(stranded_credit)
    ok_runs = assert_one_effective_run(
        run_at_once(
            lambda: services.job_run_now("automation.settle_credit"),
            lambda: services.job_run_now("automation.settle_credit"),
        )
    )
    assert sum(Decimal(run.outcome["allocated"]) for run in ok_runs) == expected
    assert Allocation.objects.aggregate(total=Sum("amount"))["total"] == expected
    assert credit_settlement_candidates() == []
    assert ledger_verify().ok


def test_two_settle_credit_bodies_without_the_job_lock_still_allocate_once(stranded_credit):
    """The subscriber lock alone keeps two settlements from allocating the same credit twice."""
    expected = expected_allocation(stranded_credit)
    results = run_at_once(services.settle_credit, services.settle_credit)
    assert all(isinstance(r, dict) for r in results), results
    assert sum(r["allocated"] for r in results) == expected
    assert Allocation.objects.aggregate(total=Sum("amount"))["total"] == expected
    assert ledger_verify().ok


def test_two_fair_usage_passes_at_once_throttle_once(fup_isp):
    _operator, people = fup_isp
    results = run_at_once(network_services.fair_usage_apply, network_services.fair_usage_apply)
    assert all(isinstance(r, dict) for r in results), results
    assert sum(r["throttled"] for r in results) == 1
    assert sum(r["commands"] for r in results) == 1
    assert list(FupState.objects.values_list("subscriber_id", flat=True)) == [people["heavy"].pk]
    assert OutboxCommand.objects.filter(subscriber=people["heavy"], status="pending").count() == 1


def test_the_fair_usage_job_on_two_threads_throttles_once(fup_isp):
    ok_runs = assert_one_effective_run(
        run_at_once(
            lambda: services.job_run_now("automation.fair_usage"),
            lambda: services.job_run_now("automation.fair_usage"),
        )
    )
    assert sum(run.outcome["throttled"] for run in ok_runs) == 1
    assert FupState.objects.count() == 1


@pytest.mark.parametrize(
    "name",
    [
        "automation.log_retention",
        "automation.online_payment_recheck",
        "automation.due_reminders",
        "automation.prepaid_expiry_notices",
    ],
)
def test_other_jobs_on_two_threads_are_recorded_once_each(name):
    results = run_at_once(lambda: services.job_run_now(name), lambda: services.job_run_now(name))
    assert_one_effective_run(results)
    assert JobRun.objects.filter(job_name=name).count() == 2
    assert not JobRun.objects.filter(job_name=name, status__in=["running", "error"]).exists()


def test_a_worker_runs_a_deferred_automation_job_and_it_is_recorded_as_periodic():
    """The real path: Procrastinate defers the task as its scheduler would (with a timestamp), a
    worker cycle runs it on a pool thread, and `recorded` writes the run before the thread's
    connection is closed."""
    from procrastinate.contrib.django import app

    from sonjog.core.jobs import run_worker_cycle

    app.tasks["automation.online_payment_recheck"].defer(timestamp=1_700_000_000)
    run_worker_cycle(queues=["billing"])
    (run,) = JobRun.objects.filter(job_name="automation.online_payment_recheck")
    assert (run.trigger, run.status, run.outcome["checked"]) == ("periodic", "ok", 0)
