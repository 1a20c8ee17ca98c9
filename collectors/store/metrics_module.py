"""The write path's native half: meshfed's Redis module (``MESHFED.WRITE``), when loaded.

Why: the write script's Lua glue was most of Redis's CPU per sample: ~1 us per
``redis.call`` around every known series' order check and head ``APPEND``, and 17-26 us
per new series (``cjson``, the index writes and their replicated effects) (docs/adr/0018).
The module (``native/redis/meshfed_redis.c``, ``series_index.c``) takes the script's
arguments and does the same in C: known series, and new ones with the caps and the label
index. It returns the byte ranges of the entries it left alone (a new series whose labels
JSON holds an escape, and every later new series of that call, so the caps still see new
series in batch order); only those go to the Lua script. Where the module is not loaded (a
managed Redis, a machine without a C compiler, ``store.redis.write_module: false``), the
script does all of it: that is the tested fallback, with the same replies and the same keys
as readers take them (the module leaves a series' ``last`` entry behind its non-empty head
and marks the shard's ``last_lags``; readers then take the head's tail).
``MESHFED.APPEND`` (known series only) stays in the module for AOFs written by the version
that had only it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors._core.component import WriteResult

COMMAND = "MESHFED.WRITE"
COMMANDS = (COMMAND, "MESHFED.APPEND")
"""Every command of the module: an AOF may hold any of them."""
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
    """One ``MESHFED.WRITE`` reply, read."""

    stored: WriteResult
    """What the module stored, created and refused."""
    heads: list[tuple[str, bytes]]
    """(series id, head) of the heads that reached a chunk's size."""
    leftover: bytes
    """The batch entries left for the write script (empty when none)."""


def read_reply(batch: bytes, reply: Sequence[Any]) -> ModuleReply:
    """Read a reply to ``MESHFED.WRITE ... batch`` (layout in the module's header)."""
    *pairs, left, accepted, ignored, out_of_order, conflicts, over, created, refused = reply
    heads = [(sid.decode(), head) for sid, head in zip(pairs[0::2], pairs[1::2], strict=True)]
    leftover = b"".join(
        batch[start : start + length] for start, length in zip(left[0::2], left[1::2], strict=True)
    )
    stored = WriteResult(
        accepted=accepted,
        duplicates_ignored=ignored,
        out_of_order=out_of_order,
        duplicate_conflicts=conflicts,
        over_limit=over,
        series_created=created,
        series_refused=refused,
    )
    return ModuleReply(stored, heads, leftover)


def module_args(script_keys: Sequence[str], script_args: Sequence[bytes]) -> list[str | bytes]:
    """The command and its constant arguments for one shard (the batch follows): the write
    script's KEYS and constant ARGV, in its order. The name stays ``str``: redis-py's cluster
    client looks its routing up by name."""
    return [COMMAND, *(k.encode() for k in script_keys), *script_args]


def cannot_run_write(error: Exception) -> bool:
    """Whether a ``MESHFED.WRITE`` error reply says the server cannot run this version's
    call: no module (``unknown command``), or an earlier version's, which takes one argument
    less (``wrong number of arguments``). Such a call wrote nothing."""
    text = str(error)
    return "unknown command" in text or "wrong number of arguments" in text
