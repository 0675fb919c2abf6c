"""The Automation page: every scheduled job with its schedule, last run, outcome and next run, and a
"run now" button for owners. Jobs run across every operator, so only the top of the tree sees them.

The Schedule & reminders page is per operator (a reseller sets its own): when its bills are made and
its reminders go out, and its reminder rules, with how many subscribers each rule reaches today."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from sonjog.automation.exceptions import InvalidSchedule, UnknownJob
from sonjog.automation.models import ReminderRule
from sonjog.automation.registry import JOBS
from sonjog.automation.selectors import jobs_overview, operator_schedule_for, reminder_rule_reach
from sonjog.automation.services import job_run_now, operator_schedule_set, reminder_rule_create, reminder_rule_remove
from sonjog.billing.selectors import overdue_ids
from sonjog.billing.terms import operator_today
from sonjog.console.access import console_view, scope_of
from sonjog.console.formatting import number
from sonjog.console.schedule_forms import OperatorScheduleForm, ReminderRuleForm
from sonjog.console.views.common import page, today_for
from sonjog.customers.models import ServiceIntent
from sonjog.operators.models import Operator

# -- a run's outcome in words ------------------------------------------------------------------------
#
# A JobRun keeps its job's return value as JSON (`JobRun.outcome`). The jobs staff run by hand get a
# sentence per figure; any other job, or a figure not named here, reads "Key words: value".


def _count(outcome: dict[str, Any], key: str) -> int:
    value = outcome.get(key, 0)
    if isinstance(value, list):
        return len(value)
    return value if isinstance(value, int) else 0


def _generation(outcome: dict[str, Any]) -> list[str]:
    sentences = [
        ngettext("%(n)s invoice created.", "%(n)s invoices created.", _count(outcome, "created"))
        % {"n": number(_count(outcome, "created"))},
        ngettext(
            "%(n)s missing earlier invoice backfilled.",
            "%(n)s missing earlier invoices backfilled.",
            _count(outcome, "backfilled"),
        )
        % {"n": number(_count(outcome, "backfilled"))},
    ]
    if "operators" in outcome:
        sentences.append(
            ngettext("%(n)s operator billed.", "%(n)s operators billed.", _count(outcome, "operators"))
            % {"n": number(_count(outcome, "operators"))}
        )
    if _count(outcome, "waiting"):
        sentences.append(
            ngettext(
                "%(n)s operator waits for its generation day.",
                "%(n)s operators wait for their generation day.",
                _count(outcome, "waiting"),
            )
            % {"n": number(_count(outcome, "waiting"))}
        )
    return sentences + _errors(outcome)


def _errors(outcome: dict[str, Any]) -> list[str]:
    errors = _count(outcome, "errors")
    if not errors:
        return [_("No errors.")]
    return [ngettext("%(n)s error.", "%(n)s errors.", errors) % {"n": number(errors)}]


def _sweep(outcome: dict[str, Any]) -> list[str]:
    suspended = _count(outcome, "suspended")
    return [
        ngettext("%(n)s overdue subscriber suspended.", "%(n)s overdue subscribers suspended.", suspended)
        % {"n": number(suspended)}
    ]


def _notices(outcome: dict[str, Any]) -> list[str]:
    queued = _count(outcome, "queued")
    candidates = _count(outcome, "candidates")
    return [
        ngettext("%(n)s message queued", "%(n)s messages queued", queued) % {"n": number(queued)}
        + ngettext(" for %(n)s subscriber due one.", " for %(n)s subscribers due one.", candidates)
        % {"n": number(candidates)},
        *_errors(outcome),
    ]


def _settle(outcome: dict[str, Any]) -> list[str]:
    settled = _count(outcome, "settled")
    candidates = _count(outcome, "candidates")
    return [
        ngettext(
            "%(settled)s of %(n)s subscriber with unallocated credit settled.",
            "%(settled)s of %(n)s subscribers with unallocated credit settled.",
            candidates,
        )
        % {"settled": number(settled), "n": number(candidates)},
        *_errors(outcome),
    ]


_SENTENCES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "billing.generate_nightly": _generation,
    "billing.generate_catch_up": _generation,
    "network.overdue_sweep": _sweep,
    "automation.due_reminders": _notices,
    "automation.prepaid_expiry_notices": _notices,
    "automation.settle_credit": _settle,
}


def _readable(value: Any) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int):
        return number(value)
    if isinstance(value, list):
        return ngettext("%(n)s item", "%(n)s items", len(value)) % {"n": number(len(value))}
    if isinstance(value, dict):
        return "; ".join(f"{_label(key)} {_readable(each)}" for key, each in value.items())
    return str(value)


def _label(key: str) -> str:
    return str(key).replace("_", " ").replace(".", " ").strip().capitalize()


def outcome_lines(job_name: str, outcome: dict[str, Any] | None) -> list[str]:
    """What a run did, as sentences for the jobs staff run by hand, else "Key words: value" lines."""
    if not outcome:
        return []
    if "skipped" in outcome and len(outcome) == 1:
        return [_("Skipped: %(why)s.") % {"why": outcome["skipped"]}]
    sentences = _SENTENCES.get(job_name)
    if sentences is not None:
        try:
            return sentences(outcome)
        except (TypeError, ValueError, AttributeError):  # an outcome of another shape: say it plainly
            pass
    return [f"{_label(key)}: {_readable(value)}" for key, value in outcome.items()]


# -- what "Run now" will do, said before it does it ----------------------------------------------


def _overdue_reach() -> str:
    # The sweep's own rule (billing's `overdue_ids`): active, not VIP, overdue today in each operator.
    count = sum(
        len(overdue_ids(operator, operator_today(operator), intent=ServiceIntent.ACTIVE))
        for operator in Operator.objects.filter(is_active=True)
    )
    return ngettext(
        "%(n)s subscriber is overdue and would be suspended now.",
        "%(n)s subscribers are overdue and would be suspended now.",
        count,
    ) % {"n": number(count)}


_REACH: dict[str, Callable[[], str]] = {"network.overdue_sweep": _overdue_reach}


def _require_top_of_tree(request: HttpRequest) -> None:
    operator = scope_of(request).operator
    if operator is not None and operator.parent_id is not None:
        raise Http404("jobs belong to the whole installation")


@console_view("automation.run_job")
def automation_view(request: HttpRequest) -> HttpResponse:
    _require_top_of_tree(request)
    jobs = [(job, outcome_lines(job.name, job.last_outcome)) for job in jobs_overview()]
    return page(request, "console/automation.html", {"jobs": jobs})


@require_POST
@console_view("automation.run_job")
def automation_run_view(request: HttpRequest, name: str) -> HttpResponse:
    """First a page saying what the job does (and, where it can be counted, for how many); then,
    confirmed, the run, its outcome in words."""
    _require_top_of_tree(request)
    job = JOBS.get(name)
    if job is None:
        raise Http404("no such job")
    if request.POST.get("step") != "confirm":
        reach = _REACH.get(name)
        return page(request, "console/automation_confirm.html", {"job": job, "reach": reach() if reach else ""})
    try:
        run = job_run_now(name, actor=request.user)  # type: ignore[arg-type]
    except UnknownJob:
        raise Http404("no such job") from None
    if run.status == "ok":
        lines = outcome_lines(name, run.outcome) or [_("Nothing to do.")]
        messages.success(request, _("%(job)s ran. %(outcome)s") % {"job": job.title, "outcome": " ".join(lines)})
    else:
        first_line = next(iter((run.error or "").splitlines()), "")
        messages.error(
            request,
            _("%(job)s did not finish (%(status)s): %(error)s")
            % {"job": job.title, "status": run.get_status_display(), "error": first_line or _("no error was recorded")},
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
