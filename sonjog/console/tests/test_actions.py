"""Every console action goes through the owning service; bad input is a field error with nothing
written."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse
from openpyxl import load_workbook

from sonjog.billing.models import Allocation, CreditNote, EntryKind, Invoice, LedgerEntry, Payment, Statement
from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.verification import ledger_verify
from sonjog.catalog.models import Package
from sonjog.conftest import make_package
from sonjog.console.models import BulkAction
from sonjog.console.tests.conftest import add_staff
from sonjog.core.jobs import run_worker_cycle
from sonjog.core.models import AuditEvent
from sonjog.customers.models import ServiceIntent, Subscriber, Zone
from sonjog.flows.payments import payment_receive

pytestmark = pytest.mark.django_db


def _ledger_size():
    return LedgerEntry.objects.count()


def test_create_subscriber_bills_the_first_period(tree):
    client = tree.login(tree.north.staff["billing_clerk"])
    response = client.post(
        reverse("console:subscriber_create"),
        {
            "operator": tree.north.operator.pk,
            "name": "Nusrat Jahan",
            "phone": "017 1234-5678",
            "package": tree.north.package.pk,
            "zone": tree.north.zone.pk,
            "activate": "on",
        },
    )
    assert response.status_code == 302
    subscriber = Subscriber.objects.get(name="Nusrat Jahan")
    assert subscriber.customer_id.startswith("NR")
    assert subscriber.phone == "+8801712345678"
    assert subscriber.service_intent == ServiceIntent.ACTIVE
    assert Statement.objects.filter(subscriber=subscriber, billed__gt=0).exists()
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert subscriber.customer_id in page.content.decode()


@pytest.mark.parametrize(
    ("field", "value"),
    [("phone", "12345"), ("phone", "+441632960000"), ("name", ""), ("billing_day", "40")],
)
def test_create_subscriber_bad_input_is_a_field_error(tree, field, value):
    client = tree.login(tree.north.staff["billing_clerk"])
    data = {
        "operator": tree.north.operator.pk,
        "name": "Someone",
        "phone": "01712345670",
        "package": tree.north.package.pk,
    }
    data[field] = value
    before = Subscriber.objects.count()
    response = client.post(reverse("console:subscriber_create"), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert Subscriber.objects.count() == before


def test_create_subscriber_refuses_a_pppoe_username_in_use(tree):
    client = tree.login(tree.north.staff["billing_clerk"])
    taken = tree.north.subscribers[0].pppoe_username
    response = client.post(
        reverse("console:subscriber_create"),
        {
            "operator": tree.north.operator.pk,
            "name": "Twin",
            "phone": "01712345671",
            "package": tree.north.package.pk,
            "pppoe_username": taken,
        },
    )
    assert response.status_code == 400 and "pppoe_username" in response.context["form"].errors


def test_discounts_need_the_permission(tree):
    clerk = tree.login(tree.north.staff["billing_clerk"])
    form = clerk.get(reverse("console:subscriber_create")).context["form"]
    assert "monthly_discount" not in form.fields
    owner = tree.login(tree.root.staff["owner"])
    assert "monthly_discount" in owner.get(reverse("console:subscriber_create")).context["form"].fields


def test_payment_duplicate_guard_and_confirmation(tree):
    subscriber = tree.north.subscribers[0]
    client = tree.login(tree.north.staff["collector"])
    url = reverse("console:subscriber_payment", args=[subscriber.pk])
    due = subscriber_balance(subscriber.pk)
    assert client.get(url).context["form"].initial["amount"] == due
    first = client.post(url, {"amount": "500", "method": "cash", "reference": "r1"})
    assert first.status_code == 302 and "/receipt/" in first["Location"]
    again = client.post(url, {"amount": "500", "method": "cash", "reference": "r2"})
    assert again.status_code == 409
    assert "identical cash payment" in again.context["duplicate"]
    assert Payment.objects.filter(subscriber=subscriber).count() == 1
    confirmed = client.post(url, {"amount": "500", "method": "cash", "reference": "r2", "confirm_duplicate": "on"})
    assert confirmed.status_code == 302
    payments = Payment.objects.filter(subscriber=subscriber)
    assert payments.count() == 2 and payments.filter(confirmed_duplicate=True).count() == 1
    receipt = client.get(confirmed["Location"])
    assert receipt.status_code == 200


@pytest.mark.parametrize("amount", ["0", "-5", "12.345", "abc"])
def test_payment_bad_amount_is_a_field_error(tree, amount):
    subscriber = tree.north.subscribers[0]
    client = tree.login(tree.north.staff["collector"])
    before = _ledger_size()
    response = client.post(
        reverse("console:subscriber_payment", args=[subscriber.pk]), {"amount": amount, "method": "cash"}
    )
    assert response.status_code == 400 and "amount" in response.context["form"].errors
    assert _ledger_size() == before


def test_adjustment_credit_and_missing_note(tree):
    subscriber = tree.north.subscribers[0]
    client = tree.login(tree.north.staff["billing_clerk"])
    url = reverse("console:subscriber_adjustment", args=[subscriber.pk])
    before = subscriber_balance(subscriber.pk)
    response = client.post(url, {"direction": "credit", "amount": "100", "reason": "manual", "memo": ""})
    assert response.status_code == 400 and "memo" in response.context["form"].errors
    assert subscriber_balance(subscriber.pk) == before
    response = client.post(url, {"direction": "credit", "amount": "100", "reason": "manual", "memo": "router down"})
    assert response.status_code == 302
    assert subscriber_balance(subscriber.pk) == before - Decimal("100")


def test_reverse_a_payment_with_a_reason_recalculates_the_statement(tree):
    subscriber = tree.north.subscribers[0]
    collector = tree.login(tree.north.staff["collector"])
    collector.post(reverse("console:subscriber_payment", args=[subscriber.pk]), {"amount": "300", "method": "bkash"})
    payment = Payment.objects.get(subscriber=subscriber)
    entry = payment.entries.get(kind=EntryKind.PAYMENT)
    statement = Statement.objects.get(subscriber=subscriber, period_month=entry.period_month)
    clerk = tree.login(tree.north.staff["billing_clerk"])
    url = reverse("console:entry_reverse", args=[subscriber.pk, entry.pk])
    assert clerk.post(url, {"reason": ""}).status_code == 400
    response = clerk.post(url, {"reason": "bounced"})
    assert response.status_code == 302
    reversal = LedgerEntry.objects.get(reverses=entry)
    assert reversal.memo == "bounced" and reversal.created_by == tree.north.staff["billing_clerk"]
    after = Statement.objects.get(pk=statement.pk)
    assert after.paid == statement.paid - Decimal("300")
    assert after.closing_due == statement.closing_due + Decimal("300")
    again = clerk.post(url, {"reason": "twice"})
    assert again.status_code == 400 and "already reversed" in str(again.context["form"].non_field_errors())


def test_void_an_invoice_issues_a_credit_note(tree):
    subscriber = tree.north.subscribers[0]
    invoice = Invoice.objects.filter(bill__subscriber=subscriber).earliest("pk")
    owner = tree.login(tree.root.staff["owner"])
    url = reverse("console:invoice_void", args=[invoice.pk])
    assert owner.post(url, {"reason": ""}).status_code == 400
    assert owner.post(url, {"reason": "billed by mistake"}).status_code == 302
    assert CreditNote.objects.filter(invoice=invoice).exists()
    invoice.refresh_from_db()
    assert invoice.voided_at is not None
    page = owner.get(reverse("console:invoice", args=[invoice.pk])).content.decode()
    assert "billed by mistake" in page
    pdf = owner.get(reverse("console:invoice_pdf", args=[invoice.pk]))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_suspend_reactivate_and_vip_refusal(tree):
    subscriber = tree.north.subscribers[0]
    client = tree.login(tree.north.staff["billing_clerk"])
    url = reverse("console:subscriber_intent", args=[subscriber.pk])
    client.post(url, {"intent": "suspended", "reason": "asked to pause"})
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.SUSPENDED
    # Still overdue (activated 40 days ago, nothing paid): reactivating needs that confirmed.
    client.post(url, {"intent": "active", "reason": "back home", "confirm_overdue": "on"})
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.ACTIVE
    Subscriber.objects.filter(pk=subscriber.pk).update(is_vip=True)
    response = client.post(url, {"intent": "suspended", "reason": "asked to pause"}, follow=True)
    assert "VIP" in response.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.ACTIVE


def test_terminate_needs_a_reason(tree):
    subscriber = tree.north.subscribers[0]
    owner = tree.login(tree.root.staff["owner"])
    url = reverse("console:subscriber_terminate", args=[subscriber.pk])
    assert owner.post(url, {"reason": ""}).status_code == 400
    assert owner.post(url, {"reason": "moved away"}).status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.service_intent == ServiceIntent.TERMINATED


def test_edit_contact_and_its_audit(tree):
    subscriber = tree.north.subscribers[0]
    client = tree.login(tree.north.staff["billing_clerk"])
    url = reverse("console:subscriber_contact", args=[subscriber.pk])
    bad = client.post(url, {"name": "New Name", "phone": "999"})
    assert bad.status_code == 400 and "phone" in bad.context["form"].errors
    ok = client.post(url, {"name": "New Name", "phone": "01898765432", "address": "Road 5", "zone": tree.north.zone.pk})
    assert ok.status_code == 302
    subscriber.refresh_from_db()
    assert (subscriber.name, subscriber.phone, subscriber.address) == ("New Name", "+8801898765432", "Road 5")
    event = AuditEvent.objects.get(subscriber=subscriber, action="subscriber.update_contact")
    assert event.actor == tree.north.staff["billing_clerk"] and "phone" in event.detail["fields"]
    profile = client.get(reverse("console:subscriber", args=[subscriber.pk])).content.decode()
    assert "subscriber.update_contact" in profile


def test_change_package(tree):
    subscriber = tree.north.subscribers[0]
    better = make_package(tree.north.operator, "1500.00", vat=False, name="North 20M")
    client = tree.login(tree.north.staff["billing_clerk"])
    response = client.post(reverse("console:subscriber_package", args=[subscriber.pk]), {"package": better.pk})
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.package == better


def test_generate_invoices_confirms_then_reports_five_outcomes(tree):
    owner = tree.login(tree.root.staff["owner"])
    url = reverse("console:generate")
    bad = owner.post(url, {"period": "2026-13"})
    assert bad.status_code == 400 and "period" in bad.context["form"].errors
    from sonjog.billing.terms import operator_today
    from sonjog.core.periods import add_months, month_start

    next_month = add_months(month_start(operator_today(tree.root.operator)), 1)
    period = f"{next_month:%Y-%m}"
    before = LedgerEntry.objects.filter(kind="bill").count()
    preview = owner.post(url, {"period": period, "step": "preview"})
    assert preview.status_code == 200
    assert preview.context["would_create"] == 6
    assert LedgerEntry.objects.filter(kind="bill").count() == before
    result = owner.post(url, {"period": period, "step": "confirm"})
    assert result.status_code == 200
    outcome = result.context["result"]
    assert (outcome.created, outcome.backfilled, outcome.skipped_existing, outcome.skipped_future_joiners) == (
        6,
        0,
        0,
        0,
    )
    assert outcome.errors == []
    again = owner.post(url, {"period": period, "step": "confirm"})
    assert again.context["result"].skipped_existing == 6
    runs = owner.get(reverse("console:runs"))
    assert runs.context["page_obj"].paginator.count >= 6


@pytest.mark.django_db(transaction=True)
def test_bulk_suspend_runs_as_a_job_with_progress(tree):
    client = tree.login(tree.north.staff["billing_clerk"])
    ids = [s.pk for s in tree.north.subscribers]
    Subscriber.objects.filter(pk=ids[1]).update(is_vip=True)
    response = client.post(reverse("console:bulk_start"), {"kind": "suspend", "subscribers": ids})
    assert response.status_code == 302
    action = BulkAction.objects.get()
    assert (action.total, action.done, action.status) == (2, 0, "queued")
    progress = client.get(reverse("console:bulk", args=[action.pk]), HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 1s"' in progress.content.decode()
    run_worker_cycle(queues=["console"])
    action.refresh_from_db()
    assert (action.done, action.failed, action.status) == (2, 1, "done")
    assert "VIP" in action.errors[0]["error"]
    assert Subscriber.objects.get(pk=ids[0]).service_intent == ServiceIntent.SUSPENDED
    finished = client.get(reverse("console:bulk", args=[action.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "every 1s" not in finished


@pytest.mark.django_db(transaction=True)
def test_bulk_change_package_for_all_matching_and_sms_goes_to_its_own_page(tree):
    client = tree.login(tree.north.staff["billing_clerk"])
    better = make_package(tree.north.operator, "1500.00", vat=False, name="North 20M")
    client.post(
        reverse("console:bulk_start"),
        {"kind": "change_package", "all_matching": "on", "package": better.pk, "filters": "status=active"},
    )
    # SMS is not a bulk action: the Bulk SMS page shows the count and the cost before sending.
    sms = client.post(reverse("console:bulk_start"), {"kind": "sms", "all_matching": "on"}, follow=True)
    assert "Send SMS from Messaging, Bulk SMS: it shows the count and the cost first." in sms.content.decode()
    run_worker_cycle(queues=["console"])
    [change] = BulkAction.objects.order_by("pk")
    assert change.total == 2 and change.status == "done"
    assert set(Subscriber.objects.filter(operator=tree.north.operator).values_list("package", flat=True)) == {better.pk}
    refused = client.post(reverse("console:bulk_start"), {"kind": "change_package", "all_matching": "on"})
    assert refused.status_code == 302 and BulkAction.objects.count() == 1


def test_the_list_hands_its_filters_to_bulk_sms(tree):
    owner = tree.login(tree.root.staff["owner"])
    listing = owner.get(reverse("console:subscribers"), {"zone": tree.root.zone.pk, "due_min": "0.01"})
    page = listing.content.decode()
    assert 'value="sms"' not in page
    link = page.split('id="sms-these" href="')[1].split('"')[0].replace("&amp;", "&")
    assert link.startswith(reverse("console:messaging_bulk")) and f"zone={tree.root.zone.pk}" in link
    form = owner.get(link).context["form"]
    assert form["zone"].value() == str(tree.root.zone.pk) and form["owes"].value() is True
    assert (
        tree.login(tree.root.staff["billing_clerk"])
        .get(reverse("console:subscribers"))
        .content.decode()
        .count('id="sms-these"')
        == 0
    )


def test_exports_list_the_filtered_rows(tree):
    client = tree.login(tree.root.staff["owner"])
    csv_response = client.get(reverse("console:subscribers_export", args=["csv"]), {"operator": tree.north.operator.pk})
    text = b"".join(csv_response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "Customer ID" and len(rows) == 3
    assert {row[0] for row in rows[1:]} == {s.customer_id for s in tree.north.subscribers}
    xlsx = client.get(reverse("console:subscribers_export", args=["xlsx"]))
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.max_row == 1 + Subscriber.objects.count()


def test_search_finds_by_name_phone_customer_id_and_username(tree):
    client = tree.login(tree.root.staff["owner"])
    target = tree.north.subscribers[1]
    for text in (target.customer_id, target.pppoe_username, target.phone[-8:], "0" + target.phone[4:]):
        listed = client.get(
            reverse("console:subscribers"), {"q": text}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="subscriber-results"
        )
        assert target in list(listed.context["page_obj"]), text
        assert b"<html" not in listed.content  # the htmx request gets the results fragment only
    sorted_page = client.get(reverse("console:subscribers"), {"sort": "-due"})
    dues = [row.due for row in sorted_page.context["page_obj"]]
    assert dues == sorted(dues, reverse=True)


def test_packages_and_zones_are_managed_through_the_console(tree):
    client = tree.login(add_staff(tree.north, "owner"))
    created = client.post(
        reverse("console:package_create"),
        {
            "name": "Night 50M",
            "price": "700",
            "download_mbps": "50",
            "upload_mbps": "50",
            "router_profile": "night-50m",
            "vat_applicable": "on",
            "is_active": "on",
        },
    )
    assert created.status_code == 302
    package = Package.objects.get(name="Night 50M")
    assert package.operator == tree.north.operator
    duplicate = client.post(
        reverse("console:package_create"),
        {"name": "Night 50M", "price": "1", "download_mbps": "1", "upload_mbps": "1", "router_profile": "x"},
    )
    assert duplicate.status_code == 400 and "name" in duplicate.context["form"].errors
    negative = client.post(
        reverse("console:package_edit", args=[package.pk]),
        {"name": "Night 50M", "price": "-1", "download_mbps": "1", "upload_mbps": "1", "router_profile": "x"},
    )
    assert negative.status_code == 400 and "price" in negative.context["form"].errors
    client.post(
        reverse("console:package_edit", args=[package.pk]),
        {"name": "Night 60M", "price": "750", "download_mbps": "60", "upload_mbps": "60", "router_profile": "n"},
    )
    package.refresh_from_db()
    assert (package.name, package.price, package.is_active) == ("Night 60M", Decimal("750.00"), False)

    assert client.post(reverse("console:zone_create"), {"name": "Banani"}).status_code == 302
    banani = Zone.objects.get(name="Banani")
    assert client.post(reverse("console:zone_create"), {"name": "Road 11", "parent": banani.pk}).status_code == 302
    assert Zone.objects.get(name="Road 11").parent == banani
    dup = client.post(reverse("console:zone_create"), {"name": "Banani"})
    assert dup.status_code == 400 and "name" in dup.context["form"].errors
    foreign_parent = client.post(reverse("console:zone_create"), {"name": "X", "parent": tree.south.zone.pk})
    assert foreign_parent.status_code == 400 and "parent" in foreign_parent.context["form"].errors


def test_a_paid_invoice_is_voided_in_one_of_two_steps_the_page_offers(tree):
    subscriber = tree.north.subscribers[0]
    invoice = Invoice.objects.filter(bill__subscriber=subscriber).earliest("pk")
    payment = payment_receive(subscriber=subscriber, amount=invoice.bill.total, method="cash")
    owner = tree.login(tree.root.staff["owner"])
    url = reverse("console:invoice_void", args=[invoice.pk])
    before = LedgerEntry.objects.count()
    refused = owner.post(url, {"reason": "billed by mistake"})
    assert refused.status_code == 400 and LedgerEntry.objects.count() == before
    page = refused.content.decode()
    assert "Money has been paid on this invoice" in page
    entry = payment.entries.get(kind=EntryKind.PAYMENT)
    # Step one, either: reverse the payment (its own page) ...
    assert reverse("console:entry_reverse", args=[subscriber.pk, entry.pk]) in page
    # ... or: void and move what was paid to the other open bills.
    moved = owner.post(url, {"reason": "billed by mistake", "move_payments": "on"})
    assert moved.status_code == 302
    invoice.refresh_from_db()
    assert invoice.voided_at is not None
    standing = Allocation.objects.filter(source=entry).values("bill_id").annotate(total=Sum("amount"))
    assert all(row["bill_id"] != invoice.bill_id for row in standing if row["total"] > 0)
    assert subscriber_balance(subscriber.pk) == sum(
        LedgerEntry.objects.filter(subscriber=subscriber).values_list("amount", flat=True)
    )
    assert ledger_verify().ok
