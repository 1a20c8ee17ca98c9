"""The write path's native half: meshfed's Redis module (``MESHFED.APPEND``), when loaded.

Why: at 10,000 series the write script spent ~5 us of Redis CPU per sample, most of it Lua
glue around the per-series order check and head ``APPEND`` (docs/adr/0018). The module
(``native/redis/meshfed_redis.c``) does that part for every series that already exists,
and returns the byte ranges of the entries it left alone (new series, older ``last``
entries); only those go to the Lua script, which keeps the caps, the label index and
every rule for them. Where the module is not loaded (a managed Redis, a machine without a
C compiler, ``store.redis.write_module: false``), the script does all of it: that is
the tested fallback, with the same replies and the same keys.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors._core.component import WriteResult

COMMAND = "MESHFED.APPEND"
MODULE_FILE = "meshfed_redis.so"


def installed_module() -> Path | None:
    """The module ``make setup`` built into this environment, or ``None``."""
    path = Path(sys.prefix) / "lib" / "meshfed" / MODULE_FILE
    return path if path.is_file() else None


async def module_loaded(client: Any) -> bool:
    """Whether the server (every node of a cluster is set up alike) knows ``COMMAND``."""
    try:
        info = await client.execute_command("COMMAND", "INFO", COMMAND.lower())
    except TypeError:  # redis-py's COMMAND parser fails on the nil of an unknown command
        return False
    return bool(info)


@dataclass(frozen=True, slots=True)
class ModuleReply:
    """One ``MESHFED.APPEND`` reply, read."""

    stored: WriteResult
    """What the module appended and refused."""
    heads: list[tuple[str, bytes]]
    """(series id, head) of the heads that reached a chunk's size."""
    leftover: bytes
    """The batch entries left for the write script (empty when none)."""


def read_reply(batch: bytes, reply: Sequence[Any]) -> ModuleReply:
    """Read a reply to ``MESHFED.APPEND ... batch`` (layout in the module's header)."""
    *pairs, left, accepted, ignored, out_of_order, conflicts = reply
    heads = [(sid.decode(), head) for sid, head in zip(pairs[0::2], pairs[1::2], strict=True)]
    leftover = b"".join(
        batch[start : start + length] for start, length in zip(left[0::2], left[1::2], strict=True)
    )
    stored = WriteResult(
        accepted=accepted,
        duplicates_ignored=ignored,
        out_of_order=out_of_order,
        duplicate_conflicts=conflicts,
    )
    return ModuleReply(stored, heads, leftover)


def module_args(
    last_key: str, head_prefix: str, max_samples: int, max_span_ms: int
) -> list[str | bytes]:
    """The command and its constant arguments for one shard (the batch follows). The name
    stays ``str``: redis-py's cluster client looks its routing up by name."""
    return [
        COMMAND,
        last_key.encode(),
        head_prefix.encode(),
        str(max_samples).encode(),
        str(max_span_ms).encode(),
    ]
