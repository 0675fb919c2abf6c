"""Packages, add-ons and zones: list, create, edit (packages through `flows.catalog`, which pushes
their profiles to the routers; add-ons through the catalogue's services; zones through customers')."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sonjog.catalog.exceptions import CatalogError
from sonjog.catalog.models import AddOn, Package
from sonjog.catalog.services import (
    ADDON_FIELDS,
    addon_create,
    addon_set_active,
    addon_update,
    package_wholesale_set,
)
from sonjog.console import selectors
from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.forms import AddOnForm, AddOnSaleForm, PackageForm, ZoneForm
from sonjog.console.forms.catalog import PROFILE_LIST_ID, fair_usage_text, speed_text
from sonjog.console.forms.floats import WholesaleForm
from sonjog.console.views.common import page
from sonjog.customers import services as customers_services
from sonjog.customers.exceptions import ZoneError
from sonjog.customers.models import Zone
from sonjog.flows import catalog as catalog_flows
from sonjog.network import router_io
from sonjog.network.drivers import mikrotik
from sonjog.network.exceptions import NetworkError, ProfileConflict
from sonjog.network.models import DriverKind, OutboxStatus, ProfileCommand, Router

# Reading the routers' PPP profiles for the package form: each router gets this long to answer (the
# form must not hang on a router that is down), at most this many routers are asked, all at once.
PROFILE_READ_TIMEOUT_SECONDS = 2.0
PROFILE_READ_MAX_ROUTERS = 8


@dataclass
class ProfileOffer:
    """The profile names the package form offers, and which routers could not say theirs."""

    names: dict[str, list[str]] = field(default_factory=dict)  # profile -> where it was seen
    unanswered: list[str] = field(default_factory=list)  # router names
    not_read: int = 0  # routers past PROFILE_READ_MAX_ROUTERS

    def add(self, name: str, where: str) -> None:
        if name:
            self.names.setdefault(name, []).append(where)

    @property
    def options(self) -> list[tuple[str, str]]:
        return [(name, ", ".join(seen)) for name, seen in sorted(self.names.items())]


def _read_profiles(config: mikrotik.RouterConfig) -> dict[str, dict[str, str]]:
    with mikrotik.MikrotikDriver(config) as driver:
        return driver.list_profiles()


def _profile_offer(scope: Scope) -> ProfileOffer:
    """PPP profiles of the MikroTik routers in the caller's scope, each read once, in parallel, with a
    short timeout; a router that does not answer is named, never an error. Profile names the scope's
    packages already use are offered too, so a router that is down still leaves something to pick."""
    offer = ProfileOffer()
    routers = list(
        scope.filter(Router.objects.filter(is_active=True, record_only=False, driver=DriverKind.MIKROTIK)).order_by(
            "name", "pk"
        )
    )
    offer.not_read = max(0, len(routers) - PROFILE_READ_MAX_ROUTERS)
    routers = routers[:PROFILE_READ_MAX_ROUTERS]
    if routers:
        # Configs are built here (the password is decrypted from the row); the threads only talk to routers.
        configs = {
            router.name: router_io.mikrotik_config(router, timeout=PROFILE_READ_TIMEOUT_SECONDS) for router in routers
        }
        executor = ThreadPoolExecutor(max_workers=len(configs), thread_name_prefix="profile-read")
        futures = {executor.submit(_read_profiles, config): name for name, config in configs.items()}
        # Connecting, logging in and the print each get the timeout; past twice that, stop waiting.
        done, _pending = wait(futures, timeout=PROFILE_READ_TIMEOUT_SECONDS * 2)
        executor.shutdown(wait=False, cancel_futures=True)
        for future, router_name in futures.items():
            if future not in done or future.exception() is not None:
                offer.unanswered.append(router_name)
                continue
            for name, row in future.result().items():
                rate = row.get("rate-limit", "")
                offer.add(name, f"{router_name} {rate}".strip())
        offer.unanswered.sort()
    for package in scope.filter(Package.objects.all()).only(
        "name", "router_profile", "fup_router_profile", "data_allowance_gb"
    ):
        offer.add(package.router_profile, _("package %(name)s") % {"name": package.name})
        if package.data_allowance_gb is not None:
            offer.add(package.fup_router_profile, _("fair usage of %(name)s") % {"name": package.name})
    return offer


# Terms `flows.catalog.package_create` does not take (yet): set by `package_update` right after.
_TERMS_SET_AFTER_CREATE = (
    "billing_unit",
    "data_allowance_gb",
    "fup_download_kbps",
    "fup_upload_kbps",
    "fup_router_profile",
)


def _package_form_page(
    request: HttpRequest,
    form: PackageForm,
    title: str,
    wholesale: WholesaleForm | None = None,
    package: Package | None = None,
) -> HttpResponse:
    return page(
        request,
        "console/package_form.html",
        {
            "form": form,
            "title": title,
            "profiles": _profile_offer(scope_of(request)),
            "profile_list_id": PROFILE_LIST_ID,
            "wholesale_form": wholesale,
            "package": package,
        },
        status=400 if form.errors or (wholesale is not None and wholesale.errors) else 200,
    )


# Who sets what a parent charges for a reseller's package: the parent's side, with the permission
# that manages resellers (the reseller itself sees the mapping, read-only).
MANAGE_RESELLERS = "operators.manage_operators"


def _maps_wholesale(request: HttpRequest, scope: Scope, package: Package) -> bool:
    operator = package.operator
    if operator.parent_id is None or not request.user.has_perm(MANAGE_RESELLERS):
        return False
    if scope.operator is None:
        return True
    return operator.pk != scope.operator.pk and operator.path.startswith(scope.operator.path)


class _WholesaleRefused(Exception):
    pass


def _save_error(form: PackageForm, error: Exception) -> None:
    """A refusal from the flow, put on the field it is about."""
    if isinstance(error, ProfileConflict):
        wanted_fair = form.cleaned_data.get("fup_router_profile")
        on_fair = bool(wanted_fair) and f"'{wanted_fair}'" in str(error)
        form.add_error("fup_router_profile" if on_fair else "router_profile", str(error))
    elif isinstance(error, CatalogError) and "fair-usage" in str(error):
        form.add_error(None, str(error))
    else:
        form.add_error("name", str(error))


# Worst first: a package shows the worst state among its profiles on the routers in scope.
_SYNC_ORDER = {"failed": 0, "pending": 1, "in_step": 2}
_SYNC_OF_STATUS: dict[str, str] = {
    OutboxStatus.FAILED: "failed",
    OutboxStatus.PENDING: "pending",
    OutboxStatus.RUNNING: "pending",
    OutboxStatus.DONE: "in_step",
}


def _sync_states(scope: Scope, packages: list[Package]) -> dict[str, str]:
    """Per profile name, what the latest profile command on the routers in the caller's scope says:
    "failed", "pending" or "in_step" (the worst over those routers). A profile never pushed (no
    routers, record-only ones) is missing: not known. One query."""
    names = {package.router_profile for package in packages} | {
        package.fup_router_profile for package in packages if package.data_allowance_gb is not None
    }
    if not names:
        return {}
    latest = (
        scope.filter(ProfileCommand.objects.filter(profile__in=names), "router__operator")
        .order_by("router_id", "profile", "-requested_at", "-pk")
        .distinct("router_id", "profile")
        .values_list("profile", "status")
    )
    states: dict[str, str] = {}
    for profile, status in latest:
        state = _SYNC_OF_STATUS.get(status)
        if state is not None and _SYNC_ORDER[state] < _SYNC_ORDER.get(states.get(profile, ""), 99):
            states[profile] = state
    return states


@console_view("catalog.view_package")
def packages_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    packages = list(selectors.packages(scope))
    states = _sync_states(scope, packages)
    for package in packages:
        package.speed_label = speed_text(package.download_kbps, package.upload_kbps)  # type: ignore[attr-defined]
        package.fair_usage_label = fair_usage_text(package)  # type: ignore[attr-defined]
        profiles = [package.router_profile]
        if package.data_allowance_gb is not None:
            profiles.append(package.fup_router_profile)
        known = [states[name] for name in profiles if name in states]
        package.sync_state = min(known, key=_SYNC_ORDER.__getitem__) if known else ""  # type: ignore[attr-defined]
    return page(
        request,
        "console/packages.html",
        {"packages": packages, "currency": scope.home.currency},
    )


@console_view("catalog.add_package")
def package_create_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    form = PackageForm(request.POST or None, scope=scope)
    if request.method == "POST" and form.is_valid():
        operator = form.cleaned_data["operator"] or scope.home
        fields = form.package_fields()
        later = {name: fields.pop(name) for name in _TERMS_SET_AFTER_CREATE if name in fields}
        try:
            with transaction.atomic():
                package = catalog_flows.package_create(operator=operator, actor=request.user, **fields)  # type: ignore[arg-type]
                # The create flow takes the basic terms; the update flow adds the rest (and queues the
                # fair-usage profile) in the same transaction, so a refusal leaves nothing behind.
                if any(getattr(package, name) != value for name, value in later.items()):
                    catalog_flows.package_update(package=package, actor=request.user, **later)  # type: ignore[arg-type]
        except (CatalogError, NetworkError) as error:
            _save_error(form, error)
        else:
            messages.success(request, _("Package %(name)s created.") % {"name": package.name})
            return redirect("console:packages")
    return _package_form_page(request, form, _("New package"))


@console_view("catalog.change_package")
def package_edit_view(request: HttpRequest, package_id: int) -> HttpResponse:
    scope = scope_of(request)
    package = scope.get_or_404(Package.objects.select_related("operator", "wholesale_package"), pk=package_id)
    form = PackageForm(request.POST or None, initial=PackageForm.initial_for(package), scope=scope, editing=True)
    wholesale: WholesaleForm | None = None
    if _maps_wholesale(request, scope, package):
        parent = package.operator.parent
        assert parent is not None
        wholesale = WholesaleForm(
            request.POST or None,
            initial={"wholesale_package": package.wholesale_package_id, "wholesale_price": package.wholesale_price},
            parent=parent,
        )
    # Both forms are checked before anything is written, so one's error never hides the other's.
    if request.method == "POST" and form.is_valid() & (wholesale is None or wholesale.is_valid()):
        fields = form.package_fields()
        try:
            with transaction.atomic():
                catalog_flows.package_update(package=package, actor=request.user, **fields)  # type: ignore[arg-type]
                if wholesale is not None:
                    _wholesale_save(request, package, wholesale)
        except (CatalogError, NetworkError) as error:
            _save_error(form, error)
        except _WholesaleRefused:
            pass
        else:
            messages.success(request, _("Package %(name)s saved.") % {"name": fields["name"]})
            return redirect("console:packages")
    return _package_form_page(
        request, form, _("Edit package %(name)s") % {"name": package.name}, wholesale=wholesale, package=package
    )


def _wholesale_save(request: HttpRequest, package: Package, wholesale: WholesaleForm) -> None:
    """The tariff mapper's change, in the package form's transaction; a refusal rolls both back."""
    data = wholesale.cleaned_data
    if (data["wholesale_package"], data["wholesale_price"]) == (package.wholesale_package, package.wholesale_price):
        return
    try:
        package_wholesale_set(
            package=package,
            parent_package=data["wholesale_package"],
            wholesale_price=data["wholesale_price"],
            actor=request.user,  # type: ignore[arg-type]
        )
    except CatalogError as error:
        wholesale.add_error(None, str(error))
        raise _WholesaleRefused from None


@console_view("catalog.view_addon")
def addons_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    return page(
        request,
        "console/addons.html",
        {"addons": selectors.addons(scope), "currency": scope.home.currency},
    )


@console_view("catalog.add_addon")
def addon_create_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    form = AddOnForm(request.POST or None, scope=scope)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        operator = data.pop("operator") or scope.home
        try:
            addon = addon_create(operator=operator, actor=request.user, **data)  # type: ignore[arg-type]
        except CatalogError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Add-on %(name)s created.") % {"name": addon.name})
            return redirect("console:addons")
    return page(
        request, "console/form_page.html", {"form": form, "title": _("New add-on")}, status=400 if form.errors else 200
    )


@console_view("catalog.change_addon")
def addon_edit_view(request: HttpRequest, addon_id: int) -> HttpResponse:
    scope = scope_of(request)
    addon = scope.get_or_404(AddOn.objects.all(), pk=addon_id)
    initial = {name: getattr(addon, name) for name in ADDON_FIELDS}
    form = AddOnForm(request.POST or None, initial=initial, scope=scope, editing=True)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data.pop("operator", None)
        try:
            addon_update(addon=addon, actor=request.user, **data)  # type: ignore[arg-type]
        except CatalogError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Add-on %(name)s saved.") % {"name": data["name"]})
            return redirect("console:addons")
    return page(
        request,
        "console/form_page.html",
        {"form": form, "title": _("Edit add-on %(name)s") % {"name": addon.name}},
        status=400 if form.errors else 200,
    )


@require_POST
@console_view("catalog.change_addon")
def addon_sale_view(request: HttpRequest, addon_id: int) -> HttpResponse:
    """Put an add-on on sale or take it off sale; subscribers who have it keep it."""
    scope = scope_of(request)
    addon = scope.get_or_404(AddOn.objects.all(), pk=addon_id)
    form = AddOnSaleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose on sale or off sale."))
        return redirect("console:addons")
    on_sale = form.cleaned_data["on_sale"]
    addon_set_active(addon=addon, is_active=on_sale, actor=request.user)  # type: ignore[arg-type]
    if on_sale:
        messages.success(request, _("%(name)s is on sale again.") % {"name": addon.name})
    else:
        messages.success(
            request,
            _("%(name)s is off sale: nobody new can get it; those who have it keep it until it is ended for them.")
            % {"name": addon.name},
        )
    return redirect("console:addons")


@console_view("customers.view_zone")
def zones_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    return page(request, "console/zones.html", {"zones": selectors.zones(scope)})


@console_view("customers.add_zone")
def zone_create_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    form = ZoneForm(request.POST or None, scope=scope)
    if request.method == "POST" and form.is_valid():
        operator = form.cleaned_data["operator"] or scope.home
        try:
            zone = customers_services.zone_create(
                operator=operator,
                name=form.cleaned_data["name"],
                parent=form.cleaned_data["parent"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except ZoneError as error:
            form.add_error("name", str(error))
        else:
            messages.success(request, _("Zone %(name)s created.") % {"name": zone})
            return redirect("console:zones")
    return page(
        request, "console/form_page.html", {"form": form, "title": _("New zone")}, status=400 if form.errors else 200
    )


@console_view("customers.change_zone")
def zone_edit_view(request: HttpRequest, zone_id: int) -> HttpResponse:
    scope = scope_of(request)
    zone = scope.get_or_404(Zone.objects.select_related("parent"), pk=zone_id)
    form = ZoneForm(
        request.POST or None, initial={"name": zone.name, "parent": zone.parent_id}, scope=scope, editing=zone
    )
    if request.method == "POST" and form.is_valid():
        try:
            customers_services.zone_update(
                zone=zone,
                name=form.cleaned_data["name"],
                parent=form.cleaned_data["parent"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except ZoneError as error:
            form.add_error("name", str(error))
        else:
            messages.success(request, _("Zone saved."))
            return redirect("console:zones")
    return page(
        request,
        "console/form_page.html",
        {"form": form, "title": _("Edit zone %(name)s") % {"name": zone}},
        status=400 if form.errors else 200,
    )
