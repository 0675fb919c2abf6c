"""Intent versus reality: diff every router against what Sonjog intends, and repair the drift.

One router read (secrets + sessions + the suspended and add-on address lists) per router, compared with
the subscribers that router serves, whose desired state (add-on effects and fair-usage throttles
included) is read for all of them at once. Repairs go through the outbox like any other command, so
they are logged, retried and de-duplicated; what Sonjog cannot decide (a secret it does not know) is
reported, never deleted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from sonjog.catalog.models import AddOn, AddOnEffect
from sonjog.customers.models import Subscriber
from sonjog.network import router_io
from sonjog.network.alerts import router_reachability_record
from sonjog.network.desired import desired_secrets
from sonjog.network.drivers.mikrotik import DesiredSecret, Observation
from sonjog.network.drivers.mikrotik.values import normalise_address
from sonjog.network.enforcement import outbox_enqueue_many
from sonjog.network.models import DriverKind, Router, SuspendMode
from sonjog.network.profiles import packages_held, profile_enqueue, router_profiles_wanted
from sonjog.network.services import _observed, outbox_router_answered


@dataclasses.dataclass
class Disagreement:
    customer_id: str | None
    username: str
    kind: str
    intent: str | None
    router_view: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class RouterReport:
    router: str
    reachable: bool
    error: str = ""
    checked: int = 0
    online: int = 0
    disagreements: list[Disagreement] = dataclasses.field(default_factory=list)
    repairs_queued: int = 0
    # What the router reported, kept so reconciliation records exactly what was compared.
    observed: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "router": self.router,
            "reachable": self.reachable,
            "error": self.error,
            "checked": self.checked,
            "online": self.online,
            "disagreements": len(self.disagreements),
            "repairs_queued": self.repairs_queued,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary(), "items": [d.as_dict() for d in self.disagreements]}


_UNITS = {"": 0.001, "k": 1, "K": 1, "M": 1000, "G": 1_000_000}


def rate_kbps(rate_limit: str) -> tuple[int, int] | None:
    """'10M/20M 12M/24M ...' -> (10000, 20000): the first rx/tx pair of a MikroTik rate-limit, in kbps."""
    first = (rate_limit or "").split(" ")[0]
    parts = first.split("/")
    values: list[int] = []
    for part in parts[:2]:
        number, unit = part.rstrip("kKMG"), part[len(part.rstrip("kKMG")) :]
        try:
            values.append(round(float(number) * _UNITS[unit]))
        except (ValueError, KeyError):
            return None
    if len(values) == 1:
        values.append(values[0])
    return (values[0], values[1]) if len(values) == 2 else None


PROFILE_MISSING = "package profile missing on router"
PROFILE_RATE_DIFFERS = "profile rate differs from package"


def profile_mismatches(router: Router, router_profiles: dict[str, dict[str, str]]) -> list[Disagreement]:
    """Packages must map exactly onto router profiles: every profile the router must hold
    (`profiles.router_profiles_wanted`: the packages' own and fair-usage profiles, the suspended one)
    exists, at the packages' speed."""
    problems: list[Disagreement] = []
    for name, wanted in sorted(router_profiles_wanted(router).items()):
        profile = router_profiles.get(name)
        if profile is None:
            problems.append(Disagreement(None, name, PROFILE_MISSING, None, "absent", _profile_users(router, name)))
            continue
        if wanted.rate_limit is None:
            continue  # only its existence is Sonjog's business
        have = profile.get("rate-limit", "")
        if rate_kbps(have) != rate_kbps(wanted.rate_limit):
            problems.append(
                Disagreement(
                    None,
                    name,
                    PROFILE_RATE_DIFFERS,
                    None,
                    have or "unlimited",
                    f"{_profile_users(router, name)} wants {wanted.rate_limit}",
                )
            )
    return problems


def _profile_users(router: Router, name: str) -> str:
    names = [
        package.name
        for package in packages_held(router)
        .filter(Q(router_profile=name) | Q(fup_router_profile=name, data_allowance_gb__isnull=False))
        .order_by("pk")
    ]
    return f"package {', '.join(names)}" if names else "suspension"


def served_subscribers(router: Router) -> Any:
    zone_ids = list(router.zones.values_list("pk", flat=True))
    return (
        Subscriber.objects.filter(
            Q(router=router)
            | Q(router__isnull=True, zone_id__in=zone_ids)
            | Q(router__isnull=True, zone__parent_id__in=zone_ids)
        )
        .filter(operator__path__startswith=router.operator.path)
        .select_related("package")
    )


def _compare(desired: DesiredSecret, seen: Observation | None) -> str | None:
    """Why the router disagrees with intent, or None when it agrees."""
    if desired.state == "absent":
        if seen is not None and seen.exists:
            return "terminated but still on router"
        return _addon_list_problem(desired, seen)
    if seen is None or not seen.exists:
        return "missing on router"
    if desired.state == "enabled":
        if seen.disabled:
            return "billed active but disabled on router"
        if seen.profile != desired.profile:
            return f"profile {seen.profile} on router, package wants {desired.profile}"
        if seen.suspended_listed:
            return "active but still on the suspended address list"
        return _remote_address_problem(desired, seen) or _addon_list_problem(desired, seen)
    if desired.suspend_mode == SuspendMode.DISABLE:
        if not seen.disabled:
            return "suspended but enabled on router"
        if seen.online:
            return "suspended but still online"
    elif desired.suspend_mode == SuspendMode.PROFILE and seen.profile != desired.suspended_profile:
        return "suspended but not in the suspended profile"
    return _remote_address_problem(desired, seen) or _addon_list_problem(desired, seen)


def _remote_address_problem(desired: DesiredSecret, seen: Observation) -> str | None:
    have = normalise_address(seen.remote_address or "")
    want = normalise_address(desired.remote_address or "")
    if have == want:
        return None
    if not want:
        return f"static IP {have} on router, none in force"
    return f"static IP {have or 'none'} on router, Sonjog wants {want}"


def _addon_list_problem(desired: DesiredSecret, seen: Observation | None) -> str | None:
    """An add-on list the subscriber's address is missing from, or an entry Sonjog put on a list for it
    that it no longer should have (the add-on ended, the address changed). The address is the one the
    driver would list: the live session's, else the fixed one; with neither there is nothing to list."""
    if seen is None:
        return None
    address = seen.address or desired.remote_address
    wanted = set(desired.address_lists)
    if address:
        missing = sorted(wanted - seen.address_lists)
        if missing:
            return f"not on add-on address list {missing[0]}"
    keep = {(name, normalise_address(address)) for name in wanted} if address else set()
    stale = sorted(name for name, listed in seen.owned_entries if (name, normalise_address(listed)) not in keep)
    if stale:
        return f"still on address list {stale[0]} without the add-on"
    return None


def managed_address_lists(router: Router) -> list[str]:
    """The address lists Sonjog's add-ons name for the router's operator tree (on sale or not: entries
    of an add-on taken off sale still have to be found and taken away when it ends)."""
    return sorted(
        set(
            AddOn.objects.filter(operator__path__startswith=router.operator.path, effect=AddOnEffect.ADDRESS_LIST)
            .exclude(effect_value=router.suspended_address_list)
            .values_list("effect_value", flat=True)
        )
    )


def router_diff(router: Router) -> RouterReport:
    report = RouterReport(router=router.name, reachable=True)
    if router.driver != DriverKind.MIKROTIK:
        report.checked = served_subscribers(router).count()
        return report  # RADIUS rows are views of intent: they cannot disagree with it.
    try:
        observed, router_profiles = router_io.observe_with_profiles(router, managed_address_lists(router))
    except router_io.DriverError as error:
        report.reachable, report.error = False, str(error)
        return report
    report.online = sum(1 for seen in observed.values() if seen.online)
    report.disagreements.extend(profile_mismatches(router, router_profiles))
    report.observed = observed
    known: set[str] = set()
    subscribers = list(served_subscribers(router))
    desired = desired_secrets(subscribers, router)
    for subscriber in subscribers:
        known.add(subscriber.pppoe_username)
        report.checked += 1
        problem = _compare(desired[subscriber.pk], observed.get(subscriber.pppoe_username))
        if problem:
            seen = observed.get(subscriber.pppoe_username)
            view = "absent" if seen is None or not seen.exists else ("disabled" if seen.disabled else "enabled")
            report.disagreements.append(
                Disagreement(
                    subscriber.customer_id,
                    subscriber.pppoe_username,
                    problem,
                    subscriber.service_intent,
                    view + (" online" if seen is not None and seen.online else ""),
                )
            )
    for name, seen in observed.items():
        if name not in known and seen.exists:
            report.disagreements.append(
                Disagreement(
                    None,
                    name,
                    "on router but unknown to Sonjog",
                    None,
                    "disabled" if seen.disabled else "enabled",
                    seen.comment,
                )
            )
    return report


def network_diff(router: Router | None = None) -> dict[str, RouterReport]:
    routers = [router] if router else list(Router.objects.filter(is_active=True).order_by("name"))
    return {r.name: router_diff(r) for r in routers}


def network_reconcile(router: Router | None = None) -> dict[str, RouterReport]:
    """Read each router, record what it reports on each subscriber (router and session state), and
        queue a repair for every subscriber whose router state disagrees with intent. A router that does not
    answer gets its "router unreachable" alert (one, however many passes find it silent); the pass that
    reaches it again resolves it."""
    reports: dict[str, RouterReport] = {}
    routers = [router] if router else list(Router.objects.filter(is_active=True).order_by("name"))
    for each in routers:
        report = router_diff(each)
        reports[each.name] = report
        if each.driver == DriverKind.MIKROTIK:  # the others were not asked anything
            router_reachability_record(router=each, answered=report.reachable, error=report.error)
        if not report.reachable or each.driver != DriverKind.MIKROTIK:
            continue
        observed = report.observed
        now = timezone.now()
        to_repair: list[int] = []
        profile_repairs = 0
        with transaction.atomic():
            by_name = {s.pppoe_username: s for s in served_subscribers(each)}
            for name, subscriber in by_name.items():
                seen = observed.get(name)
                state = "absent" if seen is None or not seen.exists else ("disabled" if seen.disabled else "enabled")
                session = (
                    {"address": seen.address, "caller-id": seen.caller_id, "uptime": seen.uptime} if seen else None
                )
                _observed(subscriber.pk, state, bool(seen and seen.online), session, now)
            for item in report.disagreements:
                if item.customer_id is not None and item.username in by_name and not each.record_only:
                    to_repair.append(by_name[item.username].pk)
            outbox_enqueue_many(to_repair, "reconciler: drift repair")
            if not each.record_only:
                for item in report.disagreements:
                    if item.kind in (PROFILE_MISSING, PROFILE_RATE_DIFFERS):
                        profile_enqueue(router=each, profile=item.username, requested_by="reconciler: drift repair")
                        profile_repairs += 1
            # It answered: commands waiting out a retry on it go now, not at their next attempt.
            outbox_router_answered(router=each)
        report.repairs_queued = len(to_repair) + profile_repairs
    if any(r.repairs_queued for r in reports.values()):
        from sonjog.network.tasks import drain_outbox_soon

        drain_outbox_soon()
    return reports
