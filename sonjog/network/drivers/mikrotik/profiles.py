"""PPP profiles (``/ppp/profile``): listing them for the package-to-profile check, and creating or
aligning one (rate limit, address list, pools...) by changing only what differs."""

from __future__ import annotations

from sonjog.network.drivers.mikrotik.connection import RouterSession
from sonjog.network.drivers.mikrotik.types import Row
from sonjog.network.drivers.mikrotik.values import squash_spaces


class ProfilesMixin(RouterSession):
    def list_profiles(self) -> dict[str, Row]:
        return {row.get("name", ""): row for row in self._print("/ppp/profile")}

    def ensure_profile(self, name: str, rate_limit: str | None, **props: str) -> str:
        """Create or align a PPP profile. Keyword names use ``_`` for ``-`` (``address_list=``);
        an empty value clears the property. Returns "created", "updated" or "unchanged"."""
        outcome, _before = self.align_profile(name, rate_limit, **props)
        return outcome

    def align_profile(self, name: str, rate_limit: str | None, **props: str) -> tuple[str, Row | None]:
        """Like ``ensure_profile``, also returning the profile as it was before (None if it was
        created), so the caller can tell whether its rate limit changed under live sessions."""
        wanted = {key.replace("_", "-"): str(value) for key, value in props.items()}
        if rate_limit is not None:
            wanted["rate-limit"] = rate_limit
        rows = self._print("/ppp/profile", f"?=name={name}")
        if not rows:
            self._run("/ppp/profile/add", {"name": name, **{k: v for k, v in wanted.items() if v}})
            return "created", None
        current = rows[0]
        changes = {
            key: value
            for key, value in wanted.items()
            if value and squash_spaces(current.get(key, "")) != squash_spaces(value)
        }
        clears = [key for key, value in wanted.items() if not value and current.get(key, "")]
        if not changes and not clears:
            return "unchanged", current
        if changes:
            self._run("/ppp/profile/set", {".id": current[".id"], **changes})
        if clears:
            self._run("/ppp/profile/unset", {"numbers": current[".id"], "value-name": ",".join(clears)})
        return "updated", current
