"""What the embedded Redis is configured for, seen from Redis itself.

The write path sets one field of a shard's ``first`` and ``last`` hashes per series; the
embedded server keeps even small hashes as hash tables (``hash-max-ziplist-entries 16``)
so that a set does not scan and move a packed list of up to 512 fields. 200 series
over 4 shards put more than 16 fields in every one.
"""

from __future__ import annotations

from typing import Any

import pytest

from collectors._core.model import Sample
from collectors.store import keys
from collectors.store.config import StoreSettings
from collectors.store.store import TelemetryStore


@pytest.mark.parametrize(
    "hash_key",
    [
        pytest.param(keys.series_last_key, id="last"),
        pytest.param(keys.series_first_key, id="first"),
    ],
)
async def test_small_shard_hashes_are_hash_tables(
    embedded_settings: StoreSettings, hash_key: Any
) -> None:
    store = TelemetryStore(settings=embedded_settings)
    await store.start()
    try:
        samples = [Sample("up", {"job": f"j{i}"}, 1_700_000_000_000, 1.0) for i in range(200)]
        await store.write_samples(samples)
        client: Any = store.connection.client
        shards = range(embedded_settings.chunks.shards)
        encodings = {await client.object("encoding", hash_key(s)) for s in shards}
        assert encodings == {b"hashtable"}
    finally:
        await store.shutdown()
