"""A job's static HTML report, written at job end next to its output files (``report.html``).

One self-contained page (no script, no external resource): each result's metrics with their mean and
bootstrap 95% interval, drawn as bars with interval whiskers in inline SVG, then a per-record table
(prompt, reference, response, each metric's score and the judge's explanation). Every text that comes
from a dataset, a model or a judge goes through ``html.escape``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from haniwa.evaluation.human import line_scores

__all__ = ["render_report"]

_MAX_ROWS = 1000  # per result; a dataset is at most 1,000 lines anyway
_CSS = """
body{font-family:system-ui,'Hiragino Sans','Noto Sans JP',sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px}td,th{border:1px solid #ccc;padding:4px 8px;
vertical-align:top;text-align:left}th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:
tabular-nums}.muted{color:#666;font-size:90%}pre{white-space:pre-wrap;margin:0;max-width:40em}
"""


def _num(x: Any) -> str:
    return "—" if x is None else f"{float(x):.3f}"


def _chart(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    names = sorted(metrics)
    row_h, left, width = 22, 190, 360
    h = row_h * len(names) + 24
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{h}" role="img">']
    for i, m in enumerate(names):
        v = metrics[m]
        y = 4 + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" font-size="12">{escape(m)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{width}" height="14" fill="#eee"/>')
        if v.get("mean") is not None:
            mean = max(0.0, min(1.0, float(v["mean"])))
            parts.append(
                f'<rect x="{left}" y="{y + 3}" width="{mean * width:.1f}" height="14" fill="#6b8fc7"/>'
            )
        if v.get("ci95Low") is not None and v.get("ci95High") is not None:
            lo = left + max(0.0, min(1.0, float(v["ci95Low"]))) * width
            hi = left + max(0.0, min(1.0, float(v["ci95High"]))) * width
            mid = y + 10
            parts.append(
                f'<path d="M{lo:.1f} {mid}H{hi:.1f}M{lo:.1f} {mid - 5}V{mid + 5}'
                f'M{hi:.1f} {mid - 5}V{mid + 5}" stroke="#222" stroke-width="1.5" fill="none"/>'
            )
        parts.append(f'<text x="{left + width + 6}" y="{y + 14}" font-size="12">{_num(v.get("mean"))}</text>')
    for t in (0.0, 0.5, 1.0):
        x = left + t * width
        parts.append(f'<text x="{x:.1f}" y="{h - 4}" text-anchor="middle" font-size="10">{t:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _noise(n: Mapping[str, Any] | None) -> str:
    if not n:
        return "—"
    return f"sd {_num(n.get('meanStd'))} · {float(n.get('disagreement') or 0):.0%}"


def _explanations(sc: Mapping[str, Any]) -> str:
    out = [str(d.get("explanation") or "") for d in sc.get("evaluatorDetails") or []]
    if sc.get("explanation"):
        out.append(str(sc["explanation"]))
    if sc.get("error"):
        out.append(f"error: {sc['error']}")
    return "\n".join(x for x in out if x)


def _records(lines: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> str:
    head = "".join(f"<th>{escape(m)}</th>" for m in metrics)
    rows = []
    for i, x in enumerate(lines[:_MAX_ROWS]):
        rec = x.get("inputRecord") or {}
        resp = (x.get("modelResponses") or [{}])[0].get("response")
        if resp is None and x.get("retrievedPassages"):
            resp = "\n---\n".join(str(p["content"]["text"]) for p in x["retrievedPassages"])
        if x.get("error"):
            resp = f"error: {x['error']}"
        scores = {s["metricName"]: s for s in line_scores(x)}
        cells = []
        for m in metrics:
            sc = scores.get(m)
            if sc is None:
                cells.append('<td class="num">—</td>')
                continue
            why = _explanations(sc)
            note = f'<div class="muted"><pre>{escape(why)}</pre></div>' if why else ""
            cells.append(f'<td class="num">{_num(sc.get("result"))}{note}</td>')
        prompt = rec.get("prompt")
        if prompt is None and rec.get("conversationTurns"):
            prompt = rec["conversationTurns"][0].get("prompt", {}).get("content", [{}])[0].get("text")
        rows.append(
            f"<tr><td class='num'>{i + 1}</td><td><pre>{escape(str(prompt or ''))}</pre></td>"
            f"<td><pre>{escape(str(rec.get('referenceResponse') or ''))}</pre></td>"
            f"<td><pre>{escape(str(resp or ''))}</pre></td>{''.join(cells)}</tr>"
        )
    more = (
        f'<p class="muted">{len(lines) - _MAX_ROWS} more records are in the JSONL output.</p>'
        if len(lines) > _MAX_ROWS
        else ""
    )
    return (
        f"<table><thead><tr><th>#</th><th>prompt</th><th>reference</th><th>response</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{more}"
    )


def render_report(summary: Mapping[str, Any], lines_by_result: Sequence[Sequence[Mapping[str, Any]]]) -> str:
    """The report page for a job's ``summary`` (as in summary.json) and each result's output lines."""
    title = f"Evaluation {summary.get('jobName', '')} ({summary.get('jobId', '')})"
    body = [f"<h1>{escape(title)}</h1>"]
    for entry, lines in zip(summary.get("results", []), lines_by_result, strict=False):
        metrics: Mapping[str, Mapping[str, Any]] = entry.get("metrics") or {}
        body.append(
            f"<h2>{escape(str(entry.get('source')))} · {escape(str(entry.get('taskType')))}"
            f" · {escape(str(entry.get('dataset')))}</h2>"
            f'<p class="muted">{escape(str(entry.get("outputUri", "")))}</p>'
        )
        noise: Mapping[str, Mapping[str, Any]] = entry.get("judgeNoise") or {}
        rows = "".join(
            f"<tr><td>{escape(m)}</td><td class='num'>{_num(v.get('mean'))}</td>"
            f"<td class='num'>[{_num(v.get('ci95Low'))}, {_num(v.get('ci95High'))}]</td>"
            f"<td class='num'>{v.get('count', 0)}</td>"
            + (f"<td class='num'>{_noise(noise.get(m))}</td>" if noise else "")
            + "</tr>"
            for m, v in sorted(metrics.items())
        )
        body.append(
            "<table><thead><tr><th>metric</th><th>mean</th><th>95% interval (bootstrap)</th><th>records</th>"
            + ("<th>judge noise (mean sd · records the samples disagree on)</th>" if noise else "")
            + f"</tr></thead><tbody>{rows}</tbody></table>"
        )
        if metrics:
            body.append(_chart(metrics))
        body.append(_records(lines, sorted(metrics)))
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy"'
        " content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
