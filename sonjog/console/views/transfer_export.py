"""The Export page: every dataset an ISP (or one of its resellers) needs to leave, as CSV or XLSX, for
the login's operator and the operators below it that it may see.

An operator other than the login's own is named by its code and looked up inside the login's scope
(404 otherwise, as for a missing one); each dataset needs the permission that lets the login see those
rows on their own pages. Downloads stream: CSV a few thousand rows at a time, XLSX written to a
temporary file (openpyxl's write-only mode) and sent from there; under ASGI the rows are read in
batches on the request's thread, so nothing is collected in memory first."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from itertools import islice
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from sonjog.console.access import Scope, console_view, scope_of
from sonjog.console.views.common import page
from sonjog.operators.models import Operator
from sonjog.transfer.exports import DATASETS, Dataset
from sonjog.transfer.writers import CSV_CONTENT_TYPE, XLSX_CONTENT_TYPE, csv_lines, write_xlsx

PAGE_PERMISSION = "billing.view_bill"
FORMATS = ("csv", "xlsx")
FILE_CHUNK = 64 * 1024
LINES_PER_BATCH = 2000


def _allowed(request: HttpRequest) -> list[Dataset]:
    return [dataset for dataset in DATASETS.values() if request.user.has_perm(dataset.permission)]


def _chosen_operator(request: HttpRequest, scope: Scope) -> Operator:
    """The operator named by ?operator=CODE among those the login may see (its own without one)."""
    code = request.GET.get("operator", "")
    if not code:
        return scope.home
    for operator in scope.operators:
        if operator.code == code:
            return operator
    raise Http404


@console_view(PAGE_PERMISSION)
def export_view(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    chosen = _chosen_operator(request, scope)
    return page(
        request,
        "console/export.html",
        {
            "datasets": _allowed(request),
            "chosen": chosen,
            "operators": scope.operators,
            "includes_resellers": scope.sees_subtree,
            "title": _("Export"),
        },
    )


@console_view(PAGE_PERMISSION)
def export_download_view(request: HttpRequest, dataset: str, fmt: str) -> HttpResponseBase:
    found = DATASETS.get(dataset)
    if found is None or fmt not in FORMATS:
        raise Http404
    if not request.user.has_perm(found.permission):
        raise Http404
    scope = scope_of(request)
    operator = _chosen_operator(request, scope)
    # A login that does not see resellers' data exports its own operator's rows only.
    rows = found.rows(operator, descendants=scope.sees_subtree)
    name = f"{operator.code}-{found.name}-{timezone.localdate():%Y%m%d}.{fmt}"
    if fmt == "csv":
        content: Iterable[Any] = csv_lines(rows)
        content_type = CSV_CONTENT_TYPE
    else:
        content = _xlsx_chunks(rows, str(found.title))
        content_type = XLSX_CONTENT_TYPE
    asgi = isinstance(request, ASGIRequest)
    response = StreamingHttpResponse(_batched(iter(content)) if asgi else content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _xlsx_chunks(rows: Iterator[list[Any]], sheet_title: str) -> Iterator[bytes]:
    # A zip is written whole before it can be sent; a temporary file holds it instead of memory.
    with tempfile.TemporaryFile(suffix=".xlsx") as file:
        write_xlsx(file, rows, sheet_title)
        file.seek(0)
        while chunk := file.read(FILE_CHUNK):
            yield chunk


async def _batched(content: Iterator[Any]) -> AsyncIterator[Any]:
    """A synchronous stream served under ASGI: Django would read a plain iterator whole before
    sending it. Each batch is read on the request's own thread (thread-sensitive), where its
    database connection and server-side cursor live."""
    take = sync_to_async(lambda: list(islice(content, LINES_PER_BATCH)), thread_sensitive=True)
    while batch := await take():
        for item in batch:
            yield item
