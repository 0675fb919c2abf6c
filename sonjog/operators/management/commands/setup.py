"""`sonjog setup`: the first run of a real ISP. Creates the root ISP with its settings and its first
owner login, asking for each value (with a default) or, with `--no-input`, taking them from flags.

Bad input ends it before anything is written: one line naming the flag, exit code 2."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.management.base import CommandParser

from sonjog.core.cli import SonjogCommand, to_json, usage_error
from sonjog.operators.exceptions import OperatorError
from sonjog.operators.forms import OperatorSettingsForm, OwnerForm
from sonjog.operators.models import BillingCycle, BillingMode, Operator
from sonjog.operators.services import root_isp_setup

PASSWORD_ENVIRONMENT = "SONJOG_OWNER_PASSWORD"

# Form field -> its flag, in the order the questions are asked.
FLAGS = {
    "name": "--name",
    "code": "--code",
    "currency": "--currency",
    "time_zone": "--time-zone",
    "phone_country": "--phone-country",
    "customer_id_prefix": "--customer-id-prefix",
    "customer_id_infix": "--customer-id-infix",
    "customer_id_postfix": "--customer-id-postfix",
    "customer_id_digits": "--customer-id-digits",
    "billing_mode": "--billing-mode",
    "billing_cycle": "--billing-cycle",
    "billing_day": "--billing-day",
    "due_days": "--due-days",
    "grace_days": "--grace-days",
    "vat_rate": "--vat-rate",
    "vat_inclusive": "--vat-inclusive/--vat-exclusive",
    "bin_number": "--bin",
    "document_address": "--address",
    "document_phone": "--phone",
    "owner_username": "--owner-username",
    "owner_password": "--owner-password",
    "owner_email": "--owner-email",
}
REQUIRED = ("name", "code", "owner_username", "owner_password")
HELP = {
    "billing_mode": ", ".join(BillingMode.values),
    "billing_cycle": ", ".join(BillingCycle.values),
    "owner_password": f"the owner's password; --owner-password-stdin or {PASSWORD_ENVIRONMENT} keep it out of the "
    "process list",
}


def _default(form_class: type[OperatorSettingsForm], name: str) -> str:
    value = form_class.base_fields[name].initial
    return "" if value is None else str(value)


class Command(SonjogCommand):
    help = (
        "Set up a real ISP: its root operator (name, code, currency, time zone, customer-ID format, "
        "billing, VAT and document details) and its first owner login. Asks for each value; with "
        "--no-input takes them from the flags. A second root ISP needs --another-root."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-input",
            "--noinput",
            action="store_false",
            dest="interactive",
            help="ask nothing: take every value from the flags (--name, --code, --owner-username and "
            "--owner-password are then required)",
        )
        for name, flag in FLAGS.items():
            if name == "vat_inclusive":
                continue
            parser.add_argument(flag, dest=name, default=None, help=HELP.get(name))
        prices = parser.add_mutually_exclusive_group()
        prices.add_argument("--vat-inclusive", dest="vat_inclusive", action="store_const", const="inclusive")
        prices.add_argument("--vat-exclusive", dest="vat_inclusive", action="store_const", const="exclusive")
        parser.add_argument(
            "--owner-password-stdin",
            action="store_true",
            help="read the owner's password from the first line of standard input",
        )
        parser.add_argument(
            "--another-root",
            action="store_true",
            help="create one more root ISP in a database that has one already (hosting companies)",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["another_root"]:
            existing = Operator.objects.filter(parent__isnull=True).order_by("pk").first()
            if existing is not None:
                raise usage_error(
                    f"a root ISP already exists ({existing.name}, code {existing.code}); resellers are created "
                    "under it on the Operators page. To run another ISP in this database, add --another-root"
                )
        if options["owner_password_stdin"]:
            if options["owner_password"] is not None:
                raise usage_error("argument --owner-password-stdin: give the password one way only")
            options["owner_password"] = sys.stdin.readline().rstrip("\r\n")
        elif options["owner_password"] is None and os.environ.get(PASSWORD_ENVIRONMENT):
            options["owner_password"] = os.environ[PASSWORD_ENVIRONMENT]
        if options["interactive"]:
            settings_form, owner_form = self._ask(options)
        else:
            missing = [FLAGS[name] for name in REQUIRED if not options.get(name)]
            if missing:
                raise usage_error(f"argument {missing[0]} is required with --no-input")
            settings_form, owner_form = self._forms(options)
            self._refuse_errors(settings_form, owner_form)
        owner_data = owner_form.cleaned_data
        try:
            owner = root_isp_setup(
                code=settings_form.cleaned_data["code"],
                owner_username=owner_data["owner_username"],
                owner_password=owner_data["owner_password"],
                owner_email=owner_data.get("owner_email") or "",
                another_root=options["another_root"],
                **settings_form.settings(),
            )
        except OperatorError as error:
            raise usage_error(str(error)) from None
        operator = owner.operator
        if options["json"]:
            self.stdout.write(
                to_json(
                    {
                        "operator_id": operator.pk,
                        "code": operator.code,
                        "name": operator.name,
                        "currency": operator.currency,
                        "time_zone": operator.time_zone,
                        "owner": owner.user.username,
                    }
                )
            )
        else:
            self.stdout.write(
                f"{operator.name} ({operator.code}) is set up. Its owner {owner.user.username} signs in to the "
                "console at /login/ and adds resellers, staff, routers and packages from there."
            )

    def _data(self, options: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in FLAGS:
            value = options.get(name)
            if value is None:
                value = "" if name.startswith("owner_") else _default(OperatorSettingsForm, name)
            data[name] = value
        return data

    def _forms(self, options: dict[str, Any]) -> tuple[OperatorSettingsForm, OwnerForm]:
        data = self._data(options)
        return OperatorSettingsForm(data), OwnerForm(data)

    def _refuse_errors(self, settings_form: OperatorSettingsForm, owner_form: OwnerForm) -> None:
        for form in (settings_form, owner_form):
            if form.is_valid():
                continue
            for name in FLAGS:
                if name in form.errors:
                    raise usage_error(f"argument {FLAGS[name]}: {' '.join(str(each) for each in form.errors[name])}")
            raise usage_error(" ".join(str(each) for each in form.non_field_errors()))

    def _ask(self, options: dict[str, Any]) -> tuple[OperatorSettingsForm, OwnerForm]:
        """Ask for every value not given as a flag (Enter keeps the default in brackets), then ask
        again for those the rules refuse, until all are valid."""
        data = self._data(options)
        asked = [name for name in FLAGS if options.get(name) is None]
        while True:
            for name in asked:
                data[name] = self._question(name, data[name])
            settings_form, owner_form = OperatorSettingsForm(data), OwnerForm(data)
            valid = settings_form.is_valid() & owner_form.is_valid()
            if valid:
                return settings_form, owner_form
            asked = []
            for form in (settings_form, owner_form):
                for name, errors in form.errors.items():
                    if name in FLAGS:
                        self.stderr.write(f"{self._label(name)}: {' '.join(str(each) for each in errors)}")
                        asked.append(name)
            if not asked:
                raise usage_error(
                    " ".join(str(each) for form in (settings_form, owner_form) for each in form.non_field_errors())
                )

    def _label(self, name: str) -> str:
        form_class = OwnerForm if name.startswith("owner_") else OperatorSettingsForm
        return str(form_class.base_fields[name].label)

    def _question(self, name: str, default: str) -> str:
        label = self._label(name)
        if name == "owner_password":
            while True:
                first = getpass.getpass(f"{label}: ")
                if first == getpass.getpass(f"{label} (again): "):
                    return first
                self.stderr.write("The two passwords differ; type it again.")
        if name == "vat_inclusive":
            label = f"{label} (inclusive or exclusive)"
        elif name == "billing_mode":
            label = f"{label} ({', '.join(BillingMode.values)})"
        elif name == "billing_cycle":
            label = f"{label} ({', '.join(BillingCycle.values)})"
        answer = input(f"{label} [{default}]: " if default else f"{label}: ").strip()
        return answer or default
