"""Files read again whenever they change: the bearer tokens a federator sends and expects (R7).

In a Pod the federator's own credentials are a projected service-account token that the
kubelet rotates (it rewrites the file well before the token expires, by default hourly); a
client that read it once would start failing after the old token expires. The status API's
and the HTTP port's expected tokens come from mounted Secrets, which change the same way.
``FileStamp`` tells whether a file changed from its identity (inode, mtime, size: one
``stat``) - the kubelet replaces such files through a symlink swap, which a stat sees at
once. ``FileToken`` is the ``httpx.Auth`` over it: the next request after a rotation carries
the new token. A file that cannot be read keeps the last token (the request then fails as
the server decides) and is retried on the next request.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Generator
from pathlib import Path

import httpx

log = logging.getLogger(__name__)


class FileStamp:
    """Whether ``path`` changed since the stamp last noted: its (inode, mtime, size) differ."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._noted: tuple[int, int, int] | None = None

    def look(self) -> tuple[int, int, int] | None:
        """The file's identity if it changed since the last ``note``, else None; ``OSError``
        when it cannot be stat'ed (the caller keeps what it read last)."""
        stamp = self._identity()
        return None if stamp == self._noted else stamp

    def note(self, stamp: tuple[int, int, int]) -> None:
        """Remember ``stamp`` as the identity of what the caller has read."""
        self._noted = stamp

    def note_current(self) -> None:
        """Remember the file's identity now (after a read that did not go through ``look``);
        a file that cannot be stat'ed is looked at again next time."""
        with contextlib.suppress(OSError):
            self._noted = self._identity()

    def _identity(self) -> tuple[int, int, int]:
        st = self.path.stat()
        return (st.st_ino, st.st_mtime_ns, st.st_size)


class FileToken(httpx.Auth):
    """``Authorization: Bearer <the file's current content>`` on every request."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp = FileStamp(Path(path))
        self._token = ""
        self.reloads = 0
        """Times the token was (re)read from the file."""
        self.current()

    def current(self) -> str:
        """The token, re-read if the file changed since the last read."""
        try:
            stamp = self._stamp.look()
            if stamp is not None:
                self._token = self._stamp.path.read_text().strip()
                self._stamp.note(stamp)
                self.reloads += 1
        except OSError as exc:
            log.warning("cannot read the token file %s: %s", self.path, exc.strerror)
        return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.current()}"
        yield request
