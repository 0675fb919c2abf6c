"""ledger_verify: every money invariant checked over all data, in SQL so it scales to millions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connection

COUNTS_SQL = {
    "ledger_entries": "SELECT count(*) FROM billing_ledgerentry",
    "statements": "SELECT count(*) FROM billing_statement",
    "bills": "SELECT count(*) FROM billing_bill",
    "payments": "SELECT count(*) FROM billing_payment",
    "allocations": "SELECT count(*) FROM billing_allocation",
    "invoices": "SELECT count(*) FROM billing_invoice",
    "credit_notes": "SELECT count(*) FROM billing_creditnote",
    "credit_lines": "SELECT count(*) FROM billing_creditline",
    "subscribers": "SELECT count(*) FROM customers_subscriber",
    "float_accounts": "SELECT count(*) FROM billing_floataccount",
    "float_entries": "SELECT count(*) FROM billing_floatentry",
}

# Each check returns the offending rows (at most 20 shown); an empty result means it holds.
CHECKS: dict[str, str] = {
    "statements_match_ledger": """
        WITH projected AS (
            SELECT subscriber_id, period_month,
                   COALESCE(sum(amount) FILTER (WHERE category = 'billed'), 0) AS billed,
                   COALESCE(-sum(amount) FILTER (WHERE category = 'paid'), 0) AS paid,
                   COALESCE(sum(amount) FILTER (WHERE category = 'adjusted'), 0) AS adjusted,
                   sum(sum(amount)) OVER (PARTITION BY subscriber_id ORDER BY period_month) AS closing_due
            FROM billing_ledgerentry GROUP BY subscriber_id, period_month
        )
        SELECT COALESCE(p.subscriber_id, s.subscriber_id), COALESCE(p.period_month, s.period_month),
               p.closing_due AS ledger_closing, s.closing_due AS statement_closing
        FROM projected p FULL JOIN billing_statement s
          ON s.subscriber_id = p.subscriber_id AND s.period_month = p.period_month
        WHERE s.id IS NULL OR p.subscriber_id IS NULL OR s.billed <> p.billed OR s.paid <> p.paid
           OR s.adjusted <> p.adjusted OR s.closing_due <> p.closing_due
    """,
    "statement_chain": """
        SELECT subscriber_id, period_month, opening_due, previous_closing FROM (
            SELECT subscriber_id, period_month, opening_due,
                   COALESCE(lag(closing_due) OVER (PARTITION BY subscriber_id ORDER BY period_month), 0)
                       AS previous_closing
            FROM billing_statement) chained
        WHERE opening_due <> previous_closing
    """,
    "statement_identity": """
        SELECT id FROM billing_statement WHERE closing_due <> opening_due + billed - paid + adjusted
    """,
    "reversed_at_most_once": """
        SELECT reverses_id, count(*) FROM billing_ledgerentry WHERE reverses_id IS NOT NULL
        GROUP BY reverses_id HAVING count(*) > 1
    """,
    "reversals_mirror_originals": """
        SELECT r.id FROM billing_ledgerentry r JOIN billing_ledgerentry o ON o.id = r.reverses_id
        WHERE o.kind = 'reversal' OR r.amount <> -o.amount OR r.subscriber_id <> o.subscriber_id
           OR r.category <> o.category
    """,
    "one_effective_bill_per_period": """
        SELECT subscriber_id, period_month, count(*) FROM billing_bill WHERE reversed_at IS NULL AND kind = 'period'
        GROUP BY subscriber_id, period_month HAVING count(*) > 1
    """,
    "bills_match_ledger": """
        SELECT b.id FROM billing_bill b
        LEFT JOIN billing_ledgerentry e ON e.bill_id = b.id
            AND CASE b.kind WHEN 'period' THEN e.kind = 'bill'
                ELSE e.kind IN ('adjustment', 'opening_balance') AND e.amount > 0 END
        LEFT JOIN billing_ledgerentry r ON r.reverses_id = e.id
        WHERE e.id IS NULL OR e.amount <> b.total OR (r.id IS NULL) <> (b.reversed_at IS NULL)
    """,
    "bill_lines_sum_to_total": """
        SELECT b.id FROM billing_bill b JOIN billing_billline l ON l.bill_id = b.id
        GROUP BY b.id, b.total HAVING sum(l.amount) <> b.total
    """,
    "payments_match_ledger": """
        SELECT p.id FROM billing_payment p
        LEFT JOIN billing_ledgerentry e ON e.payment_id = p.id AND e.kind = 'payment'
        WHERE e.id IS NULL OR e.amount <> -p.amount
    """,
    "allocations_within_sources": """
        SELECT a.source_id, sum(a.amount), -max(e.amount) FROM billing_allocation a
        JOIN billing_ledgerentry e ON e.id = a.source_id
        GROUP BY a.source_id HAVING sum(a.amount) > -max(e.amount) OR sum(a.amount) < 0
    """,
    "allocations_within_bills": """
        SELECT a.bill_id, sum(a.amount), max(b.total) FROM billing_allocation a
        JOIN billing_bill b ON b.id = a.bill_id
        GROUP BY a.bill_id HAVING sum(a.amount) > max(b.total) OR sum(a.amount) < 0
    """,
    "bill_allocated_matches_allocations": """
        SELECT b.id, b.allocated, COALESCE(a.amount, 0) FROM billing_bill b
        LEFT JOIN (SELECT bill_id, sum(amount) AS amount FROM billing_allocation GROUP BY bill_id) a
          ON a.bill_id = b.id
        WHERE b.allocated <> COALESCE(a.amount, 0)
    """,
    "allocations_same_subscriber": """
        SELECT a.id FROM billing_allocation a JOIN billing_ledgerentry e ON e.id = a.source_id
        JOIN billing_bill b ON b.id = a.bill_id WHERE e.subscriber_id <> b.subscriber_id
    """,
    "no_allocation_to_reversed": """
        SELECT a.bill_id, a.source_id, sum(a.amount) FROM billing_allocation a
        JOIN billing_bill b ON b.id = a.bill_id
        WHERE b.reversed_at IS NOT NULL
           OR EXISTS (SELECT 1 FROM billing_ledgerentry r WHERE r.reverses_id = a.source_id)
        GROUP BY a.bill_id, a.source_id HAVING sum(a.amount) <> 0
    """,
    "invoice_numbers_gapless": """
        SELECT operator_id, year, count(*), min(number), max(number) FROM billing_invoice
        GROUP BY operator_id, year HAVING min(number) <> 1 OR max(number) <> count(*)
    """,
    "credit_note_numbers_gapless": """
        SELECT operator_id, year, count(*), min(number), max(number) FROM billing_creditnote
        GROUP BY operator_id, year HAVING min(number) <> 1 OR max(number) <> count(*)
    """,
    "sequences_match_documents": """
        SELECT q.operator_id, q.kind, q.year, q.last_number, COALESCE(i.n, c.n, 0) FROM billing_documentsequence q
        LEFT JOIN (SELECT operator_id, year, max(number) n FROM billing_invoice GROUP BY 1, 2) i
          ON q.kind = 'invoice' AND i.operator_id = q.operator_id AND i.year = q.year
        LEFT JOIN (SELECT operator_id, year, max(number) n FROM billing_creditnote GROUP BY 1, 2) c
          ON q.kind = 'credit_note' AND c.operator_id = q.operator_id AND c.year = q.year
        WHERE q.last_number <> COALESCE(i.n, c.n, 0)
    """,
    # Every positive entry is an open item (a period bill or a charge): a debit outside one could be
    # paid without any bill showing it, and its payment would turn into credit.
    "every_debit_is_an_open_item": """
        SELECT e.id, e.subscriber_id, e.kind, e.amount FROM billing_ledgerentry e
        WHERE e.kind IN ('adjustment', 'opening_balance') AND e.amount > 0
          AND NOT EXISTS (SELECT 1 FROM billing_bill b WHERE b.id = e.bill_id AND b.kind = 'charge')
        ORDER BY e.subscriber_id, e.id
    """,
    # The open-items invariant: what every effective bill and charge still has open, less the credit
    # not yet allocated, is the subscriber's balance (in every mode; the first that breaks it is named).
    "open_items_equal_balance": """
        WITH balance AS (
            SELECT subscriber_id, sum(amount) AS amount FROM billing_ledgerentry GROUP BY subscriber_id
        ), open_items AS (
            SELECT subscriber_id, sum(total - allocated) AS amount FROM billing_bill
            WHERE reversed_at IS NULL GROUP BY subscriber_id
        ), allocated_from AS (
            SELECT source_id, sum(amount) AS amount FROM billing_allocation GROUP BY source_id
        ), waiting_credit AS (
            SELECT e.subscriber_id, sum(-e.amount - COALESCE(a.amount, 0)) AS amount
            FROM billing_ledgerentry e LEFT JOIN allocated_from a ON a.source_id = e.id
            WHERE e.kind IN ('payment', 'adjustment', 'opening_balance') AND e.amount < 0
              AND NOT EXISTS (SELECT 1 FROM billing_ledgerentry r WHERE r.reverses_id = e.id)
            GROUP BY e.subscriber_id
        )
        SELECT b.subscriber_id, b.amount AS balance, COALESCE(o.amount, 0) AS open_items,
               COALESCE(c.amount, 0) AS waiting_credit
        FROM balance b
        LEFT JOIN open_items o ON o.subscriber_id = b.subscriber_id
        LEFT JOIN waiting_credit c ON c.subscriber_id = b.subscriber_id
        WHERE b.amount <> COALESCE(o.amount, 0) - COALESCE(c.amount, 0)
        ORDER BY b.subscriber_id
    """,
    # Credits naming a bill never exceed it (ADR 0010): the entries naming a bill (its own, the credits,
    # their withdrawals, the void) add up to what still stands of it, within [0, total], and to zero
    # once it is voided (the void took back the credits given on it).
    # Only bills some credit or void names can break it (a bill's own entry is bills_match_ledger's).
    "credits_within_bills": """
        WITH credited AS (
            SELECT DISTINCT bill_id FROM billing_ledgerentry
            WHERE bill_id IS NOT NULL AND kind IN ('adjustment', 'reversal')
              AND NOT (kind = 'adjustment' AND amount > 0)
        )
        SELECT b.id, b.total, s.standing FROM credited c
        JOIN billing_bill b ON b.id = c.bill_id
        CROSS JOIN LATERAL (SELECT sum(e.amount) AS standing FROM billing_ledgerentry e WHERE e.bill_id = b.id) s
        WHERE s.standing < 0 OR s.standing > b.total OR (b.reversed_at IS NOT NULL AND s.standing <> 0)
        ORDER BY b.id
    """,
    # A credit note mirrors the lines it credits: every entry that credits a bill (a credit, the
    # withdrawal of one, a void) has credit lines on that bill's lines adding up to it, VAT included.
    "credit_lines_sum_to_credit": """
        SELECT e.id, e.bill_id, -e.amount AS credit, COALESCE(l.amount, 0) AS lines FROM billing_ledgerentry e
        LEFT JOIN (SELECT entry_id, sum(amount + vat) AS amount FROM billing_creditline GROUP BY entry_id) l
          ON l.entry_id = e.id
        WHERE e.bill_id IS NOT NULL AND e.kind IN ('adjustment', 'reversal')
          AND NOT (e.kind = 'adjustment' AND e.amount > 0) AND COALESCE(l.amount, 0) <> -e.amount
        ORDER BY e.id
    """,
    "credit_lines_on_the_bill_credited": """
        SELECT c.id FROM billing_creditline c
        JOIN billing_ledgerentry e ON e.id = c.entry_id JOIN billing_billline l ON l.id = c.bill_line_id
        WHERE e.bill_id IS DISTINCT FROM l.bill_id OR l.kind = 'vat'
    """,
    # No line is credited past what it charged, nor its VAT past its VAT.
    "credit_lines_within_bill_lines": """
        SELECT l.id, l.amount, l.vat, c.amount, c.vat FROM billing_billline l
        JOIN (SELECT bill_line_id, sum(amount) AS amount, sum(vat) AS vat FROM billing_creditline
              GROUP BY bill_line_id) c ON c.bill_line_id = l.id
        WHERE c.amount < least(l.amount, 0) OR c.amount > greatest(l.amount, 0) OR c.vat < 0 OR c.vat > l.vat
    """,
    # A void's credit note: its lines (the void's, and the credits it took back) add up to its amount.
    "credit_note_lines_sum_to_note": """
        SELECT n.id, n.amount, COALESCE(l.amount, 0) FROM billing_creditnote n
        LEFT JOIN (SELECT credit_note_id, sum(amount + vat) AS amount FROM billing_creditline
                   WHERE credit_note_id IS NOT NULL GROUP BY credit_note_id) l ON l.credit_note_id = n.id
        WHERE n.amount <> COALESCE(l.amount, 0)
    """,
    "voided_invoices_have_credit_notes": """
        SELECT i.id FROM billing_invoice i LEFT JOIN billing_creditnote c ON c.invoice_id = i.id
        WHERE (i.voided_at IS NULL) <> (c.id IS NULL)
    """,
    # Resellers' floats (services/floats.py): the balance is the sum of the entries, each entry's
    # balance after is the running sum, and nothing stands below the floor.
    "float_balance_is_sum_of_entries": """
        SELECT a.id, a.balance, COALESCE(e.total, 0) FROM billing_floataccount a
        LEFT JOIN (SELECT account_id, sum(amount) AS total FROM billing_floatentry GROUP BY account_id) e
          ON e.account_id = a.id
        WHERE a.balance <> COALESCE(e.total, 0)
    """,
    "float_balance_after_is_running_sum": """
        SELECT id, balance_after, running FROM (
            SELECT id, balance_after, sum(amount) OVER (PARTITION BY account_id ORDER BY id) AS running
            FROM billing_floatentry) e
        WHERE balance_after <> running
    """,
    "float_above_floor": """
        SELECT id, balance, credit_limit FROM billing_floataccount WHERE balance < -credit_limit
    """,
    "float_credit_backs_within_charge": """
        SELECT c.id, -c.amount, sum(b.amount) FROM billing_floatentry c
        JOIN billing_floatentry b ON b.charge_id = c.id AND b.kind = 'credit_back'
        GROUP BY c.id, c.amount HAVING sum(b.amount) > -c.amount
    """,
    # Every bill of a reseller's subscriber is charged on the reseller's float (when it was written
    # after the float was opened: `bills_from_id`), and every level charged is charged at the next
    # level up too when that one had a float by then:
    # one charge per (bill, level), never skipped.
    "float_bills_charged_at_their_reseller": """
        SELECT b.id, a.id FROM billing_bill b
        JOIN customers_subscriber s ON s.id = b.subscriber_id
        JOIN billing_floataccount a ON a.operator_id = s.operator_id AND b.id > a.bills_from_id
        WHERE b.kind = 'period' AND NOT EXISTS (
            SELECT 1 FROM billing_floatentry e
            WHERE e.bill_id = b.id AND e.account_id = a.id AND e.kind = 'charge')
    """,
    "float_charged_at_every_level_up": """
        SELECT e.bill_id, up.id FROM billing_floatentry e
        JOIN billing_floataccount a ON a.id = e.account_id
        JOIN operators_operator o ON o.id = a.operator_id
        JOIN billing_bill b ON b.id = e.bill_id
        JOIN billing_floataccount up ON up.operator_id = o.parent_id AND b.id > up.bills_from_id
        WHERE e.kind = 'charge' AND NOT EXISTS (
            SELECT 1 FROM billing_floatentry x
            WHERE x.bill_id = e.bill_id AND x.account_id = up.id AND x.kind = 'charge')
    """,
    "float_charges_belong_to_the_bills_chain": """
        SELECT e.id FROM billing_floatentry e
        JOIN billing_floataccount a ON a.id = e.account_id
        JOIN operators_operator lvl ON lvl.id = a.operator_id
        JOIN billing_bill b ON b.id = e.bill_id
        JOIN customers_subscriber s ON s.id = b.subscriber_id
        JOIN operators_operator o ON o.id = s.operator_id
        WHERE e.kind = 'charge' AND (e.subscriber_id <> b.subscriber_id OR NOT starts_with(o.path, lvl.path))
    """,
}


@dataclass
class VerificationReport:
    counts: dict[str, int] = field(default_factory=dict)
    violations: dict[str, list[list[Any]]] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts, "checks": self.checks, "violations": self.violations}


def ledger_verify() -> VerificationReport:
    report = VerificationReport()
    with connection.cursor() as cursor:
        for name, sql in COUNTS_SQL.items():
            cursor.execute(sql)
            row = cursor.fetchone()
            report.counts[name] = int(row[0]) if row else 0
        for name, sql in CHECKS.items():
            cursor.execute(sql + " LIMIT 20")
            rows = [list(row) for row in cursor.fetchall()]
            report.checks[name] = not rows
            if rows:
                report.violations[name] = rows
    return report
