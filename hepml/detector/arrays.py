"""Array plumbing for the compiled (numba) kernels: each formula is a compiled scalar
function, and the numpy-facing function broadcasts its arguments and loops over them."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def flat_arrays(*arrays: ArrayLike) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """Broadcast arrays to float64 and flatten them (contiguous) for a compiled loop;
    ``(shape, flat arrays)``."""
    xs = [np.asarray(a, dtype=np.float64) for a in arrays]
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    # an array of another shape is broadcast into a copy of its own (a broadcast view is
    # read-only, and numba would compile for that too); the others pass through
    flat = [
        (
            np.array(np.broadcast_to(x, shape)) if x.shape != shape else np.ascontiguousarray(x)
        ).ravel()
        for x in xs
    ]
    return shape, flat
