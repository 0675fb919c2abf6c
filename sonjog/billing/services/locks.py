"""Billing takes the subscriber's lock (defined with the subscriber, `customers.locks`) before any
ledger append."""

from __future__ import annotations

from sonjog.customers.locks import subscriber_lock

__all__ = ["subscriber_lock"]
