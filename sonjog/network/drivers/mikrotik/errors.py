"""The ``RouterError`` family, and the translation of what went wrong during a command (a ``!trap``,
a dropped connection, a reply that never came) into one of them, with a message that tells an operator
what to check on the router.

Failures while opening a connection (refused, TLS, login) are explained in ``connection``, which knows
which step of opening was running.
"""

from __future__ import annotations

from typing import Any, ClassVar

from librouteros.exceptions import ConnectionClosed, FatalError, MultiTrapError, ProtocolError, TrapError

from sonjog.network.drivers.mikrotik.types import RouterConfig


class RouterError(Exception):
    """Anything that went wrong talking to a router; ``kind`` is stable, the message is for people."""

    kind: ClassVar[str] = "error"
    # Whether trying the same thing again later can reasonably succeed without anyone
    # touching the router's configuration.
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        port: int | None = None,
        command: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.port = port
        self.command = command

    def __str__(self) -> str:
        return self.message


class RouterRefused(RouterError):
    kind = "refused"
    retryable = True


class RouterTimeout(RouterError):
    kind = "timeout"
    retryable = True


class RouterLoginFailed(RouterError):
    kind = "login_failed"


class RouterTLSError(RouterError):
    kind = "tls"


class RouterConnectionLost(RouterError):
    kind = "connection_lost"
    retryable = True


class RouterUnreachable(RouterError):
    """The address does not resolve or there is no route to it (no TCP conversation at all)."""

    kind = "unreachable"
    retryable = True


class RouterCommandError(RouterError):
    """The router answered ``!trap``: it understood the command and refused it."""

    kind = "command"

    def __init__(
        self,
        message: str,
        *,
        router_message: str = "",
        category: int | None = None,
        host: str | None = None,
        port: int | None = None,
        command: str | None = None,
    ) -> None:
        super().__init__(message, host=host, port=port, command=command)
        self.router_message = router_message
        self.category = category


def where(config: RouterConfig) -> dict[str, Any]:
    """The router an error is about, as the error's keyword arguments."""
    return {"host": config.host, "port": config.port}


def is_missing_item(error: RouterCommandError) -> bool:
    return "no such item" in error.router_message


def trap_text(error: TrapError | MultiTrapError) -> tuple[str, int | None]:
    traps = error.traps if isinstance(error, MultiTrapError) else (error,)
    message = "; ".join(str(trap.message) for trap in traps)
    raw_category = traps[0].category if traps else None
    try:
        category = int(raw_category) if raw_category is not None else None
    except (TypeError, ValueError):
        category = None
    return message, category


def command_error(config: RouterConfig, exc: TrapError | MultiTrapError, path: str) -> RouterCommandError:
    text, category = trap_text(exc)
    return RouterCommandError(
        f"Router {config.address} refused {path}: {text}",
        router_message=text,
        category=category,
        command=path,
        **where(config),
    )


def transport_error(config: RouterConfig, exc: BaseException, path: str) -> RouterError:
    address = config.address
    if isinstance(exc, TimeoutError):
        return RouterTimeout(
            f"Router {address} did not answer {path} within {config.timeout:g}s. It may be overloaded "
            "(check CPU in /system resource). The command may or may not have been applied; running it "
            "again is safe.",
            command=path,
            **where(config),
        )
    if isinstance(exc, FatalError):
        reason = f"the router ended the session ({exc})"
    elif isinstance(exc, ConnectionClosed | ConnectionError):
        reason = "the connection dropped"
    elif isinstance(exc, ProtocolError):
        reason = f"the reply could not be understood ({exc})"
    else:
        reason = f"the connection failed ({exc or type(exc).__name__})"
    return RouterConnectionLost(
        f"Talking to {address}, {reason} while waiting for the reply to {path}. The command may or may "
        "not have been applied; running it again is safe, it re-reads the router first.",
        command=path,
        **where(config),
    )
