"""Triplet seeding in the pixel layers, and the (phi, z) hit index used by the finder.

A seed is three hits on three pixel layers (global layers 0..3), inner to outer
(cf. the ATLAS space-point seeding, ATL-PHYS-PUB-2009-002, ACTS' seed finder and
filter, and the CMS pixel seeds of iterative tracking), found in vectorised steps:

1. **doublets** on two layers of a kind: for every hit a, the hits b of the other
   layer in a phi window and a z window. The phi window covers the bending of a
   track of pT >= ``min_pt_GeV`` and an impact parameter |d0| <= ``max_d0_mm``; in
   the small-angle form of the track circle, phi(r) = phi0 - rho r/2 - d0/r, so
   |phi_b - phi_a| <= asin(r_b/2R_min) - asin(r_a/2R_min) + d0_max (1/r_a - 1/r_b).
   The z window keeps the straight line through a and b within |z0| <= ``max_z0_mm``
   of the beam line at r = 0.
2. **triplets**: the circle through the beam line and the doublet predicts the
   third hit on the remaining layer (``third_hit``: outwards, inwards, or both from
   one set of doublets on the layers the kinds share). The window is ``n_sigma``
   standard deviations of the prediction's error: the measurement resolution of
   the three hits and the Highland multiple scattering of every layer crossed, at
   the doublet's momentum taken 20% low, propagated through the extrapolation
   (:class:`_Extrapolation`: the prediction is linear in the hits, so a kink at
   layer j moves it by the difference between the kinked path and what the fit
   makes of it). Soft doublets get wide windows and hard ones narrow windows, so
   the third-hit pulls of true triplets are about unit-width at every momentum.
3. **cuts on the triplet's circle** (exact, through the three hits, :class:`_Circles`):
   pT >= ``min_pt_GeV``, |d0| <= ``max_d0_mm``, |z0| <= ``max_z0_mm``.
4. with ``confirm_hits`` > 0, **confirmation**: the triplet is followed over the
   next three layers like a short track (each prediction from the circle through
   its first hit and the last two found, with the same error model), and kept if
   it finds that many compatible hits and the summed squared pulls of the third
   and the confirming hits stay below ``max_chi2``; the hits inside the triplet's
   first layer are searched too (inwards), and the seed becomes the three
   innermost. Of confirmed seeds sharing two hits only the best-fitting stays
   (:func:`_unique_hit_sets`): a particle's 0-1-2 and 1-2-3 seeds are one, and a
   fake triplet holding two hits of a real track gives way to it. At TrackML
   density this takes the seeds from ~1.7 x 10^5 (0.15 GeV) to ~2 x 10^4, ~5 x 10^3
   of them true.

``allowed`` restricts the triplets to some hits (a second tracking pass on the
hits the first left, :func:`hepml.tasks.hit_labeller.event_roads`).

The hit lookups go through :class:`PhiZIndex`: hits of one layer sorted by (z bin,
phi) with a cell table, so a query costs two array lookups plus the hits returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepml.config import from_section
from hepml.errors import HepmlError
from hepml.reco.fit import LayerResolution, _arc_from_chord
from hepml.sim.geometry import TrackerGeometry
from hepml.sim.physics import GEV_PER_T_MM

TWO_PI = 2.0 * np.pi
_KEY_STRIDE = 3.0 * TWO_PI + 1.0  # per z bin: room for phi in [-3 pi, 3 pi]


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Angle wrapped into [-pi, pi) (floor, not %: five times faster on large arrays)."""
    phi = np.asarray(phi)
    return phi - TWO_PI * np.floor((phi + np.pi) * (1.0 / TWO_PI))


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
    +-pi is one contiguous key range. The sorted keys are cut into cells of
    ``phi_cell_rad`` with a pointer to each cell's first hit, so a query finds its
    key range in each z bin its z window overlaps with two array lookups (no
    binary search) and then keeps the hits of the cells it overlaps that lie
    inside its window.

    Args:
        phi, z: (n,) hit coordinates (rad, mm).
        hit_index: (n,) what a query returns for each hit (e.g. row numbers).
        z_bin_mm: z bin width; wide bins suit wide z windows.
        phi_cell_rad: cell width of the lookup table along phi.
    """

    def __init__(
        self,
        phi: np.ndarray,
        z: np.ndarray,
        hit_index: np.ndarray,
        z_bin_mm: float = 50.0,
        phi_cell_rad: float = 0.005,
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
        self.cell = float(phi_cell_rad)
        self.n_cells = int(np.ceil(self.n_bins * _KEY_STRIDE / self.cell)) + 1
        edges = np.arange(self.n_cells + 1, dtype=np.float64) * self.cell
        self.ptr = np.searchsorted(self.keys, edges, side="left")

    def _bin(self, z: np.ndarray) -> np.ndarray:
        b = np.floor((np.asarray(z) - self.z_min) / self.z_bin_mm)
        return np.clip(b, 0, self.n_bins - 1).astype(np.int64)

    def _cell(self, key: np.ndarray) -> np.ndarray:
        return np.clip(np.floor(key / self.cell), 0, self.n_cells).astype(np.int64)

    def query(
        self, phi: np.ndarray, half_phi: np.ndarray, z_lo: np.ndarray, z_hi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hits with |phi_hit - phi| <= half_phi (wrapped) and z_lo <= z_hit <= z_hi.

        All arguments are (Q,) arrays (``half_phi`` < pi). Returns ``(query, hit)``:
        for every match, the query's position (non-decreasing) and the hit's ``hit_index``.
        """
        phi = wrap_phi(np.asarray(phi, dtype=np.float64))
        half = np.minimum(np.asarray(half_phi, dtype=np.float64), np.pi * (1 - 1e-9))
        half = np.broadcast_to(half, phi.shape)
        z_lo = np.broadcast_to(np.asarray(z_lo, dtype=np.float64), phi.shape)
        z_hi = np.broadcast_to(np.asarray(z_hi, dtype=np.float64), phi.shape)
        if len(self.keys) == 0 or len(phi) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        b_lo, b_hi = self._bin(z_lo), self._bin(z_hi)
        # one (query, z bin) pair per bin the z window overlaps, in query order, so
        # that the matches come out sorted by query
        qb, zb = expand_ranges(b_lo, b_hi + 1)
        base = zb * _KEY_STRIDE + 3.0 * np.pi + phi[qb]
        hq = half[qb]
        lo = self.ptr[self._cell(base - hq)]
        hi = self.ptr[np.minimum(self._cell(base + hq) + 1, self.n_cells)]
        i, j = expand_ranges(lo, hi)
        keep = np.abs(self.keys[j] - base[i]) <= hq[i]
        qq, j = qb[i[keep]], j[keep]
        zz = self.z[j]
        keep = (zz >= z_lo[qq]) & (zz <= z_hi[qq])
        return qq[keep], self.hit_index[j[keep]]


@dataclass(frozen=True)
class SeedingConfig:
    """Cuts of the triplet seeding (``ghost_filter.seeding``). Units: GeV, mm, rad.

    ``n_sigma`` sets the third (and confirming) hit's windows in units of the
    expected multiple scattering and measurement error; ``confirm_hits`` (0, 1
    or 2) keeps only triplets with a compatible hit on that many of the next
    three layers (and summed squared pulls <= ``max_chi2``), and then of seeds
    sharing two hits only the best-fitting; ``third_hit`` says which hit of a
    triplet is searched (see the schema).
    """

    layer_triplets: tuple[tuple[int, int, int], ...] = ((0, 1, 2), (1, 2, 3))
    min_pt_GeV: float = 0.5
    max_d0_mm: float = 1.0
    max_z0_mm: float = 200.0
    n_sigma: float = 4.0
    confirm_hits: int = 0
    max_chi2: float = np.inf
    third_hit: str = "outer"

    @classmethod
    def from_config(
        cls,
        cfg: dict[str, Any],
        section: dict[str, Any] | None = None,
        name: str = "ghost_filter.seeding",
    ) -> SeedingConfig:
        """From the validated config's ``ghost_filter.seeding`` section (or ``section``,
        called ``name`` in error messages)."""
        s = cfg["ghost_filter"]["seeding"] if section is None else section
        return from_section(
            cls, s, layer_triplets=triplet_kinds(s["layer_triplets"], f"{name}.layer_triplets")
        )


def triplet_kinds(value: Any, key: str) -> tuple[tuple[int, int, int], ...]:
    """Layer triplets from a config list, checked: three increasing global layers each."""
    kinds = tuple(tuple(int(v) for v in t) for t in value)
    for t in kinds:
        if len(t) != 3 or not (0 <= t[0] < t[1] < t[2]):
            raise HepmlError(f"{key}: {list(t)} must be three increasing global layers")
    return kinds  # type: ignore[return-value]


def highland_sq(p_GeV: np.ndarray, x_over_x0: float, inv_sin: np.ndarray) -> np.ndarray:
    """theta0^2 of the Highland formula (beta = 1) for a layer crossed at polar angle theta.

    theta0 = 13.6 MeV / p sqrt(t) (1 + 0.038 ln t), t = (x/X0) / sin theta
    (PDG 2024 eq. 34.15): the plane-projected width.
    """
    t = x_over_x0 * inv_sin
    return (0.0136 / p_GeV) ** 2 * t * (1.0 + 0.038 * np.log(t)) ** 2


def _window_momentum(pt_GeV: np.ndarray, cot: np.ndarray, min_pt_GeV: float) -> np.ndarray:
    """Momentum the windows' scattering is computed at: the candidate's, taken 20% low
    (its own error), at least 0.8 ``min_pt_GeV`` and at most 10 TeV (straight lines)."""
    p = np.minimum(pt_GeV, 1e4) * np.sqrt(1.0 + cot * cot)
    return np.maximum(0.8 * p, 0.8 * min_pt_GeV)


def _interp_weights(r_fit: np.ndarray, basis: tuple, r_t: float) -> np.ndarray:
    """Weights w_i with f(r_t) = sum_i w_i f(r_i) for every f in the span of ``basis``."""
    a = np.array([[b(r) for r in r_fit] for b in basis], dtype=np.float64)
    return np.linalg.solve(a, np.array([b(r_t) for b in basis], dtype=np.float64))


_PHI_BASIS_ORIGIN = (lambda r: 1.0, lambda r: r)  # phi(r) = phi0 - kappa r/2 (d0 = 0), small angle
_PHI_BASIS_FREE = (lambda r: 1.0, lambda r: r, lambda r: 1.0 / r)  # ... - d0/r
_LINE = (lambda r: 1.0, lambda r: r)  # z(r) at small curvature


@dataclass(frozen=True)
class _Extrapolation:
    """Constants of one extrapolation from hits on layers ``fit`` to layer ``target``.

    The prediction is linear in the fit hits' coordinates (in the small-angle
    form: weights from interpolating in the ``phi_basis`` functions of r, and a
    straight line in z), so its error is, in quadrature, each fit hit's
    resolution times its weight, and for a kink theta on every layer j crossed
    before the farthest point the difference between the kinked path and what
    the fit makes of it:
    phi: f_j(r) = (1 - r_j/r) for r > r_j, z: g_j(r) = (r - r_j) for r > r_j
    (times 1/sin theta and 1/sin^2 theta for the transverse and z projections).
    """

    res_phi_sq: float  # rad^2
    res_z_sq: float  # mm^2
    ms_phi: tuple[tuple[float, float], ...]  # (x/X0_j, error coefficient), rad per rad of kink
    ms_z: tuple[tuple[float, float], ...]  # (x/X0_j, error coefficient), mm per rad

    @classmethod
    def build(
        cls,
        res: LayerResolution,
        fit_phi: tuple[int, ...],
        fit_z: tuple[int, ...],
        target: int,
        phi_basis: tuple,
    ) -> _Extrapolation:
        r = res.radius_mm
        rt = float(r[target])
        wp = _interp_weights(r[list(fit_phi)], phi_basis, rt)
        wz = _interp_weights(r[list(fit_z)], _LINE, rt)
        res_phi = sum(
            (w * res.sigma_rphi_mm[i] / r[i]) ** 2 for w, i in zip(wp, fit_phi, strict=True)
        )
        res_phi += (res.sigma_rphi_mm[target] / rt) ** 2
        res_z = sum((w * res.sigma_z_mm[i]) ** 2 for w, i in zip(wz, fit_z, strict=True))
        res_z += res.sigma_z_mm[target] ** 2
        ms_phi, ms_z = [], []
        for j in range(max(target, *fit_phi, *fit_z)):  # kinks before the farthest point involved
            rj = float(r[j])

            def f(rr: float, rj: float = rj) -> float:
                return max(0.0, 1.0 - rj / rr)

            def g(rr: float, rj: float = rj) -> float:
                return max(0.0, rr - rj)

            ep = f(rt) - sum(w * f(float(r[i])) for w, i in zip(wp, fit_phi, strict=True))
            ez = g(rt) - sum(w * g(float(r[i])) for w, i in zip(wz, fit_z, strict=True))
            x0 = float(res.x_over_x0[j])
            if abs(ep) > 1e-9:
                ms_phi.append((x0, float(ep)))
            if abs(ez) > 1e-9:
                ms_z.append((x0, float(ez)))
        return cls(float(res_phi), float(res_z), tuple(ms_phi), tuple(ms_z))

    def sigmas(self, p_GeV: np.ndarray, cot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(sigma_phi (rad), sigma_z (mm))`` at the target for momenta ``p_GeV``."""
        inv_sin_sq = 1.0 + cot * cot
        inv_sin = np.sqrt(inv_sin_sq)
        vp = np.full(len(p_GeV), self.res_phi_sq)
        vz = np.full(len(p_GeV), self.res_z_sq)
        # layers of one material share the Highland width: one evaluation per material
        for x0 in {x for x, _ in self.ms_phi + self.ms_z}:
            cp = sum(e * e for x, e in self.ms_phi if x == x0)
            cz = sum(e * e for x, e in self.ms_z if x == x0)
            h = highland_sq(p_GeV, x0, inv_sin) * inv_sin_sq
            vp = vp + h * cp
            vz = vz + h * (cz * inv_sin_sq)
        return np.sqrt(vp), np.sqrt(vz)


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
    half = np.abs(bend) + cfg.max_d0_mm * np.abs(1.0 / ra - 1.0 / r_b)
    za = z[ia]
    lever = (r_b - ra) / ra
    margin = 1.0  # mm: resolution and scattering of the straight r-z line
    z_lo = za + (za - cfg.max_z0_mm) * lever - margin
    z_hi = za + (za + cfg.max_z0_mm) * lever + margin
    qa, ib = index_b.query(phi[ia], half, z_lo, z_hi)
    a, b = ia[qa], ib
    # the line through a and b must pass within max_z0 of the beam line
    z0 = z[a] - r[a] * (z[b] - z[a]) / (r[b] - r[a])
    keep = np.abs(z0) <= cfg.max_z0_mm + margin
    return a[keep], b[keep]


class EventHits:
    """One event's hits (r, phi precomputed) with per-layer :class:`PhiZIndex` es, each
    built once and shared by the seeding passes and the roads of the event."""

    def __init__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, layer: np.ndarray) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)
        self.z = np.asarray(z, dtype=np.float64)
        self.layer = np.asarray(layer)
        self.r = np.hypot(self.x, self.y)
        self.phi = np.arctan2(self.y, self.x)
        self._indexes: dict[tuple[int, float, bytes], PhiZIndex] = {}

    def index(self, lay: int, z_bin: float, allowed: np.ndarray | None = None) -> PhiZIndex:
        """The index of layer ``lay``'s hits (those ``allowed``, if given), ``hit_index`` = row."""
        mask = self.layer == lay
        key = (lay, z_bin, b"" if allowed is None else np.packbits(allowed[mask]).tobytes())
        if key not in self._indexes:
            idx = np.flatnonzero(mask if allowed is None else mask & allowed)
            self._indexes[key] = PhiZIndex(self.phi[idx], self.z[idx], idx, z_bin)
        return self._indexes[key]


@dataclass
class _DoubletBlock:
    """Doublets (a on layer l1, b on l2) and the circle through the beam line and them."""

    l1: int
    l2: int
    a: np.ndarray
    b: np.ndarray
    kappa: np.ndarray  # signed curvature: phi(r) = phi_b - [asin(kappa r/2) - asin(kappa r_b/2)]
    s_b: np.ndarray  # transverse arc from the beam line to b
    asin_b: np.ndarray  # asin(kappa r_b / 2)
    cot: np.ndarray
    p: np.ndarray  # momentum for the windows: the circle's, 20% low, at least 0.8 min_pt

    @classmethod
    def find(
        cls,
        hits: EventHits,
        l1: int,
        l2: int,
        res: LayerResolution,
        cfg: SeedingConfig,
        bfield_T: float,
        allowed: np.ndarray | None,
    ) -> _DoubletBlock:
        r, phi, z = hits.r, hits.phi, hits.z
        i1 = np.flatnonzero((hits.layer == l1) & (True if allowed is None else allowed))
        r_min_mm = cfg.min_pt_GeV / (GEV_PER_T_MM * abs(bfield_T))
        if len(i1):
            a, b = _doublets(
                r,
                phi,
                z,
                i1,
                hits.index(l2, 100.0, allowed),
                float(res.radius_mm[l2]),
                cfg,
                r_min_mm,
            )
        else:
            a = b = np.zeros(0, dtype=np.int64)
        ra, rb = r[a], r[b]
        xa, ya, xb, yb = hits.x[a], hits.y[a], hits.x[b], hits.y[b]
        kappa = -2.0 * (xa * yb - ya * xb) / (ra * rb * np.hypot(xb - xa, yb - ya))
        s_a = _arc_from_chord(ra, kappa)
        s_b = _arc_from_chord(rb, kappa)
        cot = (z[b] - z[a]) / (s_b - s_a)
        pt = GEV_PER_T_MM * abs(bfield_T) / np.maximum(np.abs(kappa), 1e-12)
        p = _window_momentum(pt, cot, cfg.min_pt_GeV)
        return cls(
            l1, l2, a, b, kappa, s_b, np.arcsin(np.clip(0.5 * kappa * rb, -1.0, 1.0)), cot, p
        )


def _doublet_pair(
    kind: tuple[int, int, int], kinds: tuple[tuple[int, int, int], ...], third_hit: str
) -> tuple[int, int]:
    """The two layers of ``kind`` its doublets are made on (the third is searched)."""
    if third_hit == "outer":
        return kind[0], kind[1]
    if third_hit == "inner":
        return kind[1], kind[2]
    # shared: the pair most kinds hold (one doublet search serves them), ties to the outer pair
    pairs = [(kind[1], kind[2]), (kind[0], kind[2]), (kind[0], kind[1])]
    return max(pairs, key=lambda pr: sum(set(pr) <= set(k) for k in kinds))


def _triplets(
    hits: EventHits,
    kind: tuple[int, int, int],
    block: _DoubletBlock,
    res: LayerResolution,
    cfg: SeedingConfig,
    allowed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) hit rows (inner to outer) of the triplets of one layer kind, before the
    circle cuts, and the searched hit's squared normalised distance to its prediction (T,).

    The doublets of ``block`` (on two of the kind's layers) give the circle through
    the beam line, which predicts the third hit on the remaining layer.
    """
    (lt,) = set(kind) - {block.l1, block.l2}
    rt = float(res.radius_mm[lt])
    ut = 0.5 * block.kappa * rt
    reach = np.flatnonzero(np.abs(ut) < 1.0)
    a, b, kappa, cot, p = (
        block.a[reach],
        block.b[reach],
        block.kappa[reach],
        block.cot[reach],
        block.p[reach],
    )
    phi, z = hits.phi, hits.z
    phi_t = phi[b] - (np.arcsin(ut[reach]) - block.asin_b[reach])
    # z along the transverse arc s(r) = 2/|kappa| asin(|kappa| r/2)
    z_t = z[b] + cot * (_arc_from_chord(np.full(len(a), rt), kappa) - block.s_b[reach])
    ext = _Extrapolation.build(
        res, (block.l1, block.l2), (block.l1, block.l2), lt, _PHI_BASIS_ORIGIN
    )
    sig_phi, sig_z = ext.sigmas(p, cot)
    qd, c = hits.index(lt, 10.0, allowed).query(
        phi_t, cfg.n_sigma * sig_phi, z_t - cfg.n_sigma * sig_z, z_t + cfg.n_sigma * sig_z
    )
    d2 = (wrap_phi(phi[c] - phi_t[qd]) / sig_phi[qd]) ** 2 + ((z[c] - z_t[qd]) / sig_z[qd]) ** 2
    cols = {block.l1: a[qd], block.l2: b[qd], lt: c}
    return np.stack([cols[lay] for lay in kind], axis=1), d2


@dataclass
class _Circles:
    """The exact circle through each triplet's three hits (xy) and the straight line in s-z.

    Cheaper than a fit for three points; ``predict`` gives the outgoing crossing
    with a cylinder. Fields are (T,) arrays (mm, GeV); ``radius`` is inf for
    collinear hits.
    """

    xc: np.ndarray
    yc: np.ndarray
    radius: np.ndarray
    cot: np.ndarray
    x3: np.ndarray  # the hit predictions start from
    y3: np.ndarray
    z3: np.ndarray
    side: np.ndarray  # +-1: the side of the line (origin, centre) the outgoing branch lies on

    @classmethod
    def through(cls, hits: EventHits, trip: np.ndarray, inward: bool = False) -> _Circles:
        """The circles of ``trip`` (T, 3) hit rows, inner to outer. Predictions start
        from the outermost hit along the line in s-z through the outer two hits
        (``inward``: from the innermost hit, along the line through the inner two),
        so that a kink at the middle hit is absorbed, as the windows assume."""
        x, y, z = hits.x[trip], hits.y[trip], hits.z[trip]
        bx, by = x[:, 1] - x[:, 0], y[:, 1] - y[:, 0]
        cx, cy = x[:, 2] - x[:, 0], y[:, 2] - y[:, 0]
        d = 2.0 * (bx * cy - by * cx)
        b2, c2 = bx * bx + by * by, cx * cx + cy * cy
        with np.errstate(divide="ignore", invalid="ignore"):
            ux = (cy * b2 - by * c2) / d
            uy = (bx * c2 - cx * b2) / d
        xc, yc = x[:, 0] + ux, y[:, 0] + uy
        radius = np.where(d != 0, np.hypot(ux, uy), np.inf)
        inv_r = np.where(np.isfinite(radius), 1.0 / radius, 0.0)
        i, j = (0, 1) if inward else (1, 2)
        ref = 0 if inward else 2
        s_ij = _arc_from_chord(np.hypot(x[:, j] - x[:, i], y[:, j] - y[:, i]), inv_r)
        with np.errstate(divide="ignore", invalid="ignore"):
            cot = np.where(s_ij > 0, (z[:, j] - z[:, i]) / s_ij, 0.0)
        psi = np.arctan2(yc, xc)
        side = np.where(wrap_phi(np.arctan2(y[:, ref], x[:, ref]) - psi) >= 0, 1.0, -1.0)
        return cls(xc, yc, radius, cot, x[:, ref], y[:, ref], z[:, ref], side)

    def take(self, idx: np.ndarray) -> _Circles:
        return _Circles(**{f: getattr(self, f)[idx] for f in self.__dataclass_fields__})

    def pt(self, bfield_T: float) -> np.ndarray:
        return GEV_PER_T_MM * abs(bfield_T) * self.radius

    def d0(self) -> np.ndarray:
        return np.where(np.isfinite(self.radius), np.hypot(self.xc, self.yc) - self.radius, 0.0)

    def z0(self, hits: EventHits, trip: np.ndarray) -> np.ndarray:
        """z at the point of closest approach, back along the line through the first two hits."""
        inv_r = np.where(np.isfinite(self.radius), 1.0 / self.radius, 0.0)
        a, b = trip[:, 0], trip[:, 1]
        s12 = _arc_from_chord(np.hypot(hits.x[b] - hits.x[a], hits.y[b] - hits.y[a]), inv_r)
        with np.errstate(divide="ignore", invalid="ignore"):
            cot = np.where(s12 > 0, (hits.z[b] - hits.z[a]) / s12, 0.0)
        return hits.z[a] - cot * _arc_from_chord(hits.r[a], inv_r)

    def predict(self, rt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(phi, z, sin_alpha, ok)`` of the crossing with the cylinder r = ``rt`` on the
        outgoing branch (inside or outside the last hit)."""
        straight = ~np.isfinite(self.radius)
        dc = np.hypot(self.xc, self.yc)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos_b = (rt * rt + dc * dc - self.radius**2) / (2.0 * rt * dc)
        ok = straight | (np.abs(cos_b) <= 1.0)
        phi = np.arctan2(self.yc, self.xc) + self.side * np.arccos(
            np.clip(np.nan_to_num(cos_b), -1.0, 1.0)
        )
        phi = np.where(straight, np.arctan2(self.y3, self.x3), phi)
        chord = np.hypot(rt * np.cos(phi) - self.x3, rt * np.sin(phi) - self.y3)
        inv_r = np.where(straight, 0.0, 1.0 / self.radius)
        inward = rt < np.hypot(self.x3, self.y3)
        z = self.z3 + np.where(inward, -1.0, 1.0) * self.cot * _arc_from_chord(chord, inv_r)
        sin_a = np.minimum(rt * 0.5 * inv_r, 1.0)
        return wrap_phi(phi), z, sin_a, ok


def _circle_cuts(
    hits: EventHits, trip: np.ndarray, cfg: SeedingConfig, bfield_T: float
) -> tuple[np.ndarray, _Circles]:
    c = _Circles.through(hits, trip)
    ok = (
        (c.pt(bfield_T) >= cfg.min_pt_GeV)
        & (np.abs(c.d0()) <= cfg.max_d0_mm)
        & (np.abs(c.z0(hits, trip)) <= cfg.max_z0_mm)
    )
    return ok, c


def _nearest(
    hits: EventHits,
    circ: _Circles,
    fit_layers: tuple[int, int, int],
    target: int,
    res: LayerResolution,
    cfg: SeedingConfig,
    bfield_T: float,
    inward: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The hit of layer ``target`` nearest each circle's crossing, within ``n_sigma``:
    ``(hit, d2)``, (C,) hit rows (-1: none) and squared normalised distances (inf: none).

    The window follows the circle's fit hits on ``fit_layers`` (:class:`_Extrapolation`).
    """
    hit = np.full(len(circ.radius), -1, dtype=np.int64)
    dist = np.full(len(circ.radius), np.inf)
    cot = circ.cot
    p = _window_momentum(circ.pt(bfield_T), cot, cfg.min_pt_GeV)
    phi_s, zs, sin_a, ok = circ.predict(float(res.radius_mm[target]))
    todo = np.flatnonzero(ok)
    phi_s, zs, sin_a = phi_s[ok], zs[ok], sin_a[ok]
    z_layers = fit_layers[:2] if inward else fit_layers[1:]
    ext = _Extrapolation.build(res, fit_layers, z_layers, target, _PHI_BASIS_FREE)
    sig_phi, sig_z = ext.sigmas(p[todo], cot[todo])
    # a track crossing the cylinder at angle alpha (sin alpha = r/2R) spreads its
    # transverse error over 1/cos(alpha) along r*phi
    sig_phi = sig_phi / np.sqrt(1.0 - np.minimum(sin_a, 0.95) ** 2)
    q, h = hits.index(target, 50.0, None).query(
        phi_s, cfg.n_sigma * sig_phi, zs - cfg.n_sigma * sig_z, zs + cfg.n_sigma * sig_z
    )
    if len(q):
        d2 = (wrap_phi(hits.phi[h] - phi_s[q]) / sig_phi[q]) ** 2 + (
            (hits.z[h] - zs[q]) / sig_z[q]
        ) ** 2
        o = np.lexsort((d2, q))
        first = np.ones(len(o), dtype=bool)
        first[1:] = q[o][1:] != q[o][:-1]
        rows = todo[q[o][first]]
        hit[rows] = h[o][first]
        dist[rows] = d2[o][first]
    return hit, dist


def _confirmed(
    hits: EventHits,
    trip: np.ndarray,
    circ: _Circles,
    kind: tuple[int, int, int],
    res: LayerResolution,
    cfg: SeedingConfig,
    bfield_T: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Compatible hits of each triplet on the next layers, followed like a short track.

    On each of the next three layers the prediction comes from the circle
    through the triplet's first hit and the last two hits found (so a found hit
    narrows the next window); a triplet stops once it has ``confirm_hits``
    extra hits or has missed more layers than it can afford.
    Returns ``(extra, d2)``: (T, 3) hit rows (-1: none) and (T,) the sum of the
    found hits' squared normalised distances.
    """
    n_layers = len(res.radius_mm)
    extra = np.full((len(trip), 3), -1, dtype=np.int64)
    dist = np.zeros(len(trip))
    last = trip[:, 1:].copy()  # the last two hits found, inner to outer
    last_layers = np.broadcast_to(np.array(kind[1:]), (len(trip), 2)).copy()
    n_found = np.zeros(len(trip), dtype=np.int64)
    targets = list(range(kind[2] + 1, min(kind[2] + 4, n_layers)))
    for k, target in enumerate(targets):
        misses_left = len(targets) - k  # layers still to look at, this one included
        live = (n_found < cfg.confirm_hits) & (n_found + misses_left >= cfg.confirm_hits)
        # one circle family per pair of layers of the last two hits
        pair_key = last_layers[:, 0] * n_layers + last_layers[:, 1]
        for key in np.unique(pair_key[live]).tolist():
            l1, l2 = divmod(int(key), n_layers)
            rows = np.flatnonzero(live & (pair_key == key))
            three = np.column_stack([trip[rows, 0], last[rows]])
            c = circ.take(rows) if (l1, l2) == kind[1:] else _Circles.through(hits, three)
            h, d2 = _nearest(hits, c, (kind[0], l1, l2), target, res, cfg, bfield_T)
            got = h >= 0
            r = rows[got]
            extra[r, k] = h[got]
            dist[r] += d2[got]
            n_found[r] += 1
            last[r, 0], last[r, 1] = last[r, 1], h[got]
            last_layers[r, 0], last_layers[r, 1] = last_layers[r, 1], target
    return extra, dist


def _key(t: np.ndarray) -> np.ndarray:
    t = t.astype(np.int64)
    return (t[:, 0] << 42) | (t[:, 1] << 21) | t[:, 2]


def find_seeds(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    layer: np.ndarray,
    cfg: SeedingConfig,
    geometry: TrackerGeometry,
    allowed: np.ndarray | None = None,
    hits: EventHits | None = None,
) -> np.ndarray:
    """Triplet seeds of one event: ``(S, 3)`` int64 hit indices (rows of the inputs), inner to outer.

    ``x, y, z`` (mm) and ``layer`` (global layer, -1 for hits outside the barrel)
    are (n,) arrays of one event's hits; ``allowed`` (n,) bool, if given, the hits
    a seed triplet may use (confirming hits may be any); ``hits``, the same hits
    as an :class:`EventHits` whose indexes other passes share. Seeds are sorted and unique.
    """
    if hits is None:
        hits = EventHits(x, y, z, layer)
    if len(hits.x) >= 1 << 21:
        raise HepmlError(f"seeding: {len(hits.x)} hits in one event, at most {1 << 21} supported")
    res = LayerResolution.from_geometry(geometry)
    bfield = geometry.bfield_T
    n_layers = geometry.n_layers
    for kind in cfg.layer_triplets:
        if kind[2] >= n_layers:
            raise HepmlError(
                f"seeding: triplet {list(kind)} names a layer beyond the {n_layers} of the tracker"
            )

    def one_pass(kinds: tuple[tuple[int, int, int], ...], allowed: np.ndarray | None) -> np.ndarray:
        """Seeds (S, 3) of ``kinds`` among the ``allowed`` hits."""
        trips, sets, quality = [], [], []
        n_inner = max(k[0] for k in kinds)
        blocks: dict[tuple[int, int], _DoubletBlock] = {}
        for kind in kinds:
            pair = _doublet_pair(kind, kinds, cfg.third_hit)
            if pair not in blocks:
                blocks[pair] = _DoubletBlock.find(hits, *pair, res, cfg, bfield, allowed)
            trip, d2c = _triplets(hits, kind, blocks[pair], res, cfg, allowed)
            if len(trip) == 0:
                continue
            ok, circ = _circle_cuts(hits, trip, cfg, bfield)
            trip, d2c, circ = trip[ok], d2c[ok], circ.take(ok)
            if cfg.confirm_hits == 0:
                trips.append(trip)
                continue
            extra, d2x = _confirmed(hits, trip, circ, kind, res, cfg, bfield)
            keep = ((extra >= 0).sum(axis=1) >= cfg.confirm_hits) & (d2c + d2x <= cfg.max_chi2)
            trip, extra = trip[keep], extra[keep]
            inner = _inward(hits, trip, kind, res, cfg, bfield)
            pad = np.full((len(trip), n_inner - kind[0]), -1, dtype=np.int64)
            trips.append(trip)
            sets.append(np.column_stack([pad, inner, trip, extra]))
            quality.append(d2c[keep] + d2x[keep])
        if not trips:
            return np.zeros((0, 3), dtype=np.int64)
        if not cfg.confirm_hits:
            return np.concatenate(trips)
        hit_sets = np.concatenate(sets)
        hit_sets = hit_sets[_unique_hit_sets(hit_sets, np.concatenate(quality), len(hits.x))]
        # the seed: the three innermost hits (an inward hit found makes the roads start lower)
        pos = np.cumsum(hit_sets >= 0, axis=1)
        first3 = np.zeros((len(hit_sets), 3), dtype=np.int64)
        for k in range(3):
            col = np.argmax(pos == k + 1, axis=1)
            first3[:, k] = hit_sets[np.arange(len(hit_sets)), col]
        return first3

    seeds = one_pass(
        cfg.layer_triplets, None if allowed is None else np.asarray(allowed, dtype=bool)
    )
    if len(seeds) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    return np.unique(seeds, axis=0).astype(np.int64)


def _inward(
    hits: EventHits,
    trip: np.ndarray,
    kind: tuple[int, int, int],
    res: LayerResolution,
    cfg: SeedingConfig,
    bfield_T: float,
) -> np.ndarray:
    """Hits of confirmed triplets on the layers inside the triplet's first: (T, kind[0]),
    innermost first (-1: none in the window). Each layer's prediction comes from the
    circle through the three innermost hits known so far."""
    inner = np.full((len(trip), kind[0]), -1, dtype=np.int64)
    first3 = trip.copy()
    layers3 = np.broadcast_to(np.array(kind), (len(trip), 3)).copy()
    n_layers = len(res.radius_mm)
    for target in range(kind[0] - 1, -1, -1):
        key = (layers3[:, 0] * n_layers + layers3[:, 1]) * n_layers + layers3[:, 2]
        for k in np.unique(key).tolist():
            fam = (k // (n_layers * n_layers), (k // n_layers) % n_layers, k % n_layers)
            rows = np.flatnonzero(key == k)
            c = _Circles.through(hits, first3[rows], inward=True)
            h, _ = _nearest(hits, c, fam, target, res, cfg, bfield_T, inward=True)
            got = h >= 0
            r = rows[got]
            inner[r, target] = h[got]
            first3[r] = np.column_stack([h[got], first3[r, :2]])
            layers3[r] = np.column_stack([np.full(len(r), target), layers3[r, :2]])
    return inner


def _unique_hit_sets(sets: np.ndarray, quality: np.ndarray, n_hits: int) -> np.ndarray:
    """Indices of the confirmed seeds that no better seed (smaller ``quality``) shares two hits with.

    Seeds sharing two or more hits are one particle's (its 0-1-2 and 1-2-3
    triplets), or a fake triplet that holds two hits of a real track and picked
    up the track's next hit; the best-fitting one stands for them all. Seeds
    sharing a single hit are left alone (in a dense event a fake shares a hit
    with most real seeds). Vectorised over the six hit pairs of each quadruplet.
    """
    n, k = sets.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), quality))] = np.arange(n)
    q = np.sort(sets, axis=1).astype(np.int64)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    key = np.concatenate([q[:, i] * n_hits + q[:, j] for i, j in pairs])
    # pairs with a missing hit (-1) are nobody's
    r = np.where(np.concatenate([q[:, i] >= 0 for i, _ in pairs]), np.tile(rank, len(pairs)), n)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    start = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    best = np.minimum.reduceat(r[order], start)
    group = np.cumsum(np.r_[True, ks[1:] != ks[:-1]]) - 1
    best_of = np.empty(len(key), dtype=np.int64)
    best_of[order] = best[group]
    beaten = ((best_of < r) & (r < n)).reshape(len(pairs), n).any(axis=0)
    return np.flatnonzero(~beaten)
