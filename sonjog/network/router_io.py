"""One door to every router, whatever its driver: apply a subscriber, observe, test, back up.

MikroTik routers are driven over the RouterOS API. RADIUS routers read their users from Sonjog's own
database (views), so "applying" there means kicking the live session with a Disconnect-Request (or a
CoA for a rate change) so the NAS re-authorises against the new rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from sonjog.customers.models import Subscriber
from sonjog.network.drivers import mikrotik
from sonjog.network.models import DriverKind, Router


class DriverError(Exception):
    """A router could not be brought to the desired state this time; the outbox retries."""


@dataclasses.dataclass
class Outcome:
    actions: list[str]
    router_state: str
    online: bool
    session: dict[str, Any] | None


def mikrotik_config(router: Router, timeout: float = 5.0) -> mikrotik.RouterConfig:
    return mikrotik.RouterConfig(
        host=router.address,
        port=router.api_port,
        username=router.username,
        password=router.password,
        use_tls=router.use_tls,
        timeout=timeout,
    )


class Sessions:
    """Open router connections kept for a batch of commands (a drain): logging in once per router
    instead of once per subscriber is most of the cost of a command. Not thread-safe; one per worker."""

    def __init__(self) -> None:
        self._drivers: dict[int, mikrotik.MikrotikDriver] = {}

    def driver(self, router: Router) -> mikrotik.MikrotikDriver:
        driver = self._drivers.get(router.pk)
        if driver is None:
            driver = mikrotik.MikrotikDriver(mikrotik_config(router)).connect()
            self._drivers[router.pk] = driver
        return driver

    def discard(self, router: Router) -> None:
        driver = self._drivers.pop(router.pk, None)
        if driver is not None:
            driver.close()

    def close(self) -> None:
        for driver in self._drivers.values():
            driver.close()
        self._drivers.clear()

    def __enter__(self) -> Sessions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def apply(
    router: Router, subscriber: Subscriber, desired: mikrotik.DesiredSecret, sessions: Sessions | None = None
) -> Outcome:
    if router.driver == DriverKind.MIKROTIK:
        try:
            if sessions is not None:
                result = sessions.driver(router).apply_subscriber(desired)
            else:
                with mikrotik.MikrotikDriver(mikrotik_config(router)) as driver:
                    result = driver.apply_subscriber(desired)
        except mikrotik.RouterError as error:
            if sessions is not None:
                sessions.discard(router)  # a failed connection is never reused
            raise DriverError(str(error)) from error
        return Outcome(result.actions, result.router_state, result.online, result.session)
    if router.driver == DriverKind.RADIUS:
        return _apply_radius(router, subscriber, desired)
    return Outcome([], "unknown", False, None)


def _apply_radius(router: Router, subscriber: Subscriber, desired: mikrotik.DesiredSecret) -> Outcome:
    from sonjog.network.radius import coa
    from sonjog.network.radius_sessions import open_session

    session = open_session(subscriber.pppoe_username)
    if session is None:
        # Nothing online to kick: the next login reads the already-correct RADIUS rows.
        return Outcome(["radius.rows"], desired.state, False, None)
    result = coa.send_disconnect(
        router.address,
        router.coa_port,
        router.radius_secret,
        username=subscriber.pppoe_username,
        session_id=session.get("acctsessionid"),
        framed_ip=session.get("framedipaddress"),
    )
    if result.outcome == "ack":
        return Outcome(["radius.rows", "session.disconnected"], desired.state, False, None)
    if result.outcome == "nak" and result.error_cause == 503:
        # Session-Context-Not-Found: the NAS has no such session any more; that is the goal.
        return Outcome(["radius.rows", "session.already_gone"], desired.state, False, None)
    # Keep the sender's explanation: "error" alone does not tell staff whether nothing listens on the
    # CoA port or the shared secret is wrong, and "timeout" does not say how long was waited.
    if result.error_cause:
        detail = f" (Error-Cause {result.error_cause} {result.error_cause_text})"
    else:
        detail = f": {result.reason}" if result.reason else ""
    raise DriverError(f"Disconnect-Request to {router.address}:{router.coa_port} {result.outcome}{detail}")


def observe(router: Router) -> dict[str, mikrotik.Observation]:
    if router.driver != DriverKind.MIKROTIK:
        return {}
    try:
        with mikrotik.MikrotikDriver(mikrotik_config(router, timeout=15.0)) as driver:
            return driver.observe()
    except mikrotik.RouterError as error:
        raise DriverError(str(error)) from error


def observe_with_profiles(
    router: Router, address_lists: Iterable[str] = ()
) -> tuple[dict[str, mikrotik.Observation], dict[str, dict[str, str]]]:
    """Everything a diff needs, in one connection: secrets, sessions, the suspended list and the add-on
    lists named in `address_lists`, profiles."""
    if router.driver != DriverKind.MIKROTIK:
        return {}, {}
    try:
        with mikrotik.MikrotikDriver(mikrotik_config(router, timeout=15.0)) as driver:
            observed = driver.observe(suspended_list=router.suspended_address_list, address_lists=address_lists)
            return observed, driver.list_profiles()
    except mikrotik.RouterError as error:
        raise DriverError(str(error)) from error


def ppp_secrets(router: Router) -> list[dict[str, Any]]:
    """The router's PPP secrets as it holds them (what an import of an existing ISP starts from)."""
    if router.driver != DriverKind.MIKROTIK:
        return []
    try:
        with mikrotik.MikrotikDriver(mikrotik_config(router, timeout=30.0)) as driver:
            return [dict(row) for row in driver.list_secrets()]
    except mikrotik.RouterError as error:
        raise DriverError(str(error)) from error


def profiles(router: Router) -> dict[str, dict[str, str]]:
    if router.driver != DriverKind.MIKROTIK:
        return {}
    try:
        with mikrotik.MikrotikDriver(mikrotik_config(router, timeout=15.0)) as driver:
            return driver.list_profiles()
    except mikrotik.RouterError as error:
        raise DriverError(str(error)) from error


@dataclasses.dataclass(frozen=True)
class ProfileWanted:
    """A PPP profile as the packages want it on one router. ``rate_limit`` None: only make sure it
    exists (created with ``create_rate_limit``), never touch what staff set on it."""

    name: str
    rate_limit: str | None
    create_rate_limit: str = ""
    address_list: str = ""


def ensure_profile(router: Router, wanted: ProfileWanted, sessions: Sessions | None = None) -> list[str]:
    """Create or align one PPP profile on a MikroTik router. When the rate limit of an existing profile
    changed, the live sessions in it are kicked: RouterOS sets a session's rate (a dynamic queue that
    cannot be edited) only when it comes up, and PPPoE clients dial straight back in at the new rate.
    Returns the actions taken ("profile.created", "profile.updated", "session.kicked:<name>")."""

    def run(driver: mikrotik.MikrotikDriver) -> list[str]:
        if wanted.rate_limit is None:
            if wanted.name in driver.list_profiles():
                return []
            props = {"address_list": wanted.address_list} if wanted.address_list else {}
            driver.ensure_profile(wanted.name, wanted.create_rate_limit or None, **props)
            return ["profile.created"]
        outcome, before = driver.align_profile(wanted.name, wanted.rate_limit)
        actions = [] if outcome == "unchanged" else [f"profile.{outcome}"]
        if before is not None and " ".join(before.get("rate-limit", "").split()) != wanted.rate_limit:
            actions.extend(f"session.kicked:{name}" for name in driver.kick_profile_sessions(wanted.name))
        return actions

    try:
        if sessions is not None:
            return run(sessions.driver(router))
        with mikrotik.MikrotikDriver(mikrotik_config(router)) as driver:
            return run(driver)
    except mikrotik.RouterError as error:
        if sessions is not None:
            sessions.discard(router)
        raise DriverError(str(error)) from error


def ensure_portal(router: Router, rules: mikrotik.PortalRules, sessions: Sessions | None = None) -> list[str]:
    """Bring Sonjog's suspension-portal rules on a MikroTik router to ``rules`` and read them back: what
    the router holds afterwards must be exactly that, or the attempt fails (and is retried). Returns the
    changes made ("nat.added:redirect-http", "filter.updated:drop(dst-port)", "garden.added:<host>")."""

    def run(driver: mikrotik.MikrotikDriver) -> list[str]:
        actions = driver.portal_apply(rules)
        left = driver.portal_differences(rules)
        if left:
            raise DriverError(
                f"Router {router.address} still differs from Sonjog's portal rules after they were applied "
                f"({', '.join(left)}); is a script or another system changing them?"
            )
        return actions

    try:
        if sessions is not None:
            return run(sessions.driver(router))
        with mikrotik.MikrotikDriver(mikrotik_config(router)) as driver:
            return run(driver)
    except mikrotik.RouterError as error:
        if sessions is not None:
            sessions.discard(router)
        raise DriverError(str(error)) from error


def portal_differences(router: Router, rules: mikrotik.PortalRules) -> list[str]:
    """What bringing the router to ``rules`` would change (nothing is changed)."""
    try:
        with mikrotik.MikrotikDriver(mikrotik_config(router, timeout=15.0)) as driver:
            return driver.portal_differences(rules)
    except mikrotik.RouterError as error:
        raise DriverError(str(error)) from error


def change_session_rate(router: Router, username: str, rate_limit: str) -> list[str]:
    """Give one RADIUS subscriber's live session a new rate: a CoA-Request with Mikrotik-Rate-Limit
    where the NAS takes it, else (or when it refuses) a Disconnect-Request, so the session re-authorises
    against the RADIUS rows, which already hold the new rate. Every answer is returned as an action
    ("coa.ack:<user>", "coa.nak:<user>:<Error-Cause>", "disconnect.ack:<user>"...); raises
    DriverError when the NAS could not be brought to apply it (no answer, a refused Disconnect)."""
    from sonjog.network.radius import coa
    from sonjog.network.radius_sessions import open_session

    session = open_session(username)
    if session is None:
        return []  # nothing online: the next login reads the already-correct RADIUS rows
    identity = {
        "username": username,
        "session_id": session.get("acctsessionid"),
        "framed_ip": session.get("framedipaddress"),
    }
    actions: list[str] = []
    if router.supports_coa:
        result = coa.send_coa(
            router.address,
            router.coa_port,
            router.radius_secret,
            attributes={"Mikrotik-Rate-Limit": rate_limit},
            **identity,  # type: ignore[arg-type]
        )
        if result.outcome == "ack":
            return [f"coa.ack:{username}"]
        if result.outcome != "nak":
            raise DriverError(f"CoA-Request to {router.address}:{router.coa_port} {result.outcome}: {result.reason}")
        if result.error_cause == 503:
            return [f"coa.nak:{username}:503"]  # the session is gone: its next login gets the new rate
        actions.append(f"coa.nak:{username}:{result.error_cause or ''}")
    result = coa.send_disconnect(router.address, router.coa_port, router.radius_secret, **identity)  # type: ignore[arg-type]
    if result.outcome == "ack":
        return [*actions, f"disconnect.ack:{username}"]
    if result.outcome == "nak" and result.error_cause == 503:
        return [*actions, f"disconnect.nak:{username}:503"]
    raise DriverError(
        f"{', '.join(actions) + '; ' if actions else ''}Disconnect-Request to {router.address}:{router.coa_port} "
        f"{result.outcome}: {result.reason}"
    )


@dataclasses.dataclass(frozen=True)
class RouterReading:
    """What "Read from router" shows: identity and resources, and the PPP profiles."""

    details: dict[str, str]
    profiles: dict[str, dict[str, str]]


def read(router: Router) -> RouterReading:
    if router.driver != DriverKind.MIKROTIK:
        raise DriverError(f"{router.name} uses the {router.driver} driver; only MikroTik routers can be read")
    try:
        with mikrotik.MikrotikDriver(mikrotik_config(router, timeout=15.0)) as driver:
            return RouterReading(details=driver.test_connection(), profiles=driver.list_profiles())
    except mikrotik.RouterError as error:
        raise DriverError(str(error)) from error


def test(router: Router) -> mikrotik.ConnectionTestResult:
    if router.driver == DriverKind.MIKROTIK:
        return mikrotik.test_connection(mikrotik_config(router))
    return mikrotik.ConnectionTestResult(
        ok=True, kind=None, message=f"{router.get_driver_display()}: nothing to connect to", details={}, latency_ms=0.0
    )


def export_config(router: Router) -> str:
    if router.driver != DriverKind.MIKROTIK:
        raise DriverError(f"{router.name} uses the {router.driver} driver; only MikroTik routers export a config")
    try:
        with mikrotik.MikrotikDriver(mikrotik_config(router, timeout=30.0)) as driver:
            return driver.export_config()
    except mikrotik.RouterError as error:
        raise DriverError(str(error)) from error
