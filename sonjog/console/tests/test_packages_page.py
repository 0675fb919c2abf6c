"""The packages page: rates typed in Mbps and stored in kbps (and shown back unchanged), fair usage
(allowance, fair-usage rates and profile) validated field by field with nothing written on a refusal,
the validity offered only as the month that bill generation handles, the router-profile list read from
the RouterOS emulator over TCP (a router that is down or hangs leaves the page working, with a note),
the list's speeds, fair usage, operator and profile-sync columns, and the tenant wall."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from sonjog.catalog.models import BillingUnit, Package
from sonjog.console.forms.catalog import kbps_from_mbps, mbps_from_kbps, rate_text
from sonjog.console.tests.conftest import Tree, add_staff
from sonjog.console.views.catalog import PROFILE_READ_TIMEOUT_SECONDS
from sonjog.core.models import AuditEvent
from sonjog.network.models import OutboxStatus, ProfileCommand, Router
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.services import router_create

ROUTER_USER, ROUTER_PASSWORD = "sonjog", "r0uter-secret"


def start_emulator(*profiles: tuple[str, str]) -> RouterOSEmulator:
    emu = RouterOSEmulator(username=ROUTER_USER, password=ROUTER_PASSWORD).start()
    for name, rate_limit in profiles:
        emu.add_profile(name, rate_limit=rate_limit)
    return emu


@pytest.fixture
def emulator() -> Iterator[RouterOSEmulator]:
    emu = start_emulator(("10m", "10240k/10240k"), ("night-30m", "10240k/30720k"), ("fup-1m", "1024k/1024k"))
    try:
        yield emu
    finally:
        emu.stop()


def add_router(tree: Tree, name: str, port: int, operator=None) -> Router:
    return router_create(
        operator=operator or tree.root.operator,
        name=name,
        address="127.0.0.1",
        api_port=port,
        username=ROUTER_USER,
        password=ROUTER_PASSWORD,
    )


def package_post(tree: Tree, **changes: object) -> dict[str, object]:
    """The package form as the root's owner fills it in (the root spans several operators)."""
    data: dict[str, object] = {
        "operator": str(tree.root.operator.pk),
        "name": "Fiber 2.5",
        "price": "800",
        "download_mbps": "2.5",
        "upload_mbps": "1",
        "router_profile": "2-5m",
        "billing_unit": "month",
        "vat_applicable": "on",
        "is_active": "on",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def package_audits() -> int:
    return AuditEvent.objects.filter(action__startswith="package.").count()


# -- Mbps <-> kbps ------------------------------------------------------------------------------------


def test_mbps_converts_to_kbps_and_back():
    assert kbps_from_mbps(Decimal("2.5")) == 2560
    assert kbps_from_mbps(Decimal("10")) == 10240
    assert kbps_from_mbps(Decimal("0.5")) == 512
    assert kbps_from_mbps(Decimal("0.977")) == 1000  # 1000.448 -> the nearest kbps
    assert mbps_from_kbps(2560) == Decimal("2.5")
    assert mbps_from_kbps(10240) == Decimal("10")
    assert mbps_from_kbps(1000) == Decimal("0.977")
    with translation.override("en"):
        assert rate_text(10240) == "10 Mbps"
        assert rate_text(2560) == "2.5 Mbps (2,560 kbps)"


@given(st.integers(min_value=1, max_value=102_400_000))
def test_every_stored_rate_is_shown_in_mbps_that_types_back_to_the_same_kbps(kbps: int):
    shown = mbps_from_kbps(kbps)
    assert kbps_from_mbps(shown) == kbps
    assert shown == shown.quantize(Decimal("0.0001"))  # fits the form's four decimal places


@pytest.mark.django_db
def test_a_package_typed_in_mbps_is_stored_in_kbps_listed_in_mbps_and_edited_unchanged(tree: Tree):
    client = tree.login(tree.root.staff["owner"])
    response = client.post(reverse("console:package_create"), package_post(tree))
    assert response.status_code == 302, response.context["form"].errors
    package = Package.objects.get(name="Fiber 2.5")
    assert (package.download_kbps, package.upload_kbps, package.rate_limit) == (2560, 1024, "1024k/2560k")
    assert (package.data_allowance_gb, package.billing_unit) == (None, BillingUnit.MONTH)

    listed = client.get(reverse("console:packages")).content.decode()
    assert "2.5 Mbps (2,560 kbps) / 1 Mbps" in listed
    assert "10 Mbps / 10 Mbps" in listed  # the tree's own packages, 10240 kbps each way
    assert "Unlimited" in listed

    form = client.get(reverse("console:package_edit", args=[package.pk])).context["form"]
    assert (form["download_mbps"].value(), form["upload_mbps"].value()) == (Decimal("2.5"), Decimal("1"))
    # Saving the form as it was shown changes nothing: the Mbps figures type back to the same kbps.
    before = package_audits()
    resaved = client.post(reverse("console:package_edit", args=[package.pk]), package_post(tree))
    assert resaved.status_code == 302
    assert package_audits() == before

    faster = client.post(reverse("console:package_edit", args=[package.pk]), package_post(tree, download_mbps="20"))
    assert faster.status_code == 302
    package.refresh_from_db()
    assert package.download_kbps == 20480


@pytest.mark.django_db
def test_rates_out_of_range_or_with_too_many_decimals_are_field_errors(tree: Tree):
    client = tree.login(tree.root.staff["owner"])
    for field, value in (
        ("download_mbps", "0"),
        ("upload_mbps", "1e3"),
        ("download_mbps", "999999"),
        ("upload_mbps", "1.23456"),
    ):
        response = client.post(reverse("console:package_create"), package_post(tree, **{field: value}))
        assert response.status_code == 400 and field in response.context["form"].errors, (field, value)
    assert not Package.objects.filter(name="Fiber 2.5").exists()


# -- fair usage ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_fair_usage_is_saved_listed_and_its_profile_queued_on_the_routers(tree: Tree, emulator):
    router = add_router(tree, "core-1", emulator.port)
    client = tree.login(tree.root.staff["owner"])
    response = client.post(
        reverse("console:package_create"),
        package_post(
            tree, data_allowance_gb="100", fup_download_mbps="0.5", fup_upload_mbps="0.5", fup_router_profile="fup-512k"
        ),
    )
    assert response.status_code == 302, response.context["form"].errors
    package = Package.objects.get(name="Fiber 2.5")
    assert (package.data_allowance_gb, package.fup_download_kbps, package.fup_upload_kbps) == (100, 512, 512)
    assert package.fup_router_profile == "fup-512k"
    queued = set(
        ProfileCommand.objects.filter(router=router, status=OutboxStatus.PENDING).values_list("profile", flat=True)
    )
    assert {"2-5m", "fup-512k"} <= queued
    assert "FUP: 100 GB then 0.5 Mbps (512 kbps)" in client.get(reverse("console:packages")).content.decode()

    edit = client.get(reverse("console:package_edit", args=[package.pk])).context["form"]
    assert edit["fup_download_mbps"].value() == Decimal("0.5")
    unequal = client.post(
        reverse("console:package_edit", args=[package.pk]),
        package_post(
            tree, data_allowance_gb="100", fup_download_mbps="2", fup_upload_mbps="1", fup_router_profile="fup-512k"
        ),
    )
    assert unequal.status_code == 302
    assert "FUP: 100 GB then 2 Mbps / 1 Mbps" in client.get(reverse("console:packages")).content.decode()


@pytest.mark.django_db
def test_a_fair_usage_rate_above_the_package_rate_is_refused_on_its_field_and_nothing_is_written(tree: Tree):
    client = tree.login(tree.root.staff["owner"])
    before = (Package.objects.count(), package_audits(), ProfileCommand.objects.count())
    response = client.post(
        reverse("console:package_create"),
        package_post(
            tree, data_allowance_gb="50", fup_download_mbps="3", fup_upload_mbps="2", fup_router_profile="fup"
        ),
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["fup_download_mbps"] == [
        "The fair-usage download (3 Mbps) cannot be faster than the package's download (2.5 Mbps (2,560 kbps))."
    ]
    assert errors["fup_upload_mbps"] == [
        "The fair-usage upload (2 Mbps) cannot be faster than the package's upload (1 Mbps)."
    ]
    assert (Package.objects.count(), package_audits(), ProfileCommand.objects.count()) == before

    # The same refusal on an edit leaves the package as it was.
    package = tree.root.package
    edit = client.post(
        reverse("console:package_edit", args=[package.pk]),
        package_post(
            tree,
            name=package.name,
            download_mbps="10",
            upload_mbps="10",
            router_profile="10m",
            data_allowance_gb="50",
            fup_download_mbps="12",
            fup_upload_mbps="1",
            fup_router_profile="fup",
        ),
    )
    assert edit.status_code == 400 and "fup_download_mbps" in edit.context["form"].errors
    package.refresh_from_db()
    assert package.data_allowance_gb is None and package_audits() == before[1]


@pytest.mark.django_db
def test_an_allowance_needs_its_fair_usage_terms_on_a_profile_of_their_own(tree: Tree):
    client = tree.login(tree.root.staff["owner"])
    missing = client.post(reverse("console:package_create"), package_post(tree, data_allowance_gb="100"))
    assert missing.status_code == 400
    errors = missing.context["form"].errors
    assert set(errors) == {"fup_download_mbps", "fup_upload_mbps", "fup_router_profile"}
    assert "once the allowance is used" in errors["fup_download_mbps"][0]
    same_profile = client.post(
        reverse("console:package_create"),
        package_post(
            tree, data_allowance_gb="100", fup_download_mbps="1", fup_upload_mbps="1", fup_router_profile="2-5m"
        ),
    )
    assert same_profile.status_code == 400
    assert "profile of its own" in same_profile.context["form"].errors["fup_router_profile"][0]
    zero = client.post(reverse("console:package_create"), package_post(tree, data_allowance_gb="0"))
    assert zero.status_code == 400 and "data_allowance_gb" in zero.context["form"].errors
    assert not Package.objects.filter(name="Fiber 2.5").exists()


@pytest.mark.django_db
def test_without_an_allowance_the_fair_usage_fields_are_ignored(tree: Tree):
    client = tree.login(tree.root.staff["owner"])
    response = client.post(
        reverse("console:package_create"),
        package_post(tree, fup_download_mbps="99", fup_upload_mbps="nonsense", fup_router_profile="2-5m"),
    )
    assert response.status_code == 302
    package = Package.objects.get(name="Fiber 2.5")
    # Nothing typed there was taken: the columns keep their defaults, which only apply with an allowance.
    assert (package.data_allowance_gb, package.fup_download_kbps, package.fup_router_profile) == (None, 1024, "fup")
    form = client.get(reverse("console:package_edit", args=[package.pk])).context["form"]
    assert form["fup_download_mbps"].value() is None and form["fup_router_profile"].value() is None


@pytest.mark.django_db
def test_the_validity_offers_only_the_month_that_bills_correctly(tree: Tree):
    client = tree.login(tree.root.staff["owner"])
    form = client.get(reverse("console:package_create")).context["form"]
    assert [value for value, _label in form.fields["billing_unit"].choices] == ["month"]
    assert "only bills by the month" in str(form.fields["billing_unit"].help_text)
    response = client.post(reverse("console:package_create"), package_post(tree, billing_unit="day"))
    assert response.status_code == 400 and "billing_unit" in response.context["form"].errors
    # Left out, it is the month.
    assert client.post(reverse("console:package_create"), package_post(tree, billing_unit=None)).status_code == 302
    assert Package.objects.get(name="Fiber 2.5").billing_unit == BillingUnit.MONTH


# -- the routers' profile list ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_form_offers_the_profiles_read_from_the_router(tree: Tree, emulator):
    add_router(tree, "core-1", emulator.port)
    emulator.clear_command_log()
    client = tree.login(tree.root.staff["owner"])
    response = client.get(reverse("console:package_create"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'list="router-profiles"' in html
    assert '<option value="night-30m" label="core-1 10240k/30720k">' in html
    assert '<option value="fup-1m" label="core-1 1024k/1024k">' in html
    assert "did not answer" not in html
    # One read per render: one login, one print of the profiles.
    assert [entry.path for entry in emulator.command_log if entry.path.startswith("/ppp/")] == ["/ppp/profile/print"]

    # A name no router has yet is still taken (the push creates it).
    created = client.post(reverse("console:package_create"), package_post(tree, router_profile="brand-new"))
    assert created.status_code == 302
    assert Package.objects.get(name="Fiber 2.5").router_profile == "brand-new"


@pytest.mark.django_db
def test_a_router_that_is_down_or_hangs_leaves_the_form_working_with_a_note(tree: Tree, emulator):
    add_router(tree, "core-1", emulator.port)
    down = start_emulator()
    down_port = down.port
    down.stop()  # nothing listens there any more: the connection is refused
    add_router(tree, "core-2", down_port)
    hanging = start_emulator(("slow", "1k/1k"))
    hanging.set_reply_delay(PROFILE_READ_TIMEOUT_SECONDS * 4)
    try:
        add_router(tree, "core-3", hanging.port)
        client = tree.login(tree.root.staff["owner"])
        started = time.perf_counter()
        response = client.get(reverse("console:package_create"))
        elapsed = time.perf_counter() - started
    finally:
        hanging.stop()
    assert response.status_code == 200
    html = response.content.decode()
    assert "core-2 did not answer; type the profile name." in html
    assert "core-3 did not answer; type the profile name." in html
    assert "core-1 did not answer" not in html
    assert '<option value="night-30m"' in html  # the router that answered is still offered
    # The routers are asked at once, each within the short timeout: the page does not wait them out.
    assert elapsed < PROFILE_READ_TIMEOUT_SECONDS * 2 + 1.5, elapsed


@pytest.mark.django_db
def test_a_reseller_reads_only_its_own_routers(tree: Tree, emulator):
    add_router(tree, "core-root", emulator.port)
    other = start_emulator(("north-only", "2048k/2048k"))
    try:
        add_router(tree, "north-1", other.port, operator=tree.north.operator)
        client = tree.login(add_staff(tree.north, "owner"))
        html = client.get(reverse("console:package_create")).content.decode()
    finally:
        other.stop()
    assert '<option value="north-only"' in html
    assert "night-30m" not in html and "core-root" not in html


# -- the list and the tenant wall -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_shows_operators_subscribers_and_whether_the_profiles_are_on_the_routers(tree: Tree, emulator):
    client = tree.login(tree.root.staff["owner"])
    html = client.get(reverse("console:packages")).content.decode()
    assert "North reseller" in html and "South reseller" in html  # the root sees several operators
    assert "in step" not in html  # no routers: nothing pushed, nothing known

    router = add_router(tree, "core-1", emulator.port)  # queues the profiles it must hold
    assert ProfileCommand.objects.filter(router=router, profile="10m", status=OutboxStatus.PENDING).exists()
    html = client.get(reverse("console:packages")).content.decode()
    assert "waiting" in html
    ProfileCommand.objects.filter(router=router, profile="10m").update(status=OutboxStatus.FAILED)
    html = client.get(reverse("console:packages")).content.decode()
    assert "failed" in html
    ProfileCommand.objects.filter(router=router, profile="10m").update(status=OutboxStatus.DONE)
    html = client.get(reverse("console:packages")).content.decode()
    assert "in step" in html and "failed" not in html

    north = tree.login(add_staff(tree.north, "owner"))
    north_html = north.get(reverse("console:packages")).content.decode()
    assert "South reseller" not in north_html and tree.south.package.name not in north_html
    listed = north.get(reverse("console:packages")).context["packages"]
    assert [(package.name, package.subscriber_count) for package in listed] == [(tree.north.package.name, 2)]


@pytest.mark.django_db
def test_another_resellers_package_is_a_404_on_edit_and_nothing_changes(tree: Tree):
    client = tree.login(add_staff(tree.north, "owner"))
    foreign = tree.south.package
    assert client.get(reverse("console:package_edit", args=[foreign.pk])).status_code == 404
    before = package_audits()
    posted = client.post(reverse("console:package_edit", args=[foreign.pk]), package_post(tree, name="Taken over"))
    assert posted.status_code == 404
    foreign.refresh_from_db()
    assert foreign.name != "Taken over" and foreign.download_kbps == 10240 and package_audits() == before
    assert client.get(reverse("console:package_edit", args=[tree.north.package.pk])).status_code == 200


@pytest.mark.django_db
def test_a_fair_usage_profile_another_package_uses_at_another_rate_is_refused_and_nothing_is_left(tree: Tree):
    client = tree.login(tree.root.staff["owner"])
    before = (Package.objects.count(), package_audits(), ProfileCommand.objects.count())
    # "10m" is the tree's packages' profile at 10240k/10240k; as a fair-usage profile it would be 1024k.
    response = client.post(
        reverse("console:package_create"),
        package_post(
            tree, data_allowance_gb="20", fup_download_mbps="1", fup_upload_mbps="1", fup_router_profile="10m"
        ),
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == ["fup_router_profile"] and "already used by the package" in errors["fup_router_profile"][0]
    # The package the create flow made is rolled back with the refused fair-usage step.
    assert (Package.objects.count(), package_audits(), ProfileCommand.objects.count()) == before


@pytest.mark.django_db
def test_the_catalog_service_refuses_fair_usage_faster_than_the_package(tree: Tree):
    from sonjog.catalog.exceptions import CatalogError
    from sonjog.catalog.services import package_update

    with pytest.raises(CatalogError, match=r"fair-usage download \(20480 kbps\) is above"):
        package_update(package=tree.root.package, data_allowance_gb=10, fup_download_kbps=20480, fup_router_profile="f")
    with pytest.raises(CatalogError, match="unknown billing unit"):
        package_update(package=tree.root.package, billing_unit="day")
    tree.root.package.refresh_from_db()
    assert (tree.root.package.data_allowance_gb, tree.root.package.billing_unit) == (None, "month")
