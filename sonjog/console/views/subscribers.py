"""The subscriber list (search, filters, sorting, export, bulk actions) and creating subscribers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sonjog.billing.exceptions import BillingError
from sonjog.billing.filters import SubscriberDueFilterSet
from sonjog.console import exports, selectors, services
from sonjog.console.access import console_view, scope_of
from sonjog.console.exceptions import ConsoleError
from sonjog.console.forms import BulkActionForm, SubscriberCreateForm
from sonjog.console.forms.common import show_prices
from sonjog.console.forms.subscribers import label_with_operator
from sonjog.console.models import BulkAction
from sonjog.console.views.common import page, page_of, today_for
from sonjog.customers import services as customers_services
from sonjog.customers.exceptions import SubscriberError
from sonjog.flows.subscribers import subscriber_create


def _filters(request: HttpRequest, params: QueryDict | None = None) -> SubscriberDueFilterSet:
    # Unusable filters (another subtree's zone, a malformed amount) show their error and list nothing
    # rather than silently listing everything.
    scope = scope_of(request)
    filters = selectors.subscriber_filters(scope, request.GET if params is None else params, today_for(scope))
    show_prices(filters.form.fields["package"])
    if scope.spans_many:
        for name in ("package", "zone"):
            label_with_operator(filters.form.fields[name])
    return filters


@console_view("customers.view_subscriber")
def subscriber_list_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    filters = _filters(request)
    form = filters.form
    listing = page_of(request, selectors.subscriber_list(filters))
    context: dict[str, Any] = {
        "form": form,
        "page_obj": listing,
        "sort": filters.chosen_sort,
        # SMS has its own page, which shows the count and the cost before anything is sent.
        "bulk_kinds": [(value, label) for value, label in BulkAction.Kind.choices if value != BulkAction.Kind.SMS],
        "packages": form.fields["package"].queryset,  # type: ignore[attr-defined]
        "spans_many": scope.spans_many,
        "currency": scope.home.currency,
    }
    if request.htmx and request.htmx.target == "subscriber-results":  # type: ignore[attr-defined]
        return page(request, "console/partials/subscriber_results.html", context)
    return page(request, "console/subscribers.html", context)


@console_view("customers.view_subscriber")
def subscriber_export_view(request: HttpRequest, fmt: str) -> HttpResponseBase:
    if fmt not in ("csv", "xlsx"):
        raise Http404
    rows = selectors.subscriber_list(_filters(request))
    if fmt == "xlsx":
        return exports.subscribers_xlsx(rows)
    return exports.subscribers_csv(rows)


# The profile shows a new subscriber's PPPoE password once, on the page the creation redirects to.
PPPOE_PASSWORD_SHOWN_KEY = "pppoe_password_shown"


def pppoe_password_show_once(request: HttpRequest, subscriber_id: int, password: str) -> None:
    request.session[PPPOE_PASSWORD_SHOWN_KEY] = {"subscriber": subscriber_id, "password": password}


@console_view("customers.add_subscriber")
def subscriber_create_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    can_discount = request.user.has_perm("customers.grant_discount")
    if request.method != "POST" and request.htmx and request.htmx.trigger_name == "operator":  # type: ignore[attr-defined]
        # The operator select changed: the package and zone choices of the operator chosen.
        chosen = SubscriberCreateForm(
            scope=scope, can_discount=can_discount, initial={"operator": request.GET.get("operator")}
        )
        return page(
            request, "console/partials/subscriber_create_choices.html", {"fields": [chosen["zone"], chosen["package"]]}
        )
    form = SubscriberCreateForm(request.POST or None, scope=scope, can_discount=can_discount)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            subscriber = subscriber_create(
                operator=data["operator"],
                name=data["name"],
                phone=data["phone"],
                package=data["package"],
                zone=data["zone"],
                email=data["email"],
                address=data["address"],
                pppoe_username=data["pppoe_username"],
                pppoe_password=data["pppoe_password"],
                activation_date=data["activation_date"],
                activate=data["activate"],
                billing_mode=data["billing_mode"] or None,
                billing_cycle=data["billing_cycle"] or None,
                billing_day=data["billing_day"],
                monthly_discount=data.get("monthly_discount") or Decimal("0.00"),
                is_vip=data["is_vip"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except (SubscriberError, BillingError) as error:
            form.add_error(None, str(error))
        else:
            if data["national_id"]:
                customers_services.subscriber_update_contact(
                    subscriber=subscriber,
                    name=subscriber.name,
                    phone=subscriber.phone,
                    email=subscriber.email,
                    address=subscriber.address,
                    national_id=data["national_id"],
                    zone=subscriber.zone,
                    actor=request.user,  # type: ignore[arg-type]
                )
            messages.success(request, _("%(id)s created.") % {"id": subscriber.customer_id})
            pppoe_password_show_once(request, subscriber.pk, subscriber.pppoe_password)
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return page(request, "console/subscriber_create.html", {"form": form}, status=400 if form.errors else 200)


@require_POST
@console_view("customers.change_subscriber")
def bulk_start_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    form = BulkActionForm(request.POST, scope=scope)
    if not form.is_valid():
        for error in form.errors.values():
            messages.error(request, " ".join(str(message) for message in error))
        return HttpResponseRedirect(reverse("console:subscribers") + "?" + request.POST.get("filters", ""))
    data = form.cleaned_data
    if data["all_matching"]:
        # The filters the list was showing, re-applied here inside the caller's scope.
        filters = _filters(request, QueryDict(request.POST.get("filters", "")))
        ids = list(selectors.subscriber_list(filters).values_list("pk", flat=True))
    else:
        ids = [subscriber.pk for subscriber in data["subscribers"]]
    package = data["package"] if data["kind"] == BulkAction.Kind.CHANGE_PACKAGE else None
    try:
        with transaction.atomic():
            action = services.bulk_action_start(
                operator=scope.home,
                kind=data["kind"],
                subscriber_ids=ids,
                actor=request.user,  # type: ignore[arg-type]
                package=package,
                message=data["message"] or "",
            )
    except ConsoleError as error:
        messages.error(request, str(error))
        return redirect("console:subscribers")
    return redirect("console:bulk", action_id=action.pk)


@console_view("customers.view_subscriber")
def bulk_detail_view(request: HttpRequest, action_id: int) -> HttpResponse:
    scope = scope_of(request)
    action = scope.get_or_404(BulkAction.objects.select_related("actor", "package"), pk=action_id)
    template = "console/partials/bulk_progress.html" if request.htmx else "console/bulk.html"  # type: ignore[attr-defined]
    return page(request, template, {"action": action})
