"""Notification jobs: sending one message, a billing run's bill notices, and the every-minute safety net."""

from __future__ import annotations

from procrastinate.contrib.django import app

from sonjog.core.jobs import releases_connection
from sonjog.notifications import services
from sonjog.notifications.services import jobs


@app.task(name=jobs.SEND_MESSAGE, queue=jobs.QUEUE)
@releases_connection
def send_message(message_id: int) -> str:
    return services.message_send(message_id)


@app.task(name=jobs.BILL_NOTICES, queue=jobs.QUEUE)
@releases_connection
def bill_notices(run_id: int) -> int:
    return services.bill_notices_queue(run_id)


@app.task(name=jobs.EVENT_NOTICES, queue=jobs.QUEUE)
@releases_connection
def event_notices(event: str, subscriber_ids: list[int], dedup_prefix: str) -> int:
    return services.event_notices_queue(event, subscriber_ids, dedup_prefix)


@app.periodic(cron="* * * * *", periodic_id="notifications.drain")
@app.task(name="notifications.drain", queue="notifications", queueing_lock="notifications.drain")
@releases_connection
def drain(timestamp: int | None = None) -> dict[str, int]:
    """Every minute: messages whose worker died mid-send, and due messages whose job went missing."""
    return services.messages_drain()
