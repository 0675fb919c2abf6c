"""The routers page: add, edit (credentials never shown back, replaced only when given), deactivate, test the
connection and read the router (identity, resources, PPP profiles) against the RouterOS emulator over TCP;
packages saved on the packages page reach the router through the worker cycle; and the tenant walls: a
router of another subtree is a 404 on every path, and nothing is written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from sonjog.console.tests.conftest import Tree, add_staff
from sonjog.core.jobs import run_worker_cycle
from sonjog.core.models import AuditEvent
from sonjog.network.models import ProfileCommand, Router
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.services import router_create

ROUTER_USER, ROUTER_PASSWORD = "sonjog", "r0uter-secret"


@pytest.fixture
def emulator() -> Iterator[RouterOSEmulator]:
    emu = RouterOSEmulator(username=ROUTER_USER, password=ROUTER_PASSWORD, identity="core-mirpur").start()
    emu.add_profile("10m", rate_limit="10240k/10240k")
    try:
        yield emu
    finally:
        emu.stop()


def router_post(emulator: RouterOSEmulator, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "core-1",
        "driver": "mikrotik",
        "address": "127.0.0.1",
        "api_port": str(emulator.port),
        "username": ROUTER_USER,
        "password": ROUTER_PASSWORD,
        "radius_secret": "",
        "coa_port": "3799",
        "supports_coa": "on",
        "suspend_mode": "disable",
        "suspended_profile": "suspended",
        "suspended_address_list": "suspended",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.django_db
def test_an_owner_adds_a_router_tests_it_reads_it_and_a_wrong_password_says_login_failed(tree: Tree, emulator):
    client = tree.login(tree.root.staff["owner"])
    assert reverse("console:router_create").encode() in client.get(reverse("console:routers")).content
    created = client.post(
        reverse("console:router_create"),
        router_post(emulator, operator=tree.root.operator.pk, zones=[tree.root.zone.pk, tree.north.zone.pk]),
    )
    assert created.status_code == 302, created.content.decode()[:2000]
    router = Router.objects.get(name="core-1")
    assert (router.operator, router.api_port, router.username) == (tree.root.operator, emulator.port, ROUTER_USER)
    assert router.password == ROUTER_PASSWORD and ROUTER_PASSWORD not in router.password_encrypted
    assert set(router.zones.all()) == {tree.root.zone, tree.north.zone}  # a reseller's zone on its ISP's router
    audit = AuditEvent.objects.get(action="router.create")
    assert audit.detail["after"]["password"] == "set" and ROUTER_PASSWORD not in str(audit.detail)
    # The branches' packages all use the profile 10m at the emulator's rate: its push is queued.
    assert list(ProfileCommand.objects.filter(router=router).values_list("profile", flat=True)) == ["10m"]

    tested = client.post(reverse("console:router_test", args=[router.pk]))
    assert tested.status_code == 302 and "answered in" in said(tested)[-1]
    router.refresh_from_db()
    assert router.last_test_ok is True and "core-mirpur" in router.last_test_message

    read = client.get(reverse("console:router_read", args=[router.pk]))
    assert read.status_code == 200
    page = read.content.decode()
    assert "core-mirpur" in page and "CHR" in page and "RouterOS" in page
    details = read.context["details"]
    assert details["version"].startswith("7.") and details["uptime"] and details["cpu_load"] == "1"
    assert {row["name"]: row["rate_limit"] for row in read.context["profiles"]}["10m"] == "10240k/10240k"
    assert 'data-profile="default"' in page and 'data-profile="10m"' in page

    edit_page = client.get(reverse("console:router_edit", args=[router.pk])).content.decode()
    assert ROUTER_PASSWORD not in edit_page and router.password_encrypted not in edit_page
    wrong = client.post(
        reverse("console:router_edit", args=[router.pk]),
        router_post(emulator, password="not-the-password", zones=[tree.root.zone.pk]),
    )
    assert wrong.status_code == 302
    router.refresh_from_db()
    assert router.password == "not-the-password" and list(router.zones.all()) == [tree.root.zone]
    change = AuditEvent.objects.filter(action="router.update").latest("pk")
    assert change.detail["after"]["password"] == "replaced" and "not-the-password" not in str(change.detail)
    failed = client.post(reverse("console:router_test", args=[router.pk]))
    assert "rejected the login" in said(failed)[-1]
    router.refresh_from_db()
    assert router.last_test_ok is False and "rejected the login" in router.last_test_message
    unread = client.get(reverse("console:router_read", args=[router.pk]))
    assert unread.status_code == 200 and "rejected the login" in unread.content.decode()

    # Left empty, the stored password stays; given, it replaces the stored one.
    client.post(reverse("console:router_edit", args=[router.pk]), router_post(emulator, password="", name="core-2"))
    router.refresh_from_db()
    assert (router.name, router.password) == ("core-2", "not-the-password")
    client.post(reverse("console:router_edit", args=[router.pk]), router_post(emulator, name="core-2"))
    assert "answered in" in said(client.post(reverse("console:router_test", args=[router.pk])))[-1]

    off = client.post(reverse("console:router_active", args=[router.pk]), {"active": "0"})
    assert off.status_code == 302
    router.refresh_from_db()
    assert router.is_active is False
    assert b"inactive" in client.get(reverse("console:routers")).content
    client.post(reverse("console:router_active", args=[router.pk]), {"active": "1"})
    router.refresh_from_db()
    assert router.is_active is True


@pytest.mark.django_db
def test_bad_router_input_is_a_form_error_and_writes_nothing(tree: Tree, emulator):
    client = tree.login(tree.root.staff["owner"])
    cases = [
        ({"address": "not a host!"}, "address"),
        ({"api_port": "70000"}, "api_port"),
        ({"password": ""}, "password"),
        ({"username": ""}, "username"),
        ({"suspend_mode": "profile", "suspended_profile": ""}, "suspended_profile"),
        ({"driver": "cisco"}, "driver"),
    ]
    for changes, field in cases:
        response = client.post(
            reverse("console:router_create"), router_post(emulator, operator=tree.root.operator.pk, **changes)
        )
        assert response.status_code == 400 and field in response.context["form"].errors, (changes, field)
    router_create(operator=tree.root.operator, name="core-1", address="127.0.0.1")
    taken = client.post(reverse("console:router_create"), router_post(emulator, operator=tree.root.operator.pk))
    assert taken.status_code == 400 and "already exists" in str(taken.context["form"].errors["name"])
    assert Router.objects.count() == 1


@pytest.mark.django_db
def test_another_subtrees_router_is_404_on_every_path_and_nothing_is_written(tree: Tree):
    south_router = router_create(operator=tree.south.operator, name="south-core", address="127.0.0.1", api_port=9)
    north_owner = add_staff(tree.north, "owner")
    client = tree.login(north_owner)
    listed = client.get(reverse("console:routers"))
    assert listed.status_code == 200 and b"south-core" not in listed.content
    audits_before = AuditEvent.objects.count()
    for method, name, data in [
        ("get", "router_edit", None),
        ("post", "router_edit", {"name": "hijacked", "driver": "mikrotik", "address": "10.0.0.1"}),
        ("get", "router_read", None),
        ("post", "router_test", {}),
        ("post", "router_active", {"active": "0"}),
    ]:
        url = reverse(f"console:{name}", args=[south_router.pk])
        response = client.get(url) if method == "get" else client.post(url, data)
        assert response.status_code == 404, (method, name)
    south_router.refresh_from_db()
    assert (south_router.name, south_router.is_active, south_router.last_test_at) == ("south-core", True, None)
    assert AuditEvent.objects.count() == audits_before

    # A zone of another branch, smuggled into the form, is refused like any invalid choice.
    tampered = client.post(
        reverse("console:router_create"),
        {
            "name": "north-core",
            "driver": "mikrotik",
            "address": "127.0.0.1",
            "api_port": "8728",
            "username": "admin",
            "password": "x",
            "coa_port": "3799",
            "suspend_mode": "disable",
            "zones": [tree.south.zone.pk],
        },
    )
    assert tampered.status_code == 400 and "zones" in tampered.context["form"].errors
    assert not Router.objects.filter(name="north-core").exists()
    # The ISP's owner sees and manages every branch's routers.
    root = tree.login(tree.root.staff["owner"])
    assert root.get(reverse("console:router_edit", args=[south_router.pk])).status_code == 200


@pytest.mark.django_db
def test_a_clerk_cannot_add_or_change_routers(tree: Tree):
    router = router_create(operator=tree.root.operator, name="core", address="127.0.0.1", api_port=9)
    client = tree.login(tree.root.staff["billing_clerk"])
    assert client.get(reverse("console:router_create")).status_code == 403
    assert client.post(reverse("console:router_active", args=[router.pk]), {"active": "0"}).status_code == 403
    router.refresh_from_db()
    assert router.is_active


@pytest.mark.django_db(transaction=True)
def test_a_package_saved_on_the_packages_page_reaches_the_router(tree: Tree, emulator):
    client = tree.login(tree.root.staff["owner"])
    created = client.post(
        reverse("console:router_create"),
        router_post(emulator, operator=tree.root.operator.pk, zones=[tree.root.zone.pk]),
    )
    assert created.status_code == 302
    run_worker_cycle()
    package_form = {
        "operator": str(tree.root.operator.pk),
        "name": "Fiber 30",
        "price": "1500",
        "download_mbps": "30",
        "upload_mbps": "10",
        "router_profile": "30m",
        "vat_applicable": "on",
        "is_active": "on",
    }
    assert client.post(reverse("console:package_create"), package_form).status_code == 302
    run_worker_cycle()
    profiles = {row["name"]: row for row in emulator.profiles()}
    assert profiles["30m"]["rate-limit"] == "10240k/30720k"

    from sonjog.catalog.models import Package

    package = Package.objects.get(name="Fiber 30")
    edited = client.post(reverse("console:package_edit", args=[package.pk]), {**package_form, "download_mbps": "40"})
    assert edited.status_code == 302
    run_worker_cycle()
    assert {row["name"]: row for row in emulator.profiles()}["30m"]["rate-limit"] == "10240k/40960k"

    # A profile name already used at another speed is refused on the form, and nothing is saved.
    clash = client.post(reverse("console:package_create"), {**package_form, "name": "Fiber 31", "download_mbps": "1"})
    assert clash.status_code == 400 and "router_profile" in clash.context["form"].errors
    assert not Package.objects.filter(name="Fiber 31").exists()
