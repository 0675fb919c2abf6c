from django.contrib import admin

from sonjog.billing.models import (
    Allocation,
    Bill,
    BillingRun,
    BillLine,
    CreditNote,
    DocumentSequence,
    Invoice,
    LedgerEntry,
    Payment,
    Statement,
)
from sonjog.core.admin_base import ReadOnlyAdmin


class BillLineInline(admin.TabularInline):  # type: ignore[type-arg]
    model = BillLine
    can_delete = False
    extra = 0
    readonly_fields = ["kind", "description", "amount"]

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "subscriber", "kind", "category", "amount", "effective_date", "period_month", "created_at"]
    list_filter = ["kind", "category"]
    search_fields = ["subscriber__customer_id"]
    list_select_related = ["subscriber"]


@admin.register(Bill)
class BillAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "subscriber",
        "period_month",
        "period_start",
        "period_end",
        "total",
        "due_date",
        "reversed_at",
    ]
    list_filter = ["period_month"]
    search_fields = ["subscriber__customer_id"]
    list_select_related = ["subscriber"]
    inlines = [BillLineInline]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["id", "subscriber", "amount", "method", "reference", "received_at", "collector"]
    list_filter = ["method"]
    search_fields = ["subscriber__customer_id", "reference"]
    list_select_related = ["subscriber", "collector"]


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    list_display = ["subscriber", "period_month", "opening_due", "billed", "paid", "adjusted", "closing_due"]
    search_fields = ["subscriber__customer_id"]
    list_select_related = ["subscriber"]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "bill", "issued_on", "total", "voided_at"]


for model in (Allocation, BillingRun, CreditNote, DocumentSequence):
    admin.site.register(model, ReadOnlyAdmin)
