"""Value helpers shared by every menu: ``.id`` numbers, booleans, durations, timestamps, the
quoting ``/export`` uses, and the validators for addresses and rate limits.

They speak RouterOS 7's spellings (``*1F``, ``true``/``false``, ``1w2d3h4m5s``) and refuse bad
input with the :class:`~sonjog.network.routeros.emulator.errors.ApiTrap` a router would send.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Mapping
from typing import Final

from sonjog.network.routeros.emulator.errors import CATEGORY_ARGUMENT, ApiTrap


def format_id(number: int) -> str:
    return f"*{number:X}"


def parse_id(text: str) -> int | None:
    if not text.startswith("*"):
        return None
    try:
        return int(text[1:], 16)
    except ValueError:
        return None


TRUE_WORDS: Final = frozenset({"yes", "true"})
FALSE_WORDS: Final = frozenset({"no", "false"})


def parse_bool(key: str, value: str) -> str:
    """Accept the spellings clients send (librouteros sends yes/no) and store RouterOS 7's form."""
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS or lowered == "":
        return "true"
    if lowered in FALSE_WORDS:
        return "false"
    raise ApiTrap(f"input does not match any value of {key}", CATEGORY_ARGUMENT)


def is_flag_set(attrs: Mapping[str, str], key: str) -> bool:
    """Flag-style arguments (``=verbose=``) are on when present, unless explicitly no/false."""
    if key not in attrs:
        return False
    return attrs[key].strip().lower() not in FALSE_WORDS


_DURATION_UNITS: Final = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_CLOCK_RE: Final = re.compile(r"(?:(\d+)d\s*)?(\d+):(\d{1,2}):(\d{1,2})(?:\.\d+)?")
_UNIT_RE: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")


def parse_duration(text: str) -> float:
    """Parse RouterOS time values: ``300``, ``5m``, ``1h30m``, ``1w2d``, ``00:05:00``, ``1d 02:00:00``."""
    value = text.strip()
    if not value:
        raise ValueError("empty duration")
    if value.isdigit():
        return float(value)
    clock = _CLOCK_RE.fullmatch(value)
    if clock:
        days, hours, minutes, seconds = (int(part) if part else 0 for part in clock.groups())
        return days * 86400.0 + hours * 3600.0 + minutes * 60.0 + seconds
    compact = value.replace(" ", "")
    pieces = _UNIT_RE.findall(compact)
    if not pieces or "".join(number + unit for number, unit in pieces) != compact:
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in pieces)


def format_duration(seconds: float) -> str:
    """Format like RouterOS 7 prints uptime/timeout: ``1w2d3h4m5s``, ``0s`` for nothing."""
    remaining = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def format_timestamp(epoch: float) -> str:
    # RouterOS 7.10+ prints dates as ISO "YYYY-MM-DD HH:MM:SS" in router local time.
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


_EXPORT_PLAIN: Final = re.compile(r"[A-Za-z0-9_.:/+*@,%!-]+")
_EXPORT_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "$": "\\$", "?": "\\?", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def export_quote(value: str) -> str:
    """Quote a value the way /export does: bare when safe, else quoted with ``\\XX`` byte escapes."""
    if _EXPORT_PLAIN.fullmatch(value):
        return value
    out: list[str] = []
    for char in value:
        if char in _EXPORT_ESCAPES:
            out.append(_EXPORT_ESCAPES[char])
        elif " " <= char <= "~":
            out.append(char)
        else:
            # Non-ASCII and control characters are written byte by byte, as RouterOS does.
            out.extend(f"\\{byte:02X}" for byte in char.encode("utf-8", "surrogateescape"))
    return '"' + "".join(out) + '"'


def validate_ipv4(key: str, value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        raise ApiTrap(f"invalid value for argument {key}", CATEGORY_ARGUMENT) from None


_RATE_RE: Final = re.compile(r"\d+(?:\.\d+)?[kKMG]?")
_HOSTNAME_RE: Final = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})*")


def validate_rate_limit(value: str) -> str:
    """Check the shape ``rx[/tx] [burst-rx[/tx] [threshold [time [priority [min]]]]]``."""
    tokens = value.split()
    if not tokens or len(tokens) > 6:
        raise ApiTrap("invalid value for argument rate-limit", CATEGORY_ARGUMENT)
    for index, token in enumerate(tokens):
        halves = token.split("/")
        if len(halves) > 2:
            raise ApiTrap("invalid value for argument rate-limit", CATEGORY_ARGUMENT)
        for half in halves:
            if index == 3:
                try:
                    parse_duration(half)
                except ValueError:
                    raise ApiTrap("invalid value for argument rate-limit", CATEGORY_ARGUMENT) from None
            elif index == 4:
                if not (half.isdigit() and 1 <= int(half) <= 8):
                    raise ApiTrap("invalid value for argument rate-limit", CATEGORY_ARGUMENT)
            elif not _RATE_RE.fullmatch(half):
                raise ApiTrap("invalid value for argument rate-limit", CATEGORY_ARGUMENT)
    return " ".join(tokens)


def normalise_list_address(value: str) -> str:
    """Address-list entries accept an address, a network, a range or a DNS name."""
    text = value.strip()
    try:
        if "-" in text and not _HOSTNAME_RE.fullmatch(text):
            first, last = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
            return f"{first}-{last}"
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
            if network.num_addresses == 1:
                return str(network.network_address)
            return str(network)
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if _HOSTNAME_RE.fullmatch(text) and not text.replace(".", "").isdigit():
        return text
    raise ApiTrap("invalid value for argument address", CATEGORY_ARGUMENT)
