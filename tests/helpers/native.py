"""Tests of the optional native module (``meshfed_native``) against its Python reference.

``make setup`` builds the module wherever a Rust toolchain exists, so a missing module (or a
build without the function under test) there is a failure, not a skip; only a machine
without cargo skips, because there the Python path is the only one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HAS_TOOLCHAIN = bool(shutil.which("cargo")) or (Path.home() / ".cargo/bin/cargo").exists()


def require_native(present: bool, *, what: str, fallback: str) -> None:
    """Fail (cargo here) or skip (no cargo) the test unless ``present``."""
    if present:
        return
    if HAS_TOOLCHAIN:
        pytest.fail(f"meshfed_native has no {what} although cargo is here: run `make setup`")
    pytest.skip(f"no Rust toolchain on this machine: only {fallback} exists here")
