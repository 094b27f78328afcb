"""The report as one self-contained HTML page: tables and inline SVG plots, no script, no fetch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from ._money import usd
from ._wording import MODELS_SUM, TIERS_SUM, count, drift_weeks

__all__ = ["render_html"]

_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
_W, _H, _PAD = 720, 260, 44

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .7em;border-bottom:1px solid #eee}
th{text-align:left;background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.big{font-size:1.3em;font-weight:600}svg{background:#fcfcfc;border:1px solid #eee}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:.8em;height:.8em;
margin-right:.3em}
"""


def render_html(report: Mapping[str, Any], *, title: str = "gearshift report") -> str:
    """One HTML page (no external resource, no script) showing `report` (from `build_report`)."""
    cost = report["cost"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        '<link rel="icon" href="data:,">',  # no request for /favicon.ico
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{_span(report)}{' · agent ' + escape(report['agent']) if report.get('agent') else ''}</p>",
        '<p class="big">',
        f"{count(report['requests'], 'request')} · cost {usd(cost['cost_usd'])} · always-strongest "
        f"{usd(cost['always_strongest_usd'])} · saved {usd(cost['savings_usd'])}"
        f"{' (' + _pct(cost['savings_share']) + ')' if cost['savings_share'] is not None else ''}",
        f" · escalation rate {_pct(report['escalation']['rate'])} of answered requests</p>",
        "<h2>Share per tier over time</h2>",
        _tier_share_plot(report["days"]),
        "<h2>Cost against always-strongest (cumulative)</h2>",
        _cost_plot(report["days"]),
        "<h2>Models</h2>",
        f"<p>Cost is {escape(MODELS_SUM)}.</p>",
        _table(
            ("model", "tier", "requests", "share", "cost", "p50 ms", "p95 ms"),
            (
                (
                    m,
                    v["tier"],
                    v["requests"],
                    _pct(v["share"]),
                    usd(v["cost_usd"]),
                    _ms(v["latency_p50_ms"]),
                    _ms(v["latency_p95_ms"]),
                )
                for m, v in report["models"].items()
            ),
        ),
        "<h2>Tiers</h2>",
        f"<p>Cost is {escape(TIERS_SUM)}.</p>",
        _table(
            ("tier", "requests", "share", "cost", "cost / request"),
            (
                (
                    t,
                    v["requests"],
                    _pct(v["share"]),
                    usd(v["cost_usd"]),
                    usd(v["cost_per_request_usd"]),
                )
                for t, v in report["tiers"].items()
            ),
        ),
        "<h2>Escalations by cause</h2>",
        _table(
            ("cause", "requests", "rate"),
            ((c, v["requests"], _pct(v["rate"])) for c, v in report["escalation"]["by_cause"].items()),
        ),
        f"<p>{count(report['escalation']['failed_handovers'], 'hand-over')} found no stronger answer "
        "(the caller kept the weaker one, or got an error and the request counts as unanswered); "
        "they are not counted above.</p>",
        "<h2>Providers</h2>",
        _table(
            ("provider", "attempts", "errors", "error rate", "fallbacks", "fallback rate"),
            (
                (
                    p,
                    v["attempts"],
                    v["errors"],
                    _pct(v["error_rate"]),
                    v["fallbacks"],
                    _pct(v["fallback_rate"]),
                )
                for p, v in report["providers"].items()
            ),
        ),
        "<h2>Budgets</h2>",
        _table(
            ("refusals", "overruns", "overrun excess"),
            [
                (
                    report["budget"]["refusals"],
                    report["budget"]["overruns"],
                    usd(report["budget"]["overrun_excess_usd"]),
                )
            ],
        ),
        _shadow(report["shadow"], report["feedback"]),
        "<h2>Agents</h2>",
        _table(
            ("agent", "requests", "cost", "always-strongest", "saved", "escalation rate"),
            (
                (
                    a,
                    v["requests"],
                    usd(v["cost_usd"]),
                    usd(v["always_strongest_usd"]),
                    usd(v["savings_usd"]),
                    _pct(v["escalation_rate"]),
                )
                for a, v in report["agents"].items()
            ),
        ),
        "<h2>Week over week</h2>",
        _table(
            ("week", "days", "requests", "escalation rate", "mean predicted difficulty"),
            (
                (w["week"], w["days"], w["requests"], _pct(w["escalation_rate"]), _num(w["difficulty_mean"]))
                for w in report["weeks"]
            ),
        ),
        _drift(report.get("drift")),
        "</body></html>",
    ]
    return "\n".join(parts)


def _span(report: Mapping[str, Any]) -> str:
    log = report["log"]
    if log["first_ts"] is None:
        return "an empty log"
    first, last = (
        dt.datetime.fromtimestamp(log[k], dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        for k in ("first_ts", "last_ts")
    )
    return f"{count(log['records'], 'record')} from {first} to {last}"


def _shadow(shadow: Mapping[str, Any], feedback: Mapping[str, Any]) -> str:
    parts = ["<h2>Quality</h2>"]
    if shadow["pairs"]:
        parts.append(
            f"<p>{count(shadow['pairs'], 'shadow pair')}, {usd(shadow['cost_usd'])} spent on shadows.</p>"
        )
    if shadow["upward_pairs"]:
        kept = f" ({_pct(shadow['quality_kept'])} kept)" if shadow["quality_kept"] is not None else ""
        parts.append(
            f"<p>{shadow['upward_pairs']:,} upward (calls answered below the reference's tier): judged "
            f"quality {_num(shadow['quality'])} against {_num(shadow['reference_quality'])} for the "
            f"reference model{kept}.</p>"
        )
    if shadow["downward_pairs"]:
        parts.append(
            f"<p>{shadow['downward_pairs']:,} downward (calls answered at the reference's tier or "
            f"above, also asked of the cheapest model): it did as well on {_pct(shadow['over_routed'])} "
            "of them (over-routed).</p>"
        )
    if not shadow["pairs"]:
        parts.append("<p>No shadow pairs: turn on [routing.shadow] to compare against the reference.</p>")
    if feedback["count"]:
        parts.append(
            f"<p>{count(feedback['count'], 'feedback score')}, mean {_num(feedback['mean_score'])}.</p>"
        )
    return "".join(parts)


def _drift(drift: Mapping[str, Any] | None) -> str:
    if drift is None:
        return "<p>Drift needs two weeks of traffic.</p>"
    change = drift["escalation_rate_change"] * 100
    text = f"{escape(drift_weeks(drift))}: escalation rate {change:+.1f} points"
    if drift["difficulty_mean_change"] is not None:
        text += (
            f", mean predicted difficulty {drift['difficulty_mean_change']:+.3f}, difficulty distribution "
            f"moved by {drift['difficulty_distance']:.3f} (total variation)"
        )
    return f"<p>{text}.</p>"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td>none</td></tr>'}</tbody></table>"


def _cell(value: object) -> str:
    numeric = isinstance(value, (int, float)) or (isinstance(value, str) and value[:1] in "$0123456789-")
    text = f"{value:,}" if isinstance(value, int) else str(value)
    return f'<td class="n">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"


def _tier_share_plot(days: Sequence[Mapping[str, Any]]) -> str:
    if not days:
        return "<p>No requests.</p>"
    tiers = sorted({t for day in days for t in day["tiers"]}, key=int)
    color = {t: _COLORS[i % len(_COLORS)] for i, t in enumerate(tiers)}
    width = (_W - 2 * _PAD) / len(days)
    bars = []
    for i, day in enumerate(days):
        answered = sum(day["tiers"].values())
        y = float(_H - _PAD)
        for tier in tiers:
            share = day["tiers"].get(tier, 0) / answered if answered else 0.0
            height = share * (_H - 2 * _PAD)
            y -= height
            bars.append(
                f'<rect x="{_PAD + i * width:.1f}" y="{y:.1f}" width="{max(width - 1, 0.5):.1f}" '
                f'height="{height:.1f}" fill="{color[tier]}">'
                f"<title>{escape(day['day'])} tier {escape(tier)}: {share:.1%}</title></rect>"
            )
    legend = "".join(f'<span><i style="background:{color[t]}"></i>tier {escape(t)}</span>' for t in tiers)
    return (
        _svg("share of requests per tier, per day", bars, days, 1.0, "{:.0%}")
        + f'<div class="legend">{legend}</div>'
    )


def _cost_plot(days: Sequence[Mapping[str, Any]]) -> str:
    if not days:
        return "<p>No requests.</p>"
    # Both lines start at zero, so a log of one day still draws them.
    actual, reference = [0.0], [0.0]
    spent = strongest = 0.0
    for day in days:
        spent += day["cost_usd"]
        strongest += day["always_strongest_usd"]
        actual.append(spent)
        reference.append(strongest)
    top = max(max(actual), max(reference)) or 1.0
    step = (_W - 2 * _PAD) / len(days)

    def line(values: list[float], color: str, label: str) -> str:
        points = " ".join(
            f"{_PAD + i * step:.1f},{_H - _PAD - v / top * (_H - 2 * _PAD):.1f}" for i, v in enumerate(values)
        )
        return (
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}">'
            f"<title>{label}</title></polyline>"
        )

    marks = [line(reference, _COLORS[3], "always-strongest"), line(actual, _COLORS[0], "gearshift")]
    legend = (
        f'<div class="legend"><span><i style="background:{_COLORS[0]}"></i>gearshift</span>'
        f'<span><i style="background:{_COLORS[3]}"></i>always-strongest</span></div>'
    )
    return _svg("cumulative cost in US dollars", marks, days, top, "${:,.2f}") + legend


def _svg(label: str, marks: list[str], days: Sequence[Mapping[str, Any]], top: float, fmt: str) -> str:
    axis = [
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#999"/>',
        f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#999"/>',
        f'<text x="4" y="{_PAD + 4}" font-size="11">{escape(fmt.format(top))}</text>',
        f'<text x="4" y="{_H - _PAD}" font-size="11">{escape(fmt.format(0))}</text>',
        f'<text x="{_PAD}" y="{_H - _PAD + 16}" font-size="11">{escape(days[0]["day"])}</text>',
        f'<text x="{_W - _PAD}" y="{_H - _PAD + 16}" font-size="11" text-anchor="end">'
        f"{escape(days[-1]['day'])}</text>",
    ]
    return (
        f'<svg role="img" aria-label="{escape(label)}" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(axis + marks)}</svg>'
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
