"""A package saved: its PPP profiles go to the routers, and live sessions follow a new rate.

Every way a package is created or edited (the console's package pages, and later the API and imports)
calls these flows, never catalog's services alone. One transaction: the package row, its audit entry,
the profile commands for every router that may serve it (`network.profiles`: the package operator's
active routers and its ancestors'), and, when its profile name changed, the router commands of its
subscribers, commit together or not at all. A profile name another package of the same ISP uses at
another speed is refused (`ProfileConflict`), and the package is not saved.

Live sessions: a changed rate reaches MikroTik routers as a profile update (the profile command kicks
the sessions in it, since RouterOS fixes a session's rate when it comes up) and RADIUS routers as a
CoA-Request per live session, with a Disconnect-Request only as the fallback (ADR 0012).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from sonjog.catalog import services as catalog_services
from sonjog.catalog.models import Package
from sonjog.network.profiles import (
    fup_rate_limit,
    package_profiles,
    package_profiles_push,
    package_secrets_requeue,
    profiles_check,
)
from sonjog.operators.models import Operator


def package_create(
    *,
    operator: Operator,
    name: str,
    price: Decimal,
    download_kbps: int,
    upload_kbps: int,
    router_profile: str,
    vat_applicable: bool = True,
    is_active: bool = True,
    actor: User | None = None,
) -> Package:
    """Create a package and queue its profiles on every router that may serve it."""
    with transaction.atomic():
        package = catalog_services.package_create(
            operator=operator,
            name=name,
            price=price,
            download_kbps=download_kbps,
            upload_kbps=upload_kbps,
            router_profile=router_profile,
            vat_applicable=vat_applicable,
            is_active=is_active,
            actor=actor,
        )
        profiles_check(package)
        if package.is_active:
            package_profiles_push(package=package, requested_by=f"package {package.name} created")
    return package


def package_update(*, package: Package, actor: User | None = None, **fields: Any) -> Package:
    """Change a package's terms (catalog's `package_update`), then bring the routers along: a new
    profile name (or a package back on sale) queues its profiles and moves its subscribers' secrets
    to it; a new rate updates the profiles and the live sessions in them."""
    with transaction.atomic():
        before = Package.objects.select_for_update().get(pk=package.pk)
        old_profiles = package_profiles(before)
        old_rate, old_fup_rate, was_on_sale = before.rate_limit, fup_rate_limit(before), before.is_active
        old_router_profile = before.router_profile
        updated = catalog_services.package_update(package=before, actor=actor, **fields)
        profiles_check(updated)
        new_profiles = package_profiles(updated)
        requested_by = f"package {updated.name} changed"
        renamed = updated.router_profile != old_router_profile
        if set(new_profiles) != set(old_profiles) or (updated.is_active and not was_on_sale):
            package_profiles_push(package=updated, requested_by=requested_by)
        rate_changed: set[str] = set()
        if updated.rate_limit != old_rate:
            rate_changed.add(updated.router_profile)
        if updated.data_allowance_gb is not None and fup_rate_limit(updated) != old_fup_rate:
            rate_changed.add(updated.fup_router_profile)
        if rate_changed:
            package_profiles_push(
                package=updated, requested_by=requested_by, rate_changed_profiles=frozenset(rate_changed)
            )
        if renamed:
            # The secrets on MikroTik routers name the old profile: each subscriber's command moves it.
            package_secrets_requeue(package=updated, requested_by=requested_by)
    return updated
