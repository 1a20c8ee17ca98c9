"""Per-sample cost of decoding remote_write bodies: the native split vs the Python parser.

Both decoders run in the same process on the same distinct bodies (varied values and
timestamps per body, no body repeated), each with its label cache warmed by one body first,
as a running receiver's is. The Python parser is what runs without ``meshfed_native`` and
what ran before ADR 0016, so its figure is the "before" of the same run. Results:
docs/benchmarks.md, remote_write section.

    .venv/bin/python bench/remote_write_decode.py
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.receivers.prometheus.protocol import remote_write_native
from collectors.receivers.prometheus.protocol.remote_write import SeriesDecoder
from tests.helpers.remote_write import proto_write_request, snappy_compress

SHAPES = [(2000, 1, 30), (10000, 1, 10), (2000, 10, 10)]
"""(series per request, samples per series, distinct bodies timed)."""
LIMIT = 1 << 30


def body(series: int, per: int, round_: int, rng: random.Random) -> bytes:
    start = 1_700_000_000_000 + round_ * 15_000
    return snappy_compress(
        proto_write_request(
            [
                (
                    [("__name__", f"metric_{s % 50}"), ("instance", f"host-{s // 50}:9100"),
                     ("job", "node"), ("series", str(s))],
                    [(start + k, rng.random() * 1e6) for k in range(per)],
                )
                for s in range(series)
            ]
        )
    )  # fmt: skip


def main() -> None:
    if not remote_write_native.AVAILABLE:
        sys.exit("meshfed_native is not installed: run `make setup` (it builds it)")
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}")
    rng = random.Random(7)
    for series, per, rounds in SHAPES:
        bodies = [body(series, per, r, rng) for r in range(rounds + 1)]
        cost = {}
        for native in (False, True):
            remote_write_native.AVAILABLE = native
            decoder = SeriesDecoder()
            decoder.decode(bodies[0], max_decompressed_bytes=LIMIT)  # warm the label cache
            t = time.perf_counter()
            for b in bodies[1:]:
                decoder.decode(b, max_decompressed_bytes=LIMIT)
            cost[native] = (time.perf_counter() - t) / (rounds * series * per) * 1e6
        print(
            f"{series} series x {per} samples per request, {rounds} bodies: python"
            f" {cost[False]:.2f} us/sample, native {cost[True]:.2f} us/sample"
            f" ({cost[False] / cost[True]:.1f}x)"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
