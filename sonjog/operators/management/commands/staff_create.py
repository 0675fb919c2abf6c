"""`sonjog staff_create`: a staff login for an operator, with a role, from the command line.

Without a password (`--password-stdin`, SONJOG_STAFF_PASSWORD or `--password`, which the process
list shows) one is generated and printed once; it is stored only as its hash. Bad input (an unknown
operator or role, a taken username, a weak password) ends the command before anything is written:
one line, exit code 2."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandParser

from sonjog.core.cli import SonjogCommand, column_arg, text_arg, to_json, usage_error
from sonjog.operators.exceptions import OperatorError
from sonjog.operators.models import Operator, Staff, StaffRole
from sonjog.operators.services import password_generate, staff_create

PASSWORD_ENVIRONMENT = "SONJOG_STAFF_PASSWORD"


class Command(SonjogCommand):
    help = (
        "Create a staff login for an operator with a role. Prints a generated password once unless "
        f"--password-stdin (or {PASSWORD_ENVIRONMENT}, or --password) gives one."
    )
    # call_command(..., stdin=StringIO(...)) in tests, sys.stdin otherwise.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--operator", required=True, help="the operator's code", type=column_arg(Operator, "code"))
        parser.add_argument("--username", required=True, type=text_arg(150))
        parser.add_argument("--role", required=True, help=", ".join(StaffRole.values), type=text_arg(20))
        parser.add_argument(
            "--password",
            type=text_arg(128),
            help=f"the login's password; --password-stdin or {PASSWORD_ENVIRONMENT} keep it out of the process list",
        )
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from the first line of standard input"
        )
        parser.add_argument("--email", default="", type=text_arg(254))
        parser.add_argument("--name", default="", help="the person's name", type=text_arg(150))
        parser.add_argument("--phone", default="", type=column_arg(Staff, "phone"))
        parser.add_argument(
            "--own-operator-only",
            action="store_true",
            help="the login sees its own operator only, not the operator's resellers",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        operator = Operator.objects.filter(code=options["operator"]).first()
        if operator is None:
            raise usage_error(f"no operator with code '{options['operator']}'")
        if options["role"] not in StaffRole.values:
            raise usage_error(f"unknown role '{options['role']}'; use one of {', '.join(StaffRole.values)}")
        if options["password_stdin"]:
            if options["password"]:
                raise usage_error("argument --password-stdin: give the password one way only")
            stdin = options.get("stdin") or sys.stdin
            password = stdin.readline().rstrip("\r\n")
            if not password:
                raise usage_error("argument --password-stdin: standard input has no password")
        else:
            password = options["password"] or os.environ.get(PASSWORD_ENVIRONMENT, "")
        generated = not password
        if generated:
            password = password_generate()
        try:
            staff = staff_create(
                operator=operator,
                username=options["username"],
                password=password,
                role=options["role"],
                email=options["email"],
                name=options["name"],
                phone=options["phone"],
                sees_subtree=not options["own_operator_only"],
            )
        except OperatorError as error:
            raise usage_error(str(error)) from None
        user: User = staff.user
        data = {
            "staff_id": staff.pk,
            "username": user.username,
            "operator": operator.code,
            "role": staff.role,
            "password": password if generated else None,
        }
        if options["json"]:
            self.stdout.write(to_json(data))
            return
        self.stdout.write(f"Created {user.username} ({StaffRole(staff.role).label}) for {operator.code}")
        if generated:
            self.stdout.write(f"Password (shown once, not stored): {password}")
