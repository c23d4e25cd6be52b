"""Bad input, as a new user gives it: every case ends with exit status 2, exactly one line on
stderr that names the culprit, and no new file (issue 12, problems 2 to 6).

The cases run ``hepml.cli.main`` in this process (as the ``hepml`` command does) in a fresh
working directory, across the config, each input format (ROOT, TrackML CSV, dataset npz,
model and checkpoint, submission) and every verb; a few go through the installed ``hepml``
command and ``snakemake -n``.
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
from hepml.models import build_model
from hepml.train import save_model

ROOT = Path(__file__).resolve().parents[1]
EVENT = "event000000000"
TINY = """\
seed: 7
workflow: {tracker_shards: 2, tracker_events_per_shard: 1, calo_shards: 2, calo_showers_per_shard: 50}
tracker:
  simulation: {n_particles: 150, n_high_pt: 2, noise_per_module: 0.01}
training: {max_epochs: 1, batch_size: 64}
hit_labeller:
  model: {hidden: 8, num_layers: 1}
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
    dataset: Path  # ghost_filter, shard 0
    sim1: Path  # tracker shard 1 (other events)
    roads: Path  # hit_labeller, shard 0
    calo: Path  # calo_classifier, shard 0
    labeller: Path  # a trained hit labeller (model.pt, checkpoints/, train.lock)
    misfit: Path  # model.pt of each model, sizes unlike the data contract: <model_name>/model.pt


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
    sim1 = d / "shard1.root"
    assert cli.main([*_sim(str(cfg), str(sim1))[:5], "1", "--out", str(sim1)]) == 0
    roads = d / "roads0.npz"
    assert cli.main(["build", "hit_labeller", *build[2:6], "--out", str(roads)]) == 0
    calo_sim, calo = d / "calo0.root", d / "calo0.npz"
    assert cli.main(["simulate", "calo", *_sim(str(cfg), str(calo_sim))[2:]]) == 0
    assert (
        cli.main(
            ["build", "calo_classifier", *build[2:4], "--input", str(calo_sim), "--out", str(calo)]
        )
        == 0
    )
    labeller = d / "labeller"
    train = [
        "train",
        "hit_labeller",
        "--config",
        str(cfg),
        "--data",
        str(roads),
        "--out",
        str(labeller),
    ]
    assert cli.main(train) == 0
    misfit = d / "misfit"
    for name, hp in MISFITS.items():
        save_model(misfit / name / "model.pt", name, hp, build_model(name, hp))
    with np.load(dataset) as z:  # the ghost filter's baseline sample beside its model
        np.savez(
            misfit / "ghost_lstm" / "gbdt_train.npz",
            **{k: z[k] for k in ("track_features", "label")},
        )
    return Good(
        d,
        cfg,
        sim,
        hits,
        particles,
        trackml,
        submission,
        dataset,
        sim1,
        roads,
        calo,
        labeller,
        misfit,
    )


# models whose sizes do not fit the data contract (problem 6)
MISFITS: dict[str, dict[str, object]] = {
    "ghost_lstm": {"hidden": 8, "layers": 1, "dropout": 0.0, "head_hidden": 8, "n_hit_features": 5},
    "hit_bigru": {"hidden": 8, "num_layers": 1, "dropout": 0.0, "n_features": 5},
    "calo_cnn": {
        "image_size": [32, 32],
        "channels": [4, 4, 4],
        "hidden": 8,
        "dropout": 0.0,
        "phi_reduce": 4,
        "n_classes": 5,
    },
}


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


def _sim(cfg: str, out: str = "o.root") -> list[str]:
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


def _npz_with(w: Path, src: Path, key: str, value: float, name: str = "bad.npz") -> str:
    """A copy of dataset ``src`` with ``value`` in the first element of array ``key``."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    a = arrays[key].copy()
    a.reshape(-1)[0] = value
    arrays[key] = a
    p = w / "in" / name
    p.parent.mkdir(exist_ok=True)
    np.savez(p, **arrays)  # type: ignore[arg-type]
    return str(p)


def _train(g: Good, task: str, data: str, out: str = "m") -> list[str]:
    return ["train", task, "--config", str(g.cfg), "--data", data, "--out", out]


def _evaluate(g: Good, task: str, data: list[str], model: str, out: str = "ev") -> list[str]:
    return [
        "evaluate",
        task,
        "--config",
        str(g.cfg),
        "--data",
        *data,
        "--model",
        model,
        "--out",
        out,
    ]


def _labeller_copy(w: Path, g: Good, spoil: Callable[[Path], None]) -> str:
    """A copy of the trained labeller's folder with ``spoil`` applied to its last.ckpt."""
    out = w / "m"
    shutil.copytree(g.labeller, out)
    spoil(out / "checkpoints" / "last.ckpt")
    return str(out)


def _cut_half(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


# (id, argv from (working dir, good inputs), text the one stderr line must contain)
Case = tuple[str, Callable[[Path, Good], list[str]], str]
NAN = "is not a finite number"
CASES: list[Case] = [
    # ---- config (problem 2: NaN and inf; problem 6: duplicate keys, bytes, wrong causes)
    ("config-missing", lambda w, g: _sim(str(w / "none.yaml")), "none.yaml' does not exist"),
    ("config-is-dir", lambda w, g: _sim(str(g.dir)), "is a directory"),
    ("config-bad-yaml", lambda w, g: _sim(_cfg(w, "seed: [1,\n")), "not valid YAML"),
    ("config-top-list", lambda w, g: _sim(_cfg(w, "- 1\n")), "top level must be a mapping"),
    ("config-unknown-key", lambda w, g: _sim(_cfg(w, "sed: 1\n")), "unknown key 'sed'"),
    (
        "config-unknown-nested",
        lambda w, g: _sim(_cfg(w, "tracker: {simulaton: {}}\n")),
        "simulaton",
    ),
    ("config-wrong-type", lambda w, g: _sim(_cfg(w, "seed: abc\n")), "key 'seed'"),
    (
        "config-out-of-range",
        lambda w, g: _sim(_cfg(w, "workflow: {tracker_shards: 1}\n")),
        "workflow.tracker_shards",
    ),
    ("config-seed-negative", lambda w, g: _sim(_cfg(w, "seed: -1\n")), "key 'seed'"),
    ("config-seed-fraction", lambda w, g: _sim(_cfg(w, "seed: 1.5\n")), "key 'seed'"),
    (
        "config-field-nan",
        lambda w, g: _sim(_cfg(w, "tracker: {field: {central_T: .nan}}\n")),
        "tracker.field.central_T",
    ),
    (
        "config-vertex-inf",
        lambda w, g: _sim(_cfg(w, "tracker: {simulation: {vertex_sigma_z_mm: .inf}}\n")),
        "vertex_sigma_z_mm",
    ),
    (
        "config-noise-nan",
        lambda w, g: _sim(_cfg(w, "tracker: {simulation: {noise_per_module: .nan}}\n")),
        "noise_per_module",
    ),
    (
        "config-calo-energy-inf",
        lambda w, g: _sim(_cfg(w, "calo: {energy_max_GeV: .inf}\n")),
        "calo.energy_max_GeV",
    ),
    ("config-lr-nan", lambda w, g: _sim(_cfg(w, "training: {lr: .nan}\n")), "training.lr"),
    (
        "config-lr-minus-inf",
        lambda w, g: _sim(_cfg(w, "training: {lr: -.inf}\n")),
        "training.lr",
    ),
    (
        "config-weight-decay-nan",
        lambda w, g: _sim(_cfg(w, "training: {weight_decay: .nan}\n")),
        NAN,
    ),
    (
        "config-task-train-nan",
        lambda w, g: _sim(_cfg(w, "hit_labeller: {train: {grad_clip: .nan}}\n")),
        "hit_labeller.train.grad_clip",
    ),
    (
        "config-eta-pixel-nan",
        lambda w, g: _sim(_cfg(w, "calo_classifier: {image: {eta_pixel: .nan}}\n")),
        "eta_pixel",
    ),
    (
        "config-test-fraction-nan",
        lambda w, g: _sim(_cfg(w, "workflow: {test_fraction: .nan}\n")),
        "workflow.test_fraction",
    ),
    (
        "config-hidden-nan",
        lambda w, g: _sim(_cfg(w, "hit_labeller: {model: {hidden: .nan}}\n")),
        "hit_labeller.model.hidden",
    ),
    (
        "config-duplicate-top",
        lambda w, g: _sim(_cfg(w, "seed: 1\nseed: 2\n")),
        "duplicate key 'seed'",
    ),
    (
        "config-duplicate-nested",
        lambda w, g: _sim(_cfg(w, "training:\n  lr: 0.1\n  lr: 0.2\n")),
        "line 3: duplicate key 'lr'",
    ),
    ("config-not-utf8", lambda w, g: _sim(_cfg(w, b"seed: 1 # caf\xe9\n")), "not UTF-8"),
    (
        "config-python-tag",
        lambda w, g: _sim(_cfg(w, "seed: !!python/object/apply:os.system ['true']\n")),
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
        lambda w, g: [*_sim(str(g.cfg))[:4], "--shard", "nan", "--out", "o.root"],
        "--shard",
    ),
    (
        "cli-shard-text",
        lambda w, g: [*_sim(str(g.cfg))[:4], "--shard", "two", "--out", "o.root"],
        "'two'",
    ),
    (
        "cli-shard-out-of-range",
        lambda w, g: [*_sim(str(g.cfg))[:4], "--shard", "9", "--out", "o.root"],
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
    ("cli-simulate-out-is-dir", lambda w, g: _sim(str(g.cfg), out=str(g.dir)), "is a directory"),
    (
        "cli-simulate-out-under-file",
        lambda w, g: _sim(str(g.cfg), out=f"{g.cfg}/o.root"),
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
    ("root-input-is-dir", lambda w, g: _build(g, str(g.dir)), "is a directory, not a file"),
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
    # ---- more command-line options: every numeric one refuses NaN and inf (problem 2)
    (
        "cli-export-tolerance-nan",
        lambda w, g: [
            "export",
            "hit_labeller",
            "--model",
            str(g.labeller),
            "--out",
            "m.onnx",
            "--tolerance",
            "nan",
        ],
        "--tolerance: 'nan' is not a finite number",
    ),
    (
        "cli-compare-sim-event-inf",
        lambda w, g: [
            "compare-real",
            "--real",
            str(g.trackml),
            "--event",
            EVENT,
            "--sim",
            str(g.sim),
            "--sim-event",
            "inf",
            "--out",
            "c",
        ],
        "--sim-event",
    ),
    (
        "cli-export-out-is-dir",
        lambda w, g: ["export", "hit_labeller", "--model", str(g.labeller), "--out", str(g.dir)],
        "is a directory",
    ),
    (
        "cli-real-trackml-submission-spec",
        lambda w, g: [
            "real-trackml",
            "--input",
            str(g.trackml),
            "--event",
            EVENT,
            "--submission",
            str(g.submission),
            "--config",
            str(g.cfg),
            "--out",
            "r",
        ],
        "is not METHOD=FILE",
    ),
    (
        "cli-real-trackml-out-under-file",
        lambda w, g: [
            "real-trackml",
            "--input",
            str(g.trackml),
            "--event",
            EVENT,
            "--submission",
            f"bigru={g.submission}",
            "--config",
            str(g.cfg),
            "--out",
            f"{g.cfg}/r",
        ],
        "tiny.yaml' is a file",
    ),
    # ---- the right cause: a directory is not reported as missing (problem 6)
    ("train-data-is-dir", lambda w, g: _train(g, "hit_labeller", str(g.dir)), "is a directory"),
    (
        "evaluate-model-is-file",
        lambda w, g: _evaluate(g, "calo_classifier", [str(g.calo)], str(g.cfg)),
        "model directory '",
    ),
    (
        "reconstruct-model-is-dir",
        lambda w, g: [
            *_reco(g, str(g.trackml))[:1],
            "--model",
            str(g.dir),
            *_reco(g, str(g.trackml))[3:],
        ],
        "is a directory, not a file",
    ),
    (
        "export-model-under-file",
        lambda w, g: ["export", "hit_labeller", "--model", str(g.cfg), "--out", "m.onnx"],
        "tiny.yaml' is a file, not a directory",
    ),
    (
        "compare-real-dir-is-file",
        lambda w, g: [
            "compare-real",
            "--real",
            str(g.cfg),
            "--event",
            EVENT,
            "--sim",
            str(g.sim),
            "--out",
            "c",
        ],
        "is a file, not a directory",
    ),
    # ---- non-finite datasets, in each task (problem 3)
    (
        "train-ghost-nan-feature",
        lambda w, g: _train(g, "ghost_filter", _npz_with(w, g.dataset, "track_features", np.nan)),
        "array 'track_features' has 1 non-finite",
    ),
    (
        "train-labeller-nan-feature",
        lambda w, g: _train(g, "hit_labeller", _npz_with(w, g.roads, "features", np.nan)),
        "array 'features' has 1 non-finite",
    ),
    (
        "train-calo-inf-image",
        lambda w, g: _train(g, "calo_classifier", _npz_with(w, g.calo, "images", np.inf)),
        "array 'images' has 1 non-finite",
    ),
    (
        "evaluate-labeller-nan-feature",
        lambda w, g: _evaluate(
            g,
            "hit_labeller",
            [_npz_with(w, g.roads, "features", np.nan), str(g.sim)],
            str(g.labeller),
        ),
        "array 'features' has 1 non-finite",
    ),
    (
        "evaluate-calo-nan-energy",
        lambda w, g: _evaluate(
            g, "calo_classifier", [_npz_with(w, g.calo, "log_e", np.nan)], str(g.labeller)
        ),
        "array 'log_e' has 1 non-finite",
    ),
    # ---- inconsistent inputs (problem 5): roads of one shard, hits of another
    (
        "evaluate-roads-of-another-shard",
        lambda w, g: _evaluate(g, "hit_labeller", [str(g.roads), str(g.sim1)], str(g.labeller)),
        "hold different events",
    ),
    # ---- models whose sizes do not fit the data contract (problem 6)
    (
        "evaluate-labeller-misfit",
        lambda w, g: _evaluate(
            g, "hit_labeller", [str(g.roads), str(g.sim)], str(g.misfit / "hit_bigru")
        ),
        "n_features=5 but the data contract has",
    ),
    (
        "evaluate-ghost-misfit",
        lambda w, g: _evaluate(  # one candidate relabelled a ghost: both classes to score
            g, "ghost_filter", [_npz_with(w, g.dataset, "label", 0)], str(g.misfit / "ghost_lstm")
        ),
        "n_hit_features=5 but the data contract has",
    ),
    (
        "evaluate-calo-misfit",
        lambda w, g: _evaluate(g, "calo_classifier", [str(g.calo)], str(g.misfit / "calo_cnn")),
        "n_classes=5 but the data contract has 3",
    ),
    (
        "reconstruct-misfit",
        lambda w, g: [
            *_reco(g, str(g.trackml))[:1],
            "--model",
            str(g.misfit / "hit_bigru" / "model.pt"),
            *_reco(g, str(g.trackml))[3:],
        ],
        "n_features=5",
    ),
    (
        "export-misfit",
        lambda w, g: [
            "export",
            "hit_labeller",
            "--model",
            str(g.misfit / "hit_bigru"),
            "--out",
            "m.onnx",
        ],
        "n_features=5",
    ),
    (
        "evaluate-model-truncated",
        lambda w, g: (
            shutil.copytree(g.labeller, w / "m"),
            _cut_half(w / "m" / "model.pt"),
            _evaluate(g, "hit_labeller", [str(g.roads), str(g.sim)], str(w / "m")),
        )[2],
        "model.pt' is not a hepml model file",
    ),
    # ---- training checkpoints (problem 4): a rerun on a damaged last.ckpt
    (
        "checkpoint-truncated",
        lambda w, g: _train(g, "hit_labeller", str(g.roads), _labeller_copy(w, g, _cut_half)),
        "last.ckpt' is unreadable",
    ),
    (
        "checkpoint-garbage",
        lambda w, g: _train(
            g,
            "hit_labeller",
            str(g.roads),
            _labeller_copy(w, g, lambda p: p.write_bytes(b"PK\x03\x04 not a checkpoint")),
        ),
        "to start this training afresh",
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


def test_at_least_sixty_cases_covering_every_verb(good: Good, tmp_path: Path) -> None:
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)
    verbs = set()
    for i, (_, make_argv, _) in enumerate(CASES):
        (tmp_path / str(i)).mkdir()
        verbs.add(make_argv(tmp_path / str(i), good)[0])
    assert verbs >= set(cli.VERBS), set(cli.VERBS) - verbs


def test_noise_only_event_is_an_empty_valid_result(
    good: Good, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Problem 6: an event of noise only (no particle) once ended the hit-labeller build in an
    IndexError. Both track builds write a valid, empty dataset of that event; training on it
    alone is then a one-line error, with no output folder."""
    from hepml.features import sequences
    from hepml.features.roads import load_datasets

    sim = tmp_path / "noise.root"
    noise = good.hits[good.hits["particle_id"] == 0]
    assert len(noise) > 100
    write_tracker_root(sim, noise, good.particles.iloc[:0])
    roads, cands = tmp_path / "roads.npz", tmp_path / "cands.npz"
    assert cli.main(["build", "hit_labeller", *_build(good, str(sim), str(roads))[2:]]) == 0
    assert cli.main(_build(good, str(sim), str(cands))) == 0
    d = load_datasets([roads])
    assert len(d["road_ptr"]) == 1 and len(d["features"]) == 0 and len(d["label"]) == 0
    assert d["event_ids"].tolist() == np.unique(noise["event_id"]).tolist()
    assert len(sequences.load_dataset(cands)["label"]) == 0
    capsys.readouterr()
    assert cli.main(_train(good, "hit_labeller", str(roads), str(tmp_path / "m"))) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "too few roads (0)" in err[0], err
    assert not (tmp_path / "m").exists()


def test_every_numeric_option_refuses_nan_and_infinity() -> None:
    """Problem 2 on the command line: every option of every verb that parses a number refuses
    NaN and the infinities (argparse turns the refusal into one line and exit 2)."""
    import argparse

    numeric = []
    for verb in cli.VERBS:
        for action in cli.build_parser(verb)._actions:
            if action.type is None or action.type in (str, Path):
                continue
            numeric.append(f"{verb} {'/'.join(action.option_strings) or action.dest}")
            assert action.type("3") == 3
            for text in ("nan", "NaN", "inf", "-inf", "1e999"):
                with pytest.raises((argparse.ArgumentTypeError, ValueError)):
                    action.type(text)
    assert sorted(numeric) == [
        "compare-real --sim-event",
        "export --tolerance",
        "simulate --shard",
    ]


def test_installed_command_gives_one_line(good: Good, tmp_path: Path) -> None:
    """The same contract through the real ``hepml`` entry point (a new process)."""
    exe = shutil.which("hepml") or str(Path(sys.executable).with_name("hepml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {lr: .nan}\n")
    proc = subprocess.run(
        [exe, *_sim(str(bad), out=str(tmp_path / "o.root"))],
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
