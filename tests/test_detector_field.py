"""hepml.detector.field: the ideal finite solenoid (central field, symmetry, the fall-off at
its end, Maxwell's equations, the table against the exact field), the uniform field, the
config; and the field of TrackML's real sample measured from its truth momenta."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepml import config
from hepml.detector.constants import GEV_PER_T_MM
from hepml.detector.field import SolenoidField, UniformField, field_from_config, ideal_solenoid
from hepml.errors import HepmlError

ROOT = Path(__file__).resolve().parents[1]
TRACKML_DIR = Path(os.environ.get("HEPML_TRACKML_DIR", ROOT.parent / "shared" / "trackml"))
SAMPLE = TRACKML_DIR / "sample"
EVENT = "event000000001"
#: TrackML-like solenoid of the default config: 2 T, radius 1200 mm, half length 2150 mm
RADIUS, HALF = 1200.0, 2150.0


@pytest.fixture(scope="module")
def solenoid() -> SolenoidField:
    return SolenoidField(2.0, RADIUS, HALF)


def _on_axis(z: np.ndarray, central: float = 2.0) -> np.ndarray:
    """B_z on the axis of a finite solenoid, the closed form (Biot-Savart over the sheet):
    B_z(z) ~ (z + b) / sqrt((z + b)^2 + a^2) - (z - b) / sqrt((z - b)^2 + a^2), scaled to ``central``."""
    a, b = RADIUS, HALF

    def f(zz: np.ndarray) -> np.ndarray:
        return (zz + b) / np.sqrt((zz + b) ** 2 + a * a) - (zz - b) / np.sqrt((zz - b) ** 2 + a * a)

    return central * f(np.asarray(z, dtype=np.float64)) / f(np.zeros(1))[0]


def _exact(r: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B_r, B_z) of the exact ideal solenoid (no table), scaled to 2 T at the origin."""
    br, bz = ideal_solenoid(r, z, RADIUS, HALF)
    _, b0 = ideal_solenoid(np.zeros(1), np.zeros(1), RADIUS, HALF)
    return 2.0 * br / b0[0], 2.0 * bz / b0[0]


# --------------------------------------------------------------------------- the solenoid
def test_central_field_and_on_axis_profile(solenoid: SolenoidField) -> None:
    bx, by, bz = solenoid.at(np.zeros(1), np.zeros(1), np.zeros(1))
    np.testing.assert_allclose(bz, 2.0, rtol=1e-9)
    assert abs(bx[0]) < 1e-12 and abs(by[0]) < 1e-12
    assert solenoid.central_T == 2.0 and not solenoid.uniform
    z = np.linspace(-3100.0, 3100.0, 125)
    _, _, bz = solenoid.at(np.zeros_like(z), np.zeros_like(z), z)
    # the elliptic-integral field on the axis is the closed form, to the table's 1e-4 T
    np.testing.assert_allclose(bz, _on_axis(z), atol=2e-4)
    np.testing.assert_allclose(solenoid.bz_axis(z), _on_axis(z), atol=2e-4)


def test_field_falls_at_the_solenoid_end(solenoid: SolenoidField) -> None:
    _, bz_end = solenoid.rz(np.zeros(1), np.full(1, HALF))
    # at the end of a solenoid of half length b and radius a: B_end / B_0 = sqrt(b^2 + a^2) / sqrt(4 b^2 + a^2)
    ratio = np.hypot(HALF, RADIUS) / np.hypot(2 * HALF, RADIUS)  # 0.5515
    np.testing.assert_allclose(bz_end[0] / 2.0, ratio, rtol=1e-3)
    assert 0.5 < bz_end[0] / 2.0 < 0.6  # about half the central field
    z = np.array([0.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0])
    _, bz = solenoid.rz(np.full_like(z, 500.0), z)
    assert (np.diff(bz) < 0).all()  # falls monotonically towards the end
    assert bz[0] > 1.99 and bz[-1] < 0.6
    # the flux leaves through the end: B_r grows there, outwards for z > 0
    br, _ = solenoid.rz(np.full(3, 800.0), np.array([0.0, 1000.0, 2150.0]))
    assert abs(br[0]) < 1e-9 and 0 < br[1] < br[2]


def test_field_is_symmetric_in_z_and_about_the_axis(solenoid: SolenoidField) -> None:
    rng = np.random.default_rng(1)
    x, y = (rng.random((2, 500)) - 0.5) * 2000.0
    z = (rng.random(500) - 0.5) * 6000.0
    b = np.stack(solenoid.at(x, y, z))
    bm = np.stack(solenoid.at(x, y, -z))
    np.testing.assert_allclose(bm[2], b[2], atol=1e-12)  # B_z even in z
    np.testing.assert_allclose(bm[:2], -b[:2], atol=1e-12)  # B_r odd in z
    # azimuthal symmetry: rotating the point rotates the field, B_phi = 0
    c, s = np.cos(0.7), np.sin(0.7)
    br = np.stack(solenoid.at(c * x - s * y, s * x + c * y, z))
    np.testing.assert_allclose(br[0], c * b[0] - s * b[1], atol=1e-9)
    np.testing.assert_allclose(br[2], b[2], atol=1e-9)
    np.testing.assert_allclose(b[0] * y - b[1] * x, 0.0, atol=1e-9)


def test_divergence_and_curl_vanish_inside_the_coil() -> None:
    """div B = (1/r) d(r B_r)/dr + dB_z/dz = 0 and (curl B)_phi = dB_r/dz - dB_z/dr = 0
    away from the current sheet, by central differences of the exact field."""
    rng = np.random.default_rng(2)
    r = 50.0 + rng.random(300) * 1000.0  # inside the sheet at 1200 mm
    z = (rng.random(300) - 0.5) * 6000.0
    h = 0.5
    br_rp, _ = _exact(r + h, z)
    br_rm, _ = _exact(r - h, z)
    _, bz_zp = _exact(r, z + h)
    _, bz_zm = _exact(r, z - h)
    br_zp, _ = _exact(r, z + h)
    br_zm, _ = _exact(r, z - h)
    _, bz_rp = _exact(r + h, z)
    _, bz_rm = _exact(r - h, z)
    div = ((r + h) * br_rp - (r - h) * br_rm) / (2 * h * r) + (bz_zp - bz_zm) / (2 * h)
    curl = (br_zp - br_zm) / (2 * h) - (bz_rp - bz_rm) / (2 * h)
    scale = np.abs((bz_zp - bz_zm) / (2 * h)).max()  # the gradients themselves: ~1e-3 T/mm
    assert scale > 5e-4
    assert np.abs(div).max() < 1e-4 * scale
    assert np.abs(curl).max() < 1e-4 * scale


def test_table_reproduces_the_exact_field(solenoid: SolenoidField) -> None:
    rng = np.random.default_rng(3)
    r = rng.random(2000) * 1100.0
    z = (rng.random(2000) - 0.5) * 6200.0
    br, bz = solenoid.rz(r, z)
    ebr, ebz = _exact(r, z)
    assert np.abs(bz - ebz).max() < 1e-3 and np.abs(br - ebr).max() < 1e-3  # T


def test_uniform_field() -> None:
    f = UniformField(3.8)
    assert f.uniform and f.central_T == 3.8
    x = np.zeros((4, 5))
    bx, by, bz = f.at(x, x, x)
    assert bz.shape == (4, 5) and (bz == 3.8).all() and (bx == 0).all() and (by == 0).all()
    np.testing.assert_array_equal(f.bz_axis(np.array([-1e4, 0.0, 1e4])), 3.8)


def test_field_from_config_and_bad_values() -> None:
    cfg = config.validate({})
    f = field_from_config(cfg["tracker"]["field"])
    assert isinstance(f, SolenoidField) and f.central_T == 2.0
    assert (f.radius_mm, f.half_length_mm) == (RADIUS, HALF)
    u = field_from_config({**cfg["tracker"]["field"], "model": "uniform", "central_T": 1.5})
    assert isinstance(u, UniformField) and u.bz_T == 1.5
    with pytest.raises(HepmlError, match="tracker.field.model: unknown field model 'dipole'"):
        field_from_config({**cfg["tracker"]["field"], "model": "dipole"})
    with pytest.raises(HepmlError, match="radius_mm and half_length_mm must be positive"):
        SolenoidField(2.0, -1.0, HALF)
    with pytest.raises(HepmlError, match="tracker.field.central_T"):
        config.validate({"tracker": {"field": {"central_T": -2.0}}})


# --------------------------------------------------------------------------- TrackML's real field
@pytest.fixture(scope="module")
def real_segments() -> pd.DataFrame:
    """Consecutive true hits of the real sample's particles (pT > 0.5 GeV, > 20 mm apart in
    the transverse plane): the field each segment's momentum turn implies and its midpoint."""
    truth = SAMPLE / f"{EVENT}-truth.csv.gz"
    if not truth.is_file():
        pytest.skip(f"TrackML's sample event is not in {SAMPLE} (set HEPML_TRACKML_DIR)")
    t = pd.read_csv(truth)
    p = pd.read_csv(SAMPLE / f"{EVENT}-particles.csv.gz")
    t = t[t.particle_id != 0].merge(p[["particle_id", "vx", "vy", "vz", "q"]], on="particle_id")
    t["d"] = np.sqrt((t.tx - t.vx) ** 2 + (t.ty - t.vy) ** 2 + (t.tz - t.vz) ** 2)
    t = t.sort_values(["particle_id", "d"], kind="stable")
    a, b = t.iloc[:-1], t.iloc[1:]
    same = a.particle_id.to_numpy() == b.particle_id.to_numpy()
    a, b = a[same], b[same]

    def col(df: pd.DataFrame, c: str) -> np.ndarray:
        return df[c].to_numpy(np.float64)

    pt = 0.5 * (np.hypot(col(a, "tpx"), col(a, "tpy")) + np.hypot(col(b, "tpx"), col(b, "tpy")))
    turn = np.abs(
        np.angle(
            np.exp(
                1j
                * (
                    np.arctan2(col(b, "tpy"), col(b, "tpx"))
                    - np.arctan2(col(a, "tpy"), col(a, "tpx"))
                )
            )
        )
    )
    chord = np.hypot(col(b, "tx") - col(a, "tx"), col(b, "ty") - col(a, "ty"))
    half = np.maximum(0.5 * turn, 1e-12)
    arc = chord * half / np.sin(half)  # transverse arc length from the chord
    # curvature turn / arc of the transverse motion: pT = GEV_PER_T_MM |q| B R
    b_apparent = pt * turn / np.maximum(arc, 1e-9) / (GEV_PER_T_MM * np.abs(col(a, "q")))
    seg = pd.DataFrame(
        {
            "B": b_apparent,
            "pt": pt,
            "chord": chord,
            **{f"{c}a": col(a, f"t{c}") for c in "xyz"},
            **{f"{c}b": col(b, f"t{c}") for c in "xyz"},
        }
    )
    return seg[(seg.pt > 0.5) & (seg.chord > 20.0)].reset_index(drop=True)


def _model_bz(f: SolenoidField, seg: pd.DataFrame) -> np.ndarray:
    """B_z of the model averaged along each segment (9 points)."""
    w = np.linspace(0.0, 1.0, 9)[:, None]
    pts = [seg[f"{c}a"].to_numpy() * (1 - w) + seg[f"{c}b"].to_numpy() * w for c in "xyz"]
    return f.at(*pts)[2].mean(axis=0)


@pytest.mark.parametrize(
    ("z_lo", "z_hi", "lo", "hi"),
    [(0.0, 500.0, 1.9, 2.1), (2000.0, 3100.0, 0.0, 1.0)],
    ids=["central", "forward"],
)
def test_real_sample_field_and_the_solenoid_model(
    real_segments: pd.DataFrame,
    solenoid: SolenoidField,
    z_lo: float,
    z_hi: float,
    lo: float,
    hi: float,
) -> None:
    seg = real_segments
    zm = np.abs(0.5 * (seg.za + seg.zb)).to_numpy()
    sel = (zm >= z_lo) & (zm < z_hi) & (np.abs(seg.za) >= z_lo) & (np.abs(seg.zb) >= z_lo)
    assert sel.sum() >= 30
    measured = float(np.median(seg.B[sel]))
    # 2.0 +- 0.1 T in the central barrel; well below 2 T in the forward strips (~0.5 T)
    assert lo < measured < hi, measured
    model = float(np.median(_model_bz(solenoid, seg[sel])))
    assert abs(model - measured) < 0.3, (model, measured)
