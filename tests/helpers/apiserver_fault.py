"""Fault injection on a sandbox's member apiserver: stop it and start it again (a real
outage: clients get connection refused, watches break and must resync)."""

from __future__ import annotations

from pathlib import Path

from meshfed.sandbox import processes


def set_apiserver(
    directory: Path, cluster: str, *, running: bool, extra: tuple[str, ...] = ()
) -> None:
    """Stop or start ``cluster``'s apiserver; ``extra`` flags replace the recorded ones'
    ``--watch-cache`` setting (fault injection: the sandbox itself is not changed)."""
    state = processes.load_state(directory)
    assert state is not None
    [(key, record)] = [
        (k, r) for k, r in state.processes.items() if cluster in r.name and "apiserver" in r.name
    ]
    if running:
        argv = [a for a in record.argv if not a.startswith("--watch-cache")] + list(extra)
        state.processes[key] = processes.start(
            name=record.name, argv=argv, log_dir=Path(record.log).parent
        )
        processes.save_state(directory, state)
    else:
        processes.stop(record)
