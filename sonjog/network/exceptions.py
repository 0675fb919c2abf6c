class NetworkError(Exception):
    """A network rule was broken; the message is fit for the user."""


class RouterInvalid(NetworkError):
    """A router's settings cannot be used (an unknown driver, a bad address or port, a zone it may not serve)."""


class RouterNameTaken(NetworkError):
    """Another router of the same operator already has this name."""


class ProfileConflict(NetworkError):
    """Two packages on the same routers want one PPP profile name at different rates."""


class BackupDestinationInvalid(NetworkError):
    """An operator's backup destination cannot be used as given (a bad host, port or directory)."""


class BackupFailed(NetworkError):
    """A router could not be backed up (it has no export, it did not answer)."""
