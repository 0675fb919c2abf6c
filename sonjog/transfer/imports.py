"""Bringing subscribers in: a file (CSV/XLSX) or a MikroTik router's PPP secrets becomes an import
batch; the dry run checks every row and names each problem; the import writes the subscribers and
their opening balances; an undo removes a batch while nothing else has touched it (ADR 0014).

What an import does and does not do, so that 5,000 people who already have service notice nothing:
- it sends no message (no welcome SMS) and queues no router command: the subscribers are on the
  routers already (a MikroTik import reads them from there). `network_diff` shows what differs and
  `network_reconcile` (or the Routers page) makes the routers follow Sonjog, when the operator says so;
- the old system billed them until now: each subscriber is billed by Sonjog from the next period
  (`billing_from="next"`, the default), from the current one (`"current"`: the next generation run
  bills it), or from a given day; what they owed or had in credit comes in as an opening balance.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from sonjog.billing.models import LedgerEntry
from sonjog.billing.services.opening import OpeningBalance, opening_balances_record, opening_balances_remove
from sonjog.billing.terms import operator_today, terms_for
from sonjog.catalog.models import Package
from sonjog.core.audit import audit
from sonjog.core.models import AuditEvent
from sonjog.core.periods import add_months, nominal_period
from sonjog.customers.exceptions import InvalidPhone, SubscriberError
from sonjog.customers.imported import ImportedSubscriber, subscribers_import_register, subscribers_import_remove
from sonjog.customers.models import ServiceIntent, Subscriber, SubscriberAddOn, Zone
from sonjog.customers.phone import normalize_phone
from sonjog.customers.services import zone_create
from sonjog.network import router_io
from sonjog.network.models import DriverKind, OutboxCommand, Router
from sonjog.notifications.models import Message
from sonjog.operators.models import Operator
from sonjog.transfer.columns import REQUIRED, guess_mapping, mapping_problems
from sonjog.transfer.exceptions import ImportHasProblems, TransferError
from sonjog.transfer.models import ImportBatch, ImportedRow
from sonjog.transfer.tables import parse_date, parse_money, read_table
from sonjog.transfer.tasks import import_apply_job

CHUNK = 1000
BILLING_FROM = ("next", "current")
BALANCE_SIGNS = ("owes", "credit")

_STATUS_WORDS = {
    ServiceIntent.ACTIVE: {"", "active", "enabled", "enable", "on", "yes", "1", "online", "running", "paid", "live"},
    ServiceIntent.SUSPENDED: {"suspended", "suspend", "blocked", "block", "expired", "due", "locked", "limited"},
    ServiceIntent.DISABLED: {"disabled", "disable", "off", "no", "0", "inactive", "new", "pending", "free"},
}
_TERMINATED_WORDS = {"terminated", "closed", "deleted", "cancelled", "canceled", "left", "archived"}
_USERNAME = re.compile(r"^[^\s]{1,64}$")
_PHONE_IN_TEXT = re.compile(r"(?:\+?880|0)1[3-9]\d{8}")


@dataclass(frozen=True)
class RowProblem:
    row: int  # the row number as a spreadsheet shows it: the header is row 1
    field: str
    message: str


@dataclass
class CheckResult:
    """The dry run: every row's problems, and what would be written if there were none."""

    total: int
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    zones_to_create: list[str] = field(default_factory=list)
    ready: list[tuple[int, ImportedSubscriber, Decimal]] = field(default_factory=list)
    by_status: dict[str, int] = field(default_factory=dict)
    owed: Decimal = Decimal("0.00")
    credit: Decimal = Decimal("0.00")

    @property
    def rows_with_problems(self) -> int:
        return len({problem.row for problem in self.problems})

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.total,
            "rows_with_problems": self.rows_with_problems,
            "problems": [problem.__dict__ for problem in self.problems],
            "warnings": [warning.__dict__ for warning in self.warnings],
            "zones_to_create": self.zones_to_create,
            "would_create": len(self.ready) if not self.problems else 0,
            "by_status": self.by_status,
            "opening_owed": str(self.owed),
            "opening_credit": str(self.credit),
        }


def batch_from_file(
    *, operator: Operator, file_name: str, data: bytes, actor: User | None = None, save: bool = True
) -> ImportBatch:
    """Read the file into a draft batch (kept unless `save` is off: a dry run from the command line
    writes nothing), with the columns matched to fields as well as their names allow."""
    header, rows = read_table(file_name, data)
    batch = ImportBatch(
        operator=operator,
        source=ImportBatch.Source.FILE,
        file_name=file_name[:200],
        header=header,
        rows=rows,
        mapping=guess_mapping(header),
        options=default_options(),
        total=len(rows),
        created_by=_person(actor),
    )
    if save:
        batch.save()
    return batch


_SECRET_COLUMNS = ["name", "password", "profile", "comment", "disabled", "remote-address"]


def batch_from_router(
    *, router: Router, operator: Operator, actor: User | None = None, save: bool = True
) -> ImportBatch:
    """Read the router's PPP secrets into a draft batch for `operator`: the user name and password as
    they are, the profile as the package, the comment as the name (a phone number in it becomes the
    phone), a disabled secret as a disabled subscriber."""
    if router.driver != DriverKind.MIKROTIK:
        raise TransferError(
            f"{router.name} uses the {router.get_driver_display()} driver; read secrets from a MikroTik"
        )
    try:
        secrets = router_io.ppp_secrets(router)
    except router_io.DriverError as error:
        raise TransferError(f"could not read the PPP secrets of {router.name}: {error}") from None
    if not secrets:
        raise TransferError(f"{router.name} has no PPP secrets")
    rows = [[str(secret.get(column, "")) for column in _SECRET_COLUMNS] for secret in secrets]
    batch = ImportBatch(
        operator=operator,
        source=ImportBatch.Source.MIKROTIK,
        file_name=f"{router.name} /ppp/secret"[:200],
        header=_SECRET_COLUMNS,
        rows=rows,
        mapping={
            "pppoe_username": "name",
            "pppoe_password": "password",
            "package": "profile",
            "name": "comment",
            "status": "disabled",
        },
        options={**default_options(), "router_id": router.pk},
        total=len(rows),
        created_by=_person(actor),
    )
    if save:
        batch.save()
    return batch


def default_options() -> dict[str, Any]:
    return {"billing_from": "next", "balance_sign": "owes", "create_zones": True}


def batch_configure(*, batch: ImportBatch, mapping: dict[str, str], options: dict[str, Any]) -> ImportBatch:
    """Set the mapping and the options of a draft batch; a TransferError names what is wrong."""
    if batch.status != ImportBatch.Status.DRAFT:
        raise TransferError(f"import #{batch.pk} is {batch.get_status_display().lower()}; upload the file again")
    mapping = {key: column for key, column in mapping.items() if column}
    problems = mapping_problems(batch.header, mapping, _required(batch))
    merged = {**default_options(), **batch.options, **options}
    problems += _option_problems(merged)
    if problems:
        raise TransferError("; ".join(problems))
    if batch.pk is not None:
        ImportBatch.objects.filter(pk=batch.pk).update(mapping=mapping, options=merged)
    batch.mapping, batch.options = mapping, merged
    return batch


def _required(batch: ImportBatch) -> tuple[str, ...]:
    # A router's secrets carry no phone: those rows come in without one (a warning names them).
    if batch.source == ImportBatch.Source.MIKROTIK:
        return tuple(key for key in REQUIRED if key not in ("phone", "name"))
    return REQUIRED


def _option_problems(options: dict[str, Any]) -> list[str]:
    problems = []
    billing_from = str(options.get("billing_from", ""))
    if billing_from not in BILLING_FROM:
        try:
            parse_date(billing_from)
        except ValueError:
            problems.append(f"billing_from must be next, current or a date, not '{billing_from}'")
    if options.get("balance_sign") not in BALANCE_SIGNS:
        problems.append(f"balance_sign must be owes or credit, not '{options.get('balance_sign')}'")
    return problems


def import_queue(*, batch: ImportBatch, actor: User | None = None) -> ImportBatch:
    """Hand a checked draft batch to the worker (`transfer.import_apply`), in this transaction; the
    page then shows its progress. Refused unless it is a draft."""
    with transaction.atomic():
        queued = ImportBatch.objects.filter(pk=batch.pk, status=ImportBatch.Status.DRAFT).update(
            status=ImportBatch.Status.QUEUED, error=""
        )
        if not queued:
            raise TransferError(f"import #{batch.pk} is not waiting to be imported")
        import_apply_job.defer(batch_id=batch.pk, actor_id=actor.pk if actor is not None else None)
    batch.refresh_from_db()
    return batch


def import_check(batch: ImportBatch, *, today: dt.date | None = None) -> CheckResult:
    """The dry run: check every row against the file itself and the database, write nothing."""
    operator = batch.operator
    today = today or operator_today(operator)
    problems = mapping_problems(batch.header, batch.mapping, _required(batch)) + _option_problems(batch.options)
    if problems:
        raise TransferError("; ".join(problems))
    column = {key: batch.header.index(name) for key, name in batch.mapping.items()}
    result = CheckResult(total=len(batch.rows))

    def cell(row: list[str], key: str) -> str:
        index = column.get(key)
        return row[index].strip() if index is not None and index < len(row) else ""

    packages = _packages_by_name(operator)
    zones = {zone.name.strip().lower(): zone for zone in Zone.objects.filter(operator=operator, parent=None)}
    router = Router.objects.filter(pk=batch.options.get("router_id")).first()
    rows = batch.rows
    file_usernames = Counter(cell(row, "pppoe_username").lower() for row in rows if cell(row, "pppoe_username"))
    file_ids = Counter(cell(row, "customer_id") for row in rows if cell(row, "customer_id"))
    phones: list[str | None] = []
    for row in rows:
        try:
            phones.append(normalize_phone(cell(row, "phone"), operator.phone_country) if cell(row, "phone") else None)
        except InvalidPhone:
            phones.append(None)
    file_phones = Counter(phone for phone in phones if phone)
    taken_usernames = _taken(Subscriber.objects.filter(pppoe_username__in=list(file_usernames)), "pppoe_username")
    taken_ids = set(Subscriber.objects.filter(customer_id__in=list(file_ids)).values_list("customer_id", flat=True))
    taken_phones = set(
        Subscriber.objects.filter(operator=operator, phone__in=list(file_phones))
        .exclude(service_intent=ServiceIntent.TERMINATED)
        .values_list("phone", flat=True)
    )
    sign = Decimal(-1) if batch.options.get("balance_sign") == "credit" else Decimal(1)
    new_zones: dict[str, Zone | None] = {}
    for index, row in enumerate(rows):
        number = index + 2
        row_problems: list[RowProblem] = []

        def problem(
            key: str, message: str, row_problems: list[RowProblem] = row_problems, number: int = number
        ) -> None:
            row_problems.append(RowProblem(number, key, message))

        name = cell(row, "name")
        phone_text = cell(row, "phone")
        if batch.source == ImportBatch.Source.MIKROTIK:
            found = _PHONE_IN_TEXT.search(name)
            if found and not phone_text:
                phone_text = found.group(0)
                name = (name[: found.start()] + name[found.end() :]).strip(" ,-;/")
            name = name or cell(row, "pppoe_username")
        if not name:
            problem("name", "the name is empty")
        elif len(name) > 200:
            problem("name", "the name is longer than 200 characters")
        phone = ""
        if phone_text:
            try:
                phone = normalize_phone(phone_text, operator.phone_country)
            except InvalidPhone as error:
                problem("phone", str(error))
            else:
                if file_phones[phone] > 1:
                    problem("phone", f"the phone {phone_text} is on {file_phones[phone]} rows of the file")
                elif phone in taken_phones:
                    problem("phone", f"the phone {phone_text} belongs to a subscriber already in Sonjog")
        elif batch.source == ImportBatch.Source.MIKROTIK:
            result.warnings.append(RowProblem(number, "phone", "no phone number: reminders cannot reach them"))
        else:
            problem("phone", "the phone is empty")
        package_text = cell(row, "package")
        package = packages.get(_squeeze(package_text))
        if not package_text:
            problem("package", "the package is empty")
        elif package is None:
            problem("package", f"unknown package '{package_text}' (packages: {_package_names(packages)})")
        username = cell(row, "pppoe_username")
        if username:
            if not _USERNAME.match(username):
                problem("pppoe_username", f"the PPPoE username '{username}' has spaces or is longer than 64")
            elif file_usernames[username.lower()] > 1:
                problem("pppoe_username", f"the PPPoE username '{username}' is on more than one row of the file")
            elif username.lower() in taken_usernames:
                problem("pppoe_username", f"the PPPoE username '{username}' is already in use")
        password = cell(row, "pppoe_password")
        if len(password) > 64:
            problem("pppoe_password", "the PPPoE password is longer than 64 characters")
        customer_id = cell(row, "customer_id")
        if customer_id:
            if len(customer_id) > 40:
                problem("customer_id", "the customer ID is longer than 40 characters")
            elif file_ids[customer_id] > 1:
                problem("customer_id", f"the customer ID {customer_id} is on more than one row of the file")
            elif customer_id in taken_ids:
                problem("customer_id", f"the customer ID {customer_id} is already in use")
        email = cell(row, "email")
        if email:
            try:
                validate_email(email)
            except ValidationError:
                problem("email", f"'{email}' is not an e-mail address")
        activation = today
        if cell(row, "activation_date"):
            try:
                activation = parse_date(cell(row, "activation_date"))
            except ValueError as error:
                problem("activation_date", str(error))
            else:
                if activation > today:
                    problem("activation_date", f"the activation date {activation:%d/%m/%Y} is in the future")
                elif activation.year < 1990:
                    problem("activation_date", f"the activation date {activation:%d/%m/%Y} is before 1990")
        status = cell(row, "status").lower()
        if batch.source == ImportBatch.Source.MIKROTIK:
            status = "disabled" if status in ("true", "yes") else ""
        intent = next((intent for intent, words in _STATUS_WORDS.items() if status in words), None)
        if status in _TERMINATED_WORDS:
            problem("status", f"'{cell(row, 'status')}': leave subscribers who left out of the file")
        elif intent is None:
            problem("status", f"unknown status '{cell(row, 'status')}' (use active, suspended or disabled)")
        balance = Decimal("0.00")
        if cell(row, "opening_balance"):
            try:
                balance = parse_money(cell(row, "opening_balance")) * sign
            except ValueError as error:
                problem("opening_balance", str(error))
        zone_text = cell(row, "zone")
        zone: Zone | None = None
        if zone_text:
            if len(zone_text) > 100:
                problem("zone", "the zone name is longer than 100 characters")
            else:
                zone = zones.get(zone_text.lower())
                if zone is None and not batch.options.get("create_zones"):
                    problem("zone", f"unknown zone '{zone_text}'")
                elif zone is None:
                    new_zones.setdefault(zone_text.lower(), None)
                    if zone_text not in result.zones_to_create and zone_text.lower() not in {
                        name.lower() for name in result.zones_to_create
                    }:
                        result.zones_to_create.append(zone_text)
        if row_problems:
            result.problems.extend(row_problems)
            continue
        assert package is not None and intent is not None
        result.by_status[intent] = result.by_status.get(intent, 0) + 1
        if balance > 0:
            result.owed += balance
        else:
            result.credit -= balance
        result.ready.append(
            (
                number,
                ImportedSubscriber(
                    name=name,
                    phone=phone,
                    package=package,
                    activation_date=activation,
                    intent=intent,
                    # The zone is found again (or created) when the batch is applied.
                    zone=zone,
                    email=email,
                    address=cell(row, "address")[:300],
                    national_id=cell(row, "national_id")[:30],
                    pppoe_username=username,
                    pppoe_password=password,
                    customer_id=customer_id,
                    router_id=router.pk if router is not None else None,
                    zone_name=zone_text if zone is None else "",
                ),
                balance,
            )
        )
    return result


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def _packages_by_name(operator: Operator) -> dict[str, Package]:
    """The operator's packages by name and by router profile (a MikroTik secret names its profile)."""
    found: dict[str, Package] = {}
    packages = list(Package.objects.filter(operator=operator).order_by("-is_active", "pk"))
    for package in packages:
        found.setdefault(_squeeze(package.router_profile), package)
    for package in packages:
        found[_squeeze(package.name)] = package
    return found


def _package_names(packages: dict[str, Package]) -> str:
    names = sorted({package.name for package in packages.values()})
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") if names else "none yet: create one first"


def _taken(queryset: Any, column: str) -> set[str]:
    return {value.lower() for value in queryset.values_list(column, flat=True)}


def _person(actor: User | None) -> User | None:
    return actor if actor is not None and actor.is_authenticated else None


def billing_start(operator: Operator, row: ImportedSubscriber, option: str, today: dt.date) -> dt.date:
    """The first day Sonjog bills this subscriber: the start of its next period (the old system billed
    the current one), of its current one, or the day given."""
    if option not in BILLING_FROM:
        return parse_date(option)
    terms = terms_for(operator, activation_date=row.activation_date)
    month = terms.period_month_of(today)
    if option == "next":
        month = add_months(month, 1)
    start, _end = nominal_period(month, terms.anchor_day)
    return max(start, row.activation_date)


Progress = Callable[[int, int], None]


def import_apply(
    *, batch: ImportBatch, actor: User | None = None, progress: Progress | None = None, today: dt.date | None = None
) -> ImportBatch:
    """Check the batch again and, when no row has a problem, write it in chunks of 1,000 rows (each
    its own transaction, the batch's progress moving after each): the subscribers, their opening
    balances, the zones the file names that do not exist yet. A chunk that fails leaves the batch
    `failed` with the rows written so far, which `import_undo` removes."""
    claimed = ImportBatch.objects.filter(
        pk=batch.pk, status__in=[ImportBatch.Status.DRAFT, ImportBatch.Status.QUEUED]
    ).update(status=ImportBatch.Status.RUNNING, done=0, error="")
    if not claimed:
        batch.refresh_from_db()
        raise TransferError(f"import #{batch.pk} is {batch.get_status_display().lower()}, not waiting to be imported")
    batch.refresh_from_db()
    operator = batch.operator
    today = today or operator_today(operator)
    try:
        result = import_check(batch, today=today)
        if result.problems:
            raise ImportHasProblems(result.rows_with_problems, result.total)
        with transaction.atomic():
            zones = _zones_make(operator, result.zones_to_create, actor)
        option = str(batch.options.get("billing_from", "next"))
        done = 0
        for start in range(0, len(result.ready), CHUNK):
            chunk = result.ready[start : start + CHUNK]
            with transaction.atomic():
                rows = [
                    dataclasses.replace(
                        _with_zone(row, zones), billing_starts_on=billing_start(operator, row, option, today)
                    )
                    for _number, row, _balance in chunk
                ]
                subscribers = subscribers_import_register(operator=operator, rows=rows)
                ImportedRow.objects.bulk_create(
                    ImportedRow(batch=batch, row_number=number, subscriber=subscriber)
                    for (number, _row, _balance), subscriber in zip(chunk, subscribers, strict=True)
                )
                written = opening_balances_record(
                    balances=[
                        OpeningBalance(subscriber, balance)
                        for (_number, _row, balance), subscriber in zip(chunk, subscribers, strict=True)
                    ],
                    day=today,
                    memo=f"Opening balance (import #{batch.pk})",
                    actor=actor,
                )
                done += len(chunk)
                ImportBatch.objects.filter(pk=batch.pk).update(
                    done=done,
                    created=done,
                    opening_balances=batch.opening_balances + written,
                )
                batch.opening_balances += written
            if progress is not None:
                progress(done, len(result.ready))
        with transaction.atomic():
            ImportBatch.objects.filter(pk=batch.pk).update(status=ImportBatch.Status.APPLIED, applied_at=timezone.now())
            audit(
                operator=operator,
                action="import.apply",
                actor=actor,
                batch=batch.pk,
                file=batch.file_name,
                created=done,
                opening_balances=batch.opening_balances,
                zones_created=len(zones),
            )
    except (TransferError, SubscriberError, ValueError) as error:
        ImportBatch.objects.filter(pk=batch.pk).update(
            status=ImportBatch.Status.DRAFT if isinstance(error, ImportHasProblems) else ImportBatch.Status.FAILED,
            error=str(error)[:2000],
        )
        batch.refresh_from_db()
        if isinstance(error, TransferError):
            raise
        raise TransferError(str(error)) from None
    batch.refresh_from_db()
    return batch


def _zones_make(operator: Operator, names: Iterable[str], actor: User | None) -> dict[str, Zone]:
    zones = {zone.name.strip().lower(): zone for zone in Zone.objects.filter(operator=operator, parent=None)}
    for name in names:
        if name.lower() not in zones:
            zones[name.lower()] = zone_create(operator=operator, name=name, actor=actor)
    return zones


def _with_zone(row: ImportedSubscriber, zones: dict[str, Zone]) -> ImportedSubscriber:
    if not row.zone_name:
        return row
    return dataclasses.replace(row, zone=zones[row.zone_name.lower()], zone_name="")


def import_touched(batch: ImportBatch) -> str:
    """Why the batch can no longer be undone (what touched its subscribers), or '' if it can."""
    ids = list(batch.imported.values_list("subscriber_id", flat=True))
    checks: list[tuple[str, Any]] = [
        (
            "a payment, bill or other ledger entry",
            LedgerEntry.objects.filter(subscriber_id__in=ids).exclude(kind="opening_balance"),
        ),
        ("a router command", OutboxCommand.objects.filter(subscriber_id__in=ids)),
        ("a message", Message.objects.filter(subscriber_id__in=ids)),
        ("an add-on", SubscriberAddOn.objects.filter(subscriber_id__in=ids)),
        ("a change by staff", AuditEvent.objects.filter(subscriber_id__in=ids)),
    ]
    for what, queryset in checks:
        count = queryset.values("subscriber_id").distinct().count()
        if count:
            return f"{count} of its subscribers have {what} since the import"
    return ""


def import_undo(*, batch: ImportBatch, actor: User | None = None) -> int:
    """Remove every subscriber the batch created, with its opening balance, as if the file had never
    been imported, or refuse (changing nothing) once anything else has touched one of them. Returns
    how many subscribers were removed."""
    with transaction.atomic():
        locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status not in (ImportBatch.Status.APPLIED, ImportBatch.Status.FAILED):
            raise TransferError(
                f"import #{locked.pk} is {locked.get_status_display().lower()}; there is nothing to undo"
            )
        ids = list(locked.imported.values_list("subscriber_id", flat=True))
        # Lock the rows so that nobody records a payment for one of them while they are removed.
        list(Subscriber.objects.select_for_update().filter(pk__in=ids).values_list("pk", flat=True))
        reason = import_touched(locked)
        if reason:
            raise TransferError(f"import #{locked.pk} cannot be undone: {reason}")
        opening_balances_remove(subscriber_ids=ids)
        locked.imported.all().delete()
        try:
            removed = subscribers_import_remove(subscriber_ids=ids)
        except ProtectedError as error:
            raise TransferError(
                f"import #{locked.pk} cannot be undone: its subscribers are referenced by "
                f"{len(error.protected_objects)} other records"
            ) from None
        ImportBatch.objects.filter(pk=locked.pk).update(
            status=ImportBatch.Status.UNDONE, undone_at=timezone.now(), undone_by=_person(actor)
        )
        audit(operator=locked.operator, action="import.undo", actor=actor, batch=locked.pk, removed=removed)
    batch.refresh_from_db()
    return removed
