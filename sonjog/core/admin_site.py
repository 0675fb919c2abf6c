"""The Django admin, for the installation's superusers only.

Operator staff work in the console, where every row they name is fetched inside their operator
subtree (`sonjog.console.access.Scope`). The Django admin knows nothing of the operator tree: its
changelists show every operator's rows. Rather than narrow each ModelAdmin's queryset (and miss
the next one registered), the whole site is closed to anyone who is not an active superuser:

* `SuperuserAdminSite.has_permission` is the one gate every admin view passes through
  (`AdminSite.admin_view` wraps the index, app indexes, every ModelAdmin URL, autocomplete,
  password change, the view-on-site shortcut and the catch-all). A signed-in login without it is
  redirected to the admin login page and sees nothing.
* `SuperuserAuthenticationForm` makes the admin login form answer the same rule: Django's own
  form admits `is_staff` logins, which is no longer the flag that matters.
* `sonjog.core.admin_apps.SuperuserAdminConfig` replaces `django.contrib.admin` in INSTALLED_APPS
  and names this site as the default, so `django.contrib.admin.site`, every `@admin.register` and
  `sonjog/urls.py` use it without change.

Superusers still pass the ordinary ModelAdmin permission checks, and `AuditedAdmin`
(`sonjog.core.admin_base`) records what they change.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest


def is_installation_superuser(user: Any) -> bool:
    return bool(getattr(user, "is_active", False) and getattr(user, "is_superuser", False))


class SuperuserAuthenticationForm(AdminAuthenticationForm):
    """The admin sign-in form, admitting active superusers only. Anyone else gets the same answer as
    a wrong password, so the form does not tell which usernames are operator staff."""

    def confirm_login_allowed(self, user: Any) -> None:
        # AuthenticationForm's check (inactive logins); AdminAuthenticationForm's is_staff check is
        # replaced, not extended.
        super(AdminAuthenticationForm, self).confirm_login_allowed(user)
        if not is_installation_superuser(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class SuperuserAdminSite(admin.AdminSite):
    login_form = SuperuserAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        return is_installation_superuser(request.user)
