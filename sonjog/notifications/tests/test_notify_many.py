"""`notify_event_many`: one batch of one event's notices, each subscriber with its own language, channels
and values, in a fixed number of queries, once per dedup key even when two workers race."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from sonjog.conftest import make_package
from sonjog.notifications.exceptions import NotificationError, UnknownEvent
from sonjog.notifications.models import Message
from sonjog.notifications.services import (
    Notice,
    notification_settings_save,
    notify_event_many,
    provider_account_create,
    subscriber_preference_save,
    template_save,
)
from sonjog.notifications.tests.conftest import Isp, add_subscriber, make_isp, scheduled_jobs
from sonjog.notifications.tests.fakes import SslWirelessFake

DUE = {"amount_due": Decimal("750.00"), "due_date": dt.date(2027, 6, 20)}


@pytest.fixture
def isp(gateway: SslWirelessFake) -> Isp:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE task_name = 'notifications.send_message'")
    isp = make_isp(gateway, email="first@isp.example")
    provider_account_create(operator=isp.operator, name="Mail", kind="smtp", sender_id="billing@isp.example")
    return isp


@pytest.mark.django_db
def test_each_subscriber_gets_its_own_language_channels_and_values(isp: Isp, frozen_clock) -> None:
    bangla = add_subscriber(isp.operator, isp.package, name="করিম", email="karim@isp.example")
    subscriber_preference_save(subscriber=bangla, language="bn")
    muted = add_subscriber(isp.operator, isp.package, name="Muted Sms", email="muted@isp.example")
    subscriber_preference_save(subscriber=muted, muted_channels=["sms"])
    stranger_isp = make_isp(None)  # another operator's subscriber is never messaged, whatever the caller asks
    notices = [
        Notice(isp.subscriber.pk, DUE, dedup_key="r:1"),
        Notice(bangla.pk, DUE, channels=["sms"], dedup_key="r:2"),
        Notice(muted.pk, DUE, dedup_key="r:3"),
        Notice(stranger_isp.subscriber.pk, DUE, dedup_key="r:4"),
    ]
    ids = notify_event_many(operator=isp.operator, event="due_reminder", notices=notices)

    messages = list(Message.objects.filter(pk__in=ids).order_by("pk"))
    assert [(m.subscriber_id, m.channel, m.language) for m in messages] == [
        (isp.subscriber.pk, "sms", "en"),
        (isp.subscriber.pk, "email", "en"),
        (bangla.pk, "sms", "bn"),
        (muted.pk, "email", "en"),
    ]
    english_sms, english_mail, bangla_sms, _muted_mail = messages
    assert english_sms.body == (
        f"Reminder: Rahim Uddin, BDT 750.00 is due on 20 Jun 2027 (ID {isp.subscriber.customer_id}). "
        f"Please pay to stay connected. {isp.operator.name}"
    )
    assert (english_sms.encoding, english_sms.segments, english_sms.cost) == ("GSM-7", 1, Decimal("0.25"))
    assert english_mail.subject == "Payment reminder" and english_mail.recipient == "first@isp.example"
    assert "করিম" in bangla_sms.body and "৳" in bangla_sms.body and bangla_sms.encoding == "UCS-2"
    assert all(m.dedup_key.startswith("r:") and m.status == "queued" for m in messages)
    jobs = [job[0] for job in scheduled_jobs()]
    assert all(jobs.count(message_id) == 1 for message_id in ids)  # one send job per message


@pytest.mark.django_db
def test_a_repeat_queues_nothing_and_the_operator_wording_wins(isp: Isp, frozen_clock) -> None:
    template_save(
        operator=isp.operator,
        event="due_reminder",
        channel="sms",
        language="en",
        body="{{ name }} owes {{ amount_due }}, balance {{ balance }}",
    )
    notices = [Notice(isp.subscriber.pk, DUE, channels=["sms"], dedup_key="once")]
    [first] = notify_event_many(operator=isp.operator, event="due_reminder", notices=notices)
    assert notify_event_many(operator=isp.operator, event="due_reminder", notices=notices) == []
    # The balance is read from the ledger because the wording quotes it and the caller did not supply it.
    assert Message.objects.get(pk=first).body == "Rahim Uddin owes BDT 750.00, balance BDT 0.00"


@pytest.mark.django_db
def test_muted_event_unknown_event_and_bad_context(isp: Isp) -> None:
    with pytest.raises(UnknownEvent):
        notify_event_many(operator=isp.operator, event="birthday", notices=[Notice(isp.subscriber.pk)])
    with pytest.raises(NotificationError, match="unknown channel"):
        notify_event_many(operator=isp.operator, event="welcome", notices=[Notice(isp.subscriber.pk, channels=["fax"])])
    with pytest.raises(NotificationError, match="unknown template variable"):
        notify_event_many(operator=isp.operator, event="welcome", notices=[Notice(isp.subscriber.pk, {"shoe": 1})])
    notification_settings_save(operator=isp.operator, muted_events=["welcome"])
    assert notify_event_many(operator=isp.operator, event="welcome", notices=[Notice(isp.subscriber.pk)]) == []
    assert not Message.objects.filter(operator=isp.operator).exists()


@pytest.mark.django_db
def test_the_query_count_does_not_grow_with_the_batch(isp: Isp) -> None:
    package = make_package(isp.operator, "500.00", vat=False, name="Other")
    few = [add_subscriber(isp.operator, package, name=f"Few {n}") for n in range(3)]
    many = [add_subscriber(isp.operator, package, name=f"Many {n}") for n in range(40)]

    def queries(subscribers: list) -> int:
        notices = [Notice(s.pk, DUE, dedup_key=f"q:{s.pk}") for s in subscribers]
        with CaptureQueriesContext(connection) as captured:
            assert len(notify_event_many(operator=isp.operator, event="due_reminder", notices=notices)) == len(
                subscribers
            )
        return len(captured)

    assert queries(few) == queries(many)


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_queue_each_notice_once(gateway: SslWirelessFake) -> None:
    isp = make_isp(gateway)
    others = [add_subscriber(isp.operator, isp.package, name=f"Racer {n}") for n in range(30)]
    notices = [Notice(s.pk, DUE, channels=["sms"], dedup_key=f"race:{s.pk}") for s in [isp.subscriber, *others]]
    start = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with transaction.atomic():
                start.wait(timeout=10)
                results.append(len(notify_event_many(operator=isp.operator, event="due_reminder", notices=notices)))
        except BaseException as error:  # reported below; a thread's exception is otherwise lost
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(results) == [0, len(notices)]  # one worker queued them all, the other found them queued
    assert Message.objects.filter(operator=isp.operator, event="due_reminder").count() == len(notices)


@pytest.mark.django_db
def test_the_suspension_notice_says_how_to_pay(isp: Isp) -> None:
    notification_settings_save(operator=isp.operator, payment_instructions="bKash Merchant 01700000000, ref: your ID")
    subscriber_preference_save(subscriber=isp.subscriber, muted_channels=["email"])
    [message_id] = notify_event_many(
        operator=isp.operator, event="suspension", notices=[Notice(isp.subscriber.pk, {"amount_due": Decimal("500")})]
    )
    assert Message.objects.get(pk=message_id).body == (
        "Rahim Uddin, your connection is suspended for an unpaid BDT 500.00. Please pay to reconnect. "
        f"bKash Merchant 01700000000, ref: your ID {isp.operator.name}"
    )
    # Without instructions the sentence closes cleanly: no stray spaces where the variable was.
    notification_settings_save(operator=isp.operator, payment_instructions="")
    [again] = notify_event_many(
        operator=isp.operator, event="suspension", notices=[Notice(isp.subscriber.pk, {"amount_due": Decimal("500")})]
    )
    assert Message.objects.get(pk=again).body.endswith(f"Please pay to reconnect. {isp.operator.name}")
