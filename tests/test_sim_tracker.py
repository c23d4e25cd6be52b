"""Tracker simulation through TrackML's planar modules: hits on their modules, pitch/sqrt(12)
residuals, exact helices, Highland scattering, energy loss, the particle gun, V0s and
hadronic interactions, module overlaps, noise, efficiency, TrackML ids, determinism."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hepml import config
from hepml.detector import Detector, load_detector
from hepml.detector.constants import SILICON_MIP_MEV_PER_X0
from hepml.detector.propagation import _DX, _DY, _DZ, _N_ROWS, _P, _Q, _X, _Y, _Z, helix_move
from hepml.detector.scattering import (
    beta_of,
    highland_theta0,
    mean_energy_loss_GeV,
    scatter_direction,
)
from hepml.errors import HepmlError
from hepml.io import HIT_COLUMNS, PARTICLE_COLUMNS, read_tracker_root
from hepml.rng import rng as make_rng
from hepml.sim.physics import minbias_pt_scale_GeV, sample_minbias_pt
from hepml.sim.tracker import (
    PARTICLE_ID_STRIDE,
    TrackerSimConfig,
    _particle_mass,
    generate_particles,
    simulate_events,
    simulate_particles,
    simulate_shard,
)

ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = ROOT / "config" / "test.yaml"
#: the physics switches off: ideal helices
IDEAL = {"multiple_scattering": False, "energy_loss": False, "nuclear_interactions": False}


@cache
def _base(path: Path) -> dict[str, Any]:
    return config.load(path)


def _cfg(path: Path = TEST_CONFIG, field: str | None = None, **sim: Any) -> dict[str, Any]:
    """A config file with ``tracker.simulation`` overrides (and the field model)."""
    raw = copy.deepcopy(_base(path))
    raw["tracker"]["simulation"].update(sim)
    if field is not None:
        raw["tracker"]["field"]["model"] = field
    return config.validate(raw)


@cache
def _detector_of(field: str) -> Detector:
    """The default detector (TrackML's modules) with the field model; built once per model."""
    return load_detector(_cfg(field=field))


def _detector(cfg: dict[str, Any]) -> Detector:
    return _detector_of(cfg["tracker"]["field"]["model"])


def _simulate(
    cfg: dict[str, Any], n_events: int, seed: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return simulate_events(
        _detector(cfg),
        TrackerSimConfig.from_config(cfg),
        np.arange(n_events),
        make_rng(seed, "test"),
    )


def _rows(det: Detector, hits: pd.DataFrame) -> np.ndarray:
    return det.module_row(
        hits.volume_id.to_numpy(), hits.layer_id.to_numpy(), hits.module_id.to_numpy()
    )


@pytest.fixture(scope="module")
def small() -> tuple[pd.DataFrame, pd.DataFrame, Detector]:
    """Three events of config/test.yaml (600 primaries each, solenoid field, all physics on)."""
    cfg = _cfg()
    hits, parts = _simulate(cfg, 3)
    return hits, parts, _detector(cfg)


@pytest.fixture(scope="module")
def default_event() -> tuple[pd.DataFrame, pd.DataFrame, Detector]:
    """One event of the default config/config.yaml: TrackML density."""
    cfg = _cfg(ROOT / "config" / "config.yaml")
    hits, parts = _simulate(cfg, 1, seed=5)
    return hits, parts, _detector(cfg)


# --------------------------------------------------------------------------- hits on modules
def test_hits_lie_on_their_module_planes_within_bounds(
    small: tuple[pd.DataFrame, pd.DataFrame, Detector],
) -> None:
    hits, _, det = small
    m = det.modules
    rows = _rows(det, hits)
    assert (rows >= 0).all()  # every (volume, layer, module) is a module of the detector
    sig = hits.particle_id.to_numpy() != 0
    for cols, sel in ((("x", "y", "z"), slice(None)), (("tx", "ty", "tz"), sig)):
        x, y, z = (hits[c].to_numpy(np.float64)[sel] for c in cols)
        u, v, w = m.to_local(rows[sel], x, y, z)
        # float32 storage: 0.5 ulp at |x| ~ 3000 mm is 0.12 um
        assert np.abs(w).max() < 1e-3, cols  # mm: < 1 um from the mid-plane
        assert m.inside(rows[sel], u, v, tol=1e-3).all(), cols
    # noise carries no truth
    assert (hits.loc[~sig, ["tx", "ty", "tz", "tpx", "tpy", "tpz"]].to_numpy() == 0).all()


def test_crossings_are_on_the_plane_in_double_precision() -> None:
    cfg = _cfg(n_particles=500)
    det = _detector(cfg)
    _, cr = simulate_particles(det, TrackerSimConfig.from_config(cfg), 1, make_rng(2, "test"))
    u, v, w = det.modules.to_local(cr.module, cr.x, cr.y, cr.z)
    assert len(cr) > 5000
    assert np.abs(w).max() < 1e-6  # mm
    np.testing.assert_allclose(u, cr.u, atol=1e-6)
    np.testing.assert_allclose(v, cr.v, atol=1e-6)
    assert det.modules.inside(cr.module, u, v).all()
    # ordered by particle, then path length
    assert (np.diff(cr.track) >= 0).all()
    same = np.diff(cr.track) == 0
    assert (np.diff(cr.s)[same] > 0).all()


def test_local_residuals_have_pitch_over_sqrt12() -> None:
    cfg = _cfg(n_particles=3000, noise_per_module=0.0, **IDEAL)
    hits, _ = _simulate(cfg, 1)
    det = _detector(cfg)
    m = det.modules
    rows = _rows(det, hits)
    um, vm, _ = m.to_local(rows, *(hits[c].to_numpy(np.float64) for c in ("x", "y", "z")))
    ut, vt, _ = m.to_local(rows, *(hits[c].to_numpy(np.float64) for c in ("tx", "ty", "tz")))
    pu, pv = m.pitch_u[rows], m.pitch_v[rows]
    # away from the edges, where the measurement is not clipped onto the module (on a
    # trapezoid the half width at the measured v, up to a pitch_v away, is what clips)
    half_u = np.minimum(m.half_width(rows, vt - pv), m.half_width(rows, vt + pv))
    inner = (np.abs(vt) < m.hv[rows] - pv) & (np.abs(ut) < half_u - pu)
    vol = hits.volume_id.to_numpy()
    for name, vols in (
        ("pixel", (7, 8, 9)),
        ("short strip", (12, 13, 14)),
        ("long strip", (16, 17, 18)),
    ):
        sel = inner & np.isin(vol, vols)
        assert sel.sum() > 2000, name
        du = (um - ut)[sel] / pu[sel]
        dv = (vm - vt)[sel] / pv[sel]
        for d in (du, dv):
            # std pitch/sqrt(12), within 10% (statistical precision ~2%)
            np.testing.assert_allclose(d.std(), 1.0 / np.sqrt(12.0), rtol=0.10, err_msg=name)
            # uniform within +-pitch/2 (float32 rounding: 1e-3 pitch)
            assert np.abs(d).max() <= 0.5 + 1e-3, name
            assert abs(d.mean()) < 4 * 0.29 / np.sqrt(len(d)), name


# --------------------------------------------------------------------------- helices
def test_helix_is_exact_without_material_effects() -> None:
    """Uniform field, no scattering, energy loss or interactions: every crossing is the
    vertex state moved by the crossing's path length on the exact helix (helix_move)."""
    cfg = _cfg(field="uniform", n_particles=500, **IDEAL)
    det = _detector(cfg)
    parts, cr = simulate_particles(det, TrackerSimConfig.from_config(cfg), 1, make_rng(3, "test"))
    t = cr.track
    p3 = np.stack([parts["px"], parts["py"], parts["pz"]])[:, t]
    p = np.sqrt((p3 * p3).sum(axis=0))
    st = np.zeros((_N_ROWS, len(cr)))
    st[_X], st[_Y], st[_Z] = parts["vx"][t], parts["vy"][t], parts["vz"][t]
    st[_DX], st[_DY], st[_DZ] = p3 / p
    st[_P], st[_Q] = p, parts["q"][t]
    bz = det.field.central_T
    helix_move(st, (np.zeros(len(cr)), np.zeros(len(cr)), np.full(len(cr), bz)), cr.s)
    assert len(cr) > 5000
    dist = np.sqrt((st[_X] - cr.x) ** 2 + (st[_Y] - cr.y) ** 2 + (st[_Z] - cr.z) ** 2)
    assert dist.max() < 1e-6  # mm
    np.testing.assert_allclose(st[_DX], cr.dx, atol=1e-9)
    np.testing.assert_allclose(st[_DZ], cr.dz, atol=1e-9)
    np.testing.assert_allclose(cr.p, p, rtol=1e-12)  # no energy loss
    # loopers stop at their apex: no crossing on an incoming branch beyond 1 mm
    inwards = (cr.x * cr.dx + cr.y * cr.dy) < 0
    assert inwards.mean() < 0.01


def test_scattering_width_through_a_layer_matches_highland() -> None:
    """1 GeV particles in a uniform field: the change of dip angle between consecutive
    crossings is the polar projected scattering angle at the first crossing's surface;
    its width is Highland's theta0 at the path length x/X0 / cos(incidence)."""
    cfg = _cfg(
        field="uniform",
        n_particles=0,
        n_high_pt=15000,
        high_pt_min_GeV=1.0,
        high_pt_max_GeV=1.0,
        eta_max=1.0,
        v0_per_particle=0.0,
        energy_loss=False,
        nuclear_interactions=False,
    )
    det = _detector(cfg)
    parts, cr = simulate_particles(det, TrackerSimConfig.from_config(cfg), 1, make_rng(4, "test"))
    nxt = np.r_[cr.track[1:] == cr.track[:-1], False]
    # a single module crossed on this surface, the next crossing on another surface
    single = (
        np.r_[True, cr.surface[1:] != cr.surface[:-1]]
        & np.r_[cr.surface[1:] != cr.surface[:-1], True]
    )
    i = np.flatnonzero(nxt & single)
    dip = np.arctan2(cr.dz, np.hypot(cr.dx, cr.dy))
    kink = dip[i + 1] - dip[i]
    t = det.x_over_x0[cr.module[i]] / cr.cos_incidence[i]
    mass = _particle_mass(parts["pdg"][cr.track[i]])
    theta0 = highland_theta0(cr.p[i], t, beta=beta_of(cr.p[i], mass))
    vol = det.modules.volume_id[cr.module[i]]
    for vols in ((8,), (13,), (17,)):
        sel = np.isin(vol, vols)
        assert sel.sum() > 5000
        expected = np.sqrt(np.mean(theta0[sel] ** 2))
        np.testing.assert_allclose(kink[sel].std(), expected, rtol=0.10)
        # and not at normal incidence: the path at |eta| < 1 is longer on average
        normal = highland_theta0(
            cr.p[i][sel], det.x_over_x0[cr.module[i][sel]], beta=beta_of(cr.p[i][sel], mass[sel])
        )
        assert kink[sel].std() > 1.03 * np.sqrt(np.mean(normal**2))


def test_energy_loss_is_the_mean_ionisation_loss() -> None:
    cfg = _cfg(
        field="uniform", n_particles=500, multiple_scattering=False, nuclear_interactions=False
    )
    det = _detector(cfg)
    _, cr = simulate_particles(det, TrackerSimConfig.from_config(cfg), 1, make_rng(5, "test"))
    nxt = np.flatnonzero(cr.track[1:] == cr.track[:-1])
    new_surface = cr.surface[nxt + 1] != cr.surface[nxt]
    # material summed over the modules of the surface left behind (overlaps: two)
    seg = (
        np.cumsum(
            np.r_[True, (cr.track[1:] != cr.track[:-1]) | (cr.surface[1:] != cr.surface[:-1])]
        )
        - 1
    )
    x0 = np.bincount(seg, det.x_over_x0[cr.module] / np.maximum(cr.cos_incidence, 1e-3))
    i = nxt[new_surface]
    loss = cr.p[i] - cr.p[i + 1]
    expected = mean_energy_loss_GeV(x0[seg[i]], SILICON_MIP_MEV_PER_X0)
    assert len(i) > 3000
    # the beam pipe lies inside the first layer: between two surfaces only the first's modules
    np.testing.assert_allclose(loss, expected, rtol=1e-9, atol=1e-15)
    # 36.3 MeV per X0 of silicon: 0.4 MeV through a 1.2% X0 pixel module at normal incidence
    np.testing.assert_allclose(
        mean_energy_loss_GeV(0.012, SILICON_MIP_MEV_PER_X0), 4.36e-4, rtol=1e-3
    )


# --------------------------------------------------------------------------- scattering formulas
def test_highland_formula_value() -> None:
    # PDG 2024 eq. 34.15 by hand: 13.6 MeV / 1 GeV * sqrt(0.01) * (1 + 0.038 ln 0.01)
    # = 0.0136 * 0.1 * (1 - 0.174996) = 1.12200e-3 rad
    np.testing.assert_allclose(highland_theta0(1.0, 0.01, beta=1.0), 1.12200e-3, rtol=1e-5)
    # a 0.2 GeV pion through 0.02 X0: beta = 0.2 / sqrt(0.2^2 + 0.13957^2) = 0.82006,
    # 0.0136 / (0.82006 * 0.2) * sqrt(0.02) * (1 + 0.038 ln(0.02 / 0.82006^2)) = 1.0160e-2 rad
    np.testing.assert_allclose(highland_theta0(0.2, 0.02), 1.0160e-2, rtol=1e-4)
    np.testing.assert_allclose(highland_theta0(0.2, 0.02, q=-1), 1.0160e-2, rtol=1e-4)


def test_scatter_direction_projected_angles_have_width_theta0() -> None:
    rng = make_rng(5, "scatter")
    n = 200_000
    theta, phi = 1.1, 0.9273  # polar angle and azimuth of the direction
    d = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    dx, dy, dz = (np.full(n, c) for c in d)
    theta0 = np.full(n, 3e-3)
    nx, ny, nz = scatter_direction(dx, dy, dz, theta0, rng)
    np.testing.assert_allclose(nx**2 + ny**2 + nz**2, 1.0, rtol=1e-12)
    d_polar = np.arctan2(np.hypot(nx, ny), nz) - theta
    d_azimuth = (np.arctan2(ny, nx) - phi) * np.sin(theta)  # projected on the e1 direction
    for dd in (d_polar, d_azimuth):
        np.testing.assert_allclose(dd.std(), 3e-3, rtol=0.01)
        assert abs(dd.mean()) < 4 * 3e-3 / np.sqrt(n)
    assert abs(np.corrcoef(d_polar, d_azimuth)[0, 1]) < 0.01


# --------------------------------------------------------------------------- the particle gun
def test_minbias_pt_spectrum() -> None:
    rng = make_rng(2, "pt")
    pt = sample_minbias_pt(1_000_000, 0.1, 0.44, 100.0, 6.7, rng)
    assert pt.min() >= 0.1 and pt.max() <= 100.0
    assert np.median(pt) == pytest.approx(0.44, abs=0.002)
    # the shape: dN/dpT = pT (1 + pT/p0)^-n, integrated numerically, against the sample
    p0 = minbias_pt_scale_GeV(0.1, 0.44, 6.7, 100.0)
    grid = np.linspace(0.1, 100.0, 2_000_001)
    dens = grid * (1.0 + grid / p0) ** -6.7
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    assert np.interp(0.44, grid, cdf) == pytest.approx(0.5, abs=1e-4)  # p0 puts the median there
    for lo, hi in [(0.1, 0.2), (0.2, 0.3), (0.5, 1.0), (2.0, 5.0), (5.0, 100.0)]:
        expect = np.interp(hi, grid, cdf) - np.interp(lo, grid, cdf)
        got = np.mean((pt >= lo) & (pt < hi))
        assert got == pytest.approx(expect, abs=4 * np.sqrt(expect / len(pt)) + 1e-5), (lo, hi)
    # rising from pt_min (the phase-space factor pT): 0.15-0.2 GeV holds 6% more than 0.1-0.15
    assert np.mean((pt >= 0.15) & (pt < 0.2)) > 1.04 * np.mean(pt < 0.15)
    assert (pt > 10.0).sum() > 10  # reaches tens of GeV


def test_no_particle_below_pt_min_and_none_softer_than_tracked_leaves_hits() -> None:
    """As in TrackML: no particle below 0.1 GeV (secondaries included), none below 0.15 GeV followed."""
    cfg = _cfg(n_particles=3000, n_high_pt=0)
    sim = TrackerSimConfig.from_config(cfg)
    det = load_detector(cfg)
    hits, parts = simulate_events(det, sim, np.arange(1), make_rng(3, "test"))
    pt = np.hypot(parts["px"], parts["py"]).to_numpy()
    assert pt.min() >= sim.pt_min_GeV
    secondary = np.hypot(parts["vx"], parts["vy"]).to_numpy() > 1.0
    assert secondary.sum() > 100  # secondaries were made, and cut too
    with_hits = parts["particle_id"].isin(hits["particle_id"]).to_numpy()
    assert np.all(pt[with_hits] >= sim.tracked_min_pt_GeV)
    soft = pt < sim.tracked_min_pt_GeV
    assert soft.sum() > 100 and not with_hits[soft].any()
    assert with_hits[~soft].mean() > 0.75


def test_primaries_pt_median_eta_and_beam_spot() -> None:
    cfg = _cfg(n_particles=20000, n_high_pt=0, v0_per_particle=0.0)
    sim = TrackerSimConfig.from_config(cfg)
    g = generate_particles(sim, 2, make_rng(6, "test"))
    assert len(g["q"]) == 40000
    pt = np.hypot(g["px"], g["py"])
    assert np.median(pt) == pytest.approx(sim.pt_median_GeV, abs=0.01)
    eta = np.arcsinh(g["pz"] / pt)
    assert np.abs(eta).max() <= 4.0 + 1e-9 and np.abs(eta).max() > 3.99  # eta up to 4
    assert np.abs(eta).mean() == pytest.approx(2.0, abs=0.03)  # uniform in [-4, 4]
    assert g["vz"].std() == pytest.approx(55.0, rel=0.03)
    assert g["vx"].std() == pytest.approx(0.015, rel=0.03)
    assert set(np.unique(g["q"])) == {-1, 1} and abs(g["q"].mean()) < 0.03
    # species as configured (pions 85%, kaons 10%, protons 5%); the PDG sign is the charge
    a = np.abs(g["pdg"])
    assert np.mean(a == 211) == pytest.approx(0.85, abs=0.01)
    assert np.mean(a == 321) == pytest.approx(0.10, abs=0.01)
    assert np.all(np.sign(g["pdg"]) == g["q"])


def test_high_pt_particles_are_added() -> None:
    cfg = _cfg(
        n_particles=100,
        n_high_pt=50,
        high_pt_min_GeV=2.0,
        high_pt_max_GeV=20.0,
        v0_per_particle=0.0,
    )
    g = generate_particles(TrackerSimConfig.from_config(cfg), 10, make_rng(7, "test"))
    pt = np.hypot(g["px"], g["py"])
    assert len(pt) == 1500
    # the minimum-bias spectrum gives ~ 2.5% above 2 GeV; the 500 high-pT ones lie in [2, 20]
    assert 500 <= (pt >= 2.0).sum() < 500 + 4 * 0.03 * 1000
    assert ((pt >= 2.0) & (pt <= 20.0 + 1e-9)).sum() >= 500


def test_v0s_and_interactions_give_a_quarter_displaced_particles(
    default_event: tuple[pd.DataFrame, pd.DataFrame, Detector],
) -> None:
    _, parts, _ = default_event
    r = np.hypot(parts.vx, parts.vy).to_numpy()
    seen = parts.nhits.to_numpy() > 0
    # of the particles that leave hits, ~a quarter come from displaced vertices
    # (TrackML's sample: 0.24, and 0.29 of all its particles; here all: ~0.38)
    share = float((r[seen] > 1.0).mean())
    assert 0.15 < share < 0.35, share
    # from decays in flight and from material, e.g. the beam pipe at r = 19 mm
    assert ((r > 18.5) & (r < 19.5)).sum() > 50
    assert ((r > 1.0) & (r < 15.0)).sum() > 50  # V0s decaying before the beam pipe
    # their particles are charged pions, kaons and protons
    assert set(np.unique(np.abs(parts.particle_type[r > 1.0]))) <= {211, 321, 2212}


def test_material_secondaries_carry_their_generation(
    default_event: tuple[pd.DataFrame, pd.DataFrame, Detector],
) -> None:
    _, parts, _ = default_event
    gen = parts.generation.to_numpy()
    r = np.hypot(parts.vx, parts.vy).to_numpy()
    # interactions happen in the material: the beam pipe (r = 19 mm) is the innermost
    assert (gen >= 1).sum() > 500 and r[gen >= 1].min() > 18.9
    assert (gen == 2).sum() > 0  # secondaries of secondaries
    # V0 daughters come from the generator: generation 0, displaced
    assert ((gen == 0) & (r > 1.0) & (r < 18.0)).sum() > 50
    # share of material secondaries among particles with >= 4 hits: TrackML's full real events
    # event000001001 and event000001003 (particle tables) hold 0.117 and 0.128
    share = float((gen[parts.nhits.to_numpy() >= 4] >= 1).mean())
    assert 0.08 < share < 0.17, share


def test_without_v0s_and_interactions_every_vertex_is_the_beam_spot() -> None:
    cfg = _cfg(n_particles=300, v0_per_particle=0.0, nuclear_interactions=False)
    _, parts = _simulate(cfg, 2)
    assert len(parts) == 2 * 305
    assert np.hypot(parts.vx, parts.vy).max() < 0.2  # 15 um beam spot
    assert (parts.generation == 0).all()


# --------------------------------------------------------------------------- overlaps, noise, efficiency
def test_overlapping_modules_give_double_hits(
    default_event: tuple[pd.DataFrame, pd.DataFrame, Detector],
) -> None:
    hits, _, _ = default_event
    sig = hits[hits.particle_id != 0]
    n = sig.groupby(["particle_id", "volume_id", "layer_id"]).size()
    share = float((n >= 2).mean())
    assert 0.17 < share < 0.42, share  # TrackML's sample: ~0.3
    # two hits of a particle on one layer are on two different modules
    per_module = sig.groupby(["particle_id", "volume_id", "layer_id", "module_id"]).size()
    assert (per_module == 1).mean() > 0.999


def test_default_config_has_trackml_density_and_noise_share(
    default_event: tuple[pd.DataFrame, pd.DataFrame, Detector],
) -> None:
    hits, parts, det = default_event
    noise = float((hits.particle_id == 0).mean())
    assert 90_000 < len(hits) < 120_000  # TrackML's full events: 94k-104k hits
    assert 0.10 < noise < 0.20  # TrackML: ~15%
    n_noise = int((hits.particle_id == 0).sum())
    expected = 0.8 * len(det.modules)
    assert abs(n_noise - expected) < 4 * np.sqrt(expected)  # Poisson(0.8) per module
    # every volume gets hits: barrels and endcaps, pixels and strips
    assert set(hits.volume_id.unique()) == {7, 8, 9, 12, 13, 14, 16, 17, 18}
    assert (parts.nhits > 0).mean() > 0.75  # TrackML: 0.86 of its particles have hits; here ~0.79


def test_noise_is_poisson_per_module_and_uniform_on_it() -> None:
    rate = 2.0
    cfg = _cfg(n_particles=0, n_high_pt=0, v0_per_particle=0.0, noise_per_module=rate)
    hits, parts = _simulate(cfg, 2)
    det = _detector(cfg)
    m = det.modules
    assert len(parts) == 0 and (hits.particle_id == 0).all()
    rows = _rows(det, hits)
    counts = np.bincount(rows * 2 + hits.event_id.to_numpy(), minlength=2 * len(m))
    mean = rate
    assert abs(counts.mean() - mean) < 4 * np.sqrt(mean / len(counts))
    assert abs(counts.var(ddof=1) / counts.mean() - 1) < 4 * np.sqrt(2 / (len(counts) - 1))
    u, v, w = m.to_local(rows, *(hits[c].to_numpy(np.float64) for c in ("x", "y", "z")))
    assert np.abs(w).max() < 1e-3 and m.inside(rows, u, v, tol=1e-3).all()
    # uniform on the trapezoid: u / half-width uniform in [-1, 1], v with density ~ width
    a = u / m.half_width(rows, v)
    n = len(a)
    assert abs(a.mean()) < 4 * np.sqrt(1 / 3 / n) and abs(np.abs(a).mean() - 0.5) < 4 * np.sqrt(
        1 / 12 / n
    )
    rect = np.isclose(m.minhu[rows], m.maxhu[rows])
    t = v[rect] / m.hv[rows][rect]
    assert abs(t.mean()) < 4 * np.sqrt(1 / 3 / rect.sum())
    trap = ~rect
    if trap.sum() > 1000:
        # density ~ half-width: more hits on the wide side
        wide = np.sign(m.maxhu[rows][trap] - m.minhu[rows][trap]) * v[trap] > 0
        assert wide.mean() > 0.5 + 4 * np.sqrt(0.25 / trap.sum())


def test_hit_efficiency_as_configured() -> None:
    eff = 0.8
    cfg = _cfg(n_particles=1500, noise_per_module=0.0, hit_efficiency=eff)
    det = _detector(cfg)
    sim = TrackerSimConfig.from_config(cfg)
    # the same stream: the particles (and crossings) are those the hits come from
    _, cr = simulate_particles(det, sim, 1, make_rng(8, "test"))
    hits, parts = _simulate(cfg, 1, seed=8)
    ratio = len(hits) / len(cr)
    assert abs(ratio - eff) < 4 * np.sqrt(eff * (1 - eff) / len(cr))
    # nhits counts the recorded hits
    per_particle = hits.groupby("particle_id").size()
    nh = parts.set_index("particle_id").nhits
    np.testing.assert_array_equal(
        per_particle.reindex(nh.index, fill_value=0).to_numpy(), nh.to_numpy()
    )


# --------------------------------------------------------------------------- ids, determinism
def test_ids_follow_trackml_conventions(small: tuple[pd.DataFrame, pd.DataFrame, Detector]) -> None:
    hits, parts, det = small
    assert list(hits.columns) == list(HIT_COLUMNS) and list(parts.columns) == list(PARTICLE_COLUMNS)
    assert dict(hits.dtypes.astype(str)) == HIT_COLUMNS
    assert (_rows(det, hits) >= 0).all()
    for eid, h in hits.groupby("event_id"):
        np.testing.assert_array_equal(h.hit_id.to_numpy(), np.arange(1, len(h) + 1))
        # hits ordered by (volume, layer, module)
        key = _rows(det, h)
        assert (np.diff(key) >= 0).all()
        p = parts[parts.event_id == eid]
        assert p.particle_id.is_unique and (p.particle_id > 0).all()
        assert ((p.particle_id // PARTICLE_ID_STRIDE) == eid).all()
        k = np.sort((p.particle_id % PARTICLE_ID_STRIDE).to_numpy())
        np.testing.assert_array_equal(k, np.arange(1, len(p) + 1))  # k = 1..n
        assert set(h.particle_id[h.particle_id != 0]) <= set(p.particle_id)
    # the particle number k says nothing about the particle's origin
    r = np.hypot(parts.vx, parts.vy).to_numpy()
    k = (parts.particle_id % PARTICLE_ID_STRIDE).to_numpy()
    assert abs(np.corrcoef(k, r > 1.0)[0, 1]) < 0.1
    # within a module, hit order carries no particle information
    h0 = hits[(hits.event_id == 0) & (hits.particle_id != 0)]
    assert abs(np.corrcoef(h0.hit_id, h0.particle_id)[0, 1]) < 0.2


def test_same_seed_and_shard_give_identical_files(tmp_path: Path) -> None:
    cfg = _cfg(n_particles=200)
    cfg["workflow"]["tracker_events_per_shard"] = 2
    a, b, c = tmp_path / "a.root", tmp_path / "b.root", tmp_path / "c.root"
    simulate_shard(cfg, 1, a, progress=False)
    simulate_shard(cfg, 1, b, progress=False)
    simulate_shard(cfg, 0, c, progress=False)
    (ha, pa), (hb, pb), (hc, _) = (read_tracker_root(p) for p in (a, b, c))
    pd.testing.assert_frame_equal(ha, hb)
    pd.testing.assert_frame_equal(pa, pb)
    assert sorted(ha.event_id.unique()) == [2, 3] and sorted(hc.event_id.unique()) == [0, 1]
    assert not np.array_equal(ha.x.to_numpy()[:100], hc.x.to_numpy()[:100])
    # the in-memory function with the shard's stream gives the same tables
    hm, pm = simulate_events(
        load_detector(cfg),
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
        ({"species": {"pion": 0.0, "kaon": 0.0, "proton": 0.0}}, "tracker.simulation.species"),
        ({"n_particles": 200000, "secondaries_mean": 3.5}, "leaves no room for the ids"),
    ],
)
def test_inconsistent_simulation_settings_are_rejected(
    override: dict[str, Any], message: str
) -> None:
    with pytest.raises(HepmlError, match=message) as err:
        TrackerSimConfig.from_config(_cfg(**override))
    assert "\n" not in str(err.value)
