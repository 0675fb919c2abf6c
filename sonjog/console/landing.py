"""Where a login lands after sign-in (and when it opens "/" without the dashboard's figures): its
role's landing page (`sonjog.operators.roles`), or the first page it may open; a login that may
open none of them lands on its own account page, never on a bare 403."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.urls import reverse

from sonjog.operators.models import Landing
from sonjog.operators.selectors import landing_of

LANDING_URLS: dict[str, str] = {
    Landing.DASHBOARD: "console:dashboard",
    Landing.COLLECT: "console:collect",
    Landing.BILLING: "console:billing",
    Landing.SUBSCRIBERS: "console:subscribers",
    Landing.NETWORK: "console:routers",
    Landing.MESSAGING: "console:messaging_log",
}


def landing_url(user: User) -> str:
    landing = landing_of(user)
    return reverse(LANDING_URLS[landing] if landing is not None else "console:two_factor")
