"""hepml.detector.generate: the default description against TrackML's real detectors.csv
(module by module where the file is there), coverage and overlaps in phi, ids, the
TrackML CSV round trip, config mistakes; read_detectors_csv's bad inputs; the
``hepml detector`` verb."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hepml import config
from hepml.cli import main
from hepml.detector.field import UniformField
from hepml.detector.generate import generate_modules
from hepml.detector.geometry import Detector, Modules
from hepml.detector.trackml import read_detectors_csv, write_detectors_csv
from hepml.errors import HepmlError

ROOT = Path(__file__).resolve().parents[1]
TRACKML_DIR = Path(os.environ.get("HEPML_TRACKML_DIR", ROOT.parent / "shared" / "trackml"))
REAL_CSV = TRACKML_DIR / "detectors.csv.gz"

#: Modules per (volume, layer) in TrackML's detectors.csv (18,728 in all).
TRACKML_COUNTS = {
    **{(v, lay): 108 for v in (7, 9) for lay in range(2, 15, 2)},
    (8, 2): 224, (8, 4): 448, (8, 6): 728, (8, 8): 1092,
    **{(v, lay): 170 for v in (12, 14) for lay in range(2, 13, 2)},
    (13, 2): 840, (13, 4): 1176, (13, 6): 1638, (13, 8): 2142,
    **{(v, lay): 98 for v in (16, 18) for lay in range(2, 13, 2)},
    (17, 2): 2520, (17, 4): 3192,
}  # fmt: skip


def _section() -> dict[str, Any]:
    return copy.deepcopy(config.validate({})["tracker"]["detector"])


@pytest.fixture(scope="module")
def generated() -> Modules:
    return generate_modules(_section())


@pytest.fixture(scope="module")
def real() -> Modules:
    if not REAL_CSV.is_file():
        pytest.skip(
            f"TrackML's detectors.csv.gz is not in {TRACKML_DIR} (set HEPML_TRACKML_DIR to the folder holding it)"
        )
    return read_detectors_csv(REAL_CSV)


def _detector(m: Modules) -> Detector:
    zeros = np.zeros(len(m))
    return Detector.build(m, zeros, zeros, (), UniformField(2.0), "test")


def _layers(m: Modules) -> dict[tuple[int, int], np.ndarray]:
    key = m.volume_id.astype(np.int64) * 1000 + m.layer_id
    return {(int(k) // 1000, int(k) % 1000): np.flatnonzero(key == k) for k in np.unique(key)}


# ---------------------------------------------------------------------- coverage helpers
def _crossed(m: Modules, rows: np.ndarray, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """(S,) number of modules ``rows`` that the S lines origin + t direction (t > 0) cross."""
    c, n, R = m.center[rows], m.normal[rows], m.rotation[rows]
    denom = direction @ n.T  # (S, M)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.einsum("smk,mk->sm", c[None] - origin[:, None], n) / denom
    d = origin[:, None] + t[..., None] * direction[:, None] - c[None]  # (S, M, 3)
    u = np.einsum("smk,mk->sm", d, R[:, :, 0])
    v = np.einsum("smk,mk->sm", d, R[:, :, 1])
    hv = m.hv[rows]
    half_u = m.minhu[rows] + (m.maxhu[rows] - m.minhu[rows]) * (v + hv) / (2.0 * hv)
    inside = (t > 0) & (np.abs(v) <= hv) & (np.abs(u) <= half_u)
    return inside.sum(axis=1)


def _phi(n: int) -> np.ndarray:
    return -np.pi + (np.arange(n) + 0.37) * (2.0 * np.pi / n)


def _barrel_counts(m: Modules, rows: np.ndarray, z: float, n_phi: int) -> np.ndarray:
    """Modules of ``rows`` crossed by transverse rays from (0, 0, z), at n_phi angles.

    A barrel module is a rectangle in a plane parallel to z, so such a ray crosses it
    exactly when z is within its length and phi within the phi of its edges c -+ hu u.
    """
    near = rows[np.abs(m.center[rows, 2] - z) <= m.hv[rows] + 1e-9]
    c, u, hu = m.center[near, :2], m.rotation[near, :2, 0], m.minhu[near, None]
    lo = np.arctan2(*(c - hu * u)[:, ::-1].T)
    hi = np.arctan2(*(c + hu * u)[:, ::-1].T)
    wrap = hi < lo  # the interval crosses phi = +-pi
    starts = np.sort(np.concatenate([lo, np.full(wrap.sum(), -np.pi)]))
    ends = np.sort(np.concatenate([np.where(wrap, np.pi, hi), hi[wrap]]))
    phi = _phi(n_phi)
    return np.searchsorted(starts, phi, side="right") - np.searchsorted(ends, phi, side="left")


def _disk_counts(m: Modules, rows: np.ndarray, r: float, n_phi: int) -> np.ndarray:
    """Modules of the disk ``rows`` crossed by lines along z at radius r, at n_phi angles."""
    phi = _phi(n_phi)
    side = np.sign(m.center[rows[0], 2])
    origin = np.stack([r * np.cos(phi), r * np.sin(phi), np.zeros(n_phi)], axis=1)
    direction = np.tile([0.0, 0.0, side], (n_phi, 1))
    return _crossed(m, rows, origin, direction)


def _overlap_fractions(m: Modules, rows: np.ndarray, n_phi: int = 20000) -> np.ndarray:
    """Fraction of phi where a straight line crosses two modules: per z ring at its centre
    (barrel, the first two rings) or per ring at its radius (disk)."""
    c = m.center[rows]
    if np.median(np.abs(m.normal[rows, 2])) < 0.5:  # barrel
        zs = np.unique(np.round(c[:, 2], 3))[:2]
        return np.array([(_barrel_counts(m, rows, z, n_phi) >= 2).mean() for z in zs])
    radii = np.unique(np.round(np.hypot(c[:, 0], c[:, 1])))
    return np.array([(_disk_counts(m, rows, r, n_phi // 10) >= 2).mean() for r in radii])


# ---------------------------------------------------------------------- against the real file
def test_module_counts_match_trackml(generated: Modules, real: Modules) -> None:
    g, r = _layers(generated), _layers(real)
    assert sorted(g) == sorted(r)
    for key in r:
        assert abs(len(g[key]) - len(r[key])) <= 0.02 * len(r[key]), key
    assert len(generated) == len(real) == 18728


def test_nominal_radius_z_and_area_match_trackml(generated: Modules, real: Modules) -> None:
    dg, dr = _detector(generated), _detector(real)
    area_g, area_r = generated.area_mm2(), real.area_mm2()
    for sg, sr in zip(dg.surfaces, dr.surfaces, strict=True):
        assert (sg.volume_id, sg.layer_id, sg.kind) == (sr.volume_id, sr.layer_id, sr.kind)
        if sr.is_barrel:
            assert abs(sg.r_mm - sr.r_mm) < 1.0, (sr.volume_id, sr.layer_id)
        else:
            assert abs(sg.z_mm - sr.z_mm) < 1.0, (sr.volume_id, sr.layer_id)
        assert abs(sg.r_min_mm - sr.r_min_mm) < 1.0 and abs(sg.r_max_mm - sr.r_max_mm) < 1.0
        assert abs(sg.z_min_mm - sr.z_min_mm) < 1.0 and abs(sg.z_max_mm - sr.z_max_mm) < 1.0
        ratio = area_g[sg.first : sg.stop].sum() / area_r[sr.first : sr.stop].sum()
        assert abs(ratio - 1.0) < 0.05, (sr.volume_id, sr.layer_id, ratio)


def test_modules_match_trackml_one_by_one(generated: Modules, real: Modules) -> None:
    """Every generated module lies on a real one (centre within the file's rounding, same
    axes, same sizes); ids are TrackML's in the barrels and pixel disks, nearly in the strip disks."""
    g, r = _layers(generated), _layers(real)
    for key, rows in r.items():
        cg, cr = generated.center[g[key]], real.center[rows]
        d2 = ((cg[:, None, :] - cr[None, :, :]) ** 2).sum(axis=2)
        j = rows[np.argmin(d2, axis=1)]
        dist = np.sqrt(d2.min(axis=1))
        assert np.median(dist) < 1e-3 and dist.max() < 1e-2, key
        assert len(np.unique(j)) == len(rows), key  # one real module each
        assert np.abs(generated.rotation[g[key]] - real.rotation[j]).max() < 1e-5, key
        for name in ("thickness", "minhu", "maxhu", "hv", "pitch_u", "pitch_v"):
            assert np.array_equal(getattr(generated, name)[g[key]], getattr(real, name)[j]), (
                key,
                name,
            )
        same = generated.module_id[g[key]] == real.module_id[j]
        if key[0] in (7, 8, 9, 13, 17):
            assert same.all(), key
        else:  # strip disks: TrackML's order is not a phi grid; by phi, neighbours swap
            assert same.mean() > 0.8, key
            assert np.abs(generated.module_id[g[key]] - real.module_id[j]).max() <= 2, key


def test_phi_overlaps_match_trackml(generated: Modules, real: Modules) -> None:
    g, r = _layers(generated), _layers(real)
    firsts = [k for k in r if k[1] == 2 or k[0] in (8, 13, 17)]  # every barrel layer, one disk each
    for key in firsts:
        fg = _overlap_fractions(generated, g[key])
        fr = _overlap_fractions(real, r[key])
        np.testing.assert_allclose(fg, fr, atol=0.005, err_msg=str(key))
        assert fr.max() > 0.03, key  # the real modules do overlap


# ---------------------------------------------------------------------- no real file needed
def test_default_is_trackmls_layout(generated: Modules) -> None:
    g = _layers(generated)
    assert {k: len(v) for k, v in g.items()} == TRACKML_COUNTS
    det = _detector(generated)
    radii = [det.surfaces[i].r_mm for i in det.barrel_surfaces]
    # strips: 11 of 21 z rings at r + 1.5 mm, 10 at r - 1.5 mm: the mean is r + 0.07 mm
    np.testing.assert_allclose(radii, [32, 72, 116, 172, 260, 360, 500, 660, 820, 1020], atol=0.08)
    disks_z = sorted(
        {round(abs(s.z_mm)) for s in det.surfaces if not s.is_barrel and s.volume_id == 9}
    )
    assert disks_z == [600, 700, 820, 960, 1100, 1300, 1500]
    # pixel barrel module 1 of layer 2: TrackML's first module (z ring -455, phi -pi + pi/16, r + 0.25)
    row = int(np.flatnonzero((generated.volume_id == 8) & (generated.layer_id == 2))[0])
    np.testing.assert_allclose(generated.center[row], [-31.6303, -6.29166, -455.0], atol=1e-4)
    np.testing.assert_allclose(
        generated.rotation[row],
        [[0.330043, 0, -0.943966], [-0.943966, 0, -0.330043], [0, 1, 0]],
        atol=1e-6,
    )


def test_pixel_disk_ids_follow_trackmls_grid_order(generated: Modules) -> None:
    rows = np.flatnonzero((generated.volume_id == 9) & (generated.layer_id == 2))
    rows = rows[np.argsort(generated.module_id[rows])]
    c = generated.center[rows]
    ring = (np.hypot(c[:, 0], c[:, 1]) > 100).astype(int)
    n = np.where(ring == 0, 40, 68)
    k = np.round((np.arctan2(c[:, 1], c[:, 0]) + np.pi) * n / (2 * np.pi) - 0.5).astype(int)
    # (ring, k) of TrackML's pixel-disk modules 1..17
    expected = [(0, 0), (1, 0), (1, 1), (0, 1), (1, 2), (0, 2), (1, 3), (1, 4), (0, 3), (1, 5),
                (1, 6), (0, 4), (1, 7), (0, 5), (1, 8), (1, 9), (0, 6)]  # fmt: skip
    assert list(zip(ring[:17].tolist(), k[:17].tolist(), strict=True)) == expected
    # the z staggering of the inner ring: -2, +2 alternately, 0.5 more at k = 0 and 3 mod 4
    inner = rows[ring == 0][np.argsort(k[ring == 0])]
    np.testing.assert_allclose(generated.center[inner[:4], 2] - 600.0, [2.5, -2.0, 2.0, -2.5])


def test_rotations_are_orthonormal_and_right_handed(generated: Modules) -> None:
    R = generated.rotation
    np.testing.assert_allclose(
        np.einsum("nki,nkj->nij", R, R), np.broadcast_to(np.eye(3), R.shape), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    det = _detector(generated)
    for s in det.surfaces:
        rows = slice(s.first, s.stop)
        c, w, v = generated.center[rows], generated.normal[rows], generated.rotation[rows, :, 1]
        if s.is_barrel:  # v along +z, w radial within the tilt
            np.testing.assert_allclose(v, np.broadcast_to([0.0, 0.0, 1.0], v.shape), atol=1e-12)
            cos_tilt = (w[:, 0] * c[:, 0] + w[:, 1] * c[:, 1]) / np.hypot(c[:, 0], c[:, 1])
            assert cos_tilt.min() > np.cos(0.151)
        else:  # w along the side's z, v radial outwards
            np.testing.assert_allclose(w[:, 2], np.sign(c[:, 2]), atol=1e-12)
            np.testing.assert_allclose(
                v[:, :2] * np.hypot(c[:, 0], c[:, 1])[:, None], c[:, :2], atol=1e-9
            )


def test_barrel_layers_tile_the_full_phi(generated: Modules) -> None:
    for (vol, layer), rows in _layers(generated).items():
        if vol not in (8, 13, 17):
            continue
        zc = np.unique(np.round(generated.center[rows, 2], 3))
        pitch = zc[1] - zc[0]
        zs = np.concatenate(
            [zc, zc[:-1] + 0.5 * pitch, zc[:-1] + 0.49 * pitch]
        )  # ring centres and seams
        for z in zs:
            counts = _barrel_counts(generated, rows, float(z), 20000)  # <= 0.33 mm apart
            assert counts.min() >= 1, (vol, layer, z)
    # the check finds gaps where there are some: 12 pixel modules cannot close r = 32 mm
    section = _section()
    section["barrels"][0]["modules_phi"] = [12, 32, 52, 78]
    thin = generate_modules(section)
    rows = _layers(thin)[(8, 2)]
    gap = (_barrel_counts(thin, rows, float(thin.center[rows[0], 2]), 20000) == 0).mean()
    assert gap > 0.01


def test_disk_rings_cover_the_full_phi(generated: Modules) -> None:
    for (vol, layer), rows in _layers(generated).items():
        if vol in (8, 13, 17) or layer != 2:
            continue
        radii = np.unique(np.round(np.hypot(generated.center[rows, 0], generated.center[rows, 1])))
        for r in radii:
            assert _disk_counts(generated, rows, float(r), 1440).min() >= 1, (vol, r)


@pytest.mark.parametrize("tilt", [0.0, 0.14, -0.3])
def test_phi_overlap_fractions_follow_the_module_width(tilt: float) -> None:
    """A module at distance r, tilted by tau, spans atan(hu cos tau / (r - hu sin tau)) +
    atan(hu cos tau / (r + hu sin tau)) in phi; n of them overlap on that total less 2 pi."""
    section = _section()
    section["barrels"][0]["tilt_rad"] = tilt
    m = generate_modules(section)
    rows = _layers(m)[(8, 2)]
    c = m.center[rows]
    for z, r in ((-455.0, 32.25), (-385.0, 31.75)):  # even and odd z rings: r -+ 0.25 mm
        ring = rows[np.isclose(c[:, 2], z)]
        assert np.allclose(np.hypot(m.center[ring, 0], m.center[ring, 1]), r)
        hu, ct, st = 8.4, np.cos(tilt), np.sin(tilt)
        span = np.arctan(hu * ct / (r - hu * st)) + np.arctan(hu * ct / (r + hu * st))
        expected = len(ring) * span / (2 * np.pi) - 1.0
        measured = (_barrel_counts(m, rows, z, 20000) >= 2).mean()
        assert abs(measured - expected) < 1e-3, (tilt, z, measured, expected)


def test_ids_unique_numbered_from_one_and_sorted(generated: Modules) -> None:
    for key, rows in _layers(generated).items():
        assert np.array_equal(generated.module_id[rows], np.arange(1, len(rows) + 1)), key
    order = np.lexsort((generated.module_id, generated.layer_id, generated.volume_id))
    assert np.array_equal(order, np.arange(len(generated)))
    again = generate_modules(_section())
    assert np.array_equal(again.center, generated.center)
    assert np.array_equal(again.rotation, generated.rotation)


@pytest.mark.parametrize("name", ["detectors.csv", "detectors.csv.gz"])
def test_csv_round_trip_keeps_every_value(tmp_path: Path, generated: Modules, name: str) -> None:
    out = tmp_path / name
    write_detectors_csv(out, generated)
    back = read_detectors_csv(out)
    for f in ("volume_id", "layer_id", "module_id"):
        assert np.array_equal(getattr(back, f), getattr(generated, f)), f
    for f in ("center", "rotation", "thickness", "minhu", "maxhu", "hv", "pitch_u", "pitch_v"):
        np.testing.assert_allclose(
            getattr(back, f), getattr(generated, f), rtol=1e-8, atol=1e-12, err_msg=f
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(section: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = section
        for p in head:
            node = node[int(p)] if p.isdigit() else node[p]
        node[int(last) if last.isdigit() else last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (_set("barrels.0.modules_phi", [16, 32, 52]), "tracker.detector.barrels.0.modules_phi"),
        (_set("barrels.1.layer_radii_mm", [260.0, 360.0, 350.0, 660.0]), "tracker.detector.barrels.1.layer_radii_mm.2"),
        (_set("barrels.0.r_stagger_mm", 40.0), "tracker.detector.barrels.0.r_stagger_mm"),
        (_set("barrels.2.half_width_mm", float("nan")), "tracker.detector.barrels.2.half_width_mm"),
        (_set("barrels.2.volume_id", 13), "tracker.detector.barrels.2.volume_id"),
        (_set("endcaps.1.positive_volume_id", 8), "tracker.detector.endcaps.1.positive_volume_id"),
        (_set("endcaps.0.positive_volume_id", 7), "tracker.detector.endcaps.0.positive_volume_id"),
        (_set("endcaps.0.disk_z_mm", [600.0, 1500.0, 700.0]), "tracker.detector.endcaps.0.disk_z_mm.2"),
        (_set("endcaps.0.disk_z_mm", [2.0, 700.0]), "tracker.detector.endcaps.0.disk_z_mm"),
        (_set("endcaps.0.rings.0.modules_phi", 42), "tracker.detector.endcaps.0.rings.0.phi_sub_stagger_z_mm"),
        (_set("endcaps.1.rings.2.modules_phi", 61), "tracker.detector.endcaps.1.rings.2.phi_stagger_z_mm"),
        (_set("endcaps.0.rings.0.half_length_mm", 70.0), "tracker.detector.endcaps.0.rings.0.half_length_mm"),
        (_set("endcaps.2.rings.1.radius_mm", 800.0), "tracker.detector.endcaps.2.rings.1.radius_mm"),
        (_set("endcaps.2.rings.1.z_offset_mm", float("inf")), "tracker.detector.endcaps.2.rings.1.z_offset_mm"),
        (lambda s: s.update(barrels=[], endcaps=[]), "tracker.detector"),
    ],
)  # fmt: skip
def test_bad_description_is_one_line_naming_the_key(
    edit: Callable[[dict[str, Any]], None], key: str
) -> None:
    section = _section()
    edit(section)
    with pytest.raises(HepmlError) as err:
        generate_modules(section)
    msg = str(err.value)
    assert f"key '{key}" in msg and "\n" not in msg, msg


def test_schema_rejects_out_of_range_values_naming_the_key() -> None:
    bad = {
        "tracker": {"detector": {"barrels": [{**_section()["barrels"][0], "half_length_mm": -1.0}]}}
    }
    with pytest.raises(HepmlError, match=r"tracker\.detector\.barrels\.0\.half_length_mm"):
        config.validate(bad)
    with pytest.raises(HepmlError, match=r"tracker\.detector\.source"):
        config.validate({"tracker": {"detector": {"source": "gdml"}}})
    with pytest.raises(
        HepmlError, match=r"unknown key 'tracker\.detector\.endcaps\.0\.rings\.0\.tilt_rad'"
    ):
        section = _section()
        section["endcaps"][0]["rings"][0]["tilt_rad"] = 0.1
        config.validate({"tracker": {"detector": {"endcaps": section["endcaps"]}}})


# ---------------------------------------------------------------------- read_detectors_csv's bad input
@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory, generated: Modules) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("small") / "detectors.csv"
    rows = np.flatnonzero(generated.volume_id == 8)[:20]
    sub = Modules(*(getattr(generated, f)[rows] for f in Modules.__dataclass_fields__))
    write_detectors_csv(path, sub)
    return pd.read_csv(path)


def _bad_missing(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["module_hv"])


def _bad_nan(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[6, "cy"] = np.nan
    return df


def _bad_duplicate(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[9, "module_id"] = df.loc[3, "module_id"]
    return df


def _bad_zero(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[11, "module_maxhu"] = 0.0
    return df


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (_bad_missing, ["lacks column 'module_hv'"]),
        (_bad_nan, ["line 8", "column 'cy'", "not a finite number"]),
        (_bad_duplicate, ["line 11", "volume_id, layer_id, module_id", "first on line 5"]),
        (_bad_zero, ["line 13", "column 'module_maxhu'", "must be positive"]),
    ],
)
def test_read_detectors_csv_bad_input_is_one_line(
    tmp_path: Path,
    small_csv: pd.DataFrame,
    spoil: Callable[[pd.DataFrame], pd.DataFrame],
    expected: list[str],
) -> None:
    path = tmp_path / "bad-detectors.csv"
    spoil(small_csv).to_csv(path, index=False)
    with pytest.raises(HepmlError) as err:
        read_detectors_csv(path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg, msg
    for part in expected:
        assert part in msg, msg
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing written beside it


# ---------------------------------------------------------------------- the CLI verb
def test_cli_detector_prints_surfaces_and_writes_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], generated: Modules
) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("seed: 3\n")
    out = tmp_path / "out" / "detectors.csv.gz"
    assert main(["detector", "--config", str(cfg), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 49  # 48 surfaces and a total
    assert lines[7].split()[:6] == ["volume", "8", "layer", "2", "barrel", "224"]
    assert lines[-1].startswith("18728 modules on 48 surfaces (10 barrel layers, 38 disks)")
    back = read_detectors_csv(out)
    assert np.array_equal(back.module_id, generated.module_id)
    np.testing.assert_allclose(back.center, generated.center, rtol=1e-8, atol=1e-12)
    # the written file, configured as the detector, describes the same surfaces
    cfg2 = tmp_path / "config2.yaml"
    cfg2.write_text(f"tracker:\n  detector:\n    source: trackml_csv\n    trackml_csv: {out}\n")
    assert main(["detector", "--config", str(cfg2)]) == 0
    again = capsys.readouterr().out.splitlines()
    assert again[:-1] == lines[:-1] and again[-1].endswith(f"source {out}")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            "tracker:\n  detector:\n    barrels:\n      - {volume_id: 8, layer_radii_mm: [32.0, 72.0], modules_phi: [16],"
            " n_rings_z: 14, ring_pitch_z_mm: 70.0, half_width_mm: 8.4, half_length_mm: 36.0,"
            " thickness_mm: 0.15, pitch_u_mm: 0.05, pitch_v_mm: 0.05625}\n",
            "tracker.detector.barrels.0.modules_phi",
        ),
        ("tracker:\n  detector:\n    source: trackml_csv\n", "tracker.detector.trackml_csv"),
        ("tracker:\n  detector:\n    n_layers: 3\n", "tracker.detector.n_layers"),
    ],
)
def test_cli_detector_bad_config_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str
) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = tmp_path / "detectors.csv"
    assert main(["detector", "--config", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err, err
    assert not out.exists()


def test_cli_detector_rejects_other_suffixes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("{}\n")
    assert main(["detector", "--config", str(cfg), "--out", str(tmp_path / "d.parquet")]) == 2
    assert "--out" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]
