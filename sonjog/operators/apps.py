from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _refresh_role_groups(**kwargs: Any) -> None:
    """After every migrate, give each staff role's group exactly the permissions the code grants it:
    a role that gains a permission in a release (support may now read the message log) gains it for
    the logins that already exist, not only for new ones. Only groups already in use are touched."""
    from django.apps import apps
    from django.contrib.auth.models import Group

    from sonjog.operators.services import ROLE_PERMISSIONS, role_group

    # The signal comes once per app; act on the last one, when every app's permissions exist.
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if kwargs.get("app_config") is not with_models[-1]:
        return
    existing = set(Group.objects.filter(name__startswith="role:").values_list("name", flat=True))
    for role in ROLE_PERMISSIONS:
        if f"role:{role}" in existing:
            role_group(role)


class OperatorsConfig(AppConfig):
    name = "sonjog.operators"
    label = "operators"
    verbose_name = "Operators"

    def ready(self) -> None:
        post_migrate.connect(_refresh_role_groups, dispatch_uid="sonjog.operators.refresh_role_groups")
