"""The suspension portal, network side: what a router must hold so that a suspended subscriber's web
traffic reaches the portal (docs/suspension-portal.md), and the command that puts it there.

A router with a portal address holds, all tagged ``sonjog:portal``: a dst-nat of TCP 80 from the
suspended address list to the portal, the walled-garden address list (the portal, the hosts and
addresses staff list: payment gateways' checkout hosts), and forward-chain filter rules that let the
suspended list reach DNS and the walled garden and drop the rest. With the suspended-profile mode, the
suspended profile's ``address-list`` is the suspended list, so sessions in that profile land on it (the
address-list mode puts them there one by one; RADIUS sends ``Mikrotik-Address-List``). A router without a
portal address holds none of Sonjog's portal rules.

The command is a `ProfileCommand` of kind "portal_redirect" ("bring Sonjog's portal rules on router R
to what its settings say"), so it shares the profile outbox's guarantees: one pending command per router
(a newer settings change refreshes it), the executor reads the settings when it runs, a session advisory
lock claims it, failures retry every `SONJOG_OUTBOX_RETRY_SECONDS` up to `SONJOG_OUTBOX_MAX_ATTEMPTS` and
then show as failed on the routers page. Applying reads, adds what is missing, fixes what differs,
removes Sonjog's rules that should not be there, never touches a rule without the tag, and reads the
result back. Sonjog reaches MikroTik routers only: a RADIUS NAS gets these rules by hand (the docs list
them), and its suspended subscribers' list name comes with their RADIUS reply.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from sonjog.network import profiles, router_io
from sonjog.network.drivers.mikrotik import PortalRules
from sonjog.network.models import DriverKind, Router, RouterCommandKind, SuspendMode

MAX_WALLED_GARDEN_ENTRIES: Final = 64
_HOST_LABEL: Final = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def walled_garden_entries(text: str, *, strict: bool = True) -> list[str]:
    """The walled garden staff wrote, one host name, IPv4 address or IPv4 network a line (blank lines
    and ``#`` comments skipped), in the form the router stores, duplicates dropped. Raises ValueError
    naming the first line that is none of those; ``strict`` off skips such lines instead (text stored
    before a stricter check keeps its valid lines rather than taking the redirect down)."""
    entries: list[str] = []
    for number, raw in enumerate(str(text).splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        entry = _garden_entry(line)
        if entry is None:
            if not strict:
                continue
            raise ValueError(
                f"walled garden line {number} ({line[:80]!r}) is not a host name, an IPv4 address or an IPv4 "
                "network; write one a line, e.g. pay.example.com or 203.0.113.10, without http:// or a path"
            )
        if entry not in entries:
            entries.append(entry)
    if len(entries) > MAX_WALLED_GARDEN_ENTRIES and strict:
        raise ValueError(f"the walled garden holds at most {MAX_WALLED_GARDEN_ENTRIES} entries")
    return entries


def _garden_entry(text: str) -> str | None:
    try:
        network = ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        pass
    else:
        return str(network.network_address) if network.num_addresses == 1 else str(network)
    name = text.lower().rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return None
    if labels[-1].isdigit():
        return None  # a mistyped address, not a host name
    return name


def portal_rules(router: Router) -> PortalRules:
    """What the router must hold for the portal, from its settings as they are now."""
    # Without a suspended list the rules would match every subscriber: never (the database refuses it too).
    enabled = bool(router.portal_address) and bool(router.suspended_address_list)
    garden = tuple(walled_garden_entries(router.walled_garden, strict=False))
    return PortalRules(
        suspended_list=router.suspended_address_list,
        portal_address=router.portal_address if enabled else None,
        portal_port=router.portal_port,
        walled_garden=garden,
        suspended_profile=router.suspended_profile if router.suspend_mode == SuspendMode.PROFILE else None,
        suspended_profile_rate_limit=profiles.SUSPENDED_RATE_LIMIT,
    )


def portal_driven(router: Router) -> bool:
    """Sonjog puts the portal rules on active MikroTik routers it is allowed to write to."""
    return router.is_active and not router.record_only and router.driver == DriverKind.MIKROTIK


def portal_redirect_sync(router: Router, *, requested_by: str = "portal settings") -> int | None:
    """Queue "bring Sonjog's portal rules on this router to its settings" in the caller's transaction and
    defer its job there; a pending one for the router is refreshed. Returns the command's id, or None
    for a router Sonjog does not write to (RADIUS, record only, inactive)."""
    if not portal_driven(router):
        return None
    return profiles.router_command_enqueue(
        router=router, kind=RouterCommandKind.PORTAL_REDIRECT, profile="", requested_by=requested_by
    )


def portal_apply(router: Router, sessions: router_io.Sessions | None) -> list[str]:
    """Run a portal command's work now (the executor's part): apply and read back; raises DriverError."""
    return router_io.ensure_portal(router, portal_rules(router), sessions)


def portal_check(router: Router) -> list[str]:
    """What the router holds that differs from Sonjog's portal rules, one line each (nothing changed);
    raises DriverError when the router cannot be read."""
    return router_io.portal_differences(router, portal_rules(router))
