"""`django.contrib.admin` with the superusers-only site (`sonjog.core.admin_site`) as its default.

Its own module, apart from the site: INSTALLED_APPS imports this while the app registry is still
being populated, and the site's login form imports the auth models."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class SuperuserAdminConfig(AdminConfig):
    default_site = "sonjog.core.admin_site.SuperuserAdminSite"
