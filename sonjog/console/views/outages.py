"""The "Outage credit" page: a zone, a router or a POP was out; preview who is credited how much,
confirm with how many and what total; the worker credits them, and the outage's page shows its
progress, then the result in words (who was credited, who was skipped and why). The credits are the
flow's (`sonjog.flows.outages`); these pages only ask and show."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sonjog.billing.exceptions import BillingError
from sonjog.billing.models import Outage
from sonjog.billing.services.outages import LONGEST_OUTAGE, OutagePlan, outage_last_run
from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.views.common import page
from sonjog.core.bounds import OutOfBounds, check_date, column_field
from sonjog.customers.models import Pop, Zone
from sonjog.flows.outages import OutagePlace, outage_credit_queue, outage_preview
from sonjog.network.models import Router

# A zone's preview lists its subscribers; past this many rows the page names only how many more.
ROWS_SHOWN = 500
# The form lists the latest outages credited, with their state.
RECENT_SHOWN = 20

DATETIME_INPUT = {"type": "datetime-local"}
DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


def _places(scope: Scope) -> dict[str, dict[int, OutagePlace]]:
    """The zones, routers and POPs the login may pick: its scope's only."""
    return {
        Outage.Target.ZONE: {
            zone.pk: zone for zone in scope.filter(Zone.objects.select_related("parent", "operator")).order_by("name")
        },
        Outage.Target.ROUTER: {
            router.pk: router for router in scope.filter(Router.objects.select_related("operator")).order_by("name")
        },
        Outage.Target.POP: {
            pop.pk: pop for pop in scope.filter(Pop.objects.select_related("operator")).order_by("name")
        },
    }


class OutageCreditForm(forms.Form):
    place = forms.ChoiceField(
        label=gettext_lazy("What was out"),
        # Another subtree's zone reads like one that does not exist.
        error_messages={"invalid_choice": gettext_lazy("Pick a zone, router or POP from the list.")},
    )
    start = forms.DateTimeField(
        label=gettext_lazy("From"), widget=forms.DateTimeInput(attrs=DATETIME_INPUT, format=DATETIME_FORMAT)
    )
    end = forms.DateTimeField(
        label=gettext_lazy("Until"), widget=forms.DateTimeInput(attrs=DATETIME_INPUT, format=DATETIME_FORMAT)
    )
    reason = column_field(Outage, "reason", label=gettext_lazy("Reason"), required=True)

    def __init__(self, *args: Any, scope: Scope, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.places = _places(scope)
        labels: dict[str, str] = {
            Outage.Target.ZONE: _("Zones"),
            Outage.Target.ROUTER: _("Routers"),
            Outage.Target.POP: _("POPs"),
        }
        choices: list[Any] = [("", _("Pick a zone, router or POP"))]
        for kind, rows in self.places.items():
            if rows:
                choices.append((labels[kind], [(f"{kind}:{pk}", str(row)) for pk, row in rows.items()]))
        place = self.fields["place"]
        assert isinstance(place, forms.ChoiceField)
        place.choices = choices
        place.help_text = _(
            "A zone includes its sub-zones; a router, the subscribers it serves; a POP, those connected through it."
        )
        self.fields["start"].help_text = _("In your operator's time zone.")

    def clean_place(self) -> OutagePlace:
        kind, _sep, raw = str(self.cleaned_data["place"]).partition(":")
        place = self.places.get(kind, {}).get(int(raw)) if raw.isdigit() else None
        if place is None:
            raise forms.ValidationError(_("Pick a zone, router or POP from the list."))
        return place

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start: dt.datetime | None = data.get("start")
        end: dt.datetime | None = data.get("end")
        for name, value in (("start", start), ("end", end)):
            if value is not None:
                try:
                    check_date(value.date())
                except OutOfBounds as error:
                    self.add_error(name, str(error))
                    return data
        if start is None or end is None:
            return data
        if end <= start:
            self.add_error("end", _("The outage must end after it starts."))
        elif end - start > LONGEST_OUTAGE:
            self.add_error(
                "end",
                _("An outage of more than %(days)s days is credited in parts, one at a time.")
                % {"days": LONGEST_OUTAGE.days},
            )
        elif end > timezone.now():
            self.add_error("end", _("The outage has not ended yet: credit it once it is over."))
        return data


def _shown(plan: OutagePlan) -> dict[str, Any]:
    return {
        "plan": plan,
        "rows": plan.rows[:ROWS_SHOWN],
        "more_rows": max(0, len(plan.rows) - ROWS_SHOWN),
        "credited_count": len(plan.credited),
        "skipped": plan.skipped[:ROWS_SHOWN],
    }


@console_view("billing.add_adjustment")
def outage_credit_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    form = OutageCreditForm(request.POST or None, scope=scope)
    context: dict[str, Any] = {"form": form, "currency": scope.home.currency, "step": "form", "recent": _recent(scope)}
    if request.method != "POST" or not form.is_valid():
        return page(request, "console/outage_credit.html", context, status=400 if form.errors else 200)
    place: OutagePlace = form.cleaned_data["place"]
    window = {"start": form.cleaned_data["start"], "end": form.cleaned_data["end"]}
    context.update({"place": place, "currency": place.operator.currency, **window})
    try:
        if request.POST.get("step") != "confirm":
            plan = outage_preview(place=place, operator_ids=scope.operator_ids, **window)
            context.update({"step": "preview", **_shown(plan)})
        else:
            outage, queued = outage_credit_queue(
                place=place,
                operator_ids=scope.operator_ids,
                reason=form.cleaned_data["reason"],
                actor=request.user,  # type: ignore[arg-type]
                **window,
            )
            if not queued:
                messages.info(request, _("This outage is already being credited: its progress is below."))
            return redirect("console:outage", outage_id=outage.pk)
    except BillingError as error:
        form.add_error(None, str(error))
        context["step"] = "form"
        return page(request, "console/outage_credit.html", context, status=400)
    return page(request, "console/outage_credit.html", context)


def _recent(scope: Scope) -> list[Outage]:
    return list(
        scope.filter(Outage.objects.select_related("operator", "created_by"))
        .defer("rows")
        .order_by("-created_at", "-pk")[:RECENT_SHOWN]
    )


@console_view("billing.add_adjustment")
def outage_view(request: HttpRequest, outage_id: int) -> HttpResponse:
    """One outage: its run's progress while the worker credits it, then who was credited and who
    was skipped and why."""
    outage = scope_of(request).get_or_404(Outage.objects.select_related("operator", "created_by"), pk=outage_id)
    context: dict[str, Any] = {
        "outage": outage,
        "currency": outage.operator.currency,
        "rows": outage_last_run(outage) if outage.status == Outage.Status.DONE else [],
        "more_rows": max(0, outage.credited_count + outage.skipped_count - len(outage.rows or [])),
    }
    if request.htmx:  # type: ignore[attr-defined]
        return page(request, "console/partials/outage_progress.html", context)
    return page(request, "console/outage.html", context)
