"""Database helpers for the set-based paths."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def server_cursor() -> Iterator[psycopg.Cursor]:
    """A psycopg cursor with server-side parameter binding on Django's own connection (so inside the
    caller's transaction). Django's default client-side binding renders every array parameter as
    SQL text; for the 30,000-element arrays of bulk generation that quoting costs more than the
    insert itself."""
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    with psycopg.Cursor(raw) as cursor:
        yield cursor
