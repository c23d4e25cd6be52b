"""Tracker simulation: geometry of the hits, exact helices, scattering, resolution, noise, ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hepml import config
from hepml.errors import HepmlError
from hepml.io import HIT_COLUMNS, PARTICLE_COLUMNS, read_tracker_root
from hepml.rng import rng as make_rng
from hepml.sim.geometry import TrackerGeometry, curvature_radius_mm
from hepml.sim.physics import (
    highland_theta0,
    minbias_pt_scale_GeV,
    sample_minbias_pt,
    scatter_direction,
)
from hepml.sim.tracker import (
    PARTICLE_ID_STRIDE,
    TrackerSimConfig,
    generate_particles,
    propagate,
    simulate_events,
    simulate_shard,
)

ROOT = Path(__file__).resolve().parents[1]
GEV_PER_T_MM = 0.299792458e-3


def _cfg(efficiency: float | dict[int, float] | None = None, **sim: Any) -> dict[str, Any]:
    """config/test.yaml with ``tracker.simulation`` overrides and per-layer efficiencies."""
    raw = config.load(ROOT / "config" / "test.yaml")
    raw["tracker"]["simulation"].update(sim)
    if efficiency is not None:
        eff = efficiency if isinstance(efficiency, dict) else dict.fromkeys(range(10), efficiency)
        for i, lay in enumerate(raw["tracker"]["layers"]):
            lay["efficiency"] = eff.get(i, 1.0)
    return config.validate(raw)


def _simulate(
    cfg: dict[str, Any], n_events: int, seed: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame, TrackerGeometry]:
    geo = TrackerGeometry.from_config(cfg)
    hits, parts = simulate_events(
        geo, TrackerSimConfig.from_config(cfg), np.arange(n_events), np.random.default_rng(seed)
    )
    return hits, parts, geo


def _with_particles(hits: pd.DataFrame, parts: pd.DataFrame) -> pd.DataFrame:
    return hits[hits.particle_id != 0].merge(
        parts, on=["event_id", "particle_id"], validate="many_to_one"
    )


def _fit_circle(
    x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted Kasa fit, one circle per row: min sum w (x^2 + y^2 + D x + E y + F)^2.

    I. Kasa, IEEE Trans. Instrum. Meas. 25 (1976) 8. Near the circle the algebraic
    residual is 2 R times the geometric one, so this is a weighted least-squares
    fit of the hit residuals. Returns centre (cx, cy) and radius R, shapes (N,).
    """
    a = np.stack([x, y, np.ones_like(x)], axis=-1)  # (N, n, 3)
    b = -(x * x + y * y)
    m = np.einsum("ni,nij,nik->njk", w, a, a)
    v = np.einsum("ni,nij,ni->nj", w, a, b)
    d, e, f = np.linalg.solve(m, v[..., None])[..., 0].T
    cx, cy = -d / 2, -e / 2
    return cx, cy, np.sqrt(cx * cx + cy * cy - f)


def _predicted_curvature_resolution(
    r: np.ndarray, sigma: np.ndarray, theta0: np.ndarray | None
) -> float:
    """sigma(kappa)/|kappa| times |kappa|: the linearised weighted least-squares error of the curvature.

    A nearly straight track, y = a + b x + (kappa/2) x^2 with x the layer radius,
    fitted with weights 1/sigma^2 (Gluckstern, NIM 24 (1963) 381 for equal
    spacing; here the general sandwich (A'WA)^-1 A'W C W A (A'WA)^-1). C holds
    the measurement variances and, with ``theta0`` (projected scattering angle
    per layer), the multiple-scattering covariance
    C_ij += sum_{k < i, j} (x_i - x_k)(x_j - x_k) theta0_k^2.
    """
    a = np.stack([np.ones_like(r), r, 0.5 * r * r], axis=1)
    w = np.diag(1.0 / sigma**2)
    c = np.diag(sigma**2)
    if theta0 is not None:
        for k in range(len(r)):
            lever = np.clip(r - r[k], 0.0, None)
            c = c + np.outer(lever, lever) * theta0[k] ** 2
    inv = np.linalg.inv(a.T @ w @ a)
    cov = inv @ a.T @ w @ c @ w @ a @ inv
    return float(np.sqrt(cov[2, 2]))


# --------------------------------------------------------------------------- geometry
def test_hits_lie_on_their_layers() -> None:
    cfg = _cfg()
    hits, parts, geo = _simulate(cfg, 3)
    layer = geo.global_layer(hits.volume_id.to_numpy(), hits.layer_id.to_numpy())
    assert (layer >= 0).all()
    radius, half = geo.radii_mm[layer], geo.half_lengths_mm[layer]
    r_meas = np.hypot(hits.x, hits.y)
    assert np.abs(r_meas - radius).max() < 1e-3  # mm; hits are on the cylinder
    assert (np.abs(hits.z) <= half * (1 + 1e-7)).all()
    sig = hits.particle_id.to_numpy() != 0
    r_true = np.hypot(hits.tx[sig], hits.ty[sig])
    assert np.abs(r_true - radius[sig]).max() < 1e-3
    assert (np.abs(hits.tz[sig]) <= half[sig] * (1 + 1e-7)).all()
    # measured within the readout cell of the true crossing (uniform residuals of +-pitch/2)
    pitch_rphi = np.array([lay.pitch_rphi_mm for lay in geo.layers])[layer[sig]]
    pitch_z = np.array([lay.pitch_z_mm for lay in geo.layers])[layer[sig]]
    d_rphi = np.hypot(hits.x[sig] - hits.tx[sig], hits.y[sig] - hits.ty[sig])
    assert (d_rphi <= 0.5 * pitch_rphi * (1 + 1e-4) + 1e-4).all()
    assert (np.abs(hits.z[sig] - hits.tz[sig]) <= 0.5 * pitch_z + 1e-4).all()
    # noise carries no truth
    assert (hits.loc[~sig, ["tx", "ty", "tz", "tpx", "tpy", "tpz"]].to_numpy() == 0).all()


def test_measurement_residuals_have_pitch_over_sqrt12() -> None:
    cfg = _cfg(multiple_scattering=False, noise_per_layer=0.0, n_particles=2000)
    hits, _, geo = _simulate(cfg, 4)
    layer = geo.global_layer(hits.volume_id.to_numpy(), hits.layer_id.to_numpy())
    phi_m, phi_t = np.arctan2(hits.y, hits.x), np.arctan2(hits.ty, hits.tx)
    d_rphi = np.angle(np.exp(1j * (phi_m - phi_t))) * geo.radii_mm[layer]
    d_z = (hits.z - hits.tz).to_numpy()
    for i, lay in enumerate(geo.layers):
        m = layer == i
        assert m.sum() > 3000
        np.testing.assert_allclose(d_rphi[m].std(), lay.resolution_rphi_mm, rtol=0.04)
        inside = np.abs(hits.tz.to_numpy()[m]) < lay.half_length_mm - lay.pitch_z_mm  # no clipping
        np.testing.assert_allclose(d_z[m][inside].std(), lay.resolution_z_mm, rtol=0.04)
        assert abs(d_rphi[m].mean()) < 4 * lay.resolution_rphi_mm / np.sqrt(m.sum())


def test_helix_is_exact_and_loopers_stop_without_scattering() -> None:
    cfg = _cfg(efficiency=1.0, multiple_scattering=False, noise_per_layer=0.0, n_particles=3000)
    hits, parts, geo = _simulate(cfg, 2)
    h = _with_particles(hits, parts)
    px, py, pz = (h[c].to_numpy(np.float64) for c in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    q = h.q.to_numpy()
    radius = curvature_radius_mm(pt, geo.bfield_T)
    kappa = -q / radius
    cx = h.vx - py / pt / kappa
    cy = h.vy + px / pt / kappa
    tx, ty, tz = (h[c].to_numpy(np.float64) for c in ("tx", "ty", "tz"))
    # on the particle's circle from its vertex momentum
    assert np.abs(np.hypot(tx - cx, ty - cy) - radius).max() < 2e-3
    # z advances by the transverse arc length times pz / pT
    turn = np.mod(
        (np.arctan2(ty - cy, tx - cx) - np.arctan2(h.vy - cy, h.vx - cx)) * np.sign(kappa),
        2 * np.pi,
    )
    assert turn.max() < np.pi  # outgoing half-turn only
    np.testing.assert_allclose(tz, h.vz + turn * radius * pz / pt, atol=2e-3)
    # the momentum at the hit is the tangent, of unchanged magnitude
    np.testing.assert_allclose(np.hypot(h.tpx, h.tpy), pt, rtol=1e-5)
    np.testing.assert_allclose(h.tpz, pz, rtol=1e-5)
    np.testing.assert_allclose(
        (h.tpx * (tx - cx) + h.tpy * (ty - cy)) / (pt * radius), 0.0, atol=1e-4
    )

    # expected hit count per particle: layers are crossed while the circle reaches
    # them (2R > r) and the crossing is within the half length
    p_pt = np.hypot(parts.px, parts.py).to_numpy(np.float64)
    p_rad = curvature_radius_mm(p_pt, geo.bfield_T)
    expected = np.zeros(len(parts), dtype=int)
    ambiguous = np.zeros(len(parts), dtype=bool)
    alive = np.ones(len(parts), dtype=bool)
    for lay in geo.layers:
        r = lay.radius_mm
        reach = 2 * p_rad > r
        s = 2 * p_rad * np.arcsin(np.minimum(r / (2 * p_rad), 1.0))
        z = parts.vz.to_numpy() + s * parts.pz.to_numpy() / p_pt
        inside = np.abs(z) <= lay.half_length_mm
        ambiguous |= alive & (
            (np.abs(2 * p_rad / r - 1) < 1e-3) | (np.abs(np.abs(z) - lay.half_length_mm) < 0.1)
        )
        alive &= reach & inside
        expected += alive
    assert ambiguous.mean() < 0.01
    nh = parts.nhits.to_numpy()
    np.testing.assert_array_equal(nh[~ambiguous], expected[~ambiguous])
    assert (expected < 10).sum() > 200 and (expected == 10).sum() > 2000  # both kinds are tested


# --------------------------------------------------------------------------- scattering
def test_highland_formula_value() -> None:
    # PDG 2024 eq. 34.15 by hand: 13.6 MeV / 1 GeV * sqrt(0.01) * (1 + 0.038 ln 0.01)
    # = 0.0136 * 0.1 * (1 - 0.174996) = 1.12200e-3 rad
    np.testing.assert_allclose(highland_theta0(1.0, 0.01, beta=1.0), 1.12200e-3, rtol=1e-5)
    # a 0.2 GeV pion through 0.02 X0: beta = 0.2 / sqrt(0.2^2 + 0.13957^2) = 0.82006,
    # 0.0136 / (0.82006 * 0.2) * sqrt(0.02) * (1 + 0.038 ln(0.02 / 0.82006^2)) = 1.0160e-2 rad
    np.testing.assert_allclose(highland_theta0(0.2, 0.02), 1.0160e-2, rtol=1e-4)
    np.testing.assert_allclose(highland_theta0(0.2, 0.02, q=-1), 1.0160e-2, rtol=1e-4)


def test_scatter_direction_projected_angles_have_width_theta0() -> None:
    rng = np.random.default_rng(5)
    n = 200_000
    theta = 1.1  # polar angle of the direction
    ux, uy = np.full(n, 0.6), np.full(n, 0.8)
    sin_t, cos_t = np.full(n, np.sin(theta)), np.full(n, np.cos(theta))
    theta0 = np.full(n, 3e-3)
    ux1, uy1, sin1, cos1 = scatter_direction(ux, uy, sin_t, cos_t, theta0, rng)
    np.testing.assert_allclose(ux1**2 + uy1**2, 1.0, rtol=1e-12)
    np.testing.assert_allclose(sin1**2 + cos1**2, 1.0, rtol=1e-12)
    d_polar = np.arctan2(sin1, cos1) - theta
    d_azimuth = np.arctan2(ux * uy1 - uy * ux1, ux * ux1 + uy * uy1) * np.sin(
        theta
    )  # projected on the e1 plane
    for d in (d_polar, d_azimuth):
        np.testing.assert_allclose(d.std(), 3e-3, rtol=0.01)
        assert abs(d.mean()) < 4 * 3e-3 / np.sqrt(n)
    assert abs(np.corrcoef(d_polar, d_azimuth)[0, 1]) < 0.01


def test_scattering_width_through_a_layer_matches_highland() -> None:
    """1 GeV particles: the change of dip angle between two layers is the kink in the first.

    The dip angle is a constant of the motion in a uniform solenoid field, so its
    change from the crossing of layer k to that of layer k+1 is the polar
    projected scattering angle in layer k; its width must be Highland's theta0 at
    the path length x/X0 / |cos(incidence)|.
    """
    cfg = _cfg(
        efficiency=1.0,
        noise_per_layer=0.0,
        n_particles=0,
        n_high_pt=30000,
        high_pt_min_GeV=1.0,
        high_pt_max_GeV=1.0,
        eta_max=1.0,
    )
    geo = TrackerGeometry.from_config(cfg)
    sim = TrackerSimConfig.from_config(cfg)
    parts = generate_particles(sim, 1, np.random.default_rng(3))
    idx, layer, blk = propagate(geo, sim, parts, np.random.default_rng(4))
    n = len(parts["px"])
    for k in (0, 4, 8):
        lay = geo.layers[k]
        at = [np.full((6, n), np.nan), np.full((6, n), np.nan)]
        for j in (0, 1):
            m = layer == k + j
            at[j][:, idx[m]] = blk[3:9, m]
        ok = np.isfinite(at[0][0]) & np.isfinite(at[1][0])
        (x, y, _, px, py, pz), (_, _, _, px1, py1, pz1) = (a[:, ok].astype(np.float64) for a in at)
        kink = np.arctan2(pz1, np.hypot(px1, py1)) - np.arctan2(pz, np.hypot(px, py))
        p = np.sqrt(px * px + py * py + pz * pz)
        cos_inc = (px * x + py * y) / (p * lay.radius_mm)
        theta0 = highland_theta0(p, lay.x_over_x0 / np.abs(cos_inc))
        assert ok.sum() > 10000
        # Highland at the actual incidence, within 3% (statistical precision ~0.7%)
        np.testing.assert_allclose(kink.std(), np.sqrt(np.mean(theta0**2)), rtol=0.03)
        # and not at normal incidence: over |eta| < 1 the path is ~10% longer on average
        normal = highland_theta0(p, np.full_like(p, lay.x_over_x0))
        assert kink.std() > 1.03 * np.sqrt(np.mean(normal**2))


# --------------------------------------------------------------------------- resolution
@pytest.mark.parametrize("scattering", [False, True])
def test_circle_fit_returns_pt_within_expected_resolution(scattering: bool) -> None:
    """10 GeV tracks at eta ~ 0: weighted Kasa fit of the measured hits -> pT.

    The pull width sigma(pT)/pT must match the linearised least-squares
    prediction (measurement only, or measurement plus Highland scattering)
    within 10%, and the fit must be unbiased.
    """
    pt_true = 10.0
    cfg = _cfg(
        efficiency=1.0,
        noise_per_layer=0.0,
        n_particles=0,
        n_high_pt=2000,
        high_pt_min_GeV=pt_true,
        high_pt_max_GeV=pt_true,
        eta_max=0.02,
        multiple_scattering=scattering,
    )
    hits, parts, geo = _simulate(cfg, 1, seed=11)
    assert (parts.nhits == 10).all()
    h = hits.sort_values(["particle_id", "layer_id", "volume_id"], kind="stable")
    layer = geo.global_layer(h.volume_id.to_numpy(), h.layer_id.to_numpy()).reshape(-1, 10)
    sigma = np.array([lay.resolution_rphi_mm for lay in geo.layers])
    x = h.x.to_numpy(np.float64).reshape(-1, 10)
    y = h.y.to_numpy(np.float64).reshape(-1, 10)
    _, _, radius = _fit_circle(x, y, 1.0 / sigma[layer] ** 2)
    pt_fit = GEV_PER_T_MM * geo.bfield_T * radius
    rel = pt_fit / pt_true - 1.0

    kappa = GEV_PER_T_MM * geo.bfield_T / pt_true
    theta0 = (
        highland_theta0(pt_true, np.array([lay.x_over_x0 for lay in geo.layers]))
        if scattering
        else None
    )
    expected = _predicted_curvature_resolution(geo.radii_mm, sigma, theta0) / kappa
    np.testing.assert_allclose(rel.std(), expected, rtol=0.10)
    assert abs(rel.mean()) < 4 * expected / np.sqrt(len(rel))
    # the expected numbers themselves: ~0.3% from the sensors alone, ~0.9% with scattering at 10 GeV
    assert (0.002 < expected < 0.004) if not scattering else (0.007 < expected < 0.012)


# --------------------------------------------------------------------------- gun, noise, efficiency
def test_minbias_pt_spectrum() -> None:
    rng = np.random.default_rng(2)
    pt = sample_minbias_pt(1_000_000, 0.1, 0.4, 100.0, 6.0, rng)
    assert pt.min() >= 0.1 and pt.max() <= 100.0
    assert np.median(pt) == pytest.approx(0.4, abs=0.002)
    # the power-law tail: P(pT > 2 GeV) = (1 + 1.9 / p0)^-5
    p0 = minbias_pt_scale_GeV(0.1, 0.4, 6.0)
    tail = (1 + 1.9 / p0) ** -5.0
    assert np.mean(pt > 2.0) == pytest.approx(tail, rel=4 / np.sqrt(tail * len(pt)))
    assert (pt > 10.0).sum() > 10  # reaches tens of GeV

    cfg = _cfg(n_particles=5000, n_high_pt=0)
    _, parts, _ = _simulate(cfg, 4)
    p_pt = np.hypot(parts.px, parts.py)
    assert np.median(p_pt) == pytest.approx(0.4, abs=0.015)
    eta = np.arcsinh(parts.pz / p_pt)
    assert np.abs(eta).max() <= 1.2 + 1e-5 and np.abs(eta).mean() == pytest.approx(0.6, abs=0.02)
    assert parts.vz.std() == pytest.approx(55.0, rel=0.03)
    assert parts.vx.std() == pytest.approx(0.015, rel=0.03)
    assert set(np.unique(parts.q)) == {-1, 1} and abs(parts.q.mean()) < 0.03


def test_high_pt_particles_are_added() -> None:
    cfg = _cfg(n_particles=100, n_high_pt=50, high_pt_min_GeV=2.0, high_pt_max_GeV=20.0)
    _, parts, _ = _simulate(cfg, 10)
    pt = np.hypot(parts.px, parts.py)
    assert len(parts) == 1500
    # the minimum-bias spectrum gives ~ 2.5% above 2 GeV; the 500 high-pT ones lie in [2, 20]
    assert 500 <= (pt >= 2.0).sum() < 500 + 4 * 0.03 * 1000
    assert ((pt >= 2.0) & (pt <= 20.0 + 1e-4)).sum() >= 500


def test_noise_rate_and_uniformity() -> None:
    rate = 150.0
    cfg = _cfg(n_particles=0, n_high_pt=0, noise_per_layer=rate)
    hits, parts, geo = _simulate(cfg, 40)
    assert len(parts) == 0 and (hits.particle_id == 0).all()
    counts = hits.groupby(["event_id", "volume_id", "layer_id"]).size().to_numpy()
    assert len(counts) == 40 * 10
    # Poisson: mean within 4 standard errors, variance / mean ~ 1
    assert abs(counts.mean() - rate) < 4 * np.sqrt(rate / len(counts))
    assert abs(counts.var(ddof=1) / counts.mean() - 1) < 4 * np.sqrt(2 / (len(counts) - 1))
    # uniform on each cylinder
    layer = geo.global_layer(hits.volume_id.to_numpy(), hits.layer_id.to_numpy())
    zrel = hits.z.to_numpy() / geo.half_lengths_mm[layer]
    phi = np.arctan2(hits.y, hits.x).to_numpy()
    n = len(hits)
    assert abs(zrel.mean()) < 4 * np.sqrt(1 / 3 / n)
    assert abs(np.abs(zrel).mean() - 0.5) < 4 * np.sqrt(1 / 12 / n)
    assert abs(np.cos(phi).mean()) < 4 * np.sqrt(0.5 / n) and abs(np.sin(phi).mean()) < 4 * np.sqrt(
        0.5 / n
    )


def test_noise_adds_to_particle_hits() -> None:
    cfg = _cfg(noise_per_layer=80.0)
    hits, _, _ = _simulate(cfg, 20)
    n_noise = (hits.particle_id == 0).sum()
    assert abs(n_noise - 20 * 10 * 80) < 4 * np.sqrt(20 * 10 * 80)


def test_layer_efficiency_as_configured() -> None:
    eff = 0.7
    cfg = _cfg(efficiency={3: eff}, n_particles=2000, noise_per_layer=0.0)
    hits, parts, geo = _simulate(cfg, 4)
    layer = geo.global_layer(hits.volume_id.to_numpy(), hits.layer_id.to_numpy())
    has = pd.crosstab(hits.particle_id, layer) > 0
    crossed = has[2] & has[4]  # a particle seen on layers 2 and 4 crossed layer 3
    n = int(crossed.sum())
    frac3 = has[3][crossed].mean()
    assert abs(frac3 - eff) < 4 * np.sqrt(eff * (1 - eff) / n)
    assert has[2][has[1] & has[3]].all()  # efficiency 1 elsewhere: no missing hit
    # nhits counts the recorded hits
    per_particle = hits[hits.particle_id != 0].groupby("particle_id").size()
    nh = parts.set_index("particle_id").nhits
    np.testing.assert_array_equal(
        per_particle.reindex(nh.index, fill_value=0).to_numpy(), nh.to_numpy()
    )


def test_default_config_has_trackml_barrel_density() -> None:
    cfg = config.load(ROOT / "config" / "config.yaml")
    hits, parts, _ = _simulate(cfg, 1)
    noise = (hits.particle_id == 0).mean()
    assert 50_000 < len(hits) < 65_000  # TrackML: ~55k barrel hits per event
    assert 0.05 < noise < 0.15
    assert (parts.nhits >= 3).mean() > 0.95  # |eta| < 1.2: most particles cross the barrel


# --------------------------------------------------------------------------- ids, determinism, shards
def test_ids_follow_trackml_conventions() -> None:
    cfg = _cfg()
    hits, parts, _ = _simulate(cfg, 3)
    assert list(hits.columns) == list(HIT_COLUMNS) and list(parts.columns) == list(PARTICLE_COLUMNS)
    assert {str(t) for t in hits.dtypes} >= {"int64", "float32", "int32"}
    for eid, h in hits.groupby("event_id"):
        np.testing.assert_array_equal(h.hit_id.to_numpy(), np.arange(1, len(h) + 1))
        p = parts[parts.event_id == eid]
        assert p.particle_id.is_unique and (p.particle_id > 0).all()
        assert ((p.particle_id // PARTICLE_ID_STRIDE) == eid).all()
        assert set(h.particle_id[h.particle_id != 0]) <= set(p.particle_id)
    # within a layer, hit order carries no particle information
    h0 = hits[(hits.event_id == 0) & (hits.particle_id != 0)]
    rank_corr = np.corrcoef(h0.hit_id, h0.particle_id)[0, 1]
    assert abs(rank_corr) < 0.2


def test_same_seed_and_shard_give_identical_files(tmp_path: Path) -> None:
    cfg = _cfg()
    cfg["workflow"]["tracker_events_per_shard"] = 2
    a, b, c = tmp_path / "a.root", tmp_path / "b.root", tmp_path / "c.root"
    simulate_shard(cfg, 1, a, progress=False)
    simulate_shard(cfg, 1, b, progress=False)
    simulate_shard(cfg, 0, c, progress=False)
    (ha, pa), (hb, pb), (hc, pc) = (read_tracker_root(p) for p in (a, b, c))
    pd.testing.assert_frame_equal(ha, hb)
    pd.testing.assert_frame_equal(pa, pb)
    assert sorted(ha.event_id.unique()) == [2, 3] and sorted(hc.event_id.unique()) == [0, 1]
    assert not np.array_equal(ha.x.to_numpy()[:100], hc.x.to_numpy()[:100])
    # the in-memory function with the shard's stream gives the same tables
    geo = TrackerGeometry.from_config(cfg)
    hm, pm = simulate_events(
        geo,
        TrackerSimConfig.from_config(cfg),
        np.array([2, 3]),
        make_rng(cfg["seed"], "tracker", 1),
    )
    pd.testing.assert_frame_equal(hm, ha)
    pd.testing.assert_frame_equal(pm, pa)
    with pytest.raises(HepmlError, match="shard 2 is out of range"):
        simulate_shard(cfg, 2, tmp_path / "d.root", progress=False)
    assert not (tmp_path / "d.root").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"pt_median_GeV": 0.05}, "pt_min_GeV < pt_median_GeV < pt_max_GeV"),
        ({"high_pt_min_GeV": 5.0, "high_pt_max_GeV": 2.0}, "tracker.simulation.high_pt_max_GeV"),
    ],
)
def test_inconsistent_simulation_settings_are_rejected(
    override: dict[str, float], message: str
) -> None:
    with pytest.raises(HepmlError, match=message):
        TrackerSimConfig.from_config(_cfg(**override))
