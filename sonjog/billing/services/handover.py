"""Field collection's two-step approval (issue 15): a collector's cash hand-over of each day.

What waits for a manager is the collector's hand-over of the cash, never the subscriber: the payment
is recorded, allocated and receipted when the collector takes the money, and a reconnection it earns
goes out at once (`flows.payments.payment_receive`). Where the collector's operator asks for it
(`Operator.collection_approval`, off by default, applying at once since it shapes no bill), each cash
payment the collector takes joins the collector's open hand-over of that day, in the operator's
calendar (`handover_payment_add`, inside `payment_record`'s transaction, so no cash payment of an
approving operator is ever outside one). A manager holding `billing.approve_cashhandover` then
approves it with the amount counted (`handover_approve`) or disputes it with a note
(`handover_dispute`); a disputed one stays open and is approved once settled.

Why the money stays provably right:
- a payment is in one hand-over at most (it is the link's primary key) and stays in it; the database
  lets it join only an open hand-over of its own collector, day and operator subtree, and only cash;
- `expected` is the sum of the hand-over's standing payments when it is decided (reversed ones left
  out, as `collected` leaves them out), computed here and checked again by the database; a shortfall
  is `expected - counted`, a column of the hand-over, and nothing about the payments changes;
- the decision locks the hand-over row, and a payment joining it locks the same row, so a payment
  either makes it into the figure the manager approves or opens the next hand-over of that day; two
  managers approving at once approve it once, and the second is told who did;
- the amount the manager saw is checked against the one approved, so cash taken while the page was
  open is never approved unseen.

Owners' own cash joins no hand-over (it is already the operator's), nor does cash of a login that
is no operator's staff; nobody approves or disputes the hand-over of their own cash."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from sonjog.billing.exceptions import (
    HandoverChanged,
    HandoverDecided,
    HandoverError,
    HandoverOwnCash,
    InvalidAmount,
)
from sonjog.billing.models import CashHandover, CashHandoverPayment, Payment, PaymentMethod
from sonjog.billing.selectors import handover_standing
from sonjog.core.audit import audit
from sonjog.core.money import round_money
from sonjog.operators.dates import operator_date_of
from sonjog.operators.models import Staff, StaffRole

APPROVE_PERMISSION = "billing.approve_cashhandover"
OPEN_STATES = (CashHandover.State.PENDING, CashHandover.State.DISPUTED)

# The database's rule that a payment joins only an open hand-over (migration billing 0017).
_JOINS_ONLY_OPEN = "billing_handover_open"


def handover_payment_add(*, payment: Payment) -> CashHandover | None:
    """Put a payment just recorded into its collector's open hand-over of the day (opening it), when
    it is cash taken by staff of an operator that approves hand-overs; None otherwise. Called inside
    the payment's transaction: it commits with the payment or not at all."""
    if payment.method != PaymentMethod.CASH or payment.collector_id is None:
        return None
    staff = Staff.objects.select_related("operator").filter(user_id=payment.collector_id).first()
    if staff is None or staff.role == StaffRole.OWNER or not staff.operator.collection_approval:
        return None
    operator = staff.operator
    if not payment.operator.path.startswith(operator.path):
        # Not the collector's operator's money (a login moved since, say): no hand-over of its own
        # operator fits it, and the payment must not fail for that.
        return None
    day = operator_date_of(operator, payment.received_at)
    for _attempt in range(3):
        # Locked until the payment commits: a decision waits for it, so it is counted in the figure
        # approved; once decided, the hand-over is no longer open and this opens the day's next one.
        handover = (
            CashHandover.objects.select_for_update()
            .filter(operator=operator, collector_id=payment.collector_id, day=day, state__in=OPEN_STATES)
            .first()
        )
        if handover is None:
            try:
                with transaction.atomic():
                    handover = CashHandover.objects.create(
                        operator=operator, collector_id=payment.collector_id, day=day
                    )
            except IntegrityError:
                continue  # another payment of the collector's opened it at the same moment: join that one
        try:
            with transaction.atomic():
                CashHandoverPayment.objects.create(payment=payment, handover=handover)
        except IntegrityError as error:
            if _refused_by(error, _JOINS_ONLY_OPEN):
                continue
            raise
        return handover
    raise HandoverError(f"payment #{payment.pk} found no open hand-over to join; record it again")


def handover_approve(
    *,
    handover: CashHandover,
    counted: Decimal,
    actor: User,
    expected: Decimal | None = None,
    note: str = "",
) -> CashHandover:
    """Approve a pending or disputed hand-over: the collector handed over `counted`. `expected` is
    the amount the manager was shown; if the payments add up to another amount now, nothing is
    written (HandoverChanged). The shortfall, if any, is recorded as the difference."""
    _amount_check(counted)
    with transaction.atomic():
        locked = _locked(handover, actor)
        if locked.state == CashHandover.State.APPROVED:
            raise HandoverDecided(_decided_text(locked))
        standing = _standing_as_seen(locked, expected)
        locked.state = CashHandover.State.APPROVED
        locked.expected = standing
        locked.counted = counted
        locked.approval_note = note.strip()[:300]
        locked.approved_by = actor
        locked.approved_at = timezone.now()
        locked.save(update_fields=["state", "expected", "counted", "approval_note", "approved_by", "approved_at"])
        locked.refresh_from_db(fields=["shortfall"])
        audit(
            operator=locked.operator,
            action="handover.approve",
            actor=actor,
            handover=locked.pk,
            collector=locked.collector_id,
            day=locked.day,
            expected=standing,
            counted=counted,
            shortfall=locked.shortfall,
            note=locked.approval_note,
        )
    return locked


def handover_dispute(
    *,
    handover: CashHandover,
    note: str,
    actor: User,
    counted: Decimal | None = None,
    expected: Decimal | None = None,
) -> CashHandover:
    """Dispute a pending hand-over: what is wrong in `note`, and what was counted if anything was.
    It stays open (a payment recorded for that day still joins it) until someone approves it."""
    note = note.strip()
    if not note:
        raise HandoverError(_("Say what is wrong: a dispute needs a note."))
    if counted is not None:
        _amount_check(counted)
    with transaction.atomic():
        locked = _locked(handover, actor)
        if locked.state != CashHandover.State.PENDING:
            raise HandoverDecided(_decided_text(locked))
        standing = _standing_as_seen(locked, expected)
        locked.state = CashHandover.State.DISPUTED
        locked.expected = standing
        locked.counted = counted
        locked.note = note[:300]
        locked.disputed_by = actor
        locked.disputed_at = timezone.now()
        locked.save(update_fields=["state", "expected", "counted", "note", "disputed_by", "disputed_at"])
        locked.refresh_from_db(fields=["shortfall"])
        audit(
            operator=locked.operator,
            action="handover.dispute",
            actor=actor,
            handover=locked.pk,
            collector=locked.collector_id,
            day=locked.day,
            expected=standing,
            counted=counted,
            note=locked.note,
        )
    return locked


def _amount_check(counted: Decimal) -> None:
    if counted is None or counted < 0:
        raise InvalidAmount(_("The amount counted cannot be less than zero."))
    if round_money(counted) != counted:
        raise InvalidAmount(_("Give the amount counted to the paisa: two decimal places at most."))


def _locked(handover: CashHandover, actor: User) -> CashHandover:
    """The hand-over row, locked for the decision, once the actor may decide it."""
    if not actor.has_perm(APPROVE_PERMISSION):
        raise HandoverError(_("Approving collectors' hand-overs needs the permission to approve them."))
    locked = CashHandover.objects.select_for_update().select_related("operator", "collector").get(pk=handover.pk)
    if locked.collector_id == actor.pk:
        raise HandoverOwnCash(_("This is your own cash: another manager approves or disputes its hand-over."))
    return locked


def _standing_as_seen(locked: CashHandover, expected: Decimal | None) -> Decimal:
    standing = handover_standing(locked.pk)
    if expected is not None and expected != standing:
        raise HandoverChanged(
            _(
                "The payments of this hand-over add up to %(now)s now, not the %(seen)s shown: a payment was "
                "taken or reversed meanwhile. Look at it again."
            )
            % {"now": standing, "seen": expected}
        )
    return standing


def _decided_text(handover: CashHandover) -> str:
    if handover.state == CashHandover.State.APPROVED:
        assert handover.approved_at is not None
        return _("This hand-over was approved already, by %(who)s at %(when)s.") % {
            "who": handover.approved_by.get_username() if handover.approved_by else "?",
            "when": date_format(timezone.localtime(handover.approved_at), "SHORT_DATETIME_FORMAT"),
        }
    return _("This hand-over is disputed already; approve it once the cash is settled.")


def _refused_by(error: IntegrityError, constraint: str) -> bool:
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == constraint
