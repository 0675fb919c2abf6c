"""The per-subscriber lock every change of a subscriber's money or service takes first."""

from __future__ import annotations

from sonjog.customers.models import Subscriber


def subscriber_lock(subscriber_id: int) -> Subscriber:
    """A row lock on the subscriber, re-read fresh under it: the one lock that orders payments,
    adjustments, package changes, terminations and add-on changes of one subscriber.

    NO KEY UPDATE (not UPDATE) so rows elsewhere that merely reference the subscriber can still be
    inserted while the lock is held."""
    return (
        Subscriber.objects.select_for_update(no_key=True, of=("self",))
        .select_related("operator", "package")
        .get(pk=subscriber_id)
    )
