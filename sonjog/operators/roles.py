"""What each staff role may do: the built-in defaults, the permission matrix an operator edits, and
where each role lands after sign-in (ADR 0013).

A login's permissions are always its role's: the staff row names a built-in role (`Staff.role`), the
operator has its own version of that role (`OperatorRole`, with one auth Group), and the login is a
member of that group and of no other role's. An operator's role starts as the built-in default and
differs from it only by its overrides (`RoleOverride`: this permission granted, that one taken
away), so a permission a release adds to a built-in role reaches every operator's role that did not
take it away.

The matrix is the console's sections x view/act, plus a few special permissions. Each cell stands for
a fixed set of Django permissions (`app_label.codename`); permissions of no cell keep their default.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from sonjog.operators.models import Landing, StaffRole

# Every permission of these apps; "*" in a role's defaults means all of them.
SONJOG_APPS = ["operators", "customers", "catalog", "billing", "network", "notifications", "automation"]
EVERYTHING = "*"
# Permissions only an owner holds, even where another role is granted everything ("*").
OWNER_ONLY_PERMISSIONS = ["operators.manage_operators"]

# What each built-in role may do, as "app_label.codename"; ["*"] is every Sonjog permission (but the
# owner-only ones for any role other than the owner).
ROLE_PERMISSIONS: dict[str, list[str]] = {
    StaffRole.OWNER: [EVERYTHING],
    StaffRole.MANAGER: [EVERYTHING],
    StaffRole.BILLING_CLERK: [
        "operators.view_dashboard",
        "operators.act_for_resellers",
        "customers.view_subscriber",
        "customers.add_subscriber",
        "customers.change_subscriber",
        "billing.view_ledgerentry",
        "billing.add_payment",
        "billing.view_payment",
        "billing.add_billingrun",
        "billing.view_bill",
        "billing.add_adjustment",
        "billing.reverse_entry",
        "notifications.view_message",
    ],
    # Takes money and sees its own receipts and day sheet (both follow from add_payment), never the
    # ISP's figures or other collectors' money.
    StaffRole.COLLECTOR: ["operators.act_for_resellers", "customers.view_subscriber", "billing.add_payment"],
    StaffRole.NETWORK_ENGINEER: [
        "operators.act_for_resellers",
        "customers.view_subscriber",
        "customers.change_subscriber",
        "network.view_router",
        "network.add_router",
        "network.change_router",
        "network.view_outboxcommand",
        "network.change_outboxcommand",
    ],
    StaffRole.SUPPORT: [
        "operators.act_for_resellers",
        "customers.view_subscriber",
        "billing.view_ledgerentry",
        "billing.view_bill",
        "notifications.view_message",
    ],
    StaffRole.RESELLER_STAFF: [
        "operators.view_dashboard",
        "operators.act_for_resellers",
        "customers.view_subscriber",
        "customers.add_subscriber",
        "billing.add_payment",
        "billing.view_payment",
        "billing.view_bill",
    ],
}

# The owner's role is never edited: an operator always has a login that can do everything, and only
# an owner (or an installation superuser) may make or manage an owner. Managing resellers stays the
# owners' alone (OWNER_ONLY_PERMISSIONS), so the matrix does not offer it.
FIXED_ROLES = frozenset({StaffRole.OWNER})


# The permission a landing page needs: a role whose landing it cannot open lands on the next page of
# `LANDING_ORDER` it can.
LANDING_PERMISSION: dict[str, str] = {
    Landing.DASHBOARD: "operators.view_dashboard",
    Landing.COLLECT: "billing.add_payment",
    Landing.BILLING: "billing.view_bill",
    Landing.SUBSCRIBERS: "customers.view_subscriber",
    Landing.NETWORK: "network.view_router",
    Landing.MESSAGING: "notifications.view_message",
}
LANDING_ORDER = [
    Landing.DASHBOARD,
    Landing.SUBSCRIBERS,
    Landing.COLLECT,
    Landing.BILLING,
    Landing.NETWORK,
    Landing.MESSAGING,
]
ROLE_LANDING: dict[str, str] = {
    StaffRole.OWNER: Landing.DASHBOARD,
    StaffRole.MANAGER: Landing.DASHBOARD,
    StaffRole.BILLING_CLERK: Landing.BILLING,
    StaffRole.COLLECTOR: Landing.COLLECT,
    StaffRole.NETWORK_ENGINEER: Landing.NETWORK,
    StaffRole.SUPPORT: Landing.SUBSCRIBERS,
    StaffRole.RESELLER_STAFF: Landing.DASHBOARD,
}


def landing_for(landing: str, permissions: Iterable[str]) -> str | None:
    """The landing a login with `permissions` gets: its role's if it may open it, otherwise the
    first of LANDING_ORDER it may; None when it may open none of them."""
    held = set(permissions)
    for candidate in [landing, *LANDING_ORDER]:
        needed = LANDING_PERMISSION.get(candidate)
        if needed is not None and needed in held:
            return candidate
    return None


@dataclass(frozen=True)
class Section:
    """One row of the matrix: a console section, what viewing it needs and what acting in it needs.
    `module` is the operator's module access that shows the section (None: always shown)."""

    key: str
    label: str | Promise
    view: tuple[str, ...]
    act: tuple[str, ...]
    act_means: str | Promise = ""
    module: str | None = None


@dataclass(frozen=True)
class Special:
    key: str
    permission: str
    label: str | Promise
    module: str | None = None


SECTIONS: list[Section] = [
    Section(
        "dashboard",
        _("Dashboard figures"),
        view=("operators.view_dashboard",),
        act=(),
    ),
    Section(
        "subscribers",
        _("Subscribers"),
        view=("customers.view_subscriber",),
        act=("customers.change_subscriber",),
        act_means=_("change contact, package, add-ons, suspend and reactivate"),
    ),
    Section(
        "signups",
        _("New subscribers"),
        view=(),
        act=("customers.add_subscriber",),
        act_means=_("add subscribers"),
    ),
    Section(
        "payments",
        _("Payments"),
        view=("billing.view_payment",),
        act=("billing.add_payment",),
        act_means=_("take payments; a collector sees only their own"),
        module="collection",
    ),
    Section(
        "billing",
        _("Bills and invoices"),
        view=("billing.view_bill",),
        act=("billing.add_billingrun",),
        act_means=_("generate invoices"),
        module="billing",
    ),
    Section(
        "corrections",
        _("Reversals and adjustments"),
        view=("billing.view_ledgerentry",),
        act=("billing.add_adjustment", "billing.reverse_entry"),
        module="billing",
    ),
    Section(
        "routers",
        _("Routers"),
        view=("network.view_router",),
        act=("network.add_router", "network.change_router"),
        module="network",
    ),
    Section(
        "router_commands",
        _("Router commands"),
        view=("network.view_outboxcommand",),
        act=("network.change_outboxcommand",),
        act_means=_("retry failed commands"),
        module="network",
    ),
    Section(
        "messaging",
        _("Messages"),
        view=("notifications.view_message",),
        act=("notifications.change_message", "notifications.add_bulksend", "notifications.change_messagetemplate"),
        act_means=_("resend, bulk SMS, edit templates"),
        module="messaging",
    ),
    Section(
        "messaging_providers",
        _("SMS providers and credit"),
        view=(),
        act=("notifications.change_provideraccount", "notifications.add_smscreditentry"),
        module="messaging",
    ),
    # Merchant accounts at bKash, Nagad and SSLCommerz hold the operator's gateway credentials: owners
    # and managers (every permission, "*"), and whoever an operator ticks this cell for. The online
    # payments desk is the "payments" row's: viewing with view_payment, "check now" with add_payment.
    Section(
        "gateway_accounts",
        _("Online payment gateway accounts"),
        view=(),
        act=("operators.manage_gateway_accounts",),
        act_means=_("add and change bKash, Nagad and SSLCommerz accounts and their credentials"),
    ),
    Section(
        "packages",
        _("Packages and add-ons"),
        view=("catalog.view_package", "catalog.view_addon"),
        act=("catalog.add_package", "catalog.change_package", "catalog.add_addon", "catalog.change_addon"),
        module="catalog",
    ),
    Section(
        "zones",
        _("Zones"),
        view=("customers.view_zone",),
        act=("customers.add_zone", "customers.change_zone"),
        module="catalog",
    ),
    Section(
        "schedule",
        _("Schedule and reminders"),
        view=("automation.view_reminderrule",),
        act=("automation.add_reminderrule", "automation.delete_reminderrule", "automation.change_operatorschedule"),
        module="automation",
    ),
    Section(
        "staff",
        _("Staff and roles"),
        view=("operators.view_staff",),
        act=("operators.manage_staff",),
        act_means=_("create staff, change roles, reset passwords"),
    ),
]

SPECIALS: list[Special] = [
    Special("discount", "customers.grant_discount", _("Give subscribers a discount")),
    Special("terminate", "customers.delete_subscriber", _("Terminate subscribers")),
    Special("reveal_password", "customers.reveal_pppoe_password", _("See subscribers' PPPoE passwords")),
    Special("void", "billing.void_invoice", _("Void invoices with a credit note"), module="billing"),
    # Issue 15: where an operator approves its collectors' cash hand-overs (Operator.collection_approval).
    Special(
        "approve_handovers",
        "billing.approve_cashhandover",
        _("Approve or dispute collectors' cash hand-overs"),
        module="collection",
    ),
    Special("backdate", "operators.backdate_closed_period", _("Date money into a period whose books are closed")),
    Special("resellers", "operators.act_for_resellers", _("Act for resellers: see and work in their accounts")),
    Special("act_as", "operators.act_as_reseller", _("Act as a reseller: work in its console, not only view it")),
    Special("run_jobs", "automation.run_job", _("Run jobs now"), module="automation"),
]


def cell_permissions() -> dict[str, tuple[str, ...]]:
    """Every matrix cell ("<section>.view", "<section>.act", "special.<key>") and its permissions."""
    cells: dict[str, tuple[str, ...]] = {}
    for section in SECTIONS:
        if section.view:
            cells[f"{section.key}.view"] = section.view
        if section.act:
            cells[f"{section.key}.act"] = section.act
    for special in SPECIALS:
        cells[f"special.{special.key}"] = (special.permission,)
    return cells


def matrix_permissions() -> frozenset[str]:
    """The permissions the matrix controls; every other permission keeps its role's default."""
    return frozenset(permission for permissions in cell_permissions().values() for permission in permissions)
