"""Helpers shared by the management commands: one-line errors with exit code 2, JSON output."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.core.management.base import CommandError


def usage_error(message: str) -> CommandError:
    """Bad input: one clear line on stderr, exit code 2, nothing written."""
    return CommandError(message, returncode=2)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(data: Any) -> str:
    return json.dumps(data, default=_default, ensure_ascii=False)
