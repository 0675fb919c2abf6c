class SubscriberError(Exception):
    """A subscriber rule was broken; the message is fit for the user."""


class InvalidPhone(SubscriberError):
    pass


class ZoneError(SubscriberError):
    """A zone rule was broken (a duplicate name, a zone inside itself); the message is fit for the user."""


class DiscountNotPermitted(SubscriberError):
    """Giving a subscriber a discount needs the permission customers.grant_discount."""


class PasswordRevealNotPermitted(SubscriberError):
    """Reading a subscriber's PPPoE password needs the permission customers.reveal_pppoe_password."""


class SignInCodeRateLimited(SubscriberError):
    """Another sign-in code was asked for too soon (one a minute, five an hour per subscriber);
    `wait_seconds` says how long until the next may be sent."""

    def __init__(self, message: str, *, wait_seconds: int) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds


class SignInCodeNotSent(SubscriberError):
    """A sign-in code could not be sent: the operator has no SMS account, or the subscriber no number
    that takes SMS. Nothing was issued."""
