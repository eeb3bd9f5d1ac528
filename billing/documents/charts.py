"""Server-rendered SVG charts for the usage page: no script, no chart library.

Colours come from the portal's stylesheet (classes ``bar``, ``axis``...), so
the charts follow the light and dark themes. Each chart carries a text
alternative (``role="img"`` + ``aria-label``); the tables beside them hold
the same numbers.
"""

from __future__ import annotations

import calendar
from datetime import date
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from ..money import format_inr

WIDTH = 720


def _n(value: float) -> str:
    return f"{value:.1f}"


def _nice_ceiling(value: Decimal) -> Decimal:
    """The axis maximum: 1, 2 or 5 × a power of ten, at least ``value``."""
    if value <= 0:
        return Decimal(1)
    magnitude = Decimal(10) ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _svg(height: int, label: str, body: SafeString) -> SafeString:
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" preserveAspectRatio="xMidYMid meet">'
        "<title>{}</title>{}</svg>",
        WIDTH,
        height,
        label,
        label,
        body,
    )


def usage_by_day_chart(*, month: date, days: list[dict]) -> SafeString:
    """Bars of each day's amount (before GST) across the whole month."""
    height, left, bottom, top = 220, 56, 24, 12
    count = calendar.monthrange(month.year, month.month)[1]
    amounts = {row["day"].day: row["amount"] for row in days}
    peak = _nice_ceiling(max(amounts.values(), default=Decimal(0)))
    plot_w, plot_h = WIDTH - left - 8, height - bottom - top
    slot = plot_w / count
    parts = []
    for tick in range(5):
        value = peak * tick / 4
        y = top + plot_h - float(value / peak) * plot_h
        parts.append(
            format_html(
                '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/><text x="{}" y="{}" text-anchor="end">₹{}</text>',
                left,
                WIDTH - 8,
                _n(y),
                _n(y),
                left - 6,
                _n(y + 4),
                format_inr(value).removesuffix(".00"),
            )
        )
    for day in range(1, count + 1):
        x = left + (day - 1) * slot
        amount = amounts.get(day, Decimal(0))
        bar_h = float(amount / peak) * plot_h
        if amount:
            parts.append(
                format_html(
                    '<rect class="bar" x="{}" y="{}" width="{}" height="{}" rx="2"><title>{} {}: ₹{}</title></rect>',
                    _n(x + slot * 0.15),
                    _n(top + plot_h - bar_h),
                    _n(slot * 0.7),
                    _n(bar_h),
                    day,
                    month.strftime("%b"),
                    format_inr(amount),
                )
            )
        if day == 1 or day % 5 == 0:
            parts.append(
                format_html('<text x="{}" y="{}" text-anchor="middle">{}</text>', _n(x + slot / 2), height - 6, day)
            )
    total = sum(amounts.values(), Decimal(0))
    label = f"Usage by day in {month:%B %Y}: ₹{format_inr(total)} before GST over {len(amounts)} days with usage."
    return _svg(height, label, mark_safe("".join(parts)))  # noqa: S308 (parts are format_html output)


def spend_by_vm_chart(*, vms: list[dict], limit: int = 10) -> SafeString:
    """Horizontal bars of each VM's amount (before GST), largest first; the rest summed as one bar."""
    rows = sorted(vms, key=lambda row: row["amount"], reverse=True)
    if len(rows) > limit:
        others = sum((row["amount"] for row in rows[limit - 1 :]), Decimal(0))
        rows = [*rows[: limit - 1], {"vm": f"{len(rows) - limit + 1} others", "amount": others}]
    left, row_h = 150, 26
    height = max(row_h * len(rows) + 8, 40)
    peak = max((row["amount"] for row in rows), default=Decimal(0)) or Decimal(1)
    plot_w = WIDTH - left - 110
    bars = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="end">{}</text>'
        '<rect class="bar" x="{}" y="{}" width="{}" height="16" rx="2"><title>{}: ₹{}</title></rect>'
        '<text class="value" x="{}" y="{}">₹{}</text>',
        (
            (
                left - 8,
                i * row_h + 17,
                row["vm"][:22],
                left,
                i * row_h + 4,
                _n(max(float(row["amount"] / peak) * plot_w, 1)),
                row["vm"],
                format_inr(row["amount"]),
                _n(left + max(float(row["amount"] / peak) * plot_w, 1) + 6),
                i * row_h + 17,
                format_inr(row["amount"]),
            )
            for i, row in enumerate(rows)
        ),
    )
    label = "Spend by VM before GST: " + ", ".join(f"{row['vm']} ₹{format_inr(row['amount'])}" for row in rows[:5])
    return _svg(height, label, bars)
