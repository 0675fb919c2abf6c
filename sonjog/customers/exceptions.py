class SubscriberError(Exception):
    """A subscriber rule was broken; the message is fit for the user."""


class InvalidPhone(SubscriberError):
    pass
