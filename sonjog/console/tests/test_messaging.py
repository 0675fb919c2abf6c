"""The messaging screens: templates with a live preview, bulk SMS (preview, confirm once), providers and
credit, the delivery log and the subscriber's message timeline. Real services, real database."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import transaction
from django.urls import reverse

from sonjog.billing.selectors import subscriber_balance
from sonjog.console import formatting
from sonjog.console.tests.conftest import add_staff
from sonjog.core.models import AuditEvent
from sonjog.customers.models import ServiceIntent, Subscriber
from sonjog.flows.payments import payment_receive
from sonjog.notifications import selectors as notify
from sonjog.notifications.models import (
    BulkSend,
    Message,
    MessageTemplate,
    NotificationSettings,
    ProviderAccount,
    ProviderKind,
    SmsBalance,
    SmsCreditEntry,
)
from sonjog.notifications.segments import count_segments
from sonjog.notifications.services import (
    message_queue,
    notify_event,
    provider_account_create,
    sms_credit_add,
    subscriber_preference_save,
    template_save,
)

pytestmark = pytest.mark.django_db

SECRET = "ssl-api-token-do-not-show"


def _search(pattern: str, text: str) -> str:
    found = re.search(pattern, text, re.S)
    assert found is not None, pattern
    return found.group(0)


def _sms_account(operator, credit="100.00", cost="0.25"):
    account = provider_account_create(
        operator=operator,
        name="SSL Wireless",
        kind="ssl_wireless",
        sender_id="MYISP",
        credentials={"api_token": SECRET},
        base_url="http://127.0.0.1:9",
        cost_per_segment=Decimal(cost),
    )
    if Decimal(credit) > 0:
        sms_credit_add(operator=operator, amount=Decimal(credit))
    return account


@pytest.fixture
def north_owner(tree):
    return add_staff(tree.north, "owner")


@pytest.fixture
def south_rows(tree):
    """South's own template, account, bulk send and message: nothing north may see or touch."""
    south = tree.south.operator
    account = _sms_account(south)
    template = template_save(
        operator=south, event="due_reminder", channel="sms", language="en", body="South says pay {{ amount_due }}"
    )
    bulk = _bulk_send(south, Subscriber.objects.filter(operator=south), "South news for {{ name }}")
    message = Message.objects.filter(bulk=bulk).earliest("pk")
    return {"account": account, "template": template, "bulk": bulk, "message": message}


def _bulk_send(operator, subscribers, text):
    from sonjog.notifications.services import bulk_sms_send

    return bulk_sms_send(operator=operator, subscribers=subscribers, template_or_text=text)


@pytest.mark.parametrize("language", ["en", "bn"])
def test_every_messaging_page_renders_for_an_owner(tree, south_rows, language):
    client = tree.login(tree.root.staff["owner"])
    client.post(reverse("console:language"), {"language": language})
    kinds = ProviderKind.values
    urls = [
        reverse("console:messaging_templates"),
        reverse("console:messaging_templates") + f"?operator={tree.south.operator.pk}",
        reverse("console:messaging_template_edit", args=["due_reminder", "sms", "bn"]),
        reverse("console:messaging_template_edit", args=["welcome", "email", "en"]),
        reverse("console:messaging_template_edit", args=["bulk", "whatsapp", "en"]),
        reverse("console:messaging_template", args=[south_rows["template"].pk]),
        reverse("console:messaging_bulk"),
        reverse("console:messaging_bulk") + f"?operator={tree.south.operator.pk}",
        reverse("console:messaging_bulk_result", args=[south_rows["bulk"].pk]),
        reverse("console:messaging_settings"),
        reverse("console:messaging_settings") + f"?operator={tree.south.operator.pk}",
        reverse("console:messaging_account_create"),
        *[reverse("console:messaging_account_create") + f"?kind={kind}" for kind in kinds],
        reverse("console:messaging_account_edit", args=[south_rows["account"].pk]),
        reverse("console:messaging_log"),
        reverse("console:messaging_log") + "?status=queued&channel=sms&event=bulk",
        reverse("console:messaging_message", args=[south_rows["message"].pk]),
        reverse("console:subscriber", args=[tree.south.subscribers[0].pk]),
    ]
    for url in urls:
        response = client.get(url, follow=True)
        assert response.status_code == 200, (url, response.status_code)
    # The navigation offers the four pages.
    body = client.get(reverse("console:dashboard")).content.decode()
    for name in ("messaging_templates", "messaging_bulk", "messaging_settings", "messaging_log"):
        assert reverse(f"console:{name}") in body


def test_a_collector_gets_403_everywhere(tree, south_rows):
    client = tree.login(tree.north.staff["collector"])
    gets = [
        reverse("console:messaging_templates"),
        reverse("console:messaging_template_edit", args=["due_reminder", "sms", "bn"]),
        reverse("console:messaging_bulk"),
        reverse("console:messaging_settings"),
        reverse("console:messaging_account_create"),
        reverse("console:messaging_log"),
    ]
    for url in gets:
        assert client.get(url).status_code == 403, url
    posts = {
        reverse("console:messaging_template_preview"): {"event": "bulk", "channel": "sms", "language": "en"},
        reverse("console:messaging_bulk"): {"step": "preview", "text": "hi"},
        reverse("console:messaging_credit_add"): {"amount": "100"},
        reverse("console:messaging_credit_threshold"): {"threshold": "5"},
        reverse("console:messaging_notifications"): {"default_language": "bn"},
    }
    for url, data in posts.items():
        assert client.post(url, data).status_code == 403, url
    # The profile has no message timeline for them.
    profile = client.get(reverse("console:subscriber", args=[tree.north.subscribers[0].pk]))
    assert profile.status_code == 200 and 'id="message-timeline"' not in profile.content.decode()


def test_view_only_roles_see_but_cannot_change(tree):
    _sms_account(tree.north.operator)
    clerk = tree.login(tree.north.staff["billing_clerk"])
    assert clerk.get(reverse("console:messaging_templates")).status_code == 200
    assert clerk.get(reverse("console:messaging_log")).status_code == 200
    assert clerk.get(reverse("console:messaging_settings")).status_code == 200
    assert clerk.get(reverse("console:messaging_template_edit", args=["welcome", "sms", "en"])).status_code == 403
    assert clerk.post(reverse("console:messaging_bulk"), {"step": "preview", "text": "hi"}).status_code == 403
    assert clerk.post(reverse("console:messaging_credit_add"), {"amount": "10"}).status_code == 403
    account = ProviderAccount.objects.get(operator=tree.north.operator)
    assert (
        clerk.post(reverse("console:messaging_account_active", args=[account.pk]), {"active": "0"}).status_code == 403
    )
    account.refresh_from_db()
    assert account.is_active
    support = tree.login(tree.north.staff["support"])
    assert support.get(reverse("console:messaging_log")).status_code == 200


def test_a_north_reseller_gets_404_for_south_rows(tree, north_owner, south_rows):
    client = tree.login(north_owner)
    south = tree.south.operator
    before = (
        MessageTemplate.objects.count(),
        ProviderAccount.objects.filter(is_active=True).count(),
        Message.objects.count(),
        SmsCreditEntry.objects.count(),
        NotificationSettings.objects.count(),
    )
    gets = [
        reverse("console:messaging_template", args=[south_rows["template"].pk]),
        reverse("console:messaging_account_edit", args=[south_rows["account"].pk]),
        reverse("console:messaging_message", args=[south_rows["message"].pk]),
        reverse("console:messaging_bulk_result", args=[south_rows["bulk"].pk]),
        reverse("console:messaging_templates") + f"?operator={south.pk}",
        reverse("console:messaging_template_edit", args=["due_reminder", "sms", "en"]) + f"?operator={south.pk}",
        reverse("console:messaging_bulk") + f"?operator={south.pk}",
        reverse("console:messaging_settings") + f"?operator={south.pk}",
        reverse("console:messaging_settings") + f"?operator={tree.root.operator.pk}",
        reverse("console:messaging_account_create") + f"?operator={south.pk}&kind=twilio",
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    posts = {
        reverse("console:messaging_account_edit", args=[south_rows["account"].pk]): {"name": "mine now"},
        reverse("console:messaging_account_active", args=[south_rows["account"].pk]): {"active": "0"},
        reverse("console:messaging_template_edit", args=["due_reminder", "sms", "en"]): {
            "operator": south.pk,
            "body": "tampered",
            "is_active": "on",
        },
        reverse("console:messaging_template_preview"): {
            "operator": south.pk,
            "event": "bulk",
            "channel": "sms",
            "language": "en",
            "body": "{{ name }}",
        },
        reverse("console:messaging_credit_add"): {"operator": south.pk, "amount": "100"},
        reverse("console:messaging_credit_threshold"): {"operator": south.pk, "threshold": "1"},
        reverse("console:messaging_notifications"): {"operator": south.pk, "default_language": "bn"},
        reverse("console:messaging_bulk"): {"operator": south.pk, "step": "confirm", "text": "x" * 20},
    }
    for url, data in posts.items():
        assert client.post(url, data).status_code == 404, url
    # South's template picked by id on north's bulk page is just an invalid choice; nothing is queued.
    response = client.post(
        reverse("console:messaging_bulk"), {"step": "preview", "template": south_rows["template"].pk}
    )
    assert response.status_code == 400
    # The log and the timeline never show south's messages to north.
    assert south_rows["message"].body not in client.get(reverse("console:messaging_log")).content.decode()
    after = (
        MessageTemplate.objects.count(),
        ProviderAccount.objects.filter(is_active=True).count(),
        Message.objects.count(),
        SmsCreditEntry.objects.count(),
        NotificationSettings.objects.count(),
    )
    assert after == before
    assert MessageTemplate.objects.get(pk=south_rows["template"].pk).body == "South says pay {{ amount_due }}"


def test_the_templates_page_shows_own_and_built_in_wording(tree, north_owner):
    template_save(operator=tree.north.operator, event="welcome", channel="sms", language="bn", body="স্বাগতম {{ name }}")
    body = tree.login(north_owner).get(reverse("console:messaging_templates")).content.decode()
    own_cell = re.search(r'id="cell-welcome-sms-bn"[^>]*>(.*?)</td>', body, re.S)
    default_cell = re.search(r'id="cell-welcome-sms-en"[^>]*>(.*?)</td>', body, re.S)
    none_cell = re.search(r'id="cell-bulk-sms-en"[^>]*>(.*?)</td>', body, re.S)
    assert own_cell and "own" in own_cell.group(1)
    assert default_cell and "built-in" in default_cell.group(1)
    assert none_cell and "—" in none_cell.group(1)


def test_saving_a_template_with_an_unknown_variable_is_a_form_error_and_saves_nothing(tree, north_owner):
    client = tree.login(north_owner)
    url = reverse("console:messaging_template_edit", args=["due_reminder", "sms", "bn"])
    response = client.post(url, {"body": "{{ name }}, {{ amount }} বাকি", "is_active": "on"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Unknown variable {{ amount }}" in page
    assert 'class="errorlist"' in page and 'id="preview-error"' in page
    assert not MessageTemplate.objects.exists()

    response = client.post(url, {"body": "{{ name }}, {{ amount_due }} বাকি", "is_active": "on"})
    assert response.status_code == 302
    saved = MessageTemplate.objects.get()
    assert (saved.operator, saved.event, saved.channel, saved.language) == (
        tree.north.operator,
        "due_reminder",
        "sms",
        "bn",
    )
    assert saved.body == "{{ name }}, {{ amount_due }} বাকি"
    # Who wrote what subscribers are told is on record, with the wording as it was.
    event = AuditEvent.objects.get(action="notifications.template_save")
    assert (event.operator, event.actor, event.detail["body"]) == (tree.north.operator, north_owner, saved.body)
    # Reached by id as well, for the template's own operator.
    by_id = client.get(reverse("console:messaging_template", args=[saved.pk]))
    assert by_id.status_code == 302 and by_id["Location"].endswith(f"{url}?operator={tree.north.operator.pk}")


def test_an_email_template_keeps_its_subject_and_checks_it(tree, north_owner):
    client = tree.login(north_owner)
    url = reverse("console:messaging_template_edit", args=["welcome", "email", "en"])
    response = client.post(url, {"subject": "Hi {{ nme }}", "body": "Welcome {{ name }}", "is_active": "on"})
    assert response.status_code == 400 and "Unknown variable {{ nme }}" in response.content.decode()
    assert not MessageTemplate.objects.exists()
    assert client.post(url, {"subject": "Hi {{ name }}", "body": "Welcome {{ name }}"}).status_code == 302
    saved = MessageTemplate.objects.get()
    assert (saved.subject, saved.is_active) == ("Hi {{ name }}", False)


def test_the_preview_renders_a_real_subscriber_and_counts_segments(tree, north_owner):
    _sms_account(tree.north.operator, cost="0.30")
    subscriber = tree.north.subscribers[1]
    Subscriber.objects.filter(pk=subscriber.pk).update(name="Nasima Akter")
    client = tree.login(north_owner)
    url = reverse("console:messaging_template_preview")
    english = "Dear {{ name }}, please pay {{ amount_due }} ({{ customer_id }})."
    response = client.post(
        url,
        {
            "event": "due_reminder",
            "channel": "sms",
            "language": "en",
            "body": english,
            "preview_subscriber": subscriber.customer_id,
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    subscriber.refresh_from_db()
    expected = notify.template_preview(
        MessageTemplate(operator=tree.north.operator, event="due_reminder", channel="sms", language="en", body=english),
        subscriber,
    )
    assert "Nasima Akter" in page and subscriber.customer_id in page
    assert expected.text in page and expected.encoding == "GSM-7"
    assert re.search(r'id="preview-encoding">GSM-7', page)
    assert f'id="preview-segments">{expected.segments}<' in page
    assert formatting.money(expected.cost, "BDT") in page

    bangla = (
        "প্রিয় {{ name }}, অনুগ্রহ করে {{ amount_due }} পরিশোধ করুন। "
        "গ্রাহক আইডি {{ customer_id }}। ধন্যবাদ, আপনার ইন্টারনেট সেবাদাতা।"
    )
    response = client.post(
        url,
        {"event": "due_reminder", "channel": "sms", "language": "bn", "body": bangla, "preview_subscriber": "Nasima"},
    )
    page = response.content.decode()
    rendered = notify.template_preview(
        MessageTemplate(operator=tree.north.operator, event="due_reminder", channel="sms", language="bn", body=bangla),
        subscriber,
    )
    counted = count_segments(rendered.text)
    assert counted.encoding == "UCS-2" and counted.segments >= 2
    assert "Nasima Akter" in page and 'id="preview-encoding">UCS-2' in page
    assert f'id="preview-segments">{counted.segments}<' in page
    assert formatting.money(Decimal("0.30") * counted.segments, "BDT") in page

    # An unknown variable is a specific error in the preview; an unknown subscriber too.
    page = client.post(
        url, {"event": "bulk", "channel": "sms", "language": "en", "body": "Hi {{ nmae }}"}
    ).content.decode()
    assert 'id="preview-error"' in page and "Unknown variable {{ nmae }}" in page
    page = client.post(
        url,
        {
            "event": "bulk",
            "channel": "sms",
            "language": "en",
            "body": "Hi {{ name }}",
            "preview_subscriber": "nobody-here",
        },
    ).content.decode()
    assert 'id="preview-error"' in page and "nobody-here" in page
    # Another operator's subscriber is not found even by exact customer ID.
    page = client.post(
        url,
        {
            "event": "bulk",
            "channel": "sms",
            "language": "en",
            "body": "Hi {{ name }}",
            "preview_subscriber": tree.south.subscribers[0].customer_id,
        },
    ).content.decode()
    assert 'id="preview-error"' in page


def _bulk_setup(tree):
    """North: an SMS account, credit, one subscriber who owes nothing, one who muted SMS, one terminated."""
    north = tree.north.operator
    _sms_account(north, credit="50.00", cost="0.25")
    paid_up = tree.north.subscribers[0]
    payment_receive(subscriber=paid_up, amount=subscriber_balance(paid_up.pk), method="cash")
    from sonjog.conftest import make_subscriber

    extra = [
        make_subscriber(north, tree.north.package, tree.north.subscribers[1].activation_date, zone=tree.north.zone)
        for _ in range(3)
    ]
    subscriber_preference_save(subscriber=extra[0], muted_channels=["sms"])
    Subscriber.objects.filter(pk=extra[1].pk).update(service_intent=ServiceIntent.SUSPENDED)
    return north, paid_up, extra


def _expected_recipients(tree, paid_up, *, status="active"):
    rows = Subscriber.objects.filter(operator=tree.north.operator, zone=tree.north.zone).exclude(pk=paid_up.pk)
    return rows.filter(service_intent=status) if status else rows


def _preview_post(client, tree, **extra):
    data = {"step": "preview", "zone": tree.north.zone.pk, "status": "active", "owes": "on", **extra}
    return client.post(reverse("console:messaging_bulk"), data)


def _card(page, card_id):
    match = re.search(rf'id="{card_id}"><div class="label">[^<]*</div><div class="value">([^<]*)</div>', page)
    assert match, card_id
    return match.group(1)


def test_bulk_preview_shows_what_the_selector_computes(tree, north_owner):
    _north, paid_up, _extra = _bulk_setup(tree)
    text = "Dear {{ name }}, you owe {{ amount_due }}. Please pay before the 10th to stay connected."
    response = _preview_post(tree.login(north_owner), tree, text=text)
    assert response.status_code == 200
    page = response.content.decode()
    expected = notify.bulk_sms_preview(tree.north.operator, _expected_recipients(tree, paid_up), text)
    assert expected.count == 2 and expected.skipped == 1  # the two originals who owe, one muted
    assert _card(page, "preview-count") == str(expected.count)
    assert _card(page, "preview-skipped") == str(expected.skipped)
    assert _card(page, "preview-segments") == str(expected.total_segments)
    assert _card(page, "preview-cost") == formatting.money(expected.cost, "BDT")
    assert "GSM-7: " in page and expected.sample in page
    assert 'id="bulk-send"' in page and not BulkSend.objects.exists()
    assert not Message.objects.filter(event="bulk").exists()


def test_confirm_queues_exactly_n_messages_once(tree, north_owner):
    _north, paid_up, _extra = _bulk_setup(tree)
    client = tree.login(north_owner)
    text = "বকেয়া {{ amount_due }}, {{ name }}"
    page = _preview_post(client, tree, text=text).content.decode()
    form = _search(r'<form method="post" id="bulk-confirm".*?</form>', page)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    assert fields["step"] == "confirm" and len(fields["token"]) >= 16
    expected = notify.bulk_sms_preview(tree.north.operator, _expected_recipients(tree, paid_up), text)

    response = client.post(reverse("console:messaging_bulk"), fields)
    assert response.status_code == 302
    bulk = BulkSend.objects.get()
    assert response["Location"] == reverse("console:messaging_bulk_result", args=[bulk.pk])
    assert Message.objects.filter(bulk=bulk).count() == expected.count == bulk.queued == 2
    assert set(Message.objects.filter(bulk=bulk).values_list("encoding", flat=True)) == {"UCS-2"}
    result = client.get(response["Location"]).content.decode()
    assert _card(result, "result-queued") == "2" and _card(result, "result-skipped") == str(expected.skipped)

    # The same confirmation posted again (a double click, a reload) queues nothing more.
    again = client.post(reverse("console:messaging_bulk"), fields)
    assert again.status_code == 302 and again["Location"] == response["Location"]
    assert Message.objects.filter(event="bulk").count() == 2 and BulkSend.objects.count() == 1
    # The past sends list shows it with its counts.
    history = client.get(reverse("console:messaging_bulk")).content.decode()
    assert re.search(r'id="bulk-history".*?<td class="num">2</td><td class="num">1</td>', history, re.S)


def test_insufficient_credit_warns_and_queues_nothing(tree, north_owner):
    north = tree.north.operator
    _sms_account(north, credit="0.25", cost="0.25")
    client = tree.login(north_owner)
    page = client.post(
        reverse("console:messaging_bulk"), {"step": "preview", "status": "active", "text": "Hello {{ name }}"}
    ).content.decode()
    assert 'id="credit-warning"' in page and 'id="bulk-send"' not in page
    assert formatting.money(Decimal("0.50"), "BDT") in page  # two recipients, one segment each
    # A confirm forged past the warning is refused by the service.
    response = client.post(
        reverse("console:messaging_bulk"),
        {"step": "confirm", "status": "active", "text": "Hello {{ name }}", "token": "a" * 22},
    )
    assert response.status_code == 409 and 'id="send-error"' in response.content.decode()
    assert not Message.objects.exists() and not BulkSend.objects.exists()
    assert SmsBalance.objects.get(operator=north).balance == Decimal("0.25")


def test_bulk_form_errors_change_nothing(tree, north_owner):
    _sms_account(tree.north.operator)
    client = tree.login(north_owner)
    url = reverse("console:messaging_bulk")
    assert "Write the message" in client.post(url, {"step": "preview"}).content.decode()
    response = client.post(url, {"step": "confirm", "text": "Hi {{ nmae }}", "token": "b" * 22})
    assert response.status_code == 400 and "Unknown variable {{ nmae }}" in response.content.decode()
    response = client.post(url, {"step": "confirm", "text": "Hi", "token": "not a token!"})
    assert response.status_code == 400
    assert not Message.objects.exists()


def test_top_up_with_a_bad_amount_is_a_form_error_and_changes_nothing(tree, north_owner):
    north = tree.north.operator
    sms_credit_add(operator=north, amount=Decimal("10.00"))
    client = tree.login(north_owner)
    url = reverse("console:messaging_credit_add")
    for amount in ("-5", "0", "abc", "1.234", ""):
        response = client.post(url, {"amount": amount})
        assert response.status_code == 400, amount
        assert 'id="topup-form"' in response.content.decode() and 'class="errorlist"' in response.content.decode()
    assert SmsBalance.objects.get(operator=north).balance == Decimal("10.00")
    assert SmsCreditEntry.objects.filter(operator=north).count() == 1
    response = client.post(url, {"amount": "250.50", "note": "invoice 17"})
    assert response.status_code == 302
    assert SmsBalance.objects.get(operator=north).balance == Decimal("260.50")
    page = client.get(response["Location"]).content.decode()
    assert "invoice 17" in page and formatting.money(Decimal("260.50"), "BDT") in page


def test_threshold_alert_and_settings(tree, north_owner):
    north = tree.north.operator
    client = tree.login(north_owner)
    assert client.post(reverse("console:messaging_credit_threshold"), {"threshold": "-1"}).status_code == 400
    assert client.post(reverse("console:messaging_credit_threshold"), {"threshold": "500"}).status_code == 302
    assert SmsBalance.objects.get(operator=north).low_balance_threshold == Decimal("500.00")
    from django.utils import timezone

    from sonjog.notifications.models import LowBalanceAlert

    LowBalanceAlert.objects.create(
        operator=north, balance=Decimal("3"), threshold=Decimal("500"), created_at=timezone.now()
    )
    assert 'id="low-balance-alert"' in client.get(reverse("console:messaging_settings")).content.decode()

    url = reverse("console:messaging_notifications")
    bad = client.post(url, {"quiet_start": "25:00", "quiet_end": "08:00", "default_language": "bn"})
    assert bad.status_code == 400 and not NotificationSettings.objects.exists()
    response = client.post(
        url,
        {
            "quiet_hours_enabled": "on",
            "quiet_start": "21:30",
            "quiet_end": "07:45",
            "default_language": "bn",
            "default_channels": ["sms"],
            "muted_events": ["package_change"],
            "portal_url": "https://my.example.net",
            "payment_instructions": "bKash 01700000000",
        },
    )
    assert response.status_code == 302
    saved = NotificationSettings.objects.get(operator=north)
    assert (saved.quiet_start.isoformat(), saved.quiet_end.isoformat(), saved.default_language) == (
        "21:30:00",
        "07:45:00",
        "bn",
    )
    assert (saved.default_channels, saved.muted_events, saved.portal_url, saved.payment_instructions) == (
        ["sms"],
        ["package_change"],
        "https://my.example.net",
        "bKash 01700000000",
    )
    assert list(
        AuditEvent.objects.filter(operator=north, actor=north_owner, action__startswith="notifications.")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["notifications.sms_threshold_set", "notifications.settings_save"]


def test_provider_accounts_are_added_edited_and_switched_without_showing_secrets(tree, north_owner):
    north = tree.north.operator
    client = tree.login(north_owner)
    url = reverse("console:messaging_account_create") + "?kind=ssl_wireless"
    missing = client.post(url, {"kind": "ssl_wireless", "name": "SSL", "cost_per_segment": "0.25", "is_active": "on"})
    assert missing.status_code == 400 and not ProviderAccount.objects.exists()
    response = client.post(
        url,
        {
            "kind": "ssl_wireless",
            "name": "SSL",
            "sender_id": "MYISP",
            "cost_per_segment": "0.2500",
            "secret_api_token": SECRET,
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    first = ProviderAccount.objects.get(operator=north)
    assert (first.channel, first.sender_id, first.credentials, first.is_active) == (
        "sms",
        "MYISP",
        {"api_token": SECRET},
        True,
    )

    edit_url = reverse("console:messaging_account_edit", args=[first.pk])
    page = client.get(edit_url).content.decode()
    assert SECRET not in page and "A value is stored" in page
    assert SECRET not in client.get(reverse("console:messaging_settings")).content.decode()
    # Editing without typing the secret keeps it; a duplicate name is refused.
    response = client.post(edit_url, {"name": "SSL main", "sender_id": "ISP2", "cost_per_segment": "0.30"})
    assert response.status_code == 302
    first.refresh_from_db()
    assert (first.name, first.sender_id, first.cost_per_segment, first.credentials) == (
        "SSL main",
        "ISP2",
        Decimal("0.3000"),
        {"api_token": SECRET},
    )

    twilio_url = reverse("console:messaging_account_create") + "?kind=twilio"
    response = client.post(
        twilio_url,
        {"kind": "twilio", "name": "SSL main", "username": "AC1", "secret_auth_token": "tw", "cost_per_segment": "1"},
    )
    assert response.status_code == 400 and "already has an account with this name" in response.content.decode()
    response = client.post(
        twilio_url,
        {
            "kind": "twilio",
            "name": "Twilio",
            "username": "AC1",
            "sender_id": "+15005550006",
            "secret_auth_token": "tw-token",
            "cost_per_segment": "1",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    first.refresh_from_db()
    twilio = ProviderAccount.objects.get(name="Twilio")
    assert twilio.is_active and not first.is_active  # one active account per channel

    assert client.post(reverse("console:messaging_account_active", args=[first.pk]), {"active": "1"}).status_code == 302
    first.refresh_from_db()
    twilio.refresh_from_db()
    assert first.is_active and not twilio.is_active

    smtp = client.post(
        reverse("console:messaging_account_create") + "?kind=smtp",
        {
            "kind": "smtp",
            "name": "Mail",
            "sender_id": "billing@example.net",
            "username": "mailer",
            "secret_password": "smtp-pass",
            "option_host": "mail.example.net",
            "option_port": "587",
            "option_use_tls": "on",
            "options_json": '{"timeout": 5}',
            "is_active": "on",
        },
    )
    assert smtp.status_code == 302
    mail = ProviderAccount.objects.get(name="Mail")
    assert mail.channel == "email" and mail.options == {
        "timeout": 5,
        "host": "mail.example.net",
        "port": 587,
        "use_tls": True,
        "use_ssl": False,
    }
    bad_json = client.post(
        reverse("console:messaging_account_edit", args=[mail.pk]), {"name": "Mail", "options_json": "[1, 2]"}
    )
    assert bad_json.status_code == 400 and "JSON object" in bad_json.content.decode()


def _timeline_setup(tree):
    north = tree.north.operator
    _sms_account(north)
    subscriber = tree.north.subscribers[0]
    with transaction.atomic():
        queued = notify_event(subscriber=subscriber, event="due_reminder", dedup_key="test:timeline")
    return subscriber, queued


def test_the_profile_shows_a_message_queued_by_notify_event(tree):
    subscriber, queued = _timeline_setup(tree)
    assert len(queued) == 1
    message = queued[0]
    # The billing clerk now has notifications.view_message.
    client = tree.login(tree.north.staff["billing_clerk"])
    page = client.get(reverse("console:subscriber", args=[subscriber.pk])).content.decode()
    timeline = _search(r'id="message-timeline".*?</table>', page)
    assert f'data-message="{message.pk}"' in timeline
    assert "Due reminder" in timeline and "SMS" in timeline and "Queued" in timeline
    assert message.body in timeline
    assert formatting.money(message.cost, "BDT") in timeline
    # The other subscriber's profile shows none of it.
    other = client.get(reverse("console:subscriber", args=[tree.north.subscribers[1].pk])).content.decode()
    assert f'data-message="{message.pk}"' not in other


def test_the_delivery_log_filters_and_pages_newest_first(tree, north_owner):
    north = tree.north.operator
    _sms_account(north)
    subscriber = tree.north.subscribers[0]
    with transaction.atomic():
        for number in range(55):
            message_queue(
                operator=north,
                channel="sms",
                recipient=subscriber.phone,
                body=f"Notice number {number}",
                subscriber=subscriber,
                event="bulk",
            )
    failed = Message.objects.filter(body="Notice number 3").get()
    Message.objects.filter(pk=failed.pk).update(
        status="failed", failure_reason="invalid_number", failed_at=failed.created_at
    )
    client = tree.login(north_owner)
    first = client.get(reverse("console:messaging_log")).content.decode()
    assert first.count('href="/messaging/log/') >= 50
    older = re.search(r'href="([^"]*before=[^"]*)" id="log-older"', first)
    assert older, "an Older link"
    second = client.get(reverse("console:messaging_log") + older.group(1).replace("&amp;", "&")).content.decode()
    ids_first = set(re.findall(r'href="/messaging/log/(\d+)/"', first))
    ids_second = set(re.findall(r'href="/messaging/log/(\d+)/"', second))
    assert len(ids_first) == 50 and len(ids_second) == 5 and not ids_first & ids_second
    assert 'id="log-older"' not in second
    assert f'href="/subscribers/{subscriber.pk}/"' in first
    only_failed = client.get(reverse("console:messaging_log") + "?status=failed").content.decode()
    assert set(re.findall(r'href="/messaging/log/(\d+)/"', only_failed)) == {str(failed.pk)}
    assert "invalid_number" in only_failed
    assert client.get(reverse("console:messaging_log") + "?status=nonsense&before=x.y").status_code == 200
    detail = client.get(reverse("console:messaging_message", args=[failed.pk])).content.decode()
    assert "Notice number 3" in detail and SECRET not in detail


def test_what_failed_for_lack_of_credit_is_sent_again_once(tree, north_owner, south_rows):
    from sonjog.notifications.services import message_send, notification_settings_save, notify_event

    north = tree.north.operator
    _sms_account(north, credit="0")
    notification_settings_save(operator=north, quiet_hours_enabled=False)
    [message] = notify_event(subscriber=tree.north.subscribers[0], event="package_change", channels=["sms"])
    assert message_send(message.pk) == "failed"
    client = tree.login(north_owner)
    settings_page = client.get(reverse("console:messaging_settings")).content.decode()
    assert "1 message failed for lack of credit in the last 7 days." in settings_page

    response = client.post(reverse("console:messaging_credit_resend"), {"operator": north.pk}, follow=True)
    assert "1 message queued again." in response.content.decode()
    again = Message.objects.get(resent_from=message)
    assert (again.status, again.body, again.operator) == ("queued", message.body, north)
    detail = client.get(reverse("console:messaging_message", args=[message.pk])).content.decode()
    assert f"Sent again as #{again.pk}" in detail and 'id="resend"' not in detail

    repeat = client.post(reverse("console:messaging_message_resend", args=[message.pk]), follow=True)
    assert "This message was already sent again." in repeat.content.decode()
    not_failed = client.post(reverse("console:messaging_message_resend", args=[again.pk]), follow=True)
    assert "Only a failed message can be sent again." in not_failed.content.decode()
    foreign = client.post(reverse("console:messaging_message_resend", args=[south_rows["message"].pk]))
    assert foreign.status_code == 404
    assert Message.objects.filter(resent_from__isnull=False).count() == 1
    clerk = tree.login(tree.north.staff["billing_clerk"])
    assert clerk.post(reverse("console:messaging_message_resend", args=[message.pk])).status_code == 403
