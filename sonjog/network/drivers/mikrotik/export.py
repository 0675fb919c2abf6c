"""Configuration backup: the router's ``/export`` text, read back over the API from a uniquely named
file (or inline where the router answers with it), with the file removed afterwards."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Final

from sonjog.network.drivers.mikrotik.connection import RouterSession
from sonjog.network.drivers.mikrotik.errors import RouterCommandError, RouterError
from sonjog.network.drivers.mikrotik.types import Row
from sonjog.network.drivers.mikrotik.values import byte_count

_EXPORT_POLL_INTERVAL: Final = 0.1
_FILE_READ_CHUNK: Final = 32768


class ExportMixin(RouterSession):
    def export_config(self, *, show_sensitive: bool = False, terse: bool = False, wait: float = 3.0) -> str:
        """The router's configuration as ``/export`` text (newlines normalised to ``\\n``).

        Over the API a plain ``/export`` answers nothing, so export into a uniquely named file,
        read it back from ``/file`` and delete it. A router that answers with the text inline
        (``=ret=``) is used as is. ``wait`` bounds how long to wait for the file to appear.
        """
        options: dict[str, str] = {}
        if show_sensitive:
            options["show-sensitive"] = "yes"
        if terse:
            options["terse"] = "yes"
        # Unique per call: two workers exporting the same router must never read each other's
        # file (one of them may include passwords).
        base = f"sonjog-export-{uuid.uuid4().hex[:12]}"
        file_name = f"{base}.rsc"
        try:
            inline = self._inline_text(self._run("/export", {"file": base, **options}))
            if inline is None:
                inline = self._read_file(file_name, wait)
            if inline is None:
                inline = self._inline_text(self._run("/export", options))
            if inline is None:
                raise RouterCommandError(
                    f"Router {self.config.address} produced no export: /export file={base} wrote no readable "
                    "file. Check free disk space (/system resource free-hdd-space) and that the API user's "
                    "group has the 'ftp' and 'read' policies.",
                    command="/export",
                    **self._where(),
                )
            return inline.replace("\r\n", "\n")
        finally:
            self._discard_file(file_name)

    @staticmethod
    def _inline_text(rows: Iterable[Row]) -> str | None:
        for row in rows:
            if row.get("ret"):
                return row["ret"]
        return None

    def _read_file(self, file_name: str, wait: float) -> str | None:
        deadline = time.monotonic() + wait
        while True:
            rows = self._print("/file", f"?=name={file_name}", proplist=".id,name,size,contents")
            if rows:
                row = rows[0]
                if row.get("contents"):
                    return row["contents"]
                size = byte_count(row.get("size"))
                if size > 0:
                    # Bigger files do not carry 'contents' in a print and need /file/read.
                    return self._read_file_chunks(file_name, size)
            if time.monotonic() >= deadline:
                return None
            time.sleep(_EXPORT_POLL_INTERVAL)

    def _read_file_chunks(self, file_name: str, size: int) -> str:
        parts: list[str] = []
        offset = 0
        while offset < size:
            try:
                rows = self._run(
                    "/file/read", {"file": file_name, "offset": str(offset), "chunk-size": str(_FILE_READ_CHUNK)}
                )
            except RouterCommandError as error:
                raise RouterCommandError(
                    f"The export on {self.config.address} is {size} bytes, too big to read over the API on "
                    "this RouterOS version (needs 7.13+ for /file/read). Upgrade RouterOS or fetch the file "
                    "by SFTP.",
                    router_message=error.router_message,
                    category=error.category,
                    command="/file/read",
                    **self._where(),
                ) from error
            parts.append(rows[0].get("data", "") if rows else "")
            offset += _FILE_READ_CHUNK
        return "".join(parts)

    def _discard_file(self, file_name: str) -> None:
        # Best effort and only on a live connection: cleanup must not hide the real error, nor
        # spend another connect timeout on a router that just went away.
        if self._api is None:
            return
        try:
            ids = [row[".id"] for row in self._print("/file", f"?=name={file_name}", proplist=".id")]
            self._remove_ids("/file", ids)
        except RouterError:
            pass
