"""Space points: an event's hits with their surface, module, local frame and errors.

Reconstruction never assumes a hit sits at its layer's nominal radius: every
prediction is evaluated at the hit's own position (on its own module plane).
A space point carries

* ``x, y, z, r, phi`` (mm, rad);
* ``surface``: the detector surface of its (volume_id, layer_id), ``module``:
  its row in :attr:`hepml.detector.Detector.modules` (-1 where the module id is
  unknown to the detector: then the surface's typical module stands in for the
  errors), ``disk``: whether the surface is an endcap disk;
* ``sigma_t``: the resolution across the track in the transverse plane (along
  the module's u, r*phi), ``sigma_l``: along the module's v: z on barrel layers,
  r on disks; both pitch / sqrt(12) of the module.

:class:`SurfaceIndex` indexes one surface's points in (phi, z) on a barrel layer
and in (phi, r) on a disk for window queries (:meth:`SpacePoints.index`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit

from hepml.detector import Detector
from hepml.detector.arrays import flat_arrays
from hepml.errors import HepmlError

TWO_PI = 2.0 * np.pi
_KEY_STRIDE = 3.0 * TWO_PI + 1.0  # per bin of the second coordinate: room for phi in [-3 pi, 3 pi]


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Angle wrapped into [-pi, pi) (floor, not %: five times faster on large arrays)."""
    shape, (flat,) = flat_arrays(phi)
    return _wrap_phi_flat(flat).reshape(shape)


@njit(cache=True, error_model="numpy")
def wrap_phi1(phi: float) -> float:
    """:func:`wrap_phi` of one angle (compiled)."""
    return phi - TWO_PI * np.floor((phi + np.pi) * (1.0 / TWO_PI))


@njit(cache=True, error_model="numpy")
def _wrap_phi_flat(phi: np.ndarray) -> np.ndarray:
    out = np.empty(len(phi))
    for i in range(len(phi)):
        out[i] = wrap_phi1(phi[i])
    return out


def expand_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``(i, j)`` with ``lo[i] <= j < hi[i]``, vectorised: ``(i, j)`` arrays."""
    counts = np.maximum(hi - lo, 0)
    total = int(counts.sum())
    i = np.repeat(np.arange(len(lo)), counts)
    if total == 0:
        return i, np.zeros(0, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    j = np.arange(total) - np.repeat(starts - lo, counts)
    return i, j


class SurfaceIndex:
    """Points of one surface indexed by (bin of w, phi), w = z (barrel) or r (disk).

    Every point is stored three times, at phi - 2 pi, phi and phi + 2 pi, under
    the key ``wbin * K + phi' + 3 pi`` (K > 6 pi), so that a phi window crossing
    +-pi is one contiguous key range. The sorted keys are cut into cells of
    ``phi_cell_rad`` with a pointer to each cell's first point, so a query finds
    its key range in each w bin its window overlaps with two array lookups and
    keeps the points inside its window.
    """

    def __init__(
        self,
        phi: np.ndarray,
        w: np.ndarray,
        point: np.ndarray,
        w_bin: float = 50.0,
        phi_cell_rad: float = 0.005,
    ) -> None:
        phi = wrap_phi(np.asarray(phi, dtype=np.float64))
        w = np.asarray(w, dtype=np.float64)
        self.w_bin = float(w_bin)
        self.w_min = float(w.min()) if len(w) else 0.0
        self.w_max = float(w.max()) if len(w) else 0.0
        self.n_bins = int((float(w.max()) - self.w_min) // self.w_bin) + 1 if len(w) else 1
        wb = self._bin(w)
        key = np.concatenate([phi - TWO_PI, phi, phi + TWO_PI]) + 3.0 * np.pi
        key = key + np.tile(wb, 3) * _KEY_STRIDE
        order = np.argsort(key)  # the fast sort; the stable one where keys tie (same order)
        if len(key) > 1 and (key[order[1:]] == key[order[:-1]]).any():
            order = np.argsort(key, kind="stable")
        self.keys = key[order]
        self.point = np.tile(np.asarray(point, dtype=np.int64), 3)[order]
        self.w = np.tile(w, 3)[order]
        self.cell = float(phi_cell_rad)
        self.n_cells = int(np.ceil(self.n_bins * _KEY_STRIDE / self.cell)) + 1
        self.ptr = _cell_starts(self.keys, self.n_cells, self.cell)

    def _bin(self, w: np.ndarray) -> np.ndarray:
        b = np.floor((np.asarray(w) - self.w_min) / self.w_bin)
        return np.clip(b, 0, self.n_bins - 1).astype(np.int64)

    def query(
        self, phi: np.ndarray, half_phi: np.ndarray, w_lo: np.ndarray, w_hi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Points with |phi_point - phi| <= half_phi (wrapped) and w_lo <= w <= w_hi.

        All arguments are (Q,) arrays (``half_phi`` < pi). Returns ``(query, point)``:
        for every match, the query's position (non-decreasing) and the point.
        """
        phi = wrap_phi(np.asarray(phi, dtype=np.float64))
        half = np.minimum(np.asarray(half_phi, dtype=np.float64), np.pi * (1 - 1e-9))
        half = np.broadcast_to(half, phi.shape)
        w_lo = np.broadcast_to(np.asarray(w_lo, dtype=np.float64), phi.shape)
        w_hi = np.broadcast_to(np.asarray(w_hi, dtype=np.float64), phi.shape)
        if len(self.keys) == 0 or len(phi) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return _query(
            self.keys,
            self.ptr,
            self.w,
            self.point,
            self.w_min,
            self.w_max,
            self.w_bin,
            self.n_bins,
            self.cell,
            self.n_cells,
            phi,
            np.ascontiguousarray(half),
            np.ascontiguousarray(w_lo),
            np.ascontiguousarray(w_hi),
        )


@njit(cache=True, error_model="numpy")
def _cell_starts(keys: np.ndarray, n_cells: int, cell: float) -> np.ndarray:
    """For every cell edge e * ``cell`` (e = 0 .. n_cells), the first sorted key >= it
    (``searchsorted(keys, edges, side="left")`` as one linear merge)."""
    ptr = np.empty(n_cells + 1, np.int64)
    j = 0
    for e in range(n_cells + 1):
        edge = np.float64(e) * cell
        while j < len(keys) and keys[j] < edge:
            j += 1
        ptr[e] = j
    return ptr


@njit(cache=True, error_model="numpy")
def query_one(
    keys: np.ndarray,
    ptr: np.ndarray,
    w: np.ndarray,
    point: np.ndarray,
    w_min: float,
    w_max: float,
    w_bin: float,
    n_bins: int,
    cell: float,
    n_cells: int,
    phi: float,
    hq: float,
    lo_w: float,
    hi_w: float,
    q: int,
    out_q: np.ndarray,
    out_p: np.ndarray,
    n: int,
) -> int:
    """One window query of a :class:`SurfaceIndex`'s arrays (compiled): every w bin the
    window overlaps (in order), the key range of its phi window, the points inside it,
    written as ``(q, point)`` from ``n`` on into the buffers. Returns the new count, or -1
    when the buffers are too small (grow them and query again). A NaN bound matches nothing,
    nor does a w window beside the points' range [``w_min``, ``w_max``] (no bin is read)."""
    if not (hq == hq and lo_w == lo_w and hi_w == hi_w and phi == phi):
        return n
    if hi_w < w_min or lo_w > w_max:
        return n
    b_lo = int(min(max(np.floor((lo_w - w_min) / w_bin), 0.0), n_bins - 1))
    b_hi = int(min(max(np.floor((hi_w - w_min) / w_bin), 0.0), n_bins - 1))
    for wb in range(b_lo, b_hi + 1):
        base = wb * _KEY_STRIDE + 3.0 * np.pi + phi
        c_lo = int(min(max(np.floor((base - hq) / cell), 0.0), n_cells))
        c_hi = int(min(max(np.floor((base + hq) / cell), 0.0), n_cells))
        for j in range(ptr[c_lo], ptr[min(c_hi + 1, n_cells)]):
            if abs(keys[j] - base) <= hq and w[j] >= lo_w and w[j] <= hi_w:
                if n == len(out_q):
                    return -1
                out_q[n] = q
                out_p[n] = point[j]
                n += 1
    return n


@njit(cache=True, error_model="numpy")
def grown(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` (its first ``n`` entries) in a buffer twice as large."""
    out = np.empty(2 * len(a) + 64, a.dtype)
    out[:n] = a[:n]
    return out


@njit(cache=True, error_model="numpy")
def _query(
    keys: np.ndarray,
    ptr: np.ndarray,
    w: np.ndarray,
    point: np.ndarray,
    w_min: float,
    w_max: float,
    w_bin: float,
    n_bins: int,
    cell: float,
    n_cells: int,
    phi: np.ndarray,
    half: np.ndarray,
    w_lo: np.ndarray,
    w_hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`SurfaceIndex.query`'s matches (compiled): :func:`query_one` of every query."""
    out_q = np.empty(4 * len(phi) + 64, np.int64)
    out_p = np.empty(4 * len(phi) + 64, np.int64)
    n = 0
    for q in range(len(phi)):
        while True:
            m = query_one(
                keys,
                ptr,
                w,
                point,
                w_min,
                w_max,
                w_bin,
                n_bins,
                cell,
                n_cells,
                phi[q],
                half[q],
                w_lo[q],
                w_hi[q],
                q,
                out_q,
                out_p,
                n,
            )
            if m >= 0:
                break
            out_q, out_p = grown(out_q, n), grown(out_p, n)
        n = m
    return out_q[:n], out_p[:n]


@dataclass
class SpacePoints:
    """One event's space points (see the module docstring); arrays of length n."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    surface: np.ndarray
    module: np.ndarray
    sigma_t: np.ndarray
    sigma_l: np.ndarray
    disk: np.ndarray
    r: np.ndarray = field(init=False)
    phi: np.ndarray = field(init=False)
    _indexes: dict[tuple[int, float, bytes], SurfaceIndex] = field(
        init=False, repr=False, default_factory=dict
    )
    #: each surface's points (rows), for :meth:`index`
    _on_surface: dict[int, np.ndarray] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.r = np.hypot(self.x, self.y)
        self.phi = np.arctan2(self.y, self.x)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def w(self) -> np.ndarray:
        """The longitudinal coordinate: z on barrel layers, r on disks."""
        return np.where(self.disk, self.r, self.z)

    @classmethod
    def from_arrays(
        cls,
        det: Detector,
        x: np.ndarray,
        y: np.ndarray,
        z: np.ndarray,
        volume_id: np.ndarray,
        layer_id: np.ndarray,
        module_id: np.ndarray | None = None,
        source: str = "hits",
    ) -> SpacePoints:
        """Space points of hits given by position and TrackML ids; hits on surfaces the
        detector does not know get ``surface`` -1 (reconstruction ignores them)."""
        x, y, z = (np.asarray(a, dtype=np.float64) for a in (x, y, z))
        if not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(z).all()):
            raise HepmlError(f"{source}: hit coordinates must be finite numbers")
        surf = det.surface_of(volume_id, layer_id)
        n = len(x)
        mod = (
            det.module_row(volume_id, layer_id, module_id)
            if module_id is not None
            else np.full(n, -1, np.int64)
        )
        m = det.modules
        # a stand-in module per surface (its first) where the id is unknown
        first = np.array([s.first for s in det.surfaces], dtype=np.int64)
        stand_in = np.where(surf >= 0, first[np.maximum(surf, 0)], 0)
        row = np.where(mod >= 0, mod, stand_in)
        sq12 = np.sqrt(12.0)
        disk = det._is_disk[np.maximum(surf, 0)] & (surf >= 0)
        return cls(
            x=x,
            y=y,
            z=z,
            surface=surf.astype(np.int32),
            module=mod.astype(np.int64),
            sigma_t=m.pitch_u[row] / sq12,
            sigma_l=m.pitch_v[row] / sq12,
            disk=disk,
        )

    @classmethod
    def from_hits(cls, det: Detector, hits: pd.DataFrame, source: str = "hits") -> SpacePoints:
        """Space points of a hits table (:data:`hepml.io.HIT_COLUMNS`) of one event."""
        return cls.from_arrays(
            det,
            hits["x"].to_numpy(),
            hits["y"].to_numpy(),
            hits["z"].to_numpy(),
            hits["volume_id"].to_numpy(),
            hits["layer_id"].to_numpy(),
            hits["module_id"].to_numpy() if "module_id" in hits else None,
            source,
        )

    def index(self, surface: int, w_bin: float, allowed: np.ndarray | None = None) -> SurfaceIndex:
        """The index of ``surface``'s points (those ``allowed``, if given); cached."""
        on = self._on_surface.get(surface)
        if on is None:
            on = self._on_surface[surface] = np.flatnonzero(self.surface == surface)
        sub = None if allowed is None else np.asarray(allowed[on], dtype=bool)
        key = (surface, w_bin, b"" if sub is None else np.packbits(sub).tobytes())
        if key not in self._indexes:
            idx = on if sub is None else on[sub]
            w = self.r[idx] if self.disk[idx].any() else self.z[idx]
            self._indexes[key] = SurfaceIndex(self.phi[idx], w, idx, w_bin)
        return self._indexes[key]
