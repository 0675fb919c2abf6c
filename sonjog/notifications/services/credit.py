"""SMS credit: top-ups, the low-balance threshold and its alert, and the debit and refund around a send.

A send reserves its cost before the provider call with `UPDATE ... WHERE balance >= cost` (a CHECK
forbids negative credit), so concurrent workers cannot overdraw; a failed attempt refunds it. The
low-balance alert is one row per crossing (a partial unique index), and only a top-up resolves it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from sonjog.core.audit import audit
from sonjog.core.money import round_money
from sonjog.notifications.exceptions import NotificationError
from sonjog.notifications.models import Channel, CreditEntryKind, Message, SmsBalance, SmsCreditEntry
from sonjog.operators.models import Operator


def sms_credit_add(*, operator: Operator, amount: Decimal, note: str = "", actor: User | None = None) -> SmsBalance:
    """Top up the operator's SMS credit; a top-up that lifts it above the threshold closes the alert."""
    if amount <= 0 or amount != round_money(amount):
        raise NotificationError(f"a top-up must be a positive amount with at most two decimals, not {amount}")
    now = timezone.now()
    with transaction.atomic():
        SmsBalance.objects.get_or_create(operator=operator)
        balance = SmsBalance.objects.select_for_update().get(operator=operator)
        balance.balance += amount
        balance.save(update_fields=["balance", "updated_at"])
        SmsCreditEntry.objects.create(
            operator=operator,
            kind=CreditEntryKind.TOP_UP,
            amount=amount,
            balance_after=balance.balance,
            note=note[:200],
            created_at=now,
        )
        if balance.balance >= balance.low_balance_threshold:
            _resolve_low_balance_alert(operator.pk, now)
        audit(operator=operator, action="notifications.sms_credit_add", actor=actor, amount=amount)
    return balance


def sms_credit_threshold_set(*, operator: Operator, threshold: Decimal, actor: User | None = None) -> SmsBalance:
    if threshold < 0:
        raise NotificationError("the low-balance threshold cannot be negative")
    with transaction.atomic():
        balance, _created = SmsBalance.objects.get_or_create(operator=operator)
        balance.low_balance_threshold = round_money(threshold)
        balance.save(update_fields=["low_balance_threshold", "updated_at"])
        if balance.balance >= balance.low_balance_threshold:
            _resolve_low_balance_alert(operator.pk, timezone.now())
        audit(operator=operator, action="notifications.sms_threshold_set", actor=actor, threshold=threshold)
    return balance


def _resolve_low_balance_alert(operator_id: int, now: dt.datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE notifications_lowbalancealert SET resolved_at = %s WHERE operator_id = %s AND resolved_at IS NULL",
            [now, operator_id],
        )


def _raise_low_balance_alert(operator_id: int, now: dt.datetime) -> None:
    """Once per crossing: the partial unique index allows one open alert per operator."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO notifications_lowbalancealert (operator_id, balance, threshold, created_at)
            SELECT operator_id, balance, low_balance_threshold, %s FROM notifications_smsbalance
            WHERE operator_id = %s
            ON CONFLICT (operator_id) WHERE resolved_at IS NULL DO NOTHING
            """,
            [now, operator_id],
        )


def credit_debit(message: Message, now: dt.datetime) -> bool:
    """Take the message's cost from the operator's credit, atomically and never below zero."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE notifications_smsbalance SET balance = balance - %(cost)s, updated_at = %(now)s
            WHERE operator_id = %(operator)s AND balance >= %(cost)s
            RETURNING balance, low_balance_threshold
            """,
            {"cost": message.cost, "now": now, "operator": message.operator_id},
        )
        row = cursor.fetchone()
    if row is None:
        _raise_low_balance_alert(message.operator_id, now)
        return False
    balance_after, threshold = row
    SmsCreditEntry.objects.create(
        operator_id=message.operator_id,
        kind=CreditEntryKind.DEBIT,
        amount=-message.cost,
        balance_after=balance_after,
        message=message,
        created_at=now,
    )
    if balance_after < threshold:
        _raise_low_balance_alert(message.operator_id, now)
    return True


def credit_refund(message: Message, now: dt.datetime) -> None:
    # A refund does not close a low-balance alert: only a top-up does, or the alert would flap with
    # every failed message near the threshold.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE notifications_smsbalance SET balance = balance + %(cost)s, updated_at = %(now)s
            WHERE operator_id = %(operator)s RETURNING balance
            """,
            {"cost": message.cost, "now": now, "operator": message.operator_id},
        )
        row = cursor.fetchone()
    assert row is not None, "a debited operator has a balance row"
    SmsCreditEntry.objects.create(
        operator_id=message.operator_id,
        kind=CreditEntryKind.REFUND,
        amount=message.cost,
        balance_after=row[0],
        message=message,
        created_at=now,
    )


def charges_credit(message: Message) -> bool:
    return message.channel == Channel.SMS and message.cost > 0
