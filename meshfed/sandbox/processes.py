"""Start, find and stop the sandbox's local processes.

Each process runs in its own session (so it outlives ``meshfed sandbox up`` and can be
signalled as a group) with its output in ``<dir>/logs/<name>.log``; PIDs and command lines
live in ``<dir>/state.json`` so that ``status`` and ``down`` need nothing else. A PID is only
trusted while ``/proc/<pid>/cmdline`` still shows the binary we started (PIDs get reused).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"


@dataclass(slots=True)
class ProcessRecord:
    """One started process: enough to check it and to stop it."""

    name: str
    argv: list[str]
    pid: int
    log: str


@dataclass(slots=True)
class SandboxState:
    """What ``up`` recorded: the layout parameters and every process it started."""

    clusters: int
    topology: str
    base_port: int
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    istio: bool = False
    """An istiod per cluster (``up --istio``); absent in state files written before it."""

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SandboxState:
        data: dict[str, Any] = json.loads(text)
        procs = {k: ProcessRecord(**v) for k, v in data.pop("processes", {}).items()}
        return cls(processes=procs, **data)


def load_state(directory: Path) -> SandboxState | None:
    path = directory / STATE_FILE
    if not path.exists():
        return None
    return SandboxState.from_json(path.read_text())


_SAVE_LOCK = threading.Lock()
"""``up`` starts the clusters' components from several threads: one writer at a time, or two
of them rename the same temporary file and the second finds it gone."""


def save_state(directory: Path, state: SandboxState) -> None:
    with _SAVE_LOCK:
        tmp = directory / (STATE_FILE + ".tmp")
        tmp.write_text(state.to_json())
        tmp.replace(directory / STATE_FILE)


def is_alive(record: ProcessRecord) -> bool:
    """True while the PID exists and still runs the binary we started."""
    try:
        stat = Path(f"/proc/{record.pid}/stat").read_text()
        cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):  # exited, not yet reaped
        return False
    if not cmdline:  # the instant right after exec, before the kernel shows the new argv
        return True
    argv0 = cmdline.split(b"\0", 1)[0].decode(errors="replace")
    return Path(argv0).name == Path(record.argv[0]).name


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def start(
    *,
    name: str,
    argv: list[str],
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRecord:
    """Start ``argv`` detached in its own session, output appended to its log file; ``cwd``
    for programs that write relative paths (istiod's ``./etc/...``, ``./var/run/...``)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name.replace('/', '-')}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    return ProcessRecord(name=name, argv=argv, pid=proc.pid, log=str(log_path))


def stop(record: ProcessRecord, *, timeout: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``timeout``."""
    if not is_alive(record):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(record):
            _reap(record.pid)  # a child of ours that just exited: collect its zombie
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pid, signal.SIGKILL)
    for _ in range(50):
        if not is_alive(record):
            _reap(record.pid)
            return
        time.sleep(0.1)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (tests start it in-process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def tail(path: str | Path, lines: int = 15) -> str:
    """The last lines of a log, for error messages that say what failed."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
