"""Queue -> job -> provider -> delivery report, with real worker cycles against committed data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from email.message import EmailMessage

import pytest
from django.db import transaction
from django.test import Client

from sonjog.customers.models import Subscriber
from sonjog.notifications.models import LowBalanceAlert, Message, SmsBalance, SmsCreditEntry
from sonjog.notifications.selectors import failed_for_credit, subscriber_messages
from sonjog.notifications.services import (
    bulk_sms_send,
    messages_resend,
    notify_event,
    provider_account_create,
    sms_credit_add,
    sms_credit_threshold_set,
    subscriber_preference_save,
)
from sonjog.notifications.tests.conftest import add_subscriber, make_isp, scheduled_jobs, time_passes, work
from sonjog.notifications.tests.fakes import LoopbackSmtp, SslWirelessFake

pytestmark = pytest.mark.django_db(transaction=True)


def credit_of(isp_operator_id: int) -> Decimal:
    return SmsBalance.objects.get(operator_id=isp_operator_id).balance


def test_round_trip_queue_job_sent_delivered(jobs: None, gateway: SslWirelessFake, frozen_clock) -> None:
    isp = make_isp(gateway)
    with transaction.atomic():  # as the payment flow calls it
        queued = notify_event(
            subscriber=isp.subscriber, event="payment_received", context={"payment_amount": Decimal("500.00")}
        )
    assert len(queued) == 1
    message = Message.objects.get()
    assert (message.status, message.channel, message.encoding, message.segments) == ("queued", "sms", "GSM-7", 1)
    assert message.body.startswith("Thank you, Rahim Uddin. We received BDT 500.00.")
    assert message.cost == Decimal("0.25")
    assert [job[0] for job in scheduled_jobs()] == [message.pk]
    assert gateway.requests == []  # nothing is sent inside the caller's transaction

    work()

    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 1)
    assert message.provider_message_id.startswith("REF") and message.sent_at == frozen_clock.now
    assert gateway.last.json["msisdn"] == isp.subscriber.phone.lstrip("+")
    assert gateway.last.json["sms"] == message.body and gateway.last.json["csms_id"] == f"sj{message.pk}"
    assert credit_of(isp.operator.pk) == Decimal("9.75")
    assert SmsCreditEntry.objects.filter(message=message, kind="debit", amount=Decimal("-0.25")).count() == 1

    frozen_clock.advance(seconds=40)
    assert isp.sms is not None
    url = f"/hooks/notifications/ssl_wireless/{isp.sms.pk}/?token=hook-secret"
    response = Client().post(url, {"reference_id": message.provider_message_id, "status": "DELIVERED"})
    assert response.status_code == 200
    assert response.json() == {"ok": True, "delivered": 1, "failed": 0, "unchanged": 0, "unknown": 0}
    message.refresh_from_db()
    assert message.status == "delivered" and message.delivered_at == frozen_clock.now
    timeline = subscriber_messages(isp.subscriber)
    assert [(item.id, item.status) for item in timeline] == [(message.pk, "delivered")]


def test_a_rolled_back_caller_sends_nothing(jobs: None, gateway: SslWirelessFake) -> None:
    isp = make_isp(gateway)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert notify_event(subscriber=isp.subscriber, event="welcome")
        raise RuntimeError("the payment failed")
    assert not Message.objects.exists() and scheduled_jobs() == []
    work()
    assert gateway.requests == []


def test_temporary_failures_back_off_1_5_15_then_fail(jobs: None, gateway: SslWirelessFake, frozen_clock) -> None:
    isp = make_isp(gateway)
    gateway.outages = 10
    [message] = notify_event(subscriber=isp.subscriber, event="welcome")
    start = frozen_clock.now
    work()
    waits = []
    for minutes in (1, 5, 15):
        message.refresh_from_db()
        assert (message.status, message.failure_reason) == ("queued", "temporary")
        waits.append(message.next_attempt_at - frozen_clock.now)
        assert [job[0] for job in scheduled_jobs()] == [message.pk]
        time_passes(frozen_clock, seconds=30)
        work()  # not due yet: nothing happens
        assert len(gateway.requests) == len(waits)
        time_passes(frozen_clock, minutes=minutes, seconds=-30)
        work()
    assert waits == [dt.timedelta(minutes=m) for m in (1, 5, 15)]
    message.refresh_from_db()
    assert (message.status, message.attempts, message.failure_reason) == ("failed", 4, "temporary")
    assert message.failed_at == start + dt.timedelta(minutes=21)
    assert "attempt 4" in message.last_error
    assert len(gateway.requests) == 4
    assert credit_of(isp.operator.pk) == Decimal("10.00")  # every attempt's debit was refunded
    assert scheduled_jobs() == []


def test_a_retry_that_succeeds(jobs: None, gateway: SslWirelessFake, frozen_clock) -> None:
    isp = make_isp(gateway)
    gateway.outages = 1
    [message] = notify_event(subscriber=isp.subscriber, event="welcome")
    work()
    time_passes(frozen_clock, minutes=1)
    work()
    message.refresh_from_db()
    assert (message.status, message.attempts, message.failure_reason) == ("sent", 2, "")
    assert credit_of(isp.operator.pk) == Decimal("9.75")


def test_permanent_failure_fails_at_once(jobs: None, gateway: SslWirelessFake) -> None:
    isp = make_isp(gateway, token="revoked")
    [message] = notify_event(subscriber=isp.subscriber, event="welcome")
    work()
    message.refresh_from_db()
    assert (message.status, message.attempts, message.failure_reason) == ("failed", 1, "auth")
    assert "Unauthorized" in message.last_error
    assert scheduled_jobs() == [] and credit_of(isp.operator.pk) == Decimal("10.00")


def test_insufficient_credit_refuses_and_alerts_once(jobs: None, gateway: SslWirelessFake) -> None:
    isp = make_isp(gateway, credit="0.50")
    sms_credit_threshold_set(operator=isp.operator, threshold=Decimal("0.40"))
    messages = [notify_event(subscriber=isp.subscriber, event="otp", context={"otp": str(n)})[0] for n in range(3)]
    work()
    statuses = {m.pk: (m.status, m.failure_reason) for m in Message.objects.all()}
    assert [statuses[m.pk] for m in messages] == [("sent", ""), ("sent", ""), ("failed", "insufficient_balance")]
    refused = Message.objects.get(pk=messages[2].pk)
    assert "SMS credit (0.00)" in refused.last_error and refused.attempts == 0
    assert len(gateway.requests) == 2 and credit_of(isp.operator.pk) == Decimal("0.00")
    alert = LowBalanceAlert.objects.get()  # once, though the credit fell below twice and then ran out
    assert (alert.balance, alert.threshold, alert.resolved_at) == (Decimal("0.25"), Decimal("0.40"), None)
    sms_credit_add(operator=isp.operator, amount=Decimal("5.00"))
    alert.refresh_from_db()
    assert alert.resolved_at is not None

    # After the top-up, what failed for lack of credit goes again: a new row, the failure kept as it was.
    since = refused.created_at - dt.timedelta(minutes=1)
    assert failed_for_credit(isp.operator, since) == [refused.pk]
    other = make_isp(gateway)
    assert messages_resend(operator=other.operator, message_ids=[refused.pk]) == 0  # not its message
    assert messages_resend(operator=isp.operator, message_ids=[refused.pk, messages[0].pk]) == 1  # sent one skipped
    assert messages_resend(operator=isp.operator, message_ids=[refused.pk]) == 0  # resent once only
    assert failed_for_credit(isp.operator, since) == []
    work()
    again = Message.objects.get(resent_from=refused)
    assert (again.status, again.body, again.recipient) == ("sent", refused.body, refused.recipient)
    refused.refresh_from_db()
    assert refused.status == "failed" and credit_of(isp.operator.pk) == Decimal("4.75")


def test_quiet_hours_hold_reminders_not_codes(jobs: None, gateway: SslWirelessFake, frozen_clock) -> None:
    frozen_clock.now = dt.datetime(2027, 6, 15, 16, 30, tzinfo=dt.UTC)  # 22:30 in Dhaka
    isp = make_isp(gateway, quiet_hours=True)
    [reminder] = notify_event(
        subscriber=isp.subscriber,
        event="due_reminder",
        context={"amount_due": Decimal("500.00"), "due_date": dt.date(2027, 6, 20)},
    )
    [code] = notify_event(subscriber=isp.subscriber, event="otp", context={"otp": "482913"})
    morning = dt.datetime(2027, 6, 16, 2, 0, tzinfo=dt.UTC)  # 08:00 in Dhaka
    assert reminder.next_attempt_at == morning and code.next_attempt_at == frozen_clock.now
    assert dict(scheduled_jobs()) == {reminder.pk: morning, code.pk: None}  # the code's job is due at once
    work()
    assert Message.objects.get(pk=code.pk).status == "sent"
    assert Message.objects.get(pk=reminder.pk).status == "queued"
    assert [r.json["sms"] for r in gateway.requests] == [code.body]
    time_passes(frozen_clock, hours=9, minutes=30)
    work()
    assert Message.objects.get(pk=reminder.pk).status == "sent"


def test_email_with_bangla_arrives_intact(jobs: None, smtp_server: LoopbackSmtp) -> None:
    isp = make_isp(None, email="rahim@example.net", name="রহিম উদ্দিন")
    provider_account_create(
        operator=isp.operator,
        name="Mail",
        kind="smtp",
        sender_id="billing@isp.example",
        options={"host": "127.0.0.1", "port": smtp_server.port},
    )
    subscriber_preference_save(subscriber=isp.subscriber, language="bn")
    [message] = notify_event(subscriber=isp.subscriber, event="welcome")
    assert message.channel == "email" and message.language == "bn"
    work()
    message.refresh_from_db()
    assert message.status == "sent", message.last_error
    [received] = smtp_server.inbox.messages
    assert isinstance(received, EmailMessage)
    assert received["Subject"] == f"{isp.operator.name}-এ স্বাগতম"
    body = received.get_content()
    assert body.strip() == message.body and "রহিম উদ্দিন" in body and "গ্রাহক আইডি" in body
    assert smtp_server.inbox.envelopes == [("billing@isp.example", ["rahim@example.net"])]
    assert received["Message-ID"].strip("<>") == message.provider_message_id


def test_bulk_sms_reaches_everyone_with_their_own_text(jobs: None, gateway: SslWirelessFake) -> None:
    isp = make_isp(gateway)
    add_subscriber(isp.operator, isp.package, name="করিম")
    bulk = bulk_sms_send(
        operator=isp.operator,
        subscribers=Subscriber.objects.all(),
        template_or_text="Dear {{ name }}, our office is closed on Friday.",
    )
    assert (bulk.queued, bulk.skipped) == (2, 0)
    work()
    # Sign-up also queued welcome messages; this test is about the bulk ones.
    sent = {r.json["sms"] for r in gateway.requests if r.json["sms"].startswith("Dear")}
    assert sent == {
        "Dear Rahim Uddin, our office is closed on Friday.",
        "Dear করিম, our office is closed on Friday.",
    }
    assert set(Message.objects.filter(event="bulk").values_list("status", "encoding")) == {
        ("sent", "GSM-7"),
        ("sent", "UCS-2"),
    }
