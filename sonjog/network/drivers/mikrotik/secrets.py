"""PPP secrets (``/ppp/secret``): reading them, making one look exactly as wanted (name, password,
profile, remote address, comment, disabled) by changing only what differs, and removing it."""

from __future__ import annotations

from sonjog.network.drivers.mikrotik.connection import RouterSession
from sonjog.network.drivers.mikrotik.errors import RouterCommandError
from sonjog.network.drivers.mikrotik.types import Row
from sonjog.network.drivers.mikrotik.values import normalise_address, ros_bool, yes_no


class SecretsMixin(RouterSession):
    def get_secret(self, name: str) -> Row | None:
        rows = self._print("/ppp/secret", f"?=name={name}")
        return rows[0] if rows else None

    def list_secrets(self) -> list[Row]:
        return self._print("/ppp/secret")

    def ensure_secret(
        self,
        name: str,
        password: str,
        profile: str,
        remote_address: str | None = None,
        comment: str = "",
        disabled: bool = False,
    ) -> str:
        """Make the secret look exactly like this; returns "created", "updated" or "unchanged"."""
        outcome, _ = self._ensure_secret(name, password, profile, remote_address, comment, disabled)
        return outcome

    def _ensure_secret(
        self,
        name: str,
        password: str,
        profile: str,
        remote_address: str | None,
        comment: str,
        disabled: bool,
    ) -> tuple[str, Row | None]:
        """Like ensure_secret, also returning the secret as it was before (None if it was created)."""
        current = self.get_secret(name)
        try:
            if current is None:
                attrs = {"name": name, "password": password, "profile": profile, "disabled": yes_no(disabled)}
                if comment:
                    attrs["comment"] = comment
                if remote_address:
                    attrs["remote-address"] = remote_address
                self._run("/ppp/secret/add", attrs)
                return "created", None

            changes: dict[str, str] = {}
            # Without the 'sensitive' policy the router hides passwords; then we cannot compare
            # and setting it again is the only way to be sure it is right.
            if current.get("password") != password:
                changes["password"] = password
            if current.get("profile", "") != profile:
                changes["profile"] = profile
            if current.get("comment", "") != comment:
                changes["comment"] = comment
            if ros_bool(current.get("disabled")) != disabled:
                changes["disabled"] = yes_no(disabled)
            have_remote = normalise_address(current.get("remote-address", ""))
            want_remote = normalise_address(remote_address or "")
            unset_remote = False
            if have_remote != want_remote:
                if want_remote:
                    changes["remote-address"] = want_remote
                else:
                    unset_remote = True
            if not changes and not unset_remote:
                return "unchanged", current
            if changes:
                self._run("/ppp/secret/set", {".id": current[".id"], **changes})
            if unset_remote:
                # An empty remote-address is rejected; "no static address" is the unset state.
                self._run("/ppp/secret/unset", {"numbers": current[".id"], "value-name": "remote-address"})
            return "updated", current
        except RouterCommandError as error:
            if "value of profile" in error.router_message:
                raise RouterCommandError(
                    f"Router {self.config.address} has no PPP profile {profile!r} for secret {name!r}. "
                    "Create it under /ppp profile (or sync the package profiles) and try again.",
                    router_message=error.router_message,
                    category=error.category,
                    command=error.command,
                    **self._where(),
                ) from error
            raise

    def set_secret_disabled(self, name: str, disabled: bool) -> bool:
        current = self.get_secret(name)
        if current is None:
            raise RouterCommandError(
                f"Router {self.config.address} has no PPP secret {name!r} to "
                f"{'disable' if disabled else 'enable'}; provision the subscriber first.",
                router_message="no such item",
                command="/ppp/secret/set",
                **self._where(),
            )
        if ros_bool(current.get("disabled")) == disabled:
            return False
        self._run("/ppp/secret/set", {".id": current[".id"], "disabled": yes_no(disabled)})
        return True

    def remove_secret(self, name: str) -> bool:
        ids = [row[".id"] for row in self._print("/ppp/secret", f"?=name={name}", proplist=".id")]
        return self._remove_ids("/ppp/secret", ids) > 0
