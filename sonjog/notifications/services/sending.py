"""Sending: one attempt at a queued message (the job), its retries with backoff, the every-minute
drain for lost leases and lost jobs, and the providers' delivery reports.

A claim is a lease: the worker debits the credit and marks the message `sending` inside a short
transaction, calls the provider outside any transaction, then records sent, queued again, or failed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.conf import settings as django_settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from sonjog.core.outbound import OutboundRefused
from sonjog.notifications import selectors
from sonjog.notifications.models import Channel, Message, MessageStatus, ProviderAccount
from sonjog.notifications.providers import DeliveryUpdate, FailureReason, OutgoingMessage, SendResult, provider_for
from sonjog.notifications.scheduling import quiet_hours_end
from sonjog.notifications.services.credit import charges_credit, credit_debit, credit_refund
from sonjog.notifications.services.jobs import defer_send, message_priority, retry_minutes

logger = logging.getLogger(__name__)


# A worker holds a claimed message this long; past it the drain assumes the worker died mid-send.
SEND_LEASE = dt.timedelta(minutes=10)
# A queued message whose time came this long ago without any job waiting for it lost its job.
LOST_JOB_AFTER = dt.timedelta(minutes=2)
# The failure reason of a message the network reported undeliverable after the provider accepted it.
UNDELIVERED = "undelivered"


def status_callback_url(account: ProviderAccount) -> str:
    """Where the provider should post delivery reports, when the site's public address is known."""
    public = getattr(django_settings, "SONJOG_PUBLIC_URL", "").rstrip("/")
    if not public:
        return ""
    path = reverse("notifications:delivery_report", kwargs={"provider": account.kind, "account_id": account.pk})
    return f"{public}{path}?token={account.webhook_token}"


def _claim(message_id: int, now: dt.datetime) -> tuple[Message | None, str]:
    """Take the message for one attempt: (message, "") when this worker sends it, else (None, why not)."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("operator")
            .filter(pk=message_id)
            .first()
        )
        if message is None:
            return None, "busy" if Message.objects.filter(pk=message_id).exists() else "missing"
        if message.status != MessageStatus.QUEUED:
            return None, message.status
        if message.next_attempt_at > now:
            # An early job (a duplicate, or one from before a reschedule): make sure one waits for the
            # right time; if one already does, the queueing lock keeps this from adding another.
            defer_send(message.pk, message.next_attempt_at, message_priority(message))
            return None, message.status
        if not message.is_urgent:
            quiet_end = quiet_hours_end(
                selectors.notification_settings_for(message.operator), message.operator.time_zone, now
            )
            if quiet_end is not None:
                Message.objects.filter(pk=message.pk).update(next_attempt_at=quiet_end)
                defer_send(message.pk, quiet_end, message_priority(message))
                return None, message.status
        # The operator may have switched gateways since the message was queued: the active one sends it.
        account = selectors.active_accounts(message.operator).get(message.channel)
        if account is None:
            _fail(message, FailureReason.CONFIGURATION, f"no active {message.channel} account", now)
            return None, MessageStatus.FAILED
        if account.pk != message.account_id:
            message.provider = account.kind
            if message.channel == Channel.SMS:
                message.cost = selectors.sms_cost(message.segments, account)
        message.account = account  # the row just read: sending must not load it again
        if charges_credit(message) and not credit_debit(message, now):
            credit = selectors.sms_balance(message.operator).balance
            _fail(
                message,
                FailureReason.INSUFFICIENT_BALANCE,
                f"the operator's SMS credit ({credit}) does not cover this message ({message.cost})",
                now,
            )
            return None, MessageStatus.FAILED
        message.status = MessageStatus.SENDING
        message.attempts += 1
        message.next_attempt_at = now + SEND_LEASE
        message.save(update_fields=["status", "attempts", "next_attempt_at", "account", "provider", "cost"])
    return message, ""


def _fail(message: Message, reason: str, detail: str, now: dt.datetime) -> None:
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.FAILED, failure_reason=reason, last_error=detail[:2000], failed_at=now
    )


def message_send(message_id: int) -> str:
    """One attempt at sending a queued message; returns its status afterwards. Safe to run twice: a
    message is claimed by exactly one worker, and a message not due yet or already handled is left be."""
    message, status = _claim(message_id, timezone.now())
    if message is None:
        return status
    assert message.account is not None
    outgoing = OutgoingMessage(
        recipient=message.recipient,
        body=message.body,
        subject=message.subject,
        encoding=message.encoding,
        reference=f"sj{message.pk}",
        status_callback_url=status_callback_url(message.account),
    )
    try:
        result = provider_for(message.account).send(outgoing)
    except OutboundRefused as error:
        # The gateway's address leads somewhere this installation does not send to (it may have been
        # re-pointed since the account was saved): a configuration fault, not worth retrying.
        result = SendResult.failed(FailureReason.CONFIGURATION, str(error))
    except Exception as error:
        # A bug in one provider must not leave the message claimed until the lease runs out.
        logger.exception("provider %s raised while sending message %s", message.provider, message.pk)
        result = SendResult.failed(FailureReason.UNKNOWN, f"{type(error).__name__}: {error}")
    return _record_result(message, result)


def _record_result(message: Message, result: SendResult) -> str:
    now = timezone.now()
    with transaction.atomic():
        if result.ok:
            Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
                status=MessageStatus.SENT,
                provider_message_id=result.provider_message_id[:128],
                sent_at=now,
                failure_reason="",
                last_error="",
            )
            return MessageStatus.SENT
        return _attempt_failed(message, result.reason or FailureReason.UNKNOWN, result.detail, result.retryable, now)


def _attempt_failed(message: Message, reason: str, detail: str, retryable: bool, now: dt.datetime) -> str:
    """After a failed attempt (inside a transaction): refund, then queue again with backoff or fail."""
    if charges_credit(message):
        credit_refund(message, now)
    error = f"attempt {message.attempts}: {detail}"[:2000]
    waits = retry_minutes()
    if retryable and message.attempts < message.max_attempts:
        next_at = now + dt.timedelta(minutes=waits[min(message.attempts, len(waits)) - 1])
        Message.objects.filter(pk=message.pk).update(
            status=MessageStatus.QUEUED, next_attempt_at=next_at, failure_reason=reason, last_error=error
        )
        defer_send(message.pk, next_at, message_priority(message))
        return MessageStatus.QUEUED
    _fail(message, reason, error, now)
    return MessageStatus.FAILED


_LOST_JOBS_SQL = """
SELECT m.id FROM notifications_message m
WHERE m.status = 'queued' AND m.next_attempt_at <= %(cutoff)s
  AND NOT EXISTS (
      SELECT 1 FROM procrastinate_jobs j
      WHERE j.queueing_lock = 'notifications.message:' || m.id AND j.status = 'todo')
ORDER BY m.next_attempt_at
LIMIT 5000
"""


def messages_drain() -> dict[str, int]:
    """The safety net, every minute: messages whose worker died mid-send (their lease ran out) count
    a temporary failure; queued messages whose time came but that no job waits for get a new job."""
    now = timezone.now()
    expired = 0
    for message in Message.objects.filter(status=MessageStatus.SENDING, next_attempt_at__lte=now):
        with transaction.atomic():
            locked = Message.objects.select_for_update(skip_locked=True).filter(
                pk=message.pk, status=MessageStatus.SENDING, next_attempt_at__lte=now
            )
            claimed = locked.first()
            if claimed is None:
                continue
            # The provider may or may not have taken it; sending again risks a duplicate, not a loss.
            _attempt_failed(claimed, FailureReason.TEMPORARY, "the worker stopped during the attempt", True, now)
            expired += 1
    with connection.cursor() as cursor:
        cursor.execute(_LOST_JOBS_SQL, {"cutoff": now - LOST_JOB_AFTER})
        lost = [row[0] for row in cursor.fetchall()]
    for message_id in lost:
        defer_send(message_id)
    return {"expired_leases": expired, "requeued_jobs": len(lost)}


def delivery_reports_apply(*, account: ProviderAccount, updates: Iterable[DeliveryUpdate]) -> dict[str, int]:
    """Apply a provider's delivery reports to the account's own messages (never another account's).
    Only a sent message moves: delivered and failed are final, and a late 'failed' never undoes a
    'delivered'."""
    now = timezone.now()
    counts = {"delivered": 0, "failed": 0, "unchanged": 0, "unknown": 0}
    with transaction.atomic():
        for update in updates:
            mine = Message.objects.filter(account=account, provider_message_id=update.provider_message_id)
            if update.status == MessageStatus.DELIVERED:
                changed = mine.filter(status=MessageStatus.SENT).update(
                    status=MessageStatus.DELIVERED, delivered_at=now
                )
            else:
                changed = mine.filter(status=MessageStatus.SENT).update(
                    status=MessageStatus.FAILED,
                    failure_reason=UNDELIVERED,
                    last_error=(update.error or "reported undelivered")[:2000],
                    failed_at=now,
                )
            if changed:
                counts[update.status] += changed
            elif mine.exists():
                counts["unchanged"] += 1
            else:
                counts["unknown"] += 1
    return counts
