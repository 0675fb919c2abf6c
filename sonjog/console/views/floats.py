"""The Floats pages: the money each reseller keeps at its parent (ADR 0015). The parent's staff open a
float, change its settings, record top-ups and adjustments; the reseller's own staff see their float
and its statement, read-only (only the parent side moves a float).

Every float named by id is looked up inside the caller's scope (404 otherwise); a write is refused
with a 404 too unless the caller's operator is above the float's operator."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from sonjog.billing.exceptions import BillingError
from sonjog.billing.models import FloatAccount, FloatEntry
from sonjog.billing.services.floats import float_account_open, float_adjust, float_topup
from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.forms.floats import FloatAdjustForm, FloatOpenForm, FloatSettingsForm, FloatTopupForm
from sonjog.console.views.common import page, page_of
from sonjog.core.bounds import query_id
from sonjog.operators.models import Operator

# The parent side: the same permission as creating and changing resellers (owner-only by default).
MANAGE = "operators.manage_operators"
# The reseller's side reads its float as it reads its bills.
VIEW = "billing.view_bill"


def _resellers(scope: Scope) -> list[Operator]:
    """The operators in scope whose parent the caller acts for: the floats it (or its subtree) keeps."""
    acting = set(scope.operator_ids)
    return [operator for operator in scope.operators if operator.parent_id is not None and operator.parent_id in acting]


def _is_parent_side(scope: Scope, operator: Operator) -> bool:
    if scope.operator is None:
        return operator.parent_id is not None
    return operator.pk != scope.operator.pk and operator.path.startswith(scope.operator.path)


def _may_move(request: HttpRequest, scope: Scope, account: FloatAccount) -> bool:
    return _is_parent_side(scope, account.operator) and request.user.has_perm(MANAGE)


@console_view(MANAGE)
def floats_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    resellers = _resellers(scope)
    accounts = {
        account.operator_id: account
        for account in FloatAccount.objects.filter(operator_id__in=[each.pk for each in resellers])
    }
    without: QuerySet[Operator] = Operator.objects.filter(
        pk__in=[each.pk for each in resellers if each.pk not in accounts]
    ).order_by("path")
    form: FloatOpenForm | None = None
    if request.method == "POST":
        form = FloatOpenForm(request.POST, resellers=without)
        if form.is_valid():
            data = form.cleaned_data
            try:
                account = float_account_open(
                    operator=data["operator"],
                    credit_limit=data["credit_limit"],
                    minimum_balance=data["minimum_balance"],
                    hold_renewals=data["hold_renewals"],
                    low_balance_alert=data["low_balance_alert"],
                    credit_back=data["credit_back"],
                    actor=_user(request),
                )
            except BillingError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, _("%(name)s now runs on a float.") % {"name": account.operator.name})
                return redirect("console:float", account.pk)
    else:
        chosen = query_id(request.GET.get("open"))
        if chosen is not None and without.filter(pk=chosen).exists():
            form = FloatOpenForm(initial={"operator": chosen}, resellers=without)
    depth_of_home = scope.home.path.count("/") if scope.operator is not None else 0
    rows = [
        {
            "operator": operator,
            "account": accounts.get(operator.pk),
            "indent": range(max(operator.path.count("/") - depth_of_home - 1, 0)),
        }
        for operator in resellers
    ]
    own = FloatAccount.objects.filter(operator=scope.operator).first() if scope.operator is not None else None
    context = {"rows": rows, "form": form, "own": own}
    return page(request, "console/floats.html", context, status=400 if form is not None and form.errors else 200)


def _user(request: HttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    return user


@console_view(VIEW)
def float_view(request: HttpRequest, float_id: int) -> HttpResponse:
    scope = scope_of(request)
    account = scope.get_or_404(FloatAccount.objects.select_related("operator"), pk=float_id)
    may_move = _may_move(request, scope, account)
    settings_form = FloatSettingsForm(initial=FloatSettingsForm.initial_for(account), prefix="settings")
    topup_form = FloatTopupForm(prefix="topup")
    adjust_form = FloatAdjustForm(prefix="adjust")
    status = 200
    if request.method == "POST":
        if not _is_parent_side(scope, account.operator):
            raise Http404
        if not request.user.has_perm(MANAGE):
            raise PermissionDenied
        action = request.POST.get("action")
        if action == "settings":
            settings_form = FloatSettingsForm(request.POST, prefix="settings")
            done = _save_settings(request, account, settings_form)
        elif action == "topup":
            topup_form = FloatTopupForm(request.POST, prefix="topup")
            done = _topup(request, account, topup_form)
        elif action == "adjust":
            adjust_form = FloatAdjustForm(request.POST, prefix="adjust")
            done = _adjust(request, account, adjust_form)
        else:
            messages.error(request, _("Choose what to do: settings, a top-up or an adjustment."))
            done = None
        if done is not None:
            return done
        status = 400
    receipt = None
    receipt_id = query_id(request.GET.get("receipt"))
    if receipt_id is not None:
        receipt = (
            FloatEntry.objects.select_related("created_by")
            .filter(account=account, pk=receipt_id, kind=FloatEntry.Kind.TOPUP)
            .first()
        )
    entries = FloatEntry.objects.filter(account=account).select_related("subscriber", "package").order_by("-pk")
    page_obj = page_of(request, entries)
    visible = set(scope.operator_ids)
    context: dict[str, Any] = {
        "account": account,
        "operator": account.operator,
        "currency": account.operator.currency,
        "may_move": may_move,
        "settings_form": settings_form,
        "topup_form": topup_form,
        "adjust_form": adjust_form,
        "receipt": receipt,
        "page_obj": page_obj,
        "linked": {
            entry.pk for entry in page_obj if entry.subscriber is not None and entry.subscriber.operator_id in visible
        },
    }
    return page(request, "console/float.html", context, status=status)


def _save_settings(request: HttpRequest, account: FloatAccount, form: FloatSettingsForm) -> HttpResponse | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        float_account_open(
            operator=account.operator,
            credit_limit=data["credit_limit"],
            minimum_balance=data["minimum_balance"],
            hold_renewals=data["hold_renewals"],
            low_balance_alert=data["low_balance_alert"],
            credit_back=data["credit_back"],
            actor=_user(request),
        )
    except BillingError as error:
        form.add_error(None, str(error))
        return None
    messages.success(request, _("The float's settings are saved."))
    return redirect("console:float", account.pk)


def _topup(request: HttpRequest, account: FloatAccount, form: FloatTopupForm) -> HttpResponse | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        entry = float_topup(
            operator=account.operator,
            amount=data["amount"],
            method=data["method"],
            reference=data["reference"] or "",
            memo=data["memo"] or "",
            actor=_user(request),
        )
    except BillingError as error:
        form.add_error(None, str(error))
        return None
    messages.success(request, _("Top-up recorded."))
    return redirect(f"{reverse('console:float', args=[account.pk])}?receipt={entry.pk}")


def _adjust(request: HttpRequest, account: FloatAccount, form: FloatAdjustForm) -> HttpResponse | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        float_adjust(operator=account.operator, amount=data["amount"], memo=data["memo"], actor=_user(request))
    except BillingError as error:
        form.add_error(None, str(error))
        return None
    messages.success(request, _("Adjustment recorded."))
    return redirect("console:float", account.pk)
