"""The ``meshfed`` command and the developer sandbox; it wires the federator and the
collectors together but neither of them imports it.

The version is not written here: it is ``pyproject.toml``'s, read from the installed
distribution's metadata when asked for, so the two can never disagree.
"""

from __future__ import annotations

DISTRIBUTION = "meshfed"
"""The name under which pyproject.toml installs us."""


def installed_version() -> str:
    """The installed distribution's version; a plain explanation when it is not installed."""
    # importlib.metadata costs ~20 ms at import: only ``--version`` pays for it.
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed; run `make setup`)"


def __getattr__(name: str) -> str:
    """``meshfed.__version__``, for tools that look for it, without a copy of the number."""
    if name == "__version__":
        return installed_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
