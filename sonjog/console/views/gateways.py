"""Online payments in the console: each operator's merchant accounts at bKash, Nagad and SSLCommerz,
and the desk where staff follow every checkout (`PaymentAttempt`), see what the gateways sent us,
ask a gateway now and replay a stored request whose handling failed; give (part of) an applied
payment back to its payer (a refund, confirmed on a second step); and the Settlement page, where the
daily reconciliation of each merchant account with its gateway is read and run again for a day.

Accounts and attempts named by id are looked up inside the caller's scope (404 otherwise); a stored
request is looked up among its attempt's own. "Check now" and "Replay" call the one confirmation
every path calls (`sonjog.flows.gateways.attempt_confirm`): money is recorded there, once, under the
attempt's lock, and audited by the services that write it. A refund goes through
`sonjog.flows.gateway_refunds.refund_request` (reserved, bounded, confirmed by the gateway, then on the
subscriber's ledger); it takes the permission that reverses a ledger entry."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from sonjog.console import formatting
from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.forms.gateway_refunds import RefundForm, SettlementRunForm
from sonjog.console.forms.gateways import GatewayAccountActiveForm, GatewayAccountForm
from sonjog.console.views.common import page, page_of, today_for
from sonjog.core.bounds import query_id
from sonjog.flows.gateway_refunds import refund_request, settlement_check
from sonjog.flows.gateways import attempt_confirm, inbound_replay
from sonjog.gateways.clients.base import GatewayError
from sonjog.gateways.exceptions import GatewayAccountInvalid, GatewaysError
from sonjog.gateways.models import (
    UNSETTLED_REFUND_STATES,
    AttemptState,
    Gateway,
    GatewayAccount,
    GatewayRefund,
    InboundRequest,
    PaymentAttempt,
    RefundState,
    SettlementCheck,
)
from sonjog.gateways.refunds import RefundRefused
from sonjog.gateways.selectors import (
    ATTENTION,
    NEEDS_ATTENTION,
    attempt_filters,
    attempt_inbound,
    attempt_refunds,
    attempt_state_counts,
    gateway_accounts_among,
    is_replayable,
    refund_left,
    settlement_checks_among,
)
from sonjog.gateways.services import gateway_account_create, gateway_account_update

logger = logging.getLogger(__name__)

# Merchant accounts hold the operator's gateway credentials: owners and managers (ADR 0013's "*").
MANAGE = "operators.manage_gateway_accounts"
# The desk is read with the payments; asking a gateway or replaying a request may record a payment,
# so it takes what recording one takes.
VIEW = "billing.view_payment"
ACT = "billing.add_payment"
# A refund takes money off the subscriber's payment in the books: what reversing an entry takes.
REFUND = "billing.reverse_entry"
ATTEMPT_FILTERS = ("state", "gateway", "created_from", "created_to", "operator", "q")
STATE_TONES: dict[str, str] = {
    AttemptState.APPLIED: "ok",
    AttemptState.PENDING: "warn",
    AttemptState.CREATED: "muted",
    AttemptState.FAILED: "muted",
    AttemptState.UNKNOWN: "bad",
    AttemptState.REVIEW: "bad",
    AttemptState.ESCALATED: "bad",
}


REFUND_TONES: dict[str, str] = {
    RefundState.DONE: "ok",
    RefundState.REQUESTED: "warn",
    RefundState.PENDING: "warn",
    RefundState.UNKNOWN: "bad",
    RefundState.FAILED: "muted",
}


def _user(request: HttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    return user


def _may_act(request: HttpRequest, scope: Scope, permission: str = ACT) -> bool:
    acting = scope.acting
    return request.user.has_perm(permission) and (acting is None or acting.may_write)


# -- gateway accounts ------------------------------------------------------------------------------


@console_view(MANAGE)
def gateway_accounts_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    rows = [(account, fee_rate_shown(account.fee_rate)) for account in gateway_accounts_among(scope.operator_ids)]
    return page(request, "console/gateway_accounts.html", {"rows": rows})


def fee_rate_shown(rate: Decimal) -> str:
    """1.850 -> "1.85%" (in the reader's digits): the column keeps three places, people write fewer."""
    return formatting.localize_digits(f"{rate.normalize():f}%")


@console_view(MANAGE)
def gateway_account_create_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    gateway = request.POST.get("gateway") or request.GET.get("gateway") or ""
    if gateway not in Gateway.values:
        # First which gateway: the credentials asked for depend on it.
        choice = {"form": None, "gateways": Gateway.choices, "title": _("New gateway account")}
        return page(request, "console/gateway_account_form.html", choice)
    form = GatewayAccountForm(request.POST if request.method == "POST" else None, scope=scope, gateway=gateway)
    if request.method == "POST" and form.is_valid():
        try:
            account = gateway_account_create(
                operator=form.owner(),
                gateway=gateway,
                credentials=form.credentials(),
                actor=_user(request),
                **form.account_fields(),
            )
        except GatewayAccountInvalid as error:
            form.add_error(None, str(error))
        except IntegrityError:  # the same merchant account saved a moment ago by someone else
            form.add_error("merchant_account", _("This operator already has an account with this merchant account."))
        else:
            messages.success(request, _("Gateway account %(name)s added.") % {"name": account.name})
            return redirect("console:gateway_accounts")
    label = Gateway(gateway).label
    context: dict[str, Any] = {
        "form": form,
        "gateway": gateway,
        "title": _("New %(gateway)s account") % {"gateway": label},
    }
    return page(request, "console/gateway_account_form.html", context, status=400 if form.errors else 200)


@console_view(MANAGE)
def gateway_account_view(request: HttpRequest, gateway_account_id: int) -> HttpResponse:
    """Edit one account (a credential left empty keeps the stored one), or switch it on or off."""
    scope = scope_of(request)
    account = scope.get_or_404(GatewayAccount.objects.select_related("operator"), pk=gateway_account_id)
    if request.method == "POST" and request.POST.get("action") == "active":
        switch = GatewayAccountActiveForm(request.POST)
        if switch.is_valid():
            active = switch.cleaned_data["active"]
            gateway_account_update(account=account, actor=_user(request), active=active)
            if active:
                messages.success(request, _("%(name)s takes payments again.") % {"name": account.name})
            else:
                messages.success(
                    request, _("%(name)s deactivated: no new payment goes through it.") % {"name": account.name}
                )
            return redirect("console:gateway_accounts")
        messages.error(request, _("Choose active or inactive."))
    bound = request.method == "POST" and request.POST.get("action") != "active"
    form = GatewayAccountForm(request.POST if bound else None, scope=scope, gateway=account.gateway, editing=account)
    if bound and form.is_valid():
        try:
            gateway_account_update(
                account=account, actor=_user(request), credentials=form.credentials(), **form.account_fields()
            )
        except GatewayAccountInvalid as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Gateway account %(name)s saved.") % {"name": form.cleaned_data["name"]})
            return redirect("console:gateway_accounts")
    context: dict[str, Any] = {
        "form": form,
        "account": account,
        "gateway": account.gateway,
        "title": _("Edit gateway account %(name)s") % {"name": account.name},
    }
    failed = request.method == "POST"  # a redirect above otherwise
    return page(request, "console/gateway_account_form.html", context, status=400 if failed else 200)


# -- the online payments desk ----------------------------------------------------------------------


@console_view(VIEW)
def online_payments_view(request: HttpRequest) -> HttpResponse:
    """Every checkout of the caller's subtree; with no filter asked for, those needing attention."""
    scope = scope_of(request)
    params = {name: request.GET[name] for name in ATTEMPT_FILTERS if name in request.GET}
    defaults = {} if params else {"state": ATTENTION}
    filters = attempt_filters(scope.operator_ids, params, time_zone=scope.time_zone, defaults=defaults)
    counts = attempt_state_counts(scope.operator_ids)
    page_obj = page_of(request, filters.qs)
    chosen = "" if filters.refused else (filters.value("state") or "")
    context: dict[str, Any] = {
        "filters": filters,
        "form": filters.form,
        "page_obj": page_obj,
        "rows": [(attempt, STATE_TONES.get(attempt.state, "muted")) for attempt in page_obj],
        "chosen_state": chosen,
        "state_choices": [(ATTENTION, _("Needs attention")), *AttemptState.choices],
        "gateway_choices": Gateway.choices,
        "tabs": [
            (ATTENTION, _("Needs attention"), counts[ATTENTION]),
            *((state, label, counts[state]) for state, label in AttemptState.choices),
        ],
        "total": sum(counts[state] for state in AttemptState.values),
        "attention_states": [AttemptState(state).label for state in NEEDS_ATTENTION],
    }
    return page(request, "console/online_payments.html", context, status=400 if filters.refused else 200)


@console_view(VIEW)
def online_payment_view(request: HttpRequest, attempt_id: int) -> HttpResponse:
    scope = scope_of(request)
    attempt = scope.get_or_404(
        PaymentAttempt.objects.select_related("subscriber", "account", "operator", "payment"), pk=attempt_id
    )
    status = 200
    refund_form: RefundForm | None = None
    refund_confirm: dict[str, Any] | None = None
    left = refund_left(attempt)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "refund":
            if not request.user.has_perm(REFUND):
                raise PermissionDenied
            refund_form = RefundForm(request.POST, left=left, currency=attempt.currency)
            if refund_form.is_valid():
                if request.POST.get("step") == "confirm":
                    done = _refund(request, attempt, refund_form)
                    if done is not None:
                        return done
                    status = 400
                else:
                    refund_confirm = {
                        "amount": refund_form.cleaned_data["amount"],
                        "reason": refund_form.cleaned_data["reason"],
                    }
            else:
                status = 400
        else:
            if not request.user.has_perm(ACT):
                raise PermissionDenied
            if action == "check":
                return _check_now(request, attempt)
            if action == "replay":
                return _replay(request, attempt)
            messages.error(request, _("Choose what to do: check now, or replay a request."))
            status = 400
    inbound = list(attempt_inbound(attempt))
    refunds = list(attempt_refunds(attempt))
    unsettled = next((each for each in refunds if each.state in UNSETTLED_REFUND_STATES), None)
    may_refund = _may_act(request, scope, REFUND) and attempt.state == AttemptState.APPLIED and left > 0
    if may_refund and refund_form is None:
        refund_form = RefundForm(initial={"amount": left}, left=left, currency=attempt.currency)
    context: dict[str, Any] = {
        "attempt": attempt,
        "tone": STATE_TONES.get(attempt.state, "muted"),
        "currency": attempt.currency,
        "last_status": sorted((attempt.last_status or {}).items()),
        "inbound": [(each, is_replayable(each), _outcome_shown(each.outcome)) for each in inbound],
        "may_act": _may_act(request, scope),
        "refunds": [(each, REFUND_TONES.get(each.state, "muted")) for each in refunds],
        "refund_left": left,
        "refund_unsettled": unsettled,
        "may_refund": may_refund and unsettled is None,
        "refund_form": refund_form,
        "refund_confirm": refund_confirm,
    }
    return page(request, "console/online_payment.html", context, status=status)


def _refund(request: HttpRequest, attempt: PaymentAttempt, form: RefundForm) -> HttpResponse | None:
    """Ask for the refund the confirmed form names; None (with the refusal on the form) when it
    cannot be started."""
    try:
        refund = refund_request(
            attempt=attempt,
            amount=form.cleaned_data["amount"],
            reason=form.cleaned_data["reason"],
            actor=_user(request),
        )
    except RefundRefused as error:
        form.add_error(None, str(error))
        return None
    except (GatewayError, GatewaysError, ValueError) as error:
        form.add_error(None, _("The gateway could not be asked: %(error)s") % {"error": error})
        return None
    _say_refund(request, refund, attempt)
    return _back(attempt)


def _say_refund(request: HttpRequest, refund: GatewayRefund, attempt: PaymentAttempt) -> None:
    amount = formatting.money(refund.amount, attempt.currency)
    if refund.state == RefundState.DONE and refund.entry_id is not None:
        messages.success(
            request,
            _("Refunded %(amount)s to the payer; it is recorded on %(customer_id)s's account.")
            % {"amount": amount, "customer_id": attempt.subscriber.customer_id},
        )
    elif refund.state == RefundState.DONE:
        messages.warning(
            request,
            _("Refunded %(amount)s at the gateway, but it is not recorded in the books: %(error)s")
            % {"amount": amount, "error": refund.last_error},
        )
    elif refund.state == RefundState.PENDING:
        messages.info(
            request,
            _("The gateway accepted the refund of %(amount)s and is processing it; the recheck confirms it.")
            % {"amount": amount},
        )
    elif refund.state == RefundState.UNKNOWN:
        messages.warning(
            request,
            _(
                "The gateway did not answer (%(error)s). The recheck asks whether the refund was made; "
                "do not refund again meanwhile."
            )
            % {"error": refund.last_error},
        )
    else:
        messages.error(request, _("The refund failed: %(error)s") % {"error": refund.last_error})


def _outcome_shown(outcome: str) -> str:
    """What came of handling a stored request: the attempt's state it left, or the handler's word."""
    if outcome in AttemptState.values:
        return str(AttemptState(outcome).label)
    return {"error": _("failed"), "unknown_reference": _("names no payment of ours")}.get(outcome, outcome)


def _back(attempt: PaymentAttempt) -> HttpResponse:
    return redirect("console:online_payment", attempt.pk)


def _check_now(request: HttpRequest, attempt: PaymentAttempt) -> HttpResponse:
    if not attempt.is_open:
        messages.info(
            request,
            _("This payment is settled (%(state)s): there is nothing left to ask the gateway.")
            % {"state": attempt.get_state_display()},
        )
        return _back(attempt)
    try:
        confirmed = attempt_confirm(attempt_id=attempt.pk, via="staff")
    except (GatewayError, GatewaysError, ValueError) as error:
        # What the client refuses before asking (an account's stored credentials it cannot use).
        messages.error(request, _("The gateway could not be asked: %(error)s") % {"error": error})
        return _back(attempt)
    _say_outcome(request, confirmed)
    return _back(attempt)


def _say_outcome(request: HttpRequest, attempt: PaymentAttempt) -> None:
    state = attempt.state
    if state == AttemptState.APPLIED:
        messages.success(request, _("Paid at the gateway and applied: the payment is recorded."))
    elif state == AttemptState.UNKNOWN:
        messages.warning(
            request,
            _("The gateway did not answer (%(error)s). The recheck asks again.") % {"error": attempt.last_error},
        )
    elif state == AttemptState.REVIEW:
        messages.warning(request, _("Parked for review: %(reason)s") % {"reason": attempt.review_reason})
    elif state == AttemptState.ESCALATED:
        messages.warning(request, _("Still no final answer after 48 hours: escalated."))
    elif state == AttemptState.FAILED:
        messages.info(request, _("The gateway reports the payment failed or was cancelled."))
    else:
        messages.info(request, _("The gateway says the payer has not finished yet; the recheck asks again."))


def _replay(request: HttpRequest, attempt: PaymentAttempt) -> HttpResponse:
    inbound_id = query_id(request.POST.get("inbound"))
    inbound = InboundRequest.objects.filter(attempt=attempt, pk=inbound_id).first() if inbound_id is not None else None
    if inbound is None:
        raise Http404
    if not is_replayable(inbound):
        messages.info(request, _("This request was handled already (%(outcome)s).") % {"outcome": inbound.outcome})
        return _back(attempt)
    try:
        inbound_replay(inbound.pk)
    except Exception as error:  # the handler stored the failure on the request; say it, keep the page
        logger.exception("replaying inbound request %s failed", inbound.pk)
        messages.error(request, _("Handling the request failed again: %(error)s") % {"error": error})
        return _back(attempt)
    inbound.refresh_from_db()
    messages.success(request, _("Request handled again: %(outcome)s.") % {"outcome": _outcome_shown(inbound.outcome)})
    return _back(attempt)


# -- the settlement check --------------------------------------------------------------------------


@console_view(VIEW)
def online_settlement_view(request: HttpRequest) -> HttpResponse:
    """The latest settlement checks of each merchant account of the caller's subtree, with what each
    found missing both ways, and "Run now" for an account and a day (which may apply a payment the
    gateway has as paid, so it takes what recording one takes)."""
    scope = scope_of(request)
    today = today_for(scope)
    accounts = gateway_accounts_among(scope.operator_ids)
    bound = request.method == "POST"
    form = SettlementRunForm(
        request.POST if bound else None,
        accounts=accounts,
        today=today,
        initial={"day": today - dt.timedelta(days=1)},
    )
    status = 200
    if bound:
        if not request.user.has_perm(ACT):
            raise PermissionDenied
        if form.is_valid():
            account: GatewayAccount = form.cleaned_data["gateway_account"]
            check = settlement_check(account=account, day=form.cleaned_data["day"])
            _say_settlement(request, check)
            return redirect("console:online_settlement")
        status = 400
    checks = settlement_checks_among(scope.operator_ids)
    by_account: dict[int, list[SettlementCheck]] = {}
    for check in checks:
        check.missing = [_item_shown(item) for item in check.paid_not_applied]  # type: ignore[attr-defined]
        check.extra = [_item_shown(item) for item in check.applied_not_paid]  # type: ignore[attr-defined]
        by_account.setdefault(check.account_id, []).append(check)
    context: dict[str, Any] = {
        "form": form,
        "rows": [(account, by_account.get(account.pk, [])) for account in accounts],
        "may_run": _may_act(request, scope),
    }
    return page(request, "console/online_settlement.html", context, status=status)


def _item_shown(item: Any) -> dict[str, Any]:
    """One transaction of a check's list, its times read back as times (stored as ISO text)."""
    shown = dict(item) if isinstance(item, dict) else {}
    for name in ("paid_at", "received_at"):
        try:
            shown[name] = dt.datetime.fromisoformat(str(shown.get(name) or ""))
        except ValueError:
            shown[name] = None
    return shown


def _say_settlement(request: HttpRequest, check: SettlementCheck) -> None:
    names = {"account": check.account.name, "day": formatting.localize_digits(f"{check.day:%Y-%m-%d}")}
    if check.error:
        messages.error(
            request,
            _("%(account)s, %(day)s: the gateway could not be asked: %(error)s") % {**names, "error": check.error},
        )
        return
    missing, extra = len(check.paid_not_applied), len(check.applied_not_paid)
    counts = {"missing": formatting.number(missing), "extra": formatting.number(extra)}
    if missing or extra:
        messages.warning(
            request,
            _("%(account)s, %(day)s: %(missing)s paid, not applied; %(extra)s applied, not paid.")
            % {**names, **counts},
        )
    else:
        messages.success(
            request,
            _("%(account)s, %(day)s: every payment the gateway took is applied, and nothing else.") % names,
        )
