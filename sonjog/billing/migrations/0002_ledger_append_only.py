from django.db import migrations

APPEND_ONLY = """
CREATE FUNCTION billing_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'billing_ledgerentry is append-only: % refused; append a reversal instead', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER billing_ledger_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_append_only();

-- A reversal cancels exactly its original: same subscriber, opposite amount, same category.
CREATE FUNCTION billing_reversal_matches() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE original billing_ledgerentry%ROWTYPE;
BEGIN
    IF NEW.reverses_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT * INTO original FROM billing_ledgerentry WHERE id = NEW.reverses_id;
    IF original.kind = 'reversal' THEN
        RAISE EXCEPTION 'a reversal cannot itself be reversed' USING ERRCODE = 'check_violation';
    END IF;
    IF original.subscriber_id <> NEW.subscriber_id OR original.amount <> -NEW.amount
            OR original.category <> NEW.category THEN
        RAISE EXCEPTION 'reversal of entry % must mirror it exactly', NEW.reverses_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER billing_reversal_matches
    BEFORE INSERT ON billing_ledgerentry
    FOR EACH ROW WHEN (NEW.reverses_id IS NOT NULL) EXECUTE FUNCTION billing_reversal_matches();
"""

DROP = """
DROP TRIGGER billing_reversal_matches ON billing_ledgerentry;
DROP FUNCTION billing_reversal_matches();
DROP TRIGGER billing_ledger_append_only ON billing_ledgerentry;
DROP FUNCTION billing_ledger_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunSQL(APPEND_ONLY, DROP)]
