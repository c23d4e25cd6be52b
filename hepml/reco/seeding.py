"""Triplet seeding on the detector's layer graph: barrel layers and endcap disks alike.

A seed is three space points on three surfaces a track from the beam line
crosses one after the other (:func:`hepml.detector.navigation.layer_graph`:
barrel-barrel-barrel, barrel-disk-disk, disk-disk-disk, ...; with ``skip``, also
the triplets missing one surface), in the seeding volumes (the pixels by
default), found in vectorised steps as in ACTS' seed finder and the CMS pixel
seeds of iterative tracking:

1. **doublets** (a, b) on the first two surfaces: for every point a, the points
   b of the next surface in a window of phi and of the longitudinal coordinate
   (z on a barrel layer, r on a disk) that admits a track of pT >= ``min_pt_GeV``,
   |d0| <= ``max_d0_mm`` and |z0| <= ``max_z0_mm`` whatever b's exact radius or z
   inside the surface's envelope; then the cuts on the pair itself, at the two
   points' own positions: the straight line in (r, z) through them passes
   within ``max_z0_mm`` of the beam line, and their phi difference is within
   the bending allowed between their radii.
2. **triplets**: the circle through the beam line and the doublet, with the
   straight line in (s, z) (s the transverse arc), predicts the third point c
   *at c's own radius* (barrel) or *own z* (disk): its phi and z (barrel) or
   phi and r (disk). The window is ``n_sigma`` standard deviations of the
   prediction's error: the three points' resolution carried through the
   extrapolation and the Highland scattering in b's material over the lever arm
   b -> c, at the doublet's momentum taken 20% low.
3. **cuts on the triplet's exact circle**: pT >= ``min_pt_GeV``, |z0| <=
   ``max_z0_mm``, and |d0| <= ``max_d0_mm`` + ``n_sigma`` x the circle's own d0
   error (the three points' resolution carried to the beam line, and the
   Highland kinks at a and b: :func:`triplet_d0`). Three points close together
   in r, as on the disks, fix d0 poorly: a fixed 1 mm cut dropped 17% of the
   true disk-only triplets of 0.15-0.5 GeV primaries.
4. with ``confirm_hits`` > 0, **confirmation**: the triplet's circle and line
   predict the next surfaces of the layer graph after (b, c), one after the
   other (each from the circle through the first point and the last two
   found); a seed needs compatible points on that many of them and summed
   squared pulls <= ``max_chi2``. Of confirmed seeds sharing two points only the
   best-fitting stays.

``allowed`` restricts the triplets to some points (a second tracking pass on the
points the first left). Every window query goes through
:class:`hepml.reco.spacepoints.SurfaceIndex`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from hepml.config import from_section
from hepml.detector import Detector
from hepml.detector.arrays import flat_arrays
from hepml.detector.constants import GEV_PER_T_MM
from hepml.detector.navigation import layer_graph
from hepml.detector.scattering import highland1, track_x01
from hepml.errors import HepmlError
from hepml.reco.fit import arc_from_chord1, arc_of_asin1, lagrange1
from hepml.reco.spacepoints import SpacePoints, grown, query_one, wrap_phi1

#: margin (mm) of the doublet windows on top of the envelope: resolution and scattering
_DOUBLET_MARGIN_MM = 2.0
#: the seeding's window momentum is floored at this fraction of min_pt and taken this much low
_P_LOW = 0.8


@dataclass(frozen=True)
class SeedingConfig:
    """Cuts of the triplet seeding (``ghost_filter.seeding``, ``hit_labeller.seeding``). Units: GeV, mm.

    ``volumes``: TrackML volumes whose surfaces seed; ``triplets``: ``first`` (the
    first surfaces tracks from the beam line cross among them) or ``all`` (any
    consecutive ones: particles born inside the detector); ``skip``: also
    triplets that skip one surface (a missing hit); ``n_sigma``: the third and confirming
    points' windows in standard deviations; ``confirm_hits``: compatible points
    needed on the next surfaces (of ``confirm_surfaces`` looked at);
    ``road_backoff_mm``: with ``triplets`` ``all``, the transverse arc before the seed's
    first hit where its road starts (:func:`hepml.reco.roads.build_roads`).
    """

    volumes: tuple[int, ...]
    triplets: str
    skip: bool
    min_pt_GeV: float
    max_d0_mm: float
    max_z0_mm: float
    n_sigma: float
    confirm_hits: int
    confirm_surfaces: int
    max_chi2: float
    road_backoff_mm: float

    @property
    def road_start_mm(self) -> float | None:
        """Where this pass's roads start (:func:`hepml.reco.roads.build_roads`'s ``backoff_mm``):
        ``road_backoff_mm`` before the seed for seeds anywhere (``triplets`` ``all``), else
        None (at the beam line)."""
        return self.road_backoff_mm if self.triplets == "all" else None

    @classmethod
    def from_section_dict(cls, s: dict[str, Any], name: str) -> SeedingConfig:
        """From a validated seeding section (``name`` in error messages)."""
        cfg = from_section(cls, s, volumes=tuple(int(v) for v in s["volumes"]))
        if cfg.confirm_hits > cfg.confirm_surfaces:
            raise HepmlError(
                f"{name}.confirm_hits: {cfg.confirm_hits} exceeds confirm_surfaces {cfg.confirm_surfaces}"
            )
        return cfg

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> SeedingConfig:
        """The ghost filter's seeding (``ghost_filter.seeding``)."""
        return cls.from_section_dict(cfg["ghost_filter"]["seeding"], "ghost_filter.seeding")


@dataclass(frozen=True)
class Seeds:
    """Seeds of one event: ``hits`` (S, K) space-point rows in path order, -1 padded
    (the triplet and its confirming points), ``triplet`` (S, 3) and ``chi2`` (S,)."""

    hits: np.ndarray
    triplet: np.ndarray
    chi2: np.ndarray

    def __len__(self) -> int:
        return len(self.triplet)

    @classmethod
    def empty(cls, k: int = 3) -> Seeds:
        return cls(np.zeros((0, k), np.int64), np.zeros((0, 3), np.int64), np.zeros(0))

    def take(self, idx: np.ndarray) -> Seeds:
        return Seeds(self.hits[idx], self.triplet[idx], self.chi2[idx])

    @classmethod
    def concat(cls, parts: list[Seeds]) -> Seeds:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        k = max(p.hits.shape[1] for p in parts)
        pad = [
            np.pad(p.hits, ((0, 0), (0, k - p.hits.shape[1])), constant_values=-1) for p in parts
        ]
        return cls(
            np.concatenate(pad),
            np.concatenate([p.triplet for p in parts]),
            np.concatenate([p.chi2 for p in parts]),
        )


# --------------------------------------------------------------------------- geometry of one event
@dataclass(frozen=True)
class _SurfaceInfo:
    """Per-surface arrays the seeding needs (index = surface)."""

    disk: np.ndarray
    r_lo: np.ndarray
    r_hi: np.ndarray
    z_lo: np.ndarray
    z_hi: np.ndarray
    x_over_x0: np.ndarray

    @classmethod
    def of(cls, det: Detector) -> _SurfaceInfo:
        s = det.surfaces
        x0 = np.array([float(np.median(det.x_over_x0[v.first : v.stop])) for v in s])
        return cls(
            np.array([not v.is_barrel for v in s]),
            np.array([v.r_min_mm for v in s]),
            np.array([v.r_max_mm for v in s]),
            np.array([v.z_min_mm for v in s]),
            np.array([v.z_max_mm for v in s]),
            x0,
        )


def _surface_info(det: Detector) -> _SurfaceInfo:
    cached = det.__dict__.get("_seeding_info")
    if cached is None:
        cached = _SurfaceInfo.of(det)
        det.__dict__["_seeding_info"] = cached
    return cached


def _bend(r_from: np.ndarray, r_to: np.ndarray, r_min_mm: float, d0: float) -> np.ndarray:
    """Largest |phi(r_to) - phi(r_from)| of a track with R >= r_min_mm and |d0| <= d0 (small d0)."""
    shape, (rf, rt) = flat_arrays(r_from, r_to)
    return _bend_flat(rf, rt, float(r_min_mm), float(d0)).reshape(shape)


@njit(cache=True, error_model="numpy")
def _bend1(r_from: float, r_to: float, r_min_mm: float, d0: float) -> float:
    """:func:`_bend` of one pair of radii (compiled; the one implementation)."""
    a = math.asin(np.minimum(abs(r_to) / (2.0 * r_min_mm), 1.0))
    b = math.asin(np.minimum(abs(r_from) / (2.0 * r_min_mm), 1.0))
    return abs(a - b) + d0 * abs(1.0 / np.maximum(r_from, 1e-3) - 1.0 / np.maximum(r_to, 1e-3))


@njit(cache=True, error_model="numpy")
def _bend_flat(r_from: np.ndarray, r_to: np.ndarray, r_min_mm: float, d0: float) -> np.ndarray:
    out = np.empty(len(r_from))
    for i in range(len(r_from)):
        out[i] = _bend1(r_from[i], r_to[i], r_min_mm, d0)
    return out


@njit(cache=True, error_model="numpy")
def _pair_cuts(
    r: np.ndarray,
    z: np.ndarray,
    phi: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    max_z0: float,
    r_min_mm: float,
    max_d0: float,
) -> np.ndarray:
    """:func:`_doublets`' cuts on pairs at their own positions (compiled)."""
    keep = np.empty(len(a), np.bool_)
    for i in range(len(a)):
        ia, ib = a[i], b[i]
        dr = r[ib] - r[ia]
        z0 = z[ia] - r[ia] * (z[ib] - z[ia]) / dr
        dphi = abs(wrap_phi1(phi[ib] - phi[ia]))
        keep[i] = (
            dr > 0.5
            and abs(z0) <= max_z0
            and dphi <= _bend1(r[ia], r[ib], r_min_mm, max_d0) + 0.002
        )
    return keep


def _doublets(
    sp: SpacePoints,
    ia: np.ndarray,
    sb: int,
    info: _SurfaceInfo,
    cfg: SeedingConfig,
    r_min_mm: float,
    allowed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a, b), b on surface ``sb``, compatible with a track from the beam line."""
    ra, za, pa = sp.r[ia], sp.z[ia], sp.phi[ia]
    z0s = (-cfg.max_z0_mm, cfg.max_z0_mm)
    m = _DOUBLET_MARGIN_MM
    if info.disk[sb]:
        zb = (info.z_lo[sb], info.z_hi[sb])
        cand = []
        for z0 in z0s:
            for zz in zb:
                with np.errstate(divide="ignore", invalid="ignore"):
                    f = (zz - z0) / (za - z0)
                cand.append(np.where(f > 0, ra * f, np.nan))
        c = np.stack(cand)
        w_lo = np.nanmin(np.where(np.isnan(c), np.inf, c), axis=0) - m
        w_hi = np.nanmax(np.where(np.isnan(c), -np.inf, c), axis=0) + m
        w_lo = np.maximum(w_lo, info.r_lo[sb] - m)
        w_hi = np.minimum(w_hi, info.r_hi[sb] + m)
        r_far = np.clip(w_hi, ra, None)
    else:
        rb = (info.r_lo[sb], info.r_hi[sb])
        cand = [z0 + (za - z0) * rr / ra for z0 in z0s for rr in rb]
        c = np.stack(cand)
        w_lo, w_hi = c.min(axis=0) - m, c.max(axis=0) + m
        r_far = np.full(len(ia), info.r_hi[sb])
    ok = w_lo <= w_hi
    ia, pa, ra = ia[ok], pa[ok], ra[ok]
    half = _bend(ra, r_far[ok], r_min_mm, cfg.max_d0_mm) + 0.002
    q, b = sp.index(sb, 20.0, allowed).query(pa, half, w_lo[ok], w_hi[ok])
    a = ia[q]
    # the pair at its own positions
    keep = _pair_cuts(
        sp.r, sp.z, sp.phi, a, b, float(cfg.max_z0_mm + m), float(r_min_mm), float(cfg.max_d0_mm)
    )
    return a[keep], b[keep]


@dataclass
class _Doublets:
    """Doublets (a, b) and the circle through the beam line and them (phi(r) = phi_b -
    [asin(kappa r/2) - asin(kappa r_b/2)], s the transverse arc from the beam line)."""

    a: np.ndarray
    b: np.ndarray
    kappa: np.ndarray
    s_a: np.ndarray
    s_b: np.ndarray
    cot: np.ndarray
    p: np.ndarray  # momentum for the windows: the circle's, 20% low, at least 0.8 min_pt
    sigma_d0_mm: float = 0.0  # a spread of |d0| the third point's window covers (displaced tracks)
    #: Highland widths at a and at b (at ``p``) and asin(kappa r_b / 2), computed once
    #: (:func:`_kernel_args`)
    terms: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def of(
        cls,
        sp: SpacePoints,
        a: np.ndarray,
        b: np.ndarray,
        bz: np.ndarray,
        min_pt: float,
        sigma_d0_mm: float = 0.0,
    ) -> _Doublets:
        a = np.ascontiguousarray(a, np.int64)
        b = np.ascontiguousarray(b, np.int64)
        kappa, s_a, s_b, cot, p = _doublet_circles(
            sp.x, sp.y, sp.z, sp.r, a, b, np.asarray(bz, np.float64), float(min_pt)
        )
        return cls(a, b, kappa, s_a, s_b, cot, p, sigma_d0_mm)


@njit(cache=True, error_model="numpy")
def _doublet_circles(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    r: np.ndarray,
    da: np.ndarray,
    db: np.ndarray,
    bz: np.ndarray,
    min_pt: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The circles through the beam line and doublets (a, b): curvature kappa, the arcs
    to a and b, cot theta and the windows' momentum (:class:`_Doublets`)."""
    n = len(da)
    kappa, s_a, s_b, cot, p = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        a, b = da[i], db[i]
        k = (
            -2.0
            * (x[a] * y[b] - y[a] * x[b])
            / (r[a] * r[b] * math.hypot(x[b] - x[a], y[b] - y[a]))
        )
        sa = arc_from_chord1(r[a], k)
        sb = arc_from_chord1(r[b], k)
        c = (z[b] - z[a]) / (sb - sa)
        pt = GEV_PER_T_MM * abs(bz[i]) / np.maximum(abs(k), 1e-12)
        pp = np.minimum(pt, 1e4) * math.sqrt(1.0 + c * c)
        kappa[i], s_a[i], s_b[i], cot[i] = k, sa, sb, c
        p[i] = np.maximum(_P_LOW * pp, _P_LOW * min_pt)
    return kappa, s_a, s_b, cot, p


def _third(
    sp: SpacePoints,
    d: _Doublets,
    sc: int,
    info: _SurfaceInfo,
    cfg: SeedingConfig,
    allowed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Third points on surface ``sc`` of the doublets ``d``: ``(doublet, c, chi2)``.

    The index is queried around the prediction at the surface's nominal position
    (its envelope's middle) with the window widened by how far the prediction
    moves across the envelope; each candidate is then compared with the
    prediction at its own radius (barrel) or z (disk). One compiled loop over the
    doublets (:func:`_third_rows`).
    """
    ix = sp.index(sc, 20.0, allowed)
    if len(ix.keys) == 0 or len(d.a) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    disk = bool(info.disk[sc])
    lo, hi = (info.z_lo[sc], info.z_hi[sc]) if disk else (info.r_lo[sc], info.r_hi[sc])
    return _third_rows(  # type: ignore[call-arg]  # (the kernel arguments)
        *_kernel_args(sp, d, info),
        ix.keys,
        ix.ptr,
        ix.w,
        ix.point,
        ix.w_min,
        ix.w_max,
        ix.w_bin,
        ix.n_bins,
        ix.cell,
        ix.n_cells,
        disk,
        float(0.5 * (lo + hi)),
        float(0.5 * (hi - lo)),
        float(cfg.n_sigma),
        float(cfg.n_sigma**2),
    )


@njit(cache=True, error_model="numpy")
def _third_rows(
    r: np.ndarray,
    phi: np.ndarray,
    z: np.ndarray,
    disk: np.ndarray,
    sigma_t: np.ndarray,
    sigma_l: np.ndarray,
    da: np.ndarray,
    db: np.ndarray,
    kappa: np.ndarray,
    s_a: np.ndarray,
    s_b: np.ndarray,
    cot: np.ndarray,
    th_a: np.ndarray,
    th_b: np.ndarray,
    asin_b: np.ndarray,
    sigma_d0: float,
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
    on_disk: bool,
    mid: float,
    env: float,
    n_sigma: float,
    max_chi2: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_third` (compiled): for every doublet its nominal point on the surface (z
    ``mid`` of a disk, radius ``mid`` of a barrel layer, the envelope +- ``env``), the window
    around the prediction there, the index's points in it and their pulls."""
    buf_q = np.empty(64, np.int64)
    buf_c = np.empty(64, np.int64)
    out_r = np.empty(4 * len(da) + 64, np.int64)
    out_c = np.empty(len(out_r), np.int64)
    out_x = np.empty(len(out_r))
    n_out = 0
    for row in range(len(da)):
        k = kappa[row]
        # nominal point and the prediction's motion across the envelope
        if on_disk:
            s_c = s_b[row] + (mid - z[db[row]]) / cot[row]
            if not np.isfinite(s_c):
                s_c = -1.0  # parallel to the disk: never reaches it
            u = 0.5 * abs(k) * s_c
            ok = s_c > s_b[row] and u < 0.5 * np.pi
            r_c = 2.0 * math.sin(np.minimum(u, 1.5)) / np.maximum(abs(k), 1e-12) if ok else 0.0
            if abs(k) * s_c < 1e-6:
                r_c = s_c
            spread_l = abs(env / (1e-9 if cot[row] == 0 else cot[row])) + 1.0
            spread_phi = 0.5 * abs(k) * spread_l + 1.0 / np.maximum(r_c, 1.0)
        else:
            r_c = mid
            e = 0.5 * k * r_c
            ok = abs(e) < 1.0
            spread_l = abs(cot[row]) * env + 1.0
            spread_phi = 0.5 * abs(k) * env / math.sqrt(np.maximum(1.0 - e * e, 0.05)) + 1e-3
        if not ok:
            continue
        pred_phi, pred_z, sig_t, sig_l = _predict1(
            r,
            phi,
            z,
            disk,
            sigma_t,
            sigma_l,
            da,
            db,
            kappa,
            s_a,
            s_b,
            cot,
            th_a,
            th_b,
            asin_b,
            sigma_d0,
            row,
            r_c,
            on_disk,
        )
        w_phi = np.minimum(n_sigma * sig_t / np.maximum(r_c, 1.0) + spread_phi, np.pi * (1 - 1e-9))
        center_w = r_c if on_disk else pred_z
        w_l = n_sigma * sig_l + spread_l
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
                wrap_phi1(pred_phi),
                w_phi,
                center_w - w_l,
                center_w + w_l,
                row,
                buf_q,
                buf_c,
                0,
            )
            if m >= 0:
                break
            buf_q = np.empty(2 * len(buf_q), np.int64)
            buf_c = np.empty(2 * len(buf_c), np.int64)
        for j in range(m):
            chi2 = _pull1(
                r,
                phi,
                z,
                disk,
                sigma_t,
                sigma_l,
                da,
                db,
                kappa,
                s_a,
                s_b,
                cot,
                th_a,
                th_b,
                asin_b,
                sigma_d0,
                row,
                buf_c[j],
                on_disk,
            )
            if not chi2 <= max_chi2:
                continue
            if n_out == len(out_r):
                out_r, out_c, out_x = grown(out_r, n_out), grown(out_c, n_out), grown(out_x, n_out)
            out_r[n_out], out_c[n_out], out_x[n_out] = row, buf_c[j], chi2
            n_out += 1
    return out_r[:n_out], out_c[:n_out], out_x[:n_out]


def _predict(
    sp: SpacePoints,
    d: _Doublets,
    rows: np.ndarray,
    r_t: np.ndarray,
    info: _SurfaceInfo,
    sc: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """phi and z of the doublets' circle and line at radius ``r_t``, and the prediction's
    errors across (r*phi, mm) and along the surface (z on a barrel layer, r on a disk)
    (:func:`_predict1` of every row)."""
    n = len(rows)
    phi, z, st, sl = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    _predict_rows(  # type: ignore[call-arg]  # (the kernel arguments)
        *_kernel_args(sp, d, info),
        np.asarray(rows, dtype=np.int64),
        np.ascontiguousarray(r_t, dtype=np.float64),
        bool(info.disk[sc]),
        phi,
        z,
        st,
        sl,
    )
    return phi, z, st, sl


def _kernel_args(sp: SpacePoints, d: _Doublets, info: _SurfaceInfo) -> tuple[Any, ...]:
    """The arrays :func:`_predict1`'s callers read: space points, doublets, and the Highland
    width of each doublet's scattering at a and at b (at the doublet's momentum)."""
    if d.terms is None:
        d.terms = _doublet_terms(
            sp.r, sp.surface, sp.disk, info.x_over_x0, d.a, d.b, d.kappa, d.cot, d.p
        )
    th_a, th_b, asin_b = d.terms
    return (
        sp.r,
        sp.phi,
        sp.z,
        sp.disk,
        sp.sigma_t,
        sp.sigma_l,
        d.a,
        d.b,
        d.kappa,
        d.s_a,
        d.s_b,
        d.cot,
        th_a,
        th_b,
        asin_b,
        float(d.sigma_d0_mm),
    )


@njit(cache=True, error_model="numpy")
def _doublet_terms(
    r: np.ndarray,
    surface: np.ndarray,
    disk: np.ndarray,
    x_over_x0: np.ndarray,
    da: np.ndarray,
    db: np.ndarray,
    kappa: np.ndarray,
    cot: np.ndarray,
    p: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each doublet's Highland widths in a's and b's material and asin(kappa r_b / 2)."""
    th_a, th_b, asin_b = np.empty(len(da)), np.empty(len(da)), np.empty(len(da))
    for i in range(len(da)):
        a, b = da[i], db[i]
        th_a[i] = highland1(p[i], track_x01(x_over_x0[surface[a]], cot[i], disk[a]), 1.0, 1.0)
        th_b[i] = highland1(p[i], track_x01(x_over_x0[surface[b]], cot[i], disk[b]), 1.0, 1.0)
        asin_b[i] = math.asin(np.minimum(np.maximum(0.5 * kappa[i] * r[b], -1.0), 1.0))
    return th_a, th_b, asin_b


@njit(cache=True, error_model="numpy")
def _predict1(
    r: np.ndarray,
    phi: np.ndarray,
    z: np.ndarray,
    disk: np.ndarray,
    sigma_t: np.ndarray,
    sigma_l: np.ndarray,
    da: np.ndarray,
    db: np.ndarray,
    kappa: np.ndarray,
    s_a_: np.ndarray,
    s_b_: np.ndarray,
    cot_: np.ndarray,
    th_a_: np.ndarray,
    th_b_: np.ndarray,
    asin_b_: np.ndarray,
    sigma_d0: float,
    row: int,
    r_t: float,
    on_disk: bool,
) -> tuple[float, float, float, float]:
    """phi and z of doublet ``row``'s circle and line at radius ``r_t`` and the errors of the
    prediction across (r*phi, mm) and along the surface (z on a barrel layer, r on a disk)."""
    k = kappa[row]
    b = db[row]
    a = da[row]
    asin_b = asin_b_[row]  # asin(k r_b / 2), clipped
    asin_t = math.asin(np.minimum(np.maximum(0.5 * k * r_t, -1.0), 1.0))
    phi_t = phi[b] - (asin_t - asin_b)
    # the arc to r_t: arc_from_chord1(r_t, k), whose arcsine is |asin_t| (r_t >= 0)
    u = np.minimum(0.5 * abs(k) * r_t, 1.0)
    s_t = arc_of_asin1(r_t, u, abs(asin_t)) if r_t >= 0 else arc_from_chord1(r_t, k)
    cot = cot_[row]
    s_a, s_b = s_a_[row], s_b_[row]
    z_t = z[b] + cot * (s_t - s_b)
    # errors: extrapolation of a and b, the target's own resolution, scattering at b
    lever = np.maximum(s_t - s_b, 0.0)
    base = np.maximum(s_b - s_a, 1e-3)
    w_a = lever / base
    w_b = 1.0 + w_a
    inv_sin = math.sqrt(1.0 + cot * cot)
    th, th_a = th_b_[row], th_a_[row]
    path = lever * inv_sin
    # the doublet's circle passes through the beam line: a kink at a moves the
    # prediction across the track too, with the lever (s_t - s_a)(s_t - s_b) / s_b
    leak_a = th_a * inv_sin * abs((s_t - s_a) * (s_t - s_b)) / np.maximum(s_b, 1e-3)
    ms = th * path
    sin_a = np.minimum(abs(0.5 * k * r_t), 0.95)
    stretch = 1.0 / math.sqrt(1.0 - sin_a * sin_a)
    # a track not from the beam line: an offset d0 at s = 0 moves the prediction by the
    # Lagrange weight of the circle's beam-line point, (s_t - s_a)(s_t - s_b) / (s_a s_b)
    off_d0 = sigma_d0 * abs((s_t - s_a) * (s_t - s_b)) / np.maximum(s_a * s_b, 1e-3)
    ea, eb = w_a * sigma_t[a], w_b * sigma_t[b]
    var_t = ea * ea + eb * eb + (ms * ms + leak_a * leak_a) * (stretch * stretch) + off_d0 * off_d0
    # z error of a and b: sigma_l on barrel layers; on disks (z exact, r measured) the r
    # error moved along the track, sigma_r |cot theta|
    za = w_a * (sigma_l[a] * abs(cot) if disk[a] else sigma_l[a])
    zb = w_b * (sigma_l[b] * abs(cot) if disk[b] else sigma_l[b])
    var_zl = za * za + zb * zb
    # longitudinal: z on barrel layers (scattering / sin theta), r on disks (/ |cos theta|)
    if on_disk:
        cos_t = abs(cot) / inv_sin
        # a z error at fixed z becomes an r error: dr = dz tan(theta) along the track
        e = ms / np.maximum(cos_t, 0.05)
        var_l = var_zl / np.maximum(cot * cot, 1e-6) + e * e
    else:
        e = ms * inv_sin
        var_l = var_zl + e * e
    return wrap_phi1(phi_t), z_t, math.sqrt(var_t), math.sqrt(var_l)


@njit(cache=True, error_model="numpy")
def _predict_rows(
    r: np.ndarray,
    phi: np.ndarray,
    z: np.ndarray,
    disk: np.ndarray,
    sigma_t: np.ndarray,
    sigma_l: np.ndarray,
    da: np.ndarray,
    db: np.ndarray,
    kappa: np.ndarray,
    s_a: np.ndarray,
    s_b: np.ndarray,
    cot: np.ndarray,
    th_a: np.ndarray,
    th_b: np.ndarray,
    asin_b: np.ndarray,
    sigma_d0: float,
    rows: np.ndarray,
    r_t: np.ndarray,
    on_disk: bool,
    out_phi: np.ndarray,
    out_z: np.ndarray,
    out_st: np.ndarray,
    out_sl: np.ndarray,
) -> None:
    for i in range(len(rows)):
        out_phi[i], out_z[i], out_st[i], out_sl[i] = _predict1(
            r,
            phi,
            z,
            disk,
            sigma_t,
            sigma_l,
            da,
            db,
            kappa,
            s_a,
            s_b,
            cot,
            th_a,
            th_b,
            asin_b,
            sigma_d0,
            rows[i],
            r_t[i],
            on_disk,
        )


@njit(cache=True, error_model="numpy")
def _pull1(
    r: np.ndarray,
    phi: np.ndarray,
    z: np.ndarray,
    disk: np.ndarray,
    sigma_t: np.ndarray,
    sigma_l: np.ndarray,
    da: np.ndarray,
    db: np.ndarray,
    kappa: np.ndarray,
    s_a: np.ndarray,
    s_b: np.ndarray,
    cot: np.ndarray,
    th_a: np.ndarray,
    th_b: np.ndarray,
    asin_b: np.ndarray,
    sigma_d0: float,
    row: int,
    ci: int,
    on_disk: bool,
) -> float:
    """Squared normalised distance of point ``ci`` to doublet ``row``'s prediction at the
    point's own position (radius on a barrel layer, z on a disk)."""
    if on_disk:
        k = kappa[row]
        s_c = s_b[row] + (z[ci] - z[db[row]]) / cot[row]
        u = np.minimum(np.maximum(0.5 * abs(k) * s_c, 0.0), 0.5 * np.pi)
        if abs(k) * s_c < 1e-6:
            r_t = s_c
        else:
            r_t = 2.0 * math.sin(u) / np.maximum(abs(k), 1e-12)
    else:
        r_t = r[ci]
    phi_t, z_t, st, sl = _predict1(
        r,
        phi,
        z,
        disk,
        sigma_t,
        sigma_l,
        da,
        db,
        kappa,
        s_a,
        s_b,
        cot,
        th_a,
        th_b,
        asin_b,
        sigma_d0,
        row,
        r_t,
        on_disk,
    )
    rt = r[ci] * wrap_phi1(phi[ci] - phi_t)
    rl = r[ci] - r_t if on_disk else z[ci] - z_t
    st = math.sqrt(st * st + sigma_t[ci] * sigma_t[ci])
    sl = math.sqrt(sl * sl + sigma_l[ci] * sigma_l[ci])
    a, b = rt / st, rl / sl
    return a * a + b * b


# --------------------------------------------------------------------------- circles
@dataclass
class Circles:
    """The exact circle through three points (xy) per row, and the s-z line through
    the outer two: centre, signed curvature kappa (phi(r) rule as :class:`_Doublets`), cot."""

    xc: np.ndarray
    yc: np.ndarray
    radius: np.ndarray
    cot: np.ndarray

    @classmethod
    def through(cls, sp: SpacePoints, trip: np.ndarray) -> Circles:
        xc, yc, radius, cot = _circles(sp.x, sp.y, sp.z, np.ascontiguousarray(trip, np.int64))
        return cls(xc, yc, radius, cot)

    def d0(self) -> np.ndarray:
        shape, (xc, yc, radius) = flat_arrays(self.xc, self.yc, self.radius)
        return _circle_d0_flat(xc, yc, radius).reshape(shape)


@njit(cache=True, error_model="numpy")
def _circle1(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, i0: int, i1: int, i2: int
) -> tuple[float, float, float, float]:
    """:class:`Circles` of points i0, i1, i2: (xc, yc, radius, cot) (compiled)."""
    bx, by = x[i1] - x[i0], y[i1] - y[i0]
    cx, cy = x[i2] - x[i0], y[i2] - y[i0]
    dd = 2.0 * (bx * cy - by * cx)
    b2, c2 = bx * bx + by * by, cx * cx + cy * cy
    ux = (cy * b2 - by * c2) / dd
    uy = (bx * c2 - cx * b2) / dd
    radius = math.hypot(ux, uy) if dd != 0 else np.inf
    inv_r = 1.0 / radius if np.isfinite(radius) else 0.0
    s12 = arc_from_chord1(math.hypot(x[i2] - x[i1], y[i2] - y[i1]), inv_r)
    cot = (z[i2] - z[i1]) / s12 if s12 > 0 else 0.0
    return x[i0] + ux, y[i0] + uy, radius, cot


@njit(cache=True, error_model="numpy")
def _circle_d0(xc: float, yc: float, radius: float) -> float:
    """Signed d0 of a circle: |centre| - radius (0 for a straight line)."""
    return math.hypot(xc, yc) - radius if np.isfinite(radius) else 0.0


@njit(cache=True, error_model="numpy")
def _circle_d0_flat(xc: np.ndarray, yc: np.ndarray, radius: np.ndarray) -> np.ndarray:
    out = np.empty(len(xc))
    for i in range(len(xc)):
        out[i] = _circle_d0(xc[i], yc[i], radius[i])
    return out


@njit(cache=True, error_model="numpy")
def _circles(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, trip: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(trip)
    xc, yc, radius, cot = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        xc[i], yc[i], radius[i], cot[i] = _circle1(x, y, z, trip[i, 0], trip[i, 1], trip[i, 2])
    return xc, yc, radius, cot


def _circle_cuts(
    sp: SpacePoints, trip: np.ndarray, cfg: SeedingConfig, bz: np.ndarray, info: _SurfaceInfo
) -> np.ndarray:
    """Triplets passing the cuts on their exact circle: pT, |z0| and |d0| <= ``max_d0_mm``
    plus ``n_sigma`` times the circle's own d0 error (:func:`triplet_d0`)."""
    pt, d0, z0, err = triplet_d0(sp, trip, bz, info, cfg.max_d0_mm)
    return (
        (pt >= cfg.min_pt_GeV)
        & (np.abs(z0) <= cfg.max_z0_mm)
        & (np.abs(d0) <= cfg.max_d0_mm + cfg.n_sigma * err)
    )


def triplet_d0(
    sp: SpacePoints,
    trip: np.ndarray,
    bz: np.ndarray,
    info: _SurfaceInfo,
    d0_known: float = -1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pT (GeV), signed d0, z0 (mm) of each triplet's exact circle and line, and the d0's error
    (mm, :func:`_d0_error1`); the error is left 0 where |d0| <= ``d0_known`` (a cut it passes
    anyway). ``trip`` (T, 3) rows in path order, ``bz`` (T,) the field for the pT."""
    return _triplet_d0_rows(
        sp.x,
        sp.y,
        sp.z,
        sp.r,
        sp.sigma_t,
        sp.surface,
        sp.disk,
        info.x_over_x0,
        np.ascontiguousarray(trip, np.int64),
        np.ascontiguousarray(bz, np.float64),
        float(d0_known),
    )


@njit(cache=True, error_model="numpy")
def _d0_error1(
    s_a: float,
    s_b: float,
    s_c: float,
    e_a: float,
    e_b: float,
    e_c: float,
    th_a: float,
    th_b: float,
) -> float:
    """The d0 error (mm) of the circle through three points at transverse arcs s_a < s_b < s_c
    from the beam line: their resolutions across the track (e_a, e_b, e_c) carried to s = 0
    by the points' Lagrange weights, and the scattering kinks th_a at a (which moves d0 by
    th_a s_a) and th_b at b (which moves c by th_b (s_c - s_b)). Three points close together
    in r (disks: forward tracks) have large weights, and their circle's d0 is poorly known."""
    if abs(s_a - s_b) < 1e-6 or abs(s_a - s_c) < 1e-6 or abs(s_b - s_c) < 1e-6:
        return np.inf
    la, lb, lc = lagrange1(s_a, s_b, s_c, 0.0)
    ms_a = th_a * s_a
    ms_b = lc * th_b * (s_c - s_b)
    return math.sqrt(
        (la * e_a) ** 2 + (lb * e_b) ** 2 + (lc * e_c) ** 2 + ms_a * ms_a + ms_b * ms_b
    )


@njit(cache=True, error_model="numpy")
def _triplet_d0_rows(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    r: np.ndarray,
    sigma_t: np.ndarray,
    surface: np.ndarray,
    disk: np.ndarray,
    x_over_x0: np.ndarray,
    trip: np.ndarray,
    bz: np.ndarray,
    d0_known: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(trip)
    pt, d0, z0, err = np.empty(n), np.empty(n), np.empty(n), np.zeros(n)
    for i in range(n):
        a, b, c = trip[i, 0], trip[i, 1], trip[i, 2]
        xc, yc, radius, _ = _circle1(x, y, z, a, b, c)
        pt[i] = GEV_PER_T_MM * abs(bz[i]) * radius
        inv_r = 1.0 / radius if np.isfinite(radius) else 0.0
        s12 = arc_from_chord1(math.hypot(x[b] - x[a], y[b] - y[a]), inv_r)
        cot = (z[b] - z[a]) / s12 if s12 > 0 else 0.0
        s_a = arc_from_chord1(r[a], inv_r)
        z0[i] = z[a] - cot * s_a
        d0[i] = _circle_d0(xc, yc, radius)
        if abs(d0[i]) <= d0_known:
            continue
        p = np.minimum(pt[i], 1e4) * math.sqrt(1.0 + cot * cot)
        err[i] = _d0_error1(
            s_a,
            arc_from_chord1(r[b], inv_r),
            arc_from_chord1(r[c], inv_r),
            sigma_t[a],
            sigma_t[b],
            sigma_t[c],
            highland1(p, track_x01(x_over_x0[surface[a]], cot, disk[a]), 1.0, 1.0),
            highland1(p, track_x01(x_over_x0[surface[b]], cot, disk[b]), 1.0, 1.0),
        )
    return pt, d0, z0, err


# --------------------------------------------------------------------------- the seeding
def find_seeds(
    sp: SpacePoints,
    det: Detector,
    cfg: SeedingConfig,
    allowed: np.ndarray | None = None,
) -> Seeds:
    """Seeds of one event's space points (see the module docstring)."""
    graph = layer_graph(det)
    surf = {s.index for s in det.surfaces if s.volume_id in cfg.volumes}
    if not surf:
        raise HepmlError(f"seeding.volumes: no detector surface in volumes {list(cfg.volumes)}")
    if cfg.triplets == "all":
        kinds = list(graph.triplets_within(surf))
        if cfg.skip:
            kinds += graph.triplets_within(surf, skips=True)
    else:
        positions = ((0, 1, 2), (1, 2, 3)) + (((0, 1, 3), (0, 2, 3)) if cfg.skip else ())
        kinds = list(graph.early_triplets(surf, positions))
    info = _surface_info(det)
    present = np.bincount(sp.surface[sp.surface >= 0], minlength=len(det.surfaces)) > 0
    ok_pts = sp.surface >= 0 if allowed is None else (sp.surface >= 0) & allowed
    by_pair: dict[tuple[int, int], list[int]] = {}
    for s_a, s_b, s_c in kinds:
        if present[s_a] and present[s_b] and present[s_c]:
            by_pair.setdefault((s_a, s_b), []).append(s_c)
    trips, chis = [], []
    for (sa, sb), targets in sorted(by_pair.items()):
        ia = np.flatnonzero(ok_pts & (sp.surface == sa))
        if len(ia) == 0:
            continue
        bz = _bz(det, sp, ia)
        r_min = cfg.min_pt_GeV / (GEV_PER_T_MM * max(float(np.min(np.abs(bz))), 1e-3))
        a, b = _doublets(sp, ia, sb, info, cfg, r_min, allowed)
        if len(a) == 0:
            continue
        bzd = _bz(det, sp, b)
        d = _Doublets.of(sp, a, b, bzd, cfg.min_pt_GeV, _sigma_d0(cfg))
        for sc in targets:
            rows, c, chi2 = _third(sp, d, sc, info, cfg, allowed)
            if len(rows) == 0:
                continue
            trip = np.column_stack([d.a[rows], d.b[rows], c])
            keep = _circle_cuts(sp, trip, cfg, bzd[rows], info)
            trips.append(trip[keep])
            chis.append(chi2[keep])
    if not trips:
        return Seeds.empty(3 + cfg.confirm_surfaces)
    trip = np.concatenate(trips)
    chi2 = np.concatenate(chis)
    if len(sp) < 2_000_000:  # np.unique(trip, axis=0, ...) on one int64 key per row
        n = np.int64(len(sp))
        _, first = np.unique((trip[:, 0] * n + trip[:, 1]) * n + trip[:, 2], return_index=True)
        trip = trip[first]
    else:
        trip, first = np.unique(trip, axis=0, return_index=True)
    chi2 = chi2[first]
    if cfg.confirm_hits == 0:
        best = _unique_hit_sets(trip, chi2, len(sp))
        trip, chi2 = trip[best], chi2[best]
        hits = np.column_stack([trip, np.full((len(trip), cfg.confirm_surfaces), -1, np.int64)])
        return Seeds(hits, trip, chi2)
    extra, chi2x = confirm(sp, det, trip, cfg)
    keep = ((extra >= 0).sum(axis=1) >= cfg.confirm_hits) & (chi2 + chi2x <= cfg.max_chi2)
    hits = np.column_stack([trip, extra])[keep]
    quality = (chi2 + chi2x)[keep]
    best = _unique_hit_sets(hits, quality, len(sp))
    return Seeds(hits[best], trip[keep][best], quality[best])


def _sigma_d0(cfg: SeedingConfig) -> float:
    """The d0 spread the windows cover: none for tracks from the beam line (``triplets:
    first``); with ``triplets: all`` (displaced tracks) n_sigma windows span |d0| <= max_d0."""
    return cfg.max_d0_mm / cfg.n_sigma if cfg.triplets == "all" else 0.0


def _bz(det: Detector, sp: SpacePoints, i: np.ndarray) -> np.ndarray:
    """B_z for the momentum estimates of points ``i`` (on the axis at their z)."""
    return det.field.bz_axis(sp.z[i])


def confirm(
    sp: SpacePoints, det: Detector, trip: np.ndarray, cfg: SeedingConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Compatible points of each triplet on the next ``confirm_surfaces`` surfaces of the
    layer graph: ``(extra (T, confirm_surfaces) rows or -1, summed chi2 (T,))``.

    Each next surface is predicted from the doublet of the last two points found
    and the circle through the beam line, as the triplet's third point was; the
    nearest compatible point is taken.
    """
    graph = layer_graph(det)
    succ: dict[tuple[int, int], list[int]] = {}
    for a, b, c in graph.triplets:
        succ.setdefault((a, b), []).append(c)
    info = _surface_info(det)
    n = len(trip)
    extra = np.full((n, cfg.confirm_surfaces), -1, dtype=np.int64)
    chi2 = np.zeros(n)
    last = trip[:, 1:].copy()
    n_found = np.zeros(n, dtype=np.int64)
    for k in range(cfg.confirm_surfaces):
        left = cfg.confirm_surfaces - k
        live = (n_found + left >= cfg.confirm_hits) & (n_found < cfg.confirm_surfaces)
        pair_s = np.stack([sp.surface[last[:, 0]], sp.surface[last[:, 1]]], axis=1)
        key = pair_s[:, 0].astype(np.int64) * 10000 + pair_s[:, 1]
        best_c = np.full(n, -1, dtype=np.int64)
        best_x = np.full(n, np.inf)
        for kk in np.unique(key[live]).tolist():
            pair = (int(kk) // 10000, int(kk) % 10000)
            rows = np.flatnonzero(live & (key == kk))
            targets = succ.get(pair, [])
            if not targets:
                continue
            bz = _bz(det, sp, last[rows, 1])
            d = _Doublets.of(sp, last[rows, 0], last[rows, 1], bz, cfg.min_pt_GeV, _sigma_d0(cfg))
            # the circle through the beam line is a fair stand-in for the triplet's near the pixels
            for sc in targets:
                r_, c_, x_ = _third(sp, d, sc, info, cfg, None)
                if len(r_) == 0:
                    continue
                o = np.lexsort((x_, r_))
                first = np.r_[True, r_[o][1:] != r_[o][:-1]]
                rr, cc, xx = rows[r_[o][first]], c_[o][first], x_[o][first]
                better = xx < best_x[rr]
                best_c[rr[better]] = cc[better]
                best_x[rr[better]] = xx[better]
        got = best_c >= 0
        extra[got, k] = best_c[got]
        chi2[got] += best_x[got]
        n_found[got] += 1
        last[got] = np.column_stack([last[got, 1], best_c[got]])
    return extra, chi2


def _unique_hit_sets(sets: np.ndarray, quality: np.ndarray, n_hits: int) -> np.ndarray:
    """Indices of the seeds that no better seed (smaller ``quality``) shares two points with.

    Seeds sharing two or more points are one particle's, or a fake triplet that
    holds two points of a real track; the best-fitting one stands for them all.
    Vectorised over the point pairs of each set.
    """
    n, k = sets.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(quality, kind="stable")] = np.arange(n)  # ties to the earlier seed
    q = np.sort(sets, axis=1).astype(np.int64)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    key = np.concatenate([q[:, i] * n_hits + q[:, j] for i, j in pairs])
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
