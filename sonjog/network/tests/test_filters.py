"""The outbox's filters: by status and router within the caller's commands."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.http import QueryDict
from django.utils import timezone

from sonjog.conftest import make_operator, make_package, make_subscriber
from sonjog.network.filters import OutboxFilterSet
from sonjog.network.models import OutboxCommand, OutboxStatus
from sonjog.network.services import router_create

pytestmark = pytest.mark.django_db


def _command(subscriber, router, status) -> OutboxCommand:
    now = timezone.now()
    return OutboxCommand.objects.create(
        subscriber=subscriber, router=router, status=status, requested_by="test", requested_at=now, next_attempt_at=now
    )


def test_outbox_by_status_and_router():
    mine, theirs = make_operator(vat_rate=Decimal("0")), make_operator(vat_rate=Decimal("0"))
    joined = timezone.localdate() - dt.timedelta(days=10)
    subscriber = make_subscriber(mine, make_package(mine), joined)
    stranger = make_subscriber(theirs, make_package(theirs), joined)
    core = router_create(operator=mine, name="core", address="127.0.0.1", api_port=1)
    edge = router_create(operator=mine, name="edge", address="127.0.0.1", api_port=1)
    their_router = router_create(operator=theirs, name="theirs", address="127.0.0.1", api_port=1)
    OutboxCommand.objects.all().delete()  # whatever creating the subscribers queued
    failed = _command(subscriber, core, OutboxStatus.FAILED)
    done = _command(subscriber, edge, OutboxStatus.DONE)
    _command(stranger, their_router, OutboxStatus.FAILED)

    def listed(params=None):
        rows = OutboxCommand.objects.filter(subscriber__operator=mine)
        return set(OutboxFilterSet(QueryDict(params) if params else None, rows, operator_ids=[mine.pk]).qs)

    assert listed() == {failed, done}
    assert listed("status=failed") == {failed}
    assert listed(f"router={edge.pk}") == {done}
    assert listed(f"router={their_router.pk}") == set()
    bogus = OutboxFilterSet(QueryDict("status=bogus&router=x"), OutboxCommand.objects.all(), operator_ids=[mine.pk])
    assert set(bogus.form.errors) == {"status", "router"}
