"""Charts drawn on the server as SVG text: a trend per day and horizontal bars. No JavaScript, no library.

Every label is escaped; sizes are in SVG user units (pixels at 100%).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

COLOURS = ["#1f93ff", "#f5a623", "#2f855a", "#805ad5", "#e0787d", "#4a5568"]


def trend(days: Sequence[str], series: dict[str, Sequence[float]], *, title: str, width: int = 520,
          height: int = 220) -> str:
    """One line per series over the days (each series as long as `days`), with a legend."""
    left, right, top, bottom = 36, 24, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([1.0, *(v for values in series.values() for v in values)])
    step = plot_w / max(1, len(days) - 1)

    def x(i: int) -> float:
        return left + (i * step if len(days) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - v / peak * plot_h

    parts = [_open(width, height, title), f'<text x="{left}" y="16" class="chart-title" font-size="13" '
             f'font-weight="600">{escape(title)}</text>']
    for tick in (0, peak / 2, peak):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                     'stroke="#e3e8ee"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end" '
                     f'fill="#6b7c93">{_number(tick)}</text>')
    shown = max(1, len(days) // 7)  # at most ~7 day labels
    for i, day in enumerate(days):
        if i % shown == 0 or i == len(days) - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="middle" '
                         f'fill="#6b7c93">{escape(day[5:])}</text>')
    for n, (name, values) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline class="series" data-series="{escape(name)}" fill="none" stroke="{colour}" '
                     f'stroke-width="2" points="{points}"/>')
        for i, v in enumerate(values):
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                         f'<title>{escape(name)} {escape(days[i])}: {_number(v)}</title></circle>')
        legend_x = left + n * 130
        parts.append(f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{legend_x + 14}" y="{height - 5}" font-size="11">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(values: dict[str, float], *, title: str, width: int = 520) -> str:
    """A horizontal bar per key, longest first as given, with its value at the end."""
    row, top, label_w = 24, 28, 150
    height = top + row * max(1, len(values)) + 8
    peak = max([1.0, *values.values()])
    parts = [_open(width, height, title), f'<text x="0" y="16" font-size="13" font-weight="600">{escape(title)}'
                                          '</text>']
    if not values:
        parts.append(f'<text x="0" y="{top + 16}" font-size="12" fill="#6b7c93">none</text>')
    for n, (name, value) in enumerate(values.items()):
        y = top + n * row
        length = (width - label_w - 50) * value / peak
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" font-size="12" text-anchor="end">{escape(name)}</text>'
                     f'<rect class="bar" data-label="{escape(name)}" x="{label_w}" y="{y + 3}" width="{length:.1f}" '
                     f'height="{row - 8}" rx="3" fill="{COLOURS[n % len(COLOURS)]}"/>'
                     f'<text x="{label_w + length + 6:.1f}" y="{y + 15}" font-size="12">{_number(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _open(width: int, height: int, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif">')


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
