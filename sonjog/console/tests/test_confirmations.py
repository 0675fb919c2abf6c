"""Mass actions and runs that change many rows say what they will do, and to how many, before doing
it; their results read as sentences. Also: the error pages keep the console's frame, and queued
messages say when they will go. The clock is pinned at 18 November 2026, 10:00 in Dhaka."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import RequestFactory
from django.urls import reverse

from sonjog.automation.models import JobRun
from sonjog.console.models import BulkAction
from sonjog.console.services import bulk_action_run
from sonjog.console.views.automation import outcome_lines
from sonjog.console.views.errors import server_error_view
from sonjog.customers.models import ServiceIntent, Subscriber

pytestmark = pytest.mark.django_db


def _late(tree) -> list[Subscriber]:
    return [tree.root.subscribers[0], tree.north.subscribers[0], tree.south.subscribers[0]]


def test_suspend_these_asks_with_the_count_then_runs_one_bulk_action(tree):
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:overdue_suspend")
    asked = client.post(url, {"filters": ""})
    body = asked.content.decode()
    assert asked.status_code == 200 and "Suspend 3 overdue subscribers?" in body
    assert not BulkAction.objects.exists()

    done = client.post(url, {"filters": "", "step": "confirm", "expected": "3"})
    action = BulkAction.objects.get()
    assert done.url == reverse("console:bulk", args=[action.pk])
    assert (action.kind, sorted(action.subscriber_ids)) == ("suspend", sorted(s.pk for s in _late(tree)))
    bulk_action_run(action.pk)
    assert set(Subscriber.objects.filter(pk__in=action.subscriber_ids).values_list("service_intent", flat=True)) == {
        ServiceIntent.SUSPENDED
    }
    result = client.get(done.url).content.decode()
    assert "3 of 3 done, 0 refused." in result


def test_suspend_these_follows_the_filters_leaves_vips_out_and_recounts(tree):
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:overdue_suspend")
    vip = tree.south.subscribers[0]
    Subscriber.objects.filter(pk=vip.pk).update(is_vip=True)  # set up as the other bulk tests do
    filters = f"zone={tree.north.zone.pk}"
    north = client.post(url, {"filters": filters}).content.decode()
    assert "Suspend 1 overdue subscriber?" in north
    everyone = client.post(url, {"filters": ""}).content.decode()
    assert "Suspend 2 overdue subscribers?" in everyone and "1 VIP subscriber is left out" in everyone
    # The list changed between the question and the answer: asked again, nothing done.
    stale = client.post(url, {"filters": "", "step": "confirm", "expected": "5"})
    assert "The overdue list changed since you looked" in stale.content.decode()
    assert not BulkAction.objects.exists()


def test_suspend_these_needs_the_right_to_change_subscribers(tree):
    clerk = tree.login(tree.north.staff["billing_clerk"])
    if not tree.north.staff["billing_clerk"].has_perm("customers.change_subscriber"):
        assert clerk.post(reverse("console:overdue_suspend"), {"filters": ""}).status_code == 403
    support = tree.login(tree.north.staff["collector"])
    assert support.post(reverse("console:overdue_suspend"), {"filters": "", "step": "confirm"}).status_code == 403
    assert not BulkAction.objects.exists()


def test_sms_these_previews_only_the_overdue(tree):
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:messaging_bulk")
    shown = client.get(url, {"overdue": "15"}).content.decode()
    assert '<input type="hidden" name="overdue" value="15">' in shown
    assert "Only subscribers overdue by more than 15 days" in shown
    preview = client.post(url, {"step": "preview", "overdue": "15", "text": "Please pay, {{ name }}."})
    # The root operator's own overdue subscriber only (bulk SMS acts for one operator).
    assert preview.context["preview"].count == 1
    assert preview.context["confirm_fields"]["overdue"] == "15"
    everyone = client.post(url, {"step": "preview", "status": "active", "text": "Hello"})
    assert everyone.context["preview"].count == 2
    # Too old for anyone: nobody.
    assert client.post(url, {"step": "preview", "overdue": "30", "text": "x"}).context["preview"].count == 0


def test_run_now_says_what_and_how_many_then_reports_in_words(tree):
    client = tree.login(tree.root.staff["owner"])
    url = reverse("console:automation_run", args=["network.overdue_sweep"])
    asked = client.post(url).content.decode()
    assert "Run “Suspend overdue subscribers” now?" in asked
    assert "3 subscribers are overdue and would be suspended now." in asked
    assert not JobRun.objects.exists()
    done = client.post(url, {"step": "confirm"}, follow=True).content.decode()
    assert "Suspend overdue subscribers ran. 3 overdue subscribers suspended." in done
    assert "{" not in done.split('id="jobs-table"')[1].split("</table>")[0]


def test_outcomes_read_as_sentences_with_a_plain_fallback():
    assert outcome_lines("billing.generate_nightly", {"operators": 2, "created": 1, "backfilled": 0, "errors": 0}) == [
        "1 invoice created.",
        "0 missing earlier invoices backfilled.",
        "2 operators billed.",
        "No errors.",
    ]
    assert outcome_lines("network.overdue_sweep", {"suspended": 1}) == ["1 overdue subscriber suspended."]
    assert outcome_lines("network.sample_online", {"stale_closed": 0, "sessions_refreshed": 1200, "ok": True}) == [
        "Stale closed: 0",
        "Sessions refreshed: 1,200",
        "Ok: yes",
    ]
    assert outcome_lines("network.reconcile", {"r1": {"fixed": 2, "errors": []}}) == ["R1: Fixed 2; Errors 0 items"]
    assert outcome_lines("any.job", {"skipped": "another run of this job was in progress"}) == [
        "Skipped: another run of this job was in progress."
    ]
    assert outcome_lines("any.job", None) == []


def _sms_account(operator) -> None:
    from sonjog.notifications.services import provider_account_create

    provider_account_create(
        operator=operator,
        name="SSL Wireless",
        kind="ssl_wireless",
        sender_id="MYISP",
        credentials={"api_token": "token"},
        base_url="http://127.0.0.1:9",
        cost_per_segment=Decimal("0.25"),
    )


def test_generating_a_future_period_says_bills_and_messages(tree):
    _sms_account(tree.root.operator)
    client = tree.login(tree.root.staff["owner"])
    response = client.post(
        reverse("console:generate"), {"step": "preview", "period": "2026-12", "operator": tree.root.operator.pk}
    )
    body = response.content.decode()
    assert "December 2026 has not started yet. Bill it now, ahead of time?" in body
    assert "2 invoices will be created" in body
    assert "Up to 2 “bill generated” messages will be queued" in body
    assert "Bill December 2026 ahead of time" in body
    # The reseller has no message account: its run sends nothing, and says so.
    north = tree.login(tree.north.staff["billing_clerk"])
    if tree.north.staff["billing_clerk"].has_perm("billing.add_billingrun"):
        answer = north.post(reverse("console:generate"), {"step": "preview", "period": "2026-12"}).content.decode()
        assert "No messages will be sent" in answer


def test_error_pages_keep_the_menu_for_a_signed_in_login(tree, settings):
    settings.DEBUG = False
    clerk = tree.login(tree.root.staff["billing_clerk"])
    missing = clerk.get("/no/such/page/")
    assert missing.status_code == 404
    body = missing.content.decode()
    assert "There is nothing here" in body and "Sign out" in body and 'class="sidebar"' in body
    denied = clerk.get(reverse("console:automation"))
    assert denied.status_code == 403
    assert "You are not allowed" in denied.content.decode() and "Sign out" in denied.content.decode()
    # Nobody signed in: the bare page, no menu.
    from django.test import Client

    anonymous = Client().get("/no/such/page/")
    assert anonymous.status_code == 404 and "Sign out" not in anonymous.content.decode()


def test_the_500_page_reads_nothing_new(tree, django_assert_max_num_queries):
    from sonjog.console.access import enter_console

    request = RequestFactory().get("/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    with django_assert_max_num_queries(0):
        bare = server_error_view(request)
    assert bare.status_code == 500 and "Sign out" not in bare.content.decode()

    signed_in = RequestFactory().get("/")
    signed_in.session = tree.login(tree.root.staff["owner"]).session
    signed_in.user = tree.root.staff["owner"]
    signed_in.scope = enter_console(signed_in)  # type: ignore[attr-defined]
    signed_in.user.has_perm("billing.view_bill")  # what the failed view's permission check loaded
    with django_assert_max_num_queries(2):
        framed = server_error_view(signed_in)
    assert "Something went wrong" in framed.content.decode() and "Sign out" in framed.content.decode()


def test_queued_messages_say_when_they_go(tree):
    from sonjog.notifications.models import Message
    from sonjog.notifications.services import message_queue

    operator = tree.root.operator
    _sms_account(operator)
    # 23:00 in Dhaka is inside the default quiet hours (22:00 to 08:00).
    import time_machine

    with time_machine.travel(dt.datetime(2026, 11, 18, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=6))), tick=False):
        message = message_queue(operator=operator, channel="sms", recipient="01711000000", body="Hello")
        assert message is not None
        body = tree.login(tree.root.staff["owner"]).get(reverse("console:messaging_log")).content.decode()
    assert "held for quiet hours until 08:00" in body
    Message.objects.filter(pk=message.pk).update(attempts=1)
    with time_machine.travel(dt.datetime(2026, 11, 18, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=6))), tick=False):
        detail = tree.login(tree.root.staff["owner"]).get(reverse("console:messaging_message", args=[message.pk]))
    assert "next attempt at 08:00" in detail.content.decode()


def test_invoice_pdf_dates_are_day_month_year(tree):
    import base64
    import contextlib
    import re
    import zlib

    from sonjog.billing.models import Invoice

    invoice = Invoice.objects.filter(bill__subscriber=tree.root.subscribers[0]).earliest("pk")
    pdf = tree.login(tree.root.staff["owner"]).get(reverse("console:invoice_pdf", args=[invoice.pk])).content
    text = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.DOTALL):
        data = stream.strip()
        if data.endswith(b"~>"):
            data = base64.a85decode(data[:-2])
        with contextlib.suppress(zlib.error):
            data = zlib.decompress(data)
        text.append(data.decode("latin-1"))
    drawn = "\n".join(text)
    assert invoice.issued_on.strftime("%d/%m/%Y") in drawn
    assert invoice.bill.due_date.strftime("%d/%m/%Y") in drawn
