"""RouterOS query words (``?name=x``, ``?<a=1``, ``?-key``, ``?#|!&``): the stack machine that
decides whether one item matches a ``print``'s queries.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence

from sonjog.network.routeros.emulator.errors import CATEGORY_ARGUMENT, ApiTrap
from sonjog.network.routeros.emulator.values import FALSE_WORDS, TRUE_WORDS, format_id, parse_duration, parse_id


def _sign(difference: float) -> int:
    return (difference > 0) - (difference < 0)


def _compare_values(left: str, right: str) -> int:
    """Order values as RouterOS does for ?< and ?>: numbers, addresses and times by value."""
    with contextlib.suppress(ValueError):
        return _sign(int(left) - int(right))
    with contextlib.suppress(ValueError):
        a, b = ipaddress.ip_address(left), ipaddress.ip_address(right)
        if a.version == b.version:
            return _sign(int(a) - int(b))
    with contextlib.suppress(ValueError):
        return _sign(parse_duration(left) - parse_duration(right))
    return (left > right) - (left < right)


def evaluate_query(queries: Sequence[str], row: Mapping[str, str], booleans: Iterable[str] = ()) -> bool:
    """Evaluate RouterOS query words against one item.

    Every word pushes a boolean or, for ``?#``, rewrites the stack; the item matches when every
    value left on the stack is true (an empty stack matches everything).
    """
    boolean_keys = frozenset(booleans)
    stack: list[bool] = []

    def normalise(key: str, value: str) -> str:
        if key in boolean_keys and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return "true" if value.strip().lower() in TRUE_WORDS else "false"
        if key == ".id":
            number = parse_id(value)
            return format_id(number) if number is not None else value
        return value

    def pop() -> bool:
        if not stack:
            raise ApiTrap("invalid query", CATEGORY_ARGUMENT)
        return stack.pop()

    for word in queries:
        body = word[1:]
        if body.startswith("#"):
            _apply_query_operations(stack, body[1:], pop)
        elif body.startswith("-"):
            stack.append(body[1:] not in row)
        elif body[:1] in ("<", ">"):
            key, sep, value = body[1:].partition("=")
            if not sep or key not in row:
                stack.append(False)
                continue
            order = _compare_values(row[key], normalise(key, value))
            stack.append(order < 0 if body[0] == "<" else order > 0)
        elif "=" in body:
            # "?=name=value" and the older "?name=value" mean the same thing.
            key, _, value = (body[1:] if body.startswith("=") else body).partition("=")
            stack.append(key in row and row[key] == normalise(key, value))
        else:
            stack.append(body in row)
    return all(stack)


def _apply_query_operations(stack: list[bool], operations: str, pop: Callable[[], bool]) -> None:
    position = 0
    while position < len(operations):
        char = operations[position]
        if char.isdigit():
            end = position
            while end < len(operations) and operations[end].isdigit():
                end += 1
            index = int(operations[position:end])
            if index >= len(stack):
                raise ApiTrap("invalid query", CATEGORY_ARGUMENT)
            value = stack[-1 - index]
            if end == len(operations):
                # An index ending the word replaces the whole stack with that value.
                stack[:] = [value]
            else:
                stack.append(value)
                if operations[end] == ".":
                    end += 1  # "." right after an index is a no-op separator
            position = end
            continue
        if char == "!":
            stack.append(not pop())
        elif char == "&":
            right, left = pop(), pop()
            stack.append(left and right)
        elif char == "|":
            right, left = pop(), pop()
            stack.append(left or right)
        elif char == ".":
            top = pop()
            stack.extend((top, top))
        else:
            raise ApiTrap("invalid query", CATEGORY_ARGUMENT)
        position += 1
