"""Channel providers: each turns an outgoing message into its provider's request and the reply into a
typed SendResult (sent with the provider's id, or failed with a classified reason)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sonjog.notifications.providers.base import (
    DeliveryUpdate,
    FailureReason,
    OutgoingMessage,
    Provider,
    ReportError,
    SendResult,
)
from sonjog.notifications.providers.bulksmsbd import BulkSmsBd
from sonjog.notifications.providers.email import SmtpEmail
from sonjog.notifications.providers.generic import GenericHttp
from sonjog.notifications.providers.sslwireless import SslWireless
from sonjog.notifications.providers.twilio import Twilio
from sonjog.notifications.providers.whatsapp import WhatsAppCloud

if TYPE_CHECKING:
    from sonjog.notifications.models import ProviderAccount

PROVIDERS: dict[str, type[Provider]] = {
    cls.kind: cls for cls in (GenericHttp, SslWireless, BulkSmsBd, Twilio, SmtpEmail, WhatsAppCloud)
}


def provider_for(account: ProviderAccount) -> Provider:
    return PROVIDERS[account.kind](account)


__all__ = [
    "PROVIDERS",
    "DeliveryUpdate",
    "FailureReason",
    "OutgoingMessage",
    "Provider",
    "ReportError",
    "SendResult",
    "provider_for",
]
