"""What goes in and out of the device model: a parsed API sentence (:class:`Command`), what a
menu answers (:class:`Result`) and what the command log records (:class:`LoggedCommand`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

from sonjog.network.routeros import protocol


@dataclasses.dataclass
class Command:
    """One parsed API sentence."""

    path: str
    attrs: dict[str, str] = dataclasses.field(default_factory=dict)
    queries: list[str] = dataclasses.field(default_factory=list)
    tag: str | None = None
    unknown_words: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def parse(cls, words: Sequence[str]) -> Command:
        command = cls(path=words[0])
        for word in words[1:]:
            if word.startswith("="):
                key, value = protocol.parse_attribute_word(word)
                command.attrs[key] = value
            elif word.startswith("?"):
                command.queries.append(word)
            elif word.startswith(".tag="):
                command.tag = word[len(".tag=") :]
            elif word.startswith("."):
                # Other API attributes (e.g. ".proplist" sent without "=") are tolerated.
                key, _, value = word.partition("=")
                command.attrs[key] = value
            else:
                command.unknown_words.append(word)
        return command

    @property
    def segments(self) -> list[str]:
        return [segment for segment in self.path.strip("/").split("/") if segment]


@dataclasses.dataclass
class Result:
    rows: list[dict[str, str]] = dataclasses.field(default_factory=list)
    done: dict[str, str] = dataclasses.field(default_factory=dict)
    # True for commands that list data: with ``empty_reply`` an empty list yields "!empty".
    listing: bool = False


class LoggedCommand(NamedTuple):
    """What a client sent: the command path and its ``=key=value`` (and ``.id``-style) attributes."""

    path: str
    attributes: dict[str, str]
