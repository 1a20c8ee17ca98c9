"""Reading ``MESHFED.WRITE`` replies: counts, heads to cut, entries left for the script."""

from __future__ import annotations

from typing import Any

import pytest

from collectors._core.component import WriteResult
from collectors.store.metrics_module import COMMAND, ModuleReply, module_args, read_reply

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
