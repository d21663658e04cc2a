"""The outcomes report as text (the terminal) and as HTML (a file, or a page of the console).

The HTML is one self-contained document: the stylesheet inlined from this package, the charts drawn as SVG
(botkit/console/charts.py), no script. Every value is escaped. Figures are defined in docs/outcomes.md.
"""

from __future__ import annotations

from dataclasses import fields
from html import escape
from pathlib import Path

from botkit.console import charts
from botkit.figures import Figures, Report

STYLESHEET = Path(__file__).parent / "static" / "console.css"

# (attribute, label) of the figures each table shows, in order
ROWS = [
    ("conversations", "Conversations taken"),
    ("answered_without_handoff", "Answered without a hand-off"),
    ("resolved_by_bot", "Resolved by the bot"),
    ("handed_off", "Handed off"),
    ("reopened_within_week", "Reopened within a week"),
    ("first_reply_p50", "First reply p50 (s)"),
    ("first_reply_p95", "First reply p95 (s)"),
    ("kb_gaps", "Questions the knowledge base could not answer"),
    ("tokens_per_conversation", "Model tokens per conversation"),
    ("cost_per_conversation", "Model cost per conversation (USD)"),
]
assert {name for name, _ in ROWS} <= {f.name for f in fields(Figures)}


def show(value: object) -> str:
    """A figure as the report prints it: '-' for none, seconds with 2 decimals, money with 4."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if value < 0.01 and value != 0 else f"{value:.2f}"
    return str(value)


def text(report: Report) -> str:
    """The report for a terminal: the totals, the hand-off reasons, then one table per grouping."""
    lines = [f"botkit outcomes {report.to_json()['since']} .. {report.to_json()['until']}", ""]
    width = max(len(label) for _, label in ROWS)
    for name, label in ROWS:
        lines.append(f"{label:<{width}}  {show(getattr(report.total, name))}")
    lines.append(f"{'Model tokens':<{width}}  {report.total.tokens}")
    lines.append(f"{'Model cost (USD)':<{width}}  {show(report.total.cost)}")
    if report.total.unpriced_models:
        lines.append(f"  (no price in BOTKIT_MODEL_PRICES for: {', '.join(report.total.unpriced_models)})")
    lines += ["", "Hand-offs by reason:"]
    lines += [f"  {reason:<20} {count}" for reason, count in report.total.handoff_reasons.items()] or ["  none"]
    for title, groups in (("bot", report.by_bot), ("inbox", report.by_inbox), ("handler", report.by_handler)):
        lines += ["", f"Per {title}:", _table_text(groups)]
    return "\n".join(lines) + "\n"


def _table_text(groups: dict[str, Figures]) -> str:
    if not groups:
        return "  none"
    columns = [("conversations", "taken"), ("answered_without_handoff", "answered"),
               ("resolved_by_bot", "resolved"), ("handed_off", "handed off"), ("reopened_within_week", "reopened"),
               ("first_reply_p50", "p50 s"), ("first_reply_p95", "p95 s")]
    name_w = max(len(k) for k in groups) + 2
    header = "  " + "name".ljust(name_w) + "".join(label.rjust(12) for _, label in columns)
    rows = ["  " + key.ljust(name_w) + "".join(show(getattr(f, attr)).rjust(12) for attr, _ in columns)
            for key, f in groups.items()]
    return "\n".join([header, *rows])


def html(report: Report, *, title: str = "botkit outcomes", nav: str = "") -> str:
    """The report as one HTML document (`nav`: trusted HTML the console puts above it)."""
    summary = report.to_json()
    total = report.total
    cards = "".join(f'<div class="figure" data-figure="{name}"><div class="value">{escape(show(getattr(total, name)))}'
                    f'</div><div class="label">{escape(label)}</div></div>' for name, label in ROWS)
    days = [day for day, _ in report.daily]
    trend = charts.trend(days, {
        "taken": [f.conversations for _, f in report.daily],
        "answered": [f.answered_without_handoff for _, f in report.daily],
        "handed off": [f.handed_off for _, f in report.daily],
        "resolved": [f.resolved_by_bot for _, f in report.daily],
    }, title="Conversations per day")
    reasons = charts.bars({k: float(v) for k, v in total.handoff_reasons.items()}, title="Hand-offs by reason")
    unpriced = ""
    if total.unpriced_models:
        unpriced = (f'<p class="muted">No price in BOTKIT_MODEL_PRICES for: '
                    f'{escape(", ".join(total.unpriced_models))}.</p>')
    tables = "".join(f"<h2>Per {escape(name)}</h2>{_table_html(groups)}" for name, groups in
                     (("bot", report.by_bot), ("inbox", report.by_inbox), ("handler", report.by_handler)))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLESHEET.read_text()}</style></head><body><main class=\"outcomes\">{nav}"
            f"<h1>{escape(title)}</h1><p class=\"muted\">{escape(summary['since'])} to {escape(summary['until'])}"
            f" (UTC) · model tokens {total.tokens} · model cost {escape(show(total.cost))} USD</p>{unpriced}"
            f'<div class="figures">{cards}</div><div class="charts"><div class="chart">{trend}</div>'
            f'<div class="chart">{reasons}</div></div>{tables}'
            '<p class="muted">Each figure is defined in docs/outcomes.md.</p></main></body></html>')


def _table_html(groups: dict[str, Figures]) -> str:
    if not groups:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{escape(label)}</th>" for _, label in ROWS[:7])
    rows = "".join(f"<tr><td>{escape(key)}</td>" + "".join(f"<td>{escape(show(getattr(f, name)))}</td>"
                                                            for name, _ in ROWS[:7]) + "</tr>"
                   for key, f in groups.items())
    return f"<table><tr><th></th>{head}</tr>{rows}</table>"
