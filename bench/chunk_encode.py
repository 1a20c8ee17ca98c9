"""Benchmark: chunk encoding per sample, the native planes vs the Python reference, one process.

Not part of CI. Encodes ``--chunks`` distinct 120-sample chunks (jittered 15 s timestamps;
half integer counters, half float gauges, all values drawn at random) with
``collectors.store.chunks.encode_chunk`` as the store calls it, once with
``meshfed_native.chunk_planes`` and once with the Python planes (what ran before it, and
what runs where it is not built), alternating ``--repeat`` times; prints the CPU time per
sample of each (medians), their ratio, ``zlib`` alone, and the load. Results:
docs/adr/0015-native-chunk-decoding.md (addendum).

    .venv/bin/python bench/chunk_encode.py --chunks 2000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.store import chunks
from collectors.store.chunks import bits_from_values, chunk_planes_py, encode_chunk

T0 = 1_700_000_000_000
SAMPLES = 120


def blocks(n: int) -> list[tuple[list[int], bytes]]:
    rng = random.Random(3)
    out = []
    for k in range(n):
        ts = [T0 + 15_000 * i + rng.randint(-30, 30) for i in range(SAMPLES)]
        if k % 2:
            values = [float(rng.randint(0, 10**6) + 7 * i) for i in range(SAMPLES)]
        else:
            values = [rng.uniform(0, 100) for _ in range(SAMPLES)]
        out.append((ts, bits_from_values(values)))
    return out


def us_per_sample(data: list[tuple[list[int], bytes]], *, native: bool) -> float:
    saved = chunks._native_planes
    if not native:
        chunks._native_planes = None
    try:
        started = time.process_time()
        for ts, value_bits in data:
            encode_chunk(ts, value_bits)
        return 1e6 * (time.process_time() - started) / (SAMPLES * len(data))
    finally:
        chunks._native_planes = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if chunks._native_planes is None:
        sys.exit("meshfed_native with chunk_planes is not installed: run make setup")
    data = blocks(args.chunks)
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}")
    python, native = [], []
    for _ in range(args.repeat):
        python.append(us_per_sample(data, native=False))
        native.append(us_per_sample(data, native=True))
    bodies = [chunk_planes_py(ts, value_bits)[1] for ts, value_bits in data]
    started = time.process_time()
    for body in bodies:
        zlib.compress(body, 6, wbits=-15)
    deflate = 1e6 * (time.process_time() - started) / (SAMPLES * len(data))
    p, n = statistics.median(python), statistics.median(native)
    print(f"python planes: {p:.3f} us/sample (median of {args.repeat})")
    print(f"native planes: {n:.3f} us/sample; python / native = {p / n:.1f}x")
    print(f"zlib alone:    {deflate:.3f} us/sample")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
