"""Messaging: templates with a live preview, bulk SMS (preview first, then confirm), provider accounts
and SMS credit, the delivery log and one message's detail.

The configuration pages act for one operator: the login's own, or, for a login that sees a subtree,
any operator in it named with ?operator=<id> (anything else is 404). Rows named by id (a template, an
account, a bulk send, a message) are read through `Scope.get_or_404` and act for their own operator.
Every write is one call of a notifications service.

The modules: `base` (the operator a page acts for, shared context), `templates`, `bulk`,
`providers` (accounts, credit and settings) and `log` (the delivery log and one message); each
imports only `base`. `console/urls.py` names the views through this package.
"""

from __future__ import annotations

from sonjog.console.views.messaging.bulk import bulk_result_view, bulk_view
from sonjog.console.views.messaging.log import log_view, message_resend_view, message_view
from sonjog.console.views.messaging.providers import (
    account_active_view,
    account_create_view,
    account_edit_view,
    credit_add_view,
    credit_resend_view,
    credit_threshold_view,
    notification_settings_view,
    settings_view,
)
from sonjog.console.views.messaging.templates import (
    template_edit_view,
    template_preview_view,
    template_view,
    templates_view,
)

__all__ = [
    "account_active_view",
    "account_create_view",
    "account_edit_view",
    "bulk_result_view",
    "bulk_view",
    "credit_add_view",
    "credit_resend_view",
    "credit_threshold_view",
    "log_view",
    "message_resend_view",
    "message_view",
    "notification_settings_view",
    "settings_view",
    "template_edit_view",
    "template_preview_view",
    "template_view",
    "templates_view",
]
