"""``digest --html FILE``: one self-contained page — inline CSS and SVG, no script, no fetch.

The page says what was read (files, formats, skipped lines with examples), draws queries per
minute and database time per minute as inline SVG (deploys, when the store knew of any, as
dashed lines), and lists the top fingerprints with their samples behind ``<details>``.
Everything from the log is escaped; literal values only appear with ``--show-values``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from querywatch.logs.report import ms_text, utc_text

WIDTH, HEIGHT = 920, 180
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 26

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 6px;border-bottom:1px solid #e3e6ec;text-align:right;vertical-align:top}
th:last-child,td:last-child{text-align:left}
td.q{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word}
code,pre{font-family:ui-monospace,monospace;font-size:12px}
pre{background:#f5f6f8;padding:8px;overflow:auto;white-space:pre-wrap}
.muted{color:#6b7280}.warn{color:#9a3412}
svg{display:block;margin:8px 0 18px}
svg .bar{fill:#3b6fd8}svg .axis{stroke:#9ca3af}svg text{font-size:11px;fill:#4b5563}
svg .deploy{stroke:#c2410c;stroke-dasharray:4 3}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


_ms, _when = ms_text, utc_text


def bar_chart(
    title: str,
    points: Sequence[tuple[float, float]],
    width_s: int,
    unit: str,
    markers: Sequence[tuple[float, str]] = (),
) -> str:
    """A bar per bucket (start, value), with its value in a hover ``<title>``."""
    if not points:
        return f'<p class="muted">{esc(title)}: no timed statements to draw.</p>'
    start = points[0][0]
    end = points[-1][0] + width_s
    top = max(v for _, v in points) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = max(end - start, width_s)

    def x(t: float) -> float:
        return LEFT + (t - start) / span * plot_w

    bar_w = max(plot_w * width_s / span - 1, 1.0)
    parts = [
        f'<svg class="chart" role="img" aria-label="{esc(title)}" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{esc(title)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_h}"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{esc(_short(top))}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 6}">{esc(_when(start))}</text>',
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">{esc(_when(end))}</text>',
    ]
    for t, v in points:
        h = v / top * plot_h
        parts.append(
            f'<rect class="bar" x="{x(t):.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" '
            f'height="{h:.1f}"><title>{esc(_when(t))}: {esc(_short(v))} {esc(unit)}</title></rect>'
        )
    for t, label in markers:
        if start <= t <= end:
            parts.append(
                f'<line class="deploy" x1="{x(t):.1f}" y1="{TOP}" x2="{x(t):.1f}" '
                f'y2="{TOP + plot_h}"><title>{esc(label)}</title></line>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _short(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    return f"{v:,.0f}" if v >= 10 else f"{v:.2f}"


def render(data: dict[str, Any], title: str = "querywatch digest") -> str:
    """The page for a ``digest_json`` document."""
    minute = data["per_minute"]
    width = minute["bucket_seconds"]
    pts = minute["points"]
    markers = [(p["start"], p["label"]) for p in data.get("phases", [])[1:] if p["start"]]
    unit = "min" if width == 60 else f"{width} s"
    body = [
        f"<h1>{esc(title)}</h1>",
        _summary(data),
        f"<h2>Queries per {esc(unit)}</h2>",
        bar_chart("queries", [(p["start"], p["calls"]) for p in pts], width, "queries", markers),
        f"<h2>Database time per {esc(unit)} (ms)</h2>",
        bar_chart("time", [(p["start"], p["total_ms"]) for p in pts], width, "ms", markers),
    ]
    phases = data.get("phases")
    if phases:
        for phase in phases:
            body.append(f"<h2>Top fingerprints {esc(phase['label'])}</h2>")
            body.append(_table(phase["fingerprints"]))
    else:
        body.append("<h2>Top fingerprints by total time</h2>")
        body.append(_table(data["fingerprints"]))
    body.append(_files(data["files"]))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def _summary(data: dict[str, Any]) -> str:
    skipped = data["skipped_lines"]
    items = [
        f"{data['statements']:,} statements in {data['fingerprint_count']:,} fingerprints",
        f"from {_when(data['first_seen'])} to {_when(data['last_seen'])}",
        f"{len(data['files'])} file(s)",
    ]
    warn = f' <span class="warn">{skipped:,} lines skipped (see below)</span>' if skipped else ""
    return f"<p>{esc(', '.join(items))}.{warn}</p>"


def _table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="muted">No statements.</p>'
    head = (
        "<tr><th>total ms</th><th>calls</th><th>mean ms</th><th>p95 ms</th><th>p99 ms</th>"
        "<th>rows</th><th>errors</th><th>first / last seen</th><th>query</th></tr>"
    )
    out = [f"<table>{head}"]
    for r in rows:
        extra = []
        if r["sample"]:
            s = r["sample"]
            where = f"{s['file']}:{s['line']}" if s["file"] else f"line {s['line']}"
            extra.append(
                f"<p>slowest: {esc(_ms(s['duration_ms']))} ms at {esc(_when(s['at']))} "
                f"({esc(where)})</p><pre>{esc(s['text'])}</pre>"
            )
            if s["parameters"]:
                extra.append(f"<p>parameters: <code>{esc(s['parameters'])}</code></p>")
        if r["plan"]:
            p = r["plan"]
            shown = p["text"] or "(plan hidden: it holds literal values; use --show-values)"
            extra.append(
                f"<p>slowest auto_explain plan ({esc(_ms(p['duration_ms']))} ms, "
                f"{r['plans']} logged):</p><pre>{esc(shown)}</pre>"
            )
        for key, label in (("lock_waits", "lock waits"), ("temp_files", "temp files")):
            if r[key]:
                extra.append(f"<p>{esc(label)}: {r[key]:,}</p>")
        if r["error_example"]:
            extra.append(f"<p>error: <code>{esc(r['error_example'])}</code></p>")
        details = f"<details><summary>details</summary>{''.join(extra)}</details>" if extra else ""
        rows_cell = "–" if r["rows"] is None else f"{r['rows']:,}"
        out.append(
            f"<tr><td>{esc(_ms(r['total_ms']))}</td><td>{r['calls']:,}</td>"
            f"<td>{esc(_ms(r['mean_ms']))}</td><td>{esc(_ms(r['p95_ms']))}</td>"
            f"<td>{esc(_ms(r['p99_ms']))}</td><td>{esc(rows_cell)}</td><td>{r['errors']:,}</td>"
            f"<td>{esc(_when(r['first_seen']))}<br>{esc(_when(r['last_seen']))}</td>"
            f'<td class="q"><span class="muted">{esc(r["fingerprint"])}</span>\n'
            f"{esc(r['normalized'])}{details}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _files(files: Sequence[dict[str, Any]]) -> str:
    out = [
        "<h2>Files read</h2><table><tr><th>lines</th><th>records</th><th>skipped</th>"
        "<th>format</th><th>file</th></tr>"
    ]
    for f in files:
        fmt = f["format"] + (f" (prefix {f['prefix']!r})" if f.get("prefix") else "")
        out.append(
            f"<tr><td>{f['lines']:,}</td><td>{f['records']:,}</td><td>{f['skipped']:,}</td>"
            f"<td>{esc(fmt)}</td><td>{esc(f['path'])}</td></tr>"
        )
    out.append("</table>")
    for f in files:
        if f["skipped_examples"]:
            out.append(f"<p>Skipped in {esc(f['path'])}, for example:</p><pre>")
            out.extend(
                esc(f"line {e['line']}: {e['reason']}: {e['text']}") + "\n"
                for e in f["skipped_examples"]
            )
            out.append("</pre>")
    return "".join(out)
