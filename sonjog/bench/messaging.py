"""What `sonjog bench` measures for messaging: the due-reminder job for a whole ISP (find the subscribers,
render every message in its language, queue it and its send job) and how fast workers send against a
local gateway that accepts everything."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.test.utils import override_settings

from sonjog.automation.models import ReminderEvent
from sonjog.automation.services import due_reminders_send, reminder_rule_create
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import Subscriber
from sonjog.notifications.loopback import LoopbackGateway
from sonjog.notifications.models import Message, MessageStatus
from sonjog.notifications.services import (
    NOTICE_BATCH,
    Notice,
    notification_settings_save,
    notify_event_many,
    provider_account_create,
    sms_credit_add,
)
from sonjog.operators.models import Operator

# The oldest open bill of every subscriber who owes, with its operator and due date: who a bill-due
# reminder rule would reach on which day.
_OLDEST_OPEN_SQL = """
SELECT operator_id, due_date, count(*) FROM (
    SELECT DISTINCT ON (b.subscriber_id) b.operator_id, b.due_date
    FROM billing_bill b
    JOIN customers_subscriber s ON s.id = b.subscriber_id
    WHERE b.reversed_at IS NULL AND s.service_intent IN ('active', 'suspended')
      AND b.total > b.allocated
    ORDER BY b.subscriber_id, b.period_month, b.id
) oldest
GROUP BY operator_id, due_date
"""

# Everything in the notifications queue except the first `sample` send jobs waits a day, so the timed
# drain sends exactly the sample (and no bill notices left over from the generation runs).
_PARK_SQL = """
UPDATE procrastinate_jobs SET scheduled_at = now() + interval '1 day'
WHERE status = 'todo' AND queue_name = 'notifications'
  AND id NOT IN (SELECT id FROM procrastinate_jobs
                 WHERE status = 'todo' AND task_name = 'notifications.send_message'
                 ORDER BY id LIMIT %(sample)s)
"""


def _reminder_day(operators: list[Operator]) -> tuple[dt.date, dict[int, int]]:
    """The day most owing subscribers' oldest bill falls due, and per operator the rule offset that
    makes its own busiest due date fire on that day."""
    with connection.cursor() as cursor:
        cursor.execute(_OLDEST_OPEN_SQL)
        rows = cursor.fetchall()
    overall: Counter[dt.date] = Counter()
    per_operator: dict[int, Counter[dt.date]] = {}
    for operator_id, due_date, count in rows:
        overall[due_date] += count
        per_operator.setdefault(operator_id, Counter())[due_date] += count
    if not overall:
        raise RuntimeError("no subscriber owes anything: the seeded ISP should have open bills")
    day = overall.most_common(1)[0][0]
    offsets: dict[int, int] = {}
    for operator in operators:
        busiest = per_operator.get(operator.pk)
        if busiest:
            offset = (day - busiest.most_common(1)[0][0]).days
            if -60 <= offset <= 60:
                offsets[operator.pk] = offset
    return day, offsets


class _Rollback(Exception):
    pass


def _remind_everyone(operators: list[Operator], day: dt.date) -> tuple[float, int]:
    """Render and queue a due reminder for every subscriber (not only those a rule picks today), in
    the job's batches, then roll it back: the cost of the messages themselves at the ISP's full size."""
    queued = 0
    started = time.perf_counter()
    try:
        with transaction.atomic():
            for operator in operators:
                ids = list(Subscriber.objects.filter(operator=operator).order_by("pk").values_list("pk", flat=True))
                notices = [
                    Notice(pk, {"amount_due": Decimal("700.00"), "due_date": day}, ["sms"], f"bench-all:{pk}")
                    for pk in ids
                ]
                for start in range(0, len(notices), NOTICE_BATCH):
                    batch = notices[start : start + NOTICE_BATCH]
                    queued += len(notify_event_many(operator=operator, event="due_reminder", notices=batch))
            seconds = time.perf_counter() - started
            raise _Rollback
    except _Rollback:
        pass
    return seconds, queued


def run_notifications_bench(
    *, operators: list[Operator], send_sample: int, workers: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    # The month just generated (and the rolled-back run before it) left the billing tables to
    # autovacuum, which would otherwise run during the timings below; at the reminder hour in
    # production it has long finished.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    gateway = LoopbackGateway().start()
    # The gateway listens on 127.0.0.1, which an installation refuses to send to by default.
    loopback_allowed = override_settings(SONJOG_ALLOW_PRIVATE_OUTBOUND=True)
    loopback_allowed.enable()
    try:
        for operator in operators:
            notification_settings_save(operator=operator, quiet_hours_enabled=False)
            provider_account_create(
                operator=operator,
                name="bench loopback",
                kind="generic_http",
                credentials={"api_key": "bench"},
                base_url=gateway.url,
                options=LoopbackGateway.account_options(),
                cost_per_segment=Decimal("0.25"),
            )
            sms_credit_add(operator=operator, amount=Decimal("1000000.00"), note="bench")
        day, offsets = _reminder_day(operators)
        for operator in operators:
            if operator.pk in offsets:
                reminder_rule_create(
                    operator=operator, event=ReminderEvent.BILL_DUE, offset_days=offsets[operator.pk], channel="sms"
                )
        root = operators[0]
        # Noon on the reminder day, operator time: after every operator's reminder hour.
        now = dt.datetime.combine(day, dt.time(12), tzinfo=ZoneInfo(root.time_zone))
        started = time.perf_counter()
        outcome = due_reminders_send(now=now)
        seconds = time.perf_counter() - started
        results["reminder_run_s"] = round(seconds, 2)
        results["reminder_candidates"] = outcome["candidates"]
        results["reminder_messages"] = outcome["queued"]
        results["reminder_errors"] = outcome["errors"]
        results["reminder_messages_per_s"] = round(outcome["queued"] / seconds) if seconds else None
        seconds, queued = _remind_everyone(operators, day)
        results["reminder_all_subscribers_s"] = round(seconds, 2)
        results["reminder_all_subscribers_messages"] = queued
        progress("reminder run")

        with connection.cursor() as cursor:
            cursor.execute(_PARK_SQL, {"sample": send_sample})
        before = Message.objects.filter(status=MessageStatus.SENT).count()
        started = time.perf_counter()
        run_worker_cycle(queues=["notifications"], concurrency=workers)
        seconds = time.perf_counter() - started
        sent = Message.objects.filter(status=MessageStatus.SENT).count() - before
        results["send_workers"] = workers
        results["send_messages"] = sent
        results["send_per_s"] = round(sent / seconds, 1) if seconds else None
        results["send_gateway_received"] = gateway.received
        progress("sending")
    finally:
        loopback_allowed.disable()
        gateway.stop()
    return results
