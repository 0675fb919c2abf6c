"""Schedule & reminders: each operator sets when its bills and reminders go out and which reminders go,
sees how many subscribers each rule reaches today, and cannot touch another operator's rules."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sonjog.automation.models import OperatorSchedule, ReminderRule
from sonjog.automation.selectors import reminder_candidates
from sonjog.automation.services import reminder_rule_create
from sonjog.billing.models import Bill
from sonjog.billing.terms import operator_today
from sonjog.console.tests.conftest import add_staff

pytestmark = pytest.mark.django_db

RULES = reverse("console:automation_rules")
SCHEDULE = reverse("console:automation_schedule")
ADD = reverse("console:automation_rule_add")


def test_owner_sets_the_schedule_and_bad_hours_change_nothing(tree):
    client = tree.login(tree.root.staff["owner"])
    body = client.get(RULES).content.decode()
    assert "Reminder rules" in body and "No reminder rules" in body

    response = client.post(SCHEDULE, {"generation_day": "5", "generation_hour": "2", "reminder_hour": "9"})
    assert response.status_code == 302
    schedule = OperatorSchedule.objects.get(operator=tree.root.operator)
    assert (schedule.generation_day, schedule.generation_hour, schedule.reminder_hour) == (5, 2, 9)

    response = client.post(SCHEDULE, {"generation_day": "32", "generation_hour": "2", "reminder_hour": "25"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "less than or equal to 31" in body and "less than or equal to 23" in body
    schedule.refresh_from_db()
    assert (schedule.generation_day, schedule.reminder_hour) == (5, 9)


def test_a_rule_shows_how_many_it_reaches_today_and_bad_rules_are_refused(tree):
    operator = tree.root.operator
    today = operator_today(operator)
    oldest = (
        Bill.objects.filter(subscriber=tree.root.subscribers[0], reversed_at__isnull=True)
        .order_by("period_month")
        .first()
    )
    assert oldest is not None
    offset = (today - oldest.due_date).days  # fires today for this subscriber's oldest open bill
    client = tree.login(tree.root.staff["owner"])
    rule_fields = {"event": "bill_due", "offset_days": str(offset), "package": "", "channel": "sms"}
    assert client.post(ADD, rule_fields).status_code == 302
    rule = ReminderRule.objects.get(operator=operator)
    assert (rule.event, rule.offset_days, rule.package_id, rule.channel) == ("bill_due", offset, None, "sms")

    reach = sum(1 for candidate in reminder_candidates(operator, today) if candidate.rule_id == rule.pk)
    assert reach >= 1
    body = client.get(RULES).content.decode()
    row = body[body.index(f'data-rule="{rule.pk}"') :].split("</tr>")[0]
    assert f'<td class="num">{reach}</td>' in row

    duplicate = client.post(ADD, rule_fields)
    assert duplicate.status_code == 400 and "already exists" in duplicate.content.decode()
    too_far = client.post(ADD, {**rule_fields, "offset_days": "61"})
    assert too_far.status_code == 400 and "less than or equal to 60" in too_far.content.decode()
    foreign_package = client.post(ADD, {**rule_fields, "offset_days": "1", "package": str(tree.south.package.pk)})
    assert foreign_package.status_code == 400 and "Select a valid choice" in foreign_package.content.decode()
    foreign_zone = client.post(ADD, {**rule_fields, "offset_days": "1", "zone": str(tree.south.zone.pk)})
    assert foreign_zone.status_code == 400 and "Select a valid choice" in foreign_zone.content.decode()
    zone_rule = {**rule_fields, "offset_days": "1", "zone": str(tree.root.zone.pk)}
    assert client.post(ADD, zone_rule).status_code == 302
    assert ReminderRule.objects.get(operator=operator, offset_days=1).zone_id == tree.root.zone.pk
    assert tree.root.zone.name in client.get(RULES).content.decode()
    ReminderRule.objects.filter(operator=operator, offset_days=1).delete()
    assert ReminderRule.objects.filter(operator=operator).count() == 1

    assert client.post(reverse("console:automation_rule_remove", args=[rule.pk])).status_code == 302
    assert not ReminderRule.objects.filter(operator=operator).exists()


def test_resellers_keep_their_own_rules_and_clerks_only_look(tree):
    parent_rule = reminder_rule_create(operator=tree.root.operator, event="bill_due", offset_days=-3)
    north_owner = add_staff(tree.north, "owner")
    client = tree.login(north_owner)
    assert f'data-rule="{parent_rule.pk}"' not in client.get(RULES).content.decode()
    assert client.post(reverse("console:automation_rule_remove", args=[parent_rule.pk])).status_code == 404
    assert client.post(ADD, {"event": "prepaid_expiry", "offset_days": "-2", "channel": ""}).status_code == 302
    assert ReminderRule.objects.get(operator=tree.north.operator).event == "prepaid_expiry"
    assert ReminderRule.objects.filter(pk=parent_rule.pk).exists()

    clerk = tree.login(tree.root.staff["billing_clerk"])
    assert clerk.get(RULES).status_code == 403
    assert clerk.post(ADD, {"event": "bill_due", "offset_days": "0"}).status_code == 403
    assert clerk.post(SCHEDULE, {"generation_hour": "1", "reminder_hour": "8"}).status_code == 403
