"""What the gateways app refuses, by name (the interfaces turn each into a clear message)."""

from __future__ import annotations


class GatewaysError(Exception):
    """Base of the gateways app's refusals."""


class GatewayAccountInvalid(GatewaysError):
    """A merchant account's settings are incomplete or out of range."""


class NoGatewayAccount(GatewaysError):
    """The subscriber's operator takes no payments through that gateway account."""


class NothingToPay(GatewaysError):
    """The amount asked for is not a payable amount."""
