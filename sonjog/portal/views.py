"""The subscriber portal's pages. Sign-in: a customer ID or phone number, then the one-time code sent
by SMS (a phone shared by accounts of several operators first asks which), or the PPPoE username and
password. Then home (what is owed and by when, the next bill, the package, the service's state), bills
and invoices, payments and receipts, a change request, sessions and data use, messages received.

Every page takes the subscriber from the session (`access.portal_view`) and looks rows named in the
URL up among that subscriber's own (`access.own_or_404`). Writes go through the flows and services.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from decimal import Decimal
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.contrib import messages
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from sonjog.billing import documents
from sonjog.billing.models import BillLine, Invoice, Payment, PaymentMethod, Receipt
from sonjog.billing.services.receipts import receipt_show
from sonjog.core.words import amount_in_words
from sonjog.customers.exceptions import SignInCodeNotSent, SignInCodeRateLimited, SubscriberError
from sonjog.customers.models import Subscriber
from sonjog.customers.signin import portal_sign_out_everywhere, signin_code_check
from sonjog.flows.portal import portal_change_request, portal_code_send
from sonjog.notifications.models import Channel, Event, MessageStatus
from sonjog.operators.dates import operator_today
from sonjog.portal import selectors
from sonjog.portal.access import (
    CHOICES_KEY,
    PENDING_KEY,
    own_or_404,
    portal_sign_in,
    portal_sign_out,
    portal_view,
    signed_in_subscriber,
    subscriber_of,
)
from sonjog.portal.forms import ChangeRequestForm, ChooseForm, CodeForm, IdentifyForm, PppoeForm
from sonjog.portal.pay import portal_pay_options

# -- signing in ---------------------------------------------------------------------------------------


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(request, f"portal/{template}", context, status=status)


def _wait_text(seconds: int) -> str:
    if seconds < 120:
        return ngettext(
            "A code was sent a moment ago. You can ask for another in %(count)d second.",
            "A code was sent a moment ago. You can ask for another in %(count)d seconds.",
            seconds,
        ) % {"count": seconds}
    minutes = -(-seconds // 60)
    return ngettext(
        "Too many codes were asked for. You can ask for another in %(count)d minute.",
        "Too many codes were asked for. You can ask for another in %(count)d minutes.",
        minutes,
    ) % {"count": minutes}


def _not_sent_text(subscriber: Subscriber) -> str:
    return _(
        "We could not send a code by SMS to this account. Sign in with your PPPoE username and password, "
        "or call %(operator)s."
    ) % {"operator": subscriber.operator.name}


def _send_code(request: HttpRequest, subscriber: Subscriber) -> str | None:
    """Send a code and remember whom it went to; the refusal to show when none could be sent. A code
    asked for again too soon still leads to the code page: the last one is on its way or has arrived."""
    try:
        portal_code_send(subscriber=subscriber)
    except SignInCodeRateLimited as limited:
        messages.warning(request, _wait_text(limited.wait_seconds))
    except SignInCodeNotSent:
        return _not_sent_text(subscriber)
    else:
        messages.success(request, _("We sent a 6-digit code by SMS. It works for 10 minutes."))
    request.session.pop(CHOICES_KEY, None)
    request.session[PENDING_KEY] = subscriber.pk
    return None


def _pending(request: HttpRequest) -> Subscriber | None:
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, int):
        return None
    return Subscriber.objects.select_related("operator").filter(pk=pending, operator__is_active=True).first()


@never_cache
def signin_view(request: HttpRequest) -> HttpResponse:
    if signed_in_subscriber(request) is not None:
        return HttpResponseRedirect(reverse("portal:home"))
    form = IdentifyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        found = selectors.subscribers_for_identity(form.cleaned_data["who"])
        if not found:
            form.add_error("who", _("We found no account with that customer ID or phone number."))
        elif len(found) > 1:
            request.session.pop(PENDING_KEY, None)
            request.session[CHOICES_KEY] = [subscriber.pk for subscriber in found]
            return HttpResponseRedirect(reverse("portal:signin_choose"))
        else:
            refusal = _send_code(request, found[0])
            if refusal is None:
                return HttpResponseRedirect(reverse("portal:signin_code"))
            form.add_error(None, refusal)
    status = 422 if form.is_bound and form.errors else 200
    return _page(request, "signin.html", {"form": form}, status)


def _choices(request: HttpRequest) -> dict[int, Subscriber]:
    ids = request.session.get(CHOICES_KEY)
    if not isinstance(ids, list):
        return {}
    rows = Subscriber.objects.select_related("operator").filter(pk__in=[i for i in ids if isinstance(i, int)])
    return {row.pk: row for row in rows.filter(operator__is_active=True).order_by("operator__name", "customer_id")}


def _choice_labels(found: dict[int, Subscriber]) -> list[tuple[int, str]]:
    """Each account by its operator's name; two accounts with one operator are told apart by the end of
    their customer IDs (nothing more of an account shows before its code is given)."""
    names = [row.operator.name for row in found.values()]
    return [
        (
            pk,
            row.operator.name
            if names.count(row.operator.name) == 1
            else f"{row.operator.name} · …{row.customer_id[-3:]}",
        )
        for pk, row in found.items()
    ]


@never_cache
def signin_choose_view(request: HttpRequest) -> HttpResponse:
    found = _choices(request)
    if not found:
        return HttpResponseRedirect(reverse("portal:signin"))
    form = ChooseForm(request.POST if request.method == "POST" else None, choices=_choice_labels(found))
    if request.method == "POST" and form.is_valid():
        subscriber = found[form.cleaned_data["account"]]
        refusal = _send_code(request, subscriber)
        if refusal is None:
            return HttpResponseRedirect(reverse("portal:signin_code"))
        form.add_error(None, refusal)
    status = 422 if form.is_bound and form.errors else 200
    return _page(request, "signin_choose.html", {"form": form}, status)


def _masked_phone(phone: str) -> str:
    return f"••• {phone[-3:]}" if len(phone) > 3 else "•••"


@sensitive_post_parameters("code")
@never_cache
def signin_code_view(request: HttpRequest) -> HttpResponse:
    subscriber = _pending(request)
    if subscriber is None:
        return HttpResponseRedirect(reverse("portal:signin"))
    form = CodeForm(request.POST if request.method == "POST" and "resend" not in request.POST else None)
    if request.method == "POST" and "resend" in request.POST:
        refusal = _send_code(request, subscriber)
        if refusal is not None:
            messages.error(request, refusal)
        return HttpResponseRedirect(reverse("portal:signin_code"))
    if request.method == "POST" and form.is_valid():
        if signin_code_check(subscriber=subscriber, code=form.cleaned_data["code"], now=timezone.now()):
            portal_sign_in(request, subscriber)
            return HttpResponseRedirect(reverse("portal:home"))
        form.add_error(
            "code", _("That code is not right, was used already or has expired. Try again or ask for a new code.")
        )
    status = 422 if form.is_bound and form.errors else 200
    context = {"form": form, "operator": subscriber.operator, "phone": _masked_phone(subscriber.phone)}
    return _page(request, "signin_code.html", context, status)


def _pppoe_credentials(username: str) -> dict[str, str]:
    # The sign-in throttle (django-axes) counts failures per (username, address), as for staff logins;
    # the prefix keeps a PPPoE name from sharing a count with a staff login of the same name.
    return {"username": f"pppoe:{username.lower()}"}


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


@sensitive_post_parameters("password")
@never_cache
def signin_pppoe_view(request: HttpRequest) -> HttpResponse:
    if signed_in_subscriber(request) is not None:
        return HttpResponseRedirect(reverse("portal:home"))
    form = PppoeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        username, password = form.cleaned_data["username"], form.cleaned_data["password"]
        credentials = _pppoe_credentials(username)
        if AxesProxyHandler.is_locked(request, credentials):
            # As axes' own backend does for a staff login: the middleware answers with the lockout page.
            request.axes_locked_out = True  # type: ignore[attr-defined]
            request.axes_credentials = credentials  # type: ignore[attr-defined]
            return _page(request, "signin_pppoe.html", {"form": form}, 429)
        subscriber = (
            Subscriber.objects.select_related("operator")
            .filter(pppoe_username=username, operator__is_active=True)
            .first()
        )
        # Compared as digests of equal length, in constant time, whether or not the name exists.
        stored = subscriber.pppoe_password if subscriber is not None else ""
        matches = hmac.compare_digest(_digest(stored), _digest(password))
        if subscriber is not None and stored and matches:
            portal_sign_in(request, subscriber, pppoe_password=stored)
            return HttpResponseRedirect(reverse("portal:home"))
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        form.add_error(None, _("Wrong PPPoE username or password."))
    status = 422 if form.is_bound and form.errors else 200
    return _page(request, "signin_pppoe.html", {"form": form}, status)


@require_POST
def signout_view(request: HttpRequest) -> HttpResponse:
    portal_sign_out(request)
    return HttpResponseRedirect(reverse("portal:signin"))


@require_POST
@portal_view
def signout_everywhere_view(request: HttpRequest) -> HttpResponse:
    portal_sign_out_everywhere(subscriber=subscriber_of(request))
    portal_sign_out(request)
    messages.info(request, _("You were signed out on every device."))
    return HttpResponseRedirect(reverse("portal:signin"))


# -- pages ------------------------------------------------------------------------------------------------


@portal_view
def home_view(request: HttpRequest) -> HttpResponse:
    subscriber = subscriber_of(request)
    context: dict[str, Any] = {
        "home": selectors.home(subscriber),
        "currency": subscriber.operator.currency,
        # "Pay now": one button per gateway account of the subscriber's operator (none when nothing is owed).
        "pay_options": portal_pay_options(subscriber),
    }
    return _page(request, "home.html", context)


@portal_view
def bills_view(request: HttpRequest) -> HttpResponse:
    subscriber = subscriber_of(request)
    rows = [{"bill": bill, "state": selectors.bill_state(bill)} for bill in selectors.bills(subscriber)]
    return _page(request, "bills.html", {"rows": rows, "currency": subscriber.operator.currency})


def _invoice(request: HttpRequest, invoice_id: int) -> Invoice:
    queryset = Invoice.objects.select_related("bill__subscriber__operator", "bill__package", "credit_note")
    return own_or_404(queryset, subscriber_of(request), "bill__subscriber", pk=invoice_id)


@portal_view
def invoice_view(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = _invoice(request, invoice_id)
    bill = invoice.bill
    context = {
        "invoice": invoice,
        "bill": bill,
        "state": selectors.bill_state(bill),
        "lines": list(bill.lines.exclude(kind=BillLine.Kind.VAT).order_by("pk")),
        "last_day": bill.period_end - dt.timedelta(days=1),
        "vat_rate": documents.vat_rate_of(bill),
        "credit_note": getattr(invoice, "credit_note", None) if invoice.voided_at else None,
        "currency": bill.subscriber.operator.currency,
    }
    return _page(request, "invoice.html", context)


@portal_view
def invoice_pdf_view(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = _invoice(request, invoice_id)
    content = documents.invoice_pdf(invoice)
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice}.pdf"'
    return response


@portal_view
def payments_view(request: HttpRequest) -> HttpResponse:
    subscriber = subscriber_of(request)
    return _page(
        request, "payments.html", {"payments": selectors.payments(subscriber), "currency": subscriber.operator.currency}
    )


@portal_view
def receipt_view(request: HttpRequest, payment_id: int) -> HttpResponse:
    payment = own_or_404(Payment.objects.select_related("subscriber__operator"), subscriber_of(request), pk=payment_id)
    # The receipt frozen with the payment. Reading it here is not a "showing" in billing's sense (that
    # counts the copies staff print, and marks the later ones as reprints); only a payment recorded
    # before receipts were kept has one built, by billing, the first time it is asked for.
    receipt = Receipt.objects.filter(payment=payment).first()
    if receipt is None:
        receipt, _reprint = receipt_show(payment=payment)
    content = receipt.content
    amount = Decimal(content["amount"])
    language = "bn" if (request.LANGUAGE_CODE or "").startswith("bn") else "en"
    context = {
        "payment": payment,
        "receipt": receipt,
        "content": content,
        "amount": amount,
        "words": amount_in_words(amount, language),
        "method": PaymentMethod(content["method"]).label,
        "received_at": dt.datetime.fromisoformat(content["received_at"]),
        "settled": [
            {
                **item,
                "amount": Decimal(item["amount"]),
                "first_day": dt.date.fromisoformat(item["first_day"]),
                "last_day": dt.date.fromisoformat(item["last_day"]),
            }
            for item in content["settled"]
        ],
        "balance": Decimal(content["balance_after"]) if content.get("balance_after") is not None else None,
        "paid_up_to": dt.date.fromisoformat(content["paid_up_to"]) if content.get("paid_up_to") else None,
        "currency": content["operator"]["currency"],
    }
    return _page(request, "receipt.html", context)


@portal_view
def change_view(request: HttpRequest) -> HttpResponse:
    subscriber = subscriber_of(request)
    today = operator_today(subscriber.operator)
    form = ChangeRequestForm(
        request.POST if request.method == "POST" else None,
        packages=selectors.packages_offered(subscriber),
        addons_offered=selectors.addons_offered(subscriber, today),
        addons_running=selectors.addons_running(subscriber, today),
        currency=subscriber.operator.currency,
    )
    if request.method == "POST" and form.is_valid():
        try:
            portal_change_request(
                subscriber=subscriber,
                package=form.cleaned_data["package"],
                addon_start=form.cleaned_data["addon_start"],
                addon_stop=form.cleaned_data["addon_stop"],
                note=form.cleaned_data["note"],
            )
        except SubscriberError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                _("Your request was sent to %(operator)s. They will contact you before anything changes.")
                % {"operator": subscriber.operator.name},
            )
            return HttpResponseRedirect(reverse("portal:home"))
    status = 422 if form.is_bound and form.errors else 200
    return _page(request, "change.html", {"form": form, "subscriber": subscriber}, status)


# The per-day chart's drawing box (SVG user units); the page scales it to the screen's width.
CHART_WIDTH = 300
CHART_HEIGHT = 120
CHART_TOP = 14  # room for the scale's label


def _chart(days: list[selectors.UsageDay]) -> dict[str, Any]:
    """Bars for the per-day chart, tallest = the busiest day; each bar's title names its day and amount."""
    peak = max((day.total for day in days), default=0)
    slot = CHART_WIDTH / max(len(days), 1)
    room = CHART_HEIGHT - CHART_TOP
    bars = []
    for index, day in enumerate(days):
        height = round(room * day.total / peak, 1) if peak else 0
        if day.total and height < 1:
            height = 1  # a day with any use at all shows
        bars.append(
            {
                "day": day,
                "x": round(index * slot + slot * 0.1, 2),
                "width": round(slot * 0.8, 2),
                "y": round(CHART_HEIGHT - height, 1),
                "height": height,
            }
        )
    return {"bars": bars, "peak": peak, "width": CHART_WIDTH, "height": CHART_HEIGHT, "baseline": CHART_HEIGHT}


@portal_view
def usage_view(request: HttpRequest) -> HttpResponse:
    subscriber = subscriber_of(request)
    usage = selectors.usage(subscriber)
    return _page(request, "usage.html", {"usage": usage, "chart": _chart(usage.days), "subscriber": subscriber})


@portal_view
def messages_view(request: HttpRequest) -> HttpResponse:
    subscriber = subscriber_of(request)
    channels, events, statuses = dict(Channel.choices), dict(Event.choices), dict(MessageStatus.choices)
    rows = [
        {
            "message": message,
            "channel": channels.get(message.channel, message.channel),
            "event": events.get(message.event, message.event),
            "status": statuses.get(message.status, message.status),
            "secret": message.event in selectors.SECRET_EVENTS,
        }
        for message in selectors.messages(subscriber)
    ]
    return _page(request, "messages.html", {"rows": rows})
