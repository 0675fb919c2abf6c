"""NOTIFY the dashboards when money moves.

Statement-level triggers with transition tables: one pg_notify per operator touched by a statement,
whatever its row count, so a 30,000-bill generation run costs three notifications, not 30,000 trigger
calls. PostgreSQL delivers notifications at commit (none for a rolled-back transaction) and folds
identical ones within a transaction, so the payment and its ledger entry reach a listener once.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION console_notify_dashboard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sonjog_dashboard', changed.operator_id::text)
    FROM (SELECT DISTINCT operator_id FROM new_rows) AS changed;
    RETURN NULL;
END;
$$;

CREATE TRIGGER console_payment_notify
    AFTER INSERT ON billing_payment REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION console_notify_dashboard();

CREATE TRIGGER console_ledgerentry_notify
    AFTER INSERT ON billing_ledgerentry REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION console_notify_dashboard();
"""

DROP = """
DROP TRIGGER IF EXISTS console_ledgerentry_notify ON billing_ledgerentry;
DROP TRIGGER IF EXISTS console_payment_notify ON billing_payment;
DROP FUNCTION IF EXISTS console_notify_dashboard();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_initial"),
        ("billing", "0004_fewer_redundant_indexes"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
