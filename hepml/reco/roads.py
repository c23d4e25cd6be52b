"""Roads around seeds through the whole detector, and the classical road follower.

For every seed (:func:`hepml.reco.seeding.find_seeds`) the seed's hits are
fitted (:func:`hepml.reco.fit.fit_helix`) and the helix is propagated from the
seed's last hit through the detector's field and surfaces
(:func:`hepml.detector.propagation.propagate`, the simulation's propagation,
``surfaces_only``): barrel layers and disks in the order the track crosses
them, across the barrel-endcap transition. On every surface crossed the *road*
gathers the hits inside a window around the predicted point, compared with the
prediction at each hit's own radius (barrel) or z (disk):

    sigma^2 = sigma_hit^2 + sigma_extrapolation(s)^2 + sum_j (theta0_j (s - s_j))^2

across the track (r*phi) and along the surface (z on a barrel layer, r on a
disk): the seed fit's extrapolation error (the three-point Lagrange weights of
the seed's first, middle and last hit along the path, times their resolution),
and the Highland scattering of every surface crossed since the seed's middle
hit, over its lever arm, projected as in :mod:`hepml.reco.seeding`. At most
``max_hits_per_surface`` hits per surface are kept, the nearest first, so two
hits of a particle in overlapping modules both stay in its road. On a surface
that holds a seed hit the residuals are taken relative to that hit's own (the
overlap partner of a seed hit is measured against the seed hit carried along the
track): the helix propagated from the beam line through the solenoid's falling
field misses forward seed hits by a few pixel widths. Road elements are ordered
by path length.

The **road follower** walks each road surface after surface, vectorised over
roads: it predicts every candidate's position at the candidate's own radius or
z from its current helix (a Karimaki circle and s-z line through its last
``refit_hits`` hits), takes the candidate with the smallest chi2 if below
``chi2_max``, and also a second one on the same surface if it lies on another
module and passes too (an overlap); it stops after ``max_missed`` surfaces in a
row without a pick. Its picks are the classical baseline's tracks and the ghost
filter's track candidates; its residuals are features of the hit labeller.

Roads whose follower picked fewer than ``min_picked`` hits beyond the seed are
dropped (mostly fake seeds), and with ``min_won_fraction`` the rest go through
ambiguity resolution: each hit several followers picked goes to the road with
the most picks (then the smallest mean chi2), and roads winning less than that
fraction of their picks are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numba import njit

from hepml.config import from_section
from hepml.detector import Detector
from hepml.detector.field import Field, bending_bz, bending_bz1, field_arrays
from hepml.detector.propagation import (
    Crossings,
    TrackStates,
    _cylinder_path1,
    helix_z1,
    propagate,
    propagate_paused,
    propagate_resumed,
    track_path_order,
)
from hepml.detector.scattering import highland1, track_x01
from hepml.features.roads import N_FEATURES, road_features
from hepml.reco.building import lexsort_fast
from hepml.reco.fit import (
    HelixFit,
    arc_length,
    arc_length_sc,
    at_arc1,
    fit_helix_points,
    lagrange1,
    on_cylinder1,
    on_plane1,
    point_at_arc,
)
from hepml.reco.seeding import Seeds, _surface_info
from hepml.reco.spacepoints import SpacePoints, grown, query_one, wrap_phi, wrap_phi1

_BIG_CHI2 = 1e6
_FIELD_CORRECTION = True


@dataclass(frozen=True)
class RoadConfig:
    """Road windows, the per-surface cap and the road follower (``hit_labeller.roads``, ``.follower``)."""

    n_sigma: float
    max_hits_per_surface: int
    free_below_hits: int
    min_picked: int
    min_won_fraction: float
    confirm_hits: int
    confirm_surfaces: int
    max_step_mm: float
    chi2_max: float
    max_missed: int
    refit_hits: int

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> RoadConfig:
        r, f = cfg["hit_labeller"]["roads"], cfg["hit_labeller"]["follower"]
        return from_section(cls, {**r, **f})


@dataclass(frozen=True)
class ExtensionConfig:
    """Track extension (``hit_labeller.extension``): :func:`extend_tracks`."""

    surfaces: int
    n_sigma: float

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> ExtensionConfig:
        return from_section(cls, cfg["hit_labeller"]["extension"])


@dataclass
class Roads:
    """The roads of one event, flat (CSR): road ``i`` is elements ``road_ptr[i]:road_ptr[i+1]``.

    Per element (M,): ``hit`` (space-point row), ``surface``, ``slot`` (the
    building's one-hit-per-slot key: the module row, or n_modules + surface),
    ``s`` (path length from the seed's first hit, mm), ``features`` (M, F)
    (:data:`hepml.features.roads.FEATURES`), ``picked`` (the follower's track),
    ``follower_score`` (-chi2 to its running prediction; 0 for seed hits),
    ``is_seed``. Per road (R,): ``seed_hits`` (R, K). With truth, ``label`` (M,)
    is 1 where the hit belongs to the seed's majority particle ``seed_particle``
    (R,), else both are None. ``logits`` (M,): the hit labeller's, where
    :func:`hepml.reco.chain.event_roads` ran one, else None.
    """

    road_ptr: np.ndarray
    seed_hits: np.ndarray
    hit: np.ndarray
    surface: np.ndarray
    slot: np.ndarray
    s: np.ndarray
    features: np.ndarray
    picked: np.ndarray
    follower_score: np.ndarray
    is_seed: np.ndarray
    label: np.ndarray | None = None
    seed_particle: np.ndarray | None = None
    logits: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.road_ptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.road_ptr)

    @property
    def road_of_element(self) -> np.ndarray:
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)

    def take(self, roads: np.ndarray) -> Roads:
        """The roads ``roads`` (indices, in that order)."""
        roads = np.asarray(roads, dtype=np.int64)
        ln = self.lengths[roads]
        start = self.road_ptr[roads]
        idx = np.repeat(start - np.concatenate([[0], np.cumsum(ln)[:-1]]), ln) + np.arange(ln.sum())
        out: dict[str, Any] = {"road_ptr": np.concatenate([[0], np.cumsum(ln)]).astype(np.int64)}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "road_ptr":
                continue
            if v is None:
                out[f.name] = None
            elif f.name in ("seed_hits", "seed_particle"):
                out[f.name] = v[roads]
            else:
                out[f.name] = v[idx]
        return Roads(**out)

    @classmethod
    def concat(cls, parts: list[Roads]) -> Roads:
        """The roads of several sets (of one event), in order."""
        ptr = [np.zeros(1, np.int64)]
        offset = 0
        for p in parts:
            ptr.append(p.road_ptr[1:] + offset)
            offset += int(p.road_ptr[-1])
        k = max((p.seed_hits.shape[1] for p in parts), default=3)
        out: dict[str, Any] = {"road_ptr": np.concatenate(ptr)}
        for f in fields(cls):
            if f.name == "road_ptr":
                continue
            vals = [getattr(p, f.name) for p in parts]
            if f.name == "seed_hits":
                vals = [np.pad(v, ((0, 0), (0, k - v.shape[1])), constant_values=-1) for v in vals]
            out[f.name] = None if any(v is None for v in vals) else np.concatenate(vals)
        return cls(**out)

    @classmethod
    def empty(cls, truth: bool) -> Roads:
        z = np.zeros(0, np.int64)
        return cls(
            np.zeros(1, np.int64),
            np.zeros((0, 3), np.int64),
            z,
            z.astype(np.int32),
            z,
            z.astype(float),
            np.zeros((0, N_FEATURES), np.float32),
            z.astype(bool),
            z.astype(np.float32),
            z.astype(bool),
            z.astype(np.int8) if truth else None,
            z if truth else None,
        )


def seed_majority(particle_id: np.ndarray) -> np.ndarray:
    """Majority particle of each seed (S, K) of particle ids (-1: padding): the id held
    by at least two of its hits and by more than any other, else 0 (noise is none)."""
    p = np.asarray(particle_id)
    n, k = p.shape
    out = np.zeros(n, dtype=np.int64)
    best = np.zeros(n, dtype=np.int64)
    for j in range(k):
        c = ((p == p[:, j : j + 1]) & (p > 0)).sum(axis=1)
        better = (c > best) & (p[:, j] > 0)
        out[better] = p[better, j]
        best[better] = c[better]
    out[best < 2] = 0
    return out


# --------------------------------------------------------------------------- helpers
def _seed_fit(sp: SpacePoints, hits: np.ndarray, det: Detector) -> HelixFit:
    """Helix fits of rows of space points (R, K), -1 padded (resolution-weighted)."""
    mask = hits >= 0
    h = np.where(mask, hits, 0)
    last = np.take_along_axis(h, (mask.sum(axis=1) - 1)[:, None], axis=1)[:, 0]
    bz = det.field.bz_axis(sp.z[last])
    return _fit_points(sp, hits, bz)


#: a typical endcap |cot theta|: on disks the s-z fit's resolution is sigma_r times this
_DISK_COT = 4.0


def _sigma_z(sp: SpacePoints, h: np.ndarray) -> np.ndarray:
    """Resolution of a point in the s-z fit: sigma_l (z) on barrel layers; on disks z is
    exact but s follows r, so the r resolution times a typical endcap |cot theta| of 4."""
    return np.where(sp.disk[h], _DISK_COT * sp.sigma_l[h], sp.sigma_l[h])


def _state_at(fit: HelixFit, s_t: np.ndarray | float = 0.0) -> TrackStates:
    """Track states on the fitted helices at transverse arc ``s_t`` (mm) from their point of
    closest approach to the z axis (0: the PCA, d0 (sin phi0, -cos phi0, 0) + (0, 0, z0)),
    moving along (cos phi, sin phi, cot theta) with phi = phi0 - rho s_t."""
    p = fit.pt_GeV * np.sqrt(1.0 + fit.cot_theta**2)
    p = np.where(np.isfinite(p), np.minimum(p, 1e5), 1e5)
    s_t = np.broadcast_to(np.asarray(s_t, dtype=np.float64), fit.phi0.shape)
    x, y, z = point_at_arc(fit, s_t)
    phi = fit.phi0 - fit.rho_per_mm * s_t
    return TrackStates(
        x, y, z, np.cos(phi), np.sin(phi), fit.cot_theta, p, fit.q.astype(np.float64)
    )


@njit(cache=True, error_model="numpy")
def _line_radial1(px: float, py: float, dx: float, dy: float) -> tuple[float, float]:
    """The radius of the line's point p and its rate dr/ds along d (:func:`_candidate_point1`;
    the same for every candidate of one prediction)."""
    r0 = np.maximum(math.hypot(px, py), 1e-9)
    return r0, (px * dx + py * dy) / r0


@njit(cache=True, error_model="numpy")
def _candidate_point1(
    disk: bool,
    r: float,
    z: float,
    px: float,
    py: float,
    pz: float,
    dx: float,
    dy: float,
    dz: float,
    r0: float,
    drds: float,
) -> tuple[float, float, float, float]:
    """The straight-line prediction from (p, d) moved to a point's own radius r (barrel) or
    z (disk), and the point's residual along the surface to it: ``(qx, qy, qz, along)``;
    ``r0, drds`` are :func:`_line_radial1` of the line. The residual across is
    :func:`_candidate_across1`."""
    t = (z - pz) / dz if disk else (r - r0) / drds
    t = np.minimum(np.maximum(t, -50.0), 50.0) if np.isfinite(t) else 0.0
    qx, qy, qz = px + t * dx, py + t * dy, pz + t * dz
    return qx, qy, qz, _candidate_along1(disk, r, z, qx, qy, qz)


@njit(cache=True, error_model="numpy")
def _candidate_across1(r: float, phi: float, qx: float, qy: float) -> float:
    """The residual across the track (r dphi) of a point (r, phi) to the prediction q."""
    return r * wrap_phi1(phi - math.atan2(qy, qx))


@njit(cache=True, error_model="numpy")
def _candidate_along1(disk: bool, r: float, z: float, qx: float, qy: float, qz: float) -> float:
    """The residual along the surface of a point (r, z) to the prediction q: in r on a disk,
    in z on a barrel layer."""
    return r - math.hypot(qx, qy) if disk else z - qz


# --------------------------------------------------------------------------- roads
@dataclass
class _Predictions:
    """The seeds' helices on the surfaces they cross: surface points ``pts`` (``track`` =
    seed index), the errors of the prediction across (``sig_t``) and along (``sig_l``) the
    surface, the seeds' fits and the path (from the PCA) of their first, middle and last hit."""

    pts: Crossings
    sig_t: np.ndarray
    sig_l: np.ndarray
    fit: HelixFit
    s_fit: np.ndarray  # (S, 3)
    path_to: Any


@dataclass
class _Look:
    """What :func:`confirm_seeds`' first look propagated, for :func:`build_roads` to go on
    from: the seeds' surface crossings so far (``track``: the seed), the working states of
    those the look's surface count stopped (:func:`hepml.detector.propagation.propagate_paused`)
    and their seeds."""

    pts: Crossings
    paused: np.ndarray
    paused_seed: np.ndarray

    def take(self, seeds: np.ndarray, n_seeds: int) -> _Look:
        """The look of seeds ``seeds`` (sorted indices among ``n_seeds``), renumbered 0, 1, ..."""
        new = np.full(n_seeds, -1, dtype=np.int64)
        new[seeds] = np.arange(len(seeds))
        pts = self.pts.take(np.flatnonzero(new[self.pts.track] >= 0))
        pts = Crossings(**{**pts.__dict__, "track": new[pts.track]})
        idx = new[self.paused_seed]
        return _Look(pts, self.paused[:, idx >= 0], idx[idx >= 0])


def _predict(
    sp: SpacePoints,
    det: Detector,
    seeds: Seeds,
    cfg: RoadConfig,
    max_surfaces: int | None = None,
    backoff_mm: float | None = None,
    look: _Look | None = None,
) -> tuple[_Predictions, _Look | None]:
    """Propagate every seed's fitted helix from its point of closest approach to the beam line
    (so that the seed's own surfaces are crossed too: overlap partners of its hits, and the
    surfaces before a late seed) and the error of the prediction on each surface crossed.

    With ``backoff_mm`` (seeds of particles born inside the detector) they start that
    transverse arc before their first hit instead: their helix does not exist inside their
    vertex, and from the PCA it would cross (and take hits on) every surface down to the
    beam line.

    With ``max_surfaces`` the propagation stops after that many surfaces and the
    :class:`_Look` to go on from is returned too; given a ``look`` (of these seeds), the
    propagation goes on from it instead of starting again (the same crossings)."""
    info = _surface_info(det)
    seed_hits = seeds.hits
    mask = seed_hits >= 0
    n_seed = mask.sum(axis=1)
    h = np.where(mask, seed_hits, 0)
    fit = _seed_fit(sp, seed_hits, det)
    last = np.take_along_axis(h, (n_seed - 1)[:, None], axis=1)[:, 0]
    ok = np.isfinite(fit.rho_per_mm) & np.isfinite(fit.cot_theta) & np.isfinite(fit.d0_mm)
    cot = np.nan_to_num(fit.cot_theta)
    inv_sin = np.sqrt(1.0 + cot * cot)
    first = seed_hits[:, 0]
    mid = np.take_along_axis(h, (n_seed // 2)[:, None], axis=1)[:, 0]

    def arc_to(i: np.ndarray) -> np.ndarray:
        """Transverse arc (mm) from the PCA to points ``i`` (one per seed) along the fit."""
        return np.nan_to_num(arc_length(sp.x[i], sp.y[i], fit.rho_per_mm, fit.phi0, fit.d0_mm))

    def path_to(i: np.ndarray) -> np.ndarray:
        """3D path (mm) from the PCA to points ``i`` (one per seed) along the fit."""
        return arc_to(i) * inv_sin

    s_start = (
        np.maximum(arc_to(first) - backoff_mm, 0.0)
        if backoff_mm is not None
        else np.zeros(len(first))
    )
    new_look = None
    if look is None:
        states = _state_at(fit, s_start)
        states = TrackStates(*(getattr(states, f.name)[ok] for f in fields(states)))
        road_ids = np.flatnonzero(ok)
        if max_surfaces is None:
            pts = propagate(states, det, max_step_mm=cfg.max_step_mm, surfaces_only=True)
        else:
            pts, paused, paused_track = propagate_paused(
                states, det, max_surfaces, max_step_mm=cfg.max_step_mm, surfaces_only=True
            )
        pts = Crossings(**{**pts.__dict__, "track": road_ids[pts.track]})
        if max_surfaces is not None:
            new_look = _Look(pts, paused, road_ids[paused_track])
    else:
        more = propagate_resumed(
            look.paused, det, cfg.max_step_mm, surfaces_only=True, track=look.paused_seed
        )
        pts = Crossings.concatenate([look.pts, more])
        pts = pts.take(track_path_order(pts.track, pts.s))
    s_fit = np.stack([path_to(first), path_to(mid), path_to(last)], axis=1)
    # paths from the PCA, wherever the propagation started, and the windows' errors
    s_pt, sig_t, sig_l = _window_errors(
        pts.track,
        pts.surface,
        pts.x,
        pts.y,
        pts.dx,
        pts.dy,
        pts.dz,
        pts.p,
        pts.s,
        pts.cos_incidence,
        np.ascontiguousarray(s_start, np.float64),
        inv_sin,
        cot,
        s_fit,
        np.stack([first, mid, last], axis=1),
        sp.sigma_t,
        sp.sigma_l,
        sp.disk,
        sp.surface,
        info.x_over_x0,
        info.disk,
    )
    pts = Crossings(**{**pts.__dict__, "s": s_pt})
    return _Predictions(pts, sig_t, sig_l, fit, s_fit, path_to), new_look


@njit(cache=True, error_model="numpy")
def _window_errors(
    road: np.ndarray,
    surface: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    dz: np.ndarray,
    p_: np.ndarray,
    s: np.ndarray,
    cos_incidence: np.ndarray,
    s_start: np.ndarray,
    inv_sin: np.ndarray,
    cot: np.ndarray,
    s_fit: np.ndarray,
    trio: np.ndarray,
    sigma_t: np.ndarray,
    sigma_l: np.ndarray,
    disk_hit: np.ndarray,
    surface_hit: np.ndarray,
    x_over_x0: np.ndarray,
    disk_surface: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The path from the PCA of every surface point of the seeds' helices (by seed, then
    path) and the errors of the prediction there, across (r*phi) and along the surface:
    the seed fit's extrapolation (three-point Lagrange weights of its first, middle and
    last hit, times their resolution) and the Highland scattering at the seed's middle and
    last hits and on every surface crossed after the last, over the lever arm to the point
    (kinks inside the seed are in its fit), projected onto the surface.

    The scattering material is x/X0 / sin(theta) at every hit, disks too: on a disk that
    overstates the material by |cot theta| (2.4x at eta 2.5), kept on purpose: the windows
    have no term yet for the field model's and the local refit's errors in the endcaps, and
    the physical factor (hepml.detector.scattering.track_x0, as the seeding uses) measured 6%
    less efficiency at 1.5 < |eta| < 2 and a TrackML score 0.03-0.04 lower, on simulated and
    real events."""
    n = len(road)
    s_pt = np.empty(n)
    sig_t = np.empty(n)
    sig_l = np.empty(n)
    # sums over the surfaces before each point of its seed (a running sum over all points,
    # less its value where the seed's points begin)
    c = np.zeros(3)
    before = np.zeros(3)
    tx_mid = tx_last = 0.0
    for i in range(n):
        rd = road[i]
        if i == 0 or rd != road[i - 1]:
            before[:] = c
            # the seed's material at its middle and last hits (the same for its points)
            tx_mid = track_x01(x_over_x0[surface_hit[trio[rd, 1]]], cot[rd], False)
            tx_last = track_x01(x_over_x0[surface_hit[trio[rd, 2]]], cot[rd], False)
        sp_i = s[i] + s_start[rd] * inv_sin[rd]
        s_pt[i] = sp_i
        s0, s1, s2 = s_fit[rd, 0], s_fit[rd, 1], s_fit[rd, 2]
        lw = lagrange1(s0, s1, s2, sp_i)
        var_t = 0.0
        var_l = 0.0
        for j in range(3):
            h = trio[rd, j]
            e = lw[j] * sigma_t[h]
            var_t = e * e if j == 0 else var_t + e * e
            e = lw[j] * (_DISK_COT * sigma_l[h] if disk_hit[h] else sigma_l[h])  # _sigma_z
            var_l = e * e if j == 0 else var_l + e * e
        p = np.maximum(p_[i], 0.05)
        th_pt = highland1(p, x_over_x0[surface[i]] / np.maximum(cos_incidence[i], 0.05), 1.0, 1.0)
        th_mid = highland1(p, tx_mid, 1.0, 1.0)
        th_last = highland1(p, tx_last, 1.0, 1.0)
        e1 = th_mid * (sp_i - s1)
        e2 = th_last * np.maximum(sp_i - s2, 0.0)
        ms2 = e1 * e1 + e2 * e2
        t2 = th_pt * th_pt if sp_i > s2 + 1.0 else 0.0
        v0, v1, v2 = t2, t2 * sp_i, t2 * sp_i * sp_i
        c[0] += v0
        c[1] += v1
        c[2] += v2
        cc0 = c[0] - v0 - before[0]
        cc1 = c[1] - v1 - before[1]
        cc2 = c[2] - v2 - before[2]
        ms2 = ms2 + np.maximum(cc0 * sp_i * sp_i - 2.0 * cc1 * sp_i + cc2, 0.0)
        on_disk = disk_surface[surface[i]]
        r_pt = np.maximum(math.hypot(x[i], y[i]), 1e-3)
        sin_t = np.maximum(math.hypot(dx[i], dy[i]), 1e-3)
        # a barrel layer crossed at angle alpha to the radial direction stretches r*phi by 1/cos(alpha)
        cos_a = np.minimum(np.maximum(abs(x[i] * dx[i] + y[i] * dy[i]) / r_pt / sin_t, 0.2), 1.0)
        cos_t = np.maximum(abs(dz[i]), 0.05)
        sig_t[i] = math.sqrt(var_t + ms2) / (1.0 if on_disk else cos_a)
        if on_disk:
            e = dz[i] / sin_t
            sig_l[i] = math.sqrt(var_l / np.maximum(e * e, 1e-6) + ms2 / (cos_t * cos_t))
        else:
            sig_l[i] = math.sqrt(var_l + ms2 / (sin_t * sin_t))
    return s_pt, sig_t, sig_l


@dataclass
class _Candidates:
    """Points inside the windows: ``q`` (row of the surface point), ``c`` (space point), the
    residuals across/along in units of their sigma and the chi2, nearest first per point."""

    q: np.ndarray
    c: np.ndarray
    u: np.ndarray
    v: np.ndarray
    chi2: np.ndarray
    rank: np.ndarray


def _gather(
    sp: SpacePoints,
    pr: _Predictions,
    seed_hits: np.ndarray,
    cfg: RoadConfig,
    allowed: np.ndarray | None = None,
) -> _Candidates:
    """The points within ``n_sigma`` of each surface point's prediction at their own radius
    (barrel) or z (disk), the seed's own points excluded, at most ``max_hits_per_surface``;
    only the points ``allowed`` (n,) bool, if given."""
    pts = pr.pts
    r_pt = np.maximum(np.hypot(pts.x, pts.y), 1e-3)
    is_disk = _disk_of(sp, pts.surface)
    w_t = cfg.n_sigma * np.sqrt(pr.sig_t**2 + 0.05**2)
    w_l = cfg.n_sigma * np.sqrt(pr.sig_l**2 + 1.0)
    phi_pt = wrap_phi(np.arctan2(pts.y, pts.x))
    w_pt = np.where(is_disk, r_pt, pts.z)
    half = np.minimum(w_t / r_pt + 0.002, np.pi * (1 - 1e-9))
    w_lo = w_pt - w_l - 5.0
    w_hi = w_pt + w_l + 5.0
    seed_hits = np.ascontiguousarray(seed_hits, dtype=np.int64)
    found = []
    for sfc in np.unique(pts.surface).tolist():
        sel = np.flatnonzero(pts.surface == sfc)
        ix = sp.index(int(sfc), 20.0, allowed)
        if len(ix.keys) == 0:
            continue
        found.append(
            _gather_surface(
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
                sel,
                phi_pt,
                half,
                w_lo,
                w_hi,
                pts.track,
                seed_hits,
                pts.x,
                pts.y,
                pts.z,
                pts.dx,
                pts.dy,
                pts.dz,
                pr.sig_t,
                pr.sig_l,
                sp.disk,
                sp.r,
                sp.phi,
                sp.z,
                sp.sigma_t,
                sp.sigma_l,
                sp.surface,
                int(sfc),
                float(cfg.n_sigma**2),
                int(cfg.max_hits_per_surface),
            )
        )
    q, c, u, v, chi2, rank = (
        (np.concatenate([f[i] for f in found]) for i in range(6))
        if found
        else (
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            *(np.zeros(0) for _ in range(3)),
            np.zeros(0, np.int64),
        )
    )
    # each surface's candidates come by surface point, nearest first: merge the surfaces
    o = np.argsort(q, kind="stable")
    return _Candidates(q[o], c[o], u[o], v[o], chi2[o], rank[o])


@njit(cache=True, error_model="numpy")
def _gather_surface(
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
    sel: np.ndarray,
    phi_q: np.ndarray,
    half: np.ndarray,
    w_lo: np.ndarray,
    w_hi: np.ndarray,
    track: np.ndarray,
    seed_hits: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    dz: np.ndarray,
    sig_t: np.ndarray,
    sig_l: np.ndarray,
    disk: np.ndarray,
    r: np.ndarray,
    phi: np.ndarray,
    z: np.ndarray,
    sigma_t: np.ndarray,
    sigma_l: np.ndarray,
    surface_of: np.ndarray,
    sfc: int,
    max_chi2: float,
    max_hits: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_gather`'s candidates on one surface ``sfc`` (compiled): the points of its index
    in the windows of surface points ``sel``, not their seed's own, with their normalised
    residuals (u across, v along) and chi2 <= ``max_chi2``, the ``max_hits`` nearest of each
    surface point, nearest first (ties in their index order): ``(q, c, u, v, chi2, rank)``.

    On a surface that holds one of the seed's hits, residuals are taken relative to that
    hit's own (:func:`_seed_anchor1`): an overlap partner of a seed hit is measured against
    the seed hit moved along the track, not against the propagated helix, which misses the
    seed's hits where the field along its way from the beam line differs from the field at
    the seed (forward disks: 0.05 mm, 3.5 sigma of a pixel, on the median seed)."""
    buf_q = np.empty(4 * len(sel) + 64, np.int64)
    buf_c = np.empty(4 * len(sel) + 64, np.int64)
    out_q = np.empty(len(buf_q), np.int64)
    out_c = np.empty(len(buf_q), np.int64)
    out_u = np.empty(len(buf_q))
    out_v = np.empty(len(buf_q))
    out_x = np.empty(len(buf_q))
    out_k = np.empty(len(buf_q), np.int64)
    n_out = 0
    for i in range(len(sel)):
        qi = sel[i]
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
                phi_q[qi],
                half[qi],
                w_lo[qi],
                w_hi[qi],
                qi,
                buf_q,
                buf_c,
                0,
            )
            if m >= 0:
                break
            buf_q = np.empty(2 * len(buf_q), np.int64)
            buf_c = np.empty(2 * len(buf_c), np.int64)
        tr = track[qi]
        first = n_out
        r0, drds = _line_radial1(px[qi], py[qi], dx[qi], dy[qi])
        off_t, off_l = _seed_anchor1(
            seed_hits[tr],
            surface_of,
            sfc,
            disk,
            r,
            phi,
            z,
            px[qi],
            py[qi],
            pz[qi],
            dx[qi],
            dy[qi],
            dz[qi],
            r0,
            drds,
        )
        for j in range(m):
            ci = buf_c[j]
            own = False
            for k in range(seed_hits.shape[1]):
                if seed_hits[tr, k] == ci:
                    own = True
            if own:
                continue
            qx, qy, _, a_l = _candidate_point1(
                disk[ci], r[ci], z[ci], px[qi], py[qi], pz[qi], dx[qi], dy[qi], dz[qi], r0, drds
            )
            a_l -= off_l
            sl = math.sqrt(sig_l[qi] * sig_l[qi] + sigma_l[ci] * sigma_l[ci])
            v = a_l / sl
            if v * v > max_chi2:  # chi2 = u^2 + v^2 >= v^2 (exactly, in floating point too)
                continue
            a_t = _candidate_across1(r[ci], phi[ci], qx, qy) - off_t
            st = math.sqrt(sig_t[qi] * sig_t[qi] + sigma_t[ci] * sigma_t[ci])
            u = a_t / st
            chi2 = u * u + v * v
            if not chi2 <= max_chi2:
                continue
            if n_out == len(out_q):
                out_q, out_c = grown(out_q, n_out), grown(out_c, n_out)
                out_u, out_v, out_x = grown(out_u, n_out), grown(out_v, n_out), grown(out_x, n_out)
                out_k = grown(out_k, n_out)
            # insert nearest first (stable), keeping at most max_hits of this surface point
            at = n_out
            while at > first and out_x[at - 1] > chi2:
                at -= 1
            if at - first >= max_hits:
                continue
            last = min(n_out, first + max_hits - 1)
            for t in range(last, at, -1):
                out_c[t], out_u[t], out_v[t], out_x[t] = (
                    out_c[t - 1],
                    out_u[t - 1],
                    out_v[t - 1],
                    out_x[t - 1],
                )
            out_c[at], out_u[at], out_v[at], out_x[at] = ci, u, v, chi2
            n_out = last + 1
        for t in range(first, n_out):
            out_q[t] = qi
            out_k[t] = t - first
    return out_q[:n_out], out_c[:n_out], out_u[:n_out], out_v[:n_out], out_x[:n_out], out_k[:n_out]


#: a seed hit farther than this from its own helix's surface point (across, along; mm) is
#: taken as on another crossing of the surface (a looper's second turn), not as an anchor
_ANCHOR_MAX_MM = (1.0, 10.0)


@njit(cache=True, error_model="numpy")
def _seed_anchor1(
    seed_row: np.ndarray,
    surface_of: np.ndarray,
    sfc: int,
    disk: np.ndarray,
    r: np.ndarray,
    phi: np.ndarray,
    z: np.ndarray,
    px: float,
    py: float,
    pz: float,
    dx: float,
    dy: float,
    dz: float,
    r0: float,
    drds: float,
) -> tuple[float, float]:
    """The residuals (across, along; mm) of the seed's hit on surface ``sfc`` to the straight-line
    prediction (p, d), which :func:`_gather_surface` subtracts from its candidates' there; (0, 0)
    when no seed hit lies on the surface or it is farther than :data:`_ANCHOR_MAX_MM`."""
    for k in range(len(seed_row)):
        s = seed_row[k]
        if s < 0 or surface_of[s] != sfc:
            continue
        qx, qy, _, a_l = _candidate_point1(disk[s], r[s], z[s], px, py, pz, dx, dy, dz, r0, drds)
        a_t = _candidate_across1(r[s], phi[s], qx, qy)
        if abs(a_t) < _ANCHOR_MAX_MM[0] and abs(a_l) < _ANCHOR_MAX_MM[1]:
            return a_t, a_l
    return 0.0, 0.0


def _disk_of(sp: SpacePoints, surface: np.ndarray) -> np.ndarray:
    """Whether surfaces are disks, from the space points' own flags (every surface seen has points)."""
    lut = np.zeros(int(max(surface.max(initial=-1), sp.surface.max(initial=-1))) + 1, dtype=bool)
    on = sp.surface >= 0
    lut[sp.surface[on]] = sp.disk[on]
    return lut[surface]


def confirm_seeds(
    sp: SpacePoints, det: Detector, seeds: Seeds, cfg: RoadConfig, backoff_mm: float | None = None
) -> np.ndarray:
    """Which seeds have a point within the road window on at least ``confirm_hits`` of the
    ``confirm_surfaces`` surfaces nearest them after their last hit, or before their first
    (a cheap first look along the road, so that fake seeds cost no full road).
    ``backoff_mm``: as in :func:`build_roads`."""
    return _confirm(sp, det, seeds, cfg, backoff_mm)[0]


def _confirm(
    sp: SpacePoints, det: Detector, seeds: Seeds, cfg: RoadConfig, backoff_mm: float | None = None
) -> tuple[np.ndarray, _Look | None]:
    """:func:`confirm_seeds`, and the first look's propagation to go on from (None when
    there was none)."""
    if cfg.confirm_hits == 0 or len(seeds) == 0:
        return np.ones(len(seeds), dtype=bool), None
    n_seed = (seeds.hits >= 0).sum(axis=1)
    pr, first_look = _predict(
        sp,
        det,
        seeds,
        cfg,
        max_surfaces=int(n_seed.max()) + cfg.confirm_surfaces + 2,
        backoff_mm=backoff_mm,
    )
    pts = pr.pts
    beyond = pts.s > pr.s_fit[pts.track, 2] + 1.0
    before = pts.s < pr.s_fit[pts.track, 0] - 1.0
    # the confirm_surfaces points nearest the seed on either side (points by track, then path):
    # a particle whose last hits are the seed's confirms it with the hits before it
    rank = np.zeros(len(pts), dtype=np.int64)
    b = np.flatnonzero(beyond)
    rank[b] = _rank_in_group(pts.track[b])
    f = np.flatnonzero(before)[::-1]
    rank[f] = _rank_in_group(pts.track[f])
    look = (beyond | before) & (rank < cfg.confirm_surfaces)
    pr.pts = pts.take(np.flatnonzero(look))
    pr.sig_t, pr.sig_l = pr.sig_t[look], pr.sig_l[look]
    cand = _gather(sp, pr, seeds.hits, cfg)
    first = np.r_[True, cand.q[1:] != cand.q[:-1]] if len(cand.q) else np.zeros(0, bool)
    n_found = np.bincount(pr.pts.track[cand.q[first]], minlength=len(seeds))
    return n_found >= cfg.confirm_hits, first_look


def build_roads(
    sp: SpacePoints,
    det: Detector,
    seeds: Seeds,
    cfg: RoadConfig,
    particle_id: np.ndarray | None = None,
    select: bool = True,
    backoff_mm: float | None = None,
) -> Roads:
    """The roads of ``seeds`` in one event's space points (see the module docstring).

    Seeds failing :func:`confirm_seeds` get no road. ``select`` False keeps every
    road (no ``min_picked`` cut, no ambiguity resolution). Roads start at the beam line,
    or with ``backoff_mm`` (seeds of particles born inside the detector:
    :attr:`hepml.reco.seeding.SeedingConfig.road_start_mm`) that transverse arc before
    their seed's first hit.
    """
    confirmed, look = _confirm(sp, det, seeds, cfg, backoff_mm)
    keep = np.flatnonzero(confirmed)
    if look is not None:
        look = look.take(keep, len(seeds))
    seeds = seeds.take(keep)
    if len(seeds) == 0:
        return Roads.empty(particle_id is not None)
    pr, _ = _predict(sp, det, seeds, cfg, backoff_mm=backoff_mm, look=look)
    cand = _gather(sp, pr, seeds.hits, cfg)
    q, c = cand.q, cand.c
    seed_hits = seeds.hits
    n_cand = np.bincount(q, minlength=len(pr.pts))
    ptr, elem_hit, elem_s, is_seed, order = _road_elements(pr, seed_hits, q, c, cand.chi2)
    zeros = np.zeros(len(order) - len(c))
    extra = {
        "u_seed": np.concatenate([zeros, cand.u])[order],
        "v_seed": np.concatenate([zeros, cand.v])[order],
        "rank": np.concatenate([zeros, cand.rank])[order],
        "n_window": np.concatenate([zeros, n_cand[q]])[order],
    }
    picked, fscore, final_t, final_l, n_picked = follow(
        sp, det, ptr, elem_hit, is_seed, elem_s, cfg, _seed_curvature(sp, det, pr.fit, seed_hits)
    )
    slot = np.where(
        sp.module[elem_hit] >= 0, sp.module[elem_hit], len(det.modules) + sp.surface[elem_hit]
    )
    feats = road_features(
        sp=sp,
        det=det,
        road_ptr=ptr,
        hit=elem_hit,
        s=elem_s,
        is_seed=is_seed,
        picked=picked,
        follower_score=fscore,
        final_t=final_t,
        final_l=final_l,
        n_picked=n_picked,
        seed_fit=pr.fit,
        **extra,
    )
    roads = Roads(
        road_ptr=ptr,
        seed_hits=seed_hits,
        hit=elem_hit,
        surface=sp.surface[elem_hit].astype(np.int32),
        slot=slot.astype(np.int64),
        s=elem_s,
        features=feats,
        picked=picked,
        follower_score=fscore.astype(np.float32),
        is_seed=is_seed,
    )
    if particle_id is not None:
        pid = np.asarray(particle_id)
        sp_pid = np.where(seed_hits >= 0, pid[np.maximum(seed_hits, 0)], -1)
        maj = seed_majority(sp_pid)
        roads.seed_particle = maj
        lab = (pid[elem_hit] == np.repeat(maj, roads.lengths)) & (np.repeat(maj, roads.lengths) > 0)
        roads.label = lab.astype(np.int8)
    return select_roads(roads, cfg) if select else roads


def _road_elements(
    pr: _Predictions, seed_hits: np.ndarray, q: np.ndarray, c: np.ndarray, chi2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The elements of the seeds' roads: each seed's hits (rows of ``seed_hits``, -1 padded)
    and the candidate points ``c`` of surface points ``q`` (chi2 ``chi2``), by road, path
    length from the PCA, then chi2 (:func:`_element_order`). Returns ``(ptr, hit, s,
    is_seed, order)``: the road pointers (R+1,), and per element its point, path and
    whether it is a seed hit; ``order`` takes arrays laid out as [the seed hits, row by row,
    then the candidates] into the elements' order."""
    mask = seed_hits >= 0
    h = np.where(mask, seed_hits, 0)
    pts = pr.pts
    road = np.concatenate([np.repeat(np.arange(len(seed_hits)), mask.sum(axis=1)), pts.track[q]])
    hit = np.concatenate([seed_hits[mask], c])
    seed_s = np.stack([pr.path_to(h[:, j]) for j in range(h.shape[1])], axis=1)[mask]
    s = np.concatenate([seed_s, pts.s[q]])
    n_m = int(mask.sum())
    is_seed = np.concatenate([np.ones(n_m, bool), np.zeros(len(c), bool)])
    order = _element_order(road[:n_m], s[:n_m], road[n_m:], s[n_m:], chi2)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(road, minlength=len(seed_hits)))])
    return ptr.astype(np.int64), hit[order], s[order], is_seed[order], order


@njit(cache=True, error_model="numpy")
def _element_order(
    seed_road: np.ndarray,
    seed_s: np.ndarray,
    cand_road: np.ndarray,
    cand_s: np.ndarray,
    cand_chi2: np.ndarray,
) -> np.ndarray:
    """The order of road elements (the seeds' hits, then the candidates, both grouped by
    road in increasing road order) by road, path length, then chi2 (0 for seed hits), ties
    in their order: ``np.lexsort((chi2, s, road))``. Each road's few seed hits are merged
    into its candidates, which come sorted by (s, chi2) from the gathering; a road whose
    candidates do not is sorted whole."""
    n_m, n_c = len(seed_road), len(cand_road)
    order = np.empty(n_m + n_c, np.int64)
    n_roads = 0
    if n_m:
        n_roads = seed_road[n_m - 1] + 1
    if n_c:
        n_roads = max(n_roads, cand_road[n_c - 1] + 1)
    i_s = i_c = out = 0
    for road in range(n_roads):
        s0, c0 = i_s, i_c
        while i_s < n_m and seed_road[i_s] == road:
            i_s += 1
        while i_c < n_c and cand_road[i_c] == road:
            i_c += 1
        # the road's elements, seeds first (concatenation order), by a stable insertion sort
        # on (s, chi2) where the candidates are not in order; else a merge
        in_order = True
        for j in range(c0 + 1, i_c):
            if cand_s[j] < cand_s[j - 1] or (
                cand_s[j] == cand_s[j - 1] and cand_chi2[j] < cand_chi2[j - 1]
            ):
                in_order = False
        start = out
        for j in range(s0, i_s):  # seed hits: insertion by s (stable)
            at = out
            while at > start and seed_s[order[at - 1]] > seed_s[j]:
                order[at] = order[at - 1]
                at -= 1
            order[at] = j
            out += 1
        if in_order:
            # merge: a seed hit goes before a candidate at the same s (chi2 0 <= chi2, and first)
            seeds = order[start:out].copy()
            a, out = 0, start
            for j in range(c0, i_c):
                while a < len(seeds) and seed_s[seeds[a]] <= cand_s[j]:
                    order[out] = seeds[a]
                    a += 1
                    out += 1
                order[out] = n_m + j
                out += 1
            while a < len(seeds):
                order[out] = seeds[a]
                a += 1
                out += 1
        else:
            for j in range(c0, i_c):
                at = out
                while at > start:
                    o = order[at - 1]
                    s_o = seed_s[o] if o < n_m else cand_s[o - n_m]
                    x_o = 0.0 if o < n_m else cand_chi2[o - n_m]
                    if s_o > cand_s[j] or (s_o == cand_s[j] and x_o > cand_chi2[j]):
                        order[at] = o
                        at -= 1
                    else:
                        break
                order[at] = n_m + j
                out += 1
    return order


def _rank_in_group(group: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within runs of equal ``group`` (sorted)."""
    n = len(group)
    start = np.r_[True, group[1:] != group[:-1]] if n else np.zeros(0, bool)
    idx = np.arange(n)
    first = np.maximum.accumulate(np.where(start, idx, 0)) if n else idx
    return idx - first


# --------------------------------------------------------------------------- the follower
def follow(
    sp: SpacePoints,
    det: Detector,
    ptr: np.ndarray,
    hit: np.ndarray,
    is_seed: np.ndarray,
    s_along: np.ndarray,
    cfg: RoadConfig,
    seed_curvature: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Walk every road (CSR ``ptr`` over elements ``hit`` in path order ``s_along``):
    returns ``(picked, score, final_t, final_l, n_picked)``: picks (M,), -chi2 to the running
    prediction (M,; 0 on seed hits), residuals to the final fit in sigma (M,), picks per road (R,).

    ``seed_curvature`` (R,): each road's seed curvature per tesla of bending field
    (:func:`_seed_curvature`), which sets the extrapolation's curvature in the falling
    field beyond the solenoid's end; None uses the local fit's own curvature."""
    n_roads = len(ptr) - 1
    m = len(hit)
    picked = is_seed.copy()
    score = np.zeros(m)
    info = _surface_info(det)
    road = np.repeat(np.arange(n_roads), np.diff(ptr))
    # steps: the successive surfaces of each road's candidates, in path order
    surf = sp.surface[hit]
    cand = ~is_seed
    ci = np.flatnonzero(cand)
    rc, sc = road[ci], surf[ci]
    new = np.r_[True, (sc[1:] != sc[:-1]) | (rc[1:] != rc[:-1])] if len(ci) else np.zeros(0, bool)
    g = np.cumsum(new) - 1
    road_start = np.r_[True, rc[1:] != rc[:-1]] if len(ci) else np.zeros(0, bool)
    first_g = np.zeros(n_roads, dtype=np.int64)
    first_g[rc[road_start]] = g[road_start]
    local = np.full(m, -1, dtype=np.int64)
    local[ci] = g - first_g[rc]
    n_steps = int(local.max()) + 1 if len(ci) else 0
    # candidates before the seed's first hit (a late seed) do not count as misses
    s_first = np.full(n_roads, np.inf)
    np.minimum.at(s_first, road[is_seed], s_along[is_seed])
    # the follower's hit list per road: a ring of the last refit_hits picks
    k = cfg.refit_hits
    last_hits = np.full((n_roads, k), -1, dtype=np.int64)
    # filled with the seed's hits (the last k of them)
    seed_rows = np.flatnonzero(is_seed)
    sr = road[seed_rows]
    pos = _rank_in_group(sr)
    n_s = np.bincount(sr, minlength=n_roads)
    col = pos + (k - n_s[sr])  # right-aligned: rolling the ring drops the oldest hit
    okc = col >= 0
    last_hits[sr[okc], col[okc]] = hit[seed_rows[okc]]
    n_hit = np.minimum(n_s, k)
    missed = np.zeros(n_roads, dtype=np.int64)
    alive = np.ones(n_roads, dtype=bool)
    n_picked = n_s.copy()
    by_step = np.argsort(local, kind="stable")
    bounds = np.searchsorted(local[by_step], np.arange(-1, n_steps + 1))
    for t in range(n_steps):
        e = by_step[bounds[t + 1] : bounds[t + 2]]
        e = e[alive[road[e]]]
        if len(e) == 0:
            continue
        rr = road[e]
        roads_here = rr[np.r_[True, rr[1:] != rr[:-1]]]  # rr is sorted: np.unique(rr)
        fit = _fit_rows(sp, det, last_hits[roads_here])
        fit_of = np.searchsorted(roads_here, rr)
        chi2 = _chi2_to_fit(
            sp,
            fit,
            fit_of,
            hit[e],
            info,
            last_hits[rr],
            n_hit[rr],
            det.field,
            None if seed_curvature is None else seed_curvature[rr],
        )
        score[e] = -np.minimum(chi2, _BIG_CHI2)
        ok = chi2 <= cfg.chi2_max
        # best per road, then a second on another module
        o = _by_chi2_within_runs(rr, chi2)  # np.lexsort((chi2, rr)), rr sorted
        eo, ro, oko = e[o], rr[o], ok[o]
        first = np.r_[True, ro[1:] != ro[:-1]]
        best = eo[first & oko]
        picked[best] = True
        br = road[best]
        mod_best = np.full(n_roads, -2, dtype=np.int64)
        mod_best[br] = sp.module[hit[best]]
        rank = _rank_in_group(ro)
        second = (rank == 1) & oko & (mod_best[ro] != -2) & (sp.module[hit[eo]] != mod_best[ro])
        sec = eo[second]
        picked[sec] = True
        for chosen in (best, sec):
            cr = road[chosen]
            last_hits[cr] = np.roll(last_hits[cr], -1, axis=1)
            last_hits[cr, -1] = hit[chosen]
            n_hit[cr] = np.minimum(n_hit[cr] + 1, k)
            n_picked[cr] += 1
        got = np.zeros(n_roads, dtype=bool)
        got[br] = True
        pre = np.zeros(n_roads, dtype=bool)
        pre[rr[s_along[e] < s_first[rr]]] = True
        missed[roads_here] = np.where(got[roads_here] | pre[roads_here], 0, missed[roads_here] + 1)
        alive &= missed <= cfg.max_missed
    # residuals of every element to the final fit of its road (its picks)
    final_t = np.full(m, 10.0)
    final_l = np.full(m, 10.0)
    if m:
        fit = _fit_rows(sp, det, last_hits)
        rt, rl, st, sl = _residuals_to_fit(sp, fit, road, hit, info)
        final_t = np.clip(np.nan_to_num(rt / st, nan=10.0), -1e3, 1e3)
        final_l = np.clip(np.nan_to_num(rl / sl, nan=10.0), -1e3, 1e3)
    return picked, score, final_t, final_l, n_picked


@njit(cache=True, error_model="numpy")
def _by_chi2_within_runs(group: np.ndarray, chi2: np.ndarray) -> np.ndarray:
    """``np.lexsort((chi2, group))`` for a sorted ``group``: each run ordered by chi2 (stable
    insertion sort; NaN last, as the lexsort)."""
    order = np.arange(len(group))
    start = 0
    for i in range(len(group)):
        if i > 0 and group[i] != group[i - 1]:
            start = i
        at = i
        while at > start and _after(chi2[order[at - 1]], chi2[i]):
            order[at] = order[at - 1]
            at -= 1
        order[at] = i
    return order


@njit(cache=True, error_model="numpy")
def _after(a: float, b: float) -> bool:
    """Whether a sorts after b (NaN after every number, NaNs in order)."""
    if a != a:
        return b == b
    return a > b


def _seed_curvature(
    sp: SpacePoints, det: Detector, fit: HelixFit, seed_hits: np.ndarray
) -> np.ndarray:
    """Each seed's curvature (1/mm) per tesla of bending field at its middle hit: the
    track's q / pT up to the magnetic constant, measured where the field is known."""
    mask = seed_hits >= 0
    h = np.where(mask, seed_hits, 0)
    mid = np.take_along_axis(h, (mask.sum(axis=1) // 2)[:, None], axis=1)[:, 0]
    cot = np.nan_to_num(fit.cot_theta)
    b = bending_bz(det.field, sp.x[mid], sp.y[mid], sp.z[mid], cot)
    return np.nan_to_num(fit.rho_per_mm) / np.where(np.abs(b) > 1e-3, b, 1e-3)


def _fit_rows(sp: SpacePoints, det: Detector, rows_hits: np.ndarray) -> HelixFit:
    """Helix fits of (R, k) hit rows (-1: none), each row's hits in any order."""
    mask = rows_hits >= 0
    h = np.where(mask, rows_hits, 0)
    last = np.take_along_axis(h, np.maximum(mask.sum(axis=1) - 1, 0)[:, None], axis=1)[:, 0]
    bz = det.field.bz_axis(sp.z[last])
    return _fit_points(sp, rows_hits, bz)


def _fit_points(sp: SpacePoints, rows_hits: np.ndarray, bz: np.ndarray) -> HelixFit:
    """:func:`hepml.reco.fit.fit_helix` of rows of space points (-1: none): resolution
    sigma_t across, :func:`_sigma_z` along."""
    sz = np.where(sp.disk, _DISK_COT * sp.sigma_l, sp.sigma_l)  # _sigma_z of every point
    return fit_helix_points(sp.x, sp.y, sp.z, sp.sigma_t, sz, rows_hits, bz)


def _residuals_to_fit(
    sp: SpacePoints, fit: HelixFit, fit_of: np.ndarray, c: np.ndarray, info: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Residuals (across, along) of points ``c`` to helices ``fit[fit_of]`` at the points'
    own radius (barrel) or z (disk), and their resolution."""
    rt, rl = _residuals_rows(
        *_fit_arrays(fit),
        np.asarray(fit_of, np.int64),
        np.asarray(c, np.int64),
        sp.disk,
        sp.r,
        sp.phi,
        sp.z,
    )
    return rt, rl, sp.sigma_t[c], sp.sigma_l[c]


def _fit_arrays(
    fit: HelixFit,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rho, phi0, d0, z0, cot theta, pT) of helix fits, for the compiled kernels."""
    c = np.ascontiguousarray
    return (
        c(fit.rho_per_mm, dtype=np.float64),
        c(fit.phi0, dtype=np.float64),
        c(fit.d0_mm, dtype=np.float64),
        c(fit.z0_mm, dtype=np.float64),
        c(fit.cot_theta, dtype=np.float64),
        c(fit.pt_GeV, dtype=np.float64),
    )


@njit(cache=True, error_model="numpy")
def _residual1(
    rho: float,
    phi0: float,
    d0: float,
    z0: float,
    cot: float,
    disk: bool,
    r: float,
    phi: float,
    z: float,
) -> tuple[float, float]:
    """Residuals (across, along) of a point (r, phi, z) to a helix at the point's own radius
    (barrel) or z (disk); 1e3 each where the helix does not get there."""
    if disk:
        x, y, _, ok = on_plane1(rho, phi0, d0, z0, cot, z)
        zb = 0.0
    else:
        x, y, zb, ok = on_cylinder1(rho, phi0, d0, z0, cot, r)
    if not ok:
        return 1e3, 1e3
    return _candidate_across1(r, phi, x, y), _candidate_along1(disk, r, z, x, y, zb)


@njit(cache=True, error_model="numpy")
def _residuals_rows(
    rho: np.ndarray,
    phi0: np.ndarray,
    d0: np.ndarray,
    z0: np.ndarray,
    cot: np.ndarray,
    pt: np.ndarray,
    fit_of: np.ndarray,
    c: np.ndarray,
    disk: np.ndarray,
    r: np.ndarray,
    phi: np.ndarray,
    z: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    rt, rl = np.empty(len(c)), np.empty(len(c))
    for i in range(len(c)):
        f, ci = fit_of[i], c[i]
        rt[i], rl[i] = _residual1(
            rho[f], phi0[f], d0[f], z0[f], cot[f], disk[ci], r[ci], phi[ci], z[ci]
        )
    return rt, rl


@njit(cache=True, error_model="numpy")
def _finite(v: float) -> float:
    """``np.nan_to_num`` of one number: NaN -> 0, +-inf -> the largest float."""
    if v != v:
        return 0.0
    if v == np.inf:
        return _FLOAT_MAX
    if v == -np.inf:
        return -_FLOAT_MAX
    return v


_FLOAT_MAX = float(np.finfo(np.float64).max)


@njit(cache=True, error_model="numpy")
def _field_corrected1(
    rho: float,
    phi0: float,
    d0: float,
    z0: float,
    cot_raw: float,
    last_x: float,
    last_y: float,
    last_z: float,
    s_last: float,
    cx: float,
    cy: float,
    cz: float,
    cr: float,
    cphi: float,
    cdisk: bool,
    rho_per_T: float,
    has_rho_per_T: bool,
    kind: int,
    bz_T: float,
    corners: np.ndarray,
    n_r: int,
    n_z: int,
    grid: float,
) -> tuple[float, float]:
    """Residuals (across, along) of a point c beyond its fit's last hit, predicted by a helix
    from the fit's point and direction at that hit whose curvature follows the field:
    rho B_mid / B_fit, B the bending field (:func:`hepml.detector.field.bending_bz`,
    B_z - cot(theta) B_r) at the last hit and at the middle of the extrapolation (beyond
    the solenoid's end B_z falls and B_r grows between strip disks); with ``rho_per_T``
    (the seed's curvature per tesla, measured in the solenoid's uniform core) rho_per_T B_mid."""
    cot = _finite(cot_raw)
    inv_sin = math.sqrt(1.0 + cot * cot)
    s_t = s_last / inv_sin
    x0, y0, zz0 = at_arc1(rho, phi0, d0, z0, cot_raw, s_t)
    ang = phi0 - rho * s_t
    st = 1.0 / inv_sin
    dx, dy, dz = math.cos(ang) * st, math.sin(ang) * st, cot * st
    b_mid = bending_bz1(
        0.5 * (x0 + cx), 0.5 * (y0 + cy), 0.5 * (zz0 + cz), cot, kind, bz_T, corners, n_r, n_z, grid
    )
    if has_rho_per_T:
        rho_c = rho_per_T * b_mid
    else:
        b_fit = bending_bz1(last_x, last_y, last_z, cot, kind, bz_T, corners, n_r, n_z, grid)
        rho_c = _finite(rho) * b_mid / np.maximum(b_fit, 1e-6)
    # omega per 3D path: rho (per transverse mm) * sin(theta), clockwise for rho > 0 -> omega < 0
    omega = -rho_c * st
    h = (cz - zz0) / dz if cdisk else _cylinder_path1(x0, y0, dx, dy, omega, cr)
    ok = np.isfinite(h) and h >= 0
    x, y, z, _, _ = helix_z1(x0, y0, zz0, dx, dy, dz, omega, h if ok else 0.0)
    if not ok:
        return 1e3, 1e3
    return _candidate_across1(cr, cphi, x, y), _candidate_along1(cdisk, cr, cz, x, y, z)


@njit(cache=True, error_model="numpy")
def _chi2_rows(
    rho: np.ndarray,
    phi0: np.ndarray,
    d0: np.ndarray,
    z0: np.ndarray,
    cot_raw: np.ndarray,
    pt: np.ndarray,
    fit_of: np.ndarray,
    c: np.ndarray,
    last_hits: np.ndarray,
    n_hit: np.ndarray,
    rho_per_T: np.ndarray,
    has_rho_per_T: bool,
    field_correction: bool,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    r: np.ndarray,
    phi: np.ndarray,
    disk: np.ndarray,
    surface: np.ndarray,
    sigma_t: np.ndarray,
    sigma_l: np.ndarray,
    x_over_x0: np.ndarray,
    kind: int,
    bz_T: float,
    corners: np.ndarray,
    n_r: int,
    n_z: int,
    grid: float,
) -> np.ndarray:
    """:func:`_chi2_to_fit` of every candidate (compiled)."""
    k = last_hits.shape[1]
    out = np.empty(len(c))
    s_h = np.empty(k)
    s_raw = np.empty(k)
    order = np.empty(k, np.int64)
    trio = (0, 0, 0)
    s_fit = (0.0, 0.0, 0.0)
    rho_f = phi_f = d0_f = z0_f = cot_f = cot = inv_sin = s_phi = c_phi = p_f = 0.0
    for i in range(len(c)):
        f, ci = fit_of[i], c[i]
        if i == 0 or f != fit_of[i - 1]:  # the fit's terms (candidates come by fit)
            rho_f, phi_f, d0_f, z0_f, cot_f = rho[f], phi0[f], d0[f], z0[f], cot_raw[f]
            cot = _finite(cot_f)
            inv_sin = math.sqrt(1.0 + cot * cot)
            s_phi, c_phi = math.sin(phi_f), math.cos(phi_f)
            p_f = pt[f] * math.sqrt(1.0 + cot_f * cot_f)
            p_f = 1.0 if p_f != p_f else _finite(p_f)
            p_f = np.minimum(np.maximum(p_f, 0.05), 1e4)
        st, sl = sigma_t[ci], sigma_l[ci]
        # the fit's hits by path (the same for the next candidates of this fit and hits)
        same = i > 0 and f == fit_of[i - 1] and n_hit[i] == n_hit[i - 1]
        for j in range(k):
            same = same and last_hits[i, j] == last_hits[i - 1, j]
        if not same:
            # signed 3D path of the fit's hits from the PCA
            for j in range(k):
                hj = last_hits[i, j]
                s_raw[j] = (
                    arc_length_sc(x[hj], y[hj], rho_f, s_phi, c_phi, d0_f) * inv_sin
                    if hj >= 0
                    else 0.0
                )
                s_h[j] = s_raw[j] if hj >= 0 and s_raw[j] == s_raw[j] else np.inf
                # stable insertion sort of the hits by path
                m = j
                while m > 0 and s_h[order[m - 1]] > s_h[j]:
                    order[m] = order[m - 1]
                    m -= 1
                order[m] = j
            n = max(n_hit[i], 1)
            i_first, i_mid, i_last = order[0], order[(n - 1) // 2], order[n - 1]
            trio = (
                max(last_hits[i, i_first], 0),
                max(last_hits[i, i_mid], 0),
                max(last_hits[i, i_last], 0),
            )
            # (NaN to number: absent hits at 0)
            s_fit = (_finite(s_raw[i_first]), _finite(s_raw[i_mid]), _finite(s_raw[i_last]))
        # and of the candidate
        s_c = arc_length_sc(x[ci], y[ci], rho_f, s_phi, c_phi, d0_f) * inv_sin
        lw = lagrange1(s_fit[0], s_fit[1], s_fit[2], s_c)
        beyond = s_c > s_fit[2]
        if beyond and field_correction:  # the prediction follows the field
            rt, rl = _field_corrected1(
                rho_f,
                phi_f,
                d0_f,
                z0_f,
                cot_f,
                x[trio[2]],
                y[trio[2]],
                z[trio[2]],
                s_fit[2],
                x[ci],
                y[ci],
                z[ci],
                r[ci],
                phi[ci],
                disk[ci],
                rho_per_T[i],
                has_rho_per_T,
                kind,
                bz_T,
                corners,
                n_r,
                n_z,
                grid,
            )
        else:  # the fitted helix at the point's own radius or z
            rt, rl = _residual1(rho_f, phi_f, d0_f, z0_f, cot_f, disk[ci], r[ci], phi[ci], z[ci])
        var_t = 0.0
        var_l = 0.0
        for j in range(3):
            e = lw[j] * sigma_t[trio[j]]
            var_t = e * e if j == 0 else var_t + e * e
            e = lw[j] * (
                _DISK_COT * sigma_l[trio[j]] if disk[trio[j]] else sigma_l[trio[j]]
            )  # _sigma_z
            var_l = e * e if j == 0 else var_l + e * e
        p = p_f
        # the kink nearest the candidate: at the last hit beyond the fitted range, the first before
        # it, and inside it (an overlap or a surface between fitted hits) the nearest fitted hit,
        # whose kink moves the fitted circle there by about theta0 times the distance
        near = 0
        for j in range(1, 3):
            if abs(s_fit[j] - s_c) < abs(s_fit[near] - s_c):
                near = j
        inside = s_c <= s_fit[2] and s_c >= s_fit[0]
        if beyond:
            end, lever = trio[2], s_c - s_fit[2]
        elif inside:
            end, lever = trio[near], abs(s_c - s_fit[near])
        else:
            end, lever = trio[0], np.maximum(s_fit[0] - s_c, 0.0)
        th = highland1(p, track_x01(x_over_x0[surface[end]], cot, False), 1.0, 1.0)
        ms = th * lever
        # a kink moves a disk hit along r by theta0 L / |cos theta|, a barrel hit along z by
        # theta0 L / sin theta
        cos_t = np.maximum(abs(cot) / inv_sin, 0.05)
        tan_t = 1.0 / np.maximum(abs(cot), 1e-3)
        if disk[ci]:
            e = ms / cos_t
            var_l = var_l * (tan_t * tan_t) + e * e
        else:
            e = ms * inv_sin
            var_l = var_l + e * e
        sig_t = math.sqrt(st * st + var_t + ms * ms)
        sig_l = math.sqrt(sl * sl + var_l)
        a, b = rt / sig_t, rl / sig_l
        chi2 = a * a + b * b
        out[i] = _BIG_CHI2 if n_hit[i] < 3 or not np.isfinite(chi2) else chi2
    return out


def _chi2_to_fit(
    sp: SpacePoints,
    fit: HelixFit,
    fit_of: np.ndarray,
    c: np.ndarray,
    info: Any,
    last_hits: np.ndarray,
    n_hit: np.ndarray,
    det_field: Field,
    rho_per_T: np.ndarray | None = None,
) -> np.ndarray:
    """chi2 of candidates ``c`` to their road's current helix: hit resolution, the fit's
    extrapolation error (three-point Lagrange weights of its first, middle and last hit
    along the path) and Highland scattering at its nearest end hit over the lever arm
    beyond the fitted range (inside it: at the nearest fitted hit, over the distance to it),
    in quadrature. Beyond the fitted range the prediction follows the field
    (:func:`_field_corrected1`)."""
    return _chi2_rows(
        *_fit_arrays(fit),
        np.asarray(fit_of, np.int64),
        np.asarray(c, np.int64),
        np.ascontiguousarray(last_hits, dtype=np.int64),
        np.asarray(n_hit, np.int64),
        np.zeros(len(c)) if rho_per_T is None else np.asarray(rho_per_T, np.float64),
        rho_per_T is not None,
        _FIELD_CORRECTION,
        sp.x,
        sp.y,
        sp.z,
        sp.r,
        sp.phi,
        sp.disk,
        sp.surface,
        sp.sigma_t,
        sp.sigma_l,
        info.x_over_x0,
        *field_arrays(det_field),
    )


# --------------------------------------------------------------------------- extension
def extend_tracks(
    sp: SpacePoints,
    det: Detector,
    track_id: np.ndarray,
    cfg: RoadConfig,
    ext: ExtensionConfig,
) -> np.ndarray:
    """Built tracks (``track_id`` (n,), 0: in no track) grown outwards by the points no
    track holds; the new ``track_id`` (n,).

    A road's window follows its *seed's* helix: where a soft track's seed mismeasured its
    curvature, the track's outer hits fall outside the windows, the road follower stops,
    and the track ends early (on own events the points beyond a found track's last hit
    and in no track were ~0.01 of a score of 1 per event). Each track's outer hits (its
    last three on three surfaces, by distance from the origin) are fitted, the helix is
    propagated from the first of them over ``ext.surfaces`` surfaces, and the points in
    no track within ``ext.n_sigma`` of the prediction beyond its last hit are walked by
    the road follower (:func:`follow`: the same chi2 cut, misses and local refit, now on
    a long lever arm). A point several tracks pick goes to the one with the smallest chi2.
    Points already in tracks are never moved."""
    track_id = np.asarray(track_id, dtype=np.int64)
    out = track_id.copy()
    idx = np.flatnonzero(track_id > 0)
    if ext.surfaces <= 0 or len(idx) == 0:
        return out
    # each track's points outwards, one per surface (the outermost), the last three
    dist = np.hypot(sp.r, sp.z)
    idx = idx[lexsort_fast((dist[idx], track_id[idx]))]
    t, sf = track_id[idx], sp.surface[idx]
    same = np.r_[(t[1:] == t[:-1]) & (sf[1:] == sf[:-1]), False]
    idx, t = idx[~same], t[~same]
    enough = np.bincount(t)[t] >= 3
    idx, t = idx[enough], t[enough]
    if len(idx) == 0:
        return out
    end = np.flatnonzero(np.r_[t[1:] != t[:-1], True])
    end = end[~_last_surfaces(det)[sp.surface[idx[end]]]]  # nothing lies beyond these
    tail = np.stack([idx[end - 2], idx[end - 1], idx[end]], axis=1)
    owner = t[end]
    seeds = Seeds(tail, tail.copy(), np.zeros(len(tail)))
    free = track_id == 0
    pr, _ = _predict(sp, det, seeds, cfg, max_surfaces=ext.surfaces, backoff_mm=0.0)
    cand = _gather(
        sp,
        pr,
        tail,
        replace(cfg, n_sigma=ext.n_sigma),
        allowed=free,
    )
    beyond = pr.pts.s[cand.q] > pr.s_fit[pr.pts.track[cand.q], 2] + 1.0
    # roads of the tails: their three hits, then the free candidates, by path length
    ptr, elem_hit, elem_s, is_seed, _ = _road_elements(
        pr, tail, cand.q[beyond], cand.c[beyond], cand.chi2[beyond]
    )
    elem_road = np.repeat(np.arange(len(tail)), np.diff(ptr))
    picked, score, *_ = follow(
        sp, det, ptr, elem_hit, is_seed, elem_s, cfg, _seed_curvature(sp, det, pr.fit, tail)
    )
    e = np.flatnonzero(picked & ~is_seed)
    if len(e):
        e = e[lexsort_fast((-score[e], elem_hit[e]))]  # per point, the smallest chi2 first
        e = e[np.r_[True, elem_hit[e][1:] != elem_hit[e][:-1]]]
        out[elem_hit[e]] = owner[elem_road[e]]
    return out


def _last_surfaces(det: Detector) -> np.ndarray:
    """(n_surfaces,) bool: the surfaces a track leaves the tracker from (cached on the
    detector): the outermost barrel layer, and every disk with no disk further out in z
    on its side that overlaps it in r."""
    cached = det.__dict__.get("_last_surfaces")
    if cached is None:
        sf = det.surfaces
        barrel = np.array([v.is_barrel for v in sf])
        r_lo = np.array([v.r_min_mm for v in sf])
        r_hi = np.array([v.r_max_mm for v in sf])
        zc = np.array([0.5 * (v.z_min_mm + v.z_max_mm) for v in sf])
        further = (
            ~barrel[:, None]
            & ~barrel[None, :]
            & (np.sign(zc)[:, None] == np.sign(zc)[None, :])
            & (np.abs(zc)[None, :] > np.abs(zc)[:, None])
            & (r_hi[None, :] > r_lo[:, None])
            & (r_lo[None, :] < r_hi[:, None])
        )
        cached = ~barrel & ~further.any(axis=1)
        if barrel.any():
            cached[np.flatnonzero(barrel)[np.argmax(r_lo[barrel])]] = True
        det.__dict__["_last_surfaces"] = cached
    return cached


# --------------------------------------------------------------------------- selection
def select_roads(roads: Roads, cfg: RoadConfig) -> Roads:
    """Drop roads whose follower found fewer than ``min_picked`` hits beyond the seed, then
    (``min_won_fraction`` > 0) resolve ambiguities between the followers' tracks."""
    rid = roads.road_of_element
    beyond = np.bincount(
        rid, weights=(roads.picked & ~roads.is_seed).astype(float), minlength=len(roads)
    )
    keep = beyond >= cfg.min_picked
    if cfg.min_won_fraction > 0 and keep.any():
        keep &= _won_fraction(roads, keep) >= cfg.min_won_fraction
    return roads.take(np.flatnonzero(keep))


def _won_fraction(roads: Roads, alive: np.ndarray) -> np.ndarray:
    """Fraction of each road's picks it wins against the other live roads' (most picks,
    then the smallest mean chi2, win a shared hit)."""
    rid = roads.road_of_element
    n = len(roads)
    sel = roads.picked & alive[rid]
    npk = np.bincount(rid[sel], minlength=n)
    chi = np.bincount(rid[sel], weights=-roads.follower_score[sel].astype(float), minlength=n)
    mean = chi / np.maximum(npk, 1)
    e = np.flatnonzero(sel)
    h = roads.hit[e]
    r = rid[e]
    o = lexsort_fast((mean[r], -npk[r], h))
    first = np.r_[True, h[o][1:] != h[o][:-1]]
    won = np.bincount(r[o][first], minlength=n)
    return np.where(npk > 0, won / np.maximum(npk, 1), 0.0)
