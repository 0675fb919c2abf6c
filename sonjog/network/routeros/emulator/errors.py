"""The one error a command can end in: :class:`ApiTrap`, and the RouterOS trap categories.

Everything that refuses a command raises ``ApiTrap``; the connection turns it into the
``!trap`` sentences (one per message) and the closing ``!done`` a real router sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final


class ApiTrap(Exception):
    """A command failed; becomes one or more ``!trap`` sentences followed by ``!done``."""

    def __init__(
        self,
        message: str,
        category: int | None = None,
        *,
        extra: Sequence[tuple[str, int | None]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.traps: list[tuple[str, int | None]] = [(message, category), *extra]


# RouterOS trap categories, as documented for the API.
CATEGORY_MISSING: Final = 0  # missing item or command
CATEGORY_ARGUMENT: Final = 1  # argument value failure
CATEGORY_INTERRUPTED: Final = 2  # execution of command interrupted
CATEGORY_SCRIPTING: Final = 3
CATEGORY_GENERAL: Final = 4
CATEGORY_API: Final = 5
