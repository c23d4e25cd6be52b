"""Triplet seeding in the pixel layers, and the (phi, z) hit index used by the finder.

A seed is three hits on three pixel layers (global layers 0..3), inner to outer,
found in three vectorised steps (cf. the ATLAS space-point seeding,
ATL-PHYS-PUB-2009-002, and ACTS' seed finder):

1. **doublets** (a, b): for every hit a, the hits b of the next seed layer in a
   phi window and a z window. The phi window covers the bending of a track of
   pT >= ``min_pt_GeV`` and an impact parameter |d0| <= ``max_d0_mm``; in the
   small-angle form of the track circle, phi(r) = phi0 - rho r/2 - d0/r, so
   |phi_b - phi_a| <= asin(r_b/2R_min) - asin(r_a/2R_min) + d0_max (1/r_a - 1/r_b).
   The z window keeps the straight line through a and b within |z0| <= ``max_z0_mm``
   of the beam line at r = 0.
2. **triplets** (a, b, c): hits c around the extrapolation of the doublet, linear in
   phi(r) and in z(r); the phi half-width is the d0 term of the curvature of
   phi(r), d0_max (r_c - r_b)/r_b (1/r_a - 1/r_c), plus ``phi_tolerance_rad``; the z
   half-width is ``z_window_mm`` (1 + cot^2 theta) (the scattering displacement
   along z at fixed radius grows as 1/sin^2 theta).
3. **cuts on the triplet's helix** (exact circle through the three points and the
   s-z line, :func:`hepml.reco.fit.fit_helix`): pT >= ``min_pt_GeV``,
   |d0| <= ``max_d0_mm``, |z0| <= ``max_z0_mm``.

The hit lookups go through :class:`PhiZIndex`: hits of one layer sorted by (z bin,
phi) and searched with :func:`numpy.searchsorted`, so a query costs O(log n)
plus the hits returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepml.config import from_section
from hepml.errors import HepmlError
from hepml.reco.fit import fit_helix

TWO_PI = 2.0 * np.pi
_KEY_STRIDE = 3.0 * TWO_PI + 1.0  # per z bin: room for phi in [-3 pi, 3 pi]


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Angle wrapped into [-pi, pi)."""
    return (np.asarray(phi) + np.pi) % TWO_PI - np.pi


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


class PhiZIndex:
    """Hits of one layer indexed by (z bin, phi) for window queries.

    Every hit is stored three times, at phi - 2 pi, phi and phi + 2 pi, under the
    key ``zbin * K + phi' + 3 pi`` (K > 6 pi), so that a phi window crossing
    +-pi is one contiguous key range. A query scans the z bins its z window
    overlaps (a short Python loop over bins, vectorised over queries).

    Args:
        phi, z: (n,) hit coordinates (rad, mm).
        hit_index: (n,) what a query returns for each hit (e.g. row numbers).
        z_bin_mm: z bin width; wide bins suit wide z windows.
    """

    def __init__(
        self, phi: np.ndarray, z: np.ndarray, hit_index: np.ndarray, z_bin_mm: float = 50.0
    ) -> None:
        phi = wrap_phi(np.asarray(phi, dtype=np.float64))
        z = np.asarray(z, dtype=np.float64)
        self.z_bin_mm = float(z_bin_mm)
        self.z_min = float(z.min()) if len(z) else 0.0
        self.n_bins = int((float(z.max()) - self.z_min) // self.z_bin_mm) + 1 if len(z) else 1
        zb = self._bin(z)
        key = np.concatenate([phi - TWO_PI, phi, phi + TWO_PI]) + 3.0 * np.pi
        key = key + np.tile(zb, 3) * _KEY_STRIDE
        order = np.argsort(key, kind="stable")
        self.keys = key[order]
        self.hit_index = np.tile(np.asarray(hit_index, dtype=np.int64), 3)[order]
        self.z = np.tile(z, 3)[order]

    def _bin(self, z: np.ndarray) -> np.ndarray:
        b = np.floor((np.asarray(z) - self.z_min) / self.z_bin_mm)
        return np.clip(b, 0, self.n_bins - 1).astype(np.int64)

    def query(
        self, phi: np.ndarray, half_phi: np.ndarray, z_lo: np.ndarray, z_hi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hits with |phi_hit - phi| <= half_phi (wrapped) and z_lo <= z_hit <= z_hi.

        All arguments are (Q,) arrays (``half_phi`` < pi). Returns ``(query, hit)``:
        for every match, the query's position and the hit's ``hit_index``.
        """
        phi = wrap_phi(np.asarray(phi, dtype=np.float64))
        half = np.minimum(np.asarray(half_phi, dtype=np.float64), np.pi * (1 - 1e-9))
        half = np.broadcast_to(half, phi.shape)
        z_lo = np.broadcast_to(np.asarray(z_lo, dtype=np.float64), phi.shape)
        z_hi = np.broadcast_to(np.asarray(z_hi, dtype=np.float64), phi.shape)
        if len(self.keys) == 0 or len(phi) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        b_lo, b_hi = self._bin(z_lo), self._bin(z_hi)
        span = b_hi - b_lo
        out_q, out_j = [], []
        for k in range(int(span.max()) + 1 if len(span) else 0):
            q = np.flatnonzero(span >= k)
            base = (b_lo[q] + k) * _KEY_STRIDE + 3.0 * np.pi + phi[q]
            lo = np.searchsorted(self.keys, base - half[q], side="left")
            hi = np.searchsorted(self.keys, base + half[q], side="right")
            i, j = expand_ranges(lo, hi)
            out_q.append(q[i])
            out_j.append(j)
        qq = np.concatenate(out_q)
        jj = np.concatenate(out_j)
        zz = self.z[jj]
        keep = (zz >= z_lo[qq]) & (zz <= z_hi[qq])
        return qq[keep], self.hit_index[jj[keep]]


@dataclass(frozen=True)
class SeedingConfig:
    """Cuts of the triplet seeding (``ghost_filter.seeding``). Units: GeV, mm, rad."""

    layer_triplets: tuple[tuple[int, int, int], ...] = ((0, 1, 2), (1, 2, 3))
    min_pt_GeV: float = 0.5
    max_d0_mm: float = 1.0
    max_z0_mm: float = 200.0
    phi_tolerance_rad: float = 0.003
    z_window_mm: float = 0.5

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> SeedingConfig:
        """From the validated config's ``ghost_filter.seeding`` section."""
        s = cfg["ghost_filter"]["seeding"]
        triplets = tuple(tuple(int(v) for v in t) for t in s["layer_triplets"])
        for t in triplets:
            if len(t) != 3 or not (0 <= t[0] < t[1] < t[2] <= 3):
                raise HepmlError(
                    f"ghost_filter.seeding.layer_triplets: {list(t)} must be three increasing pixel layers in 0..3"
                )
        return from_section(cls, s, layer_triplets=triplets)


def _doublets(
    r: np.ndarray,
    phi: np.ndarray,
    z: np.ndarray,
    ia: np.ndarray,
    index_b: PhiZIndex,
    r_b: float,
    cfg: SeedingConfig,
    r_min_mm: float,
) -> tuple[np.ndarray, np.ndarray]:
    ra = r[ia]
    bend = np.arcsin(np.minimum(r_b / (2 * r_min_mm), 1.0)) - np.arcsin(
        np.minimum(ra / (2 * r_min_mm), 1.0)
    )
    half = np.abs(bend) + cfg.max_d0_mm * np.abs(1.0 / ra - 1.0 / r_b) + cfg.phi_tolerance_rad
    za = z[ia]
    lever = (r_b - ra) / ra
    margin = cfg.z_window_mm
    z_lo = za + (za - cfg.max_z0_mm) * lever - margin
    z_hi = za + (za + cfg.max_z0_mm) * lever + margin
    qa, ib = index_b.query(phi[ia], half, z_lo, z_hi)
    a, b = ia[qa], ib
    # the line through a and b must pass within max_z0 of the beam line
    z0 = z[a] - r[a] * (z[b] - z[a]) / (r[b] - r[a])
    keep = np.abs(z0) <= cfg.max_z0_mm + margin
    return a[keep], b[keep]


def find_seeds(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    layer: np.ndarray,
    cfg: SeedingConfig,
    bfield_T: float,
) -> np.ndarray:
    """Triplet seeds of one event: ``(S, 3)`` int64 hit indices (rows of the inputs), inner to outer.

    ``x, y, z`` (mm) and ``layer`` (global layer, -1 for hits outside the barrel)
    are (n,) arrays of one event's hits. Seeds are sorted and unique.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    layer = np.asarray(layer)
    r = np.hypot(x, y)
    phi = np.arctan2(y, x)
    r_min_mm = cfg.min_pt_GeV / (0.299792458e-3 * abs(bfield_T))
    by_layer = {
        lay: np.flatnonzero(layer == lay) for lay in {v for t in cfg.layer_triplets for v in t}
    }
    radius = {
        lay: float(np.median(r[idx])) if len(idx) else np.nan for lay, idx in by_layer.items()
    }
    indexes: dict[tuple[int, float], PhiZIndex] = {}

    def index(lay: int, z_bin: float) -> PhiZIndex:
        if (lay, z_bin) not in indexes:
            idx = by_layer[lay]
            indexes[(lay, z_bin)] = PhiZIndex(phi[idx], z[idx], idx, z_bin)
        return indexes[(lay, z_bin)]

    seeds = []
    for la, lb, lc in cfg.layer_triplets:
        if min(len(by_layer[la]), len(by_layer[lb]), len(by_layer[lc])) == 0:
            continue
        a, b = _doublets(r, phi, z, by_layer[la], index(lb, 100.0), radius[lb], cfg, r_min_mm)
        if len(a) == 0:
            continue
        rc = radius[lc]
        lever = (rc - r[b]) / (r[b] - r[a])
        dphi = wrap_phi(phi[b] - phi[a])
        phi_c = phi[b] + dphi * lever
        cot = (z[b] - z[a]) / (r[b] - r[a])
        z_c = z[b] + (z[b] - z[a]) * lever
        half_phi = (
            cfg.max_d0_mm * (rc - r[b]) / r[b] * np.abs(1.0 / r[a] - 1.0 / rc)
            + cfg.phi_tolerance_rad
        )
        half_z = cfg.z_window_mm * (1.0 + cot * cot)
        qd, c = index(lc, 10.0).query(phi_c, half_phi, z_c - half_z, z_c + half_z)
        if len(qd) == 0:
            continue
        trip = np.stack([a[qd], b[qd], c], axis=1)
        seeds.append(trip)
    if not seeds:
        return np.zeros((0, 3), dtype=np.int64)
    trip = np.concatenate(seeds)
    fit = fit_helix(x[trip], y[trip], z[trip], np.ones(trip.shape, dtype=bool), bfield_T)
    ok = (
        (fit.pt_GeV >= cfg.min_pt_GeV)
        & (np.abs(fit.d0_mm) <= cfg.max_d0_mm)
        & (np.abs(fit.z0_mm) <= cfg.max_z0_mm)
    )
    trip = trip[ok]
    return np.unique(trip, axis=0).astype(np.int64)
