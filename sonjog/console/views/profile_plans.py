"""A subscriber's plans, from the profile: pausing billing (a hold) and ending it, billing months
ahead for an advance payment, and changes booked for a later day (package, suspension, termination)
with their cancellation. Every subscriber, hold and change is looked up inside the caller's scope."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from sonjog.billing.exceptions import BillingError
from sonjog.billing.models import BillingHold
from sonjog.billing.services.holds import billing_hold_add, billing_hold_end
from sonjog.console.access import console_view, scope_of
from sonjog.console.forms.plans import BillAheadForm, HoldEndForm, HoldForm, ScheduleForm
from sonjog.console.views.common import today_for
from sonjog.console.views.profile import _action_page, _subscriber
from sonjog.customers.exceptions import SubscriberError
from sonjog.customers.models import ScheduledChange
from sonjog.customers.scheduling import scheduled_change_add, scheduled_change_cancel
from sonjog.flows.generation import bills_generate_up_to


@console_view("billing.add_adjustment")
def hold_add_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    form = HoldForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            billing_hold_add(
                subscriber=subscriber,
                start_date=data["start_date"],
                end_date=data["end_date"],
                reason=data["reason"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except BillingError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Billing paused: no period starting in the hold is billed."))
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return _action_page(request, subscriber, form, _("Pause billing"), submit_label=_("Pause billing"))


@require_POST
@console_view("billing.add_adjustment")
def hold_end_view(request: HttpRequest, subscriber_id: int, hold_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    hold = scope_of(request).get_or_404(BillingHold.objects.filter(subscriber=subscriber), pk=hold_id)
    form = HoldEndForm(request.POST)
    if form.is_valid():
        try:
            billing_hold_end(hold=hold, end_date=form.cleaned_data["end_date"], actor=request.user)  # type: ignore[arg-type]
        except BillingError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("The hold ends: billing starts again from that day."))
    else:
        messages.error(request, _("Give the day billing starts again."))
    return redirect("console:subscriber", subscriber_id=subscriber.pk)


@console_view("billing.add_billingrun")
def bill_ahead_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    """Bill months ahead for an advance payment, confirming first with how many bills it issues."""
    subscriber = _subscriber(request, subscriber_id)
    today = today_for(scope_of(request))
    form = BillAheadForm(request.POST or None, today=today)
    if request.method == "POST" and form.is_valid():
        try:
            result = bills_generate_up_to(
                subscriber=subscriber,
                through_month=form.cleaned_data["through"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except BillingError as error:
            form.add_error(None, str(error))
        else:
            issued = result.created + result.backfilled
            messages.success(
                request,
                ngettext("%(count)s bill issued ahead.", "%(count)s bills issued ahead.", issued) % {"count": issued}
                if issued
                else _("Nothing to bill: those months are billed already (or held)."),
            )
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return _action_page(
        request,
        subscriber,
        form,
        _("Bill ahead"),
        submit_label=_("Issue the bills now"),
        explanation=_(
            "Every month up to the one chosen is billed now, so that an advance payment settles them as "
            "invoices. Months already billed or on hold are left as they are."
        ),
    )


@console_view("customers.change_subscriber")
def schedule_add_view(request: HttpRequest, subscriber_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    can_terminate = request.user.has_perm("customers.delete_subscriber")
    form = ScheduleForm(request.POST or None, subscriber=subscriber, can_terminate=can_terminate)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if data["kind"] == ScheduledChange.Kind.TERMINATE and not can_terminate:
            raise PermissionDenied
        try:
            change = scheduled_change_add(
                subscriber=subscriber,
                kind=data["kind"],
                effective_date=data["effective_date"],
                package=data.get("package"),
                reason=data.get("reason") or "",
                actor=request.user,  # type: ignore[arg-type]
            )
        except SubscriberError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                _("%(change)s booked for %(day)s.")
                % {"change": change.get_kind_display(), "day": change.effective_date.strftime("%d/%m/%Y")},
            )
            return redirect("console:subscriber", subscriber_id=subscriber.pk)
    return _action_page(request, subscriber, form, _("Book a change for a later day"), submit_label=_("Book it"))


@require_POST
@console_view("customers.change_subscriber")
def schedule_cancel_view(request: HttpRequest, subscriber_id: int, change_id: int) -> HttpResponse:
    subscriber = _subscriber(request, subscriber_id)
    change = scope_of(request).get_or_404(
        ScheduledChange.objects.filter(subscriber=subscriber), field_name="subscriber__operator", pk=change_id
    )
    try:
        scheduled_change_cancel(change=change, actor=request.user)  # type: ignore[arg-type]
    except SubscriberError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("The booked change is cancelled."))
    return redirect("console:subscriber", subscriber_id=subscriber.pk)
