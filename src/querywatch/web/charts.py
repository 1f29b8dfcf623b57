"""Charts as SVG drawn on the server: no script, no CDN, and every value escaped.

A chart is a ``<figure>`` with its legend and one ``<svg>``: each series a ``<path
class="series" data-series="…">``, each deploy a ``<line class="deploy-marker"
data-deploy-id="…">`` whose ``<title>`` (the browser's hover) says version, commit and who, and
one transparent slice per bucket whose ``<title>`` gives the values there. The classes and
``data-`` attributes are stable: browser tests and people's own styles hold on to them.

Everything put into the markup goes through :func:`markupsafe.escape`; the result is
:class:`~markupsafe.Markup`, so templates include it without ``|safe`` on any data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 960, 200
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 12, 24
#: Chart steps, seconds: each a whole number of the store's slots where it is 5 min or more.
STEPS = (10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
Scale = Callable[[float], float]
_TICKS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800)


@dataclass(frozen=True, slots=True)
class Series:
    """One line: ``points`` are (bucket start, value), ``None`` for a gap (no data)."""

    key: str  # data-series: "db_time", "calls", "mean", "p95", "rows"
    label: str
    unit: str
    points: Sequence[tuple[float, float | None]]


@dataclass(frozen=True, slots=True)
class Marker:
    """A vertical line at ``at``: a deploy (or a rollback, an incident) with its hover text."""

    at: float
    key: str  # data-deploy-id (or data-incident-id for kind "incident")
    title: str  # version, commit, who
    href: str | None = None
    kind: str = "deploy"  # deploy | rollback | incident


def pick_step(span: float, max_points: int = 360, minimum: int = 10) -> int:
    """The smallest chart step that draws ``span`` seconds in at most ``max_points`` buckets."""
    for step in STEPS:
        if step >= minimum and span / step <= max_points:
            return step
    return STEPS[-1]


def line_chart(
    chart: str,
    title: str,
    series: Sequence[Series],
    since: float,
    until: float,
    step: int,
    markers: Sequence[Marker] = (),
) -> Markup:
    """A figure with ``series`` over ``[since, until)``, deploy markers on top."""
    values = [v for s in series for _, v in s.points if v is not None]
    top = nice_ceiling(max(values, default=0.0))
    x = _xscale(since, until)

    def y(v: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (v / top if top else 0.0))

    unit = series[0].unit if series else ""
    out = [
        f'<figure class="chart" data-chart="{escape(chart)}">',
        f'<figcaption><span class="chart-title">{escape(title)}</span>'
        f'<span class="unit">{escape(unit)}</span>',
        *(
            f'<span class="legend legend-{escape(s.key)}" data-legend="{escape(s.key)}">'
            f"{escape(s.label)}</span>"
            for s in series
        ),
        "</figcaption>",
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
    ]
    out += _grid(top, y)
    out += _time_axis(since, until, x)
    if not values:
        out.append(
            f'<text class="empty" x="{WIDTH / 2:.0f}" y="{HEIGHT / 2:.0f}" '
            'text-anchor="middle">no data in this range</text>'
        )
    for s in series:
        d = _path((x(t + step / 2), None if v is None else y(v)) for t, v in s.points)
        out.append(
            f'<path class="series series-{escape(s.key)}" data-series="{escape(s.key)}" '
            f'data-points="{sum(1 for _, v in s.points if v is not None)}" d="{d}">'
            f"<title>{escape(s.label)}</title></path>"
        )
    out += _hover(series, step, x)
    out += _markers(markers, since, until, x)
    out.append("</svg></figure>")
    return Markup("\n".join(out))


def sparkline(key: str, label: str, values: Sequence[float | None], width: int = 120) -> Markup:
    """A small line of ``values`` (one per bucket), scaled to its own maximum."""
    h = 24
    top = max((v for v in values if v is not None), default=0.0)
    n = max(len(values) - 1, 1)
    d = _path(
        (
            i * width / n,
            None if v is None else (h - 2) - (h - 4) * (v / top if top else 0.0),
        )
        for i, v in enumerate(values)
    )
    return Markup(
        f'<svg class="sparkline" data-series="{escape(key)}" viewBox="0 0 {width} {h}" '
        f'width="{width}" height="{h}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        f'<path class="series" d="{d}"/></svg>'
    )


def nice_ceiling(value: float) -> float:
    """The next round number at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if value <= m * power * (1 + 1e-9):
            return m * power
    return 10 * power


def compact(value: float) -> str:
    """A value for an axis: 950, 1.2k, 3.4M, 0.25."""
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:.3g}M"
    if a >= 1e3:
        return f"{value / 1e3:.3g}k"
    if a >= 1 or a == 0:
        return f"{value:.3g}"
    return f"{value:.2g}"


def _xscale(since: float, until: float) -> Scale:
    span = max(until - since, 1.0)
    inner = WIDTH - LEFT - RIGHT

    def x(t: float) -> float:
        return LEFT + inner * (t - since) / span

    return x


def _grid(top: float, y: Scale) -> list[str]:
    out = []
    for i in range(5):
        v = top * i / 4
        yy = y(v)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">'
            f"{escape(compact(v))}</text>"
        )
    return out


def _time_axis(since: float, until: float, x: Scale) -> list[str]:
    span = until - since
    tick = next((t for t in _TICKS if span / t <= 8), _TICKS[-1])
    fmt = "%H:%M" if span <= 86400 else "%m-%d" if tick >= 86400 else "%m-%d %H:%M"
    out = []
    t = math.ceil(since / tick) * tick
    while t < until:
        xx = x(t)
        label = time.strftime(fmt, time.gmtime(t))
        out.append(
            f'<line class="tick" x1="{xx:.1f}" x2="{xx:.1f}" y1="{HEIGHT - BOTTOM}" '
            f'y2="{HEIGHT - BOTTOM + 4}"/><text class="axis" x="{xx:.1f}" '
            f'y="{HEIGHT - 6}" text-anchor="middle">{escape(label)}</text>'
        )
        t += tick
    return out


def _path(points: Iterable[tuple[float, float | None]]) -> str:
    """An SVG path through the points, broken where a value is None."""
    parts: list[str] = []
    pen_down = False
    for px, py in points:
        if py is None:
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{px:.1f} {py:.1f}")
        pen_down = True
    return " ".join(parts)


def _hover(series: Sequence[Series], step: int, x: Scale) -> list[str]:
    """A transparent slice per bucket whose title gives every series' value there."""
    by_time: dict[float, list[str]] = {}
    for s in series:
        for t, v in s.points:
            if v is not None:
                by_time.setdefault(t, []).append(f"{s.label} {_value(v)} {s.unit}")
    out = []
    for t in sorted(by_time):
        x0, x1 = x(t), x(t + step)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
        text = f"{stamp} UTC — " + ", ".join(by_time[t])
        out.append(
            f'<rect class="hover" x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 0.5):.1f}" '
            f'height="{HEIGHT - TOP - BOTTOM}"><title>{escape(text)}</title></rect>'
        )
    return out


def _markers(markers: Sequence[Marker], since: float, until: float, x: Scale) -> list[str]:
    out = []
    for m in markers:
        if not since <= m.at < until:
            continue
        xx = x(m.at)
        kind = "incident-marker" if m.kind == "incident" else f"deploy-marker {m.kind}"
        attr = "data-incident-id" if m.kind == "incident" else "data-deploy-id"
        line = (
            f'<line class="{kind}" {attr}="{escape(m.key)}" x1="{xx:.1f}" x2="{xx:.1f}" '
            f'y1="{TOP - 4}" y2="{HEIGHT - BOTTOM}"><title>{escape(m.title)}</title></line>'
        )
        if m.href:
            line = f'<a href="{escape(m.href)}">{line}</a>'
        out.append(line)
    return out


def _value(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}" if abs(v) >= 1 else f"{v:.3g}"
