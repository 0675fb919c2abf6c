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
