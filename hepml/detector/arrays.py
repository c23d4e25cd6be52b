"""Array plumbing for the compiled (numba) kernels: each formula is a compiled scalar
function, and the numpy-facing function broadcasts its arguments and loops over them."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def flat_arrays(*arrays: ArrayLike) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """Broadcast arrays to float64 and flatten them (contiguous) for a compiled loop;
    ``(shape, flat arrays)``."""
    b = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))
    # a broadcast view is read-only (numba warns on it): copy those, pass the others through
    return b[0].shape, [np.require(x, requirements=("C", "W")).ravel() for x in b]
