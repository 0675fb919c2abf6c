"""The Automation page: every scheduled job with its schedule, last run, outcome and next run, and a
"run now" button for owners. Jobs run across every operator, so only the top of the tree sees them.

The Schedule & reminders page is per operator (a reseller sets its own): when its bills are made and
its reminders go out, and its reminder rules, with how many subscribers each rule reaches today."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sonjog.automation.exceptions import InvalidSchedule, UnknownJob
from sonjog.automation.models import ReminderRule
from sonjog.automation.selectors import jobs_overview, operator_schedule_for, reminder_rule_reach
from sonjog.automation.services import job_run_now, operator_schedule_set, reminder_rule_create, reminder_rule_remove
from sonjog.console.access import console_view, scope_of
from sonjog.console.schedule_forms import OperatorScheduleForm, ReminderRuleForm
from sonjog.console.views.common import page, today_for


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


def _rules_page(
    request: HttpRequest,
    schedule_form: OperatorScheduleForm | None = None,
    rule_form: ReminderRuleForm | None = None,
) -> HttpResponse:
    scope = scope_of(request)
    operator = scope.home
    schedule = operator_schedule_for(operator)
    if schedule_form is None:
        schedule_form = OperatorScheduleForm(
            initial={
                "generation_day": schedule.generation_day,
                "generation_hour": schedule.generation_hour,
                "reminder_hour": schedule.reminder_hour,
            }
        )
    rule_form = rule_form or ReminderRuleForm(operator=operator, initial={"offset_days": -3})
    rules = list(ReminderRule.objects.filter(operator=operator).select_related("package", "zone__parent"))
    reach = reminder_rule_reach(operator, today_for(scope))
    invalid = bool(schedule_form.errors or rule_form.errors)
    return page(
        request,
        "console/automation_rules.html",
        {
            "operator": operator,
            "schedule_form": schedule_form,
            "rule_form": rule_form,
            "rules": [(rule, reach.get(rule.pk, 0)) for rule in rules],
        },
        status=400 if invalid else 200,
    )


@console_view("automation.view_reminderrule")
def automation_rules_view(request: HttpRequest) -> HttpResponse:
    return _rules_page(request)


@require_POST
@console_view("automation.change_operatorschedule")
def automation_schedule_view(request: HttpRequest) -> HttpResponse:
    form = OperatorScheduleForm(request.POST)
    if not form.is_valid():
        return _rules_page(request, schedule_form=form)
    try:
        operator_schedule_set(operator=scope_of(request).home, actor=request.user, **form.cleaned_data)  # type: ignore[arg-type]
    except InvalidSchedule as error:
        form.add_error(None, str(error))
        return _rules_page(request, schedule_form=form)
    messages.success(request, _("Schedule saved."))
    return redirect("console:automation_rules")


@require_POST
@console_view("automation.add_reminderrule")
def automation_rule_add_view(request: HttpRequest) -> HttpResponse:
    operator = scope_of(request).home
    form = ReminderRuleForm(request.POST, operator=operator)
    if not form.is_valid():
        return _rules_page(request, rule_form=form)
    try:
        reminder_rule_create(operator=operator, actor=request.user, **form.cleaned_data)  # type: ignore[arg-type]
    except InvalidSchedule as error:
        form.add_error("offset_days", str(error))
        return _rules_page(request, rule_form=form)
    messages.success(request, _("Reminder rule added."))
    return redirect("console:automation_rules")


@require_POST
@console_view("automation.delete_reminderrule")
def automation_rule_remove_view(request: HttpRequest, rule_id: int) -> HttpResponse:
    operator = scope_of(request).home
    # Only the operator's own rules: a reseller cannot remove its parent's, nor the parent a reseller's
    # from this page (it acts for its own operator).
    rule = get_object_or_404(ReminderRule, pk=rule_id, operator=operator)
    reminder_rule_remove(rule=rule, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, _("Reminder rule removed."))
    return redirect("console:automation_rules")
