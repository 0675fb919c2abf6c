"""Packages, add-ons and zones: list, create, edit (packages through `flows.catalog`, which pushes
their profiles to the routers; add-ons through the catalogue's services; zones through customers')."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sonjog.catalog import services as catalog_services
from sonjog.catalog.exceptions import CatalogError
from sonjog.catalog.models import AddOn, Package
from sonjog.catalog.services import ADDON_FIELDS, addon_create, addon_set_active, addon_update
from sonjog.console import selectors
from sonjog.console.access import console_view, scope_of
from sonjog.console.forms import AddOnForm, AddOnSaleForm, PackageForm, ZoneForm
from sonjog.console.views.common import page
from sonjog.customers import services as customers_services
from sonjog.customers.exceptions import ZoneError
from sonjog.customers.models import Zone
from sonjog.flows import catalog as catalog_flows
from sonjog.network.exceptions import NetworkError, ProfileConflict


@console_view("catalog.view_package")
def packages_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    return page(
        request, "console/packages.html", {"packages": selectors.packages(scope), "currency": scope.home.currency}
    )


@console_view("catalog.add_package")
def package_create_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    form = PackageForm(request.POST or None, scope=scope)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        operator = data.pop("operator") or scope.home
        try:
            package = catalog_flows.package_create(operator=operator, actor=request.user, **data)  # type: ignore[arg-type]
        except ProfileConflict as error:
            form.add_error("router_profile", str(error))
        except (CatalogError, NetworkError) as error:
            form.add_error("name", str(error))
        else:
            messages.success(request, _("Package %(name)s created.") % {"name": package.name})
            return redirect("console:packages")
    return page(
        request, "console/form_page.html", {"form": form, "title": _("New package")}, status=400 if form.errors else 200
    )


@console_view("catalog.change_package")
def package_edit_view(request: HttpRequest, package_id: int) -> HttpResponse:
    scope = scope_of(request)
    package = scope.get_or_404(Package.objects.all(), pk=package_id)
    initial = {name: getattr(package, name) for name in catalog_services.PACKAGE_FIELDS}
    form = PackageForm(request.POST or None, initial=initial, scope=scope, editing=True)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data.pop("operator", None)
        try:
            catalog_flows.package_update(package=package, actor=request.user, **data)  # type: ignore[arg-type]
        except ProfileConflict as error:
            form.add_error("router_profile", str(error))
        except (CatalogError, NetworkError) as error:
            form.add_error("name", str(error))
        else:
            messages.success(request, _("Package %(name)s saved.") % {"name": data["name"]})
            return redirect("console:packages")
    return page(
        request,
        "console/form_page.html",
        {"form": form, "title": _("Edit package %(name)s") % {"name": package.name}},
        status=400 if form.errors else 200,
    )


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
