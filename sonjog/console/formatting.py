"""Numbers, money and dates in the reader's language, for the console: the definitions are
`sonjog.core.formatting`'s (the portal shows the same figures); this name stays because much of the
console imports it."""

from sonjog.core.formatting import (
    group_south_asian,
    is_bangla,
    local_date,
    local_datetime,
    localize_digits,
    money,
    number,
    period_label,
)

__all__ = [
    "group_south_asian",
    "is_bangla",
    "local_date",
    "local_datetime",
    "localize_digits",
    "money",
    "number",
    "period_label",
]
