"""Bringing one subscriber to its desired state: the secret (enabled, cut off, or in the suspended
profile), a kick where a live session would otherwise keep the old state, the suspended address list,
the add-on address lists, and a read-back of what the router now says.

Every step reads before it writes, so applying the same ``DesiredSecret`` twice leaves the router
exactly as applying it once.
"""

from __future__ import annotations

from sonjog.network.drivers.mikrotik.address_lists import AddressListsMixin
from sonjog.network.drivers.mikrotik.secrets import SecretsMixin
from sonjog.network.drivers.mikrotik.sessions import SessionsMixin
from sonjog.network.drivers.mikrotik.types import ApplyResult, DesiredSecret, SecretState
from sonjog.network.drivers.mikrotik.values import list_tag, normalise_address, ros_bool


class ApplyMixin(SecretsMixin, SessionsMixin, AddressListsMixin):
    def apply_subscriber(self, desired: DesiredSecret) -> ApplyResult:
        """Bring one subscriber's router state to ``desired`` and report what the router now says."""
        name = desired.name
        actions: list[str] = []
        warnings: list[str] = []
        sessions = self._sessions_of(name)
        session_address = next((row["address"] for row in sessions if row.get("address")), None)
        # The address the subscriber has now; after a kick the old one may go to someone else on redial.
        live_address = session_address
        keep_listed: set[str] = set()

        def record(outcome: str) -> None:
            if outcome != "unchanged":
                actions.append(f"secret.{outcome}")

        def kick() -> None:
            if self.kick(name):
                actions.append("session.kicked")

        if desired.state == "absent":
            if self.remove_secret(name):
                actions.append("secret.removed")
            kick()
        elif desired.state == "enabled" or desired.suspend_mode == "address_list":
            outcome, before = self._ensure_secret(
                name, desired.password, desired.profile, desired.remote_address, desired.comment, False
            )
            record(outcome)
            # A live session keeps the profile it dialled in with (e.g. the payment-page one);
            # it only gets the new profile by reconnecting.
            reconnecting = before is not None and before.get("profile") != desired.profile and bool(sessions)
            if reconnecting:
                kick()
                live_address = None
            if desired.state == "disabled":
                target = desired.address or live_address or desired.remote_address
                if target:
                    keep_listed.add(normalise_address(target))
                    if self.address_list_add(desired.suspended_list, target, comment=list_tag(name)):
                        actions.append("address_list.added")
                else:
                    warnings.append(
                        f"{name} is offline and has no fixed address, so there is nothing to put on "
                        f"{desired.suspended_list!r} yet; apply again once the subscriber connects, or use "
                        "the 'profile' or 'disable' suspend mode."
                    )
        elif desired.suspend_mode == "disable":
            outcome, _ = self._ensure_secret(
                name, desired.password, desired.profile, desired.remote_address, desired.comment, True
            )
            record(outcome)
            # Disabling a secret does not end a session that is already up.
            kick()
            live_address = None
        else:
            outcome, before = self._ensure_secret(
                name, desired.password, desired.suspended_profile, desired.remote_address, desired.comment, False
            )
            record(outcome)
            if (before is None or before.get("profile") != desired.suspended_profile) and sessions:
                kick()
                live_address = None

        addresses = {
            normalise_address(value) for value in (session_address, desired.remote_address, desired.address) if value
        }
        removed = self._clear_suspension(desired.suspended_list, name, addresses, keep_listed)
        if removed:
            actions.append("address_list.removed")
        self._sync_addon_lists(desired, desired.address or live_address or desired.remote_address, actions, warnings)
        return self._read_back(desired, actions, warnings)

    def _sync_addon_lists(
        self, desired: DesiredSecret, target: str | None, actions: list[str], warnings: list[str]
    ) -> None:
        """Put the subscriber's address on each of its add-on lists and take every other entry Sonjog put
        on a list for it away (an add-on that ended, an address that changed). Entries are Sonjog's by
        their comment tag; an entry without it is never touched, and one that already holds the address
        on a wanted list (staff's own) counts as listed. The suspended list is suspension's business."""
        name = desired.name
        tag = list_tag(name)
        wanted = set(desired.address_lists) - {desired.suspended_list} if desired.state == "enabled" else set()
        address = normalise_address(target) if target else None
        # One read: the entries tagged for this subscriber, and every entry holding its address.
        queries = [f"?=comment={tag}"] + ([f"?=address={address}", "?#|"] if address else [])
        rows = [
            row
            for row in self._print("/ip/firewall/address-list", *queries, proplist=".id,list,address,comment")
            if row.get("list") != desired.suspended_list
        ]
        keep = {(list_name, address) for list_name in wanted} if address else set()
        stale = [
            row[".id"]
            for row in rows
            if row.get("comment") == tag
            and (row.get("list", ""), normalise_address(row.get("address", ""))) not in keep
        ]
        if self._remove_ids("/ip/firewall/address-list", stale):
            actions.append("addon_list.removed")
        if address is None:
            if wanted:
                warnings.append(
                    f"{name} is offline and has no fixed address, so there is nothing to put on "
                    f"{', '.join(repr(list_name) for list_name in sorted(wanted))} yet; it is added when the "
                    "subscriber is next reconciled while online."
                )
            return
        holding = {
            row.get("list", "")
            for row in rows
            if row[".id"] not in stale and normalise_address(row.get("address", "")) == address
        }
        added = False
        for list_name in sorted(wanted - holding):
            if self.address_list_add(list_name, address, comment=tag):
                added = True
        if added:
            actions.append("addon_list.added")

    def _clear_suspension(self, list_name: str, name: str, addresses: set[str], keep: set[str]) -> int:
        """Drop this subscriber's entries from the suspended list, except the ones at ``keep``. A dynamic
        entry without a timeout is a live session's, put there by its profile's address list (the
        suspended profile) or a RADIUS reply: it is the router's, and goes with the session (a kick)."""
        tag = list_tag(name)
        rows = self._print(
            "/ip/firewall/address-list", f"?=list={list_name}", proplist=".id,address,comment,dynamic,timeout"
        )
        ids = [
            row[".id"]
            for row in rows
            if (row.get("comment") == tag or row.get("address") in addresses)
            and row.get("address") not in keep
            and not (ros_bool(row.get("dynamic")) and not row.get("timeout"))
        ]
        return self._remove_ids("/ip/firewall/address-list", ids)

    def _read_back(self, desired: DesiredSecret, actions: list[str], warnings: list[str]) -> ApplyResult:
        secret = self.get_secret(desired.name)
        sessions = self._sessions_of(desired.name)
        entries = self._print(
            "/ip/firewall/address-list", f"?=list={desired.suspended_list}", proplist=".id,address,comment"
        )
        addresses = {
            normalise_address(value)
            for value in (
                *(row.get("address") for row in sessions),
                desired.remote_address,
                desired.address,
            )
            if value
        }
        tag = list_tag(desired.name)
        listed = any(row.get("comment") == tag or row.get("address") in addresses for row in entries)
        suspended_by_profile = (
            secret is not None
            and secret.get("profile") == desired.suspended_profile
            and desired.profile != desired.suspended_profile
        )
        state: SecretState
        if secret is None:
            state = "absent"
        elif ros_bool(secret.get("disabled")) or suspended_by_profile or listed:
            state = "disabled"
        else:
            state = "enabled"
        return ApplyResult(
            changed=bool(actions),
            actions=actions,
            router_state=state,
            online=bool(sessions),
            session=sessions[0] if sessions else None,
            warnings=warnings,
        )
