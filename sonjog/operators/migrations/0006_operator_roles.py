# Roles as a per-operator permission matrix (ADR 0012): OperatorRole (one auth Group per operator and
# built-in role) and RoleOverride; existing staff move from the installation-wide "role:<role>" groups
# to their operator's group; a deferred trigger keeps every staff login in its role's group.

import django.db.models.deletion
from django.db import migrations, models

BUILT_IN_ROLES = ["owner", "manager", "billing_clerk", "collector", "network_engineer", "support", "reseller_staff"]


def staff_to_operator_roles(apps, schema_editor):
    Staff = apps.get_model("operators", "Staff")
    OperatorRole = apps.get_model("operators", "OperatorRole")
    Group = apps.get_model("auth", "Group")
    User = apps.get_model("auth", "User")
    Membership = User.groups.through
    old_names = [f"role:{role}" for role in BUILT_IN_ROLES]
    for operator_id, role in Staff.objects.values_list("operator_id", "role").distinct():
        group, _created = Group.objects.get_or_create(name=f"role:{operator_id}:{role}")
        old = Group.objects.filter(name=f"role:{role}").first()
        if old is not None:
            # The same permissions until the post-migrate refresh recomputes them from the code.
            group.permissions.set(old.permissions.all())
        OperatorRole.objects.get_or_create(operator_id=operator_id, base_role=role, defaults={"group": group})
    for staff in Staff.objects.all():
        group_id = OperatorRole.objects.get(operator_id=staff.operator_id, base_role=staff.role).group_id
        Membership.objects.filter(user_id=staff.user_id, group__name__in=old_names).delete()
        Membership.objects.get_or_create(user_id=staff.user_id, group_id=group_id)
    Group.objects.filter(name__in=old_names).delete()


ROLE_GROUP_TRIGGER = """
CREATE FUNCTION operators_staff_role_check(checked_user bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    staff_role varchar;
    expected integer;
BEGIN
    SELECT s.role, r.group_id INTO staff_role, expected
      FROM operators_staff s
      LEFT JOIN operators_operatorrole r ON r.operator_id = s.operator_id AND r.base_role = s.role
     WHERE s.user_id = checked_user;
    IF NOT FOUND THEN
        RETURN;  -- not a staff login (a superuser of the installation, or a login being deleted)
    END IF;
    IF expected IS NULL THEN
        RAISE EXCEPTION 'staff login % has the role % but its operator has no group for that role yet; make '
                        'staff with staff_create or call staff_role_sync', checked_user, staff_role
              USING ERRCODE = 'check_violation', CONSTRAINT = 'staff_in_role_group';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM auth_user_groups WHERE user_id = checked_user AND group_id = expected) THEN
        RAISE EXCEPTION 'staff login % is not in the group of its role %; staff_role_sync puts it there',
                        checked_user, staff_role
              USING ERRCODE = 'check_violation', CONSTRAINT = 'staff_in_role_group';
    END IF;
    IF EXISTS (SELECT 1 FROM auth_user_groups m JOIN operators_operatorrole r ON r.group_id = m.group_id
                WHERE m.user_id = checked_user AND m.group_id <> expected) THEN
        RAISE EXCEPTION 'staff login % is in the group of a role other than its own (%)', checked_user, staff_role
              USING ERRCODE = 'check_violation', CONSTRAINT = 'staff_in_role_group';
    END IF;
END $$;

CREATE FUNCTION operators_staff_role_check_staff() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM operators_staff_role_check(NEW.user_id);
    RETURN NULL;
END $$;

CREATE FUNCTION operators_staff_role_check_membership() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM operators_staff_role_check(NEW.user_id);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM operators_staff_role_check(OLD.user_id);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION operators_staff_role_check_role() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    holder bigint;
BEGIN
    FOR holder IN SELECT user_id FROM operators_staff WHERE operator_id = OLD.operator_id AND role = OLD.base_role
    LOOP
        PERFORM operators_staff_role_check(holder);
    END LOOP;
    IF TG_OP = 'UPDATE' THEN
        FOR holder IN SELECT user_id FROM operators_staff WHERE operator_id = NEW.operator_id AND role = NEW.base_role
        LOOP
            PERFORM operators_staff_role_check(holder);
        END LOOP;
    END IF;
    RETURN NULL;
END $$;

-- Deferred to the commit: a change moves a login out of one group and into another in two steps.
CREATE CONSTRAINT TRIGGER staff_in_role_group AFTER INSERT OR UPDATE ON operators_staff
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION operators_staff_role_check_staff();
CREATE CONSTRAINT TRIGGER staff_in_role_group_membership AFTER INSERT OR UPDATE OR DELETE ON auth_user_groups
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION operators_staff_role_check_membership();
CREATE CONSTRAINT TRIGGER staff_in_role_group_role AFTER UPDATE OR DELETE ON operators_operatorrole
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION operators_staff_role_check_role();
"""

ROLE_GROUP_TRIGGER_DROP = """
DROP TRIGGER IF EXISTS staff_in_role_group_role ON operators_operatorrole;
DROP TRIGGER IF EXISTS staff_in_role_group_membership ON auth_user_groups;
DROP TRIGGER IF EXISTS staff_in_role_group ON operators_staff;
DROP FUNCTION IF EXISTS operators_staff_role_check_role();
DROP FUNCTION IF EXISTS operators_staff_role_check_membership();
DROP FUNCTION IF EXISTS operators_staff_role_check_staff();
DROP FUNCTION IF EXISTS operators_staff_role_check(bigint);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("operators", "0005_operator_modules_and_settings_changes"),
    ]

    operations = [
        migrations.CreateModel(
            name="OperatorRole",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "base_role",
                    models.CharField(
                        choices=[
                            ("owner", "Owner"),
                            ("manager", "Manager"),
                            ("billing_clerk", "Billing clerk"),
                            ("collector", "Collector"),
                            ("network_engineer", "Network engineer"),
                            ("support", "Support"),
                            ("reseller_staff", "Reseller staff"),
                        ],
                        max_length=20,
                        verbose_name="role",
                    ),
                ),
                (
                    "name",
                    models.CharField(
                        blank=True, help_text="Empty: the built-in role's name", max_length=60, verbose_name="name"
                    ),
                ),
                (
                    "landing",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("dashboard", "Dashboard"),
                            ("collect", "Take a payment"),
                            ("billing", "Billing"),
                            ("subscribers", "Subscribers"),
                            ("network", "Network"),
                            ("messaging", "Messaging"),
                        ],
                        help_text="Empty: the built-in role's",
                        max_length=20,
                        verbose_name="lands on",
                    ),
                ),
                (
                    "group",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT, related_name="operator_role", to="auth.group"
                    ),
                ),
                (
                    "operator",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="roles", to="operators.operator"
                    ),
                ),
            ],
            options={
                "permissions": [
                    ("manage_staff", "Can create staff, change their roles and reset their passwords"),
                    ("act_for_resellers", "Can see and work in the accounts of the operator's resellers"),
                    ("view_dashboard", "Can see the dashboard's business figures"),
                ],
            },
        ),
        migrations.CreateModel(
            name="RoleOverride",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("granted", models.BooleanField()),
                (
                    "permission",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="auth.permission"
                    ),
                ),
                (
                    "role",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="overrides",
                        to="operators.operatorrole",
                    ),
                ),
            ],
        ),
        migrations.AddConstraint(
            model_name="operatorrole",
            constraint=models.UniqueConstraint(fields=("operator", "base_role"), name="operatorrole_one_per_base_role"),
        ),
        migrations.AddConstraint(
            model_name="roleoverride",
            constraint=models.UniqueConstraint(fields=("role", "permission"), name="roleoverride_one_per_permission"),
        ),
        migrations.RunPython(staff_to_operator_roles, migrations.RunPython.noop),
        migrations.RunSQL(ROLE_GROUP_TRIGGER, ROLE_GROUP_TRIGGER_DROP),
    ]
