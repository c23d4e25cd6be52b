"""Seeded random streams: every random draw in hepml comes from here.

A stream is identified by (seed, name, shard), so that shard K of a simulation
is the same whatever other shards exist and in whatever order they run.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream_id(name: str) -> int:
    """A stable 32-bit integer for a stream name (CRC-32, not Python's salted hash)."""
    return zlib.crc32(name.encode())


def rng(seed: int, name: str, shard: int = 0) -> np.random.Generator:
    """The generator of stream ``name`` for ``shard`` under the master ``seed``."""
    return np.random.default_rng([int(seed), stream_id(name), int(shard)])


def torch_seed(seed: int, name: str) -> int:
    """A 63-bit seed for torch generators, derived like :func:`rng`."""
    return int(
        np.random.SeedSequence([int(seed), stream_id(name)]).generate_state(2, np.uint64)[0]
        >> np.uint64(1)
    )
