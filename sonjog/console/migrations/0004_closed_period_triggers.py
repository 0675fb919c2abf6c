"""Record changes to statements of closed periods, so the console can cache the sums of those periods
and still prove each cached figure current.

Statement-level triggers with transition tables, like the dashboard NOTIFY: one small INSERT per
writing statement and operator, and only when a row of a period before last month (in UTC, a month
of slack against any operator's time zone) is written. Today's payments and this month's bills write
nothing here."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION console_record_closed_period_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO console_closedperiodchange (operator_id, from_period, xid, recorded_at)
    SELECT operator_id, min(period_month), pg_current_xact_id()::text::bigint, now()
    FROM new_rows
    WHERE period_month < (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month')::date
    GROUP BY operator_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER console_statement_insert_closed
    AFTER INSERT ON billing_statement REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION console_record_closed_period_change();

CREATE TRIGGER console_statement_update_closed
    AFTER UPDATE ON billing_statement REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION console_record_closed_period_change();

CREATE TRIGGER console_statement_delete_closed
    AFTER DELETE ON billing_statement REFERENCING OLD TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION console_record_closed_period_change();
"""

DROP = """
DROP TRIGGER IF EXISTS console_statement_delete_closed ON billing_statement;
DROP TRIGGER IF EXISTS console_statement_update_closed ON billing_statement;
DROP TRIGGER IF EXISTS console_statement_insert_closed ON billing_statement;
DROP FUNCTION IF EXISTS console_record_closed_period_change();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0003_closed_period_changes"),
        ("billing", "0004_fewer_redundant_indexes"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
