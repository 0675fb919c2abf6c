"""The state file: the router's configuration as JSON, written atomically and read back.

Only what a router keeps across a reboot is saved (the router decides which tables); this module
owns the file format and the crash-safe write.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from sonjog.network.routeros.emulator.state import RouterState, Table

STATE_FORMAT: Final = 1


def write_state_file(target: Path, snapshot: Mapping[str, Any]) -> None:
    """Write the configuration atomically: a crash leaves either the old or the new file."""
    data = json.dumps(snapshot, ensure_ascii=False, indent=1)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise


def read_state_file(path: Path, state: RouterState) -> None:
    """Load a saved configuration into ``state``: the identity and every table ``state`` has."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read RouterOS emulator state {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} is not a RouterOS emulator state file")
    state.identity = str(data.get("identity", state.identity))
    for name, stored in dict(data.get("tables", {})).items():
        if name not in state.tables:
            continue
        rows = [{str(k): str(v) for k, v in dict(row).items()} for row in stored.get("rows", [])]
        state.tables[name] = Table(next_id=int(stored.get("next_id", 1)), rows=rows)
