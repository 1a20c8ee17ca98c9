"""Tests of the optional native parts against their reference: ``meshfed_native`` (Rust)
and meshfed's Redis module (C).

``make setup`` builds each wherever its toolchain exists, so a missing build (or one without
the function under test) there is a failure, not a skip; only a machine without the
toolchain skips, because there the fallback (Python, the Lua script) is the only path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HAS_TOOLCHAIN = bool(shutil.which("cargo")) or (Path.home() / ".cargo/bin/cargo").exists()
HAS_C_COMPILER = any(shutil.which(cc) for cc in ("cc", "gcc"))


def require_native(present: bool, *, what: str, fallback: str) -> None:
    """Fail (cargo here) or skip (no cargo) the test unless ``present``."""
    if present:
        return
    if HAS_TOOLCHAIN:
        pytest.fail(f"meshfed_native has no {what} although cargo is here: run `make setup`")
    pytest.skip(f"no Rust toolchain on this machine: only {fallback} exists here")


def require_redis_module(present: bool) -> None:
    """Fail (a C compiler here) or skip (none) the test unless the Redis module is built."""
    if present:
        return
    if HAS_C_COMPILER:
        pytest.fail(
            "meshfed's Redis module is not built although a C compiler is here: run make setup"
        )
    pytest.skip("no C compiler on this machine: only the Lua write script exists here")
