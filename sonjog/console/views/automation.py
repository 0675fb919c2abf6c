"""The Automation page: every scheduled job with its schedule, last run, outcome and next run, and a
"run now" button for owners. Jobs run across every operator, so only the top of the tree sees them."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sonjog.automation.exceptions import UnknownJob
from sonjog.automation.selectors import jobs_overview
from sonjog.automation.services import job_run_now
from sonjog.console.access import console_view, scope_of
from sonjog.console.views.common import page


def _require_top_of_tree(request: HttpRequest) -> None:
    operator = scope_of(request).operator
    if operator is not None and operator.parent_id is not None:
        raise Http404("jobs belong to the whole installation")


@console_view("automation.run_job")
def automation_view(request: HttpRequest) -> HttpResponse:
    _require_top_of_tree(request)
    return page(request, "console/automation.html", {"jobs": jobs_overview()})


@require_POST
@console_view("automation.run_job")
def automation_run_view(request: HttpRequest, name: str) -> HttpResponse:
    _require_top_of_tree(request)
    try:
        run = job_run_now(name, actor=request.user)  # type: ignore[arg-type]
    except UnknownJob:
        raise Http404("no such job") from None
    if run.status == "ok":
        messages.success(request, _("%(job)s ran: %(outcome)s") % {"job": name, "outcome": run.outcome})
    else:
        messages.error(
            request,
            _("%(job)s: %(status)s %(error)s")
            % {"job": name, "status": run.status, "error": (run.error or "").splitlines()[:1]},
        )
    return redirect("console:automation")
