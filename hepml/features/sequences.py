"""The ghost-filter data contract: variable-length hit sequences of track candidates, written once.

Used by building (:func:`hepml.tasks.ghost_filter.build`), training, evaluation
and the real-TrackML evaluation alike; a dataset file carries
:data:`CONTRACT_VERSION` and the feature names, and :func:`load_datasets`
refuses files of another contract. Models take their input sizes from
:data:`N_HIT_FEATURES` and :data:`N_TRACK_FEATURES`.

**Candidates.** A track candidate is what the road follower picked in one road
(:class:`hepml.reco.roads.Roads`: ``picked`` elements of road ``i``, the seed's
hits included), taken *before* the roads' ``min_picked`` cut and ambiguity
resolution (:func:`candidates_from_roads`), so the fake seeds' roads and the
duplicates stay. Its hits form one sequence **ordered by path length** along
the seed helix (``Roads.s``), barrel layers and disks alike; two hits on one
surface (overlapping modules) are both kept. Sequences are stored flat (CSR):
candidate ``i`` is hit rows ``ptr[i]:ptr[i+1]``, ``ptr = [0, cumsum(lengths)]``.

**Helix fit** (:func:`fit_candidates`): a two-pass resolution-weighted helix fit
of each candidate's hits (:func:`hepml.reco.fit.fit_helix`: Karimaki circle and
s-z line; field B_z on the axis at the hits' mean z). Pass 1 weighs each hit by
its pitch/sqrt(12) (across: ``sigma_t``; along: ``sigma_l`` on barrel layers,
and on disks, where z is exact and the s-z residual comes from r, 4 sigma_l);
pass 2 adds multiple scattering for pass 1's momentum,

    sigma_MS,i^2 = sum_{j<i} theta0_j^2 (s_i - s_j)^2,

theta0_j the Highland width (:func:`hepml.detector.scattering.highland_theta0`,
beta = 1) of hit j's module material at incidence sin(theta) (barrel) or
|cos(theta)| (disk), s the 3D path from the PCA: across it adds to sigma_t,
along to sigma_l / sin(theta) on barrel layers, and on disks the r displacement
sigma_MS / |cos(theta)| times |cot(theta)| becomes the z residual of the s-z line
(a diagonal approximation, as in the seeding windows). chi2/ndf (ndf = 2n - 5)
of pass 2 is the chi2 baseline's score.

**Per hit** (:data:`HIT_FEATURES`, float32, fixed scales, no fitted standardisation):

================  ==================================================================  ====================
name              definition                                                          normalisation
================  ==================================================================  ====================
r                 hit radius (mm)                                                     / 1000
phi               hit azimuth minus the fit's phi0 (rad)                              wrapped, / 1
z                 hit z (mm)                                                          / 3000
pull_t            residual across the track (r*phi, circle) / its fit sigma           clipped +-10, / 3
pull_l            residual of the s-z line (z) / its fit sigma                        clipped +-10, / 3
res_t             residual across (mm): the local u residual                          asinh(res / 0.02) / 5
res_l             s-z residual (mm): the local v residual on barrel layers            asinh(res / 0.1) / 5
disk              1 on an endcap disk, 0 on a barrel layer
region            0 pixels, 0.5 short strips, 1 long strips (by TrackML volume)
s                 path length along the seed helix from the PCA (mm)                  / 3000
d_s               path step from the previous hit (mm; 0 for the first)               / 300
same_surface      1 if the previous hit is on the same surface (an overlap)
follow_chi2       chi2 of the hit to the road follower's running prediction           log1p / 5 (0 on seed hits)
is_seed           1 for the seed's hits
================  ==================================================================  ====================

**Per candidate** (:data:`TRACK_FEATURES`), from the fit and the sequence:
``log10_pt`` (clipped to [-1, 2]), ``q`` (+-1), ``d0`` (asinh(d0 / 0.1 mm) / 3),
``z0`` (z0 / 100 mm), ``eta`` (asinh cot theta, clipped +-5, / 2),
``log_chi2_ndf`` (log(1 + chi2/ndf), clipped to 10), ``ndf`` (/ 30), ``n_hits``
(/ 20), ``n_surfaces`` (distinct surfaces / 20), ``n_overlaps`` (hits on a
surface the candidate already has / 5), ``n_skipped`` (road surfaces between the
first and last hit where the road had points but the follower picked none / 5),
``shared_fraction`` (fraction of the hits also in another candidate of the
event), ``max_pull_t``, ``max_pull_l`` (log(1 + max |pull|)),
``mean_follow_chi2`` (log1p of the mean follower chi2 of the non-seed hits / 5),
``r_first``, ``r_last`` (/ 1000 mm), ``z_last`` (|z| / 3000 mm), ``disk_fraction``,
``strip_fraction``. The gradient-boosted baseline uses these same track
features; the chi2 baseline the raw ``chi2_ndf``.

**Dataset file** (``.npz``, :func:`save_dataset`; M hits, N candidates, E events, P particles):

* ``hit_features`` (M, F_hit) float32, ``hit_ids`` (M,) int64 (the TrackML
  ``hit_id`` of each sequence entry), ``lengths`` (N,) int64 (>= 3),
  ``track_features`` (N, F_track) float32, ``event_id`` (N,) int64: the model
  inputs, each traceable to its hits;
* ``label`` (N,) float32: 1 true track, 0 ghost (:func:`hepml.reco.matching.match_tracks`:
  true when at least ``min_purity`` of its hits come from one particle, LHCb's
  0.7); ``is_clone`` (N,) bool: a true candidate of a particle that has a better
  one (higher purity, then more hits) in the event. **Duplicates count as true
  tracks** (label 1): they are real particles' tracks, and removing them is the
  ambiguity resolution's job, not the ghost filter's; ``purity`` (N,) float32;
  ``particle_id`` (N,) int64 (majority particle, 0 when none);
* ``particle_pt_GeV``, ``particle_eta`` (N,) float32: truth of the majority
  particle (NaN when none, or on data without truth), and ``pt_GeV``, ``eta``,
  ``chi2_ndf``, ``d0_mm``, ``z0_mm`` (N,) float32 from the fit;
* ``events`` (E,) int64: every event of the shard, even one without candidates;
* ``particles_event_id``, ``particles_id`` (P,) int64, ``particles_pt_GeV``,
  ``particles_eta`` (P,) float32, ``particles_n_hits`` (P,) int64: every
  particle of those events (the efficiency denominator);
* ``hit_feature_names``, ``track_feature_names`` (str arrays), ``contract_version``.

**Tensors** (:func:`to_tensor_data`): ``hits`` (N, L, F_hit) float32,
left-aligned and zero-padded to L = the longest sequence, ``lengths`` (N,)
int64, ``track`` (N, F_track) -> target ``label``; the model packs the
sequences (``pack_padded_sequence``), so padding never enters the recurrence.

A shard without events or without candidates is written as a valid dataset with
N = 0 (and a note on stderr); training or evaluating on no candidates at all is
an error naming the files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hepml.detector.scattering import highland_theta0
from hepml.errors import HepmlError
from hepml.features.roads import REGION
from hepml.io import atomic_output, check_finite_arrays, check_input_file
from hepml.reco.fit import HelixFit, arc_length, fit_helix, residuals
from hepml.reco.spacepoints import wrap_phi

if TYPE_CHECKING:
    from hepml.detector import Detector
    from hepml.reco.roads import Roads
    from hepml.reco.spacepoints import SpacePoints
    from hepml.train import TensorData

CONTRACT_VERSION = 2

HIT_FEATURES: tuple[str, ...] = (
    "r",
    "phi",
    "z",
    "pull_t",
    "pull_l",
    "res_t",
    "res_l",
    "disk",
    "region",
    "s",
    "d_s",
    "same_surface",
    "follow_chi2",
    "is_seed",
)
TRACK_FEATURES: tuple[str, ...] = (
    "log10_pt",
    "q",
    "d0",
    "z0",
    "eta",
    "log_chi2_ndf",
    "ndf",
    "n_hits",
    "n_surfaces",
    "n_overlaps",
    "n_skipped",
    "shared_fraction",
    "max_pull_t",
    "max_pull_l",
    "mean_follow_chi2",
    "r_first",
    "r_last",
    "z_last",
    "disk_fraction",
    "strip_fraction",
)
N_HIT_FEATURES = len(HIT_FEATURES)
N_TRACK_FEATURES = len(TRACK_FEATURES)
HIT_COL = {name: i for i, name in enumerate(HIT_FEATURES)}
TRACK_COL = {name: i for i, name in enumerate(TRACK_FEATURES)}
#: fewest hits of a candidate: the seed's three
MIN_LENGTH = 3

#: per-hit arrays of a dataset file: name -> dtype
HIT_ARRAYS: dict[str, str] = {"hit_features": "float32", "hit_ids": "int64"}
#: per-candidate arrays
CANDIDATE_ARRAYS: dict[str, str] = {
    "lengths": "int64",
    "track_features": "float32",
    "event_id": "int64",
    "label": "float32",
    "is_clone": "bool",
    "purity": "float32",
    "particle_id": "int64",
    "particle_pt_GeV": "float32",
    "particle_eta": "float32",
    "pt_GeV": "float32",
    "eta": "float32",
    "chi2_ndf": "float32",
    "d0_mm": "float32",
    "z0_mm": "float32",
}
#: per-particle arrays (the efficiency denominator)
PARTICLE_ARRAYS: dict[str, str] = {
    "particles_event_id": "int64",
    "particles_id": "int64",
    "particles_pt_GeV": "float32",
    "particles_eta": "float32",
    "particles_n_hits": "int64",
}
_ALL_ARRAYS = {**HIT_ARRAYS, **CANDIDATE_ARRAYS, **PARTICLE_ARRAYS, "events": "int64"}


def _clip(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.nan_to_num(a, nan=0.0, posinf=hi, neginf=lo), lo, hi)


def ptr_of(lengths: np.ndarray) -> np.ndarray:
    """CSR pointer ``[0, cumsum(lengths)]`` (int64)."""
    return np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))]).astype(np.int64)


def pad(ptr: np.ndarray, values: np.ndarray, fill: float | int | bool = 0) -> np.ndarray:
    """Flat per-hit ``values`` (M, ...) -> (N, L, ...) left-aligned, ``fill`` padded (L = longest)."""
    lengths = np.diff(ptr)
    width = int(lengths.max()) if len(lengths) else 0
    out = np.full((len(lengths), width, *values.shape[1:]), fill, dtype=values.dtype)
    pos = np.arange(len(values)) - np.repeat(ptr[:-1], lengths)
    out[np.repeat(np.arange(len(lengths)), lengths), pos] = values
    return out


# --------------------------------------------------------------------------- candidates
@dataclass
class Candidates:
    """Track candidates of one event, flat (CSR): candidate ``i`` is ``ptr[i]:ptr[i+1]``.

    Per hit (M,): ``hit`` (space-point row), ``surface``, ``s`` (path length, mm),
    ``is_seed``, ``follow_chi2`` (the follower's chi2; 0 on seed hits). Per
    candidate (N,): ``road`` (its road in the :class:`~hepml.reco.roads.Roads`),
    ``n_skipped`` (road surfaces between its first and last hit with points
    but no pick).
    """

    ptr: np.ndarray
    hit: np.ndarray
    surface: np.ndarray
    s: np.ndarray
    is_seed: np.ndarray
    follow_chi2: np.ndarray
    road: np.ndarray
    n_skipped: np.ndarray

    def __len__(self) -> int:
        return len(self.ptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.ptr)

    @property
    def of_hit(self) -> np.ndarray:
        """Candidate of every hit (M,)."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)


def candidates_from_roads(roads: Roads, min_hits: int = MIN_LENGTH) -> Candidates:
    """Each road's follower picks (seed hits included), in path order, as one candidate;
    roads with fewer than ``min_hits`` picks are left out. A hit a road holds twice (a
    looper crossing a surface again) counts once."""
    rid = roads.road_of_element
    sel = np.flatnonzero(roads.picked)
    # a hit picked twice by one road: keep its first element
    key = rid[sel] * (int(roads.hit.max(initial=0)) + 1) + roads.hit[sel]
    _, first = np.unique(key, return_index=True)
    sel = np.sort(sel[first])
    n_pick = np.bincount(rid[sel], minlength=len(roads))
    keep = n_pick >= max(int(min_hits), MIN_LENGTH)
    sel = sel[keep[rid[sel]]]
    # elements are in (road, path) order already; sort stably to be sure
    sel = sel[np.lexsort((roads.s[sel], rid[sel]))]
    cand_road = np.flatnonzero(keep)
    lengths = n_pick[cand_road]
    ptr = ptr_of(lengths)
    # surfaces with road points but no pick, strictly between the first and last pick
    s_lo = np.full(len(roads), np.inf)
    s_hi = np.full(len(roads), -np.inf)
    np.minimum.at(s_lo, rid[sel], roads.s[sel])
    np.maximum.at(s_hi, rid[sel], roads.s[sel])
    inside = (roads.s > s_lo[rid]) & (roads.s < s_hi[rid]) & keep[rid]
    n_surf = int(roads.surface.max(initial=0)) + 1
    road_surf = rid.astype(np.int64) * n_surf + roads.surface
    picked_surf = np.unique(road_surf[sel])
    in_road = np.unique(road_surf[inside])
    skipped = in_road[~np.isin(in_road, picked_surf)]
    n_skipped = np.bincount(skipped // n_surf, minlength=len(roads))[cand_road]
    return Candidates(
        ptr=ptr,
        hit=roads.hit[sel].astype(np.int64),
        surface=roads.surface[sel].astype(np.int64),
        s=roads.s[sel].astype(np.float64),
        is_seed=roads.is_seed[sel].astype(bool),
        follow_chi2=np.where(
            roads.is_seed[sel], 0.0, -roads.follower_score[sel].astype(np.float64)
        ),
        road=cand_road.astype(np.int64),
        n_skipped=n_skipped.astype(np.int64),
    )


# --------------------------------------------------------------------------- fit
@dataclass
class CandidateFit:
    """The final helix fit of each candidate and, per hit (M,), its residuals (mm) and
    the sigmas (mm) the fit used: ``res_t``/``sigma_t`` across (circle), ``res_l``/``sigma_l``
    of the s-z line."""

    fit: HelixFit
    res_t: np.ndarray
    res_l: np.ndarray
    sigma_t: np.ndarray
    sigma_l: np.ndarray


def _module_x0(sp: SpacePoints, det: Detector, rows: np.ndarray) -> np.ndarray:
    """x/X0 at normal incidence of the modules of space points ``rows`` (the surface's
    first module where the module id is unknown)."""
    first = np.array([s.first for s in det.surfaces], dtype=np.int64)
    mod = sp.module[rows]
    stand_in = first[np.maximum(sp.surface[rows], 0)]
    return det.x_over_x0[np.where(mod >= 0, mod, stand_in)]


def fit_candidates(sp: SpacePoints, det: Detector, cand: Candidates) -> CandidateFit:
    """Two-pass helix fit of every candidate (pitch, then pitch and multiple scattering;
    see the module docstring)."""
    ptr = cand.ptr
    rows = pad(ptr, cand.hit, fill=-1)
    if rows.shape[1] == 0:  # no candidates
        rows = np.full((len(cand), MIN_LENGTH), -1, dtype=np.int64)
    mask = rows >= 0
    h = np.where(mask, rows, 0)
    x, y, z = sp.x[h], sp.y[h], sp.z[h]
    disk = sp.disk[h]
    st0, sl0 = sp.sigma_t[h], sp.sigma_l[h]
    n = np.maximum(mask.sum(axis=1), 1)
    bz = det.field.bz_axis(np.where(mask, z, 0.0).sum(axis=1) / n)
    with np.errstate(all="ignore"):
        f1 = fit_helix(x, y, z, mask, bz, st0, np.where(disk, 4.0 * sl0, sl0))
        cot = np.nan_to_num(f1.cot_theta)[:, None]
        inv_sin = np.sqrt(1.0 + cot * cot)
        sin_t = 1.0 / inv_sin
        cos_t = np.maximum(np.abs(cot) * sin_t, 0.05)
        p = np.clip(np.nan_to_num(f1.p_GeV, nan=1.0, posinf=1e4), 0.05, 1e4)[:, None]
        s3 = (
            np.nan_to_num(
                arc_length(x, y, f1.rho_per_mm[:, None], f1.phi0[:, None], f1.d0_mm[:, None])
            )
            * inv_sin
        )
        s3 = np.where(mask, s3, 0.0)
        inc = np.where(disk, cos_t, np.maximum(sin_t, 0.05))
        th2 = np.where(mask, highland_theta0(p, _module_x0(sp, det, h) / inc, beta=1.0) ** 2, 0.0)
        # sum_{j<i} th_j^2 (s_i - s_j)^2 = s_i^2 C0 - 2 s_i C1 + C2 over the hits before i
        c0 = np.cumsum(th2, axis=1) - th2
        c1 = np.cumsum(th2 * s3, axis=1) - th2 * s3
        c2 = np.cumsum(th2 * s3 * s3, axis=1) - th2 * s3 * s3
        ms2 = np.maximum(s3 * s3 * c0 - 2.0 * s3 * c1 + c2, 0.0)
        sig_t = np.sqrt(st0 * st0 + ms2)
        sig_l = np.where(
            disk,
            np.maximum(np.abs(cot), 0.05) * np.sqrt(sl0 * sl0 + ms2 / (cos_t * cos_t)),
            np.sqrt(sl0 * sl0 + ms2 / (sin_t * sin_t)),
        )
        fit = fit_helix(x, y, z, mask, bz, sig_t, sig_l)
        e_t, e_l, _ = residuals(fit, x, y, z)
    return CandidateFit(
        fit=fit,
        res_t=np.nan_to_num(e_t[mask], nan=1e3),
        res_l=np.nan_to_num(e_l[mask], nan=1e3),
        sigma_t=sig_t[mask],
        sigma_l=sig_l[mask],
    )


# --------------------------------------------------------------------------- features
def candidate_features(
    sp: SpacePoints, det: Detector, cand: Candidates, cf: CandidateFit
) -> dict[str, np.ndarray]:
    """``hit_features`` (M, F_hit) and ``track_features`` (N, F_track) float32 of one
    event's candidates (module docstring)."""
    fit = cf.fit
    ptr = cand.ptr
    of = cand.of_hit
    n = len(cand)
    lengths = cand.lengths
    first = np.r_[True, of[1:] != of[:-1]] if len(of) else np.zeros(0, bool)
    prev = np.maximum(np.arange(len(of)) - 1, 0)
    hx, hy, hz = sp.x[cand.hit], sp.y[cand.hit], sp.z[cand.hit]
    r = np.hypot(hx, hy)
    phi = np.arctan2(hy, hx)
    disk = sp.disk[cand.hit]
    vols = np.array([s.volume_id for s in det.surfaces], dtype=np.int64)
    vol = vols[np.maximum(sp.surface[cand.hit], 0)]
    region = np.zeros(len(vol))
    for v, val in REGION.items():
        region[vol == v] = val
    with np.errstate(all="ignore"):
        pull_t = _clip(cf.res_t / cf.sigma_t, -10, 10)
        pull_l = _clip(cf.res_l / cf.sigma_l, -10, 10)
    same = ~first & (cand.surface == cand.surface[prev])
    d_s = np.where(first, 0.0, cand.s - cand.s[prev])
    phi0 = np.nan_to_num(fit.phi0)[of]
    hit_f = np.stack(
        [
            r / 1000.0,
            wrap_phi(phi - phi0),
            hz / 3000.0,
            pull_t / 3.0,
            pull_l / 3.0,
            np.arcsinh(_clip(cf.res_t, -1e3, 1e3) / 0.02) / 5.0,
            np.arcsinh(_clip(cf.res_l, -1e4, 1e4) / 0.1) / 5.0,
            disk.astype(np.float64),
            region,
            cand.s / 3000.0,
            d_s / 300.0,
            same.astype(np.float64),
            np.log1p(np.maximum(cand.follow_chi2, 0.0)) / 5.0,
            cand.is_seed.astype(np.float64),
        ],
        axis=-1,
    )
    hit_f = _clip(hit_f, -50.0, 50.0).astype(np.float32)

    def per_cand(v: np.ndarray) -> np.ndarray:
        return np.bincount(of, weights=v.astype(np.float64), minlength=n)

    def cand_max(v: np.ndarray) -> np.ndarray:
        out = np.zeros(n)
        if len(v):
            np.maximum.at(out, of, v)
        return out

    # distinct surfaces and overlaps (a surface already in the candidate)
    n_surf = int(cand.surface.max(initial=0)) + 1
    key = of * n_surf + cand.surface
    n_distinct = np.bincount(np.unique(key) // n_surf, minlength=n) if len(key) else np.zeros(n)
    # hits also in another candidate of the event
    uniq, counts = np.unique(cand.hit, return_counts=True)
    shared = counts[np.searchsorted(uniq, cand.hit)] > 1 if len(uniq) else np.zeros(0, bool)
    not_seed = ~cand.is_seed
    n_follow = per_cand(not_seed)
    mean_fchi2 = per_cand(np.where(not_seed, cand.follow_chi2, 0.0)) / np.maximum(n_follow, 1)
    last = np.maximum(ptr[1:] - 1, 0)
    ln = np.maximum(lengths, 1).astype(np.float64)
    track_f = np.stack(
        [
            _clip(np.log10(np.maximum(np.nan_to_num(fit.pt_GeV, nan=1e-3), 1e-3)), -1.0, 2.0),
            fit.q.astype(np.float64),
            np.arcsinh(_clip(fit.d0_mm, -1e3, 1e3) / 0.1) / 3.0,
            _clip(fit.z0_mm, -1e4, 1e4) / 100.0,
            _clip(np.arcsinh(np.nan_to_num(fit.cot_theta)), -5.0, 5.0) / 2.0,
            _clip(np.log1p(np.maximum(np.nan_to_num(fit.chi2_ndf, nan=1e4), 0.0)), 0.0, 10.0),
            fit.ndf / 30.0,
            lengths / 20.0,
            n_distinct / 20.0,
            (lengths - n_distinct) / 5.0,
            cand.n_skipped / 5.0,
            per_cand(shared) / ln,
            np.log1p(cand_max(np.abs(pull_t))),
            np.log1p(cand_max(np.abs(pull_l))),
            np.log1p(mean_fchi2) / 5.0,
            r[ptr[:-1]] / 1000.0 if n else np.zeros(0),
            r[last] / 1000.0 if n else np.zeros(0),
            np.abs(hz[last]) / 3000.0 if n else np.zeros(0),
            per_cand(disk) / ln,
            per_cand(region > 0) / ln,
        ],
        axis=-1,
    )
    return {
        "hit_features": hit_f,
        "track_features": _clip(track_f, -50.0, 50.0).astype(np.float32),
    }


# --------------------------------------------------------------------------- files
def empty_dataset() -> dict[str, np.ndarray]:
    """A dataset with no candidates, no events and no particles (valid, N = 0)."""
    shapes = {"hit_features": (0, N_HIT_FEATURES), "track_features": (0, N_TRACK_FEATURES)}
    return {k: np.zeros(shapes.get(k, (0,)), dtype=dt) for k, dt in _ALL_ARRAYS.items()}


def concat_datasets(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate datasets (of events, or of shards) along their first axes."""
    if not parts:
        return empty_dataset()
    return {k: np.concatenate([p[k] for p in parts]) for k in _ALL_ARRAYS}


def _check(data: dict[str, np.ndarray], where: str) -> None:
    n = len(data["lengths"])
    for k in CANDIDATE_ARRAYS:
        if len(data[k]) != n:
            raise ValueError(f"{where}: array '{k}' has {len(data[k])} rows, lengths has {n}")
    m = int(np.asarray(data["lengths"]).sum())
    for k in HIT_ARRAYS:
        if len(data[k]) != m:
            raise ValueError(
                f"{where}: array '{k}' has {len(data[k])} rows, the sequences {m} hits"
            )


def save_dataset(path: str | Path, data: dict[str, np.ndarray]) -> None:
    """Write a dataset ``.npz`` atomically, with the contract's names and version."""
    out = {k: np.asarray(data[k]).astype(dt, copy=False) for k, dt in _ALL_ARRAYS.items()}
    _check(out, str(path))
    out["hit_feature_names"] = np.array(HIT_FEATURES)
    out["track_feature_names"] = np.array(TRACK_FEATURES)
    out["contract_version"] = np.array(CONTRACT_VERSION)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **out)  # type: ignore[arg-type]


def load_dataset(path: str | Path) -> dict[str, np.ndarray]:
    """Read one dataset file; a file of another contract or a damaged one is a HepmlError."""
    path = check_input_file(path, "dataset file")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except Exception as exc:
        raise HepmlError(
            f"'{path}' is not a readable dataset file ({type(exc).__name__})"
        ) from None
    version = int(data["contract_version"]) if "contract_version" in data else -1
    if version != CONTRACT_VERSION:
        raise HepmlError(
            f"'{path}': ghost-filter contract version {version}, expected {CONTRACT_VERSION}; rebuild it"
        )
    if (
        tuple(data.get("hit_feature_names", ())) != HIT_FEATURES
        or tuple(data.get("track_feature_names", ())) != TRACK_FEATURES
    ):
        raise HepmlError(
            f"'{path}': feature names differ from hepml.features.sequences; rebuild it"
        )
    missing = [k for k in _ALL_ARRAYS if k not in data]
    if missing:
        raise HepmlError(f"'{path}' lacks array '{missing[0]}'")
    try:
        _check(data, str(path))
    except ValueError as exc:
        raise HepmlError(str(exc)) from None
    check_finite_arrays(data, ("hit_features", "track_features"), path)
    return data


def load_datasets(paths: Sequence[str | Path]) -> dict[str, np.ndarray]:
    """Read and concatenate several dataset files."""
    return concat_datasets([load_dataset(p) for p in paths])


def to_tensor_data(data: dict[str, np.ndarray]) -> TensorData:
    """The model inputs and target of a dataset: ``hits`` (N, L, F_hit), ``lengths``,
    ``track`` -> ``label`` (L the longest sequence; zero padding)."""
    import torch

    from hepml.train import TensorData

    ptr = ptr_of(data["lengths"])
    hits = pad(ptr, np.ascontiguousarray(data["hit_features"], dtype=np.float32))
    return TensorData(
        inputs={
            "hits": torch.from_numpy(hits),
            "lengths": torch.from_numpy(np.ascontiguousarray(data["lengths"], dtype=np.int64)),
            "track": torch.from_numpy(
                np.ascontiguousarray(data["track_features"], dtype=np.float32)
            ),
        },
        target=torch.from_numpy(np.ascontiguousarray(data["label"], dtype=np.float32)),
    )
