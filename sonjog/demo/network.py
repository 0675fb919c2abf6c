"""The demo's two emulated MikroTik routers, holding the demo subscribers with live sessions."""

from __future__ import annotations

import random
from pathlib import Path

from django.conf import settings

from sonjog.catalog.models import Package
from sonjog.customers.models import ServiceIntent, Zone
from sonjog.network.models import Router
from sonjog.network.reconcile import served_subscribers
from sonjog.network.routeros.emulator import RouterOSEmulator
from sonjog.network.services import router_create
from sonjog.operators.models import Operator

DEMO_ROUTER_USER = "sonjog"
DEMO_ROUTER_PASSWORD = "demo-router"
DEMO_ROUTERS = [("core-north", 8728), ("core-south", 8738)]


def demo_routers_ensure(root: Operator) -> list[Router]:
    """Two MikroTik routers splitting the zones between them (created once)."""
    routers = list(Router.objects.filter(operator=root, name__in=[name for name, _port in DEMO_ROUTERS]))
    if routers:
        return sorted(routers, key=lambda r: r.name)
    zones = list(Zone.objects.filter(operator__path__startswith=root.path, parent__isnull=True).order_by("pk"))
    created = []
    for index, (name, port) in enumerate(DEMO_ROUTERS):
        router = router_create(
            operator=root,
            name=name,
            address="127.0.0.1",
            api_port=port,
            username=DEMO_ROUTER_USER,
            password=DEMO_ROUTER_PASSWORD,
        )
        router.zones.set(zone for position, zone in enumerate(zones) if position % 2 == index)
        created.append(router)
    return created


def demo_emulators_start(routers: list[Router]) -> list[RouterOSEmulator]:
    """Start one emulator per router (threads in this process). A new router is filled with the
    profiles and secrets Sonjog intends; then about 80% of active subscribers get a live session."""
    state_dir = Path(settings.VAR_DIR) / "routers"
    state_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(11)
    emulators = []
    for router in routers:
        emulator = RouterOSEmulator(
            port=router.api_port,
            username=DEMO_ROUTER_USER,
            password=DEMO_ROUTER_PASSWORD,
            state_file=str(state_dir / f"{router.name}.json"),
            identity=router.name,
        ).start()
        if not emulator.secrets():
            _fill(emulator, router)
        subscribers = served_subscribers(router).filter(service_intent=ServiceIntent.ACTIVE)
        for number, username in enumerate(subscribers.values_list("pppoe_username", flat=True)):
            if rng.random() < 0.8:
                emulator.add_active_session(
                    username,
                    f"10.{router.pk % 200}.{number // 250}.{number % 250 + 2}",
                    caller_id=f"4C:5E:0C:{number // 65536 % 256:02X}:{number // 256 % 256:02X}:{number % 256:02X}",
                    uptime=rng.randint(60, 900_000),
                )
        emulators.append(emulator)
    return emulators


def _fill(emulator: RouterOSEmulator, router: Router) -> None:
    profiles = set()
    for package in Package.objects.filter(operator__path__startswith=router.operator.path):
        if package.router_profile not in profiles:
            emulator.add_profile(package.router_profile, rate_limit=package.rate_limit)
            profiles.add(package.router_profile)
    emulator.add_profile(router.suspended_profile, rate_limit="256k/256k")
    emulator.add_profile("fup", rate_limit="1024k/1024k")
    for subscriber in served_subscribers(router).exclude(service_intent=ServiceIntent.TERMINATED):
        emulator.add_secret(
            subscriber.pppoe_username,
            password=subscriber.pppoe_password,
            profile=subscriber.package.router_profile,
            comment=f"{subscriber.customer_id} {subscriber.name}",
            disabled="no" if subscriber.service_intent == ServiceIntent.ACTIVE else "yes",
        )
