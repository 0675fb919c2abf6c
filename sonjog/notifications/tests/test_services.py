"""Services and selectors within one test transaction: rules, wording, previews, dedup, the drain."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from sonjog.conftest import make_operator, make_package
from sonjog.customers.models import Subscriber
from sonjog.notifications import services
from sonjog.notifications.exceptions import (
    InsufficientSmsCredit,
    InvalidRecipient,
    InvalidTemplate,
    NotificationError,
    UnknownEvent,
)
from sonjog.notifications.models import Message, ProviderAccount
from sonjog.notifications.selectors import bulk_sms_preview, subscriber_messages, template_preview
from sonjog.notifications.services import (
    bulk_sms_send,
    message_queue,
    messages_drain,
    notification_settings_save,
    notify_event,
    provider_account_create,
    subscriber_preference_save,
    template_save,
)
from sonjog.notifications.tests.conftest import Isp, add_subscriber, make_isp, scheduled_jobs
from sonjog.notifications.tests.fakes import SslWirelessFake

pytestmark = pytest.mark.django_db


@pytest.fixture
def isp(gateway: SslWirelessFake) -> Isp:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE task_name = 'notifications.send_message'")
    return make_isp(gateway)


def add_email_account(isp: Isp) -> ProviderAccount:
    return provider_account_create(operator=isp.operator, name="Mail", kind="smtp", sender_id="b@isp.example")


def test_no_active_account_means_no_messages() -> None:
    isp = make_isp(None)
    assert notify_event(subscriber=isp.subscriber, event="welcome") == []
    assert not Message.objects.exists()


def test_unknown_event_or_variable_is_a_programming_error(isp: Isp) -> None:
    with pytest.raises(UnknownEvent):
        notify_event(subscriber=isp.subscriber, event="birthday")
    with pytest.raises(NotificationError, match="amount_owed"):
        notify_event(subscriber=isp.subscriber, event="due_reminder", context={"amount_owed": Decimal("1")})


def test_dedup_key_queues_a_reminder_once_per_channel(isp: Isp) -> None:
    isp.subscriber.email = "r@example.net"
    Subscriber.objects.filter(pk=isp.subscriber.pk).update(email="r@example.net")
    add_email_account(isp)
    key = "due_reminder:bill:77:2027-06-15"
    first = notify_event(subscriber=isp.subscriber, event="due_reminder", dedup_key=key)
    assert sorted(m.channel for m in first) == ["email", "sms"]
    assert notify_event(subscriber=isp.subscriber, event="due_reminder", dedup_key=key) == []
    assert Message.objects.count() == 2 and len(scheduled_jobs()) == 2
    # The database is the guarantee: a direct insert of the same key is refused.
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(**{**_fields(first[0]), "id": None})


def _fields(message: Message) -> dict[str, object]:
    return {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields}


def test_muted_channel_or_event_skipped_except_for_codes(isp: Isp) -> None:
    services.notification_settings_save(operator=isp.operator, muted_events=["welcome", "otp"])
    assert notify_event(subscriber=isp.subscriber, event="welcome") == []
    assert len(notify_event(subscriber=isp.subscriber, event="activation")) == 1
    subscriber_preference_save(subscriber=isp.subscriber, muted_channels=["sms"])
    assert notify_event(subscriber=isp.subscriber, event="due_reminder") == []
    [code] = notify_event(subscriber=isp.subscriber, event="otp", context={"otp": "1234"})
    assert code.is_urgent and code.body == f"Your {isp.operator.name} code is 1234. Do not share it with anyone."


def test_bangla_subscriber_gets_bangla_wording_and_operator_template_wins(isp: Isp) -> None:
    subscriber_preference_save(subscriber=isp.subscriber, language="bn")
    [default] = notify_event(subscriber=isp.subscriber, event="reactivation")
    assert default.body == f"Rahim Uddin, আপনার সংযোগ আবার চালু হয়েছে। ধন্যবাদ! {isp.operator.name}"
    assert (default.language, default.encoding) == ("bn", "UCS-2")
    template_save(
        operator=isp.operator,
        event="reactivation",
        channel="sms",
        language="bn",
        body="{{ name }}, সংযোগ চালু। আইডি {{ customer_id }}",
    )
    [own] = notify_event(subscriber=isp.subscriber, event="reactivation")
    assert own.body == f"Rahim Uddin, সংযোগ চালু। আইডি {isp.subscriber.customer_id}"


def test_template_with_unknown_variable_is_refused(isp: Isp) -> None:
    with pytest.raises(InvalidTemplate, match="unknown variable"):
        template_save(operator=isp.operator, event="welcome", channel="sms", language="en", body="Hi {{ nmae }}")
    with pytest.raises(InvalidTemplate):
        template_save(operator=isp.operator, event="welcome", channel="sms", language="en", body="  ")


def test_money_and_dates_follow_the_operator(isp: Isp) -> None:
    context = {"amount_due": Decimal("1234.5"), "due_date": dt.date(2027, 7, 7)}
    [sms] = notify_event(subscriber=isp.subscriber, event="due_reminder", context=context)
    # The taka sign would make the SMS UCS-2; the ISO code keeps it GSM-7.
    assert "BDT 1,234.50 is due on 07 Jul 2027" in sms.body and sms.encoding == "GSM-7"
    Subscriber.objects.filter(pk=isp.subscriber.pk).update(email="r@example.net")
    isp.subscriber.refresh_from_db()
    add_email_account(isp)
    # 20:30 UTC on 6 July is already 7 July in Dhaka.
    evening = {"payment_amount": Decimal("500"), "due_date": dt.datetime(2027, 7, 6, 20, 30, tzinfo=dt.UTC)}
    [mail] = notify_event(subscriber=isp.subscriber, event="bill_generated", context=evening, channels=["email"])
    assert "due on 07 Jul 2027" in mail.body and "৳0.00" in mail.body  # nothing billed yet: nothing due


def test_amount_due_defaults_to_the_ledger_balance(gateway: SslWirelessFake, frozen_clock) -> None:
    isp = make_isp(gateway)
    billed = add_subscriber(isp.operator, isp.package, name="Billed One", activation_date=dt.date(2027, 6, 1))
    [message] = notify_event(subscriber=billed, event="suspension")
    assert "unpaid BDT 500.00" in message.body


def test_invalid_recipient_is_refused(isp: Isp) -> None:
    with pytest.raises(InvalidRecipient, match="Bangladesh mobile"):
        message_queue(operator=isp.operator, channel="sms", recipient="12345", body="hi")


def test_one_active_account_per_channel(isp: Isp) -> None:
    second = provider_account_create(operator=isp.operator, name="Backup", kind="bulksmsbd", sender_id="880")
    assert isp.sms is not None
    isp.sms.refresh_from_db()
    assert second.is_active and not isp.sms.is_active
    with pytest.raises(IntegrityError), transaction.atomic():
        ProviderAccount.objects.filter(pk=isp.sms.pk).update(is_active=True)


def test_credentials_are_encrypted_at_rest(isp: Isp) -> None:
    assert isp.sms is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials_encrypted FROM notifications_provideraccount WHERE id = %s", [isp.sms.pk])
        stored = cursor.fetchone()[0]
    assert "ssl-token" not in stored and ProviderAccount.objects.get(pk=isp.sms.pk).credentials == {
        "api_token": "ssl-token"
    }


def test_template_preview_with_a_real_subscriber(isp: Isp) -> None:
    template = template_save(
        operator=isp.operator, event="bulk", channel="sms", language="bn", body="প্রিয় {{ name }}, বকেয়া {{ amount_due }}"
    )
    preview = template_preview(template, isp.subscriber)
    # Bangla is UCS-2 anyway, so the taka sign costs nothing here.
    assert preview.text == "প্রিয় Rahim Uddin, বকেয়া ৳0.00"
    assert (preview.encoding, preview.units, preview.segments, preview.cost) == ("UCS-2", 32, 1, Decimal("0.25"))
    long_text = template_preview("{{ name }} " + "x" * 160, isp.subscriber)
    assert (long_text.encoding, long_text.segments, long_text.cost) == ("GSM-7", 2, Decimal("0.50"))


def test_bulk_preview_counts_segments_encodings_and_cost(isp: Isp) -> None:
    add_subscriber(isp.operator, isp.package, name="করিম")
    muted = add_subscriber(isp.operator, isp.package, name="Muted")
    subscriber_preference_save(subscriber=muted, muted_channels=["sms"])
    other = make_operator()
    add_subscriber(other, make_package(other), name="Not ours")
    preview = bulk_sms_preview(isp.operator, Subscriber.objects.all(), "Dear {{ name }}, " + "n" * 150)
    assert (preview.count, preview.skipped) == (2, 1)
    assert preview.encodings == {"GSM-7": 1, "UCS-2": 1}
    assert preview.total_segments == 2 + 3  # 168 septets; 161 UCS-2 units
    assert preview.cost == Decimal("1.25")
    foreign = template_save(operator=other, event="bulk", channel="sms", language="en", body="Hi {{ name }}")
    with pytest.raises(InvalidTemplate, match="another operator"):
        bulk_sms_preview(isp.operator, Subscriber.objects.all(), foreign)


def test_bulk_send_refuses_beyond_the_credit_and_dedups(isp: Isp) -> None:
    for n in range(3):
        add_subscriber(isp.operator, isp.package, name=f"Sub {n}")
    everyone = Subscriber.objects.filter(operator=isp.operator)
    services.sms_credit_threshold_set(operator=isp.operator, threshold=Decimal("0"))
    with pytest.raises(InsufficientSmsCredit, match=r"costs 11\.00 for 44 SMS but the SMS credit is 10\.00"):
        bulk_sms_send(operator=isp.operator, subscribers=everyone, template_or_text="x" * 1531)
    text = "Hi {{ name }}"
    first = bulk_sms_send(operator=isp.operator, subscribers=everyone, template_or_text=text, dedup_key="eid")
    again = bulk_sms_send(operator=isp.operator, subscribers=everyone, template_or_text=text, dedup_key="eid")
    assert (first.queued, again.queued, again.skipped) == (4, 0, 4)
    bulk_ids = set(Message.objects.filter(event="bulk").values_list("pk", flat=True))
    assert len(bulk_ids) == 4
    assert len([job for job in scheduled_jobs() if job[0] in bulk_ids]) == 4  # one job per bulk message


def test_timeline_is_newest_first_and_per_subscriber(isp: Isp, frozen_clock) -> None:
    other = add_subscriber(isp.operator, isp.package, name="Other")
    notify_event(subscriber=isp.subscriber, event="welcome")
    frozen_clock.advance(minutes=5)
    notify_event(subscriber=other, event="welcome")
    notify_event(subscriber=isp.subscriber, event="activation")
    timeline = subscriber_messages(isp.subscriber)
    assert [item.event for item in timeline] == ["activation", "welcome"]
    assert timeline[0].at == frozen_clock.now and timeline[0].cost == Decimal("0.25")


def test_drain_recovers_dead_workers_and_lost_jobs(isp: Isp, frozen_clock) -> None:
    [held] = notify_event(subscriber=isp.subscriber, event="welcome")
    [lost] = notify_event(subscriber=isp.subscriber, event="activation")
    # A worker claimed `held` and died; `lost` lost its job.
    lease_end = frozen_clock.now + services.SEND_LEASE
    Message.objects.filter(pk=held.pk).update(status="sending", attempts=1, next_attempt_at=lease_end)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE task_name = 'notifications.send_message'")
    assert messages_drain() == {"expired_leases": 0, "requeued_jobs": 0}  # nothing overdue yet
    frozen_clock.advance(minutes=11)
    assert messages_drain() == {"expired_leases": 1, "requeued_jobs": 1}
    held.refresh_from_db()
    assert (held.status, held.failure_reason) == ("queued", "temporary")
    assert held.next_attempt_at == frozen_clock.now + dt.timedelta(minutes=1)
    assert sorted(job[0] for job in scheduled_jobs()) == sorted([held.pk, lost.pk])
    assert messages_drain() == {"expired_leases": 0, "requeued_jobs": 0}  # jobs are waiting now


def test_a_claim_inside_quiet_hours_waits_for_morning(isp: Isp, frozen_clock) -> None:
    notification_settings_save(operator=isp.operator, quiet_hours_enabled=True)
    frozen_clock.now = dt.datetime(2027, 6, 15, 15, 59, tzinfo=dt.UTC)  # 21:59 in Dhaka
    [message] = notify_event(subscriber=isp.subscriber, event="welcome")
    frozen_clock.advance(minutes=5)  # the worker only gets to it at 22:04
    assert services.message_send(message.pk) == "queued"
    message.refresh_from_db()
    assert message.attempts == 0 and message.next_attempt_at == dt.datetime(2027, 6, 16, 2, 0, tzinfo=dt.UTC)


def test_bill_notices_for_a_run_once_per_bill(isp: Isp, frozen_clock) -> None:
    from sonjog.billing.models import Bill

    # Activated back in April: three bills at once, the latest (June) already past its due date.
    add_subscriber(isp.operator, isp.package, name="Backdated", activation_date=dt.date(2027, 4, 10))
    backdated = Bill.objects.filter(subscriber__name="Backdated").order_by("-period_month").first()
    assert backdated is not None and backdated.run_id is not None
    assert Bill.objects.filter(run_id=backdated.run_id).count() == 3  # April (prorated), May, June
    assert backdated.due_date < dt.date(2027, 6, 15)
    assert services.bill_notices_queue(backdated.run_id) == 0  # no news of a bill already overdue

    isp.operator.due_days = 20
    isp.operator.save(update_fields=["due_days"])
    add_subscriber(isp.operator, isp.package, name="New One", activation_date=dt.date(2027, 4, 10))
    bill = Bill.objects.filter(subscriber__name="New One").order_by("-period_month").first()
    assert bill is not None and bill.run_id is not None and bill.due_date >= dt.date(2027, 6, 15)
    assert Bill.objects.filter(run_id=bill.run_id).count() == 3
    assert services.bill_notices_queue(bill.run_id) == 1  # the latest bill only
    assert services.bill_notices_queue(bill.run_id) == 0  # repeating the job queues nothing new
    message = Message.objects.get(event="bill_generated")
    assert message.dedup_key == f"bill_generated:bill:{bill.pk}"
    assert f"is due on {bill.due_date:%d %b %Y}" in message.body
