"""Typed errors raised by automation services; each message is fit to show the user as it is."""


class AutomationError(Exception):
    pass


class UnknownJob(AutomationError):
    """No registered job has that name."""


class InvalidSchedule(AutomationError):
    """An operator schedule or reminder rule outside what the jobs can honour."""


class BackupError(AutomationError):
    """pg_dump or pg_restore could not run, or failed."""


class RestoreRefused(AutomationError):
    """The restore target is unsafe (an existing non-empty database, a bad name, a missing file)."""
