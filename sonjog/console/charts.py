"""Server-rendered SVG charts: no JavaScript library, crisp on any screen, printable."""

from __future__ import annotations

from decimal import Decimal

from django.utils import formats
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from sonjog.console import formatting
from sonjog.console.selectors import PeriodFigures


def _nice_step(value: Decimal) -> Decimal:
    """The smallest round step (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^n) at or above `value`, so grid
    lines fall on amounts a reader can take in at a glance."""
    if value <= 0:
        return Decimal(1)
    magnitude = Decimal(10) ** (len(str(int(value))) - 1)
    for step in (Decimal(n) for n in ("1", "1.5", "2", "2.5", "3", "4", "5", "6", "8", "10")):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _compact(value: Decimal) -> str:
    if formatting.is_bangla():
        if value >= 10_000_000:
            text = f"{value / 10_000_000:.1f} " + _("crore")
        elif value >= 100_000:
            text = f"{value / 100_000:.1f} " + _("lakh")
        else:
            text = f"{value:,.0f}"
        return formatting.localize_digits(text.replace(".0 ", " "))
    for limit, suffix in ((Decimal(1_000_000_000), "B"), (Decimal(1_000_000), "M"), (Decimal(1_000), "k")):
        if value >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:,.0f}"


def generated_vs_collected(periods: list[PeriodFigures], currency: str) -> SafeString:
    width, height = 720, 260
    left, right, top, bottom = 64, 12, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([p.generated for p in periods] + [p.collected for p in periods] + [Decimal(0)])
    step_amount = _nice_step(peak / 4)
    ceiling = step_amount * 4
    slot = plot_w / max(len(periods), 1)
    bar = slot * 0.34
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(_("Generated and paid in period, last 12 periods"))}" '
        'preserveAspectRatio="xMidYMid meet">'
    ]
    for step in range(5):
        amount = step_amount * step
        y = top + plot_h - float(amount / ceiling) * plot_h
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{escape(_compact(amount))}</text>'
        )
    for index, figures in enumerate(periods):
        x = left + index * slot + slot * 0.14
        for offset, (value, css, label) in enumerate(
            (
                (figures.generated, "bar-generated", _("Generated")),
                (figures.collected, "bar-collected", _("Paid in period")),
            )
        ):
            bar_h = float(value / ceiling) * plot_h if ceiling else 0
            title = f"{formatting.period_label(figures.period_month)} · {label}: {formatting.money(value, currency)}"
            parts.append(
                f'<rect x="{x + offset * bar:.1f}" y="{top + plot_h - bar_h:.1f}" width="{bar - 2:.1f}" '
                f'height="{bar_h:.1f}" class="{css}"><title>{escape(title)}</title></rect>'
            )
        month = formatting.localize_digits(formats.date_format(figures.period_month, "M y"))
        parts.append(
            f'<text x="{left + index * slot + slot / 2:.1f}" y="{height - bottom + 16}" class="axis" '
            f'text-anchor="middle">{escape(month)}</text>'
        )
    legend_y = height - 8
    parts.append(f'<rect x="{left}" y="{legend_y - 9}" width="10" height="10" class="bar-generated"/>')
    parts.append(f'<text x="{left + 14}" y="{legend_y}" class="axis">{escape(_("Generated"))}</text>')
    parts.append(f'<rect x="{left + 110}" y="{legend_y - 9}" width="10" height="10" class="bar-collected"/>')
    parts.append(f'<text x="{left + 124}" y="{legend_y}" class="axis">{escape(_("Paid in period"))}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text above is escaped
