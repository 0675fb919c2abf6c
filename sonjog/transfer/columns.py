"""What an imported row can carry, and the column names other systems' exports use for it.

The names are those of the subscriber lists ISPBills, phpnuxbill and Splynx export, and of plain
spreadsheets people keep; matching ignores case, spaces, dots, dashes and underscores. Whatever is
guessed is shown on screen (and in `--json`) and can be changed before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Field:
    key: str
    label: str | Promise
    aliases: tuple[str, ...]
    required: bool = False


FIELDS: tuple[Field, ...] = (
    Field("customer_id", _("Customer ID"), ("customer id", "customer code", "client id", "subscriber id", "id", "cid")),
    Field(
        "name", _("Name"), ("name", "full name", "fullname", "customer name", "client name", "subscriber name"), True
    ),
    Field(
        "phone",
        _("Phone"),
        (
            "phone",
            "mobile",
            "mobile no",
            "mobile number",
            "phone number",
            "phonenumber",
            "contact",
            "contact no",
            "cell",
        ),
        True,
    ),
    Field("email", _("E-mail"), ("email", "e-mail", "mail", "email address")),
    Field("address", _("Address"), ("address", "street", "location", "house", "full address")),
    Field("national_id", _("National ID"), ("nid", "national id", "nid number", "nid no")),
    Field("zone", _("Zone"), ("zone", "area", "zone name", "region", "sub zone")),
    Field(
        "package",
        _("Package"),
        (
            "package",
            "package name",
            "plan",
            "plan name",
            "tariff",
            "tariff plans",
            "internet plan",
            "namebp",
            "profile",
        ),
        True,
    ),
    Field(
        "pppoe_username",
        _("PPPoE username"),
        ("pppoe username", "pppoe user", "username", "user name", "login", "pppoe id", "user id", "name on router"),
    ),
    Field("pppoe_password", _("PPPoE password"), ("pppoe password", "password", "pppoe pass", "secret")),
    Field(
        "activation_date",
        _("Activation date"),
        (
            "activation date",
            "connection date",
            "join date",
            "joining date",
            "start date",
            "registration date",
            "created",
            "created at",
            "date add",
            "date added",
        ),
    ),
    Field("status", _("Status"), ("status", "service status", "state", "connection status")),
    Field(
        "opening_balance",
        _("Opening balance"),
        (
            "opening balance",
            "balance",
            "due",
            "due amount",
            "total due",
            "outstanding",
            "account balance",
            "previous due",
        ),
    ),
)
FIELD_KEYS = tuple(field.key for field in FIELDS)
REQUIRED = tuple(field.key for field in FIELDS if field.required)


def _squeeze(name: str) -> str:
    return re.sub(r"[\s._\-/]+", "", name.strip().lower())


def guess_mapping(header: list[str]) -> dict[str, str]:
    """Field key -> the column that holds it, for every field a column's name matches; each column
    is used once, the first (most specific) alias winning."""
    by_name = {_squeeze(column): column for column in header}
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for field in FIELDS:
        for alias in field.aliases:
            column = by_name.get(_squeeze(alias))
            if column is not None and column not in used:
                mapping[field.key] = column
                used.add(column)
                break
    return mapping


def mapping_problems(header: list[str], mapping: dict[str, str], required: tuple[str, ...] = REQUIRED) -> list[str]:
    """What is wrong with a mapping as a whole: an unknown field or column, a column used twice, a
    required field left out."""
    problems = []
    for key, column in mapping.items():
        if key not in FIELD_KEYS:
            problems.append(f"'{key}' is not a field (fields: {', '.join(FIELD_KEYS)})")
        elif column not in header:
            problems.append(f"the file has no column '{column}' for {key}")
    columns = [column for column in mapping.values()]
    for column in sorted({column for column in columns if columns.count(column) > 1}):
        problems.append(f"the column '{column}' is mapped to more than one field")
    for key in required:
        if key not in mapping:
            problems.append(f"no column is mapped to {key}")
    return problems
