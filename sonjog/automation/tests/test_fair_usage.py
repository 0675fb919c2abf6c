"""Fair usage: RADIUS traffic over the billing period against the package's allowance."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction

from sonjog.automation.models import JobRun
from sonjog.automation.services import job_run_now
from sonjog.catalog.models import Package
from sonjog.core.models import AuditEvent
from sonjog.network.fair_usage import fup_throttled_subscriber_ids, fup_usage_periods, period_usage_bytes
from sonjog.network.models import FupState, OutboxCommand
from sonjog.network.services import fair_usage_apply

pytestmark = pytest.mark.django_db
DHAKA = ZoneInfo("Asia/Dhaka")
D = dt.date
GB = 1_000_000_000


def dhaka(*parts):
    return dt.datetime(*parts).replace(tzinfo=DHAKA)


def test_usage_is_summed_over_the_current_period_only(fup_isp):
    _operator, people = fup_isp
    periods = fup_usage_periods()
    assert {p.subscriber_id for p in periods} == {people[n].pk for n in ("heavy", "light", "spanning")}
    heavy = next(p for p in periods if p.subscriber_id == people["heavy"].pk)
    assert (heavy.period_month, heavy.starts_at, heavy.ends_at) == (D(2027, 6, 1), dhaka(2027, 6, 1), dhaka(2027, 7, 1))
    assert heavy.allowance_bytes == GB
    usage = period_usage_bytes(periods)
    assert usage == {
        people["heavy"].pk: 1_100_000_000,
        people["light"].pk: 500_000_000,
        people["spanning"].pk: 800_000_000,
    }


def test_over_the_allowance_throttles_once_and_the_next_period_releases(fup_isp, frozen_clock):
    _operator, people = fup_isp
    heavy = people["heavy"]

    first = fair_usage_apply()
    assert first == {"checked": 3, "over_allowance": 1, "throttled": 1, "released": 0, "commands": 1}
    state = FupState.objects.get()
    assert (state.subscriber_id, state.period_month, state.usage_bytes, state.allowance_bytes) == (
        heavy.pk,
        D(2027, 6, 1),
        1_100_000_000,
        GB,
    )
    assert state.released_at is None and fup_throttled_subscriber_ids() == {heavy.pk}
    # The router command went through the outbox (merged into the pending one from activation).
    command = OutboxCommand.objects.get(subscriber=heavy, status="pending")
    assert command.requested_by == "fair usage"
    assert OutboxCommand.objects.get(subscriber=people["light"]).requested_by == "activation"
    assert AuditEvent.objects.filter(subscriber=heavy, action="subscriber.fup.throttled").count() == 1

    commands = OutboxCommand.objects.count()
    assert fair_usage_apply() == {"checked": 3, "over_allowance": 1, "throttled": 0, "released": 0, "commands": 0}
    assert FupState.objects.count() == 1 and OutboxCommand.objects.count() == commands

    # 2 July in Dhaka: a new period with no traffic yet; the throttle ends and the router is told.
    frozen_clock.now = dhaka(2027, 7, 2, 9).astimezone(dt.UTC)
    assert fair_usage_apply() == {"checked": 3, "over_allowance": 0, "throttled": 0, "released": 1, "commands": 1}
    state.refresh_from_db()
    assert state.released_at == frozen_clock.now and fup_throttled_subscriber_ids() == set()
    assert AuditEvent.objects.filter(subscriber=heavy, action="subscriber.fup.released").count() == 1
    assert fair_usage_apply()["released"] == 0


def test_moving_to_a_package_without_an_allowance_releases_the_throttle(fup_isp):
    _operator, people = fup_isp
    fair_usage_apply()
    from sonjog.customers.models import Subscriber

    # Set directly: the package-change service would also bill the change, which is not the point here.
    Subscriber.objects.filter(pk=people["heavy"].pk).update(package=Package.objects.get(name="Unlimited"))
    assert fair_usage_apply()["released"] == 1
    assert FupState.objects.get().released_at is not None


def test_the_database_allows_one_open_throttle_per_subscriber(fup_isp, frozen_clock):
    _operator, people = fup_isp
    fair_usage_apply()
    with pytest.raises(IntegrityError), transaction.atomic():
        FupState.objects.create(
            subscriber=people["heavy"],
            period_month=D(2027, 7, 1),
            usage_bytes=2 * GB,
            allowance_bytes=GB,
            throttled_at=frozen_clock.now,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        FupState.objects.create(
            subscriber=people["light"],
            period_month=D(2027, 6, 1),
            usage_bytes=GB // 2,
            allowance_bytes=GB,
            throttled_at=frozen_clock.now,
        )


def test_the_fair_usage_job_records_its_outcome(fup_isp):
    run = job_run_now("automation.fair_usage")
    assert run.status == JobRun.Status.OK and run.outcome["throttled"] == 1
    assert job_run_now("automation.fair_usage").outcome["throttled"] == 0
