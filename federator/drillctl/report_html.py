"""A drill report as one self-contained HTML page: inline CSS and SVG charts, no script. Pure.

The page must open anywhere a report is mailed or attached to a ticket, so it loads nothing
(no CDN, no JavaScript, no fonts): every chart is SVG drawn in Python (``report_svg``). What a
reader looks for first is on top (the verdict, the breach, how long rollback took), then the
run as a picture (steps, breach, rollback and verification on one time axis), then the golden
signals per service with the before / during / after windows shaded, then the details.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from federator.drillctl.report import Report, ts
from federator.drillctl.report_svg import (
    LEVEL_COLOUR,
    PALETTE,
    WINDOW_FILL,
    fmt_value,
    line_chart,
    nice,
    run_chart,
)
from federator.drillctl.signals import SIGNAL_TITLES, Signal, Window

VERDICT_COLOUR = {"Confirmed": "#15803d", "Refuted": "#b91c1c", "Inconclusive": "#b45309"}
NO_HYPOTHESIS = "No hypothesis text: the abortWhen guards are the hypothesis."

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f8fafc;
color:#0f172a}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
h3{font-size:15px;margin:16px 0 8px}
.badge{display:inline-block;padding:3px 12px;border-radius:999px;color:#fff;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:10px 14px}
.card b{display:block;font-size:18px}.card span{color:#64748b;font-size:12px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.panel{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:8px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
td,th{border-bottom:1px solid #e2e8f0;padding:4px 8px;text-align:left;vertical-align:top}
td:first-child{white-space:nowrap}
th{background:#f1f5f9}code{font-size:12px;word-break:break-all}
.muted{color:#64748b}.legend span{margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:4px;
vertical-align:-1px}
"""


def _table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    h = "".join(f"<th>{escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _card(label: str, value: str) -> str:
    return f'<div class="card"><span>{escape(label)}</span><b>{escape(value)}</b></div>'


def _signals(r: Report) -> list[str]:
    w = r.telemetry.windows
    if w is None or not r.telemetry.series:
        return ['<p class="muted">No golden signals (see Problems below).</p>']
    clusters = sorted(
        {c for by_signal in r.telemetry.series.values() for s in by_signal.values() for c in s}
    )
    colours = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(clusters)}
    legend = "".join(
        f'<span><i style="background:{colours[c]}"></i>{escape(c)}</span>' for c in clusters
    )
    legend += "".join(
        f'<span><i style="background:{WINDOW_FILL[x]};border:1px solid #cbd5e1"></i>'
        f"{x.value}</span>"
        for x in Window
    )
    marks = [(s.started, "#475569") for s in r.steps if s.started is not None]
    if r.rollback_started is not None:
        marks.append((r.rollback_started, "#b91c1c" if r.breach else "#475569"))
    out = [f'<p class="legend">{legend}</p>']
    for key, by_signal in r.telemetry.series.items():
        out.append(f"<h3>{escape(str(key))}</h3><div class='grid'>")
        for signal in Signal:
            chart = line_chart(
                SIGNAL_TITLES[signal],
                by_signal.get(signal, {}),
                windows=w,
                signal=signal,
                colours=colours,
                marks=marks,
            )
            out.append(f"<div class='panel'>{chart}</div>")
        out.append("</div>")
        rows = []
        for signal, by_cluster in r.summaries.get(key, {}).items():
            for cluster, s in sorted(by_cluster.items()):
                rows.append(
                    [escape(SIGNAL_TITLES[signal]), escape(cluster)]
                    + [escape(fmt_value(s.get(x), signal)) for x in Window]
                    + [_change(s.before, s.during, signal)]
                )
        head = ("signal", "client cluster", "before", "during", "after", "during vs before")
        out.append(_table(head, rows))
    return out


def _change(before: float | None, during: float | None, signal: Signal) -> str:
    """The change during the drill; red where more is worse (errors, latency) and it grew."""
    if before is None or during is None:
        return "-"
    if signal is Signal.ERRORS:
        delta = (during - before) * 100
        text = f"{delta:+.2f} pp"
    elif before == 0:
        return "-"
    else:
        delta = (during - before) / before * 100
        text = f"{delta:+.0f}%"
    text = text.replace("-0%", "+0%").replace("-0.00 pp", "+0.00 pp")
    worse = signal is not Signal.RATE and delta > (1 if signal is Signal.ERRORS else 20)
    return f'<b style="color:#b91c1c">{text}</b>' if worse else text


def to_html(r: Report) -> str:
    colour = VERDICT_COLOUR.get(r.verdict, "#475569")
    took = f"{r.finished - r.started:.1f}s" if r.finished is not None and r.started else "-"
    b2v = f"{r.breach_to_verified:.2f}s" if r.breach_to_verified is not None else "-"
    body = [
        f"<h1>Drill {escape(r.namespace)}/{escape(r.name)}</h1>",
        f'<p><span class="badge" style="background:{colour}">{escape(r.verdict)}</span> '
        f"phase <b>{escape(r.phase or '-')}</b>, reason <b>{escape(r.reason or '-')}</b></p>",
        f"<p>{escape(r.hypothesis or NO_HYPOTHESIS)}</p>",
        '<div class="cards">',
        _card("services", ", ".join(map(str, r.services)) or "-"),
        _card("started", ts(r.started)),
        _card("duration", took),
        _card("breach -> rollback verified", b2v),
        "</div>",
    ]
    if r.breach:
        body.append(f'<p style="color:#b91c1c"><b>Breach:</b> {escape(r.breach)}</p>')
    body.append(f"<p><b>Verification:</b> {escape(r.verification)}</p>")
    if r.drift:
        body.append(f"<p><b>Drift during the drill</b> (not an error): {escape(r.drift)}</p>")
    body += ["<h2>Run</h2>", f"<div class='panel'>{run_chart(r)}</div>"]
    body += ["<h2>Golden signals</h2>", *_signals(r)]
    body.append("<h2>Steps</h2>")
    body.append(
        _table(
            ("#", "step", "kind", "started", "propagation per cluster"),
            (
                (
                    str(s.index),
                    escape(s.name),
                    s.kind,
                    ts(s.started),
                    escape(", ".join(f"{c}: {v:.3f}s" for c, v in sorted(s.latencies.items())))
                    or "-",
                )
                for s in r.steps
            ),
        )
    )
    if r.guards:
        body.append("<h2>Guards</h2>")
        body.append(
            _table(
                ("guard", "kind", "expression", "evaluations kept", "breached"),
                (
                    (
                        escape(g.name),
                        g.kind,
                        f"<code>{escape(g.expr)}</code>",
                        escape(
                            ", ".join(
                                f"{'n/a' if v is None else nice(v)}{'!' if h else ''}"
                                for _, v, h in g.evaluations[-12:]
                            )
                        )
                        or "-",
                        ts(g.breached_at) if g.breached_at else "-",
                    )
                    for g in r.guards
                ),
            )
        )
    body.append("<h2>Timeline</h2>")
    body.append(
        _table(
            ("time", "+s", "event"),
            (
                (
                    ts(e.at),
                    f"{e.offset:+.3f}",
                    f'<span style="color:{LEVEL_COLOUR[e.level]}">{escape(e.text)}</span>',
                )
                for e in r.timeline
            ),
        )
    )
    if r.telemetry.exemplars:
        body.append("<h2>Exemplar traces with errors</h2><ul>")
        for x in r.telemetry.exemplars:
            logs = "".join(
                f"<li><code>{escape(ts(at))} {escape(c)} {escape(sev)}: {escape(text)}</code></li>"
                for at, c, sev, text in x.logs
            )
            body.append(
                f'<li><a href="{escape(x.url)}">{escape(x.trace_id)}</a> {escape(x.root)} at '
                f"{ts(x.at)}, {x.duration_ms:g} ms<ul>{logs}</ul></li>"
            )
        body.append("</ul>")
    if r.problems:
        body.append("<h2>Problems</h2><ul>")
        body.extend(f"<li>{escape(p)}</li>" for p in r.problems)
        body.append("</ul>")
    body.append(f'<p class="muted">Generated {ts(r.generated)} by meshfed drill report.</p>')
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Drill {escape(r.name)}: {escape(r.verdict)}</title><style>{CSS}</style>"
        f"</head><body><main>{''.join(body)}</main></body></html>\n"
    )
