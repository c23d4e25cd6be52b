"""Shard bookkeeping shared by the Snakemake rules and the library.

Events are simulated in shards; the last ``ceil(test_fraction * n)`` shards are
the test sample, never seen in training or validation.
"""

from __future__ import annotations

import math
from pathlib import Path


def split_shards(n_shards: int, test_fraction: float) -> tuple[list[int], list[int]]:
    """``(train_shards, test_shards)``: the last shards, at least one, are for testing."""
    if n_shards < 2:
        raise ValueError(f"need at least 2 shards to keep a test sample apart, got {n_shards}")
    n_test = min(n_shards - 1, max(1, math.ceil(test_fraction * n_shards)))
    return list(range(n_shards - n_test)), list(range(n_shards - n_test, n_shards))


def shard_of(path: str | Path) -> int:
    """The shard number K of a file named ``...shardK.<ext>``."""
    stem = Path(path).name.split(".")[0]
    if not stem.startswith("shard") or not stem[5:].isdigit():
        raise ValueError(f"'{path}' is not named shardK.*")
    return int(stem[5:])
