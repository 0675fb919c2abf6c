"""Writes for notifications: accounts, templates, settings, SMS credit, queueing, sending, reports.

Sending never happens in a request. `message_queue` writes the Message and defers its job inside the
caller's transaction, so a rolled-back payment never texts its receipt and a committed one always does.
The job (`message_send`) claims the message, debits the SMS credit, calls the provider outside any
transaction, and records the outcome: sent, queued again with backoff (temporary failures), or failed.

The modules, each importing only those above it in this list:

- `jobs`: the jobs' names, priorities and retry policy; deferring them (by name, never importing tasks)
- `credit`: SMS credit top-ups, the threshold and its alert, the debit and refund around a send
- `accounts`: provider accounts
- `configuration`: templates, the operator's message settings, a subscriber's preferences
- `queueing`: one message, a bulk SMS, resending failures; recipients and quiet hours
- `notices`: event notices to one or many subscribers, in batches (billing runs, sweeps)
- `sending`: one attempt (the job), retries, the every-minute drain, delivery reports

Callers import from this package (`from sonjog.notifications.services import notify_event`).
"""

from __future__ import annotations

from sonjog.notifications.services.accounts import (
    provider_account_create,
    provider_account_set_active,
    provider_account_update,
)
from sonjog.notifications.services.configuration import (
    notification_settings_save,
    subscriber_preference_save,
    template_save,
)
from sonjog.notifications.services.credit import sms_credit_add, sms_credit_threshold_set
from sonjog.notifications.services.jobs import (
    DEFAULT_RETRY_MINUTES,
    PRIORITY_BULK,
    PRIORITY_NORMAL,
    PRIORITY_URGENT,
    bill_notices_defer,
    event_notices_defer,
)
from sonjog.notifications.services.notices import (
    NOTICE_BATCH,
    Notice,
    bill_notices_queue,
    event_notices_queue,
    notices_queue_batched,
    notify_event,
    notify_event_many,
)
from sonjog.notifications.services.queueing import bulk_sms_send, message_queue, messages_resend
from sonjog.notifications.services.sending import (
    LOST_JOB_AFTER,
    SEND_LEASE,
    UNDELIVERED,
    delivery_reports_apply,
    message_send,
    messages_drain,
    status_callback_url,
)

__all__ = [
    "DEFAULT_RETRY_MINUTES",
    "LOST_JOB_AFTER",
    "NOTICE_BATCH",
    "PRIORITY_BULK",
    "PRIORITY_NORMAL",
    "PRIORITY_URGENT",
    "SEND_LEASE",
    "UNDELIVERED",
    "Notice",
    "bill_notices_defer",
    "bill_notices_queue",
    "bulk_sms_send",
    "delivery_reports_apply",
    "event_notices_defer",
    "event_notices_queue",
    "message_queue",
    "message_send",
    "messages_drain",
    "messages_resend",
    "notices_queue_batched",
    "notification_settings_save",
    "notify_event",
    "notify_event_many",
    "provider_account_create",
    "provider_account_set_active",
    "provider_account_update",
    "sms_credit_add",
    "sms_credit_threshold_set",
    "status_callback_url",
    "subscriber_preference_save",
    "template_save",
]
