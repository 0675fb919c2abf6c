"""The payer's side of an online payment, and the gateways' notifications.

- `/pay/<reference>/return/`: where the gateway sends the payer back (bKash's callback, Nagad's
  merchant callback, SSLCommerz's success/fail/cancel URLs). The request is stored first, then the
  attempt is confirmed by asking the gateway: the browser's word is never taken for the money.
- `/pay/<reference>/`: what became of the payment, with progress while the router reconnects
  ("payment confirmed, reconnecting... online"); the page reloads itself every 2 s until then.
- `/hooks/gateways/<gateway>/`: the gateways' server-to-server notifications (SSLCommerz's IPN with
  its `verify_sign`, bKash's signed webhook), stored first, then handled like a return.

The reference is the attempt's random 20-character merchant reference: whoever holds it (the payer's
browser, the gateway) sees the attempt's state and amount, nothing else of the subscriber.
"""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.terms import subscriber_terms
from sonjog.core.formatting import money
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.gateways import checkout_start, inbound_handle, reconnection_state
from sonjog.gateways.clients.bkash import webhook_message_valid, webhook_payment
from sonjog.gateways.clients.sslcommerz import ipn_signature_valid
from sonjog.gateways.exceptions import GatewaysError
from sonjog.gateways.models import AttemptState, Gateway, InboundRequest, PaymentAttempt
from sonjog.gateways.services import (
    accounts_for,
    attempt_by_reference,
    attempt_reference_by_transaction,
    certificate_fetch,
    credentials_of,
    inbound_done,
    inbound_store,
    webhook_cert_hosts,
)
from sonjog.network.selectors import subscriber_at_address
from sonjog.operators.models import BillingMode
from sonjog.portal.access import portal_view, subscriber_of


def _params(request: HttpRequest) -> dict[str, str]:
    request.body  # noqa: B018 - read the raw body first, so it can still be stored after the form is parsed
    values = {key: request.GET[key] for key in request.GET}
    if request.method == "POST" and request.content_type != "application/json":
        values.update({key: request.POST[key] for key in request.POST})
    return values


def _stored(request: HttpRequest, gateway: str, kind: str, params: dict[str, str]) -> InboundRequest:
    return inbound_store(
        gateway=gateway,
        kind=kind,
        method=request.method or "GET",
        path=request.get_full_path(),
        params=params,
        body=request.body.decode(errors="replace") if request.method == "POST" else "",
        source_address=request.META.get("REMOTE_ADDR"),
    )


def _attempt_or_404(reference: str) -> PaymentAttempt:
    attempt = attempt_by_reference(reference)
    if attempt is None:
        raise Http404("no such payment")
    return attempt


@csrf_exempt
@require_http_methods(["GET", "POST"])
def payment_return(request: HttpRequest, reference: str) -> HttpResponse:
    attempt = _attempt_or_404(reference)
    params = _params(request)
    inbound = _stored(request, attempt.account.gateway, InboundRequest.Kind.RETURN, params)
    # A failure is kept on the stored request (for a replay) and the recheck asks the gateway again.
    with contextlib.suppress(Exception):
        inbound_handle(inbound, reference, params=params or None)
    return HttpResponseRedirect(reverse("pay_status", args=[reference]))


def payment_status(request: HttpRequest, reference: str) -> HttpResponse:
    attempt = _attempt_or_404(reference)
    context = _status_context(attempt)
    response = render(request, "portal/pay_status.html", context)
    add_never_cache_headers(response)
    return response


def _status_context(attempt: PaymentAttempt) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "operator": attempt.operator,
        "currency": attempt.currency,
        "reconnection": reconnection_state(attempt),
    }


@csrf_exempt
@require_POST
def gateway_notification(request: HttpRequest, gateway: str) -> HttpResponse:
    if gateway not in Gateway.values:
        return JsonResponse({"error": "unknown gateway"}, status=404)
    if gateway == Gateway.SSLCOMMERZ:
        params = _params(request)
        inbound = _stored(request, gateway, InboundRequest.Kind.IPN, params)
        reference = params.get("tran_id", "")
        attempt = attempt_by_reference(reference)
        if attempt is None or attempt.account.gateway != gateway:
            return _refused(inbound, "unknown_reference", 404)
        password = credentials_of(attempt.account).values.get("store_password", "")
        if not ipn_signature_valid(params, password):
            return _refused(inbound, "bad_signature", 400)
        return _handled(inbound, reference, params)
    if gateway == Gateway.BKASH:
        inbound = _stored(request, gateway, InboundRequest.Kind.WEBHOOK, {})
        try:
            message = json.loads(request.body or b"{}")
        except ValueError:
            return _refused(inbound, "not_json", 400)
        if not isinstance(message, dict) or not webhook_message_valid(
            message, fetch_certificate=certificate_fetch, allowed_cert_hosts=webhook_cert_hosts()
        ):
            return _refused(inbound, "bad_signature", 400)
        if message.get("Type") == "SubscriptionConfirmation":
            return _refused(inbound, "subscription", 200)
        # bKash's payload names the transaction (trxID) and, as the merchant set it, our reference; the
        # attempt is found by either, then confirmed by asking bKash.
        body = webhook_payment(message)
        reference = str(body.get("transactionReference") or body.get("merchantInvoiceNumber") or "")
        if attempt_by_reference(reference) is None:
            reference = attempt_reference_by_transaction(Gateway.BKASH, str(body.get("trxID") or ""))
        return _handled(inbound, reference, None)
    inbound = _stored(request, gateway, InboundRequest.Kind.IPN, _params(request))
    return _refused(inbound, "not_supported", 404)


def _refused(inbound: InboundRequest, outcome: str, status: int) -> HttpResponse:
    inbound_done(inbound, attempt=None, outcome=outcome, now=timezone.now())
    return JsonResponse({"outcome": outcome}, status=status)


def _handled(inbound: InboundRequest, reference: str, params: dict[str, str] | None) -> HttpResponse:
    try:
        attempt = inbound_handle(inbound, reference, params=params)
    except Exception:
        return JsonResponse({"outcome": "error"}, status=500)
    if attempt is None:
        return JsonResponse({"outcome": "unknown_reference"}, status=404)
    return JsonResponse({"outcome": attempt.state})


# -- starting a payment: from the portal, and from the suspension page -----------------------------
def _pay_options(subscriber: Subscriber, owed: Decimal, start: str) -> list[tuple[str, str]]:
    """(label, address) of each of the operator's gateways for paying `owed`; none when nothing is owed."""
    if owed <= 0:
        return []
    return [
        (
            _("Pay %(amount)s with %(gateway)s")
            % {"amount": money(owed, subscriber.operator.currency), "gateway": account.get_gateway_display()},
            reverse(start, args=[account.pk]),
        )
        for account in accounts_for(subscriber.operator)
    ]


def portal_pay_options(subscriber: Subscriber) -> list[tuple[str, str]]:
    """The "Pay now" choices of the portal's home page."""
    return _pay_options(subscriber, subscriber_balance(subscriber.pk), "pay_start")


def _start(request: HttpRequest, subscriber: Subscriber, account_id: int, source: str) -> HttpResponse:
    account = next((each for each in accounts_for(subscriber.operator) if each.pk == account_id), None)
    if account is None:
        raise Http404("no such gateway")
    owed = subscriber_balance(subscriber.pk)
    if owed <= 0:
        return HttpResponseRedirect(
            reverse("portal:home") if source == PaymentAttempt.Source.PORTAL else reverse("suspended")
        )
    site = request.build_absolute_uri("/")
    try:
        attempt = checkout_start(
            subscriber=subscriber,
            account=account,
            amount=owed,
            source=source,
            return_url=site + "pay/{reference}/return/",
            notify_url=site + f"hooks/gateways/{account.gateway}/",
        )
    except GatewaysError as error:
        return render(
            request, "portal/pay_refused.html", {"reason": str(error), "operator": subscriber.operator}, status=400
        )
    if attempt.state != AttemptState.PENDING:
        return render(
            request,
            "portal/pay_refused.html",
            {
                "reason": _("The gateway could not start the payment. Please try again in a minute."),
                "operator": subscriber.operator,
            },
            status=502,
        )
    return _to_gateway(request, subscriber, attempt)


def _to_gateway(request: HttpRequest, subscriber: Subscriber, attempt: PaymentAttempt) -> HttpResponse:
    """A page that sends the payer on to the gateway's, not a redirect: the browser checks a form's
    redirects against the CSP's form-action ('self'), so a 302 from the "Pay" form to bKash's page is
    blocked; a page of ours that then goes there (meta refresh, and a link) is not a form's redirect."""
    if urlsplit(attempt.redirect_url).scheme not in ("http", "https"):
        reason = _("The gateway could not start the payment. Please try again in a minute.")
        return _pay_refused(request, subscriber, reason, 502)
    context = {
        "url": attempt.redirect_url,
        "gateway": attempt.account.get_gateway_display(),
        "operator": subscriber.operator,
    }
    response = render(request, "portal/pay_redirect.html", context)
    add_never_cache_headers(response)
    return response


def _pay_refused(request: HttpRequest, subscriber: Subscriber, reason: str, status: int) -> HttpResponse:
    context = {"reason": reason, "operator": subscriber.operator}
    return render(request, "portal/pay_refused.html", context, status=status)


@require_POST
@portal_view
def pay_start(request: HttpRequest, account_id: int) -> HttpResponse:
    return _start(request, subscriber_of(request), account_id, PaymentAttempt.Source.PORTAL)


def _visitor(request: HttpRequest) -> Subscriber | None:
    """The suspended subscriber whose session holds the request's source address, never a guess."""
    return subscriber_at_address(request.META.get("REMOTE_ADDR", ""), timezone.now())


def suspended_view(request: HttpRequest) -> HttpResponse:
    """What a suspended subscriber's browser is redirected to: why, what is owed and how to pay."""
    subscriber = _visitor(request)
    if subscriber is None:
        return render(request, "portal/suspended_unknown.html", {}, status=404)
    owed = subscriber_balance(subscriber.pk)
    context = {
        "subscriber": subscriber,
        "operator": subscriber.operator,
        "currency": subscriber.operator.currency,
        "owed": owed,
        "reason": _reason(subscriber, owed),
        "pay_options": _pay_options(subscriber, owed, "suspended_pay"),
    }
    response = render(request, "portal/suspended.html", context)
    add_never_cache_headers(response)
    return response


def _reason(subscriber: Subscriber, owed: Decimal) -> str:
    """Which page of the suspension portal: prepaid validity ended, a bill overdue, or staff's hand."""
    if subscriber.service_intent == ServiceIntent.ACTIVE:
        return "active"
    if subscriber_terms(subscriber).mode == BillingMode.PREPAID:
        return "expired"
    return "overdue" if owed > 0 else "manual"


@require_POST
def suspended_pay(request: HttpRequest, account_id: int) -> HttpResponse:
    subscriber = _visitor(request)
    if subscriber is None:
        return render(request, "portal/suspended_unknown.html", {}, status=404)
    return _start(request, subscriber, account_id, PaymentAttempt.Source.SUSPENSION)
