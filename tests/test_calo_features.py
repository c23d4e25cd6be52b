"""Calorimeter images and shower shapes (hepml.features.calo_images, shower_shapes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hepml import config
from hepml.errors import HepmlError
from hepml.features import shower_shapes as ss
from hepml.features.calo_images import (
    CLASSES,
    ImageConfig,
    build_dataset,
    build_images,
    labels_of,
    load_dataset,
    middle_centroid,
    overlap_matrix,
    save_dataset,
)
from hepml.sim.calo import LAYERS, CaloGeometry, CaloSimConfig, simulate_showers


@pytest.fixture(scope="module")
def geo() -> CaloGeometry:
    return CaloGeometry.from_config(config.validate({}))


@pytest.fixture(scope="module")
def showers(geo: CaloGeometry) -> dict[str, np.ndarray]:
    sim = CaloSimConfig.from_config(config.validate({}))
    rng = np.random.default_rng(21)
    pdg = np.repeat([22, 111, 211], 150)
    energy = np.tile([15.0, 60.0], 225)
    out = simulate_showers(geo, sim, pdg, energy, rng)
    out["shower_id"] = np.arange(pdg.size)
    return out


def _empty_windows(geo: CaloGeometry, n: int) -> dict[str, np.ndarray]:
    d: dict[str, np.ndarray] = {
        "pdg_id": np.full(n, 22),
        "e_true_GeV": np.full(n, 10.0, np.float32),
        "eta": np.zeros(n, np.float32),
        "shower_id": np.arange(n),
    }
    for lay in geo.layers:
        d[f"cells_{lay.name}"] = np.zeros((n, lay.n_eta, lay.n_phi))
        d[f"{lay.name}_ieta0"] = np.full(n, -(lay.n_eta // 2), np.int32)
        d[f"{lay.name}_iphi0"] = np.full(n, -(lay.n_phi // 2), np.int32)
    return d


# --------------------------------------------------------------------------- images
def test_overlap_matrix_conserves_cells_inside_the_image() -> None:
    # pixels of 0.003125 from global pixel -16; middle cells of 0.025 from global cell -5
    w = overlap_matrix(np.array([-16]), 32, 0.003125, np.array([-5]), 11, 0.025)
    col = w[0].sum(axis=0)  # fraction of each cell that lands in the image
    # the image spans [-0.05, 0.05): middle cells -2..1 (indices 3..6) entirely, nothing else
    assert col == pytest.approx(np.r_[np.zeros(3), np.ones(4), np.zeros(4)], abs=1e-9)
    # each pixel takes 1/8 of one cell
    assert np.count_nonzero(w[0], axis=1) == pytest.approx(np.ones(32))
    assert w[0].max() == pytest.approx(1 / 8)


def test_single_cell_is_spread_evenly_and_centred(geo: CaloGeometry) -> None:
    d = _empty_windows(geo, 1)
    d["cells_middle"][0, 5, 5] = 20.0  # the impact cell, global (0, 0): eta, phi in [0, 0.025)
    d["cells_strip"][0, 40 + 4, 1] = 5.0  # strip 4: eta in [0.0125, 0.015625)
    im = build_images(d, geo, ImageConfig())
    assert im.e_total_GeV[0] == pytest.approx(25.0)
    assert im.log_e[0] == pytest.approx(np.log(25.0))
    middle = im.images[0, 1]
    # centroid (0.0125, 0.0125) is a pixel corner: the cell covers pixels 12..19 x 14..17
    assert middle.sum() == pytest.approx(20.0 / 25.0)
    nz = np.argwhere(middle > 0)
    assert (
        nz[:, 0].min() == 12
        and nz[:, 0].max() == 19
        and nz[:, 1].min() == 14
        and nz[:, 1].max() == 17
    )
    assert middle[middle > 0] == pytest.approx(np.full(32, 20.0 / 25.0 / 32))
    strip = im.images[0, 0]
    # global strip 4 is image row 4 + 12 = 16; its phi cell [0, 0.1) is image columns 14..29
    assert strip.sum() == pytest.approx(5.0 / 25.0)
    assert np.argwhere(strip > 0)[:, 0].tolist() == [16] * 16
    assert np.argwhere(strip > 0)[:, 1].tolist() == list(range(14, 30))


def test_centroid_is_energy_weighted(geo: CaloGeometry) -> None:
    d = _empty_windows(geo, 1)
    d["cells_middle"][0, 5, 5] = 3.0
    d["cells_middle"][0, 6, 5] = 1.0
    d["cells_middle"][0, 5, 0] = 2.9  # outside the 3x3 around the hottest cell: ignored
    mid = geo.layer("middle")
    ce, cp = middle_centroid(
        d["cells_middle"], d["middle_ieta0"], d["middle_iphi0"], mid.eta_pitch, mid.phi_pitch
    )
    assert ce[0] == pytest.approx((0.5 + 0.25) * 0.025)
    assert cp[0] == pytest.approx(0.5 * 0.025)


def test_bad_showers_are_counted_and_skipped(geo: CaloGeometry, showers: dict) -> None:
    d = {k: v[:10].copy() for k, v in showers.items()}
    d["cells_middle"][2, 3, 3] = np.nan
    d["cells_back"][4, 0, 0] = np.inf
    for name in LAYERS:
        d[f"cells_{name}"][7] = 0.0  # nothing deposited
    arrays = build_dataset(d, geo, ImageConfig())
    assert int(arrays["n_skipped_nonfinite"]) == 2 and int(arrays["n_skipped_empty"]) == 1
    assert arrays["shower_id"].tolist() == [0, 1, 3, 5, 6, 8, 9]
    assert (
        np.isfinite(arrays["images"].astype(np.float32)).all()
        and np.isfinite(arrays["shapes"]).all()
    )


def test_images_hold_the_shower(geo: CaloGeometry, showers: dict) -> None:
    im = build_images(showers, geo, ImageConfig())
    pdg = np.abs(showers["pdg_id"][im.keep])
    sums = im.images.sum(axis=(1, 2, 3))
    em = pdg != 211
    # a 0.1 x 0.2 image around the centroid holds > 90% of an EM shower
    assert np.median(sums[em]) > 0.9
    assert (sums < 1.05).all()
    # per-layer content equals the layer's fraction (strips: images cover whole phi cells)
    f1 = showers["cells_strip"][im.keep].sum(axis=(1, 2)) / im.e_total_GeV
    assert np.median(im.images[em, 0].sum(axis=(1, 2)) / f1[em]) > 0.9


def test_labels() -> None:
    assert labels_of(np.array([22, 111, 211, -211])).tolist() == [0, 1, 2, 2]
    assert CLASSES == ("photon", "pi0", "charged_pion")
    with pytest.raises(HepmlError, match="pdg_id 11"):
        labels_of(np.array([22, 11]))


def test_dataset_round_trip_and_bad_files(geo: CaloGeometry, showers: dict, tmp_path: Path) -> None:
    arrays = build_dataset({k: v[:20] for k, v in showers.items()}, geo, ImageConfig())
    p = tmp_path / "shard0.npz"
    save_dataset(p, arrays)
    assert [f.name for f in tmp_path.iterdir()] == [
        "shard0.npz"
    ]  # no temporary left, no suffix added
    back = load_dataset([p, p])
    assert back["images"].shape == (2 * len(arrays["label"]), 3, 32, 32)
    assert np.array_equal(back["shapes"][: len(arrays["label"])], arrays["shapes"])
    truncated = tmp_path / "trunc.npz"
    truncated.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(HepmlError, match="trunc.npz"):
        load_dataset([truncated])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(HepmlError, match="lacks array"):
        load_dataset([foreign])


# --------------------------------------------------------------------------- shower shapes
def test_middle_shapes_by_hand() -> None:
    m = np.zeros((1, 11, 11))
    m[0, 5, 5] = 10.0
    m[0, 6, 5] = 2.0  # eta neighbour
    m[0, 5, 7] = 1.0  # phi, 2 cells away
    m[0, 8, 5] = 0.5  # eta, 3 cells away
    v = ss.middle_shapes(m, 0.025)
    assert v["R_eta"][0] == pytest.approx((10 + 2 + 1) / 13.5)
    assert v["R_phi"][0] == pytest.approx(12 / 13)
    # w_eta2 over 3x5: weights 10 at 0, 2 at +1, 1 at 0 (phi +2): mean 2/13, var 2/13 - (2/13)^2 cells^2
    var = 2 / 13 - (2 / 13) ** 2
    assert v["w_eta2"][0] == pytest.approx(0.025 * np.sqrt(var))


def test_strip_shapes_by_hand() -> None:
    p = np.zeros((2, 41))
    p[0, 20] = 4.0
    p[0, [19, 21]] = 1.0
    p[0, 24] = 2.0  # second maximum, 4 strips away
    p[0, 22] = 0.5  # minimum between (strip 23 is 0)
    p[1, 20] = 3.0  # a single peak: no second maximum
    v = ss.strip_shapes(p)
    assert v["w_s3"][0] == pytest.approx(np.sqrt(2 / 6))
    assert v["E_ratio"][0] == pytest.approx((4 - 2) / (4 + 2))
    assert v["DeltaE"][0] == pytest.approx(2.0 - 0.0)
    assert v["f_side"][0] == pytest.approx((6.5 - 6) / 6)
    assert v["E_ratio"][1] == 1.0 and v["DeltaE"][1] == 0.0 and v["w_s3"][1] == 0.0
    # w_stot: strips i_max-10 .. i_max+9: (1 + 1 + 0.5*4 + 2*16) / 8.5
    assert v["w_stot"][0] == pytest.approx(np.sqrt((1 + 1 + 2 + 32) / 8.5))


def test_strip_profile_takes_hottest_phi_cell_and_larger_neighbour() -> None:
    s = np.zeros((1, 5, 3))
    s[0, 2, 1] = 5.0
    s[0, 2, 0] = 1.0
    s[0, 2, 2] = 2.0
    assert ss.strip_profile(s)[0].tolist() == [0, 0, 7.0, 0, 0]


def test_shower_shapes_separate_the_particles(geo: CaloGeometry, showers: dict) -> None:
    """pi0s at 15 GeV show two strip maxima (low E_ratio); pions deposit late (high f3)."""
    x = ss.shower_shapes(
        showers["cells_strip"], showers["cells_middle"], showers["cells_back"], 0.025
    )
    col = {n: x[:, i] for i, n in enumerate(ss.NAMES)}
    pdg = np.abs(showers["pdg_id"])
    low = showers["e_true_GeV"] < 20
    assert (
        np.median(col["E_ratio"][(pdg == 111) & low])
        < np.median(col["E_ratio"][(pdg == 22) & low]) - 0.2
    )
    assert np.median(col["w_s3"][(pdg == 111)]) > np.median(col["w_s3"][(pdg == 22)])
    assert np.median(col["f3"][pdg == 211]) > 5 * np.median(col["f3"][pdg == 22])
    # photons: R_eta ~ 0.95-0.99 and w_eta2 ~ 0.01 as in ATLAS (EPJC 79 (2019) 205, Fig. 2)
    assert 0.95 < np.median(col["R_eta"][pdg == 22]) < 0.99
    assert 0.007 < np.median(col["w_eta2"][pdg == 22]) < 0.013
