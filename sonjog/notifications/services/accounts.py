"""Provider accounts: adding, editing and (de)activating an operator's SMS, e-mail and WhatsApp accounts.

One account per channel and operator is active (a partial unique index): activating one retires the
other. Stored secrets are never written to the audit log and never shown back.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from sonjog.core.audit import audit
from sonjog.notifications.exceptions import ProviderAccountError
from sonjog.notifications.models import KIND_CHANNEL, ProviderAccount
from sonjog.operators.models import Operator


def provider_account_create(
    *,
    operator: Operator,
    name: str,
    kind: str,
    sender_id: str = "",
    username: str = "",
    credentials: Mapping[str, str] | None = None,
    base_url: str = "",
    options: Mapping[str, Any] | None = None,
    cost_per_segment: Decimal = Decimal("0"),
    is_active: bool = True,
    webhook_token: str = "",
    actor: User | None = None,
) -> ProviderAccount:
    """Add a channel account. Activating it retires the operator's other active account on the channel."""
    if kind not in KIND_CHANNEL:
        raise ProviderAccountError(f"unknown provider '{kind}'; use one of {', '.join(KIND_CHANNEL)}")
    if cost_per_segment < 0:
        raise ProviderAccountError("the cost per segment cannot be negative")
    if not name.strip():
        raise ProviderAccountError("the account needs a name")
    channel = KIND_CHANNEL[kind]
    account = ProviderAccount(
        operator=operator,
        name=name.strip(),
        channel=channel,
        kind=kind,
        sender_id=sender_id,
        username=username,
        base_url=base_url,
        options=dict(options or {}),
        cost_per_segment=cost_per_segment,
        is_active=is_active,
    )
    account.credentials = dict(credentials or {})
    account.webhook_token = webhook_token or secrets.token_urlsafe(24)
    with transaction.atomic():
        if is_active:
            ProviderAccount.objects.filter(operator=operator, channel=channel, is_active=True).update(is_active=False)
        try:
            with transaction.atomic():
                account.save()
        except IntegrityError as error:
            raise ProviderAccountError(f"an account named '{name}' already exists") from error
        audit(operator=operator, action="notifications.account_create", actor=actor, account=account.pk, kind=kind)
    return account


def provider_account_set_active(*, account: ProviderAccount, active: bool, actor: User | None = None) -> None:
    with transaction.atomic():
        was_active = ProviderAccount.objects.filter(pk=account.pk).values_list("is_active", flat=True).first()
        if active:
            ProviderAccount.objects.filter(
                operator_id=account.operator_id, channel=account.channel, is_active=True
            ).exclude(pk=account.pk).update(is_active=False)
        ProviderAccount.objects.filter(pk=account.pk).update(is_active=active)
        account.is_active = active
        audit(
            operator=account.operator,
            action="notifications.account_active",
            actor=actor,
            account=account.pk,
            active=active,
            before={"is_active": was_active},
            after={"is_active": active},
        )


def provider_account_update(
    *,
    account: ProviderAccount,
    name: str,
    sender_id: str = "",
    username: str = "",
    base_url: str = "",
    cost_per_segment: Decimal = Decimal("0"),
    options: Mapping[str, Any] | None = None,
    credentials: Mapping[str, str] | None = None,
    actor: User | None = None,
) -> ProviderAccount:
    """Change an account's settings. Only the secrets given a value in `credentials` are replaced: the
    console never shows a stored secret, so an empty field has to mean "keep what is stored"."""
    if cost_per_segment < 0:
        raise ProviderAccountError("the cost per segment cannot be negative")
    if not name.strip():
        raise ProviderAccountError("the account needs a name")
    replaced = {key: value for key, value in (credentials or {}).items() if value}
    with transaction.atomic():
        locked = ProviderAccount.objects.select_for_update().select_related("operator").get(pk=account.pk)
        # The secrets are never copied into the log: `secrets_replaced` names which ones changed.
        settings_fields = ("name", "sender_id", "username", "base_url", "cost_per_segment", "options")
        before = {field: getattr(locked, field) for field in settings_fields}
        locked.name = name.strip()
        locked.sender_id = sender_id
        locked.username = username
        locked.base_url = base_url
        locked.cost_per_segment = cost_per_segment
        locked.options = dict(options or {})
        if replaced:
            locked.credentials = {**locked.credentials, **replaced}
        try:
            with transaction.atomic():
                locked.save(
                    update_fields=[
                        "name",
                        "sender_id",
                        "username",
                        "base_url",
                        "cost_per_segment",
                        "options",
                        "credentials_encrypted",
                    ]
                )
        except IntegrityError as error:
            raise ProviderAccountError(f"an account named '{name.strip()}' already exists") from error
        changed = [field for field in settings_fields if getattr(locked, field) != before[field]]
        audit(
            operator=locked.operator,
            action="notifications.account_update",
            actor=actor,
            account=locked.pk,
            secrets_replaced=",".join(sorted(replaced)),
            before={field: before[field] for field in changed},
            after={field: getattr(locked, field) for field in changed},
        )
    return locked
