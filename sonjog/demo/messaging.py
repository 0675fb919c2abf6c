"""Messaging for `sonjog demo`: the demo ISP texts through a local gateway that accepts everything, so
reminders, receipts and bulk sends go all the way to "sent" without a real provider account."""

from __future__ import annotations

from decimal import Decimal

from sonjog.automation.models import ReminderEvent, ReminderRule
from sonjog.automation.services import reminder_rule_create
from sonjog.notifications.loopback import LoopbackGateway
from sonjog.notifications.models import ProviderAccount
from sonjog.notifications.services import notification_settings_save, provider_account_create, sms_credit_add
from sonjog.operators.models import Operator

DEMO_SMS_PORT = 8790
DEMO_ACCOUNT_NAME = "Demo SMS gateway (local)"
# Before the due date, on it, and after it: what most operators start with.
DEMO_REMINDER_OFFSETS = (-3, 0, 2)


def demo_messaging_ensure(root: Operator) -> ProviderAccount:
    """Once per demo database: the local SMS account with some credit, and reminder rules."""
    account = ProviderAccount.objects.filter(operator=root, name=DEMO_ACCOUNT_NAME).first()
    if account is not None:
        return account
    account = provider_account_create(
        operator=root,
        name=DEMO_ACCOUNT_NAME,
        kind="generic_http",
        sender_id="DEMO-ISP",
        credentials={"api_key": "demo"},
        base_url=f"http://127.0.0.1:{DEMO_SMS_PORT}",
        options=LoopbackGateway.account_options(),
        cost_per_segment=Decimal("0.35"),
    )
    sms_credit_add(operator=root, amount=Decimal("5000.00"), note="demo credit")
    notification_settings_save(
        operator=root, payment_instructions="bKash or Nagad Merchant 01700-000000, reference: your customer ID"
    )
    existing = set(ReminderRule.objects.filter(operator=root).values_list("event", "offset_days"))
    for offset in DEMO_REMINDER_OFFSETS:
        if (ReminderEvent.BILL_DUE, offset) not in existing:
            reminder_rule_create(operator=root, event=ReminderEvent.BILL_DUE, offset_days=offset)
    if (ReminderEvent.PREPAID_EXPIRY, -3) not in existing:
        reminder_rule_create(operator=root, event=ReminderEvent.PREPAID_EXPIRY, offset_days=-3)
    return account


def demo_gateway_start() -> LoopbackGateway:
    return LoopbackGateway(port=DEMO_SMS_PORT).start()
