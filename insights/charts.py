"""Bar charts drawn on the server as SVG: no script, no CDN, readable without colour.

Every bar carries its value in text at its end and its label at its start; when several
series share a label, each series has its own fill pattern (solid, hatched, dotted, crossed)
shown in a legend, so nothing depends on telling colours apart. The chart is an image with a
title and a description for screen readers; the table under it holds the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

WIDTH = 680
LABEL_WIDTH = 210
VALUE_WIDTH = 90
BAR_HEIGHT = 16
BAR_GAP = 4
GROUP_GAP = 10
LEGEND_HEIGHT = 26
MAX_LABEL_CHARS = 30
INK = "#202223"
FILL = "#2c6ecb"


def _patterns(prefix: str) -> tuple[str, list[str]]:
    """The <defs> and the fill of each series: solid, then patterns told apart by shape."""
    defs = (
        f'<pattern id="{prefix}-hatch" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)">'
        f'<rect width="6" height="6" fill="#fff"/><rect width="2.5" height="6" fill="{INK}"/>'
        "</pattern>"
        f'<pattern id="{prefix}-dots" width="5" height="5" patternUnits="userSpaceOnUse">'
        f'<rect width="5" height="5" fill="#fff"/><circle cx="2.5" cy="2.5" r="1.3" fill="{INK}"/>'
        "</pattern>"
        f'<pattern id="{prefix}-cross" width="6" height="6" patternUnits="userSpaceOnUse">'
        f'<rect width="6" height="6" fill="#fff"/><path d="M0 3H6M3 0V6" stroke="{INK}"'
        ' stroke-width="1.2"/></pattern>'
    )
    fills = [FILL, f"url(#{prefix}-hatch)", f"url(#{prefix}-dots)", f"url(#{prefix}-cross)"]
    return defs, fills


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


def _number(value: float) -> str:
    return f"{value:,.1f}".rstrip("0").rstrip(".") if value % 1 else f"{int(value):,}"


def bar_chart_svg(
    *,
    key: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    unit: str = "",
) -> SafeString:
    """Horizontal bars, one group per label, one bar per series; None draws no bar ("—")."""
    prefix = f"chart-{key}"
    defs, fills = _patterns(prefix)
    values = [v for _, vs in series for v in vs if v is not None]
    top = max(values, default=0) or 1
    bar_area = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    legend = LEGEND_HEIGHT if len(series) > 1 else 0
    group_height = len(series) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
    height = legend + len(labels) * (group_height + GROUP_GAP) + 4
    description = gettext("Bar chart; the table below gives the same figures.")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"'
        f' viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet"'
        f' aria-labelledby="{prefix}-title {prefix}-desc">',
        f'<title id="{prefix}-title">{escape(title)}</title>',
        f'<desc id="{prefix}-desc">{escape(description)}</desc>',
        f"<defs>{defs}</defs>",
    ]
    if legend:
        x = LABEL_WIDTH
        for index, (name, _) in enumerate(series):
            fill = fills[index % len(fills)]
            parts.append(
                f'<rect x="{x}" y="4" width="14" height="14" fill="{fill}" stroke="{INK}"/>'
                f'<text x="{x + 19}" y="15" font-size="12" fill="{INK}">{escape(name)}</text>'
            )
            x += 30 + 7 * len(name)
    y = legend
    for row, label in enumerate(labels):
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + group_height / 2 + 4:.0f}" font-size="12"'
            f' text-anchor="end" fill="{INK}">{escape(_short(label))}</text>'
        )
        for index, (_, vs) in enumerate(series):
            value = vs[row]
            bar_y = y + index * (BAR_HEIGHT + BAR_GAP)
            width = 0 if value is None else max(1.0, bar_area * value / top) if value else 0
            if width:
                parts.append(
                    f'<rect x="{LABEL_WIDTH}" y="{bar_y}" width="{width:.1f}"'
                    f' height="{BAR_HEIGHT}" fill="{fills[index % len(fills)]}"'
                    f' stroke="{INK}" stroke-width="0.5"/>'
                )
            text = "—" if value is None else f"{_number(value)} {unit}".strip()
            parts.append(
                f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{bar_y + BAR_HEIGHT - 4}"'
                f' font-size="12" fill="{INK}">{escape(text)}</text>'
            )
        y += group_height + GROUP_GAP
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped
