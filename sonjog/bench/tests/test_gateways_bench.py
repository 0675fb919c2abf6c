"""`sonjog bench --gateways`, tiny: 20 suspended subscribers pay by SSLCommerz at once, every IPN posted
twice at the same moment to the real endpoint on uvicorn while a `sonjog worker` reconnects them on
the RouterOS emulator. What must hold at any size: one payment per attempt, every attempt applied,
both copies of every IPN answered, everyone back online. Timings are the bench's to report, never
asserted here."""

from __future__ import annotations

import pytest

from sonjog.bench.gateways import GATEWAY_STEPS, run_gateway_bench

# uvicorn and the worker are processes of their own, on the real clock; nothing here depends on the
# date (the subscribers sign up 45 days before whatever day the operator calls today).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_clock]

PAYMENTS = 20
# Fewer clients than the bench's 32, and a short baseline: the test database's server is shared, and
# every request the web server answers holds a connection of its own for a while.
CLIENTS = 8


def test_twenty_payments_notified_twice_at_once_are_applied_once_and_reconnected() -> None:
    notes: list[str] = []
    results = run_gateway_bench(payments=PAYMENTS, progress=notes.append, clients=CLIENTS, baseline_requests=20)

    assert results["gateway_duplicates"] == 0, results
    assert results["gateway_payments_recorded"] == PAYMENTS, results
    assert results["gateway_applied"] == PAYMENTS, results
    assert results["gateway_attempt_states"] == {"applied": PAYMENTS}
    assert results["gateway_ipn_deliveries"] == 2 * PAYMENTS
    assert results["gateway_ipn_not_ok"] == 0, results["gateway_ipn_answers"]
    assert results["gateway_ipn_answers"] == {"applied": 2 * PAYMENTS}
    assert results["gateway_ipn_stored_outcomes"] == {"applied": 2 * PAYMENTS}
    assert results["gateway_reactivated"] == PAYMENTS
    assert results["gateway_enabled_on_router"] == PAYMENTS
    assert len(notes) == GATEWAY_STEPS
