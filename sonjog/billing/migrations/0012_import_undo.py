from django.db import migrations

# ADR 0014: an import undone while nothing touched its subscribers deletes their opening balances. The
# ledger stays append-only for everything else: a DELETE passes only for an `opening_balance` entry and
# only in a transaction that set `sonjog.import_undo` (billing.services.opening does, after its checks).
ALLOW_IMPORT_UNDO = """
CREATE OR REPLACE FUNCTION billing_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.kind = 'opening_balance'
            AND current_setting('sonjog.import_undo', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'billing_ledgerentry is append-only: % refused; append a reversal instead', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION billing_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'billing_ledgerentry is append-only: % refused; append a reversal instead', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0011_credit_lines")]
    operations = [migrations.RunSQL(ALLOW_IMPORT_UNDO, APPEND_ONLY)]
