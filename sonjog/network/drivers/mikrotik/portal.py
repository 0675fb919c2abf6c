"""The suspension-portal redirect (``/ip firewall nat``, ``/ip firewall filter``, the walled-garden address
list, and the suspended PPP profile's address list): the rules Sonjog owns, what differs from them on the
router, and bringing the router to them.

Sonjog's rules and entries are the ones whose comment starts with ``sonjog:portal`` (address-list entries:
on the walled-garden list only, since subscribers' own entries carry ``sonjog:<user name>``); nothing else
is ever changed or removed. Applying reads every table once, removes Sonjog's rules that should not be
there (unknown, duplicated, or out of order among themselves), fixes the ones that differ, and adds the
missing ones just before the next of Sonjog's rules (``place-before``), so a rule that was removed by hand
comes back where it belongs, and Sonjog's rules that staff moved up the chain stay where staff put them.
Applying twice changes nothing the second time.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence
from typing import Final

from sonjog.network.drivers.mikrotik.connection import RouterSession
from sonjog.network.drivers.mikrotik.errors import RouterCommandError
from sonjog.network.drivers.mikrotik.types import Row
from sonjog.network.drivers.mikrotik.values import normalise_address, ros_bool, squash_spaces

PORTAL_TAG: Final = "sonjog:portal"
WALLED_GARDEN_LIST: Final = "sonjog-walled-garden"
GARDEN_COMMENT: Final = f"{PORTAL_TAG} walled-garden"
NAT_MENU: Final = "/ip/firewall/nat"
FILTER_MENU: Final = "/ip/firewall/filter"
ADDRESS_LIST_MENU: Final = "/ip/firewall/address-list"

# The properties of a rule Sonjog owns that it keeps exactly as it defines them: the ones it sets, and the
# matchers that would narrow or widen the rule if someone added them (they must stay empty).
MANAGED_PROPERTIES: Final = (
    "chain",
    "action",
    "protocol",
    "src-address",
    "dst-address",
    "src-address-list",
    "dst-address-list",
    "src-port",
    "dst-port",
    "in-interface",
    "out-interface",
    "connection-state",
    "to-addresses",
    "to-ports",
)


@dataclasses.dataclass(frozen=True)
class FirewallRule:
    """One rule Sonjog owns, known by its ``key`` (the comment is ``sonjog:portal <key>``)."""

    key: str
    properties: tuple[tuple[str, str], ...]

    @property
    def comment(self) -> str:
        return f"{PORTAL_TAG} {self.key}"

    def wanted(self) -> dict[str, str]:
        return dict(self.properties)


@dataclasses.dataclass(frozen=True)
class PortalRules:
    """What one router should hold for the suspension portal. ``portal_address`` None: none of Sonjog's
    portal rules (a router that had them loses them). ``suspended_profile``: the suspended-profile mode's
    profile, whose ``address-list`` must put the sessions in it on the suspended list (created with
    ``suspended_profile_rate_limit`` when the router has none)."""

    suspended_list: str
    portal_address: str | None
    portal_port: int = 80
    walled_garden: tuple[str, ...] = ()
    suspended_profile: str | None = None
    suspended_profile_rate_limit: str = "256k/256k"

    def __post_init__(self) -> None:
        if self.portal_address and not self.suspended_list.strip():
            # Rules matching an empty list name would redirect and drop every subscriber.
            raise ValueError("the portal rules need the name of the suspended address list")

    @property
    def enabled(self) -> bool:
        return bool(self.portal_address)

    def nat_rules(self) -> list[FirewallRule]:
        if not self.enabled:
            return []
        assert self.portal_address is not None
        return [
            FirewallRule(
                "redirect-http",
                (
                    ("chain", "dstnat"),
                    ("action", "dst-nat"),
                    ("protocol", "tcp"),
                    ("dst-port", "80"),
                    ("src-address-list", self.suspended_list),
                    # The walled garden is reached as it is, never redirected (a gateway's plain-HTTP page).
                    ("dst-address-list", f"!{WALLED_GARDEN_LIST}"),
                    ("to-addresses", self.portal_address),
                    ("to-ports", str(self.portal_port)),
                ),
            )
        ]

    def filter_rules(self) -> list[FirewallRule]:
        """In this order: what suspended subscribers may still send, then the drop of everything else."""
        if not self.enabled:
            return []
        source = ("src-address-list", self.suspended_list)
        forward = ("chain", "forward")
        return [
            FirewallRule("dns-udp", (forward, ("action", "accept"), ("protocol", "udp"), ("dst-port", "53"), source)),
            FirewallRule("dns-tcp", (forward, ("action", "accept"), ("protocol", "tcp"), ("dst-port", "53"), source)),
            FirewallRule(
                "walled-garden", (forward, ("action", "accept"), source, ("dst-address-list", WALLED_GARDEN_LIST))
            ),
            FirewallRule("drop", (forward, ("action", "drop"), source)),
        ]

    def garden(self) -> list[str]:
        """The walled-garden list's entries as the router stores them: the portal itself (the redirected
        traffic is forwarded to it, so the drop must let it through) and every host and address given."""
        if not self.enabled:
            return []
        assert self.portal_address is not None
        entries: list[str] = []
        for value in (self.portal_address, *self.walled_garden):
            entry = garden_entry(value)
            if entry and entry not in entries:
                entries.append(entry)
        return entries


def garden_entry(value: str) -> str:
    """An address, network or range as RouterOS stores it; a host name in lower case (DNS names are
    case-blind, and RouterOS keeps the name as given)."""
    text = value.strip()
    try:
        for part in text.split("-", 1):
            ipaddress.ip_network(part.strip(), strict=False)
    except ValueError:
        return text.lower().rstrip(".")
    return normalise_address(text)


@dataclasses.dataclass
class _RulePlan:
    """What bringing one rule table to Sonjog's rules takes."""

    remove: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (.id, why)
    fix: list[tuple[str, FirewallRule, dict[str, str], list[str]]] = dataclasses.field(default_factory=list)
    present: dict[int, str] = dataclasses.field(default_factory=dict)  # wanted index -> .id kept
    missing: list[int] = dataclasses.field(default_factory=list)

    def descriptions(self, table: str, wanted: Sequence[FirewallRule], owned: dict[str, Row]) -> list[str]:
        lines = [f"{table}.removed:{_key(owned[item_id])}({why})" for item_id, why in self.remove]
        for _item_id, rule, changes, clears in self.fix:
            lines.append(f"{table}.updated:{rule.key}({','.join(sorted([*changes, *clears]))})")
        lines.extend(f"{table}.added:{wanted[index].key}" for index in self.missing)
        return lines


def _key(row: Row) -> str:
    return row.get("comment", "")[len(PORTAL_TAG) :].strip() or "?"


def _owned_rules(rows: list[Row]) -> list[Row]:
    """Sonjog's rules in table order (dynamic rows belong to the router)."""
    return [row for row in rows if row.get("comment", "").startswith(PORTAL_TAG) and not ros_bool(row.get("dynamic"))]


def _rule_changes(row: Row, rule: FirewallRule) -> tuple[dict[str, str], list[str]]:
    """The properties to set and the ones to clear so that ``row`` is ``rule``."""
    wanted = rule.wanted()
    changes = {key: value for key, value in wanted.items() if squash_spaces(row.get(key, "")) != squash_spaces(value)}
    if ros_bool(row.get("disabled")):
        changes["disabled"] = "no"
    clears = [key for key in MANAGED_PROPERTIES if key not in wanted and row.get(key, "").strip()]
    return changes, clears


def _increasing_run(positions: list[int]) -> set[int]:
    """The indexes (into ``positions``) of a longest increasing subsequence: the rules already in the
    right order among themselves, which stay; the others are taken out and put back in place."""
    if not positions:
        return set()
    best = [1] * len(positions)
    previous = [-1] * len(positions)
    for i in range(len(positions)):
        for j in range(i):
            if positions[j] < positions[i] and best[j] + 1 > best[i]:
                best[i], previous[i] = best[j] + 1, j
    index = max(range(len(positions)), key=lambda k: (best[k], -k))
    chosen: set[int] = set()
    while index != -1:
        chosen.add(index)
        index = previous[index]
    return chosen


def plan_rules(rows: list[Row], wanted: Sequence[FirewallRule]) -> _RulePlan:
    plan = _RulePlan()
    by_key = {rule.comment: index for index, rule in enumerate(wanted)}
    kept: list[tuple[Row, int]] = []
    seen: set[int] = set()
    for row in _owned_rules(rows):
        index = by_key.get(row.get("comment", ""))
        if index is None:
            plan.remove.append((row[".id"], "unwanted"))
        elif index in seen:
            plan.remove.append((row[".id"], "duplicate"))
        else:
            seen.add(index)
            kept.append((row, index))
    in_order = _increasing_run([index for _row, index in kept])
    for position, (row, index) in enumerate(kept):
        if position not in in_order:
            plan.remove.append((row[".id"], "out of order"))
            continue
        plan.present[index] = row[".id"]
        changes, clears = _rule_changes(row, wanted[index])
        if changes or clears:
            plan.fix.append((row[".id"], wanted[index], changes, clears))
    plan.missing = [index for index in range(len(wanted)) if index not in plan.present]
    return plan


@dataclasses.dataclass
class PortalReading:
    """The router's tables as the portal rules see them, read once."""

    nat: list[Row]
    filter: list[Row]
    garden: list[Row]
    profile: Row | None


class PortalMixin(RouterSession):
    def portal_read(self, rules: PortalRules) -> PortalReading:
        profile = None
        if rules.suspended_profile:
            found = self._print("/ppp/profile", f"?=name={rules.suspended_profile}")
            profile = found[0] if found else None
        return PortalReading(
            nat=self._print(NAT_MENU),
            filter=self._print(FILTER_MENU),
            garden=self._print(ADDRESS_LIST_MENU, f"?=list={WALLED_GARDEN_LIST}"),
            profile=profile,
        )

    def portal_differences(self, rules: PortalRules) -> list[str]:
        """What applying ``rules`` would change, one line each; empty when the router is in step."""
        reading = self.portal_read(rules)
        lines: list[str] = []
        for table, rows, wanted in (
            ("nat", reading.nat, rules.nat_rules()),
            ("filter", reading.filter, rules.filter_rules()),
        ):
            owned = {row[".id"]: row for row in _owned_rules(rows)}
            lines.extend(plan_rules(rows, wanted).descriptions(table, wanted, owned))
        stale, missing = _plan_garden(reading.garden, rules)
        lines.extend(f"garden.removed:{row.get('address', '')}" for row in stale)
        lines.extend(f"garden.added:{entry}" for entry in missing)
        profile_line = _profile_difference(reading.profile, rules)
        if profile_line:
            lines.append(profile_line)
        return lines

    def portal_apply(self, rules: PortalRules) -> list[str]:
        """Bring the router to ``rules``; returns what was done (the same lines as the differences)."""
        reading = self.portal_read(rules)
        actions: list[str] = []
        # The walled garden first: the accept rule that names it must never let through less than it says.
        stale, missing = _plan_garden(reading.garden, rules)
        for entry in missing:
            try:
                attrs = {"list": WALLED_GARDEN_LIST, "address": entry, "comment": GARDEN_COMMENT}
                self._run(f"{ADDRESS_LIST_MENU}/add", attrs)
            except RouterCommandError as error:
                if "already have such entry" not in error.router_message:
                    raise
                continue  # someone put it there meanwhile: listed is listed
            actions.append(f"garden.added:{entry}")
        for table, menu, rows, wanted in (
            ("nat", NAT_MENU, reading.nat, rules.nat_rules()),
            ("filter", FILTER_MENU, reading.filter, rules.filter_rules()),
        ):
            actions.extend(self._apply_rules(table, menu, rows, wanted))
        if self._remove_ids(ADDRESS_LIST_MENU, [row[".id"] for row in stale]):
            actions.extend(f"garden.removed:{row.get('address', '')}" for row in stale)
        profile_line = _profile_difference(reading.profile, rules)
        if profile_line:
            assert rules.suspended_profile is not None
            if reading.profile is None:
                self._run(
                    "/ppp/profile/add",
                    {
                        "name": rules.suspended_profile,
                        "rate-limit": rules.suspended_profile_rate_limit,
                        "address-list": rules.suspended_list,
                    },
                )
            else:
                self._run("/ppp/profile/set", {".id": reading.profile[".id"], "address-list": rules.suspended_list})
            actions.append(profile_line)
        return actions

    def _apply_rules(self, table: str, menu: str, rows: list[Row], wanted: Sequence[FirewallRule]) -> list[str]:
        plan = plan_rules(rows, wanted)
        owned = {row[".id"]: row for row in _owned_rules(rows)}
        actions = plan.descriptions(table, wanted, owned)
        self._remove_ids(menu, [item_id for item_id, _why in plan.remove])
        for item_id, _rule, changes, clears in plan.fix:
            if changes:
                self._run(f"{menu}/set", {".id": item_id, **changes})
            if clears:
                self._run(f"{menu}/unset", {"numbers": item_id, "value-name": ",".join(clears)})
        present = dict(plan.present)
        # Last first, each just before the next of Sonjog's rules, so their order holds wherever they are.
        for index in sorted(plan.missing, reverse=True):
            rule = wanted[index]
            attrs = {**rule.wanted(), "comment": rule.comment}
            successor = next((present[later] for later in range(index + 1, len(wanted)) if later in present), None)
            if successor is not None:
                attrs["place-before"] = successor
            added = self._run(f"{menu}/add", attrs)
            present[index] = next((row["ret"] for row in added if row.get("ret")), "")
        return actions


def _plan_garden(rows: list[Row], rules: PortalRules) -> tuple[list[Row], list[str]]:
    """Sonjog's walled-garden entries that should go, and the entries that are missing (an entry staff
    put on the list by hand counts as present and is never touched)."""
    wanted = rules.garden()
    static = [row for row in rows if not ros_bool(row.get("dynamic"))]
    ours = [row for row in static if row.get("comment", "").startswith(PORTAL_TAG)]
    seen: set[str] = set()
    stale: list[Row] = []
    for row in ours:
        entry = garden_entry(row.get("address", ""))
        if entry not in wanted or entry in seen:
            stale.append(row)
        else:
            seen.add(entry)
    held = {garden_entry(row.get("address", "")) for row in static if row not in stale}
    return stale, [entry for entry in wanted if entry not in held]


def _profile_difference(profile: Row | None, rules: PortalRules) -> str | None:
    if not rules.enabled or not rules.suspended_profile:
        return None
    if profile is None:
        return f"profile.created:{rules.suspended_profile}"
    if profile.get("address-list", "").strip() != rules.suspended_list:
        return f"profile.address_list:{rules.suspended_profile}"
    return None
