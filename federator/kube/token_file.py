"""A bearer token read from a file and read again whenever the file changes (R7).

In a Pod the federator's own credentials are a projected service-account token that the
kubelet rotates (it rewrites the file well before the token expires, by default hourly); a
client that read it once would start failing after the old token expires. ``FileToken`` is
an ``httpx.Auth`` that checks the file's identity (inode, mtime, size: one ``stat``) on every
request and re-reads it when it changed - the kubelet replaces the file through a symlink
swap, which a stat sees at once - so the next request after a rotation carries the new token.
A file that cannot be read keeps the last token (the request then fails as the server
decides) and is retried on the next request.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path

import httpx

log = logging.getLogger(__name__)


class FileToken(httpx.Auth):
    """``Authorization: Bearer <the file's current content>`` on every request."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._token = ""
        self.reloads = 0
        """Times the token was (re)read from the file."""
        self.current()

    def current(self) -> str:
        """The token, re-read if the file changed since the last read."""
        try:
            st = Path(self.path).stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._token = Path(self.path).read_text().strip()
                self._stamp = stamp
                self.reloads += 1
        except OSError as exc:
            log.warning("cannot read the token file %s: %s", self.path, exc.strerror)
        return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.current()}"
        yield request
