"""Live PPP sessions (``/ppp/active``): listing them, disconnecting a subscriber, and the bulk read a
reconciler compares with intent (every secret, every session, and the suspended and add-on address
lists, in three calls)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sonjog.network.drivers.mikrotik.connection import RouterSession
from sonjog.network.drivers.mikrotik.types import Observation, Row
from sonjog.network.drivers.mikrotik.values import list_tag, normalise_address, ros_bool


class SessionsMixin(RouterSession):
    def list_active(self) -> list[Row]:
        return self._print("/ppp/active")

    def active_by_name(self) -> dict[str, Row]:
        sessions: dict[str, Row] = {}
        for row in self.list_active():
            sessions.setdefault(row.get("name", ""), row)
        return sessions

    def _sessions_of(self, name: str) -> list[Row]:
        return self._print("/ppp/active", f"?=name={name}")

    def kick(self, name: str) -> int:
        """Disconnect every session of this user; returns how many were dropped."""
        ids = [row[".id"] for row in self._print("/ppp/active", f"?=name={name}", proplist=".id")]
        return self._remove_ids("/ppp/active", ids)

    def kick_profile_sessions(self, profile: str) -> list[str]:
        """Disconnect the live sessions of every secret in ``profile``; returns the names kicked.

        RouterOS gives a session its profile's rate limit when it comes up (as a dynamic queue that
        cannot be edited), so a changed rate reaches a live session only when it dials in again."""
        names = {row.get("name", "") for row in self._print("/ppp/secret", f"?=profile={profile}", proplist="name")}
        if not names:
            return []
        rows = [row for row in self._print("/ppp/active", proplist=".id,name") if row.get("name") in names]
        self._remove_ids("/ppp/active", [row[".id"] for row in rows])
        return sorted({row.get("name", "") for row in rows})

    # -- bulk read for reconciliation --------------------------------------------------------

    def observe(
        self,
        names: Iterable[str] | None = None,
        suspended_list: str = "suspended",
        address_lists: Iterable[str] = (),
    ) -> dict[str, Observation]:
        """Everything a reconciler needs about every subscriber, in three API calls.

        Without ``names`` the result covers every secret plus every session without a secret
        (e.g. RADIUS users); with ``names`` exactly those names, present or not. ``address_lists``
        names the add-on lists to read along with the suspended list (in the same call).
        """
        secrets = {
            row.get("name", ""): row
            for row in self._print("/ppp/secret", proplist=".id,name,password,profile,disabled,comment,remote-address")
        }
        sessions: dict[str, Row] = {}
        for row in self._print("/ppp/active", proplist=".id,name,address,caller-id,uptime,service"):
            sessions.setdefault(row.get("name", ""), row)
        lists = [suspended_list, *sorted(set(address_lists) - {suspended_list})]
        entries = self._print("/ip/firewall/address-list", *_any_list(lists), proplist="list,address,comment")
        suspended = [row for row in entries if row.get("list") == suspended_list]
        listed_addresses = {row.get("address", "") for row in suspended}
        listed_tags = {row.get("comment", "") for row in suspended}
        lists_by_address: dict[str, set[str]] = {}
        owned_by_tag: dict[str, list[tuple[str, str]]] = {}
        for row in entries:
            if row.get("list") == suspended_list:
                continue
            list_name, address = row.get("list", ""), row.get("address", "")
            lists_by_address.setdefault(address, set()).add(list_name)
            owned_by_tag.setdefault(row.get("comment", ""), []).append((list_name, address))

        wanted = list(names) if names is not None else sorted(set(secrets) | set(sessions))
        result: dict[str, Observation] = {}
        for name in wanted:
            secret = secrets.get(name)
            session = sessions.get(name)
            addresses = {
                normalise_address(value)
                for value in (
                    session.get("address") if session else None,
                    secret.get("remote-address") if secret else None,
                )
                if value
            }
            result[name] = Observation(
                name=name,
                exists=secret is not None,
                disabled=ros_bool(secret.get("disabled")) if secret else False,
                profile=secret.get("profile") if secret else None,
                comment=secret.get("comment", "") if secret else "",
                remote_address=(secret.get("remote-address") or None) if secret else None,
                online=session is not None,
                address=(session.get("address") or None) if session else None,
                caller_id=(session.get("caller-id") or None) if session else None,
                uptime=(session.get("uptime") or None) if session else None,
                session_id=session.get(".id") if session else None,
                suspended_listed=list_tag(name) in listed_tags or bool(addresses & listed_addresses),
                password=secret.get("password") if secret else None,
                address_lists=frozenset().union(*(lists_by_address.get(address, ()) for address in addresses)),
                owned_entries=tuple(sorted(owned_by_tag.get(list_tag(name), ()))),
            )
        return result


def _any_list(lists: Sequence[str]) -> list[str]:
    """Query words matching entries on any of ``lists``: one push per list, then ORed together."""
    words = [f"?=list={name}" for name in lists]
    if len(lists) > 1:
        words.append("?#" + "|" * (len(lists) - 1))
    return words
