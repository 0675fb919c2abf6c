"""Router configuration backups: take one (the router's ``/export`` text, kept as a `RouterBackup`), keep
the newest few of each router, copy each to the operator's FTP or FTPS server, and the daily pass over
every router that can export.

The export and the upload talk to other machines, so they run outside any transaction; the new row and
the pruning of the oldest ones beyond the operator's keep count are one transaction, serialised per
router by a row lock on the router. A failed upload keeps the backup: its row records the error.

The destination's host is the operator's to choose, so it passes the installation's outbound check
(`sonjog.core.outbound`: no loopback, private or reserved addresses unless
SONJOG_ALLOW_PRIVATE_OUTBOUND) when it is saved and again before every connection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ftplib
import io
import logging
import re
import ssl
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sonjog.core import bounds
from sonjog.core.audit import audit
from sonjog.core.outbound import OutboundRefused, is_public_address, private_outbound_allowed, resolve
from sonjog.network import router_io
from sonjog.network.exceptions import BackupDestinationInvalid, BackupFailed
from sonjog.network.models import (
    DEFAULT_BACKUPS_KEPT,
    BackupDestination,
    BackupProtocol,
    DriverKind,
    Router,
    RouterBackup,
)
from sonjog.operators.models import Operator

__all__ = [
    "EXPORTING_DRIVERS",
    "DestinationTestResult",
    "backup_destination_set",
    "backup_destination_test",
    "backup_file_name",
    "backups_kept",
    "router_backup_take",
    "routers_backup_all",
]

logger = logging.getLogger(__name__)

# The drivers whose routers hold a configuration Sonjog can export.
EXPORTING_DRIVERS = frozenset({DriverKind.MIKROTIK})
FTP_TIMEOUT_SECONDS = 30.0
MAX_KEEP_COUNT = 365
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclasses.dataclass(frozen=True)
class DestinationTestResult:
    ok: bool
    message: str


def backups_kept(operator_id: int) -> int:
    """How many backups of each of the operator's routers Sonjog keeps."""
    kept = BackupDestination.objects.filter(operator_id=operator_id).values_list("keep_count", flat=True).first()
    return kept or DEFAULT_BACKUPS_KEPT


# -- the destination --------------------------------------------------------------------------------


def _checked_directory(directory: str) -> str:
    text = directory.strip()
    if len(text) > 255:
        raise BackupDestinationInvalid(_("The directory has at most 255 characters."))
    if any(ord(character) < 32 or ord(character) == 127 for character in text):
        raise BackupDestinationInvalid(_("The directory may not contain control characters."))
    if any(part == ".." for part in text.split("/")):
        raise BackupDestinationInvalid(_("The directory may not contain '..'."))
    return text


def _check_outbound(host: str, port: int) -> None:
    """Refuse (OutboundRefused) a host this installation may not connect to for an operator."""
    if private_outbound_allowed():
        return
    for address in resolve(host, port):
        if not is_public_address(address):
            raise OutboundRefused(
                _(
                    "%(host)s leads to %(address)s, a loopback, private, link-local or reserved address; "
                    "this installation sends only to public addresses (SONJOG_ALLOW_PRIVATE_OUTBOUND)."
                )
                % {"host": host, "address": address}
            )


def backup_destination_set(
    *,
    operator: Operator,
    enabled: bool,
    protocol: str,
    host: str,
    port: int,
    username: str,
    password: str | None,
    directory: str,
    keep_count: int,
    actor: User | None = None,
) -> BackupDestination:
    """Set the operator's backup destination and keep count. A password given (non-empty) replaces the
    stored one; None or "" keeps it. Lowering the keep count prunes the operator's routers' backups now."""
    if protocol not in BackupProtocol.values:
        raise BackupDestinationInvalid(
            _("Unknown protocol '%(protocol)s'; use one of %(choices)s.")
            % {"protocol": protocol, "choices": ", ".join(BackupProtocol.values)}
        )
    if not (isinstance(port, int) and 1 <= port <= 65535):
        raise BackupDestinationInvalid(_("The port must be a number from 1 to 65535."))
    if not (isinstance(keep_count, int) and 1 <= keep_count <= MAX_KEEP_COUNT):
        raise BackupDestinationInvalid(_("Keep from 1 to %(most)s backups of each router.") % {"most": MAX_KEEP_COUNT})
    host = host.strip()
    if host:
        try:
            host = bounds.parse_host(host)
        except ValueError as error:
            raise BackupDestinationInvalid(str(error)) from None
    elif enabled:
        raise BackupDestinationInvalid(_("Name the server backups are copied to."))
    username = username.strip()
    if len(username) > 128:
        raise BackupDestinationInvalid(_("The user name has at most 128 characters."))
    if enabled and not username:
        raise BackupDestinationInvalid(_("Give the user name Sonjog signs in to the server with."))
    if password and any(ord(character) < 32 for character in password):
        raise BackupDestinationInvalid(_("The password may not contain control characters."))
    directory = _checked_directory(directory)
    if enabled:
        try:
            _check_outbound(host, port)
        except OutboundRefused as error:
            raise BackupDestinationInvalid(str(error)) from None
    wanted: dict[str, Any] = {
        "enabled": enabled,
        "protocol": protocol,
        "host": host,
        "port": port,
        "username": username,
        "directory": directory,
        "keep_count": keep_count,
    }
    with transaction.atomic():
        destination = BackupDestination.objects.select_for_update().filter(operator=operator).first()
        created = destination is None
        if destination is None:
            destination = BackupDestination(operator=operator, updated_at=timezone.now())
        before: dict[str, Any] = {} if created else {key: getattr(destination, key) for key in wanted}
        changed = {key: value for key, value in wanted.items() if created or before[key] != value}
        for key, value in wanted.items():
            setattr(destination, key, value)
        after: dict[str, Any] = dict(changed)
        before = {key: before[key] for key in changed if key in before}
        if password:
            destination.password = password
            before["password"], after["password"] = "(hidden)", "replaced" if not created else "set"
        if not after:
            return destination
        if {"host", "port", "protocol", "username", "password", "directory"} & set(after):
            # A test of the old server says nothing about the new one.
            destination.last_test_at, destination.last_test_ok, destination.last_test_message = None, None, ""
        destination.updated_at = timezone.now()
        destination.save()
        audit(
            operator=operator,
            action="network.backup_destination.set",
            actor=actor,
            fields=", ".join(sorted(after)),
            before=before,
            after=after,
        )
        if "keep_count" in changed:
            for router_id in Router.objects.filter(operator=operator).order_by("pk").values_list("pk", flat=True):
                _prune(router_id, keep_count)
    return destination


@contextlib.contextmanager
def _connected(destination: BackupDestination) -> Iterator[ftplib.FTP]:
    """A signed-in FTP (or FTPS, with the data channel encrypted too) session to the destination."""
    _check_outbound(destination.host, destination.port)
    ftp: ftplib.FTP
    if destination.protocol == BackupProtocol.FTPS:
        ftp = ftplib.FTP_TLS(context=ssl.create_default_context(), timeout=FTP_TIMEOUT_SECONDS)
    else:
        ftp = ftplib.FTP(timeout=FTP_TIMEOUT_SECONDS)
    try:
        ftp.connect(destination.host, destination.port)
        ftp.login(destination.username, destination.password)
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        yield ftp
        with contextlib.suppress(OSError, ftplib.Error, EOFError):
            ftp.quit()
    finally:
        ftp.close()


def _enter(ftp: ftplib.FTP, parts: list[str], absolute: bool) -> None:
    """Change into the directory `parts` (under the login directory unless `absolute`), making each
    part that does not exist yet."""
    if absolute:
        ftp.cwd("/")
    for part in parts:
        try:
            ftp.cwd(part)
        except ftplib.error_perm:
            ftp.mkd(part)
            ftp.cwd(part)


def _directory_parts(destination: BackupDestination) -> tuple[list[str], bool]:
    directory = destination.directory.strip()
    parts = [part for part in directory.split("/") if part and part != "."]
    parts.append(destination.operator.code)
    return parts, directory.startswith("/")


def _describe(error: BaseException, destination: BackupDestination) -> str:
    where = f"{destination.host}:{destination.port}"
    if isinstance(error, OutboundRefused):
        return str(error)
    if isinstance(error, ftplib.error_perm) and str(error).startswith("530"):
        return _("%(server)s refused the sign-in (wrong user name or password): %(reply)s") % {
            "server": where,
            "reply": str(error),
        }
    if isinstance(error, ftplib.Error):
        return _("%(server)s answered: %(reply)s") % {"server": where, "reply": str(error)}
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return _("TLS with %(server)s failed: %(error)s") % {"server": where, "error": error}
    if isinstance(error, TimeoutError):
        return _("%(server)s did not answer within %(seconds)s seconds.") % {
            "server": where,
            "seconds": f"{FTP_TIMEOUT_SECONDS:.0f}",
        }
    if isinstance(error, ConnectionRefusedError):
        return _("%(server)s refused the connection: is an FTP server listening there?") % {"server": where}
    if isinstance(error, EOFError):
        return _("%(server)s closed the connection.") % {"server": where}
    return _("Could not reach %(server)s: %(error)s") % {"server": where, "error": error}


_FTP_ERRORS = (OSError, ftplib.Error, EOFError, OutboundRefused)


def backup_destination_test(*, operator: Operator) -> DestinationTestResult:
    """Sign in to the operator's destination, enter (making it where missing) the directory backups go
    to, write a small file and delete it again. The outcome is kept on the destination."""
    destination = BackupDestination.objects.select_related("operator").filter(operator=operator).first()
    if destination is None or not destination.host:
        return DestinationTestResult(False, _("No backup destination is set yet."))
    parts, absolute = _directory_parts(destination)
    probe = f".sonjog-test-{timezone.now():%Y%m%d%H%M%S}"
    try:
        with _connected(destination) as ftp:
            _enter(ftp, parts, absolute)
            ftp.storbinary(f"STOR {probe}", io.BytesIO(b"Sonjog backup destination test\n"))
            ftp.delete(probe)
    except _FTP_ERRORS as error:
        result = DestinationTestResult(False, _describe(error, destination))
    else:
        result = DestinationTestResult(
            True,
            _("Signed in to %(server)s and wrote a test file into %(directory)s.")
            % {"server": f"{destination.host}:{destination.port}", "directory": "/".join(parts)},
        )
    BackupDestination.objects.filter(pk=destination.pk).update(
        last_test_at=timezone.now(), last_test_ok=result.ok, last_test_message=result.message[:600]
    )
    return result


# -- backups ----------------------------------------------------------------------------------------


def backup_file_name(router: Router, taken_at: Any) -> str:
    """`<router name>-<YYYYmmdd-HHMM>.rsc`, the time in the operator's time zone."""
    local = taken_at.astimezone(ZoneInfo(router.operator.time_zone))
    name = _UNSAFE_IN_NAME.sub("_", router.name).strip("._") or f"router-{router.pk}"
    return f"{name}-{local:%Y%m%d-%H%M}.rsc"


def _prune(router_id: int, keep: int) -> int:
    newest = RouterBackup.objects.filter(router_id=router_id).order_by("-taken_at", "-pk").values("pk")[:keep]
    deleted, _by_model = RouterBackup.objects.filter(router_id=router_id).exclude(pk__in=newest).delete()
    return deleted


def _upload(backup: RouterBackup, destination: BackupDestination) -> None:
    parts, absolute = _directory_parts(destination)
    name = backup_file_name(backup.router, backup.taken_at)
    path = ("/" if absolute else "") + "/".join([*parts, name])
    try:
        with _connected(destination) as ftp:
            _enter(ftp, parts, absolute)
            ftp.storbinary(f"STOR {name}", io.BytesIO(backup.content.encode("utf-8")))
    except _FTP_ERRORS as error:
        backup.upload_ok, backup.upload_error = False, _describe(error, destination)[:600]
        logger.warning("backup %s of router %s not uploaded: %s", backup.pk, backup.router_id, backup.upload_error)
    else:
        backup.upload_ok, backup.upload_error = True, ""
    backup.upload_path = path[:600]
    RouterBackup.objects.filter(pk=backup.pk).update(
        upload_ok=backup.upload_ok, upload_error=backup.upload_error, upload_path=backup.upload_path
    )


def router_backup_take(*, router: Router, requested_by: str, actor: User | None = None) -> RouterBackup:
    """Back the router up now: its export kept as a new backup (the oldest beyond the operator's keep
    count deleted in the same transaction), then copied to the operator's destination when one is
    enabled. BackupFailed when the router has nothing to export or does not answer."""
    router = Router.objects.select_related("operator").get(pk=router.pk)
    if router.driver not in EXPORTING_DRIVERS:
        raise BackupFailed(
            _("%(router)s uses the %(driver)s driver, which has no configuration to back up.")
            % {"router": router.name, "driver": router.get_driver_display()}
        )
    if router.record_only or not router.is_active:
        raise BackupFailed(
            _("%(router)s is %(state)s: Sonjog sends it nothing.")
            % {"router": router.name, "state": _("record-only") if router.record_only else _("inactive")}
        )
    try:
        content = router_io.export_config(router)
    except router_io.DriverError as error:
        raise BackupFailed(
            _("%(router)s could not be backed up: %(error)s") % {"router": router.name, "error": error}
        ) from error
    with transaction.atomic():
        Router.objects.select_for_update().filter(pk=router.pk).values_list("pk", flat=True).get()
        backup = RouterBackup.objects.create(
            router=router, taken_at=timezone.now(), content=content, requested_by=requested_by[:120]
        )
        pruned = _prune(router.pk, backups_kept(router.operator_id))
        if actor is not None:
            audit(
                operator=router.operator,
                action="router.backup",
                actor=actor,
                router=router.pk,
                backup=backup.pk,
                pruned=pruned,
            )
    destination = BackupDestination.objects.filter(operator_id=router.operator_id, enabled=True).first()
    if destination is not None:
        destination.operator = router.operator
        _upload(backup, destination)
    return backup


def routers_backup_all(*, requested_by: str = "scheduled backup") -> dict[str, Any]:
    """Back up every active router that Sonjog drives and that can export, each on its own: a router
    that fails is reported and the rest go on."""
    routers = list(
        Router.objects.filter(is_active=True, record_only=False, driver__in=EXPORTING_DRIVERS)
        .select_related("operator")
        .order_by("pk")
    )
    outcome: dict[str, Any] = {"routers": len(routers), "backed_up": 0, "uploaded": 0, "upload_failed": 0}
    errors: dict[str, str] = {}
    for router in routers:
        try:
            backup = router_backup_take(router=router, requested_by=requested_by)
        except Exception as error:  # one router's failure must not stop the others
            logger.warning("router %s not backed up: %s", router.pk, error)
            errors[f"{router.operator.code}/{router.name}"] = str(error)[:300]
            continue
        outcome["backed_up"] += 1
        if backup.upload_ok is True:
            outcome["uploaded"] += 1
        elif backup.upload_ok is False:
            outcome["upload_failed"] += 1
            errors[f"{router.operator.code}/{router.name} upload"] = backup.upload_error[:300]
    outcome["failed"] = outcome["routers"] - outcome["backed_up"]
    outcome["errors"] = errors
    return outcome
