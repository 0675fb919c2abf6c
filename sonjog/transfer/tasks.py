"""The import job: a batch applied by the worker, its progress on the batch row as it goes."""

from __future__ import annotations

from procrastinate.contrib.django import app

from sonjog.core.jobs import releases_connection


@app.task(name="transfer.import_apply", queue="console")
@releases_connection
def import_apply_job(batch_id: int, actor_id: int | None = None) -> dict[str, int]:
    from django.contrib.auth.models import User

    from sonjog.transfer.exceptions import TransferError
    from sonjog.transfer.imports import import_apply
    from sonjog.transfer.models import ImportBatch

    batch = ImportBatch.objects.get(pk=batch_id)
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    try:
        applied = import_apply(batch=batch, actor=actor)
    except TransferError:
        # Recorded on the batch (its status and error), which the page shows.
        batch.refresh_from_db()
        return {"created": batch.created, "failed": 1}
    return {"created": applied.created, "failed": 0}
