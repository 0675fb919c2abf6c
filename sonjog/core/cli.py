"""Helpers shared by the management commands: one-line errors with exit code 2, bounded arguments,
JSON output.

Every command derives from `SonjogCommand` and declares its arguments with the bounded types below
(`text_arg`, `int_arg`, `amount_arg`, `column_arg`), which check them with `sonjog.core.bounds`. Bad
input, whether argparse finds it (an unknown option, a missing one, a bad choice) or a bound does,
ends the command before it does anything: one line on stderr, exit code 2 (from `call_command`, a
CommandError with returncode 2)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models

from sonjog.core import bounds


def usage_error(message: str) -> CommandError:
    """Bad input: one clear line on stderr, exit code 2, nothing written."""
    return CommandError(" ".join(str(message).split()), returncode=2)


class Bounded:
    """An argparse `type` checking one argument with a bounds parser. The parser must accept what it
    returns, since `SonjogCommand` applies it again to options given to `call_command` as keywords
    (those skip argparse)."""

    def __init__(self, parse: Callable[[Any], Any], name: str) -> None:
        self.parse = parse
        self.__name__ = name  # what argparse calls the type in its own messages

    def __call__(self, value: Any) -> Any:
        try:
            return self.parse(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None


def text_arg(max_length: int, *, multiline: bool = False) -> Bounded:
    return Bounded(lambda value: bounds.check_text(value, max_length=max_length, multiline=multiline), "text")


def int_arg(minimum: int, maximum: int) -> Bounded:
    return Bounded(lambda value: bounds.parse_int(value, minimum=minimum, maximum=maximum), "int")


def amount_arg() -> Bounded:
    return Bounded(bounds.parse_amount, "amount")


def column_arg(model: type[models.Model], name: str) -> Bounded:
    """The bounds of a model column: a text column's max_length, an integer column's range."""
    field = model._meta.get_field(name)
    if isinstance(field, models.CharField):
        assert field.max_length is not None
        return text_arg(field.max_length)
    if isinstance(field, models.IntegerField):
        low, high = bounds.integer_range(field.get_internal_type())
        return int_arg(low, high)
    raise TypeError(f"no bounded argument type for {model.__name__}.{name}")


def host_arg() -> Bounded:
    return Bounded(bounds.parse_host, "host")


def _one_line_error(parser: CommandParser, message: str) -> NoReturn:
    line = " ".join(str(message).split())
    if parser.called_from_command_line:
        parser.exit(2, f"CommandError: {line}\n")
    raise usage_error(line)


def _option_name(action: argparse.Action) -> str:
    return max(action.option_strings, key=len) if action.option_strings else action.dest


class SonjogCommand(BaseCommand):
    """A management command whose bad input is one line and exit code 2, however it is called."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.error = lambda message: _one_line_error(parser, message)  # type: ignore[method-assign]
        return parser

    def execute(self, *args: Any, **options: Any) -> Any:
        parser = self.create_parser("sonjog", self.__module__.rpartition(".")[2])
        for action in parser._actions:
            value = options.get(action.dest)
            if isinstance(action.type, Bounded) and value is not None:
                try:
                    options[action.dest] = action.type.parse(value)
                except ValueError as error:
                    raise usage_error(f"argument {_option_name(action)}: {error}") from None
        return super().execute(*args, **options)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(data: Any) -> str:
    return json.dumps(data, default=_default, ensure_ascii=False)
