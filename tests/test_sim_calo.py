"""Physics of the calorimeter simulation (hepml.sim.calo, hepml.sim.showers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hepml import config
from hepml.errors import HepmlError
from hepml.sim import showers as sh
from hepml.sim.calo import (
    LAYERS,
    CaloGeometry,
    CaloSimConfig,
    read_calo_root,
    simulate_shard,
    simulate_showers,
)


@pytest.fixture(scope="module")
def cfg() -> dict:
    return config.validate({"seed": 11, "workflow": {"calo_showers_per_shard": 60}})


@pytest.fixture(scope="module")
def geo(cfg: dict) -> CaloGeometry:
    return CaloGeometry.from_config(cfg)


@pytest.fixture(scope="module")
def sim(cfg: dict) -> CaloSimConfig:
    return CaloSimConfig.from_config(cfg)


def _total(out: dict) -> np.ndarray:
    return sum(out[f"cells_{name}"].sum(axis=(1, 2)).astype(np.float64) for name in LAYERS)


# --------------------------------------------------------------------------- medium
def test_effective_medium_of_lead_liquid_argon(geo: CaloGeometry) -> None:
    med = geo.medium
    # PDG-derived mixture of 1.53 mm Pb + 4.2 mm LAr: X0 ~ 1.9 cm, R_M ~ 4.2 cm, lambda_I ~ 42 cm
    assert med.x0_cm == pytest.approx(1.89, abs=0.03)
    assert med.rm_cm == pytest.approx(4.22, abs=0.1)
    assert med.lambda_cm == pytest.approx(42.1, abs=0.5)
    # e/mip of Pb/LAr (GP: 1/(1 + 0.007 (82 - 18)))
    assert med.ehat == pytest.approx(1.0 / 1.448, rel=1e-6)
    # 25 X0 at eta = 0 is ~1.1 lambda_I, 1.5 lambda_I at |eta| = 0.8
    assert 1.0 < geo.depth_lambda < 1.25
    assert 1.3 < geo.depth_lambda * np.cosh(0.8) < 1.6


# --------------------------------------------------------------------------- EM showers
def test_em_shower_depth_grows_like_ln_e(geo: CaloGeometry) -> None:
    """The maximum and the mean depth move by 1 X0 per e-fold of energy (PDG Eq. 34.36)."""
    rng = np.random.default_rng(1)
    energies = np.array([2.0, 5.0, 10.0, 20.0, 50.0, 100.0])
    mean_depth, median_tmax = [], []
    for e in energies:
        spots = sh.em_spots(np.full(120, e), geo.medium, 0.11, rng)
        mean_depth.append(np.sum(spots.e_GeV * spots.depth_X0) / np.sum(spots.e_GeV))
        prof = sh.gflash_longitudinal(np.full(4000, e), geo.medium, rng)
        median_tmax.append(np.median(prof.t_max))
        # photons start at the conversion point, 9/7 X0 on average: T_max ~ ln y + 0.5 (PDG)
        ln_y = np.log(e * 1000.0 / geo.medium.ec_MeV)
        assert np.median(prof.t_max) + sh.PHOTON_CONVERSION_X0 == pytest.approx(ln_y + 0.5, abs=1.0)
    slope_mean = np.polyfit(np.log(energies), mean_depth, 1)[0]
    slope_tmax = np.polyfit(np.log(energies), median_tmax, 1)[0]
    assert slope_mean == pytest.approx(1.0, abs=0.12)
    assert slope_tmax == pytest.approx(1.0, abs=0.12)


def test_spot_energies_follow_the_energy_profile(geo: CaloGeometry) -> None:
    """Spots drawn from the spot profile, weighted to the energy profile: mean depth alpha/beta."""
    rng = np.random.default_rng(2)
    e = np.full(300, 30.0)
    spots = sh.em_spots(e, geo.medium, 0.11, rng)
    assert np.bincount(spots.item, weights=spots.e_GeV) == pytest.approx(e, rel=1e-5)
    rng2 = np.random.default_rng(2)
    prof = sh.gflash_longitudinal(e, geo.medium, rng2)
    per_shower = np.bincount(spots.item, weights=spots.e_GeV * spots.depth_X0) / e
    expected = prof.alpha / prof.beta  # the same showers: same generator state
    assert np.mean(per_shower - expected) == pytest.approx(0.0, abs=0.1)
    # GFlash spot count 10.3/0.11 E^0.959
    assert spots.item.size == pytest.approx(300 * 10.3 / 0.11 * 30.0**0.959, rel=0.01)


def test_radial_profile_median_is_its_radius() -> None:
    """f(r) = 2 r R^2 / (r^2 + R^2)^2 has median R and 90% quantile 3R."""
    rng = np.random.default_rng(3)
    r = sh.two_component_radius(
        np.full(200_000, 2.0, np.float32), np.full(200_000, 7.0, np.float32), np.float32(1.0), rng
    )
    assert np.median(r) == pytest.approx(2.0, rel=0.02)
    assert np.quantile(r, 0.9) == pytest.approx(6.0, rel=0.03)


# --------------------------------------------------------------------------- pi0
@pytest.mark.parametrize("energy", [10.0, 50.0])
def test_pi0_opening_angle_and_energy_sharing(energy: float) -> None:
    rng = np.random.default_rng(4)
    n = 100_000
    dec = sh.pi0_decay(
        np.full(n, energy), rng.uniform(-0.8, 0.8, n), rng.uniform(-np.pi, np.pi, n), rng
    )
    m = sh.PI0_MASS_GEV
    theta_min = 2.0 * np.arcsin(m / energy)  # symmetric decay; ~ 2 m / E
    assert theta_min == pytest.approx(2 * m / energy, rel=1e-3)
    assert dec.opening.min() >= theta_min * (1 - 1e-6)
    # the Jacobian peak sits at theta_min: 2% of decays lie within 1% above it
    assert np.quantile(dec.opening, 0.005) == pytest.approx(theta_min, rel=0.02)
    # invariant mass of the two photons is the pi0 mass
    m2 = 2 * dec.e1_GeV * dec.e2_GeV * (1 - np.cos(dec.opening))
    np.testing.assert_allclose(np.sqrt(m2), m, rtol=1e-4)
    np.testing.assert_allclose(dec.e1_GeV + dec.e2_GeV, energy, rtol=1e-12)
    # energy sharing flat in cos(theta*): E1/E uniform on [(1-beta)/2, (1+beta)/2]
    counts = np.histogram(dec.e1_GeV / energy, bins=10, range=(0.0, 1.0))[0]
    assert counts == pytest.approx(np.full(10, n / 10), rel=0.05)


def _strip_rms(out: dict) -> np.ndarray:
    """Energy-weighted rms (strips) of the strip profile, strips above 50 MeV (5 sigma of noise)."""
    p = out["cells_strip"].sum(axis=2)
    p = np.where(p > 0.05, p, 0.0)
    i = np.arange(p.shape[1])[None, :]
    p = p[p.sum(axis=1) > 0]  # photons converting behind the strips leave none
    w = p.sum(axis=1)
    m1 = (p * i).sum(axis=1) / w
    return np.sqrt(np.maximum((p * i * i).sum(axis=1) / w - m1**2, 0.0))


def test_pi0_photons_shower_at_their_own_impact_points(
    geo: CaloGeometry, sim: CaloSimConfig
) -> None:
    """At 10 GeV the photons are >= 2 m/E = 27 mrad (~9 strips) apart: a wider strip profile."""
    rng = np.random.default_rng(5)
    n = 200
    pi0 = simulate_showers(geo, sim, np.full(n, 111), np.full(n, 10.0), rng)
    gam = simulate_showers(geo, sim, np.full(n, 22), np.full(n, 10.0), rng)
    assert np.median(_strip_rms(pi0)) > 1.5 * np.median(_strip_rms(gam))


# --------------------------------------------------------------------------- response
@pytest.mark.parametrize("pdg", [22, 111])
def test_summed_cells_match_true_energy_within_sampling_resolution(
    geo: CaloGeometry, sim: CaloSimConfig, pdg: int
) -> None:
    rng = np.random.default_rng(6)
    n, energy = 300, 40.0
    out = simulate_showers(geo, sim, np.full(n, pdg), np.full(n, energy), rng)
    measured = _total(out) + out["e_leak_GeV"]
    resp = measured / energy
    noise2 = sum(lay.n_cells * lay.noise_GeV**2 for lay in geo.layers)
    contained = energy - out["e_leak_GeV"].mean()
    expected_sigma = (
        np.sqrt(sim.sampling_term**2 * contained + noise2) / energy
    )  # 11%/sqrt(E) (+) noise
    assert abs(resp.mean() - 1.0) < 3 * expected_sigma / np.sqrt(n)
    assert resp.std() == pytest.approx(expected_sigma, rel=0.15)
    # containment: the window and 25 X0 keep > 97% of a 40 GeV photon
    assert out["e_leak_GeV"].mean() / energy < 0.03


def test_hadronic_showers_are_deeper_and_wider(geo: CaloGeometry, sim: CaloSimConfig) -> None:
    rng = np.random.default_rng(7)
    n, energy = 300, 50.0
    em = simulate_showers(geo, sim, np.full(n, 22), np.full(n, energy), rng)
    had = simulate_showers(geo, sim, np.full(n, 211), np.full(n, energy), rng)
    hot = _total(had) > 5.0  # interacting pions (MIPs leave ~0.4 GeV)

    def f3(out: dict) -> np.ndarray:
        return out["cells_back"].sum(axis=(1, 2)) / _total(out)

    def middle_width(out: dict) -> np.ndarray:
        """Energy-weighted rms radius (cells) of the middle-layer cells above 3 sigma of noise."""
        c = out["cells_middle"]
        c = np.where(c > 3 * geo.layer("middle").noise_GeV, c, 0.0)
        i = np.arange(c.shape[1])[None, :, None]
        j = np.arange(c.shape[2])[None, None, :]
        w = c.sum(axis=(1, 2))
        var_i = (c * i * i).sum(axis=(1, 2)) / w - ((c * i).sum(axis=(1, 2)) / w) ** 2
        var_j = (c * j * j).sum(axis=(1, 2)) / w - ((c * j).sum(axis=(1, 2)) / w) ** 2
        return np.sqrt(var_i + var_j)

    assert np.mean(f3(had)[hot]) > 5 * np.mean(f3(em))
    assert np.median(middle_width(had)[hot]) > 1.3 * np.median(middle_width(em))
    # ~1.3 lambda_I and e/h ~ 1.7: a third of a pion's energy is seen, the rest
    # leaks out of the back (recorded) or is invisible
    assert np.mean(_total(had)) / energy < 0.45
    assert np.mean(had["e_leak_GeV"]) / energy > 0.15


def test_pions_cross_as_mips_at_the_no_interaction_rate() -> None:
    """A fraction exp(-depth/lambda_I) of pions crosses without interacting, leaving dE/dx only."""
    quiet = config.validate({})
    for layer in quiet["calo"]["layers"].values():
        layer["noise_GeV"] = 0.0
    geo, sim = CaloGeometry.from_config(quiet), CaloSimConfig.from_config(quiet)
    n = 800
    out = simulate_showers(geo, sim, np.full(n, -211), np.full(n, 50.0), np.random.default_rng(9))
    mip = (
        geo.layers[-1].depth_X0 * np.cosh(out["eta"]) * geo.medium.mip_GeV_per_X0
    )  # ~0.34-0.45 GeV
    ratio = _total(out) / mip
    p_mip = float(np.mean(np.exp(-geo.depth_lambda * np.cosh(out["eta"]))))
    # pions interacting in the last X0 add ~2%
    assert np.mean(ratio < 1.5) == pytest.approx(p_mip + 0.01, abs=0.045)
    crossing = ratio < 1.5
    # the MIP signal: the path's dE/dx at the electromagnetic scale, Landau-like fluctuations
    assert np.median(ratio[crossing]) == pytest.approx(0.95, abs=0.05)


def test_noise_rms_per_cell_as_configured() -> None:
    noisy = config.validate(
        {
            "calo": {
                "layers": {
                    "strip": {
                        "depth_X0": 4.3,
                        "eta_pitch": 0.003125,
                        "phi_pitch": 0.1,
                        "window": [81, 3],
                        "noise_GeV": 0.015,
                    },
                    "middle": {
                        "depth_X0": 20.5,
                        "eta_pitch": 0.025,
                        "phi_pitch": 0.025,
                        "window": [11, 11],
                        "noise_GeV": 0.035,
                    },
                    "back": {
                        "depth_X0": 25.0,
                        "eta_pitch": 0.05,
                        "phi_pitch": 0.025,
                        "window": [7, 11],
                        "noise_GeV": 0.020,
                    },
                }
            }
        }
    )
    geo, sim = CaloGeometry.from_config(noisy), CaloSimConfig.from_config(noisy)
    out = simulate_showers(geo, sim, np.full(400, 22), np.full(400, 10.0), np.random.default_rng(8))
    # cells far from a 10 GeV photon's axis hold noise only
    far = {
        "strip": out["cells_strip"][:, np.r_[0:10, 71:81], :],
        "middle": out["cells_middle"][:, [0, 1, 9, 10]][:, :, [0, 1, 9, 10]],
        "back": out["cells_back"][:, [0, 6], :][:, :, [0, 10]],
    }
    for name, cells in far.items():
        sigma = geo.layer(name).noise_GeV
        assert cells.std() == pytest.approx(sigma, rel=0.05), name
        assert abs(cells.mean()) < 4 * sigma / np.sqrt(cells.size), name


# --------------------------------------------------------------------------- shards and files
def test_same_seed_same_arrays_and_unique_ids(cfg: dict, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.root", tmp_path / "b.root", tmp_path / "c.root"
    simulate_shard(cfg, 1, a, progress=False)
    simulate_shard(cfg, 1, b, progress=False)
    simulate_shard(cfg, 2, c, progress=False)
    da, db, dc = read_calo_root(a), read_calo_root(b), read_calo_root(c)
    for k in da:
        assert np.array_equal(da[k], db[k]), k
    assert not np.array_equal(da["cells_middle"], dc["cells_middle"])
    n = cfg["workflow"]["calo_showers_per_shard"]
    assert np.array_equal(da["shower_id"], 1 * n + np.arange(n))
    assert np.array_equal(dc["shower_id"], 2 * n + np.arange(n))
    assert (
        da["cells_strip"].shape == (n, 81, 3)
        and da["cells_middle"].shape == (n, 11, 11)
        and da["cells_back"].shape == (n, 7, 11)
    )
    assert set(np.unique(np.abs(da["pdg_id"]))) <= {22, 111, 211}
    assert (da["e_true_GeV"] >= 10).all() and (da["e_true_GeV"] <= 100).all()


def test_bad_files_and_values_give_one_line_errors(
    cfg: dict, geo: CaloGeometry, sim: CaloSimConfig, tmp_path: Path
) -> None:
    good = tmp_path / "good.root"
    simulate_shard(cfg, 0, good, progress=False)
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(HepmlError, match="truncated.root"):
        read_calo_root(truncated)
    with pytest.raises(HepmlError, match="does not exist"):
        read_calo_root(tmp_path / "missing.root")
    with pytest.raises(HepmlError, match="pdg id 13"):
        simulate_showers(geo, sim, np.array([13]), np.array([10.0]), np.random.default_rng(0))
    with pytest.raises(HepmlError, match="calo.energy_max_GeV"):
        CaloSimConfig.from_config(
            config.validate({"calo": {"energy_min_GeV": 50, "energy_max_GeV": 20}})
        )
    with pytest.raises(HepmlError, match="calo.layers.middle"):
        config.validate({"calo": {"layers": {"middle": {"depth_X0": 20.5}}}})
    with pytest.raises(HepmlError, match="cannot write"):
        simulate_shard(cfg, 0, good / "sub" / "x.root", progress=False)  # parent is a file
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "good.root",
        "truncated.root",
    ]  # nothing half-written
