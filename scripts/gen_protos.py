"""Generate the Python gRPC code of ``protos/**/*.proto`` into a ``_generated`` package.

The one generator, used by ``scripts/gen-protos.sh`` (``make setup``, ``make protos``: into
``federator/api/_generated`` of the checkout) and by ``setup.py`` at build time (into the
wheel's build directory), so a wheel, an sdist and an editable install all carry the same
code (docs/adr/0011-generated-grpc-code-at-build-time.md). Needs ``grpcio-tools``.

protoc writes imports relative to the ``-I`` root (``from meshfed.v1 import federation_pb2``),
which would resolve to our own top-level ``meshfed`` package; they are rewritten to the full
path (``from federator.api._generated.meshfed.v1 import ...``), so no sys.path tricks are
needed. Every directory gets an ``__init__.py``.

Usage: ``python scripts/gen_protos.py [OUT_DIR]`` (default: federator/api/_generated).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
PACKAGE = "federator.api._generated"
DEFAULT_OUT = ROOT / "federator" / "api" / "_generated"
_IMPORT = re.compile(r"^(from|import) meshfed\.", re.MULTILINE)


def generate(out: Path, *, protos: Path = PROTOS) -> list[Path]:
    """Regenerate ``out`` (removed first) from every ``.proto`` under ``protos``; returns the
    files written. Raises ``RuntimeError`` if protoc fails."""
    from grpc_tools import protoc  # noqa: PLC0415 - a build-time dependency only

    sources = sorted(str(p.relative_to(protos)) for p in protos.rglob("*.proto"))
    if not sources:
        return []
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    args = [
        "grpc_tools.protoc",
        f"-I{protos}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(str(protos / s) for s in sources),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed for {', '.join(sources)}")
    written = sorted(p for p in out.rglob("*") if p.suffix in (".py", ".pyi"))
    for path in written:
        text = path.read_text(encoding="utf-8")
        path.write_text(_IMPORT.sub(rf"\1 {PACKAGE}.meshfed.", text), encoding="utf-8")
    for directory in [out, *(d for d in out.rglob("*") if d.is_dir())]:
        init = directory / "__init__.py"
        if not init.exists():
            init.touch()
            written.append(init)
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    files = generate(out)
    print(f"generated {len(files)} files into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
