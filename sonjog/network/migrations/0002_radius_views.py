from django.db import migrations

# FreeRADIUS's rlm_sql reads these views. They derive from Sonjog's own tables, so RADIUS can never
# disagree with intent (ADR 0002): there is nothing to keep in sync.
VIEWS = """
CREATE VIEW radcheck AS
    SELECT s.id AS id, s.pppoe_username::text AS username, 'Cleartext-Password'::text AS attribute,
           ':='::text AS op, s.pppoe_password::text AS value
    FROM customers_subscriber s
    WHERE s.service_intent IN ('active', 'suspended');

CREATE VIEW radreply AS
    SELECT s.id AS id, s.pppoe_username::text AS username, 'Framed-IP-Address'::text AS attribute,
           ':='::text AS op, host(s.static_ip)::text AS value
    FROM customers_subscriber s
    WHERE s.service_intent = 'active' AND s.static_ip IS NOT NULL;

-- Active subscribers are in their package's group; suspended ones in the "suspended" group.
CREATE VIEW radusergroup AS
    SELECT s.id AS id, s.pppoe_username::text AS username,
           CASE WHEN s.service_intent = 'suspended' THEN 'suspended' ELSE 'package-' || s.package_id END::text
               AS groupname,
           1 AS priority
    FROM customers_subscriber s
    WHERE s.service_intent IN ('active', 'suspended');

CREATE VIEW radgroupcheck AS
    SELECT 0::bigint AS id, ''::text AS groupname, ''::text AS attribute, ''::text AS op, ''::text AS value
    WHERE false;

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

DROP = """
DROP VIEW radgroupreply; DROP VIEW radgroupcheck; DROP VIEW radusergroup; DROP VIEW radreply; DROP VIEW radcheck;
"""


class Migration(migrations.Migration):
    dependencies = [("network", "0001_initial"), ("customers", "0002_subscriber_router_subscriber_static_ip")]
    operations = [migrations.RunSQL(VIEWS, DROP)]
