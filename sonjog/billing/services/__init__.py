"""Every write to billing goes through these functions (DESIGN rule 1)."""

from sonjog.billing.services.generation import (
    GenerationResult,
    bill_generate_period,
    document_numbers_reserve,
)
from sonjog.billing.services.money import (
    adjustment_add,
    bill_credit_add,
    entry_reverse,
    invoice_void,
    outage_credit_add,
    payment_record,
)
from sonjog.billing.services.projection import allocations_rebalance, money_changed, statements_reproject

__all__ = [
    "GenerationResult",
    "adjustment_add",
    "allocations_rebalance",
    "bill_credit_add",
    "bill_generate_period",
    "document_numbers_reserve",
    "entry_reverse",
    "invoice_void",
    "money_changed",
    "outage_credit_add",
    "payment_record",
    "statements_reproject",
]
