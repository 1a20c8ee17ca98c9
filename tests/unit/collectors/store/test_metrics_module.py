"""Reading ``MESHFED.WRITE`` replies: counts, heads to cut, entries left for the script,
and which error replies send a call to the script."""

from __future__ import annotations

from typing import Any

import pytest
import redis.exceptions as rexc

from collectors._core.component import WriteResult
from collectors.store.metrics_module import (
    COMMAND,
    ModuleReply,
    cannot_run_write,
    module_args,
    read_reply,
)

BATCH = b"AAAABBBCC"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(
            [[], 3, 0, 0, 0, 0, 0, 0], ModuleReply(WriteResult(accepted=3), [], b""), id="all-known"
        ),
        pytest.param(
            [[4, 3], 0, 1, 2, 3, 0, 0, 0],
            ModuleReply(
                WriteResult(duplicates_ignored=1, out_of_order=2, duplicate_conflicts=3), [], b"BBB"
            ),
            id="one-left",
        ),
        pytest.param(
            [[0, 4, 7, 2], 0, 0, 0, 0, 0, 0, 0],
            ModuleReply(WriteResult(), [], b"AAAACC"),
            id="two-left-joined",
        ),
        pytest.param(
            [b"17", b"head-a", b"9", b"head-b", [], 2, 0, 0, 0, 0, 0, 0],
            ModuleReply(WriteResult(accepted=2), [("17", b"head-a"), ("9", b"head-b")], b""),
            id="heads-to-cut",
        ),
        pytest.param(
            [[], 2, 0, 0, 0, 3, 2, 1],
            ModuleReply(
                WriteResult(accepted=2, over_limit=3, series_created=2, series_refused=1), [], b""
            ),
            id="created-and-refused",
        ),
    ],
)
def test_read_reply(reply: list[Any], expected: ModuleReply) -> None:
    assert read_reply(BATCH, reply) == expected


def test_module_args_are_the_scripts_keys_and_args() -> None:
    args = module_args(["series"], [b"all", b"last", b"120"])
    assert args == [COMMAND, b"series", b"all", b"last", b"120"]
    assert isinstance(args[0], str)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            "unknown command `MESHFED.WRITE`, with args beginning with: `a`, ",
            True,
            id="no-module",
        ),
        pytest.param(
            "wrong number of arguments for 'meshfed.write' command", True, id="earlier-module"
        ),
        pytest.param(
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            False,
            id="wrong-type",
        ),
        pytest.param("ERR malformed meshfed batch", False, id="malformed-batch"),
        pytest.param("LOADING Redis is loading the dataset in memory", False, id="loading"),
    ],
)
def test_which_errors_send_the_call_to_the_script(message: str, expected: bool) -> None:
    """Only a server that cannot run this version's call (it wrote nothing) sends it to the
    write script; every other error is the write's."""
    assert cannot_run_write(rexc.ResponseError(message)) is expected
