"""Bad input, as a new user gives it: every case ends with exit status 2, exactly one line on
stderr that names the culprit, and no new file (issue 12, problems 2, 3, 5 and 6).

The cases run ``hepml.cli.main`` in this process (as the ``hepml`` command does) in a fresh
working directory; a few go through the installed ``hepml`` command and ``snakemake -n``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepml import cli
from hepml.io import read_tracker_root, write_root, write_tracker_root, write_trackml_csv

ROOT = Path(__file__).resolve().parents[1]
EVENT = "event000000000"
TINY = """\
seed: 7
workflow: {tracker_shards: 2, tracker_events_per_shard: 1, calo_shards: 2, calo_showers_per_shard: 50}
tracker:
  simulation: {n_particles: 150, n_high_pt: 2, noise_per_module: 0.01}
"""


@dataclass(frozen=True)
class Good:
    """Valid inputs, made once: each case spoils a copy of one of them."""

    dir: Path
    cfg: Path
    sim: Path
    hits: pd.DataFrame
    particles: pd.DataFrame
    trackml: Path
    submission: Path
    dataset: Path


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Good:
    d = tmp_path_factory.mktemp("good")
    cfg = d / "tiny.yaml"
    cfg.write_text(TINY)
    sim = d / "shard0.root"
    assert (
        cli.main(["simulate", "tracker", "--config", str(cfg), "--shard", "0", "--out", str(sim)])
        == 0
    )
    hits, particles = read_tracker_root(sim)
    trackml = d / "trackml"
    write_trackml_csv(trackml, EVENT, hits, particles)
    submission = d / "submission.csv"
    pd.DataFrame({"hit_id": hits["hit_id"], "track_id": hits["particle_id"] % 97}).to_csv(
        submission, index=False
    )
    dataset = d / "ghost0.npz"
    build = [
        "build",
        "ghost_filter",
        "--config",
        str(cfg),
        "--input",
        str(sim),
        "--out",
        str(dataset),
    ]
    assert cli.main(build) == 0
    return Good(d, cfg, sim, hits, particles, trackml, submission, dataset)


# --------------------------------------------------------------------------- helpers of the cases
def _cfg(w: Path, text: str | bytes) -> str:
    p = w / "bad.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(p)


def _sim_with(
    w: Path, g: Good, hits: pd.DataFrame | None = None, parts: pd.DataFrame | None = None
) -> str:
    p = w / "in" / "bad.root"
    write_tracker_root(p, g.hits if hits is None else hits, g.particles if parts is None else parts)
    return str(p)


def _event_with(
    w: Path,
    g: Good,
    kind: str,
    edit: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    raw: bytes | None = None,
) -> str:
    d = w / "ev"
    shutil.copytree(g.trackml, d)
    p = d / f"{EVENT}-{kind}.csv"
    if raw is not None:
        p.unlink()
        (d / f"{EVENT}-{kind}.csv.gz").write_bytes(raw)
    elif edit is not None:
        edit(pd.read_csv(p)).to_csv(p, index=False)
    return str(d)


def _sub_with(
    w: Path,
    g: Good,
    edit: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    text: str | None = None,
) -> str:
    p = w / "in" / "sub.csv"
    p.parent.mkdir(exist_ok=True)
    if text is not None:
        p.write_text(text)
    else:
        assert edit is not None
        edit(pd.read_csv(g.submission)).to_csv(p, index=False)
    return str(p)


def _set(df: pd.DataFrame, col: str, row: int, value: object) -> pd.DataFrame:
    df = df.copy()
    if isinstance(value, str) or (isinstance(value, float) and not float(value).is_integer()):
        df[col] = df[col].astype(object if isinstance(value, str) else float)
    df.loc[row, col] = value
    return df


def _sim(g: Good, cfg: str, out: str = "o.root") -> list[str]:
    return ["simulate", "tracker", "--config", cfg, "--shard", "0", "--out", out]


def _build(g: Good, inp: str, out: str = "o.npz") -> list[str]:
    return ["build", "ghost_filter", "--config", str(g.cfg), "--input", inp, "--out", out]


def _reco(g: Good, inp: str, event: str = EVENT, out: str = "sub.csv") -> list[str]:
    return [
        "reconstruct",
        "--method",
        "road_follower",
        "--config",
        str(g.cfg),
        "--input",
        inp,
        "--event",
        event,
        "--out",
        out,
    ]


def _score(g: Good, inp: str | None = None, sub: str | None = None) -> list[str]:
    return [
        "score",
        "--input",
        inp or str(g.trackml),
        "--event",
        EVENT,
        "--submission",
        sub or str(g.submission),
    ]


def _truncate(path: Path, w: Path) -> str:
    blob = path.read_bytes()
    p = w / "in" / f"cut{path.suffix}"
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(blob[: len(blob) // 2])
    return str(p)


def _file(w: Path, name: str, data: bytes) -> str:
    p = w / "in" / name
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(data)
    return str(p)


# (id, argv from (working dir, good inputs), text the one stderr line must contain)
Case = tuple[str, Callable[[Path, Good], list[str]], str]
NAN = "is not a finite number"
CASES: list[Case] = [
    # ---- config (problem 2: NaN and inf; problem 6: duplicate keys, bytes, wrong causes)
    ("config-missing", lambda w, g: _sim(g, str(w / "none.yaml")), "none.yaml' does not exist"),
    ("config-is-dir", lambda w, g: _sim(g, str(g.dir)), "is a directory"),
    ("config-bad-yaml", lambda w, g: _sim(g, _cfg(w, "seed: [1,\n")), "not valid YAML"),
    ("config-top-list", lambda w, g: _sim(g, _cfg(w, "- 1\n")), "top level must be a mapping"),
    ("config-unknown-key", lambda w, g: _sim(g, _cfg(w, "sed: 1\n")), "unknown key 'sed'"),
    (
        "config-unknown-nested",
        lambda w, g: _sim(g, _cfg(w, "tracker: {simulaton: {}}\n")),
        "simulaton",
    ),
    ("config-wrong-type", lambda w, g: _sim(g, _cfg(w, "seed: abc\n")), "key 'seed'"),
    (
        "config-out-of-range",
        lambda w, g: _sim(g, _cfg(w, "workflow: {tracker_shards: 1}\n")),
        "workflow.tracker_shards",
    ),
    ("config-seed-negative", lambda w, g: _sim(g, _cfg(w, "seed: -1\n")), "key 'seed'"),
    ("config-seed-fraction", lambda w, g: _sim(g, _cfg(w, "seed: 1.5\n")), "key 'seed'"),
    (
        "config-field-nan",
        lambda w, g: _sim(g, _cfg(w, "tracker: {field: {central_T: .nan}}\n")),
        "tracker.field.central_T",
    ),
    (
        "config-vertex-inf",
        lambda w, g: _sim(g, _cfg(w, "tracker: {simulation: {vertex_sigma_z_mm: .inf}}\n")),
        "vertex_sigma_z_mm",
    ),
    (
        "config-noise-nan",
        lambda w, g: _sim(g, _cfg(w, "tracker: {simulation: {noise_per_module: .nan}}\n")),
        "noise_per_module",
    ),
    (
        "config-calo-energy-inf",
        lambda w, g: _sim(g, _cfg(w, "calo: {energy_max_GeV: .inf}\n")),
        "calo.energy_max_GeV",
    ),
    ("config-lr-nan", lambda w, g: _sim(g, _cfg(w, "training: {lr: .nan}\n")), "training.lr"),
    (
        "config-lr-minus-inf",
        lambda w, g: _sim(g, _cfg(w, "training: {lr: -.inf}\n")),
        "training.lr",
    ),
    (
        "config-weight-decay-nan",
        lambda w, g: _sim(g, _cfg(w, "training: {weight_decay: .nan}\n")),
        NAN,
    ),
    (
        "config-task-train-nan",
        lambda w, g: _sim(g, _cfg(w, "hit_labeller: {train: {grad_clip: .nan}}\n")),
        "hit_labeller.train.grad_clip",
    ),
    (
        "config-eta-pixel-nan",
        lambda w, g: _sim(g, _cfg(w, "calo_classifier: {image: {eta_pixel: .nan}}\n")),
        "eta_pixel",
    ),
    (
        "config-test-fraction-nan",
        lambda w, g: _sim(g, _cfg(w, "workflow: {test_fraction: .nan}\n")),
        "workflow.test_fraction",
    ),
    (
        "config-hidden-nan",
        lambda w, g: _sim(g, _cfg(w, "hit_labeller: {model: {hidden: .nan}}\n")),
        "hit_labeller.model.hidden",
    ),
    (
        "config-duplicate-top",
        lambda w, g: _sim(g, _cfg(w, "seed: 1\nseed: 2\n")),
        "duplicate key 'seed'",
    ),
    (
        "config-duplicate-nested",
        lambda w, g: _sim(g, _cfg(w, "training:\n  lr: 0.1\n  lr: 0.2\n")),
        "line 3: duplicate key 'lr'",
    ),
    ("config-not-utf8", lambda w, g: _sim(g, _cfg(w, b"seed: 1 # caf\xe9\n")), "not UTF-8"),
    (
        "config-python-tag",
        lambda w, g: _sim(g, _cfg(w, "seed: !!python/object/apply:os.system ['true']\n")),
        "not valid YAML",
    ),
    # ---- command-line options (problem 6: output paths checked before any work)
    ("cli-unknown-verb", lambda w, g: ["simulat"], "unknown verb 'simulat'"),
    (
        "cli-missing-out",
        lambda w, g: ["simulate", "tracker", "--config", str(g.cfg), "--shard", "0"],
        "--out",
    ),
    (
        "cli-shard-nan",
        lambda w, g: [*_sim(g, str(g.cfg))[:4], "--shard", "nan", "--out", "o.root"],
        "--shard",
    ),
    (
        "cli-shard-text",
        lambda w, g: [*_sim(g, str(g.cfg))[:4], "--shard", "two", "--out", "o.root"],
        "'two'",
    ),
    (
        "cli-shard-out-of-range",
        lambda w, g: [*_sim(g, str(g.cfg))[:4], "--shard", "9", "--out", "o.root"],
        "9",
    ),
    (
        "cli-simulate-kind",
        lambda w, g: [
            "simulate",
            "muon",
            "--config",
            str(g.cfg),
            "--shard",
            "0",
            "--out",
            "o.root",
        ],
        "muon",
    ),
    (
        "cli-build-task",
        lambda w, g: [
            "build",
            "ghost",
            "--config",
            str(g.cfg),
            "--input",
            str(g.sim),
            "--out",
            "o.npz",
        ],
        "ghost",
    ),
    ("cli-simulate-out-is-dir", lambda w, g: _sim(g, str(g.cfg), out=str(g.dir)), "is a directory"),
    (
        "cli-simulate-out-under-file",
        lambda w, g: _sim(g, str(g.cfg), out=f"{g.cfg}/o.root"),
        "tiny.yaml' is a file",
    ),
    (
        "cli-build-out-under-file",
        lambda w, g: _build(g, str(g.sim), out=f"{g.sim}/o.npz"),
        "shard0.root' is a file",
    ),
    (
        "cli-train-out-is-file",
        lambda w, g: [
            "train",
            "ghost_filter",
            "--config",
            str(g.cfg),
            "--data",
            str(g.dataset),
            "--out",
            str(g.cfg),
        ],
        "is a file, not a directory",
    ),
    (
        "cli-evaluate-out-under-file",
        lambda w, g: [
            "evaluate",
            "ghost_filter",
            "--config",
            str(g.cfg),
            "--data",
            str(g.dataset),
            "--model",
            str(g.dir),
            "--out",
            f"{g.cfg}/ev",
        ],
        "tiny.yaml' is a file",
    ),
    (
        "cli-reconstruct-out-is-dir",
        lambda w, g: _reco(g, str(g.trackml), out=str(g.dir)),
        "is a directory",
    ),
    (
        "cli-report-out-is-dir",
        lambda w, g: ["report", "--config", str(g.cfg), "--input", str(g.dir), "--out", str(g.dir)],
        "is a directory",
    ),
    (
        "cli-detector-out-under-file",
        lambda w, g: ["detector", "--config", str(g.cfg), "--out", f"{g.cfg}/d.csv"],
        "tiny.yaml' is a file",
    ),
    (
        "cli-compare-out-under-file",
        lambda w, g: [
            "compare-real",
            "--real",
            str(g.trackml),
            "--event",
            EVENT,
            "--sim",
            str(g.sim),
            "--out",
            f"{g.cfg}/c",
        ],
        "tiny.yaml' is a file",
    ),
    (
        "cli-compare-sim-event-text",
        lambda w, g: [
            "compare-real",
            "--real",
            str(g.trackml),
            "--event",
            EVENT,
            "--sim",
            str(g.sim),
            "--sim-event",
            "x",
            "--out",
            "c",
        ],
        "--sim-event",
    ),
    # ---- ROOT shards (problems 5 and 6: NaN coordinates, duplicate ids, mixed events)
    ("root-missing", lambda w, g: _build(g, str(w / "none.root")), "none.root' does not exist"),
    ("root-empty", lambda w, g: _build(g, _file(w, "e.root", b"")), "empty"),
    (
        "root-garbage",
        lambda w, g: _build(g, _file(w, "g.root", b"not a root file" * 50)),
        "not a readable ROOT file",
    ),
    ("root-truncated", lambda w, g: _build(g, _truncate(g.sim, w)), "cut.root"),
    (
        "root-no-hits-tree",
        lambda w, g: (
            write_root(w / "in" / "t.root", {"other": {"a": np.zeros(3)}}),
            _build(g, str(w / "in" / "t.root")),
        )[1],
        "no TTree 'hits'",
    ),
    (
        "root-hits-nan-x",
        lambda w, g: _build(g, _sim_with(w, g, hits=_set(g.hits, "x", 5, np.nan))),
        "non-finite x",
    ),
    (
        "root-hits-inf-z",
        lambda w, g: _build(g, _sim_with(w, g, hits=_set(g.hits, "z", 9, np.inf))),
        "non-finite z",
    ),
    (
        "root-duplicate-hit-id",
        lambda w, g: _build(
            g, _sim_with(w, g, hits=_set(g.hits, "hit_id", 3, int(g.hits["hit_id"][2])))
        ),
        "appears more than once",
    ),
    (
        "root-particles-other-event",
        lambda w, g: _build(
            g, _sim_with(w, g, parts=g.particles.assign(event_id=g.particles["event_id"] + 1))
        ),
        "absent from the particles",
    ),
    (
        "root-particle-nan-px",
        lambda w, g: _build(g, _sim_with(w, g, parts=_set(g.particles, "px", 0, np.nan))),
        "non-finite px",
    ),
    ("root-input-is-dir", lambda w, g: _build(g, str(g.dir)), str(Path("good"))),
    # ---- TrackML CSV events
    ("csv-dir-missing", lambda w, g: _reco(g, str(w / "nodir")), "nodir' does not exist"),
    ("csv-dir-is-file", lambda w, g: _reco(g, str(g.cfg)), "is a file"),
    ("csv-bad-event-name", lambda w, g: _reco(g, str(g.trackml), event="event12"), "event12"),
    (
        "csv-hits-missing",
        lambda w, g: _reco(g, str(g.trackml), event="event000000042"),
        "event000000042-hits.csv",
    ),
    (
        "csv-hits-lacks-x",
        lambda w, g: _reco(g, _event_with(w, g, "hits", lambda d: d.drop(columns=["x"]))),
        "lacks column 'x'",
    ),
    (
        "csv-hits-nan-x",
        lambda w, g: _reco(g, _event_with(w, g, "hits", lambda d: _set(d, "x", 4, np.nan))),
        "non-finite x",
    ),
    (
        "csv-hits-text-y",
        lambda w, g: _reco(g, _event_with(w, g, "hits", lambda d: _set(d, "y", 4, "oops"))),
        "column 'y' is not numeric",
    ),
    (
        "csv-hits-duplicate-id",
        lambda w, g: _reco(
            g, _event_with(w, g, "hits", lambda d: _set(d, "hit_id", 1, int(d["hit_id"][0])))
        ),
        "appears more than once",
    ),
    (
        "csv-hits-empty-layer",
        lambda w, g: _reco(g, _event_with(w, g, "hits", lambda d: _set(d, "layer_id", 2, np.nan))),
        "layer_id",
    ),
    (
        "csv-hits-garbage-gz",
        lambda w, g: _reco(g, _event_with(w, g, "hits", raw=b"\x1f\x8b garbage")),
        "not a readable CSV",
    ),
    (
        "csv-truth-short",
        lambda w, g: _score(g, _event_with(w, g, "truth", lambda d: d.iloc[:-3])),
        "truth.csv' has",
    ),
    (
        "csv-truth-duplicate",
        lambda w, g: _score(
            g, _event_with(w, g, "truth", lambda d: _set(d, "hit_id", 1, int(d["hit_id"][0])))
        ),
        "truth.csv': hit_id",
    ),
    (
        "csv-truth-unknown-particle",
        lambda w, g: _score(
            g,
            _event_with(
                w,
                g,
                "truth",
                lambda d: _set(
                    d, "particle_id", int(np.flatnonzero(d["particle_id"] > 0)[0]), 987654321
                ),
            ),
        ),
        "987654321",
    ),
    (
        "csv-particles-lacks-px",
        lambda w, g: _score(g, _event_with(w, g, "particles", lambda d: d.drop(columns=["px"]))),
        "lacks column 'px'",
    ),
    (
        "csv-no-truth",
        lambda w, g: _score(
            g,
            (lambda d: ((Path(d) / f"{EVENT}-truth.csv").unlink(), d)[1])(
                _event_with(w, g, "hits")
            ),
        ),
        "has no truth",
    ),
    # ---- submissions (problem 5: TrackML's rule, every hit exactly once with an integer id)
    ("sub-missing", lambda w, g: _score(g, sub=str(w / "none.csv")), "none.csv' does not exist"),
    ("sub-is-dir", lambda w, g: _score(g, sub=str(g.dir)), "is a directory"),
    (
        "sub-lacks-column",
        lambda w, g: _score(g, sub=_sub_with(w, g, lambda d: d.drop(columns=["track_id"]))),
        "lacks column 'track_id'",
    ),
    (
        "sub-half-the-hits",
        lambda w, g: _score(g, sub=_sub_with(w, g, lambda d: d.iloc[: len(d) // 2])),
        "unassigned",
    ),
    (
        "sub-duplicate-hit",
        lambda w, g: _score(g, sub=_sub_with(w, g, lambda d: pd.concat([d, d.iloc[:1]]))),
        "more than once",
    ),
    (
        "sub-fractional-id",
        lambda w, g: _score(g, sub=_sub_with(w, g, lambda d: _set(d, "track_id", 3, 2.5))),
        "not an integer",
    ),
    (
        "sub-negative-id",
        lambda w, g: _score(g, sub=_sub_with(w, g, lambda d: _set(d, "track_id", 3, -4))),
        "negative",
    ),
    (
        "sub-unknown-hit",
        lambda w, g: _score(g, sub=_sub_with(w, g, lambda d: _set(d, "hit_id", 0, 10**9))),
        "absent from event",
    ),
    (
        "sub-empty-value",
        lambda w, g: _score(g, sub=_sub_with(w, g, lambda d: _set(d, "track_id", 2, np.nan))),
        "empty track_id at line 4",
    ),
    (
        "sub-text-value",
        lambda w, g: _score(g, sub=_sub_with(w, g, lambda d: _set(d, "track_id", 2, "abc"))),
        "non-numbers",
    ),
    ("sub-not-csv", lambda w, g: _score(g, sub=_sub_with(w, g, text="\x00\x01\x02")), "sub.csv"),
    # ---- datasets and models
    (
        "train-data-missing",
        lambda w, g: [
            "train",
            "ghost_filter",
            "--config",
            str(g.cfg),
            "--data",
            str(w / "none.npz"),
            "--out",
            "m",
        ],
        "none.npz",
    ),
    (
        "train-data-garbage",
        lambda w, g: [
            "train",
            "ghost_filter",
            "--config",
            str(g.cfg),
            "--data",
            _file(w, "g.npz", b"garbage"),
            "--out",
            "m",
        ],
        "g.npz",
    ),
    (
        "evaluate-model-missing",
        lambda w, g: [
            "evaluate",
            "hit_labeller",
            "--config",
            str(g.cfg),
            "--data",
            str(g.dataset),
            str(g.sim),
            "--model",
            str(w / "nomodel"),
            "--out",
            "ev",
        ],
        "nomodel",
    ),
    (
        "evaluate-model-garbage",
        lambda w, g: (
            _file(w, "model.pt", b"garbage"),
            [
                "evaluate",
                "hit_labeller",
                "--config",
                str(g.cfg),
                "--data",
                str(g.dataset),
                str(g.sim),
                "--model",
                str(w / "in"),
                "--out",
                "ev",
            ],
        )[1],
        "model.pt",
    ),
    (
        "reconstruct-model-garbage",
        lambda w, g: [
            *_reco(g, str(g.trackml))[:1],
            "--model",
            _file(w, "x.pt", b"garbage"),
            *_reco(g, str(g.trackml))[3:],
        ],
        "x.pt",
    ),
    (
        "report-input-missing",
        lambda w, g: [
            "report",
            "--config",
            str(g.cfg),
            "--input",
            str(w / "nothing"),
            "--out",
            "r.html",
        ],
        "nothing",
    ),
]


def _snapshot(*folders: Path) -> set[Path]:
    return {p for f in folders for p in f.rglob("*") if ".snakemake" not in p.parts}


@pytest.mark.parametrize("make_argv, culprit", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_no_files(
    make_argv: Callable[[Path, Good], list[str]],
    culprit: str,
    good: Good,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = make_argv(tmp_path, good)
    before = _snapshot(tmp_path, good.dir)
    capsys.readouterr()
    rc = cli.main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2, err
    assert len(err) == 1, err
    assert culprit in err[0], err[0]
    assert _snapshot(tmp_path, good.dir) == before


def test_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


def test_installed_command_gives_one_line(good: Good, tmp_path: Path) -> None:
    """The same contract through the real ``hepml`` entry point (a new process)."""
    exe = shutil.which("hepml") or str(Path(sys.executable).with_name("hepml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {lr: .nan}\n")
    proc = subprocess.run(
        [exe, *_sim(good, str(bad), out=str(tmp_path / "o.root"))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "training.lr" in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))
    return subprocess.run(
        [exe, "-n", "-q", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize(
    "configfile, config, culprit",
    [
        ("training: {lr: 0.01}\n", ["training={lr: .nan}"], "training.lr"),
        ("seed: 1\nseed: 2\n", [], "duplicate key 'seed'"),
        (
            "workflow: {tracker_shards: 3}\n",
            ["workflow={tracker_shards: 1}"],
            "workflow.tracker_shards",
        ),
        ("{}\n", ["tracker={simulaton: {}}"], "simulaton"),
    ],
    ids=[
        "nan-from-command-line",
        "duplicate-key-in-configfile",
        "range-of-nested-value",
        "unknown-nested-key",
    ],
)
def test_workflow_bad_config(
    tmp_path: Path, configfile: str, config: list[str], culprit: str
) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(configfile)
    proc = _snakemake(
        tmp_path, "--configfile", str(cfg), *(["--config", *config] if config else [])
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and culprit in lines[0], lines
    assert _snapshot(tmp_path) == {cfg}


def test_workflow_nested_command_line_value_is_parsed(tmp_path: Path) -> None:
    """Problem 6: ``--config 'workflow={tracker_shards: 3}'`` arrives as the string '3'
    and is accepted: the dry run plans three tracker simulations."""
    res = tmp_path / "res"
    proc = _snakemake(
        tmp_path,
        "--configfile",
        str(ROOT / "config" / "test.yaml"),
        "--config",
        f"workflow={{tracker_shards: 3, results: '{res}'}}",
        "evaluate={trackml_dir: null}",
        "--summary",
    )
    assert proc.returncode == 0, proc.stderr
    sims = {line.split()[0] for line in proc.stdout.splitlines() if "/sim/tracker/shard" in line}
    assert sims == {f"{res}/sim/tracker/shard{k}.root" for k in range(3)}, proc.stdout[:2000]
