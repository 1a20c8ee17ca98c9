"""Build hook: generate the gRPC code from protos/ whenever the package is built.

``pyproject.toml`` holds all the metadata; this file only adds a ``build_py`` that runs
``scripts/gen_protos.py`` (with ``grpcio-tools`` from ``[build-system].requires``), so
``pip install .``, ``pip wheel .``, ``python -m build`` (sdist, then a wheel from it) and
``pip install -e .`` all ship ``federator/api/_generated`` although it is not in git
(docs/adr/0011-generated-grpc-code-at-build-time.md).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithProtos(build_py):
    """``build_py``, then the generated gRPC package into the build directory (and, for an
    editable install, into the source tree, where the editable install imports from)."""

    def run(self) -> None:
        super().run()
        gen = _generator()
        target = Path(self.build_lib) / "federator" / "api" / "_generated"
        files = gen.generate(target)
        if getattr(self, "editable_mode", False):
            gen.generate(ROOT / "federator" / "api" / "_generated")
        print(f"generated {len(files)} gRPC files into {target}")


setup(cmdclass={"build_py": BuildPyWithProtos})
