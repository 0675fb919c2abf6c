from django.db import migrations

# Fair usage: a subscriber with an open throttle (automation_fupstate) is in group fup-<package>,
# whose reply carries the package's reduced rate. Suspension still wins over fair usage.
VIEWS = """
CREATE OR REPLACE VIEW radusergroup AS
    SELECT s.id AS id, s.pppoe_username::text AS username,
           CASE WHEN s.service_intent = 'suspended' THEN 'suspended'
                WHEN EXISTS (SELECT 1 FROM automation_fupstate f
                             WHERE f.subscriber_id = s.id AND f.released_at IS NULL) THEN 'fup-' || s.package_id
                ELSE 'package-' || s.package_id END::text AS groupname,
           1 AS priority
    FROM customers_subscriber s
    WHERE s.service_intent IN ('active', 'suspended');

CREATE OR REPLACE VIEW radgroupreply AS
    SELECT p.id * 10 AS id, ('package-' || p.id)::text AS groupname, 'Mikrotik-Rate-Limit'::text AS attribute,
           ':='::text AS op, (p.upload_kbps || 'k/' || p.download_kbps || 'k')::text AS value
    FROM catalog_package p
    UNION ALL
    SELECT -1, 'suspended', 'Framed-Pool', ':=', 'suspended'
    UNION ALL
    SELECT -2, 'suspended', 'Mikrotik-Address-List', ':=', 'suspended'
    UNION ALL
    SELECT -3, 'suspended', 'Mikrotik-Rate-Limit', ':=', '256k/256k'
    UNION ALL
    SELECT p.id * 10 + 1, ('fup-' || p.id)::text, 'Mikrotik-Rate-Limit', ':=',
           (p.fup_upload_kbps || 'k/' || p.fup_download_kbps || 'k')::text
    FROM catalog_package p WHERE p.data_allowance_gb IS NOT NULL;
"""

PREVIOUS = """
CREATE OR REPLACE VIEW radusergroup AS
    SELECT s.id AS id, s.pppoe_username::text AS username,
           CASE WHEN s.service_intent = 'suspended' THEN 'suspended' ELSE 'package-' || s.package_id END::text
               AS groupname,
           1 AS priority
    FROM customers_subscriber s
    WHERE s.service_intent IN ('active', 'suspended');
DROP VIEW radgroupreply;
CREATE VIEW radgroupreply AS
    SELECT p.id * 10 AS id, ('package-' || p.id)::text AS groupname, 'Mikrotik-Rate-Limit'::text AS attribute,
           ':='::text AS op, (p.upload_kbps || 'k/' || p.download_kbps || 'k')::text AS value
    FROM catalog_package p
    UNION ALL
    SELECT -1, 'suspended', 'Framed-Pool', ':=', 'suspended'
    UNION ALL
    SELECT -2, 'suspended', 'Mikrotik-Address-List', ':=', 'suspended'
    UNION ALL
    SELECT -3, 'suspended', 'Mikrotik-Rate-Limit', ':=', '256k/256k';
"""


class Migration(migrations.Migration):
    dependencies = [
        ("network", "0002_radius_views"),
        ("automation", "0001_initial"),
        ("catalog", "0002_fair_usage_rate"),
    ]
    operations = [migrations.RunSQL(VIEWS, PREVIOUS)]
