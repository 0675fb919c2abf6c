"""The subscriber profile (360°) and every action on it. Each action validates its form, calls the
owning service, and on refusal shows the service's message on the form with nothing written."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.forms import ModelChoiceField
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sonjog.billing import documents
from sonjog.billing.exceptions import (
    BillingError,
    DuplicatePaymentSuspected,
    InvalidAmount,
    InvalidPaymentMethod,
    InvoicePaid,
)
from sonjog.billing.models import BillingHold, BillLine, EntryKind, Invoice, LedgerEntry, Payment, PaymentMethod
from sonjog.billing.selectors import bill_credits, next_invoice_date, payments_on_bill, subscriber_dues
from sonjog.billing.services import adjustment_add, entry_reverse, invoice_void
from sonjog.billing.services.receipts import receipt_show
from sonjog.billing.terms import operator_today
from sonjog.catalog.models import AddOn
from sonjog.console import selectors
from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.forms import (
    AddOnActivateForm,
    AddOnDeactivateForm,
    AdjustmentForm,
    ChangePackageForm,
    ContactForm,
    IntentForm,
    InvoiceVoidForm,
    PaymentForm,
    ReasonForm,
    TerminateForm,
)
from sonjog.console.forms.subscribers import PasswordResetForm
from sonjog.console.views.common import page
from sonjog.console.views.subscribers import PPPOE_PASSWORD_SHOWN_KEY, pppoe_password_show_once
from sonjog.core.words import amount_in_words
from sonjog.customers import services as customers_services
from sonjog.customers.exceptions import SubscriberError
from sonjog.customers.models import ScheduledChange, ServiceIntent, Subscriber, SubscriberAddOn, SyncState
from sonjog.customers.selectors import subscriber_addons
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import (
    subscriber_addon_activate,
    subscriber_addon_deactivate,
    subscriber_change_package,
    subscriber_reset_pppoe_password,
    subscriber_set_intent,
    subscriber_terminate,
)
from sonjog.network.models import OutboxCommand, OutboxStatus
from sonjog.notifications.models import Channel, Event, MessageStatus
from sonjog.notifications.selectors import subscriber_messages


def _subscriber(request: HttpRequest, subscriber_id: int) -> Subscriber:
    scope: Scope = scope_of(request)
    return scope.get_or_404(
        Subscriber.objects.select_related("operator", "package", "zone", "zone__parent", "router"), pk=subscriber_id
    )


def _action_page(request: HttpRequest, subscriber: Subscriber, form: Any, title: str, **extra: Any) -> HttpResponse:
    return page(
        request,
        "console/subscriber_action.html",
        {"subscriber": subscriber, "form": form, "title": title, **extra},
        status=400 if form.is_bound and form.errors else 200,
    )


def _timeline(subscriber: Subscriber) -> list[dict[str, Any]]:
    """The subscriber's messages with their labels in the reader's language."""
    channels, events, statuses = dict(Channel.choices), dict(Event.choices), dict(MessageStatus.choices)
    return [
        {
            **asdict(message),
            "channel_label": channels.get(message.channel, message.channel),
            "event_label": events.get(message.event, message.event),
            "status_label": statuses.get(message.status, message.status),
        }
        for message in subscriber_messages(subscriber)
    ]


def _addons_offered(subscriber: Subscriber) -> list[AddOn]:
    """What the profile's activation form offers, read once; posting it validates the choice again."""
    field = AddOnActivateForm(subscriber=subscriber).fields["addon"]
    assert isinstance(field, ModelChoiceField) and field.queryset is not None
    return list(field.queryset)


def _sync_command(subscriber: Subscriber) -> OutboxCommand | None:
    """The router command waiting (or running) for the subscriber: what "Sync: Pending" means."""
    return (
        OutboxCommand.objects.filter(subscriber=subscriber, status__in=[OutboxStatus.PENDING, OutboxStatus.RUNNING])
        .order_by("-requested_at")
        .first()
    )


def _network_context(subscriber: Subscriber) -> dict[str, Any]:
    command = _sync_command(subscriber) if subscriber.sync_state == SyncState.PENDING else None
    return {"subscriber": subscriber, "sync_command": command}


def _password_shown(request: HttpRequest, subscriber: Subscriber) -> str:
    """The PPPoE password to show on this page once (just created, revealed or reset), taken out of
    the session so a reload does not show it again."""
    shown = request.session.get(PPPOE_PASSWORD_SHOWN_KEY)
    if not isinstance(shown, dict) or shown.get("subscriber") != subscriber.pk:
        return ""
    del request.session[PPPOE_PASSWORD_SHOWN_KEY]
    return str(shown.get("password", ""))


@console_view("customers.view_subscriber")
def subscriber_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    profile = selectors.subscriber_profile(subscriber)
    can_see_messages = request.user.has_perm("notifications.view_message")
    can_change = request.user.has_perm("customers.change_subscriber")
    return page(
        request,
        "console/subscriber.html",
        {
            **_network_context(subscriber),
            "profile": profile,
            "currency": subscriber.operator.currency,
            "next_invoice_date": next_invoice_date(subscriber),
            "holds": list(BillingHold.objects.filter(subscriber=subscriber).order_by("-start_date")[:5]),
            "booked": list(
                ScheduledChange.objects.filter(subscriber=subscriber)
                .select_related("package")
                .order_by("-created_at")[:5]
            ),
            "password_shown": _password_shown(request, subscriber),
            "timeline": _timeline(subscriber) if can_see_messages else [],
            "addons": subscriber_addons(subscriber),
            "addons_offered": _addons_offered(subscriber)
            if can_change and subscriber.service_intent != ServiceIntent.TERMINATED
            else [],
        },
    )


@console_view("customers.view_subscriber")
def subscriber_network_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    return page(request, "console/partials/subscriber_network.html", _network_context(subscriber))


@require_POST
@console_view("customers.reveal_pppoe_password")
def password_reveal_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    password = customers_services.subscriber_pppoe_password_reveal(subscriber=subscriber, actor=request.user)  # type: ignore[arg-type]
    if request.htmx:  # type: ignore[attr-defined]
        return page(
            request,
            "console/partials/pppoe_password.html",
            {"subscriber": subscriber, "password_shown": password},
        )
    pppoe_password_show_once(request, subscriber.pk, password)
    return redirect("console:subscriber", subscriber_id=subscriber.pk)


@console_view("customers.change_subscriber")
def password_reset_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    # Bound on any POST: the form has only a checkbox, so an unticked one posts nothing else.
    form = PasswordResetForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            reset = subscriber_reset_pppoe_password(
                subscriber=subscriber,
                send_sms=form.cleaned_data["send_sms"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except SubscriberError as error:
            form.add_error(None, str(error))
        else:
            if not form.cleaned_data["send_sms"]:
                messages.success(request, _("New PPPoE password set; the router is being updated."))
            elif reset.sms_queued:
                messages.success(
                    request, _("New PPPoE password set and sent to %(phone)s by SMS.") % {"phone": subscriber.phone}
                )
            else:
                messages.warning(
                    request,
                    _(
                        "New PPPoE password set, but no SMS was queued: the operator has no active SMS account, "
                        "or the subscriber's number cannot take SMS."
                    ),
                )
            pppoe_password_show_once(request, subscriber.pk, reset.password)
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return _action_page(
        request, subscriber, form, _("Reset the PPPoE password"), password_reset=True, submit_label=_("Reset password")
    )


@console_view("customers.change_subscriber")
def contact_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    initial = {
        "name": subscriber.name,
        "phone": subscriber.phone,
        "email": subscriber.email,
        "address": subscriber.address,
        "national_id": subscriber.national_id,
        "zone": subscriber.zone_id,
    }
    form = ContactForm(request.POST or None, initial=initial, subscriber=subscriber)
    if request.method == "POST" and form.is_valid():
        try:
            customers_services.subscriber_update_contact(subscriber=subscriber, actor=request.user, **form.cleaned_data)  # type: ignore[arg-type]
        except SubscriberError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Contact details saved."))
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return _action_page(request, subscriber, form, _("Edit contact"))


@console_view("customers.change_subscriber")
def package_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    form = ChangePackageForm(request.POST or None, subscriber=subscriber, with_operator=scope_of(request).spans_many)
    if request.method == "POST" and form.is_valid():
        try:
            subscriber_change_package(
                subscriber=subscriber,
                package=form.cleaned_data["package"],
                effective_date=form.cleaned_data["effective_date"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except (SubscriberError, BillingError, ValueError) as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Package changed."))
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return _action_page(request, subscriber, form, _("Change package"))


# Add-ons are switched on and off with the same permission as a package change.
@console_view("customers.change_subscriber")
def addon_activate_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    form = AddOnActivateForm(request.POST or None, subscriber=subscriber)
    if request.method == "POST" and form.is_valid():
        addon = form.cleaned_data["addon"]
        try:
            subscriber_addon_activate(
                subscriber=subscriber,
                addon=addon,
                start_date=form.cleaned_data["start_date"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except (SubscriberError, BillingError) as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Add-on %(name)s activated.") % {"name": addon.name})
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return _action_page(request, subscriber, form, _("Activate an add-on"))


@console_view("customers.change_subscriber")
def addon_deactivate_view(request: HttpRequest, subscriber_id: int, addon_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    addon = scope_of(request).get_or_404(AddOn.objects.all(), pk=addon_id)
    running = SubscriberAddOn.objects.filter(subscriber=subscriber, addon=addon, end_date__isnull=True).first()
    if running is None:
        raise Http404
    form = AddOnDeactivateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subscriber_addon_deactivate(
                subscriber=subscriber,
                addon=addon,
                end_date=form.cleaned_data["end_date"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except (SubscriberError, BillingError) as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Add-on %(name)s ended.") % {"name": addon.name})
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return _action_page(
        request,
        subscriber,
        form,
        _("End add-on %(name)s") % {"name": addon.name},
        stretch=running,
        currency=subscriber.operator.currency,
    )


@console_view("billing.add_payment")
def payment_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    due = selectors.subscriber_due(subscriber.pk)
    form = PaymentForm(request.POST or None, initial={"amount": due if due > 0 else None})
    duplicate = ""
    back = request.POST.get("back") or request.GET.get("back") or "profile"
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            payment = payment_receive(
                subscriber=subscriber,
                amount=data["amount"],
                method=data["method"],
                reference=data["reference"],
                collector=request.user,  # type: ignore[arg-type]
                actor=request.user,  # type: ignore[arg-type]
                confirm_duplicate=data["confirm_duplicate"],
            )
        except DuplicatePaymentSuspected as error:
            duplicate = str(error)
        except InvalidAmount as error:
            form.add_error("amount", str(error))
        except InvalidPaymentMethod as error:
            form.add_error("method", str(error))
        except BillingError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Payment recorded."))
            response = redirect("console:receipt", payment_id=payment.pk)
            response["Location"] += f"?back={'collect' if back == 'collect' else 'profile'}"
            return response
    return page(
        request,
        "console/payment.html",
        {
            "subscriber": subscriber,
            "form": form,
            "due": due,
            "duplicate": duplicate,
            "back": back,
            "currency": subscriber.operator.currency,
        },
        status=409 if duplicate else (400 if form.is_bound and form.errors else 200),
    )


@console_view("billing.add_adjustment")
def adjustment_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    form = AdjustmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            adjustment_add(
                subscriber=subscriber,
                amount=form.signed_amount(),
                reason=form.cleaned_data["reason"],
                memo=form.cleaned_data["memo"],
                effective_date=form.cleaned_data["effective_date"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except InvalidAmount as error:
            form.add_error("amount", str(error))
        except BillingError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Adjustment added."))
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return _action_page(request, subscriber, form, _("Add a credit or debit"))


@console_view("billing.reverse_entry")
def reverse_view(request: HttpRequest, subscriber_id: int, entry_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    entry = scope_of(request).get_or_404(
        LedgerEntry.objects.select_related("payment", "bill"), pk=entry_id, subscriber=subscriber
    )
    voids_invoice = (
        entry.kind == EntryKind.BILL
        and entry.bill_id is not None
        and Invoice.objects.filter(bill_id=entry.bill_id).exists()
    )
    if voids_invoice and not request.user.has_perm("billing.void_invoice"):
        raise PermissionDenied
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry_reverse(entry=entry, reason=form.cleaned_data["reason"], actor=request.user)  # type: ignore[arg-type]
        except BillingError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Entry #%(id)s reversed.") % {"id": entry.pk})
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return _action_page(
        request,
        subscriber,
        form,
        _("Reverse an entry"),
        entry=entry,
        voids_invoice=voids_invoice,
        currency=subscriber.operator.currency,
    )


def _still_overdue(subscriber: Subscriber) -> Decimal | None:
    """What a subscriber about to be reactivated still owes when the overdue sweep would suspend them
    again (billing's one definition of overdue; VIPs are never suspended), else None."""
    if subscriber.is_vip:
        return None
    dues = subscriber_dues(subscriber.operator_id, [subscriber.pk], operator_today(subscriber.operator))
    found = dues.get(subscriber.pk)
    return found.due if found is not None and found.is_overdue else None


@console_view("customers.change_subscriber")
def intent_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    """Suspend or reactivate, with a reason, after a confirmation page; reactivating someone still
    overdue says so first and needs it confirmed."""
    subscriber = _subscriber(request, subscriber_id)
    wanted = request.POST.get("intent") if request.method == "POST" else request.GET.get("intent")
    if wanted not in (ServiceIntent.SUSPENDED, ServiceIntent.ACTIVE):
        wanted = ServiceIntent.ACTIVE if subscriber.service_intent != ServiceIntent.ACTIVE else ServiceIntent.SUSPENDED
    form = IntentForm(request.POST if request.method == "POST" else None, initial={"intent": wanted})
    owes = _still_overdue(subscriber) if wanted == ServiceIntent.ACTIVE else None
    if owes is None:
        del form.fields["confirm_overdue"]
    if request.method == "POST" and form.is_valid():
        intent = form.cleaned_data["intent"]
        if owes is not None and not form.cleaned_data.get("confirm_overdue"):
            form.add_error(
                "confirm_overdue",
                _("Tick this to reactivate a subscriber who is still overdue, or take the payment first."),
            )
        else:
            try:
                subscriber_set_intent(
                    subscriber=subscriber,
                    intent=intent,
                    reason=form.cleaned_data["reason"],
                    actor=request.user,  # type: ignore[arg-type]
                )
            except (SubscriberError, BillingError) as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, _("Suspended.") if intent == ServiceIntent.SUSPENDED else _("Reactivated."))
                return redirect("console:subscriber", subscriber_id=subscriber.pk)
    title = _("Suspend service") if wanted == ServiceIntent.SUSPENDED else _("Reactivate service")
    return _action_page(
        request,
        subscriber,
        form,
        title,
        danger=wanted == ServiceIntent.SUSPENDED,
        submit_label=_("Suspend") if wanted == ServiceIntent.SUSPENDED else _("Reactivate"),
        still_owes=owes,
        currency=subscriber.operator.currency,
    )


@console_view("customers.delete_subscriber")
def terminate_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    form = TerminateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subscriber_terminate(
                subscriber=subscriber,
                terminated_on=form.cleaned_data["terminated_on"],
                reason=form.cleaned_data["reason"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except (SubscriberError, BillingError) as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Service terminated."))
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return _action_page(request, subscriber, form, _("Terminate service"), danger=True)


# -- documents ------------------------------------------------------------------------------------


@console_view("billing.view_bill")
def invoice_view(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = selectors.invoice_for(scope_of(request), invoice_id)
    # Each line with its own VAT; the bill's VAT line is their sum, shown once under them.
    lines = [line for line in invoice.bill.lines.order_by("pk") if line.kind != BillLine.Kind.VAT]
    credit_note = getattr(invoice, "credit_note", None)
    return page(
        request,
        "console/invoice.html",
        {
            "invoice": invoice,
            "bill": invoice.bill,
            "subscriber": invoice.bill.subscriber,
            "lines": lines,
            "credit_note": credit_note,
            # What each credit of the bill took off which line: the credit notes' lines.
            "credits": bill_credits(invoice.bill_id),
            "last_day": invoice.bill.period_end - dt.timedelta(days=1),
            "vat_rate": documents.vat_rate_of(invoice.bill),
            "payment_state": documents.payment_state(invoice.bill)[0],
            "currency": invoice.bill.subscriber.operator.currency,
        },
    )


@console_view("billing.view_bill")
def invoice_pdf_view(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = selectors.invoice_for(scope_of(request), invoice_id)
    content = documents.invoice_pdf(invoice)
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice}.pdf"'
    return response


@console_view("billing.void_invoice")
def invoice_void_view(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = selectors.invoice_for(scope_of(request), invoice_id)
    subscriber = invoice.bill.subscriber
    form = InvoiceVoidForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            note = invoice_void(
                invoice=invoice,
                reason=form.cleaned_data["reason"],
                actor=request.user,  # type: ignore[arg-type]
                move_payments=form.cleaned_data["move_payments"],
            )
        except InvoicePaid:
            form.add_error(
                None,
                _(
                    "Money has been paid on this invoice. Reverse that payment first (below), or tick the box to "
                    "move it to the other open bills, then void the invoice."
                ),
            )
        except BillingError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("%(invoice)s voided by %(note)s.") % {"invoice": invoice, "note": note})
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return _action_page(
        request,
        subscriber,
        form,
        _("Void invoice %(invoice)s") % {"invoice": invoice},
        invoice=invoice,
        danger=True,
        paid_on_invoice=payments_on_bill(invoice.bill_id),
        currency=subscriber.operator.currency,
    )


@console_view()
def receipt_view(request: HttpRequest, payment_id: int) -> HttpResponse:
    # Who sees payments sees every receipt; a login that only takes payments (a collector) sees
    # the receipts of the payments it took, and another collector's is as missing as any other.
    payments = Payment.objects.select_related("subscriber__operator", "collector")
    if not request.user.has_perm("billing.view_payment"):
        if not request.user.has_perm("billing.add_payment"):
            raise PermissionDenied
        payments = payments.filter(collector_id=request.user.pk)
    payment = scope_of(request).get_or_404(payments, pk=payment_id)
    receipt, reprint = receipt_show(payment=payment)
    content = receipt.content
    amount = Decimal(content["amount"])
    balance = Decimal(content["balance_after"]) if content.get("balance_after") is not None else None
    layout = request.GET.get("layout", "a4")
    return page(
        request,
        "console/receipt.html",
        {
            "payment": payment,
            "receipt": receipt,
            "content": content,
            "reprint": reprint,
            "subscriber": payment.subscriber,
            "amount": amount,
            "words_en": amount_in_words(amount, "en"),
            "words_bn": amount_in_words(amount, "bn"),
            "method": PaymentMethod(content["method"]).label,
            "received_at": dt.datetime.fromisoformat(content["received_at"]),
            "settled": [
                {
                    **item,
                    "amount": Decimal(item["amount"]),
                    "period_month": dt.date.fromisoformat(item["period_month"]),
                    "first_day": dt.date.fromisoformat(item["first_day"]),
                    "last_day": dt.date.fromisoformat(item["last_day"]),
                }
                for item in content["settled"]
            ],
            "balance": balance,
            "paid_up_to": dt.date.fromisoformat(content["paid_up_to"]) if content.get("paid_up_to") else None,
            "layout": layout if layout in ("a4", "80", "58") else "a4",
            "back": request.GET.get("back", "profile"),
            "currency": content["operator"]["currency"],
        },
    )
