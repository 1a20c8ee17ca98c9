"""A drill report as JSON values and as Markdown: two views of ``report.Report``. Pure."""

from __future__ import annotations

from typing import Any

from federator.drillctl.report import Report, ts
from federator.drillctl.signals import SIGNAL_TITLES, Signal, Window


def _num(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def to_json(r: Report) -> dict[str, Any]:
    """The report as plain JSON values (times RFC 3339, durations in seconds)."""
    w = r.telemetry.windows
    return {
        "drill": {"namespace": r.namespace, "name": r.name},
        "phase": r.phase,
        "reason": r.reason,
        "verdict": r.verdict,
        "hypothesis": r.hypothesis,
        "services": [str(s) for s in r.services],
        "targets": list(r.targets),
        "startedAt": ts(r.started) if r.started else None,
        "rollbackStartedAt": ts(r.rollback_started) if r.rollback_started else None,
        "finishedAt": ts(r.finished) if r.finished else None,
        "breach": r.breach or None,
        "breachToVerifiedSeconds": _num(r.breach_to_verified),
        "verification": r.verification,
        "drift": r.drift or None,
        "steps": [
            {
                "index": s.index,
                "name": s.name,
                "kind": s.kind,
                "startedAt": ts(s.started) if s.started else None,
                "propagationSeconds": {c: _num(v) for c, v in sorted(s.latencies.items())},
            }
            for s in r.steps
        ],
        "guards": [
            {
                "name": g.name,
                "kind": g.kind,
                "expr": g.expr,
                "breachedAt": ts(g.breached_at) if g.breached_at else None,
                "evaluations": [
                    {"at": ts(at), "value": value, "holds": holds}
                    for at, value, holds in g.evaluations
                ],
            }
            for g in r.guards
        ],
        "timeline": [
            {"at": ts(e.at), "offsetSeconds": _num(e.offset), "event": e.kind, "text": e.text}
            for e in r.timeline
        ],
        "windows": None
        if w is None
        else {
            "before": [ts(w.first), ts(w.start)],
            "during": [ts(w.start), ts(w.end)],
            "after": [ts(w.end), ts(w.stop)],
            "stepSeconds": w.step,
        },
        "signals": {
            str(key): {
                signal.value: {
                    cluster: {x.value: _num(s.get(x), 6) for x in Window}
                    for cluster, s in sorted(by_cluster.items())
                }
                for signal, by_cluster in by_signal.items()
            }
            for key, by_signal in r.summaries.items()
        },
        "queries": {
            str(key): {signal.value: q for signal, q in qs.items()}
            for key, qs in r.telemetry.queries.items()
        },
        "exemplars": [
            {
                "traceId": x.trace_id,
                "url": x.url,
                "root": x.root,
                "at": ts(x.at),
                "durationMs": x.duration_ms,
                "logs": [
                    {"at": ts(at), "cluster": c, "severity": sev, "body": body}
                    for at, c, sev, body in x.logs
                ],
            }
            for x in r.telemetry.exemplars
        ],
        "problems": list(r.problems),
        "generatedAt": ts(r.generated),
    }


def _fmt(value: float | None, signal: Signal) -> str:
    if value is None:
        return "-"
    if signal is Signal.ERRORS:
        return f"{value * 100:.2f}%"
    return f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def to_markdown(r: Report) -> str:
    out = [f"# Drill report: {r.namespace}/{r.name}", ""]
    out += [
        f"**Verdict: {r.verdict}** - phase {r.phase or '-'}, reason {r.reason or '-'}",
        "",
        f"- Hypothesis: {r.hypothesis or '(none given: the abortWhen guards are the hypothesis)'}",
        f"- Services: {', '.join(map(str, r.services)) or '-'}; targets: "
        f"{', '.join(r.targets) or '-'}",
        f"- Started {ts(r.started)}, rollback from {ts(r.rollback_started)}, "
        f"finished {ts(r.finished)}",
        f"- Verification: {r.verification}",
    ]
    if r.drift:
        out.append(f"- Drift during the drill (not an error): {r.drift}")
    if r.breach:
        extra = f" (breach -> verified {r.breach_to_verified:.3f}s)" if r.breach_to_verified else ""
        out.append(f"- Breach: {r.breach}{extra}")
    out += ["", "## Steps", "", "| # | step | kind | started | propagation per cluster |"]
    out.append("|---|---|---|---|---|")
    for s in r.steps:
        lat = ", ".join(f"{c}: {v:.3f}s" for c, v in sorted(s.latencies.items())) or "-"
        out.append(f"| {s.index} | {s.name} | {s.kind} | {ts(s.started)} | {lat} |")
    if r.guards:
        out += ["", "## Guards", "", "| guard | kind | evaluations | holding | breached |"]
        out.append("|---|---|---|---|---|")
        for g in r.guards:
            holding = sum(1 for _, _, h in g.evaluations if h)
            out.append(
                f"| {g.name} | {g.kind} | {len(g.evaluations)} | {holding} | "
                f"{ts(g.breached_at) if g.breached_at else '-'} |"
            )
            out.append(f"|  | `{g.expr}` |  |  |  |")
    out += ["", "## Golden signals (mean per window, by client cluster)", ""]
    if not r.summaries:
        out += ["(no telemetry: see problems)", ""]
    for key, by_signal in r.summaries.items():
        out += [f"### {key}", "", "| signal | cluster | before | during | after |"]
        out.append("|---|---|---|---|---|")
        for signal, by_cluster in by_signal.items():
            for cluster, summary in sorted(by_cluster.items()):
                cells = " | ".join(_fmt(summary.get(x), signal) for x in Window)
                out.append(f"| {SIGNAL_TITLES[signal]} | {cluster} | {cells} |")
        out.append("")
    out += ["## Timeline", "", "| time | +s | event |", "|---|---|---|"]
    for e in r.timeline:
        out.append(f"| {ts(e.at)} | {e.offset:+.3f} | {e.text} |")
    if r.telemetry.exemplars:
        out += ["", "## Exemplar traces with errors", ""]
        for x in r.telemetry.exemplars:
            out.append(f"- [{x.trace_id}]({x.url}) {x.root} at {ts(x.at)}, {x.duration_ms:g} ms")
            out.extend(f"  - `{ts(at)} {c} {sev}: {body}`" for at, c, sev, body in x.logs)
    if r.problems:
        out += ["", "## Problems", ""]
        out.extend(f"- {p}" for p in r.problems)
    out += ["", f"_Generated {ts(r.generated)} by meshfed drill report._", ""]
    return "\n".join(out)
