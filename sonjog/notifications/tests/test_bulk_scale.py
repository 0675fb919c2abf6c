"""Bulk SMS to 30,000 subscribers: one rendered message and one job each (timing: `sonjog bench`)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from sonjog.billing.models import LedgerEntry
from sonjog.conftest import make_operator, make_package
from sonjog.customers.models import Subscriber
from sonjog.notifications.models import Message
from sonjog.notifications.selectors import bulk_sms_preview
from sonjog.notifications.services import bulk_sms_send, provider_account_create, sms_credit_add
from sonjog.operators.models import Operator

pytestmark = pytest.mark.django_db

RECIPIENTS = 30_000
TEXT = "Dear {{ name }}, {{ amount_due }} is due ({{ customer_id }}). Please pay by the 10th. {{ operator_name }}"


_SEED_SQL = """
INSERT INTO customers_subscriber (operator_id, customer_id, name, phone, email, address, national_id, package_id,
    pppoe_username, pppoe_password, monthly_discount, is_vip, service_intent, router_state, session_state,
    session_mac, session_uptime, sync_state, created_at)
SELECT %(operator)s, 'BLK' || lpad(n::text, 6, '0'),
       CASE WHEN n %% 10 = 0 THEN 'গ্রাহক ' || n ELSE 'Subscriber ' || n END,
       '+88017' || lpad(n::text, 8, '0'), '', '', '', %(package)s, 'blk' || n, 'x', 0, false, 'disabled',
       'unknown', 'offline', '', '', 'pending', now()
FROM generate_series(0, %(count)s - 1) AS n;
INSERT INTO billing_ledgerentry (operator_id, subscriber_id, kind, category, amount, effective_date, period_month,
    adjustment_reason, memo, created_at)
SELECT %(operator)s, id, 'opening_balance', 'adjusted', 100 + id %% 900, '2027-06-01', '2027-06-01', '', '', now()
FROM customers_subscriber WHERE operator_id = %(operator)s;
-- The rows are new in this transaction: without fresh statistics the planner takes the tables as
-- empty and picks nested loops, which is not what production would see.
ANALYZE customers_subscriber;
ANALYZE billing_ledgerentry;
"""


def seed(count: int) -> Operator:
    """Subscribers with an opening balance each, written in SQL: seeding is not what is measured."""
    operator = make_operator(vat_rate=Decimal("0"), customer_id_prefix="BLK")
    package = make_package(operator, "600.00", vat=False)
    with connection.cursor() as cursor:
        cursor.execute(_SEED_SQL, {"operator": operator.pk, "package": package.pk, "count": count})
    return operator


def test_bulk_30000_recipients_get_one_message_and_one_job_each(frozen_clock) -> None:
    operator = seed(RECIPIENTS)
    provider_account_create(operator=operator, name="SSL", kind="ssl_wireless", cost_per_segment=Decimal("0.25"))
    sms_credit_add(operator=operator, amount=Decimal("20000.00"))
    everyone = Subscriber.objects.filter(operator=operator)

    preview = bulk_sms_preview(operator, everyone, TEXT)
    assert preview.count == RECIPIENTS and preview.encodings == {"GSM-7": 27_000, "UCS-2": 3_000}

    bulk = bulk_sms_send(operator=operator, subscribers=everyone, template_or_text=TEXT)

    assert bulk.queued == RECIPIENTS and bulk.total_segments == preview.total_segments
    assert Message.objects.filter(bulk=bulk, status="queued").count() == RECIPIENTS
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(DISTINCT (args->>'message_id')) FROM procrastinate_jobs
               WHERE task_name = 'notifications.send_message' AND status = 'todo'
                 AND (args->>'message_id')::bigint IN (SELECT id FROM notifications_message WHERE bulk_id = %s)""",
            [bulk.pk],
        )
        assert cursor.fetchone()[0] == RECIPIENTS
    sample = Message.objects.get(bulk=bulk, subscriber__customer_id="BLK000007")
    due = LedgerEntry.objects.get(subscriber=sample.subscriber_id).amount
    expected = f"Dear Subscriber 7, BDT {due:,.2f} is due (BLK000007). Please pay by the 10th. {operator.name}"
    assert sample.body == expected
