"""Typed errors raised by the notification services; each message is fit to show the user as it is."""


class NotificationError(Exception):
    pass


class UnknownEvent(NotificationError):
    pass


class NoProviderAccount(NotificationError):
    """The operator has no active account for the channel."""


class InvalidRecipient(NotificationError):
    pass


class InvalidTemplate(NotificationError):
    pass


class InsufficientSmsCredit(NotificationError):
    pass


class ProviderAccountError(NotificationError):
    pass
