"""Simulated against real TrackML events: figures, bands, residuals, ``hepml compare-real``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepml.cli import main
from hepml.detector.geometry import Modules
from hepml.evaluate import realdata as rd

ROOT = Path(__file__).resolve().parents[1]
TRACKML_DIR = Path(os.environ.get("HEPML_TRACKML_DIR", ROOT.parent / "shared" / "trackml"))
SAMPLE = TRACKML_DIR / "sample"
EVENT = "event000000001"
DETECTORS = TRACKML_DIR / "detectors.csv.gz"
PLOT_FILES = {
    "hits_per_particle.png",
    "layer_hit_share.png",
    "particle_pt.png",
    "particle_eta.png",
    "double_hit_share.png",
    "residuals.png",
}

needs_sample = pytest.mark.skipif(
    not (SAMPLE / f"{EVENT}-truth.csv.gz").is_file() or not DETECTORS.is_file(),
    reason=f"the real TrackML sample ({SAMPLE}) and detectors.csv.gz are not in {TRACKML_DIR} "
    "(set HEPML_TRACKML_DIR to the folder holding sample/ and detectors.csv.gz)",
)


# --------------------------------------------------------------------------- hand-made events
def make_hits(rows: list[tuple[int, int, int, int, float, float, float]]) -> pd.DataFrame:
    """Hits from (particle_id, volume_id, layer_id, module_id, x, y, z); truth = measured."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 7)
    n = len(a)
    return pd.DataFrame(
        {
            "event_id": np.ones(n, np.int64),
            "hit_id": np.arange(1, n + 1),
            "x": a[:, 4],
            "y": a[:, 5],
            "z": a[:, 6],
            "volume_id": a[:, 1].astype(np.int32),
            "layer_id": a[:, 2].astype(np.int32),
            "module_id": a[:, 3].astype(np.int64),
            "particle_id": a[:, 0].astype(np.int64),
            "tx": a[:, 4],
            "ty": a[:, 5],
            "tz": a[:, 6],
        }
    )


def make_particles(rows: list[tuple[int, float, float, float, float, float]]) -> pd.DataFrame:
    """Particles from (particle_id, vx, vy, px, py, pz); vz = 0."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return pd.DataFrame(
        {
            "event_id": np.ones(len(a), np.int64),
            "particle_id": a[:, 0].astype(np.int64),
            "vx": a[:, 1],
            "vy": a[:, 2],
            "vz": np.zeros(len(a)),
            "px": a[:, 3],
            "py": a[:, 4],
            "pz": a[:, 5],
            "q": np.ones(len(a), np.int32),
            "nhits": np.zeros(len(a), np.int32),
            "particle_type": np.full(len(a), 211, np.int32),
        }
    )


@pytest.fixture()
def tiny() -> tuple[pd.DataFrame, pd.DataFrame]:
    """6 hits: particle 1 twice on (8, 2) (an overlap) and once on (8, 4); particle 2 once on
    (13, 2); two noise hits on (17, 2) and (7, 2). Particle 2 starts at r = 5 mm; particle 3
    (r = 50 mm) has no hit."""
    hits = make_hits(
        [
            (1, 8, 2, 1, 32.0, 0.0, 10.0),
            (1, 8, 2, 2, 33.0, 1.0, 10.5),
            (1, 8, 4, 1, 72.0, 0.0, 22.0),
            (2, 13, 2, 1, 260.0, 0.0, -100.0),
            (0, 17, 2, 1, 0.0, 660.0, 30.0),
            (0, 7, 2, 1, 50.0, 0.0, -1500.0),
        ]
    )
    particles = make_particles(
        [
            (1, 0.01, 0.0, 1.0, 0.0, 0.3),
            (2, 3.0, 4.0, 0.0, 2.0, -1.0),
            (3, 50.0, 0.0, 1.0, 1.0, 0.0),
        ]
    )
    return hits, particles


def test_figures_of_a_tiny_event(tiny: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    hits, particles = tiny
    f = rd.event_figures(hits, particles)
    # three (particle, layer) pairs with a hit, one of them with two hits
    assert f["double_hit_share"] == pytest.approx(1.0 / 3.0)
    assert f["hit_share_pixel_barrel"] == pytest.approx(3 / 6)
    assert f["hit_share_pixel_endcaps"] == pytest.approx(1 / 6)
    assert f["hit_share_short_strip_barrel"] == pytest.approx(1 / 6)
    assert f["hit_share_long_strip_barrel"] == pytest.approx(1 / 6)
    assert f["hit_share_short_strip_endcaps"] == 0.0
    assert f["hit_share_long_strip_endcaps"] == 0.0
    assert f["noise_share"] == pytest.approx(2 / 6)
    # hits per particle: 3 and 1 (particle 3 has none and is not counted)
    assert f["hits_per_particle_median"] == 2.0
    assert f["hits_per_particle_mean"] == 2.0
    # of the two particles with hits, particle 2 (r = 5 mm) is a secondary; particle 3 has no hit
    assert f["secondary_share"] == pytest.approx(0.5)
    by_vol = rd.double_hit_share_by_volume(hits)
    assert by_vol.loc[8, "share"] == 0.5 and by_vol.loc[8, "pairs"] == 2
    assert by_vol.loc[13, "share"] == 0.0
    assert 17 not in by_vol.index  # noise has no (particle, layer) pair
    share = rd.layer_hit_share(hits)
    assert share.sum() == pytest.approx(1.0)
    assert share.loc[(8, 2)] == pytest.approx(2 / 6)
    pt, eta = rd.particle_pt_eta(hits, particles)
    np.testing.assert_allclose(pt, [1.0, 2.0])
    np.testing.assert_allclose(eta, [np.arcsinh(0.3), np.arcsinh(-0.5)])


def test_eta_percentile_of_the_hit_positions() -> None:
    # 21 hits at |eta| = 0.0, 0.1, ..., 2.0 (alternating sign): the 95th percentile is 1.9
    etas = np.round(np.arange(21) * 0.1, 10)
    r = 500.0
    rows = [(1, 13, 2, 1, r, 0.0, float((-1) ** i * r * np.sinh(e))) for i, e in enumerate(etas)]
    hits = make_hits(rows)
    np.testing.assert_allclose(rd.hit_abs_eta(hits), etas, atol=1e-12)
    f = rd.event_figures(hits, make_particles([(1, 0, 0, 1, 0, 0)]))
    assert f["hit_abs_eta_p95"] == pytest.approx(1.9)


def test_figures_are_per_event(tiny: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    hits, particles = tiny
    two = pd.concat([hits, hits.assign(event_id=2)], ignore_index=True)
    with pytest.raises(ValueError, match="per event"):
        rd.event_figures(two, particles)


# --------------------------------------------------------------------------- bands
def test_bands_accept_inside_and_reject_outside() -> None:
    share = rd.BANDS["hit_share_pixel_barrel"]
    assert share.contains(0.70 * 0.242, 0.242) and share.contains(1.30 * 0.242, 0.242)
    assert not share.contains(0.69 * 0.242, 0.242) and not share.contains(1.31 * 0.242, 0.242)
    noise = rd.BANDS["noise_share"]
    assert noise.contains(0.5 * 0.15, 0.15) and noise.contains(1.6 * 0.15, 0.15)
    assert not noise.contains(0.0, 0.15) and not noise.contains(0.25, 0.15)
    dbl = rd.BANDS["double_hit_share"]
    assert dbl.contains(0.6 * 0.278, 0.278) and not dbl.contains(1.51 * 0.278, 0.278)
    hpp = rd.BANDS["hits_per_particle_mean"]
    assert hpp.contains(12.0, 10.0) and hpp.contains(8.0, 10.0)
    assert not hpp.contains(12.1, 10.0) and not hpp.contains(7.9, 10.0)
    assert rd.BANDS["secondary_share"].contains(0.9, 0.24) is None
    assert not share.contains(math.nan, 0.2)  # an undefined figure fails its band
    # a real value of 0: equal is in band, anything else is an infinite ratio
    assert rd.ratio(0.0, 0.0) == 1.0 and rd.ratio(0.1, 0.0) == math.inf
    assert share.contains(0.0, 0.0) and not share.contains(0.1, 0.0)


def test_compare_rows_in_table_order() -> None:
    real = {
        "hit_share_pixel_barrel": 0.242,
        "hit_share_pixel_endcaps": 0.262,
        "hit_share_short_strip_barrel": 0.229,
        "hit_share_short_strip_endcaps": 0.131,
        "hit_share_long_strip_barrel": 0.084,
        "hit_share_long_strip_endcaps": 0.053,
        "noise_share": 0.15,
        "hits_per_particle_median": 11.0,
        "hits_per_particle_mean": 10.0,
        "double_hit_share": 0.278,
        "hit_abs_eta_p95": 3.67,
        "secondary_share": 0.24,
        "weighted_pt_median_GeV": 0.45,
        "weighted_soft_share": 0.08,
        "material_secondary_share": 0.098,
        "material_secondary_hard_share": 0.0,
    }
    sim = {
        **real,
        "noise_share": 0.05,
        "hits_per_particle_mean": 13.5,
        "secondary_share": 0.01,
        "weighted_soft_share": 0.233,  # hepml's spectrum before the Hagedorn pT factor: 2.9x
        "material_secondary_hard_share": 0.34,
    }
    rows = rd.compare(sim, real)
    assert [r.figure for r in rows] == list(rd.BANDS)
    by = {r.figure: r for r in rows}
    assert by["noise_share"].ok is False and by["noise_share"].ratio == pytest.approx(1 / 3)
    assert by["hits_per_particle_mean"].ok is False
    assert by["hits_per_particle_mean"].difference == pytest.approx(3.5)
    assert by["hit_share_pixel_barrel"].ok is True and by["hit_share_pixel_barrel"].ratio == 1.0
    assert by["secondary_share"].ok is None  # reported without a band
    assert by["material_secondary_hard_share"].ok is None
    assert by["material_secondary_hard_share"].ratio == math.inf
    assert [r.figure for r in rd.out_of_band(rows)] == [
        "noise_share",
        "hits_per_particle_mean",
        "weighted_soft_share",
    ]
    with pytest.raises(KeyError, match="double_hit_share"):
        rd.compare({k: v for k, v in sim.items() if k != "double_hit_share"}, real)


# --------------------------------------------------------------------------- residuals
def one_module(pitch_u: float, pitch_v: float) -> Modules:
    """One barrel-like module at (100, 0, 0) mm: u along y, v along z, w (normal) along x."""
    rot = np.array([[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    return Modules(
        volume_id=np.array([8], np.int32),
        layer_id=np.array([2], np.int32),
        module_id=np.array([5], np.int64),
        center=np.array([[100.0, 0.0, 0.0]]),
        rotation=rot,
        thickness=np.array([0.15]),
        minhu=np.array([8.0]),
        maxhu=np.array([8.0]),
        hv=np.array([36.0]),
        pitch_u=np.array([pitch_u]),
        pitch_v=np.array([pitch_v]),
    )


def test_local_residuals_of_known_offsets() -> None:
    m = one_module(0.05, 0.1)
    hits = make_hits(
        [
            (1, 8, 2, 5, 100.0, 1.0, 2.0),
            (2, 8, 2, 5, 100.0, -3.0, 10.0),
            (3, 8, 2, 9, 100.0, 0.0, 0.0),  # module 9 is not in the modules
            (4, 8, 2, 5, 100.0, 0.0, 0.0),  # truth 5 mm off the module plane
            (0, 8, 2, 5, 100.0, 0.0, 0.0),  # noise: no truth crossing
        ]
    )
    # measured = truth + (du, dv) in local (u, v) = (y, z)
    hits.loc[0, ["y", "z"]] += [0.02, -0.03]
    hits.loc[1, ["y", "z"]] += [-0.01, 0.05]
    hits.loc[3, "tx"] = 105.0
    res = rd.local_residuals(hits, m)
    assert res.n_unknown_module == 1 and res.n_off_module == 1
    np.testing.assert_allclose(res.table["du_mm"], [0.02, -0.01], atol=1e-12)
    np.testing.assert_allclose(res.table["dv_mm"], [-0.03, 0.05], atol=1e-12)
    np.testing.assert_allclose(res.in_pitch("u"), [0.4, -0.2], atol=1e-10)
    np.testing.assert_allclose(res.in_pitch("v"), [-0.3, 0.5], atol=1e-10)
    rms = res.rms_pitch()
    assert rms["pixel u"] == pytest.approx(math.sqrt((0.16 + 0.04) / 2))
    assert math.isnan(rms["short strip u"])
    assert rd.module_rows(m, np.array([8, 8]), np.array([2, 2]), np.array([5, 6])).tolist() == [
        0,
        -1,
    ]


def test_uniform_smearing_over_a_pitch_gives_pitch_over_sqrt12() -> None:
    """Hits spread uniformly over one cell around the truth: RMS residual pitch/sqrt(12)."""
    rng = np.random.default_rng(9)
    m = one_module(0.05, 0.5)
    n = 20000
    tu, tv = rng.uniform(-7.0, 7.0, n), rng.uniform(-30.0, 30.0, n)
    du, dv = rng.uniform(-0.025, 0.025, n), rng.uniform(-0.25, 0.25, n)
    rows = np.zeros(n, dtype=np.int64)
    tx, ty, tz = m.to_global(rows, tu, tv)
    x, y, z = m.to_global(rows, tu + du, tv + dv)
    hits = pd.DataFrame(
        {
            "volume_id": 8,
            "layer_id": 2,
            "module_id": 5,
            "particle_id": np.arange(1, n + 1),
            "x": x,
            "y": y,
            "z": z,
            "tx": tx,
            "ty": ty,
            "tz": tz,
        }
    )
    rms = rd.local_residuals(hits, m).rms_pitch()
    # the RMS of n uniform draws scatters by ~0.289 * 0.45 / sqrt(n) relative: 1e-3 here
    assert rms["pixel u"] == pytest.approx(rd.UNIFORM_RMS_PITCH, rel=0.01)
    assert rms["pixel v"] == pytest.approx(rd.UNIFORM_RMS_PITCH, rel=0.01)


# --------------------------------------------------------------------------- the real sample
@pytest.fixture(scope="module")
def real_event() -> tuple[pd.DataFrame, pd.DataFrame]:
    from hepml.io import read_trackml_csv

    hits, particles = read_trackml_csv(SAMPLE, EVENT)
    assert particles is not None
    return hits, particles


@needs_sample
def test_real_sample_gives_the_issue_table(real_event: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    f = rd.event_figures(*real_event)
    expected = {
        "hit_share_pixel_barrel": 0.242,
        "hit_share_pixel_endcaps": 0.262,
        "hit_share_short_strip_barrel": 0.229,
        "hit_share_short_strip_endcaps": 0.131,
        "hit_share_long_strip_barrel": 0.084,
        "hit_share_long_strip_endcaps": 0.053,
        "double_hit_share": 0.278,
    }
    for k, v in expected.items():
        assert f[k] == pytest.approx(v, abs=0.0005), k
    assert f["noise_share"] == pytest.approx(0.15, abs=0.005)
    assert f["hits_per_particle_median"] == 11.0
    assert f["hits_per_particle_mean"] == pytest.approx(10.0, abs=0.05)
    assert f["hit_abs_eta_p95"] == pytest.approx(3.67, abs=0.005)
    assert f["secondary_share"] == pytest.approx(0.24, abs=0.005)
    # 41 of the 418 particles with 4+ hits were made in the material, none above 0.5 GeV
    assert f["material_secondary_share"] == pytest.approx(41 / 418, abs=1e-9)
    assert f["material_secondary_hard_share"] == 0.0
    assert rd.event_counts(*real_event)["particles_with_hits"] == 468


@needs_sample
def test_real_clusters_beat_a_single_cell(real_event: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Every real hit lies on its detectors.csv module; the cluster centroids measure the
    crossing better than one cell would (RMS < pitch/sqrt(12)) in u for all technologies."""
    from hepml.detector.trackml import read_detectors_csv

    res = rd.local_residuals(real_event[0], read_detectors_csv(DETECTORS))
    assert res.n_unknown_module == 0 and res.n_off_module == 0
    assert len(res.table) == int((real_event[0]["particle_id"] > 0).sum())
    rms = res.rms_pitch()
    for tech in rd.TECHNOLOGIES:
        assert 0.1 < rms[f"{tech} u"] < rd.UNIFORM_RMS_PITCH, tech


# --------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def sim_files(
    tmp_path_factory: pytest.TempPathFactory, real_event: tuple[pd.DataFrame, pd.DataFrame]
) -> dict[str, Path]:
    """The real sample as simulated files: as it is (event 1), and in a two-event file with
    the sample (event 1) and the sample without its noise hits (event 7)."""
    from hepml.io import write_tracker_root

    hits, particles = real_event
    d = tmp_path_factory.mktemp("sim")
    same = d / "same.root"
    write_tracker_root(same, hits, particles)
    quiet = hits[hits["particle_id"] != 0].assign(event_id=7)
    two = d / "two.root"
    write_tracker_root(
        two,
        pd.concat([hits, quiet], ignore_index=True),
        pd.concat([particles, particles.assign(event_id=7)], ignore_index=True),
    )
    return {"same": same, "two": two}


def compare_real(*extra: str | Path) -> int:
    return main(["compare-real", "--real", str(SAMPLE), "--event", EVENT, *map(str, extra)])


@needs_sample
def test_cli_real_sample_against_itself_is_in_band(
    sim_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "compare"
    assert compare_real("--sim", sim_files["same"], "--out", out, "--check") == 0
    captured = capsys.readouterr()
    assert "noise_share" in captured.out and "OUT OF BAND" not in captured.out
    m = json.loads((out / "metrics.json").read_text())
    assert m["section"] == "Simulation against real TrackML" and m["all_in_band"] is True
    assert m["sim_event_id"] == 1 and m["detectors"] == str(DETECTORS)
    assert list(m["comparison"]) == list(rd.BANDS)
    for figure, row in m["comparison"].items():
        assert row["ratio"] == 1.0 and row["difference"] == 0.0, figure
        assert row["ok"] is (None if rd.BANDS[figure].kind == "none" else True), figure
    assert set(m["plots"]) == PLOT_FILES
    assert {p.name for p in out.glob("*.png")} == PLOT_FILES
    rms = m["residual_rms_in_pitches"]
    assert rms["pixel u"]["sim"] == rms["pixel u"]["real"] < rd.UNIFORM_RMS_PITCH

    # the report renders it as its own section: the table with its marks and every plot
    from hepml.evaluate.report import TaskMetrics, render_report

    page = render_report([TaskMetrics.read(out)], seed=1, date="2026-12-02")
    assert "<h2>Simulation against real TrackML</h2>" in page
    assert (
        page.count("class='yes'") == sum(b.kind != "none" for b in rd.BANDS.values()) + 1
    )  # + all_in_band
    assert "class='no'" not in page
    for name in PLOT_FILES:
        assert f"<b>{name}</b>" in page
    assert page.count("data:image/png;base64,") == len(PLOT_FILES)


@needs_sample
def test_cli_check_fails_without_noise(
    sim_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sample without its noise hits (event 7 of a two-event file): noise share 0, out of
    band; the outputs are still written. Event 1 of the same file (the default) passes."""
    out = tmp_path / "quiet"
    rc = compare_real("--sim", sim_files["two"], "--sim-event", "7", "--out", out, "--check")
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "check failed" in err[0] and "noise_share" in err[0]
    m = json.loads((out / "metrics.json").read_text())
    assert m["sim_event_id"] == 7 and m["all_in_band"] is False
    assert m["comparison"]["noise_share"]["sim"] == 0.0
    assert m["comparison"]["noise_share"]["ok"] is False
    assert "noise_share" in m["out_of_band"]
    # without --check the same comparison is written and the command succeeds
    assert compare_real("--sim", sim_files["two"], "--sim-event", "7", "--out", out) == 0
    assert compare_real("--sim", sim_files["two"], "--out", tmp_path / "first", "--check") == 0
    first = json.loads((tmp_path / "first" / "metrics.json").read_text())
    assert first["sim_event_id"] == 1


@needs_sample
def test_cli_without_detectors_skips_the_residuals(
    sim_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real directory with no detectors.csv in it or its parent: no residual plot, a note;
    a residuals.png an earlier run left is removed."""
    real = tmp_path / "a" / "real"
    real.mkdir(parents=True)
    for kind in ("hits", "truth", "particles"):
        (real / f"{EVENT}-{kind}.csv.gz").symlink_to(SAMPLE / f"{EVENT}-{kind}.csv.gz")
    out = tmp_path / "out"
    out.mkdir()
    (out / "residuals.png").write_bytes(b"stale")
    args = ["compare-real", "--real", str(real), "--event", EVENT, "--sim", str(sim_files["same"])]
    assert main([*args, "--out", str(out)]) == 0
    assert "residual plot skipped" in capsys.readouterr().err
    assert {p.name for p in out.glob("*.png")} == PLOT_FILES - {"residuals.png"}
    m = json.loads((out / "metrics.json").read_text())
    assert "residual_rms_in_pitches" not in m and m["detectors"] == "none"


@needs_sample
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_real_dir", "does not exist"),
        ("missing_event", "does not exist"),
        ("no_truth", "has no truth"),
        ("missing_sim", "does not exist"),
        ("absent_sim_event", "has no event_id 5"),
        ("missing_detectors", "does not exist"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(
    case: str,
    message: str,
    sim_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real, event, sim = SAMPLE, EVENT, sim_files["same"]
    extra: list[str] = []
    if case == "missing_real_dir":
        real = tmp_path / "nowhere"
    elif case == "missing_event":
        event = "event000000042"
    elif case == "no_truth":
        real = tmp_path / "hits_only"
        real.mkdir()
        (real / f"{EVENT}-hits.csv.gz").symlink_to(SAMPLE / f"{EVENT}-hits.csv.gz")
    elif case == "missing_sim":
        sim = tmp_path / "absent.root"
    elif case == "absent_sim_event":
        extra = ["--sim-event", "5"]
    elif case == "missing_detectors":
        extra = ["--detectors", str(tmp_path / "detectors.csv")]
    out = tmp_path / "out"
    argv = ["compare-real", "--real", str(real), "--event", event, "--sim", str(sim)]
    assert main([*argv, *extra, "--out", str(out), "--check"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hepml compare-real: error:"), lines
    assert message in lines[0]
    assert captured.out == ""
    assert not out.exists()


# --------------------------------------------------------------------------- hepml real-trackml
RT_PLOTS = {"efficiency_pt.png", "efficiency_eta.png", "real_vs_sim_eta.png", "real_vs_sim.png"}


@pytest.fixture(scope="module")
def submissions(
    tmp_path_factory: pytest.TempPathFactory, real_event: tuple[pd.DataFrame, pd.DataFrame]
) -> dict[str, Path]:
    """The sample's truth as a submission (every particle one track, noise in none), and the
    road follower's reconstruction of it (``hepml reconstruct``, default config)."""
    hits, _ = real_event
    d = tmp_path_factory.mktemp("real_trackml")
    pid = hits["particle_id"].to_numpy()
    _, dense = np.unique(pid, return_inverse=True)
    perfect = d / "perfect.csv"
    pd.DataFrame({"hit_id": hits["hit_id"], "track_id": np.where(pid > 0, dense + 1, 0)}).to_csv(
        perfect, index=False
    )
    cfg = d / "config.yaml"
    cfg.write_text(f"seed: 7\nworkflow: {{results: '{d / 'results'}'}}\n")
    follower = d / "road_follower.csv"
    args = ["--input", str(SAMPLE), "--event", EVENT, "--config", str(cfg)]
    assert main(["reconstruct", *args, "--method", "road_follower", "--out", str(follower)]) == 0
    own = d / "own.json"  # the layout of the hit labeller's metrics.json
    rows = {
        m: {
            "trackml_score": s,
            "efficiency": 0.99,
            "fake_rate": 0.02,
            "duplicate_rate": 0.0,
            "n_reconstructable": 900,
            "n_found": 891,
            "n_tracks": 4000,
            "n_fake": 80,
            "n_duplicate": 0,
        }
        for m, s in (("bigru", 0.888), ("road_follower", 0.877))
    }
    eta = {
        m: {
            "0.0-0.5": 0.995,
            "0.5-1.0": 0.99,
            "1.0-1.5": 0.99,
            "1.5-2.0": 0.98,
            "2.0-2.5": 0.98,
            "2.5-3.0": 0.97,
            "3.0-4.0": None,
        }
        for m in rows
    }
    own.write_text(
        json.dumps(
            {
                "network": "bigru",
                "tracking": rows,
                "efficiency_by_abs_eta": eta,
                "test_sample": {"events": 2},
            }
        )
    )
    return {"perfect": perfect, "road_follower": follower, "config": cfg, "own": own}


def real_trackml(subs: dict[str, Path], out: Path, *items: str, own: bool = True) -> int:
    args = [
        "real-trackml",
        "--input",
        str(SAMPLE),
        "--event",
        EVENT,
        "--config",
        str(subs["config"]),
        "--out",
        str(out),
        "--submission",
        *items,
    ]
    return main([*args, "--own-sim", str(subs["own"])] if own else args)


@needs_sample
def test_real_trackml_truth_scores_one_and_the_follower_finds_most(
    submissions: dict[str, Path],
    real_event: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The truth as a submission scores 1 with every reconstructable particle found; the road
    follower on the default config finds >= 75% (0.849, 45 of 53, when written) and scores
    >= 0.5 (0.577), and the verb's numbers are those of ``hepml score``; the own simulation
    sits beside them."""
    hits, particles = real_event
    out = tmp_path / "rt"
    rc = real_trackml(
        submissions,
        out,
        f"bigru={submissions['perfect']}",
        f"road_follower={submissions['road_follower']}",
    )
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["section"] == "Real TrackML" and m["real_event"] == EVENT
    # reconstructable, counted here by hand: pT > 1 GeV and >= 5 hits
    nh = hits[hits["particle_id"] > 0].groupby("particle_id").size()
    p = particles.set_index("particle_id").loc[nh.index]
    n_rec = int(((np.hypot(p["px"], p["py"]) > 1.0) & (nh >= 5)).sum())

    real = f"real {EVENT}"
    truth = m["tracking"][f"bigru, {real}"]
    assert truth["trackml_score"] == pytest.approx(1.0, abs=1e-9)
    assert truth["efficiency"] == 1.0 and truth["n_reconstructable"] == n_rec
    assert truth["fake_rate"] == 0.0 and truth["duplicate_rate"] == 0.0
    eta = m["efficiency_by_abs_eta"][f"bigru, {real}"]
    assert all(v in (None, 1.0) for v in eta.values())
    found = m["found_by_abs_eta"][f"bigru, {real}"]
    assert sum(int(f.split("/")[1]) for f in found.values()) == n_rec  # ETA_BINS cover |eta| < 4

    rf = m["tracking"][f"road_follower, {real}"]
    assert rf["efficiency"] >= 0.75 and rf["trackml_score"] >= 0.5
    assert rf["n_reconstructable"] == n_rec
    capsys.readouterr()
    assert (
        main(
            [
                "score",
                "--input",
                str(SAMPLE),
                "--event",
                EVENT,
                "--submission",
                str(submissions["road_follower"]),
            ]
        )
        == 0
    )
    printed = dict(ln.split()[:2] for ln in capsys.readouterr().out.splitlines()[1:])
    for key, name in (
        ("trackml_score", "trackml_score"),
        ("efficiency", "efficiency"),
        ("fake_rate", "fake_rate"),
        ("duplicate_rate", "duplicate_rate"),
    ):
        assert rf[key] == pytest.approx(float(printed[name]), abs=1e-6), key
    for b, v in m["efficiency_by_abs_eta"][f"road_follower, {real}"].items():
        shown = printed[f"efficiency_abs_eta_{b}"]
        assert (v is None) if shown == "n/a" else v == pytest.approx(float(shown), abs=1e-6)

    own = json.loads(submissions["own"].read_text())
    for meth in ("bigru", "road_follower"):
        assert (
            m["tracking"][f"{meth}, own simulation"]["trackml_score"]
            == own["tracking"][meth]["trackml_score"]
        )
        assert (
            m["efficiency_by_abs_eta"][f"{meth}, own simulation"]
            == own["efficiency_by_abs_eta"][meth]
        )
    assert set(m["plots"]) == RT_PLOTS and {q.name for q in out.glob("*.png")} == RT_PLOTS

    # without the own simulation: the real event alone, and no comparison plots (stale ones removed)
    assert (
        real_trackml(submissions, out, f"road_follower={submissions['road_follower']}", own=False)
        == 0
    )
    m2 = json.loads((out / "metrics.json").read_text())
    assert list(m2["tracking"]) == [f"road_follower, {real}"] and m2["own_simulation"] == "none"
    assert {q.name for q in out.glob("*.png")} == {"efficiency_pt.png", "efficiency_eta.png"}


@needs_sample
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("malformed", "is not METHOD=FILE"),
        ("missing_submission", "does not exist"),
        ("unknown_hit", "absent from the event"),
        ("own_without_method", "no 'tracking.extra' block"),
    ],
)
def test_real_trackml_bad_input_is_one_line_and_writes_nothing(
    case: str,
    message: str,
    submissions: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    item = f"road_follower={submissions['road_follower']}"
    if case == "malformed":
        item = str(submissions["road_follower"])
    elif case == "missing_submission":
        item = f"road_follower={tmp_path / 'none.csv'}"
    elif case == "unknown_hit":
        bad = tmp_path / "bad.csv"
        bad.write_text("hit_id,track_id\n1,1\n99999999,1\n")
        item = f"road_follower={bad}"
    elif case == "own_without_method":
        item = f"extra={submissions['road_follower']}"
    out = tmp_path / "out"
    assert real_trackml(submissions, out, item) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()
