from django.db import migrations

# Add-on effects in RADIUS (ADR 0008), as views like every other RADIUS row (ADR 0002). An add-on
# stretch runs on the days [start_date, end_date) of its operator's calendar, judged by the database
# clock in the operator's time zone, the clock FreeRADIUS itself runs on. Only active subscribers get
# effects; suspension's group reply stays as it was.
#
# - Framed-IP-Address: the subscriber's static_ip while it is in force: a static-IP add-on runs, or
#   none has ever started for the subscriber (an address that predates add-ons keeps working).
# - Mikrotik-Address-List: one row per running address-list add-on ("+=": a second list adds to the
#   reply instead of replacing the first).
# - Framed-Pool: a running static-IP add-on that names a pool, for a subscriber with no static_ip of
#   its own, has the NAS take the address from that pool (of two such add-ons, the later one wins).
#
# Each branch starts from the subscriber row so that FreeRADIUS's "WHERE username = ..." reaches the
# unique index on pppoe_username in every branch.
VIEWS = """
CREATE OR REPLACE VIEW radreply AS
    SELECT s.id * 4 AS id, s.pppoe_username::text AS username, 'Framed-IP-Address'::text AS attribute,
           ':='::text AS op, host(s.static_ip)::text AS value
    FROM customers_subscriber s
    JOIN operators_operator o ON o.id = s.operator_id
    CROSS JOIN LATERAL (SELECT (now() AT TIME ZONE o.time_zone)::date AS today) d
    WHERE s.service_intent = 'active' AND s.static_ip IS NOT NULL
      AND (EXISTS (SELECT 1 FROM customers_subscriberaddon sa JOIN catalog_addon a ON a.id = sa.addon_id
                   WHERE sa.subscriber_id = s.id AND a.effect = 'static_ip' AND sa.start_date <= d.today
                     AND (sa.end_date IS NULL OR sa.end_date > d.today))
           OR NOT EXISTS (SELECT 1 FROM customers_subscriberaddon sa JOIN catalog_addon a ON a.id = sa.addon_id
                          WHERE sa.subscriber_id = s.id AND a.effect = 'static_ip' AND sa.start_date <= d.today))
    UNION ALL
    SELECT sa.id * 4 + 1, s.pppoe_username::text, 'Mikrotik-Address-List', '+=', a.effect_value::text
    FROM customers_subscriber s
    JOIN operators_operator o ON o.id = s.operator_id
    CROSS JOIN LATERAL (SELECT (now() AT TIME ZONE o.time_zone)::date AS today) d
    JOIN customers_subscriberaddon sa ON sa.subscriber_id = s.id
    JOIN catalog_addon a ON a.id = sa.addon_id
    WHERE s.service_intent = 'active' AND a.effect = 'address_list'
      AND sa.start_date <= d.today AND (sa.end_date IS NULL OR sa.end_date > d.today)
    UNION ALL
    SELECT sa.id * 4 + 2, s.pppoe_username::text, 'Framed-Pool', ':=', a.effect_value::text
    FROM customers_subscriber s
    JOIN operators_operator o ON o.id = s.operator_id
    CROSS JOIN LATERAL (SELECT (now() AT TIME ZONE o.time_zone)::date AS today) d
    JOIN customers_subscriberaddon sa ON sa.subscriber_id = s.id
    JOIN catalog_addon a ON a.id = sa.addon_id
    WHERE s.service_intent = 'active' AND s.static_ip IS NULL AND a.effect = 'static_ip' AND a.effect_value <> ''
      AND sa.start_date <= d.today AND (sa.end_date IS NULL OR sa.end_date > d.today);
"""

PREVIOUS = """
CREATE OR REPLACE VIEW radreply AS
    SELECT s.id AS id, s.pppoe_username::text AS username, 'Framed-IP-Address'::text AS attribute,
           ':='::text AS op, host(s.static_ip)::text AS value
    FROM customers_subscriber s
    WHERE s.service_intent = 'active' AND s.static_ip IS NOT NULL;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("network", "0003_radius_fair_usage"),
        ("customers", "0004_subscriberaddon"),
        ("catalog", "0003_addon"),
        ("operators", "0001_initial"),
    ]
    operations = [migrations.RunSQL(VIEWS, PREVIOUS)]
