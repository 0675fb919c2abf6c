"""The SQL of bill generation (`generation.py`): the candidates of a run, their add-ons, the one
INSERT chain that writes a run's bills, lines, ledger entries and invoices, and the run records a
killed run left open."""

# Candidates with their billing inputs, locked in id order. The two probes per subscriber use the
# (subscriber_id, period_month) index, so this stays cheap however long the history is. Only effective
# period bills count: a voided bill's period is billed again, and backfill starts after the latest
# bill that still stands.
CANDIDATES_SQL = """
SELECT s.id, s.customer_id, s.activation_date, s.terminated_on, s.billing_mode, s.billing_cycle,
       s.billing_day, s.monthly_discount, p.id, p.price, p.vat_applicable, p.name,
       (SELECT max(b.period_month) FROM billing_bill b
        WHERE b.subscriber_id = s.id AND b.reversed_at IS NULL AND b.kind = 'period'),
       EXISTS (SELECT 1 FROM billing_bill b WHERE b.subscriber_id = s.id AND b.period_month = %(month)s
               AND b.reversed_at IS NULL AND b.kind = 'period'),
       s.billing_starts_on,
       (SELECT array_agg(daterange(h.start_date, h.end_date)) FROM billing_billinghold h
        WHERE h.subscriber_id = s.id)
FROM customers_subscriber s
JOIN catalog_package p ON p.id = s.package_id
WHERE s.operator_id = %(operator_id)s
  AND s.activation_date IS NOT NULL
  AND (s.terminated_on IS NULL OR s.terminated_on > %(earliest)s)
  AND (%(only_ids)s::bigint[] IS NULL OR s.id = ANY(%(only_ids)s::bigint[]))
ORDER BY s.id
FOR NO KEY UPDATE OF s
"""


# Every candidate's add-ons that can overlap a period this run may bill, in one query whatever their
# number, each with the one-off charges that already billed it for such a period (an add-on started
# in a period already billed is charged for the rest of it): a period billed again, after its bill
# was voided, bills the add-on only for the days before that charge, never twice. An operator without
# add-ons pays one probe that finds nothing; the charges come from their own small partial index.
ADDONS_SQL = """
WITH charged AS (
    SELECT l.subscriber_addon_id, array_agg(b.period_month ORDER BY b.id) AS months,
           array_agg(b.period_start ORDER BY b.id) AS starts
    FROM billing_bill b
    JOIN billing_billline l ON l.bill_id = b.id AND l.kind = 'addon'
    WHERE b.operator_id = %(operator_id)s AND b.kind = 'charge' AND b.reversed_at IS NULL
      AND b.period_month >= %(since_month)s AND b.period_month < %(until)s
      AND (%(only_ids)s::bigint[] IS NULL OR b.subscriber_id = ANY(%(only_ids)s::bigint[]))
    GROUP BY l.subscriber_addon_id
)
SELECT sa.subscriber_id, sa.id, sa.start_date, sa.end_date, a.name, a.price, a.vat_applicable, c.months, c.starts
FROM customers_subscriberaddon sa
JOIN customers_subscriber s ON s.id = sa.subscriber_id
JOIN catalog_addon a ON a.id = sa.addon_id
LEFT JOIN charged c ON c.subscriber_addon_id = sa.id
WHERE s.operator_id = %(operator_id)s
  AND (sa.end_date IS NULL OR sa.end_date > %(since)s) AND sa.start_date < %(until)s
  AND (%(only_ids)s::bigint[] IS NULL OR sa.subscriber_id = ANY(%(only_ids)s::bigint[]))
ORDER BY sa.subscriber_id, sa.start_date, sa.id
"""


# One statement writes a run's bills, their ledger entries, lines and invoices, and takes the
# invoice numbers: the sequence row is locked until commit, so the numbers stay gapless. Add-on lines
# come in their own arrays and land on the bills actually inserted (matched on subscriber and period);
# the package line is the bill's subtotal and VAT less its add-on lines'.
INSERT_RUN_SQL = """
WITH new_bills AS (
    INSERT INTO billing_bill (operator_id, subscriber_id, package_id, run_id, period_month, period_start,
        period_end, due_date, subtotal, discount, vat, total, is_prorated, created_at)
    SELECT %(operator_id)s, r.subscriber_id, r.package_id, %(run_id)s, r.period_month, r.period_start,
        r.period_end, r.due_date, r.subtotal, r.discount, r.vat, r.total, r.is_prorated, %(now)s
    FROM unnest(%(subscriber_id)s::bigint[], %(package_id)s::bigint[], %(period_month)s::date[],
        %(period_start)s::date[], %(period_end)s::date[], %(due_date)s::date[], %(subtotal)s::numeric[],
        %(discount)s::numeric[], %(vat)s::numeric[], %(total)s::numeric[], %(is_prorated)s::boolean[])
        AS r(subscriber_id, package_id, period_month, period_start, period_end, due_date, subtotal,
             discount, vat, total, is_prorated)
    ORDER BY r.subscriber_id, r.period_month
    ON CONFLICT (subscriber_id, period_month) WHERE reversed_at IS NULL AND kind = 'period' DO NOTHING
    RETURNING id, subscriber_id, package_id, period_month, period_start, period_end, subtotal, discount, vat,
        total, is_prorated
), entries AS (
    INSERT INTO billing_ledgerentry (operator_id, subscriber_id, kind, category, amount, effective_date,
        period_month, bill_id, adjustment_reason, memo, created_at, created_by_id)
    SELECT %(operator_id)s, b.subscriber_id, 'bill', 'billed', b.total, b.period_start, b.period_month, b.id,
        '', '', %(now)s, %(actor_id)s
    FROM new_bills b ORDER BY b.id
), addon_rows AS (
    SELECT * FROM unnest(%(addon_subscriber_id)s::bigint[], %(addon_period_month)s::date[],
        %(addon_stretch_id)s::bigint[], %(addon_description)s::text[], %(addon_amount)s::numeric[],
        %(addon_vat)s::numeric[])
        AS a(subscriber_id, period_month, subscriber_addon_id, description, amount, vat)
), addon_sums AS (
    SELECT subscriber_id, period_month, sum(amount) AS amount, sum(vat) AS vat
    FROM addon_rows GROUP BY subscriber_id, period_month
), lines AS (
    INSERT INTO billing_billline (bill_id, kind, description, amount, vat, subscriber_addon_id)
    SELECT b.id, 'package', pk.name || CASE WHEN b.is_prorated
            THEN ' (' || (b.period_end - b.period_start) || ' days)' ELSE '' END,
        b.subtotal - COALESCE(s.amount, 0), b.vat - COALESCE(s.vat, 0), NULL::bigint
    FROM new_bills b JOIN catalog_package pk ON pk.id = b.package_id
    LEFT JOIN addon_sums s ON s.subscriber_id = b.subscriber_id AND s.period_month = b.period_month
    UNION ALL
    SELECT b.id, 'addon', a.description, a.amount, a.vat, a.subscriber_addon_id
    FROM new_bills b JOIN addon_rows a ON a.subscriber_id = b.subscriber_id AND a.period_month = b.period_month
    UNION ALL
    SELECT b.id, 'discount', 'Discount', -b.discount, 0, NULL FROM new_bills b WHERE b.discount > 0
    UNION ALL
    SELECT b.id, 'vat', 'VAT', b.vat, 0, NULL FROM new_bills b WHERE b.vat > 0
), counted AS (
    SELECT count(*) AS n FROM new_bills
), reserved AS (
    INSERT INTO billing_documentsequence (operator_id, kind, year, last_number)
    SELECT %(operator_id)s, 'invoice', %(year)s, n FROM counted WHERE n > 0
    ON CONFLICT ON CONSTRAINT document_sequence_unique
    DO UPDATE SET last_number = billing_documentsequence.last_number + EXCLUDED.last_number
    RETURNING last_number
), invoices AS (
    INSERT INTO billing_invoice (operator_id, bill_id, year, number, issued_on, total)
    SELECT %(operator_id)s, b.id, %(year)s, r.last_number - c.n + row_number() OVER (ORDER BY b.id),
        %(issued_on)s, b.total
    FROM new_bills b CROSS JOIN reserved r CROSS JOIN counted c
), placed AS (
    -- Where each new bill lands in its subscriber's statement chain. The common case, one new bill
    -- at or after the subscriber's latest statement, is projected right here; anything else (a
    -- backfill, a period before later ones) is re-projected by the general path afterwards.
    SELECT b.id, b.subscriber_id, b.period_month, b.total, latest.period_month AS latest_month,
           COALESCE(latest.closing_due, 0) AS balance_before,
           count(*) OVER (PARTITION BY b.subscriber_id) AS new_for_subscriber
    FROM new_bills b
    LEFT JOIN LATERAL (
        SELECT s.period_month, s.closing_due FROM billing_statement s
        WHERE s.subscriber_id = b.subscriber_id ORDER BY s.period_month DESC LIMIT 1
    ) latest ON true
), projected AS (
    INSERT INTO billing_statement (operator_id, subscriber_id, period_month, opening_due, billed, paid, adjusted,
        closing_due)
    SELECT %(operator_id)s, p.subscriber_id, p.period_month, p.balance_before, p.total, 0, 0,
        p.balance_before + p.total
    FROM placed p
    WHERE p.new_for_subscriber = 1 AND (p.latest_month IS NULL OR p.latest_month <= p.period_month)
    ON CONFLICT ON CONSTRAINT statement_one_per_period DO UPDATE SET
        billed = billing_statement.billed + EXCLUDED.billed,
        closing_due = billing_statement.closing_due + EXCLUDED.billed
)
SELECT id, subscriber_id, period_month, total, balance_before,
       new_for_subscriber = 1 AND (latest_month IS NULL OR latest_month <= period_month) AS projected
FROM placed
"""


# Runs of this (operator, period) still marked running whose database session is gone (or is another,
# newer session that reused the pid): they were killed before they could finish.
INTERRUPTED_SQL = """
UPDATE billing_billingrun r SET status = 'interrupted'
WHERE r.operator_id = %s AND r.period_month = %s AND r.status = 'running' AND r.id <> %s
  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.backend_pid AND a.backend_start <= r.started_at)
RETURNING r.id
"""
