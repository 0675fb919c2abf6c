"""The "Outage credit" page: pick a zone, router or POP of one's own, preview who gets how much,
confirm with how many and what total, watch the worker credit them and read what was done. The
clock is pinned at 18 November 2026, 10:00 in Dhaka; the tree's subscribers joined on 9 October and
13 November."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from sonjog.billing.models import LedgerEntry, Outage, OutageCredit
from sonjog.billing.verification import ledger_verify
from sonjog.core.jobs import run_worker_cycle
from sonjog.customers.models import Pop, Subscriber
from sonjog.network.routers import router_create

pytestmark = pytest.mark.django_db

URL = reverse("console:outage_credit")
# Six hours on 14 November in Dhaka: 8.33 off each November bill (360 of 43,200 minutes of 1000.00,
# and of 25,920 minutes of the 600.00 prorated from the 13th).
WINDOW = {"start": "2026-11-14T09:00", "end": "2026-11-14T15:00", "reason": "fibre cut on the main road"}


def text(html: str, element_id: str) -> str:
    part = html.split(f'id="{element_id}"', 1)[1]
    part = part.split(">", 1)[1]
    closing = re.search(r"</(p|dd|th|td|section)>", part)
    assert closing is not None
    return " ".join(re.sub(r"<[^>]+>", " ", part[: closing.start()]).split())


def outage_entries() -> int:
    return LedgerEntry.objects.filter(adjustment_reason="outage").count()


def test_preview_lists_who_gets_how_much_and_writes_nothing(tree):
    clerk = tree.login(tree.north.staff["billing_clerk"])
    page = clerk.get(URL).content.decode()
    assert f'value="zone:{tree.north.zone.pk}"' in page
    # Only the caller's places are offered: the other reseller's zone and the parent's are not.
    assert f'value="zone:{tree.south.zone.pk}"' not in page and f'value="zone:{tree.root.zone.pk}"' not in page
    before = (LedgerEntry.objects.count(), Outage.objects.count())
    response = clerk.post(URL, {"place": f"zone:{tree.north.zone.pk}", **WINDOW})
    assert response.status_code == 200
    page = response.content.decode()
    assert text(page, "outage-summary").startswith("2 subscribers would be credited, ৳16.66 in total.")
    assert text(page, "outage-total") == "৳16.66"
    for subscriber in tree.north.subscribers:
        assert f'data-subscriber="{subscriber.customer_id}" data-status="credit"' in page
    assert "Credit 2 subscribers (total ৳16.66)?" in page
    assert (LedgerEntry.objects.count(), Outage.objects.count()) == before


def outage_page(client, outage: Outage, **headers: str) -> str:
    return client.get(reverse("console:outage", args=[outage.pk]), **headers).content.decode()


@pytest.mark.django_db(transaction=True)
def test_confirm_queues_the_credits_the_worker_credits_and_a_second_press_credits_nobody_twice(tree):
    clerk = tree.login(tree.north.staff["billing_clerk"])
    form = {"place": f"zone:{tree.north.zone.pk}", "step": "confirm", **WINDOW}
    response = clerk.post(URL, form)
    outage = Outage.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("console:outage", args=[outage.pk])
    # Queued: nothing credited yet, and the page asks again every second.
    assert outage.status == Outage.Status.QUEUED and outage.total == 2 and outage_entries() == 0
    waiting = outage_page(clerk, outage)
    assert 'data-status="queued"' in waiting and 'hx-trigger="every 1s"' in waiting
    # Pressed again while queued: the same run, not a second one.
    assert clerk.post(URL, form).status_code == 302
    run_worker_cycle(queues=["console"])
    outage.refresh_from_db()
    run = (outage.status, outage.done, outage.credited_count, outage.credited_total)
    assert run == ("done", 2, 2, Decimal("16.66"))
    assert outage.finished_at is not None
    done = outage_page(clerk, outage, HTTP_HX_REQUEST="true")
    assert "hx-trigger" not in done
    assert text(done, "outage-result").startswith("Credited 2 subscribers, ৳16.66 in total.")
    assert text(done, "outage-total") == "৳16.66"
    assert outage_entries() == 2
    # Typed in the operator's time zone (Dhaka, UTC+6).
    assert outage.starts_at == dt.datetime(2026, 11, 14, 3, 0, tzinfo=dt.UTC)
    assert outage.ends_at == dt.datetime(2026, 11, 14, 9, 0, tzinfo=dt.UTC)
    assert outage.created_by == tree.north.staff["billing_clerk"]
    assert f'href="{reverse("console:outage", args=[outage.pk])}"' in clerk.get(URL).content.decode()
    clerk.post(URL, form)
    run_worker_cycle(queues=["console"])
    again = outage_page(clerk, outage)
    assert text(again, "outage-result").startswith("Credited 0 subscribers, ৳0.00 in total. 2 skipped")
    assert again.count(f"already credited for outage #{outage.pk}") == 2
    assert outage_entries() == 2 and OutageCredit.objects.count() == 2
    for subscriber in tree.north.subscribers:
        assert LedgerEntry.objects.get(subscriber=subscriber, adjustment_reason="outage").amount == Decimal("-8.33")
    assert ledger_verify().ok
    # Another reseller's clerk cannot read it.
    other = tree.login(tree.south.staff["billing_clerk"])
    assert other.get(reverse("console:outage", args=[outage.pk])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_run_that_cannot_go_on_says_why_and_credits_nothing(tree):
    owner = tree.login(tree.root.staff["owner"])
    pop = Pop.objects.create(operator=tree.north.operator, name="Short-lived POP")
    owner.post(URL, {"place": f"pop:{pop.pk}", "step": "confirm", **WINDOW})
    outage = Outage.objects.get()
    pop.delete()  # gone before the worker came to it
    run_worker_cycle(queues=["console"])
    outage.refresh_from_db()
    assert outage.status == Outage.Status.FAILED
    page = outage_page(owner, outage)
    assert "Crediting stopped: the POP &#x27;Short-lived POP&#x27; no longer exists." in page
    assert outage_entries() == 0


@pytest.mark.django_db(transaction=True)
def test_a_router_and_a_pop(tree):
    owner = tree.login(tree.root.staff["owner"])
    router = router_create(
        operator=tree.root.operator, name="core-1", address="127.0.0.1", record_only=True, zones=[tree.root.zone]
    )
    pop = Pop.objects.create(operator=tree.north.operator, name="Mirpur POP")
    Subscriber.objects.filter(pk=tree.north.subscribers[0].pk).update(pop=pop)
    page = owner.get(URL).content.decode()
    assert f'value="router:{router.pk}"' in page and f'value="pop:{pop.pk}"' in page
    page = owner.post(URL, {"place": f"router:{router.pk}", **WINDOW}).content.decode()
    assert text(page, "outage-place") == "core-1"
    assert text(page, "outage-summary").startswith("2 subscribers would be credited")
    owner.post(URL, {"place": f"pop:{pop.pk}", "step": "confirm", **WINDOW})
    run_worker_cycle(queues=["console"])
    page = outage_page(owner, Outage.objects.get())
    assert text(page, "outage-result").startswith("Credited 1 subscriber, ৳8.33 in total.")
    assert list(LedgerEntry.objects.filter(adjustment_reason="outage").values_list("subscriber", flat=True)) == [
        tree.north.subscribers[0].pk
    ]


def test_another_resellers_zone_is_a_form_error_and_nothing_is_credited(tree):
    clerk = tree.login(tree.north.staff["billing_clerk"])
    for step in ("preview", "confirm"):
        response = clerk.post(URL, {"place": f"zone:{tree.south.zone.pk}", "step": step, **WINDOW})
        assert response.status_code == 400
        assert "Pick a zone, router or POP from the list." in response.content.decode()
    response = clerk.post(URL, {"place": "zone:not-a-number", "step": "confirm", **WINDOW})
    assert response.status_code == 400
    assert outage_entries() == 0 and Outage.objects.count() == 0


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-14T15:00", "2026-11-14T09:00", "The outage must end after it starts."),
        ("2026-11-18T09:00", "2026-11-18T11:00", "The outage has not ended yet"),
        ("2026-08-01T00:00", "2026-11-14T00:00", "more than 62 days"),
        ("14/11/2026 09:00", "nonsense", "Enter a valid date/time."),
    ],
)
def test_bad_windows_are_form_errors(tree, start, end, message):
    clerk = tree.login(tree.north.staff["billing_clerk"])
    response = clerk.post(
        URL, {"place": f"zone:{tree.north.zone.pk}", "step": "confirm", "start": start, "end": end, "reason": "x"}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert outage_entries() == 0 and Outage.objects.count() == 0


def test_a_reason_is_required(tree):
    clerk = tree.login(tree.north.staff["billing_clerk"])
    response = clerk.post(URL, {"place": f"zone:{tree.north.zone.pk}", "step": "confirm", **WINDOW, "reason": ""})
    assert response.status_code == 400 and outage_entries() == 0


def test_the_permission_of_adjustments_and_the_menu_link(tree):
    collector = tree.login(tree.north.staff["collector"])
    assert collector.get(URL).status_code == 403
    assert collector.post(URL, {"place": f"zone:{tree.north.zone.pk}", "step": "confirm", **WINDOW}).status_code == 403
    assert outage_entries() == 0
    assert URL not in collector.get(reverse("console:day_sheet")).content.decode()
    clerk = tree.login(tree.north.staff["billing_clerk"])
    assert f'href="{URL}"' in clerk.get(reverse("console:billing")).content.decode()


@pytest.mark.parametrize("value", ["\x00", "9" * 20, "1e20", "x" * 10_000, "9999-12-31T23:59", "0000-00-00", "\u202e1"])
def test_hostile_input_in_every_field_is_refused_and_credits_nothing(tree, value):
    owner = tree.login(tree.root.staff["owner"])
    valid = {"place": f"zone:{tree.north.zone.pk}", "step": "confirm", **WINDOW}
    for name in ("place", "start", "end", "reason"):
        response = owner.post(URL, {**valid, name: value})
        # An odd but ordinary reason ("1e20", twenty nines) is queued; every other value is a form error.
        assert response.status_code in ((302, 400) if name == "reason" else (200, 400)), (name, value)
    assert set(Outage.objects.values_list("reason", flat=True)) <= {value, WINDOW["reason"]}
    assert all(entry.amount == Decimal("-8.33") for entry in LedgerEntry.objects.filter(adjustment_reason="outage"))
