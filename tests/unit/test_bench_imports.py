"""Every benchmark script still imports: bench/ is not type-checked, so a moved name would
otherwise surface only when someone runs the benchmark (they are not run in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.bench_scripts import load_bench_script
from tests.helpers.paths import REPO_ROOT

SCRIPTS = sorted((REPO_ROOT / "bench").glob("*.py"))


@pytest.mark.parametrize("script", [pytest.param(p, id=p.stem) for p in SCRIPTS])
def test_benchmark_imports(script: Path) -> None:
    module = load_bench_script(script)
    if '__name__ == "__main__"' in script.read_text():  # a script, not a shared module
        assert callable(getattr(module, "main", None)), f"{script.name} has no main()"


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 8
