"""Reads for the console, one module per part of it; every function takes the acting `Scope` (or
its operator ids) and never returns a row outside it. List filters are the domain apps' FilterSets
(`sonjog.<app>.filters`); the functions here scope them and shape their rows for pages.

- `periods`: period figures and the closed-period cache (chart, period summary)
- `dashboard`: the dashboard's cards and breakdowns
- `subscribers`: the subscriber list, the quick picker, the profile
- `billing`: generation previews, runs, overdue, corrections, payments, day sheets, invoices
- `network`: routers, the outbox, mismatches
- `catalog`: packages, add-ons, zones, bulk actions
- `messaging`: the delivery log's filters

Everything is re-exported here, so `from sonjog.console import selectors` and `selectors.<name>`
keep working."""

from sonjog.console.selectors.billing import (
    GenerationPreview,
    billing_runs,
    corrections,
    day_bounds,
    day_sheet,
    generation_preview,
    invoice_for,
    overdue_page,
    payment_filters,
    payment_sheet,
)
from sonjog.console.selectors.catalog import addons, bulk_actions, packages, zones
from sonjog.console.selectors.dashboard import (
    Breakdown,
    Dashboard,
    collections_by_collector,
    dashboard,
    online_by_router,
)
from sonjog.console.selectors.messaging import message_filters
from sonjog.console.selectors.network import mismatches, outbox_filters, routers
from sonjog.console.selectors.periods import (
    CLOSED_CACHE_SECONDS,
    PeriodFigures,
    chart_periods,
    period_figures,
    period_summary_rows,
)
from sonjog.console.selectors.subscribers import (
    Profile,
    subscriber_due,
    subscriber_filters,
    subscriber_list,
    subscriber_picker,
    subscriber_profile,
)
from sonjog.customers.selectors import MISMATCH_Q, MISMATCH_SQL, subscriber_search_q

__all__ = [
    "CLOSED_CACHE_SECONDS",
    "MISMATCH_Q",
    "MISMATCH_SQL",
    "Breakdown",
    "Dashboard",
    "GenerationPreview",
    "PeriodFigures",
    "Profile",
    "addons",
    "billing_runs",
    "bulk_actions",
    "chart_periods",
    "collections_by_collector",
    "corrections",
    "dashboard",
    "day_bounds",
    "day_sheet",
    "generation_preview",
    "invoice_for",
    "message_filters",
    "mismatches",
    "online_by_router",
    "outbox_filters",
    "overdue_page",
    "packages",
    "payment_filters",
    "payment_sheet",
    "period_figures",
    "period_summary_rows",
    "routers",
    "subscriber_due",
    "subscriber_filters",
    "subscriber_list",
    "subscriber_picker",
    "subscriber_profile",
    "subscriber_search_q",
    "zones",
]
