"""Talking to a real FreeRADIUS from tests: radtest/radclient from freeradius-utils, replies parsed."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from sonjog.network.radius.freeradius import FreeRadiusServer, radclient_binary


@dataclass
class RadReply:
    code: str
    lines: list[str]
    output: str

    def values(self, attribute: str) -> list[str]:
        prefix = f"{attribute} = "
        return [line[len(prefix) :].strip('"') for line in self.lines if line.startswith(prefix)]


def parse_reply(output: str) -> RadReply:
    match = re.search(r"^Received (\S+) Id \d+.*$", output, re.MULTILINE)
    if match is None:
        return RadReply("none", [], output)
    lines = []
    for line in output[match.end() :].splitlines()[1:]:
        if not line.startswith("\t"):
            break
        lines.append(line.strip())
    return RadReply(match.group(1), lines, output)


def radclient(
    server: FreeRadiusServer, kind: str, attributes: str, secret: str, *, wait: int = 3, timeout: int = 15
) -> RadReply:
    port = server.auth_port if kind == "auth" else server.acct_port
    completed = subprocess.run(
        [radclient_binary(), "-x", "-r", "1", "-t", str(wait), f"127.0.0.1:{port}", kind, secret],
        input=attributes + "\n",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return parse_reply(completed.stdout + completed.stderr)


def radtest(server: FreeRadiusServer, username: str, password: str, secret: str, *, timeout: int = 20) -> RadReply:
    completed = subprocess.run(
        ["radtest", username, password, f"127.0.0.1:{server.auth_port}", "0", secret, "0", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return parse_reply(completed.stdout + completed.stderr)
