"""Automation settings with their defaults, read at call time so tests and operators can override them."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

# Days a row is kept before log_retention purges it. Ledger, billing and audit rows are never purged.
RETENTION_DEFAULT_DAYS = {
    "procrastinate_jobs": 30,
    "outbox_attempts": 180,
    "online_samples": 90,
    "job_runs": 180,
}
RETENTION_SETTING_NAMES = {
    "procrastinate_jobs": "SONJOG_RETENTION_FINISHED_JOBS_DAYS",
    "outbox_attempts": "SONJOG_RETENTION_OUTBOX_ATTEMPTS_DAYS",
    "online_samples": "SONJOG_RETENTION_ONLINE_SAMPLES_DAYS",
    "job_runs": "SONJOG_RETENTION_JOB_RUNS_DAYS",
}


def retention_days(target: str) -> int:
    return int(getattr(settings, RETENTION_SETTING_NAMES[target], RETENTION_DEFAULT_DAYS[target]))


def retention_batch_size() -> int:
    return int(getattr(settings, "SONJOG_RETENTION_BATCH_SIZE", 5000))


def backup_dir() -> Path:
    configured = getattr(settings, "SONJOG_BACKUP_DIR", None)
    if configured:
        return Path(configured)
    return Path(getattr(settings, "VAR_DIR", Path(settings.BASE_DIR) / "var")) / "backups"


def backup_keep() -> int:
    return int(getattr(settings, "SONJOG_BACKUP_KEEP", 7))
