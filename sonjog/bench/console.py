"""Server-side timings of the console's heaviest pages, measured in-process with Django's test Client
(no network, no browser): what `sonjog bench` reports for the staff console."""

from __future__ import annotations

import secrets
import statistics
import time
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count
from django.test import Client
from django.urls import reverse

from sonjog.customers.models import Subscriber
from sonjog.operators.models import Operator, Staff, StaffRole
from sonjog.operators.services import staff_create


def _bench_user(operator: Operator) -> User:
    """An owner login for the operator, made once through the staff service."""
    username = f"console-bench-{operator.code}"[:150]
    staff = Staff.objects.filter(user__username=username).select_related("user").first()
    if staff is not None:
        return staff.user
    return staff_create(
        operator=operator, username=username, password=secrets.token_urlsafe(24), role=StaffRole.OWNER
    ).user


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=20, method="inclusive")[18]


def console_bench(operator: Operator, samples: int = 20) -> dict[str, Any]:
    """p95 server time (ms) of the dashboard, the subscriber list, a subscriber search, the busiest
    subscriber's profile and the 36-period summary page, for an owner of `operator`."""
    client = Client(HTTP_HOST="localhost")
    client.force_login(_bench_user(operator))
    subscriber = (
        Subscriber.objects.filter(operator__path__startswith=operator.path)
        .annotate(periods=Count("statements"))
        .order_by("-periods", "pk")
        .only("pk", "name", "phone")
        .first()
    )
    if subscriber is None:
        raise ValueError(f"operator {operator.code} has no subscribers to measure")
    search = subscriber.name.split()[0][:4]
    pages = {
        "dashboard_p95_ms": reverse("console:dashboard"),
        "subscriber_list_p95_ms": reverse("console:subscribers"),
        "subscriber_search_p95_ms": reverse("console:subscribers") + f"?q={search}",
        "profile_p95_ms": reverse("console:subscriber", args=[subscriber.pk]),
        "period_summary_page_p95_ms": reverse("console:billing"),
    }
    result: dict[str, Any] = {}
    for key, url in pages.items():
        response = client.get(url)  # warm-up: connection, templates, plans
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        timings = []
        for _ in range(samples):
            started = time.perf_counter()
            client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        result[key] = round(_p95(timings), 1)
    return result
