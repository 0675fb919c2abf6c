"""Django's permission backend with module access applied (`sonjog.operators.modules`): a staff
login's permissions are its role's, minus those of the console sections its operator was not given."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from sonjog.operators.modules import hidden_modules, module_of_permission, operator_of_login

_CACHE = "_sonjog_module_perm_cache"


class ModuleAccessBackend(ModelBackend):
    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        permissions = super().get_all_permissions(user_obj, obj)
        if not permissions or obj is not None:
            return permissions
        cached: set[str] | None = getattr(user_obj, _CACHE, None)
        if cached is None:
            hidden = hidden_modules(operator_of_login(user_obj))
            cached = (
                {each for each in permissions if module_of_permission(each) not in hidden} if hidden else permissions
            )
            setattr(user_obj, _CACHE, cached)
        return cached
