"""Small pieces the gateway clients share: the credentials check, amounts both ways, the gateways'
times, the HTTP call with its failures as `GatewayTimeout`/`GatewayError`, the daily listing's rows,
and the UNKNOWN status of a payment the gateway does not know.

Only what is the same rule at more than one gateway is here; a gateway's own formats (which time
layouts, which zone, which codes) stay in its client and are passed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Self

import httpx

from sonjog.gateways.clients.base import Credentials, GatewayError, GatewayTimeout, State, Status

CENT = Decimal("0.01")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def require_values(credentials: Credentials, names: Sequence[str], gateway: str) -> None:
    """A client refuses to start without every credential it signs its calls with."""
    missing = [name for name in names if not credentials.values.get(name)]
    if missing:
        raise ValueError(f"{gateway} credentials lack {', '.join(missing)}")


def unknown_status(merchant_reference: str, gateway_payment_id: str = "", raw: dict[str, Any] | None = None) -> Status:
    """The gateway does not know the payment (yet): UNKNOWN, never FAILED, since nobody can say that
    no money moved; the recheck asks again."""
    return Status(
        state=State.UNKNOWN,
        merchant_reference=merchant_reference,
        gateway_payment_id=gateway_payment_id,
        raw=raw or {},
    )


def amount_text(amount: Decimal, gateway: str) -> str:
    """The amount as the decimal string the gateway takes. Sonjog's money is already rounded to the
    paisa, so an amount with more places is a bug upstream, not something to round here."""
    rounded = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    if rounded != amount or rounded <= 0:
        raise ValueError(f"a {gateway} amount is positive with at most 2 decimal places, not {amount}")
    return f"{rounded:.2f}"


def parse_amount(value: Any, gateway: str) -> Decimal | None:
    """An amount the gateway answered (a number or its text) to the paisa; None when it gave none."""
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as error:
        raise GatewayError(f"{gateway} answered an amount that is not a number: {value!r}") from error


def parse_time(value: Any, layouts: Sequence[str], *, zone: dt.tzinfo | None = None) -> dt.datetime | None:
    """A time the gateway wrote in one of `layouts`; `zone` is the wall clock of a layout without an
    offset. A time written otherwise is left out (None) rather than guessed."""
    if not isinstance(value, str):
        return None
    for layout in layouts:
        try:
            moment = dt.datetime.strptime(value.strip(), layout)
        except ValueError:
            continue
        return moment.replace(tzinfo=zone) if zone is not None else moment
    return None


def request(
    http: httpx.Client, method: str, url: str, *, gateway: str, operation: str, **options: Any
) -> httpx.Response:
    """One HTTP call. No answer in time or a broken connection is `GatewayTimeout` (whether the call
    took effect is unknown, so the caller rechecks); any other failure to call is `GatewayError`."""
    try:
        return http.request(method, url, **options)
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
        raise GatewayTimeout(f"{gateway} {operation}: no answer ({type(error).__name__})") from error
    except httpx.HTTPError as error:
        raise GatewayError(f"{gateway} {operation}: {error}") from error


def listed_rows(answer: dict[str, Any], gateway: str) -> list[dict[str, Any]]:
    """The rows of a daily listing ({"transactions": [...]}), each an object, or `GatewayError`."""
    rows = answer.get("transactions")
    if not isinstance(rows, list):
        raise GatewayError(f"{gateway}'s daily listing has no transactions list", raw=answer)
    if not all(isinstance(row, dict) for row in rows):
        raise GatewayError(f"{gateway}'s daily listing holds a row that is not an object", raw=answer)
    return rows


class PooledClient:
    """A client that keeps one httpx connection pool for its life: `close()` it, or use it in `with`."""

    _http: httpx.Client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
