"""Types of the native chunk codec and remote_write splitter (the Rust module ``meshfed_native``)."""

from collections.abc import Sequence

def decode_many(blobs: Sequence[bytes]) -> tuple[bytes, bytes, bytes]:
    """Decode chunks into (timestamps, value bits, sample counts): native 8-byte integers.

    Raises ``ValueError`` naming what is wrong with the first corrupt chunk.
    """

def chunk_planes(timestamps: Sequence[int], value_bytes: bytes) -> tuple[int, bytes] | None:
    """A chunk's flags and uncompressed body for timestamps and big-endian value bytes.

    ``None`` where the Python encoder must judge (no samples, a length mismatch, a
    delta-of-delta beyond 64 bits). Raises ``OverflowError`` for a timestamp beyond int64.
    """

class LabelBlocks:
    """Validated remote_write label blocks and their series objects (at most ``max``)."""

    def __init__(self, max: int) -> None: ...
    def split(
        self, data: bytes
    ) -> tuple[list[object] | None, list[bytes], bytes, bytes, bytes, bytes, int, bool] | None:
        """Split uncompressed remote_write ``WriteRequest`` bytes into columns.

        Returns (the series object of every run when every distinct block is known and no
        object serves two runs, else ``None``; the distinct label blocks when that is
        ``None``, else empty; run block indexes, run offsets, timestamps, values as native
        int64 / float64 ``bytes``; series count; has metadata). ``None`` when the body is
        outside the common layout (Python decodes it).
        """
    def learn(self, block: bytes, series: object) -> None:
        """Remember ``series`` as what the validated ``block`` means."""
    def get(self, block: bytes) -> object | None:
        """The series object of a validated ``block``, if it is known."""
    def __len__(self) -> int: ...

def pack_series(
    prefixes: Sequence[bytes],
    shards: Sequence[int],
    offsets: Sequence[int],
    timestamps: Sequence[int],
    values: Sequence[float],
    nshards: int,
    per_call: int,
) -> list[tuple[int, bytes]] | None:
    """The write script's argument per shard call for runs of distinct series.

    Shards ascending, each shard's series in run order, at most ``per_call`` series per
    call. ``None`` when a run's timestamps are not strictly increasing. Raises
    ``ValueError`` for columns that do not fit together, ``OverflowError`` for a timestamp
    beyond int64.
    """
