"""Reads for operators and the acting staff member."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from sonjog.operators.models import Operator


def operator_for_user(user: AbstractBaseUser | AnonymousUser) -> Operator | None:
    """The operator a staff login acts for; None for logins that belong to no operator."""
    staff = getattr(user, "staff", None)
    return staff.operator if staff is not None else None


def operator_subtree(operator: Operator) -> QuerySet[Operator]:
    return Operator.objects.filter(path__startswith=operator.path)


def operator_by_code(code: str) -> Operator:
    return Operator.objects.get(code=code)
