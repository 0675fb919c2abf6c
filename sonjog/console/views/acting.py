""" "Act as reseller": a parent's staff member sees the console as one of its resellers' owners would
(its menu, figures and limits) for a while, with a banner; read-only unless the role may act as a
reseller, and every event recorded meanwhile names both the person and the reseller (`core.audit`).
No password changes hands and nothing signs in as anyone else: the login stays the person's own."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sonjog.console.access import (
    ACT_FOR_RESELLERS,
    acting_start,
    acting_stop,
    console_view,
    may_act_as,
    scope_for,
    scope_of,
)
from sonjog.core.audit import audit
from sonjog.operators.models import Operator


@require_POST
@console_view(ACT_FOR_RESELLERS)
def act_start_view(request: HttpRequest, operator_id: int) -> HttpResponse:
    own = scope_for(request.user)  # type: ignore[arg-type]
    assert own is not None
    # One answer for a missing operator and another subtree's: nothing says which it was.
    target = Operator.objects.filter(pk=operator_id).first()
    if target is None or not may_act_as(own, target):
        messages.error(request, _("You can act only as one of your own resellers."))
        return redirect("console:operators")
    acting = acting_start(request, own, target)
    audit(operator=target, action="console.act_as", actor=request.user, by_operator=own.home.code)  # type: ignore[arg-type]
    if acting.may_write:
        messages.info(request, _("You are acting as %(name)s.") % {"name": target.name})
    else:
        messages.info(request, _("You are viewing the console as %(name)s (read-only).") % {"name": target.name})
    return redirect("console:dashboard")


@require_POST
@console_view()
def act_stop_view(request: HttpRequest) -> HttpResponse:
    acting = scope_of(request).acting
    acting_stop(request)
    if acting is not None:
        messages.info(request, _("You are back in your own console."))
    return redirect("console:dashboard")
