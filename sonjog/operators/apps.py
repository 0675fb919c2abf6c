from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _refresh_role_groups(**kwargs: Any) -> None:
    """After every migrate, give each operator's role group exactly the permissions its role has (the
    built-in default with the operator's overrides): a role that gains a permission in a release (support
    may now read the message log) gains it for the logins that already exist, not only for new ones."""
    from django.apps import apps
    from django.db import connections

    from sonjog.operators.staffing import operator_roles_refresh_all

    # The signal comes once per app; act on the last one, when every app's permissions exist.
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if kwargs.get("app_config") is not with_models[-1]:
        return
    # A migrate back to before the roles' table (operators 0005) has no roles to refresh.
    if "operators_operatorrole" not in connections[kwargs.get("using", "default")].introspection.table_names():
        return
    operator_roles_refresh_all()


class OperatorsConfig(AppConfig):
    name = "sonjog.operators"
    label = "operators"
    verbose_name = "Operators"

    def ready(self) -> None:
        post_migrate.connect(_refresh_role_groups, dispatch_uid="sonjog.operators.refresh_role_groups")
