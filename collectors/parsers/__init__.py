"""Pure parsers: bytes in, :mod:`collectors.model` records out; bad input raises
:class:`collectors.errors.PermanentError`. No sockets, no I/O (enforced by import-linter)."""
