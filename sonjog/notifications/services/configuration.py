"""What an operator says and when: message templates, the operator's message settings (quiet hours,
default language and channels, muted events) and a subscriber's own language and muted channels.

Templates are `{{ variable }}` text checked by `rendering.validate_template_text` when saved, so
rendering never fails at send time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from sonjog.core.audit import audit
from sonjog.customers.models import Subscriber
from sonjog.notifications.exceptions import InvalidTemplate, NotificationError, UnknownEvent
from sonjog.notifications.models import (
    Channel,
    Event,
    Language,
    MessageTemplate,
    NotificationSettings,
    SubscriberPreference,
)
from sonjog.notifications.rendering import validate_template_text
from sonjog.operators.models import Operator


def template_save(
    *,
    operator: Operator,
    event: str,
    channel: str,
    language: str,
    body: str,
    subject: str = "",
    is_active: bool = True,
    actor: User | None = None,
) -> MessageTemplate:
    """Create or replace the operator's wording for an event, channel and language (audited: what a
    subscriber was told can be traced to who wrote the wording)."""
    if event not in Event.values:
        raise UnknownEvent(f"unknown event '{event}'")
    if channel not in Channel.values:
        raise InvalidTemplate(f"unknown channel '{channel}'")
    if language not in Language.values:
        raise InvalidTemplate(f"unknown language '{language}'; use en or bn")
    if not body.strip():
        raise InvalidTemplate("the template body is empty")
    validate_template_text(body)
    validate_template_text(subject)
    wording = {"body": body.strip(), "subject": subject.strip(), "is_active": is_active}
    with transaction.atomic():
        key: dict[str, Any] = {"operator": operator, "event": event, "channel": channel, "language": language}
        previous = MessageTemplate.objects.select_for_update().filter(**key).values(*wording).first() or {}
        template, _created = MessageTemplate.objects.update_or_create(**key, defaults=wording)
        changed = [name for name, value in wording.items() if previous.get(name) != value]
        audit(
            operator=operator,
            action="notifications.template_save",
            actor=actor,
            template=template.pk,
            template_event=event,
            channel=channel,
            language=language,
            active=is_active,
            body=template.body,
            before={name: previous[name] for name in changed if name in previous},
            after={name: wording[name] for name in changed},
        )
    return template


def notification_settings_save(
    *,
    operator: Operator,
    quiet_hours_enabled: bool | None = None,
    quiet_start: dt.time | None = None,
    quiet_end: dt.time | None = None,
    default_language: str | None = None,
    default_channels: Sequence[str] | None = None,
    muted_events: Sequence[str] | None = None,
    portal_url: str | None = None,
    payment_instructions: str | None = None,
    actor: User | None = None,
) -> NotificationSettings:
    if default_language is not None and default_language not in Language.values:
        raise NotificationError(f"unknown language '{default_language}'; use en or bn")
    if default_channels is not None and not set(default_channels) <= set(Channel.values):
        raise NotificationError(f"unknown channel in {list(default_channels)}; use {', '.join(Channel.values)}")
    if muted_events is not None and not set(muted_events) <= set(Event.values):
        raise UnknownEvent(f"unknown event in {list(muted_events)}")
    changes = {
        "quiet_hours_enabled": quiet_hours_enabled,
        "quiet_start": quiet_start,
        "quiet_end": quiet_end,
        "default_language": default_language,
        "default_channels": list(default_channels) if default_channels is not None else None,
        "muted_events": list(muted_events) if muted_events is not None else None,
        "portal_url": portal_url,
        "payment_instructions": payment_instructions.strip() if payment_instructions is not None else None,
    }
    given = {k: v for k, v in changes.items() if v is not None}
    with transaction.atomic():
        previous = NotificationSettings.objects.select_for_update().filter(operator=operator).values(*given).first()
        found, _created = NotificationSettings.objects.update_or_create(operator=operator, defaults=given)
        changed = [name for name, value in given.items() if previous is None or previous[name] != value]
        audit(
            operator=operator,
            action="notifications.settings_save",
            actor=actor,
            changes="; ".join(f"{name}={value}" for name, value in sorted(given.items())),
            before={name: previous[name] for name in changed} if previous is not None else {},
            after={name: given[name] for name in changed},
        )
    return found


def subscriber_preference_save(
    *, subscriber: Subscriber, language: str | None = None, muted_channels: Sequence[str] | None = None
) -> SubscriberPreference:
    if language is not None and language not in (*Language.values, ""):
        raise NotificationError(f"unknown language '{language}'; use en or bn")
    if muted_channels is not None and not set(muted_channels) <= set(Channel.values):
        raise NotificationError(f"unknown channel in {list(muted_channels)}")
    changes: dict[str, Any] = {}
    if language is not None:
        changes["language"] = language
    if muted_channels is not None:
        changes["muted_channels"] = list(muted_channels)
    preference, _created = SubscriberPreference.objects.update_or_create(subscriber=subscriber, defaults=changes)
    return preference
