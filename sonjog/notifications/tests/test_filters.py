"""The delivery log's filters: an unusable value drops only its own filter, and a bulk send of
another subtree matches nothing in the caller's scoped messages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.http import QueryDict
from django.utils import timezone

from sonjog.conftest import make_operator
from sonjog.notifications.filters import MessageFilterSet
from sonjog.notifications.models import BulkSend, Message
from sonjog.notifications.selectors import message_log

pytestmark = pytest.mark.django_db


def _message(operator, **fields) -> Message:
    now = timezone.now()
    values = {
        "operator": operator,
        "channel": "sms",
        "provider": "generic_http",
        "event": "due_reminder",
        "recipient": "+8801712345678",
        "body": "Your bill is due.",
        "next_attempt_at": now,
        "created_at": now,
        **fields,
    }
    return Message.objects.create(**values)


@pytest.fixture
def world():
    mine, theirs = make_operator(vat_rate=Decimal("0")), make_operator(vat_rate=Decimal("0"))
    now = timezone.now()
    my_bulk = BulkSend.objects.create(operator=mine, text="Hello", created_at=now)
    their_bulk = BulkSend.objects.create(operator=theirs, text="Hello", created_at=now)
    rows = {
        "reminder": _message(mine, created_at=now - dt.timedelta(minutes=3)),
        "failed": _message(mine, status="failed", failure_reason="provider_error", channel="email", recipient="a@b.c"),
        "bulk": _message(mine, event="bulk", bulk=my_bulk, created_at=now - dt.timedelta(minutes=1)),
        "theirs": _message(theirs, event="bulk", bulk=their_bulk),
    }
    return {"mine": mine, "my_bulk": my_bulk, "their_bulk": their_bulk, "rows": rows}


def _log(world, params=None) -> MessageFilterSet:
    mine = world["mine"]
    return MessageFilterSet(
        QueryDict(params) if params is not None else None,
        Message.objects.filter(operator_id__in=[mine.pk]),
        operator_ids=[mine.pk],
    )


def _keys(world, filters: MessageFilterSet) -> set[str]:
    names = {row.pk: name for name, row in world["rows"].items()}
    return {names[row.pk] for row in filters.qs}


def test_each_filter_narrows_the_scoped_log(world):
    assert _keys(world, _log(world)) == {"reminder", "failed", "bulk"}
    assert _keys(world, _log(world, "status=failed")) == {"failed"}
    assert _keys(world, _log(world, "channel=email")) == {"failed"}
    assert _keys(world, _log(world, "event=bulk")) == {"bulk"}
    assert _keys(world, _log(world, f"bulk={world['my_bulk'].pk}")) == {"bulk"}
    assert _keys(world, _log(world, f"bulk={world['their_bulk'].pk}")) == set()


def test_an_unusable_value_is_an_error_that_drops_only_its_filter(world):
    filters = _log(world, "status=nonsense&channel=sms&bulk=x1")
    assert set(filters.form.errors) == {"status", "bulk"}
    assert filters.value("status") is None and filters.value("channel") == "sms"
    assert _keys(world, filters) == {"reminder", "bulk"}


def test_the_log_pages_newest_first_over_the_filtered_rows(world):
    first, more = message_log(_log(world, "channel=sms").qs, limit=1)
    assert [row.pk for row in first] == [world["rows"]["bulk"].pk] and more
    second, more = message_log(_log(world, "channel=sms").qs, before=(first[0].created_at, first[0].pk), limit=1)
    assert [row.pk for row in second] == [world["rows"]["reminder"].pk] and not more
