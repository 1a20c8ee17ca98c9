"""Types of the native chunk decoder (the Rust module ``meshfed_native``)."""

from collections.abc import Sequence

def decode_many(blobs: Sequence[bytes]) -> tuple[bytes, bytes, bytes]:
    """Decode chunks into (timestamps, value bits, sample counts): native 8-byte integers.

    Raises ``ValueError`` naming what is wrong with the first corrupt chunk.
    """
