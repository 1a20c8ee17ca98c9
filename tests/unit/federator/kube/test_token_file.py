"""``FileToken``: the token file is re-read when it is replaced (as the kubelet rotates a
projected service-account token), not otherwise; an unreadable file keeps the last token."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from federator.kube.token_file import FileStamp, FileToken


def replace(path: Path, content: str) -> None:
    """Write beside and rename over, as the kubelet's atomic writer does."""
    tmp = path.with_suffix(".new")
    tmp.write_text(content)
    tmp.rename(path)


def header(auth: FileToken) -> str:
    request = httpx.Request("GET", "https://apiserver.invalid/api")
    return next(auth.auth_flow(request)).headers["Authorization"]


def test_rotated_token_is_used_by_the_next_request(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    auth = FileToken(str(path))
    assert header(auth) == "Bearer first"
    assert header(auth) == "Bearer first" and auth.reloads == 1  # unchanged: not re-read
    replace(path, "second")
    assert header(auth) == "Bearer second" and auth.reloads == 2


def test_unreadable_file_keeps_the_last_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first")
    auth = FileToken(str(path))
    path.unlink()
    assert header(auth) == "Bearer first"
    path.write_text("back")
    assert header(auth) == "Bearer back"


def test_file_stamp_sees_a_replacement_once_noted(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    stamp = FileStamp(path)
    first = stamp.look()
    assert first is not None  # nothing noted yet: changed
    stamp.note(first)
    assert stamp.look() is None
    replace(path, "second, longer\n")
    second = stamp.look()
    assert second not in (None, first)
    assert stamp.look() == second  # not noted: still reported as changed
    stamp.note_current()
    assert stamp.look() is None
    path.unlink()
    stamp.note_current()  # cannot stat: keeps the last identity
    with pytest.raises(OSError):
        stamp.look()
