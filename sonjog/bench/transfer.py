"""The import benchmark: a 20,000-row subscriber file read, checked (the dry run), imported and
undone, each step timed; an ISP brings its whole list in at once, and the page must keep up."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from sonjog.flows.catalog import package_create
from sonjog.operators.services import operator_create
from sonjog.transfer.imports import batch_from_file, import_apply, import_check, import_undo


def run_import_bench(*, rows: int) -> dict[str, Any]:
    operator = operator_create(code="bench-import", name="Import bench ISP", customer_id_prefix="IMP")
    packages = [
        package_create(
            operator=operator,
            name=f"Home {speed} Mbps",
            price=Decimal(price),
            download_kbps=speed * 1024,
            upload_kbps=speed * 1024,
            router_profile=f"{speed}m",
        )
        for speed, price in ((5, "500.00"), (10, "800.00"), (20, "1200.00"))
    ]
    lines = ["Customer ID,Name,Mobile,Username,Password,Package,Zone,Connection Date,Status,Due"]
    for number in range(rows):
        package = packages[number % len(packages)]
        status = "suspended" if number % 17 == 0 else "active"
        due = "0" if number % 3 else str(100 + number % 900)
        lines.append(
            f"OLD{number:06d},Subscriber {number},017{number:08d},old{number},pw{number},{package.name},"
            f"Zone {number % 25},{1 + number % 28:02d}/{1 + number % 12:02d}/2023,{status},{due}"
        )
    data = ("\n".join(lines) + "\n").encode("utf-8")
    started = time.perf_counter()
    batch = batch_from_file(operator=operator, file_name="bench.csv", data=data)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = import_check(batch)
    check_seconds = time.perf_counter() - started
    assert not result.problems, result.problems[:3]
    started = time.perf_counter()
    applied = import_apply(batch=batch)
    apply_seconds = time.perf_counter() - started
    started = time.perf_counter()
    removed = import_undo(batch=applied)
    undo_seconds = time.perf_counter() - started
    return {
        "import_rows": rows,
        "import_read_s": round(read_seconds, 2),
        "import_dry_run_s": round(check_seconds, 2),
        "import_apply_s": round(apply_seconds, 2),
        "import_rows_per_s": round(rows / apply_seconds),
        "import_undo_s": round(undo_seconds, 2),
        "import_undone": removed,
    }
