"""Message wording: `{{ variable }}` templates, the built-in English and Bangla defaults, and the values
the variables take for a subscriber.

Why not Django's template engine: operators write these templates, and Django templates are a small
language (tags such as {% debug %}, {% include %}, {% load %}, attribute and method access on whatever
the context holds). Sandboxing that means a custom engine without builtins and a context of plain
strings, and even then auto-escaping would turn "&" into "&amp;" in an SMS. A message needs none of
it: a closed set of names substituted into plain text. Unknown names are refused when a template is
saved, so rendering never fails at send time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sonjog.core.money import format_money
from sonjog.notifications.exceptions import InvalidTemplate
from sonjog.notifications.models import Event, Language

VARIABLES = (
    "name",
    "customer_id",
    "amount_due",
    "due_date",
    "package",
    "expiry",
    "payment_amount",
    "balance",
    "portal_link",
    "how_to_pay",
    "operator_name",
    "otp",
    "pppoe_username",
    "pppoe_password",
)

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def template_variables(text: str) -> list[str]:
    return _PLACEHOLDER.findall(text)


def validate_template_text(text: str) -> None:
    unknown = sorted({name for name in template_variables(text) if name not in VARIABLES})
    if unknown:
        raise InvalidTemplate(
            f"unknown variable(s) {', '.join(unknown)}; use any of {', '.join('{{ ' + v + ' }}' for v in VARIABLES)}"
        )


def render_text(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), ""), text)


@dataclass(frozen=True)
class Wording:
    subject: str
    body: str


# Built-in wording, used when the operator has not written its own. SMS-length on purpose.
DEFAULT_WORDING: dict[tuple[str, str], Wording] = {
    (Event.WELCOME, Language.ENGLISH): Wording(
        "Welcome to {{ operator_name }}",
        "Welcome to {{ operator_name }}, {{ name }}! Your customer ID is {{ customer_id }}, "
        "package {{ package }}. {{ portal_link }}",
    ),
    (Event.WELCOME, Language.BANGLA): Wording(
        "{{ operator_name }}-এ স্বাগতম",
        "{{ operator_name }}-এ স্বাগতম, {{ name }}! আপনার গ্রাহক আইডি {{ customer_id }}, "
        "প্যাকেজ {{ package }}। {{ portal_link }}",
    ),
    (Event.BILL_GENERATED, Language.ENGLISH): Wording(
        "Your bill from {{ operator_name }}",
        "Dear {{ name }}, your bill of {{ amount_due }} is due on {{ due_date }}. "
        "Customer ID {{ customer_id }}. {{ operator_name }}",
    ),
    (Event.BILL_GENERATED, Language.BANGLA): Wording(
        "{{ operator_name }} থেকে আপনার বিল",
        "প্রিয় {{ name }}, আপনার বিল {{ amount_due }}, পরিশোধের শেষ তারিখ {{ due_date }}। "
        "গ্রাহক আইডি {{ customer_id }}। {{ operator_name }}",
    ),
    (Event.PAYMENT_RECEIVED, Language.ENGLISH): Wording(
        "Payment received",
        "Thank you, {{ name }}. We received {{ payment_amount }}. Amount due now: {{ balance }}. {{ operator_name }}",
    ),
    (Event.PAYMENT_RECEIVED, Language.BANGLA): Wording(
        "পেমেন্ট পাওয়া গেছে",
        "ধন্যবাদ, {{ name }}। আমরা {{ payment_amount }} পেয়েছি। বর্তমান বকেয়া {{ balance }}। {{ operator_name }}",
    ),
    (Event.ACTIVATION, Language.ENGLISH): Wording(
        "Your connection is active",
        "{{ name }}, your internet connection ({{ package }}) is now active. {{ operator_name }}",
    ),
    (Event.ACTIVATION, Language.BANGLA): Wording(
        "আপনার সংযোগ চালু হয়েছে",
        "{{ name }}, আপনার ইন্টারনেট সংযোগ ({{ package }}) চালু হয়েছে। {{ operator_name }}",
    ),
    (Event.SUSPENSION, Language.ENGLISH): Wording(
        "Your connection is suspended",
        "{{ name }}, your connection is suspended for an unpaid {{ amount_due }}. "
        "Please pay to reconnect. {{ how_to_pay }} {{ operator_name }}",
    ),
    (Event.SUSPENSION, Language.BANGLA): Wording(
        "আপনার সংযোগ সাময়িকভাবে বন্ধ",
        "{{ name }}, {{ amount_due }} বকেয়া থাকায় আপনার সংযোগ সাময়িকভাবে বন্ধ করা হয়েছে। "
        "আবার চালু করতে বিল পরিশোধ করুন। {{ how_to_pay }} {{ operator_name }}",
    ),
    (Event.REACTIVATION, Language.ENGLISH): Wording(
        "Your connection is active again",
        "{{ name }}, your connection is active again. Thank you! {{ operator_name }}",
    ),
    (Event.REACTIVATION, Language.BANGLA): Wording(
        "আপনার সংযোগ আবার চালু",
        "{{ name }}, আপনার সংযোগ আবার চালু হয়েছে। ধন্যবাদ! {{ operator_name }}",
    ),
    (Event.PACKAGE_CHANGE, Language.ENGLISH): Wording(
        "Your package has changed",
        "{{ name }}, your package is now {{ package }}. {{ operator_name }}",
    ),
    (Event.PACKAGE_CHANGE, Language.BANGLA): Wording(
        "আপনার প্যাকেজ পরিবর্তন",
        "{{ name }}, আপনার প্যাকেজ পরিবর্তন করে {{ package }} করা হয়েছে। {{ operator_name }}",
    ),
    (Event.DUE_REMINDER, Language.ENGLISH): Wording(
        "Payment reminder",
        "Reminder: {{ name }}, {{ amount_due }} is due on {{ due_date }} (ID {{ customer_id }}). "
        "Please pay to stay connected. {{ operator_name }}",
    ),
    (Event.DUE_REMINDER, Language.BANGLA): Wording(
        "বিল পরিশোধের অনুস্মারক",
        "{{ name }}, অনুগ্রহ করে {{ due_date }} তারিখের মধ্যে {{ amount_due }} পরিশোধ করুন "
        "(আইডি {{ customer_id }})। {{ operator_name }}",
    ),
    (Event.PREPAID_EXPIRY, Language.ENGLISH): Wording(
        "Your package expires soon",
        "{{ name }}, your package {{ package }} expires on {{ expiry }}. Recharge to stay connected. "
        "{{ operator_name }}",
    ),
    (Event.PREPAID_EXPIRY, Language.BANGLA): Wording(
        "প্যাকেজের মেয়াদ শেষ হচ্ছে",
        "{{ name }}, আপনার প্যাকেজ {{ package }}-এর মেয়াদ {{ expiry }} তারিখে শেষ হবে। "
        "সংযোগ চালু রাখতে রিচার্জ করুন। {{ operator_name }}",
    ),
    (Event.OTP, Language.ENGLISH): Wording(
        "Your verification code",
        "Your {{ operator_name }} code is {{ otp }}. Do not share it with anyone.",
    ),
    (Event.OTP, Language.BANGLA): Wording(
        "আপনার যাচাই কোড",
        "আপনার {{ operator_name }} কোড {{ otp }}। কাউকে জানাবেন না।",
    ),
    (Event.PPPOE_PASSWORD, Language.ENGLISH): Wording(
        "Your internet login",
        "{{ name }}, your internet login is {{ pppoe_username }}, password {{ pppoe_password }}. "
        "Do not share it. {{ operator_name }}",
    ),
    (Event.PPPOE_PASSWORD, Language.BANGLA): Wording(
        "আপনার ইন্টারনেট লগইন",
        "{{ name }}, আপনার ইন্টারনেট লগইন {{ pppoe_username }}, পাসওয়ার্ড {{ pppoe_password }}। "
        "কাউকে জানাবেন না। {{ operator_name }}",
    ),
}


def money_text(amount: Decimal, currency: str, as_code: bool = False) -> str:
    """The operator's money format, or with the ISO code instead of the symbol (see `render`)."""
    return f"{currency} {amount:,.2f}" if as_code else format_money(amount, currency)


def date_text(value: dt.date | dt.datetime, time_zone: str, language: str) -> str:
    if isinstance(value, dt.datetime):
        value = value.astimezone(ZoneInfo(time_zone)).date()
    # Day/month/year digits read the same in a Bangla sentence; English month names would not.
    return value.strftime("%d/%m/%Y") if language == Language.BANGLA else value.strftime("%d %b %Y")


def format_values(
    raw: Mapping[str, Any], *, currency: str, time_zone: str, language: str, money_as_code: bool = False
) -> dict[str, str]:
    """Turn raw values (Decimals, dates, strings) into the text each variable shows."""
    values: dict[str, str] = {}
    for name, value in raw.items():
        if value is None:
            values[name] = ""
        elif isinstance(value, Decimal):
            values[name] = money_text(value, currency, money_as_code)
        elif isinstance(value, dt.date):
            values[name] = date_text(value, time_zone, language)
        else:
            values[name] = str(value)
    return values
