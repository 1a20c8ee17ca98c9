"""The demo's processes and where they listen, kept in ``<dir>/demo.json``.

``meshfed demo`` starts ``meshfed collect``, ``meshfed federate``, ``meshfed console`` and the
load generator as detached processes (their own sessions, output in ``<dir>/logs``), beside the
sandbox in ``<dir>/sandbox``. Their PIDs and ports are written here as they start, so ``meshfed
demo down`` from another shell, or the Ctrl-C handler, stops exactly what was started; the
sandbox's own state file covers the apiservers and istiods.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from meshfed.sandbox import processes
from meshfed.sandbox.manager import Sandbox

STATE = "demo.json"
SANDBOX_PORT_SPAN = 50
"""The sandbox's 3 clusters with istiod use ``base`` .. ``base+39``; the demo's own
processes listen just above."""


@dataclass(frozen=True, slots=True)
class Ports:
    """The demo's own listeners, from the base port upwards."""

    collect_http: int
    otlp_http: int
    otlp_grpc: int
    forward: int
    statsd: int
    federate_http: int
    federate_grpc: int
    console: int

    @classmethod
    def from_base(cls, base: int) -> Ports:
        first = base + SANDBOX_PORT_SPAN
        return cls(*range(first, first + 8))

    def all(self) -> tuple[int, ...]:
        return tuple(asdict(self).values())


@dataclass(slots=True)
class DemoState:
    base_port: int
    processes: dict[str, processes.ProcessRecord] = field(default_factory=dict)

    @property
    def ports(self) -> Ports:
        return Ports.from_base(self.base_port)


def sandbox_of(directory: Path) -> Sandbox:
    return Sandbox(directory / "sandbox")


def load(directory: Path) -> DemoState | None:
    path = directory / STATE
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    procs = {k: processes.ProcessRecord(**v) for k, v in data.get("processes", {}).items()}
    return DemoState(base_port=int(data["base_port"]), processes=procs)


def save(directory: Path, state: DemoState) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (STATE + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2, sort_keys=True))
    tmp.replace(directory / STATE)


def start(directory: Path, state: DemoState, name: str, argv: list[str]) -> None:
    """Start ``argv`` detached and record it before anything else can fail."""
    old = state.processes.get(name)
    if old is not None:
        processes.stop(old, timeout=10)
    state.processes[name] = processes.start(name=name, argv=argv, log_dir=directory / "logs")
    save(directory, state)


def stop(directory: Path, state: DemoState, name: str) -> None:
    record = state.processes.pop(name, None)
    if record is not None:
        processes.stop(record, timeout=15)
        save(directory, state)


def down(directory: Path) -> list[str]:
    """Stop the demo's processes (the load generator and the console first, the store last),
    then the sandbox; return what is still alive or listening (empty: all gone)."""
    state = load(directory)
    left: list[str] = []
    if state is not None:
        order = ["loadgen", "console", "federate", "collect"]
        names = sorted(state.processes, key=lambda n: order.index(n) if n in order else -1)
        for name in names:
            stop(directory, state, name)
        left += [f"port {p}" for p in state.ports.all() if processes.port_open(p)]
        (directory / STATE).unlink(missing_ok=True)
    left += [f"port {p}" for p in sandbox_of(directory).down()]
    return left
