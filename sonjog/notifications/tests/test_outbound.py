"""Sending refuses a gateway whose address is (now) loopback, private, link-local or reserved, unless
SONJOG_ALLOW_PRIVATE_OUTBOUND allows it: checked before every request, since a name may resolve
elsewhere than when the account was saved."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sonjog.core.outbound import OutboundRefused
from sonjog.notifications.models import Message, MessageStatus, ProviderAccount, SmsBalance
from sonjog.notifications.providers import FailureReason, OutgoingMessage, provider_for
from sonjog.notifications.services import message_send, notify_event
from sonjog.notifications.tests.conftest import make_isp
from sonjog.notifications.tests.fakes import SslWirelessFake

pytestmark = pytest.mark.django_db

OUTGOING = OutgoingMessage(recipient="+8801712345678", body="hello", reference="sj1")


def _queued(isp) -> Message:
    notify_event(subscriber=isp.subscriber, event="payment_received", context={"payment_amount": Decimal("500")})
    return Message.objects.get(subscriber=isp.subscriber)


def test_a_loopback_gateway_is_refused_at_send_time_and_nothing_reaches_it(gateway: SslWirelessFake, settings):
    isp = make_isp(gateway)  # saved while the tests allow loopback gateways
    message = _queued(isp)
    settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = False

    assert message_send(message.pk) == MessageStatus.FAILED

    message.refresh_from_db()
    assert message.failure_reason == FailureReason.CONFIGURATION
    assert "127.0.0.1" in message.last_error and "public addresses" in message.last_error
    assert gateway.requests == []
    assert SmsBalance.objects.get(operator=isp.operator).balance == Decimal("10.00")  # the debit refunded


def test_the_provider_raises_before_connecting(gateway: SslWirelessFake, settings):
    isp = make_isp(gateway)
    assert isp.sms is not None
    settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = False
    with pytest.raises(OutboundRefused):
        provider_for(isp.sms).send(OUTGOING)
    assert gateway.requests == []
    settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = True
    assert provider_for(isp.sms).send(OUTGOING).ok
    assert len(gateway.requests) == 1


def test_a_name_that_does_not_resolve_is_a_temporary_failure(gateway: SslWirelessFake, settings):
    isp = make_isp(gateway)
    assert isp.sms is not None
    ProviderAccount.objects.filter(pk=isp.sms.pk).update(base_url="http://gateway.invalid")
    isp.sms.refresh_from_db()
    settings.SONJOG_ALLOW_PRIVATE_OUTBOUND = False
    result = provider_for(isp.sms).send(OUTGOING)
    assert not result.ok and result.reason == FailureReason.TEMPORARY and "gateway.invalid" in result.detail
