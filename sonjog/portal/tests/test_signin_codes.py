"""Sign-in codes as the services keep them: a hash and never the code, single use, ten minutes, the
sixth wrong try burns it, one a minute and five an hour per subscriber (the refusal says how long to
wait), only the newest counts, and two checks at once with the right code let exactly one in."""

from __future__ import annotations

import datetime as dt

import pytest

from sonjog.conftest import run_at_once
from sonjog.customers.exceptions import SignInCodeNotSent, SignInCodeRateLimited
from sonjog.customers.models import PortalAccess, SignInCode
from sonjog.customers.signin import (
    portal_epoch,
    portal_sign_out_everywhere,
    signin_code_check,
    signin_code_issue,
)
from sonjog.flows.portal import portal_code_send
from sonjog.notifications.models import Message
from sonjog.portal.tests.conftest import billed_subscriber, last_code, sms_operator

T0 = dt.datetime(2026, 11, 18, 4, 0, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_a_code_is_six_digits_stored_only_as_a_hash_and_good_once(subscriber):
    code = signin_code_issue(subscriber=subscriber, now=T0)
    assert len(code) == 6 and code.isdigit()
    row = SignInCode.objects.get(subscriber=subscriber)
    assert code not in row.code_hash and row.expires_at == T0 + dt.timedelta(minutes=10)

    assert signin_code_check(subscriber=subscriber, code=code, now=T0 + dt.timedelta(minutes=1))
    # Used: the same code, even at once, is refused.
    assert not signin_code_check(subscriber=subscriber, code=code, now=T0 + dt.timedelta(minutes=1, seconds=1))
    row.refresh_from_db()
    assert row.used_at == T0 + dt.timedelta(minutes=1)


@pytest.mark.django_db
def test_a_code_expires_after_ten_minutes(subscriber):
    code = signin_code_issue(subscriber=subscriber, now=T0)
    assert not signin_code_check(subscriber=subscriber, code=code, now=T0 + dt.timedelta(minutes=10))
    later = T0 + dt.timedelta(minutes=11)
    fresh = signin_code_issue(subscriber=subscriber, now=later)
    assert signin_code_check(subscriber=subscriber, code=fresh, now=later + dt.timedelta(minutes=9, seconds=59))


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@pytest.mark.django_db
def test_five_wrong_codes_are_forgiven_the_sixth_burns_the_code(subscriber):
    code = signin_code_issue(subscriber=subscriber, now=T0)
    for _attempt in range(5):
        assert not signin_code_check(subscriber=subscriber, code=_wrong(code), now=T0)
    assert signin_code_check(subscriber=subscriber, code=code, now=T0)

    later = T0 + dt.timedelta(minutes=2)
    code = signin_code_issue(subscriber=subscriber, now=later)
    for _attempt in range(6):
        assert not signin_code_check(subscriber=subscriber, code=_wrong(code), now=later)
    assert not signin_code_check(subscriber=subscriber, code=code, now=later)
    assert SignInCode.objects.filter(subscriber=subscriber).values_list("attempts", flat=True)[0] == 6


@pytest.mark.django_db
def test_one_code_a_minute_and_five_an_hour_the_refusal_names_the_wait(subscriber):
    signin_code_issue(subscriber=subscriber, now=T0)
    with pytest.raises(SignInCodeRateLimited) as refused:
        signin_code_issue(subscriber=subscriber, now=T0 + dt.timedelta(seconds=45))
    assert refused.value.wait_seconds == 15
    for minute in (1, 2, 3, 4):
        signin_code_issue(subscriber=subscriber, now=T0 + dt.timedelta(minutes=minute))
    # Five within the hour: the next waits until the first of them is an hour old.
    with pytest.raises(SignInCodeRateLimited) as refused:
        signin_code_issue(subscriber=subscriber, now=T0 + dt.timedelta(minutes=10))
    assert refused.value.wait_seconds == 50 * 60
    assert SignInCode.objects.filter(subscriber=subscriber).count() == 5
    signin_code_issue(subscriber=subscriber, now=T0 + dt.timedelta(hours=1))


@pytest.mark.django_db
def test_the_limit_is_per_subscriber(operator, subscriber):
    other = billed_subscriber(operator)
    signin_code_issue(subscriber=subscriber, now=T0)
    signin_code_issue(subscriber=other, now=T0)


@pytest.mark.django_db
def test_only_the_newest_code_counts(subscriber):
    first = signin_code_issue(subscriber=subscriber, now=T0)
    second = signin_code_issue(subscriber=subscriber, now=T0 + dt.timedelta(minutes=1))
    if first != second:
        assert not signin_code_check(subscriber=subscriber, code=first, now=T0 + dt.timedelta(minutes=2))
    assert signin_code_check(subscriber=subscriber, code=second, now=T0 + dt.timedelta(minutes=2))


@pytest.mark.django_db
def test_the_flow_queues_the_code_by_sms_in_the_subscribers_language(subscriber):
    portal_code_send(subscriber=subscriber, now=T0)
    message = Message.objects.get(subscriber=subscriber, event="otp")
    assert message.channel == "sms" and message.is_urgent
    assert "Dhaka Net" in message.body
    assert signin_code_check(subscriber=subscriber, code=last_code(subscriber), now=T0)


@pytest.mark.django_db
def test_no_sms_account_no_code_kept():
    operator = sms_operator()
    operator.provider_accounts.update(is_active=False)
    subscriber = billed_subscriber(operator)
    with pytest.raises(SignInCodeNotSent):
        portal_code_send(subscriber=subscriber, now=T0)
    assert not SignInCode.objects.exists()
    # Nothing was kept, so nothing counts against the limit either.
    operator.provider_accounts.update(is_active=True)
    portal_code_send(subscriber=subscriber, now=T0 + dt.timedelta(seconds=1))


@pytest.mark.django_db
def test_signing_out_everywhere_raises_the_epoch(subscriber):
    assert portal_epoch(subscriber.pk) == 0
    assert portal_sign_out_everywhere(subscriber=subscriber) == 1
    assert portal_sign_out_everywhere(subscriber=subscriber) == 2
    assert PortalAccess.objects.get(subscriber=subscriber).epoch == portal_epoch(subscriber.pk) == 2


@pytest.mark.django_db(transaction=True)
def test_two_checks_at_once_with_the_right_code_let_exactly_one_in():
    subscriber = billed_subscriber(sms_operator())
    for round_number in range(3):
        now = T0 + dt.timedelta(minutes=2 * round_number)
        code = signin_code_issue(subscriber=subscriber, now=now)
        results = run_at_once(
            lambda code=code, now=now: signin_code_check(subscriber=subscriber, code=code, now=now),
            lambda code=code, now=now: signin_code_check(subscriber=subscriber, code=code, now=now),
        )
        assert sorted(results) == [False, True], results


@pytest.mark.django_db(transaction=True)
def test_two_issues_at_once_give_one_code():
    subscriber = billed_subscriber(sms_operator())
    results = run_at_once(
        lambda: signin_code_issue(subscriber=subscriber, now=T0),
        lambda: signin_code_issue(subscriber=subscriber, now=T0),
    )
    assert sum(isinstance(result, str) for result in results) == 1, results
    assert sum(isinstance(result, SignInCodeRateLimited) for result in results) == 1, results
    assert SignInCode.objects.filter(subscriber=subscriber).count() == 1
