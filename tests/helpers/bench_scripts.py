"""Loading a ``bench/`` script as a module, as the import system would (tests of its helpers)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_bench_script(script: Path) -> ModuleType:
    """``script``'s module, run at module level only (``main()`` stays behind its guard);
    registered in ``sys.modules`` because dataclasses resolve string annotations there."""
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
