"""``MikrotikDriver``, composed of the driver's parts (connection, secrets, profiles, sessions,
address lists, export, applying a subscriber, the suspension-portal rules), and the settings page's
``test_connection``, which reports problems instead of raising."""

from __future__ import annotations

import time

from sonjog.network.drivers.mikrotik.apply import ApplyMixin
from sonjog.network.drivers.mikrotik.errors import RouterError
from sonjog.network.drivers.mikrotik.export import ExportMixin
from sonjog.network.drivers.mikrotik.portal import PortalMixin
from sonjog.network.drivers.mikrotik.profiles import ProfilesMixin
from sonjog.network.drivers.mikrotik.types import ConnectionTestResult, RouterConfig


class MikrotikDriver(ApplyMixin, ProfilesMixin, ExportMixin, PortalMixin):
    """One API session to one RouterOS device.

    Use it as a context manager. A call made after the connection broke opens a new one, so a
    long-lived driver recovers by itself; a failed call is never retried inside the driver,
    the caller decides (every method is safe to repeat).
    """

    # -- health ------------------------------------------------------------------------------

    def test_connection(self) -> dict[str, str]:
        resource_rows = self._print("/system/resource")
        identity_rows = self._print("/system/identity")
        resource = resource_rows[0] if resource_rows else {}
        return {
            "identity": identity_rows[0].get("name", "") if identity_rows else "",
            "version": resource.get("version", ""),
            "board": resource.get("board-name", ""),
            "uptime": resource.get("uptime", ""),
            "cpu-load": resource.get("cpu-load", ""),
            "architecture": resource.get("architecture-name", ""),
            "free-memory": resource.get("free-memory", ""),
            "total-memory": resource.get("total-memory", ""),
        }


def test_connection(config: RouterConfig) -> ConnectionTestResult:
    """Connect, log in and read identity and resources; reports problems instead of raising."""
    started = time.monotonic()

    def elapsed() -> float:
        return round((time.monotonic() - started) * 1000.0, 1)

    try:
        with MikrotikDriver(config) as driver:
            details = driver.test_connection()
    except RouterError as error:
        return ConnectionTestResult(ok=False, kind=error.kind, message=error.message, details={}, latency_ms=elapsed())
    except Exception as exc:  # the settings page must always get an answer
        return ConnectionTestResult(
            ok=False,
            kind="error",
            message=f"Unexpected error talking to {config.address}: {exc!r}",
            details={},
            latency_ms=elapsed(),
        )
    latency = elapsed()
    message = (
        f"Connected to {details['identity'] or config.host} (RouterOS {details['version']}, "
        f"{details['board']}) in {latency:.0f} ms"
    )
    return ConnectionTestResult(ok=True, kind=None, message=message, details=details, latency_ms=latency)


# Its name starts with "test"; stop pytest from collecting it wherever it gets imported.
test_connection.__test__ = False  # type: ignore[attr-defined]
