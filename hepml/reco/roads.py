"""Roads around seeds, and the classical road follower (the hit labeller's baseline).

For every seed (a pixel triplet, :func:`hepml.reco.seeding.find_seeds`) the
*road* gathers every hit, of any particle or noise, inside a window around the
seed's helix (:func:`hepml.reco.fit.fit_helix` of the three hits, extrapolated
with :func:`hepml.reco.fit.predict_on_cylinder`) in every layer beyond the seed.
The window half-widths grow with the extrapolation error of a three-hit fit,
which the default config calibrates on simulated events, per layer and in 1/p:

    w_rphi(l, p) = sqrt(a_l^2 + (b_l / p)^2) / cos(alpha),
    w_z(l, p) = sqrt(c_l^2 + (d_l / p)^2) / cos(alpha)

(the constant term is the seed's measurement error blown up by the lever arm,
the 1/p term multiple scattering, Highland; alpha is the angle at which the
track crosses the cylinder, sin(alpha) = r / 2R, which stretches a displacement
across the track along the cylinder).

The **road follower** walks the same roads outwards, layer by layer, vectorised
over all seeds: it predicts the crossing with its current helix fit, takes the
candidate with the smallest chi2 = (d_rphi / sigma_rphi)^2 + (d_z / sigma_z)^2 if
below ``chi2_max``, and refits (Karimaki circle + s-z line, :func:`hepml.reco.fit.fit_helix`,
hits weighted by their measurement resolution). sigma is the hit resolution plus the
Highland scattering of every layer crossed since the last hit (its lever arm to
the predicted layer) and, for the error of the fit's own extrapolation,
``fit_error_scale`` times the scattering displacement accumulated from the beam
line (as :meth:`hepml.reco.fit.LayerResolution.ms_sigma_rphi`) and, until the
first pick, the seed circle's extrapolation error from its three hits'
resolution (:class:`hepml.reco.seeding._Extrapolation`; it dominates for stiff
tracks, whose three pixel hits fix the curvature poorly), in quadrature, all
times ``sigma_scale``. (A diagonal scattering term in the refit's weights would
take the outer hits' weight and worsen the extrapolation; the scale 0.4 makes
the pulls of true hits about unit-width on simulated events.) A road is abandoned after ``max_missed`` layers in a
row without a hit. The follower's picks are the classical baseline's tracks,
and its residuals are features for the labeller.

Within a layer the road keeps at most ``max_hits_per_layer`` candidates, those
with the smallest follower chi2, so sequences stay bounded; hits are ordered by
layer, then chi2. Roads whose follower found fewer than ``min_picked`` hits beyond
the seed are dropped (most fake seeds; a real track from the pixel seed layers
crosses at least three more layers above 0.15 GeV). The per-hit features are documented once in
:mod:`hepml.features.roads`.

With ``min_won_fraction`` the roads then go through ambiguity resolution: each
hit several roads' followers picked goes to the road with the most hits (then
the smallest mean chi2), and roads winning less than that fraction of their
track are dropped (duplicates, and fake seeds that ran into a real track).

The search uses :class:`hepml.reco.seeding.PhiZIndex` (hits of a layer sorted by
z bin and phi, with a cell table); a TrackML-density event's ~7.5 x 10^3
first-pass seeds (from 0.2 GeV) take about 0.2 s on one core
(``benchmarks/reconstruct.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from hepml.config import from_section
from hepml.errors import HepmlError
from hepml.features.roads import COL, N_FEATURES
from hepml.reco.fit import HelixFit, LayerResolution, fit_helix, predict_on_cylinder
from hepml.reco.seeding import _PHI_BASIS_FREE, EventHits, _Extrapolation, wrap_phi
from hepml.sim.geometry import TrackerGeometry

_BIG_CHI2 = 1e6


@dataclass(frozen=True)
class RoadConfig:
    """Road windows, the per-layer cap and the road follower (``hit_labeller.roads``/``follower``).

    Per-layer lists have one entry per global layer (entries of seed layers are
    unused). Units: mm, GeV.
    """

    window_rphi_mm: tuple[float, ...]
    window_rphi_mm_GeV: tuple[float, ...]
    window_z_mm: tuple[float, ...]
    window_z_mm_GeV: tuple[float, ...]
    min_p_GeV: float = 0.1
    min_cos_alpha: float = 0.4
    max_hits_per_layer: int = 4
    min_picked: int = 1
    z_bin_mm: float = 50.0
    chi2_max: float = 16.0
    sigma_scale: float = 1.0
    fit_error_scale: float = 0.4
    max_missed: int = 2
    min_won_fraction: float = 0.0

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> RoadConfig:
        """From the validated config's ``hit_labeller.roads`` and ``hit_labeller.follower``."""
        r, f = cfg["hit_labeller"]["roads"], cfg["hit_labeller"]["follower"]
        n = len(cfg["tracker"]["layers"])
        lists = {}
        for key in ("window_rphi_mm", "window_rphi_mm_GeV", "window_z_mm", "window_z_mm_GeV"):
            v = tuple(float(a) for a in r[key])
            if len(v) != n:
                raise HepmlError(
                    f"hit_labeller.roads.{key}: needs one entry per tracker layer ({n}), got {len(v)}"
                )
            lists[key] = v
        return from_section(cls, {**r, **f}, **lists)

    def window(
        self, layer: int, r_mm: float, p_GeV: np.ndarray, radius_mm: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Half-widths ``(w_rphi, w_z)`` (mm) of the seed window on ``layer`` (radius ``r_mm``).

        ``p_GeV`` and ``radius_mm`` (the transverse circle's radius R) are the seed
        fit's. The width across the track is sqrt(a^2 + (b/p)^2); on the cylinder it
        is stretched by 1/cos(alpha), alpha the crossing angle to the radial
        direction, sin(alpha) = r / 2R for a track from the beam line (floored at
        ``min_cos_alpha``): soft tracks cross the outer layers at grazing angles.
        """
        inv_p = 1.0 / np.maximum(np.nan_to_num(p_GeV, nan=self.min_p_GeV), self.min_p_GeV)
        sin_a = np.minimum(r_mm / (2.0 * np.nan_to_num(radius_mm, nan=np.inf)), 1.0)
        stretch = 1.0 / np.maximum(np.sqrt(1.0 - sin_a * sin_a), self.min_cos_alpha)
        w_r = np.hypot(self.window_rphi_mm[layer], self.window_rphi_mm_GeV[layer] * inv_p) * stretch
        w_z = np.hypot(self.window_z_mm[layer], self.window_z_mm_GeV[layer] * inv_p) * stretch
        return w_r, w_z


@dataclass
class Roads:
    """The roads of one event, flat (CSR): road ``i`` is elements ``road_ptr[i]:road_ptr[i+1]``.

    Shapes: ``road_ptr`` (R+1,); ``seeds`` (R, 3) hit indices; ``hit``, ``layer``,
    ``picked``, ``follower_score``, ``label`` (M,); ``features`` (M, F) float32
    (:data:`hepml.features.roads.FEATURES`). ``picked`` marks the road follower's
    track, ``follower_score`` is its per-hit score (-chi2 to its running
    prediction; 0 for seed hits). With truth, ``label`` is 1 where the hit belongs
    to the seed's majority particle ``seed_particle`` (0 when no particle holds
    two of the seed's hits or the majority is noise); else both are None.
    """

    road_ptr: np.ndarray
    seeds: np.ndarray
    hit: np.ndarray
    layer: np.ndarray
    features: np.ndarray
    picked: np.ndarray
    follower_score: np.ndarray
    label: np.ndarray | None = None
    seed_particle: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.road_ptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.road_ptr)

    @property
    def road_of_element(self) -> np.ndarray:
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)

    @classmethod
    def concat(cls, parts: list[Roads]) -> Roads:
        """The roads of several sets (of one event), in order."""
        ptr = [np.zeros(1, np.int64)]
        for p in parts:
            ptr.append(p.road_ptr[1:] + ptr[-1][-1])
        out: dict[str, Any] = {"road_ptr": np.concatenate(ptr)}
        for f in fields(cls):
            if f.name == "road_ptr":
                continue
            vals = [getattr(p, f.name) for p in parts]
            out[f.name] = None if any(v is None for v in vals) else np.concatenate(vals)
        return cls(**out)


def seed_majority(particle_id: np.ndarray) -> np.ndarray:
    """Majority particle of each seed (S, 3): the id held by >= 2 hits, else 0 (noise counts as none)."""
    p = np.asarray(particle_id)
    maj = np.where(
        (p[:, 0] == p[:, 1]) | (p[:, 0] == p[:, 2]),
        p[:, 0],
        np.where(p[:, 1] == p[:, 2], p[:, 1], 0),
    )
    return np.where(maj > 0, maj, 0).astype(np.int64)


def ms_sigma_since(
    res: LayerResolution,
    last_layer: np.ndarray,
    layer: int,
    p_GeV: np.ndarray,
    cot_theta: np.ndarray,
) -> np.ndarray:
    """Scattering displacement (mm, r*phi) at ``layer`` from every layer j >= ``last_layer`` inside it.

    sigma^2 = sum_j theta0_j^2 ((r_l - r_j) / sin theta)^2, theta0_j the Highland width
    for t_j = (x/X0)_j / sin theta (PDG 2024 eq. 34.15, beta = 1), as in
    :meth:`hepml.reco.fit.LayerResolution.ms_sigma_rphi` but from the last measured layer on.
    """
    p = np.maximum(np.nan_to_num(p_GeV, nan=1.0), 1e-3)
    inv_sin = np.sqrt(1.0 + np.nan_to_num(cot_theta) ** 2)
    last = np.asarray(last_layer)
    var = np.zeros(len(p))
    for j in range(layer):
        t = res.x_over_x0[j] * inv_sin
        lever = res.radius_mm[layer] - res.radius_mm[j]
        contrib = t * (1.0 + 0.038 * np.log(t)) ** 2 * lever * lever
        var += np.where(last <= j, contrib, 0.0)
    return 0.0136 / p * np.sqrt(var) * inv_sin


def _replace_rows(fit: HelixFit, rows: np.ndarray, new: HelixFit) -> HelixFit:
    out = {}
    for f in fields(fit):
        a = getattr(fit, f.name).copy()
        a[rows] = getattr(new, f.name)
        out[f.name] = a
    return HelixFit(**out)


def _group_rank(group: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order sorting by (group, key) and the rank of each sorted row within its group.

    ``group`` is a non-negative int, ``key`` a float >= 0; one argsort of the
    combined float key group * 2^21 + min(key, 2^20) (ties in ``key`` above 2^20
    are in any order), much faster than a two-key lexsort.
    """
    combined = group.astype(np.float64) * 2.0**21 + np.minimum(key, 2.0**20)
    order = np.argsort(combined, kind="stable")
    g = group[order]
    start = np.ones(len(g), dtype=bool)
    start[1:] = g[1:] != g[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(len(g)), 0))
    return order, np.arange(len(g)) - first


def _won_fraction(
    seed: np.ndarray,
    hit: np.ndarray,
    chi2: np.ndarray,
    alive: np.ndarray,
    n_picked: np.ndarray,
) -> np.ndarray:
    """Fraction of each road's follower track that it wins against the other roads (S,).

    ``seed``, ``hit``, ``chi2`` (E,) are the track elements (seed hits with chi2 0,
    and the follower's picks); only roads ``alive`` compete. Every hit held by
    several roads goes to the road with the most hits, then the smallest mean
    chi2 of its picks. A road that wins less than half its hits follows a track
    a better road holds: a duplicate, or a fake seed that ran into a real track
    (at TrackML density, default config: 87% of the fake-seeded roads, 0.1% of
    the others).
    """
    n_seeds = len(alive)
    e = np.flatnonzero(alive[seed])
    held = n_picked + 3
    chi2_sum = np.bincount(seed[e], weights=chi2[e], minlength=n_seeds)
    key = -held * 1e4 + np.minimum(chi2_sum / np.maximum(n_picked, 1), 1e3)
    h, owner = hit[e], seed[e]
    o = np.lexsort((key[owner], h))
    first = np.ones(len(o), dtype=bool)
    first[1:] = h[o][1:] != h[o][:-1]
    won = np.bincount(owner[o][first], minlength=n_seeds)
    return won / held


def build_roads(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    layer: np.ndarray,
    seeds: np.ndarray,
    geometry: TrackerGeometry,
    cfg: RoadConfig,
    particle_id: np.ndarray | None = None,
    hits: EventHits | None = None,
) -> Roads:
    """Roads of one event's seeds, followed by the road follower, with features (and labels).

    ``x, y, z`` (mm) and ``layer`` (global layer, -1 outside the barrel) are the
    event's (n,) hits; ``seeds`` (S, 3) hit indices, inner to outer;
    ``particle_id`` (n,) the truth, for labels; ``hits`` the same hits as an
    :class:`hepml.reco.seeding.EventHits` whose layer indexes the seeding built
    (made here if not given).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    layer = np.asarray(layer, dtype=np.int64)
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1, 3)
    n_layers = geometry.n_layers
    res = LayerResolution.from_geometry(geometry)
    bfield = geometry.bfield_T
    n_seeds = len(seeds)
    if hits is None:
        hits = EventHits(x, y, z, layer)
    phi_hit = hits.phi
    K = cfg.max_hits_per_layer

    # seeds inner to outer by radius
    rs = np.hypot(x[seeds], y[seeds])
    seeds = np.take_along_axis(seeds, np.argsort(rs, axis=1), axis=1)
    seed_layer = layer[seeds]
    last_seed_layer = seed_layer.max(axis=1) if n_seeds else np.zeros(0, np.int64)

    # the follower's hits, one slot per layer
    hx = np.zeros((n_seeds, n_layers))
    hy = np.zeros((n_seeds, n_layers))
    hz = np.zeros((n_seeds, n_layers))
    has = np.zeros((n_seeds, n_layers), dtype=bool)
    rows = np.arange(n_seeds)
    for k in range(3):
        hx[rows, seed_layer[:, k]] = x[seeds[:, k]]
        hy[rows, seed_layer[:, k]] = y[seeds[:, k]]
        hz[rows, seed_layer[:, k]] = z[seeds[:, k]]
        has[rows, seed_layer[:, k]] = True
    lay_grid = np.broadcast_to(np.arange(n_layers), (n_seeds, n_layers))

    def refit(idx: np.ndarray) -> HelixFit:
        # measurement resolutions only: with the diagonal scattering term the outer
        # hits lose their weight and the extrapolation gets worse, not better
        sr, sz = res.hit_sigmas(np.where(has[idx], lay_grid[idx], -1))
        return fit_helix(hx[idx], hy[idx], hz[idx], has[idx], bfield, sr, sz)

    sr0, sz0 = res.hit_sigmas(seed_layer)
    seed_fit = fit_helix(
        x[seeds], y[seeds], z[seeds], np.ones(seeds.shape, dtype=bool), bfield, sr0, sz0
    )
    seed_p = np.nan_to_num(seed_fit.p_GeV, nan=cfg.min_p_GeV)
    cur = seed_fit
    last_layer = last_seed_layer.copy()
    n_picked = np.zeros(n_seeds, dtype=np.int64)
    alive = np.isfinite(seed_fit.rho_per_mm) & np.isfinite(seed_fit.z0_mm)
    missed = np.zeros(n_seeds, dtype=np.int64)

    parts: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "seed",
            "hit",
            "layer",
            "u",
            "v",
            "dens",
            "nwin",
            "rank",
            "uf",
            "vf",
            "chi2",
            "picked",
        )
    }
    first_later = int(last_seed_layer.min()) + 1 if n_seeds else n_layers
    seed_kind = (seed_layer[:, 0] * n_layers + seed_layer[:, 1]) * n_layers + seed_layer[:, 2]
    kinds = np.unique(seed_kind)

    def seed_fit_var(lay: int, act: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Variance (mm^2, r*phi and z) at ``lay`` of the seed circle's prediction from the
        seed hits' resolution (:class:`hepml.reco.seeding._Extrapolation`)."""
        vr, vz = np.zeros(len(act)), np.zeros(len(act))
        k_act = seed_kind[act]
        for k in kinds.tolist():
            kind = (k // (n_layers * n_layers), (k // n_layers) % n_layers, k % n_layers)
            if kind[2] >= lay:
                continue
            ext = _Extrapolation.build(res, kind, kind[1:], lay, _PHI_BASIS_FREE)
            m = k_act == k
            vr[m] = ext.res_phi_sq * float(res.radius_mm[lay]) ** 2
            vz[m] = ext.res_z_sq
        return vr, vz

    for lay in range(first_later, n_layers):
        r_l = float(res.radius_mm[lay])
        act = np.flatnonzero(alive & (last_seed_layer < lay))
        if len(act) == 0:
            continue
        sfit = seed_fit.take(act)
        xs, ys, zs, oks = predict_on_cylinder(sfit, r_l)
        w_r, w_z = cfg.window(lay, r_l, seed_p[act], seed_fit.radius_mm[act])
        reach = oks & (np.abs(zs) <= res.half_length_mm[lay] + w_z)
        alive[act[~reach]] = False
        act, xs, ys, zs, w_r, w_z = (
            act[reach],
            xs[reach],
            ys[reach],
            zs[reach],
            w_r[reach],
            w_z[reach],
        )
        on_layer = np.flatnonzero(layer == lay)
        if len(act) == 0 or len(on_layer) == 0:
            missed[act] += 1
            alive[act[missed[act] > cfg.max_missed]] = False
            continue
        phi_s = np.arctan2(ys, xs)
        q, h = hits.index(lay, cfg.z_bin_mm).query(phi_s, w_r / r_l, zs - w_z, zs + w_z)
        nwin = np.bincount(q, minlength=len(act))
        # residuals to the seed helix, normalised by the window
        u = r_l * wrap_phi(phi_hit[h] - phi_s[q]) / w_r[q]
        v = (z[h] - zs[q]) / w_z[q]
        # residuals to the follower's running prediction
        cfit = cur.take(act)
        xf, yf, zf, okf = predict_on_cylinder(cfit, r_l)
        p_c = np.nan_to_num(cfit.p_GeV, nan=cfg.min_p_GeV)
        cot_c = np.nan_to_num(cfit.cot_theta)
        ms = ms_sigma_since(res, last_layer[act], lay, p_c, cot_c)
        ms_fit = cfg.fit_error_scale * ms_sigma_since(
            res, np.zeros(len(act), np.int64), lay, p_c, cot_c
        )
        sin_t = 1.0 / np.sqrt(1.0 + cot_c**2)
        # until the follower's first pick its fit is the seed's three hits, whose
        # measurement errors, blown up by the short lever arm, dominate for stiff tracks
        fit_r2, fit_z2 = seed_fit_var(lay, act)
        fit_r2 = np.where(n_picked[act] == 0, fit_r2, 0.0)
        fit_z2 = np.where(n_picked[act] == 0, fit_z2, 0.0)
        sig_r = cfg.sigma_scale * np.sqrt(res.sigma_rphi_mm[lay] ** 2 + ms**2 + ms_fit**2 + fit_r2)
        sig_z = cfg.sigma_scale * np.sqrt(
            res.sigma_z_mm[lay] ** 2 + (ms**2 + ms_fit**2) / sin_t**2 + fit_z2
        )
        uf = r_l * wrap_phi(phi_hit[h] - np.arctan2(yf, xf)[q]) / sig_r[q]
        vf = (z[h] - zf[q]) / sig_z[q]
        chi2 = np.where(okf[q], uf * uf + vf * vf, _BIG_CHI2)
        # cap: the K candidates of smallest chi2 per road
        order, rank = _group_rank(q, chi2)
        keep = order[rank < K]
        rank = rank[rank < K]
        q, h, u, v, uf, vf, chi2 = (
            q[keep],
            h[keep],
            u[keep],
            v[keep],
            uf[keep],
            vf[keep],
            chi2[keep],
        )
        best = (rank == 0) & (chi2 < cfg.chi2_max)
        took = act[q[best]]
        hb = h[best]
        hx[took, lay], hy[took, lay], hz[took, lay], has[took, lay] = x[hb], y[hb], z[hb], True
        last_layer[took] = lay
        n_picked[took] += 1
        missed[act] += 1
        missed[took] = 0
        alive[act[missed[act] > cfg.max_missed]] = False
        if len(took):
            cur = _replace_rows(cur, took, refit(took))
        area_cm2 = 4.0 * w_r * w_z / 100.0
        parts["seed"].append(act[q])
        parts["hit"].append(h)
        parts["layer"].append(np.full(len(h), lay, dtype=np.int64))
        parts["u"].append(u)
        parts["v"].append(v)
        parts["dens"].append(np.log1p(nwin / area_cm2)[q])
        parts["nwin"].append(np.log1p(nwin)[q])
        parts["rank"].append(rank.astype(np.float64))
        parts["uf"].append(np.arcsinh(uf))
        parts["vf"].append(np.arcsinh(vf))
        parts["chi2"].append(chi2)
        parts["picked"].append(best)

    # the seed hits: three elements per seed
    for k in range(3):
        parts["seed"].append(rows)
        parts["hit"].append(seeds[:, k])
        parts["layer"].append(seed_layer[:, k])
        for key in ("u", "v", "dens", "nwin", "rank", "uf", "vf", "chi2"):
            parts[key].append(np.zeros(n_seeds))
        parts["picked"].append(np.ones(n_seeds, dtype=bool))
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    is_seed = np.zeros(len(cat["seed"]), dtype=bool)
    is_seed[len(cat["seed"]) - 3 * n_seeds :] = True

    # roads kept: the follower found at least min_picked hits beyond the seed ...
    keep_road = n_picked >= cfg.min_picked
    if cfg.min_won_fraction > 0:
        pk = cat["picked"].astype(bool)
        won = _won_fraction(
            cat["seed"].astype(np.int64)[pk],
            cat["hit"].astype(np.int64)[pk],
            cat["chi2"][pk],
            keep_road,
            n_picked,
        )
        keep_road &= won >= cfg.min_won_fraction
    sel = keep_road[cat["seed"].astype(np.int64)]
    cat = {k: v[sel] for k, v in cat.items()}
    is_seed = is_seed[sel]
    seed_of = cat["seed"].astype(np.int64)
    new_index = np.cumsum(keep_road) - 1
    road = new_index[seed_of]
    kept = np.flatnonzero(keep_road)
    order = np.lexsort((cat["rank"], cat["layer"], ~is_seed, road))
    cat = {k: v[order] for k, v in cat.items()}
    is_seed, road, seed_of = is_seed[order], road[order], seed_of[order]
    hit = cat["hit"].astype(np.int64)
    lay_e = cat["layer"].astype(np.int64)

    # residuals of every element to the follower's final fit, in units of the hit's
    # resolution plus the scattering accumulated from the beam line (LayerResolution)
    uF = np.zeros(len(hit))
    vF = np.zeros(len(hit))
    final = cur
    for lay in np.unique(lay_e):
        e = np.flatnonzero(lay_e == lay)
        f = final.take(seed_of[e])
        xf, yf, zf, okf = predict_on_cylinder(f, float(res.radius_mm[lay]))
        cot_f = np.nan_to_num(f.cot_theta)
        ms = ms_sigma_since(
            res, np.zeros(len(e), np.int64), lay, np.nan_to_num(f.p_GeV, nan=cfg.min_p_GeV), cot_f
        )
        sig_r = np.sqrt(res.sigma_rphi_mm[lay] ** 2 + ms**2)
        sig_z = np.sqrt(res.sigma_z_mm[lay] ** 2 + ms**2 * (1.0 + cot_f**2))
        du = float(res.radius_mm[lay]) * wrap_phi(phi_hit[hit[e]] - np.arctan2(yf, xf)) / sig_r
        dv = (z[hit[e]] - zf) / sig_z
        uF[e] = np.where(okf, np.arcsinh(du), 10.0)
        vF[e] = np.where(okf, np.arcsinh(dv), 10.0)

    feats = np.zeros((len(hit), N_FEATURES), dtype=np.float32)
    feats[:, COL["u_seed"]] = cat["u"]
    feats[:, COL["v_seed"]] = cat["v"]
    feats[:, COL["r"]] = np.hypot(x[hit], y[hit]) / 1000.0
    feats[:, COL["layer"]] = lay_e / max(n_layers - 1, 1)
    feats[:, COL["density"]] = cat["dens"]
    feats[:, COL["n_window"]] = cat["nwin"]
    feats[:, COL["is_seed"]] = is_seed
    feats[:, COL["rank"]] = cat["rank"] / K
    q_over_pt = seed_fit.q / np.maximum(
        seed_p / np.sqrt(1.0 + np.nan_to_num(seed_fit.cot_theta) ** 2), 1e-3
    )
    feats[:, COL["q_over_pt"]] = np.clip(0.2 * q_over_pt, -2.0, 2.0)[seed_of]
    feats[:, COL["cot_theta"]] = np.clip(np.nan_to_num(seed_fit.cot_theta), -3.0, 3.0)[seed_of]
    feats[:, COL["u_follow"]] = np.where(is_seed, uF, cat["uf"])
    feats[:, COL["v_follow"]] = np.where(is_seed, vF, cat["vf"])
    feats[:, COL["picked"]] = cat["picked"]
    feats[:, COL["u_final"]] = uF
    feats[:, COL["v_final"]] = vF
    feats[:, COL["n_picked"]] = ((n_picked + 3) / n_layers)[seed_of]

    road_ptr = np.zeros(len(kept) + 1, dtype=np.int64)
    road_ptr[1:] = np.cumsum(np.bincount(road, minlength=len(kept)))
    label = seed_particle = None
    if particle_id is not None:
        pid = np.asarray(particle_id, dtype=np.int64)
        seed_particle = seed_majority(pid[seeds[kept]])
        label = ((pid[hit] == seed_particle[road]) & (seed_particle[road] > 0)).astype(np.int8)
    return Roads(
        road_ptr=road_ptr,
        seeds=seeds[kept],
        hit=hit,
        layer=lay_e.astype(np.int16),
        features=feats,
        picked=cat["picked"].astype(bool),
        follower_score=(-cat["chi2"]).astype(np.float32),
        label=label,
        seed_particle=seed_particle,
    )
