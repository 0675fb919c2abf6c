"""Typed errors raised by billing services; each message is fit to show the user as it is."""


class BillingError(Exception):
    pass


class InvalidAmount(BillingError):
    pass


class InvalidPaymentMethod(BillingError):
    pass


class DuplicatePaymentSuspected(BillingError):
    """An identical payment was recorded moments ago; repeat with explicit confirmation to record it."""


class DuplicateGatewayTransaction(BillingError):
    pass


class AlreadyReversed(BillingError):
    pass


class NotReversible(BillingError):
    pass


class InvoiceAlreadyVoided(BillingError):
    pass


class SubscriberNotActive(BillingError):
    pass


class InvoicePaid(BillingError):
    """A paid invoice is voided only after its payment is reversed or moved to another open item."""


class InvalidDate(BillingError):
    """A business date outside the operator's window (start of records .. a short horizon ahead)."""


class CreditExceedsBill(InvalidAmount):
    """A credit of a bill (or of some of its lines) beyond what is left to credit on it; the database
    refuses it too, whoever writes it (ADR 0010)."""


class HandoverError(BillingError):
    """A collector's cash hand-over cannot be decided as asked (issue 15)."""


class HandoverDecided(HandoverError):
    """The hand-over is approved already (or disputed already, for a second dispute)."""


class HandoverChanged(HandoverError):
    """The hand-over's payments add up to another amount than the manager saw: look again."""


class HandoverOwnCash(HandoverError):
    """Nobody approves or disputes the hand-over of their own cash."""
