"""``python -m federator``: the federator's lean long-running entry point (``federator.serve``)."""

import sys

# httpx imports its optional command line (click, rich, pygments: ~5 MiB resident) when
# those happen to be installed; the federator never runs it. A None entry makes that import
# fail, which httpx handles by leaving a stub in its place.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from federator.serve import main  # noqa: E402

sys.exit(main())
