"""Track following: seeds extended outwards layer by layer into track candidates.

A combinatorial track follower (in the spirit of the combinatorial Kalman filter
of ATLAS/CMS, with a global helix refit in place of the Kalman update):

1. every seed starts one *branch*; at each layer outside the seed, every branch is
   refitted (:func:`hepml.reco.fit.fit_candidates`: Karimaki circle + s-z line
   with pitch and multiple-scattering resolutions) and its helix intersected
   with the layer's cylinder (:func:`hepml.reco.fit.predict_on_cylinder`);
2. hits inside a window of ``window_nsigma`` times the predicted spread
   sigma^2 = sigma_meas^2 + sigma_MS^2 (floored at ``window_rphi_min_mm`` /
   ``window_z_min_mm``) are looked up in a :class:`~hepml.reco.seeding.PhiZIndex`
   and ranked by chi2 increment (r*phi and z residuals over sigma); the best
   ``max_branches`` each make a new branch; a branch with no hit in the window
   records a hole and stops after ``max_holes`` holes; a branch whose helix leaves
   the layer's length skips that layer (no hole) and one that no longer reaches its
   radius stops;
3. after each layer only the ``max_candidates_per_seed`` best branches of a seed
   survive (lowest chi2 sum, a hole costing ``window_nsigma^2``);
4. of the finished branches of a seed the best (most hits, then lowest chi2)
   becomes a candidate if it has at least ``min_hits`` hits; identical hit sets
   are merged and, in order of quality (hits, then chi2/ndf), a candidate is
   dropped when more than ``max_shared_fraction`` of its hits belong to a
   candidate kept before it (ambiguity resolution);
5. each candidate gets a final two-pass helix fit (pT, d0, z0, chi2/ndf).

All branches of the event advance together (NumPy arrays over branches); the
only Python loop is over layers, plus one short loop over candidates for the
ambiguity resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepml.config import from_section
from hepml.detector.layers import TrackerGeometry
from hepml.reco.fit import HelixFit, LayerResolution, fit_candidates, fit_helix, predict_on_cylinder
from hepml.reco.seeding import PhiZIndex, SeedingConfig, find_seeds, wrap_phi


@dataclass(frozen=True)
class FollowingConfig:
    """Settings of the track follower (``ghost_filter.following``). Units: mm."""

    window_nsigma: float = 5.0
    window_rphi_min_mm: float = 0.3
    window_z_min_mm: float = 1.0
    max_branches: int = 2
    max_candidates_per_seed: int = 3
    max_holes: int = 1
    min_hits: int = 7
    max_shared_fraction: float = 0.5

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> FollowingConfig:
        """From the validated config's ``ghost_filter.following`` section."""
        return from_section(cls, cfg["ghost_filter"]["following"])


@dataclass
class Candidates:
    """Track candidates of one event.

    Attributes:
        hits: (N, n_layers) int64 row numbers into the event's hit arrays, column =
            global layer, -1 where the candidate has no hit.
        seed: (N,) row of the seed in the ``find_seeds`` output it grew from.
        n_holes: (N,) layers without a hit between the candidate's first and last hit.
        fit: the final helix fit of each candidate.
    """

    hits: np.ndarray
    seed: np.ndarray
    n_holes: np.ndarray
    fit: HelixFit

    def __len__(self) -> int:
        return len(self.seed)

    @property
    def n_hits(self) -> np.ndarray:
        return (self.hits >= 0).sum(axis=1)


def _top_k_per_group(group: np.ndarray, cost: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` lowest ``cost`` entries of every group (ties: first)."""
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((cost, group))
    g = group[order]
    start = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    rank = np.arange(len(g)) - np.repeat(start, np.diff(np.r_[start, len(g)]))
    return order[rank < k]


def _coords(
    hits: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    safe = np.maximum(hits, 0)
    lay = np.where(hits >= 0, np.arange(hits.shape[1])[None, :], -1)
    return x[safe], y[safe], z[safe], lay


def follow_seeds(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    layer: np.ndarray,
    seeds: np.ndarray,
    geometry: TrackerGeometry,
    cfg: FollowingConfig,
) -> Candidates:
    """Extend ``seeds`` ((S, 3) hit rows from :func:`find_seeds`) into candidates.

    ``x, y, z`` (mm), ``layer`` (global layer, -1 outside the barrel): (n,) hits of
    one event. Returns the candidates after ambiguity resolution, best first.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    layer = np.asarray(layer)
    n_layers = geometry.n_layers
    res = LayerResolution.from_geometry(geometry)
    bfield = geometry.bfield_T
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1, 3)
    n_seeds = len(seeds)

    # branch state
    hits = np.full((n_seeds, n_layers), -1, dtype=np.int64)
    for k in range(3):
        hits[np.arange(n_seeds), layer[seeds[:, k]]] = seeds[:, k]
    seed_of = np.arange(n_seeds)
    start = layer[seeds[:, 2]].astype(np.int64) + 1 if n_seeds else np.zeros(0, np.int64)
    holes = np.zeros(n_seeds, dtype=np.int64)
    score = np.zeros(n_seeds)
    # momentum and dip of each branch's last fit, for the scattering term of its hit weights
    sx, sy, sz_ = x[seeds], y[seeds], z[seeds]
    seed_fit = fit_helix(sx, sy, sz_, np.ones(seeds.shape, dtype=bool), bfield)
    p_est = np.nan_to_num(seed_fit.p_GeV, nan=1.0, posinf=1e3)
    cot_est = np.nan_to_num(seed_fit.cot_theta)
    done_hits, done_seed, done_holes, done_score = [], [], [], []

    def finish(sel: np.ndarray) -> None:
        done_hits.append(hits[sel])
        done_seed.append(seed_of[sel])
        done_holes.append(holes[sel])
        done_score.append(score[sel])

    phi_all = np.arctan2(y, x)
    hole_cost = cfg.window_nsigma**2
    for lay in range(int(start.min()) if n_seeds else n_layers, n_layers):
        if len(hits) == 0:
            break
        waiting = start > lay
        act = np.flatnonzero(~waiting)
        if len(act) == 0:
            continue
        lay_hits = np.flatnonzero(layer == lay)
        r_l = float(geometry.layers[lay].radius_mm)
        hx, hy, hz, hl = _coords(hits[act], x, y, z)
        w_r, w_z = res.hit_sigmas(hl, p_est[act], cot_est[act])
        fit = fit_helix(hx, hy, hz, hl >= 0, bfield, w_r, w_z)
        p_est[act] = np.nan_to_num(fit.p_GeV, nan=1.0, posinf=1e3)
        cot_est[act] = np.nan_to_num(fit.cot_theta)
        px, py, pz, reach = predict_on_cylinder(fit, r_l)
        reach &= np.isfinite(pz)
        ok = reach & (np.abs(pz) <= geometry.layers[lay].half_length_mm + cfg.window_z_min_mm)
        ms = res.ms_sigma_rphi(p_est[act], cot_est[act])[:, lay]
        sin_t = 1.0 / np.sqrt(1.0 + cot_est[act] ** 2)
        sig_r = np.sqrt(res.sigma_rphi_mm[lay] ** 2 + ms**2)
        sig_z = np.sqrt(res.sigma_z_mm[lay] ** 2 + (ms / sin_t) ** 2)
        half_r = np.maximum(cfg.window_nsigma * sig_r, cfg.window_rphi_min_mm)
        half_z = np.maximum(cfg.window_z_min_mm, cfg.window_nsigma * sig_z)

        # a helix that no longer reaches this radius is finished as it is; one crossing the
        # cylinder beyond its length (the pixel layers are shorter than the strips) skips it
        stop = act[~reach]
        skip = act[reach & ~ok]
        live = act[ok]
        pphi = np.arctan2(py[ok], px[ok])
        pz_l, hr, hz_, sr, sz = pz[ok], half_r[ok], half_z[ok], sig_r[ok], sig_z[ok]
        if len(lay_hits):
            index = PhiZIndex(
                phi_all[lay_hits],
                z[lay_hits],
                lay_hits,
                z_bin_mm=max(20.0, float(np.median(2 * hz_)) if len(hz_) else 20.0),
            )
            qb, hit = index.query(pphi, hr / r_l, pz_l - hz_, pz_l + hz_)
        else:
            qb, hit = np.zeros(0, np.int64), np.zeros(0, np.int64)
        d_r = r_l * wrap_phi(phi_all[hit] - pphi[qb])
        d_z = z[hit] - pz_l[qb]
        inside = np.abs(d_r) <= hr[qb]
        qb, hit = qb[inside], hit[inside]
        cost = (d_r[inside] / sr[qb]) ** 2 + (d_z[inside] / sz[qb]) ** 2
        pick = _top_k_per_group(qb, cost, cfg.max_branches)
        qb, hit, cost = qb[pick], hit[pick], cost[pick]

        has_hit = np.zeros(len(live), dtype=bool)
        has_hit[qb] = True
        missing = live[~has_hit]
        too_many = holes[missing] + 1 > cfg.max_holes
        finish(np.concatenate([stop, missing[too_many]]))
        hole_rows = missing[~too_many]

        parent = live[qb]
        new_hits = hits[parent].copy()
        new_hits[:, lay] = hit
        same = np.concatenate([np.flatnonzero(waiting), skip])
        hits = np.concatenate([hits[same], new_hits, hits[hole_rows]])
        seed_of = np.concatenate([seed_of[same], seed_of[parent], seed_of[hole_rows]])
        start = np.concatenate([start[same], start[parent], start[hole_rows]])
        holes = np.concatenate([holes[same], holes[parent], holes[hole_rows] + 1])
        score = np.concatenate([score[same], score[parent] + cost, score[hole_rows]])
        p_est = np.concatenate([p_est[same], p_est[parent], p_est[hole_rows]])
        cot_est = np.concatenate([cot_est[same], cot_est[parent], cot_est[hole_rows]])

        # bounded branching: the best few branches of every seed go on
        keep = _top_k_per_group(seed_of, score + hole_cost * holes, cfg.max_candidates_per_seed)
        keep.sort()
        hits, seed_of, start, holes, score, p_est, cot_est = (
            hits[keep],
            seed_of[keep],
            start[keep],
            holes[keep],
            score[keep],
            p_est[keep],
            cot_est[keep],
        )
    finish(np.arange(len(hits)))

    all_hits = np.concatenate(done_hits) if done_hits else np.zeros((0, n_layers), np.int64)
    all_seed = np.concatenate(done_seed) if done_seed else np.zeros(0, np.int64)
    all_score = np.concatenate(done_score) if done_score else np.zeros(0)
    n_hits = (all_hits >= 0).sum(axis=1)
    # best branch per seed: most hits, then lowest chi2 sum
    best = _top_k_per_group(all_seed, -n_hits * 1e9 + all_score, 1)
    best = best[n_hits[best] >= cfg.min_hits]
    cand_hits, cand_seed = all_hits[best], all_seed[best]
    return _finalise(cand_hits, cand_seed, x, y, z, res, bfield, cfg)


def _holes(hits: np.ndarray, fit: HelixFit, res: LayerResolution) -> np.ndarray:
    """Layers between a candidate's first and last hit without a hit where its helix
    crosses the sensitive length (a crossing beyond the layer's end is no hole)."""
    present = hits >= 0
    cols = np.arange(hits.shape[1])[None, :]
    first = np.where(present, cols, hits.shape[1]).min(axis=1)
    last = np.where(present, cols, -1).max(axis=1)
    gap = ~present & (cols > first[:, None]) & (cols < last[:, None])
    holes = np.zeros(len(hits), dtype=np.int64)
    for lay in np.flatnonzero(gap.any(axis=0)):
        rows = np.flatnonzero(gap[:, lay])
        _, _, z, ok = predict_on_cylinder(fit.take(rows), float(res.radius_mm[lay]))
        holes[rows] += ok & (np.abs(z) <= res.half_length_mm[lay])
    return holes


def _finalise(
    cand_hits: np.ndarray,
    cand_seed: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    res: LayerResolution,
    bfield: float,
    cfg: FollowingConfig,
) -> Candidates:
    # identical hit sets (several seeds of one track) are merged
    if len(cand_hits):
        _, first = np.unique(cand_hits, axis=0, return_index=True)
        first.sort()
        cand_hits, cand_seed = cand_hits[first], cand_seed[first]
    hx, hy, hz, hl = _coords(cand_hits, x, y, z)
    fit = fit_candidates(hx, hy, hz, hl, res, bfield)
    n_hits = (cand_hits >= 0).sum(axis=1)
    chi2n = np.nan_to_num(fit.chi2_ndf, nan=np.inf)
    order = np.lexsort((chi2n, -n_hits))
    keep = np.zeros(len(order), dtype=bool)
    used = np.zeros(len(x), dtype=bool)
    for i in order:
        h = cand_hits[i]
        h = h[h >= 0]
        if used[h].sum() <= cfg.max_shared_fraction * len(h):
            keep[i] = True
            used[h] = True
    sel = order[keep[order]]
    fit = fit.take(sel)
    return Candidates(
        hits=cand_hits[sel],
        seed=cand_seed[sel],
        n_holes=_holes(cand_hits[sel], fit, res),
        fit=fit,
    )


def find_candidates(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    layer: np.ndarray,
    geometry: TrackerGeometry,
    seeding: SeedingConfig,
    following: FollowingConfig,
) -> Candidates:
    """Seeding and track following for one event's hits (``(n,)`` arrays, mm)."""
    seeds = find_seeds(x, y, z, layer, seeding, geometry)
    return follow_seeds(x, y, z, layer, seeds, geometry, following)
