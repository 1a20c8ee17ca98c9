"""The SVG charts of the HTML report, drawn in Python from a ``Report``. Pure.

``line_chart``: one signal, a line per client cluster over the shaded before / during / after
windows, dashed marks at step starts and the start of rollback. ``run_chart``: per target
cluster each step as a bar with a dot where that cluster applied it, a row of guard
evaluations (red where the guard held), and the exit and verification marks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from federator.drillctl.report import Report, TimelineEntry
from federator.drillctl.signals import Points, Signal, Window, Windows

PALETTE = ("#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#65a30d")
WINDOW_FILL = {Window.BEFORE: "#f1f5f9", Window.DURING: "#fef3c7", Window.AFTER: "#dcfce7"}
LEVEL_COLOUR = {"ok": "#15803d", "bad": "#b91c1c", "warn": "#b45309", "info": "#334155"}


def nice(value: float) -> str:
    """A short number for axes and tables."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def fmt_value(value: float | None, signal: Signal) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.2f}%" if signal is Signal.ERRORS else nice(value)


class _Axis:
    def __init__(self, x0: float, x1: float, *, left: float, width: float) -> None:
        self.x0, self.x1 = x0, max(x1, x0 + 1e-6)
        self.left, self.width = left, width

    def x(self, at: float) -> float:
        return self.left + (at - self.x0) / (self.x1 - self.x0) * self.width


def _time_ticks(axis: _Axis, origin: float, top: float, bottom: float) -> list[str]:
    span = axis.x1 - axis.x0
    step = next(
        (s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600) if span / s <= 8),
        7200,
    )
    first = math.ceil((axis.x0 - origin) / step) * step
    out = []
    t = first
    while origin + t <= axis.x1:
        x = axis.x(origin + t)
        label = f"{t:+.0f}s" if abs(t) < 120 else f"{t / 60:+.0f}m"
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#e2e8f0"/>')
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 13}" font-size="10" text-anchor="middle" '
            f'fill="#64748b">{label}</text>'
        )
        t += step
    return out


def _bands(w: Windows, axis: _Axis, top: float, bottom: float) -> list[str]:
    spans = (
        (Window.BEFORE, w.first, w.start),
        (Window.DURING, w.start, w.end),
        (Window.AFTER, w.end, w.stop),
    )
    out = []
    for window, a, b in spans:
        if b > a:
            out.append(
                f'<rect x="{axis.x(a):.1f}" y="{top}" width="{axis.x(b) - axis.x(a):.1f}" '
                f'height="{bottom - top}" fill="{WINDOW_FILL[window]}"/>'
            )
    return out


def line_chart(
    title: str,
    series: Mapping[str, Points],
    *,
    windows: Windows,
    signal: Signal,
    colours: Mapping[str, str],
    marks: Sequence[tuple[float, str]] = (),
    width: int = 560,
    height: int = 190,
) -> str:
    """One SVG chart: a line per cluster over the shaded windows, vertical marks."""
    left, right, top, bottom = 46, 10, 24, height - 22
    axis = _Axis(windows.first, windows.stop, left=left, width=width - left - right)
    values = [v for points in series.values() for _, v in points]
    high = max(values, default=0.0)
    if signal is Signal.ERRORS:
        high = max(high, 0.05)
    high = high * 1.1 if high > 0 else 1.0

    def y(v: float) -> float:
        return bottom - v / high * (bottom - top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}">',
        f'<text x="{left}" y="15" font-size="12" font-weight="600">{escape(title)}</text>',
        *_bands(windows, axis, top, bottom),
        *_time_ticks(axis, windows.start, top, bottom),
    ]
    for frac in (0.0, 0.5, 1.0):
        v = high / 1.1 * frac if high != 1.0 or values else frac
        parts.append(
            f'<text x="{left - 4}" y="{y(v) + 3:.1f}" font-size="10" text-anchor="end" '
            f'fill="#64748b">{escape(fmt_value(v, signal))}</text>'
        )
    for at, colour in marks:
        if windows.first <= at <= windows.stop:
            x = axis.x(at)
            parts.append(
                f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{colour}" '
                'stroke-dasharray="4 3" stroke-width="1.2"/>'
            )
    for cluster, points in sorted(series.items()):
        inside = [(t, v) for t, v in points if windows.first <= t <= windows.stop]
        if not inside:
            continue
        path = " ".join(f"{axis.x(t):.1f},{y(v):.1f}" for t, v in inside)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colours[cluster]}" '
            'stroke-width="1.8" stroke-linejoin="round"/>'
        )
    if not values:
        parts.append(
            f'<text x="{left + (width - left) / 2:.0f}" y="{(top + bottom) / 2:.0f}" '
            'font-size="12" text-anchor="middle" fill="#94a3b8">no data</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" stroke="#94a3b8"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def run_chart(r: Report, width: int = 1130) -> str:
    """Steps per cluster as bars from their start to their apply, plus breach / rollback /
    verification marks, on one time axis."""
    if r.started is None:
        return '<p class="muted">The drill never started: nothing to draw.</p>'
    end = max((e.at for e in r.timeline), default=r.started)
    span = max(1.0, end - r.started)
    axis = _Axis(r.started - span * 0.02, end + span * 0.1, left=110, width=width - 130)
    rows = list(r.targets) or ["(all)"]
    row_h = 26
    top = 30
    height = top + row_h * (len(rows) + len(r.guards)) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        'role="img" aria-label="run">',
        *_time_ticks(axis, r.started, top - 6, height - 24),
    ]
    ends = [(s.started, s) for s in r.steps if s.started is not None]
    for i, cluster in enumerate(rows):
        cy = top + i * row_h
        parts.append(f'<text x="8" y="{cy + 16}" font-size="12">{escape(cluster)}</text>')
        for n, (start, step) in enumerate(ends):
            assert start is not None
            stop = ends[n + 1][0] if n + 1 < len(ends) else (r.rollback_started or end)
            assert stop is not None
            colour = PALETTE[step.index % len(PALETTE)]
            x0, x1 = axis.x(start), axis.x(stop)
            parts.append(
                f'<rect x="{x0:.1f}" y="{cy + 4}" width="{max(2.0, x1 - x0):.1f}" height="16" '
                f'rx="3" fill="{colour}" fill-opacity="0.25" stroke="{colour}"/>'
            )
            parts.append(
                f'<text x="{x0 + 10:.1f}" y="{cy + 16}" font-size="11">{escape(step.name)}</text>'
            )
            latency = step.latencies.get(cluster)
            if latency is not None:
                xa = axis.x(start + latency)
                parts.append(
                    f'<circle cx="{xa:.1f}" cy="{cy + 12}" r="4" fill="{colour}">'
                    f"<title>applied after {latency:.3f}s</title></circle>"
                )
    for g, guard in enumerate(r.guards):
        cy = top + (len(rows) + g) * row_h
        parts.append(
            f'<text x="8" y="{cy + 16}" font-size="12" fill="#475569">'
            f"guard {escape(guard.name)}</text>"
        )
        for at, value, holds in guard.evaluations:
            fill = {True: "#dc2626", False: "#16a34a", None: "#94a3b8"}[holds]
            shown = "n/a" if value is None else nice(value)
            parts.append(
                f'<circle cx="{axis.x(at):.1f}" cy="{cy + 12}" r="3.5" fill="{fill}">'
                f"<title>{escape(guard.name)} = {shown}</title></circle>"
            )
    for entry, colour, label in _marks(r):
        x = axis.x(entry.at)
        exit_mark = entry.kind == "Exit"
        anchor = "end" if exit_mark else "start"
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 8}" x2="{x:.1f}" y2="{height - 24}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{x - 4 if exit_mark else x + 4:.1f}" y="{top - 12}" font-size="11" '
            f'font-weight="600" text-anchor="{anchor}" fill="{colour}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _marks(r: Report) -> list[tuple[TimelineEntry, str, str]]:
    out = []
    for e in r.timeline:
        if e.kind == "Exit":
            out.append((e, LEVEL_COLOUR[e.level], "exit " + (r.reason or "")))
        elif e.kind == "Verified":
            out.append((e, LEVEL_COLOUR[e.level], "verified" if e.level == "ok" else "mismatch"))
    return out
