"""``hepml reconstruct`` and ``hepml score``: whole TrackML-format events through the hit labeller.

::

    hepml reconstruct --input DIR --event eventNNNNNNNNN --out submission.csv
                      [--model CHECKPOINT] [--config FILE] [--method bigru|road_follower]
                      [--backend torch|onnxruntime]
    hepml score       --input DIR --event eventNNNNNNNNN --submission submission.csv

``reconstruct`` reads ``DIR/eventNNNNNNNNN-hits.csv`` or ``.csv.gz`` (TrackML
format; truth files are not needed), uses the hits of every surface of the
config's detector (all TrackML volumes; hits on (volume, layer) pairs the
detector does not know are ignored with a note), runs seeding, roads, the
trained labeller and track building (:func:`hepml.reco.chain.reconstruct_event`)
and writes ``hit_id,track_id`` for every hit of the file, atomically.
``track_id`` 0 means "in no track"; tracks are numbered from 1.

``score`` prints the TrackML score (hit weights from the truth file's ``weight``
column when present, else :func:`hepml.evaluate.trackml.hit_weights`), the
tracking efficiency (pT > 1 GeV, >= 5 hits, double majority) overall and per
|eta| bin, the fake rate and the duplicate rate. ``track_id`` 0 is read as "in
no track", as ``reconstruct`` writes it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepml.errors import HepmlError
from hepml.io import check_input_dir, check_input_file

DEFAULT_CONFIG = Path("config/config.yaml")


def add_arguments(verb: str, p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input", required=True, type=Path, help="directory holding the event's TrackML CSV files"
    )
    p.add_argument("--event", required=True, help="event name, eventNNNNNNNNN (the files' prefix)")
    if verb == "reconstruct":
        p.add_argument(
            "--out", required=True, type=Path, help="submission CSV to write (hit_id,track_id)"
        )
        p.add_argument(
            "--model",
            type=Path,
            default=None,
            help="labeller checkpoint (default: <results>/models/hit_labeller/model.pt of the config)",
        )
        p.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_CONFIG,
            help=f"config YAML (default: {DEFAULT_CONFIG})",
        )
        p.add_argument(
            "--method",
            choices=("bigru", "road_follower"),
            default="bigru",
            help="the labeller (default) or the classical road follower (needs no model)",
        )
        p.add_argument(
            "--backend",
            choices=("torch", "onnxruntime"),
            default="torch",
            help="run the labeller in torch (model.pt) or onnxruntime (model.onnx: `hepml export`;"
            " default: model.onnx beside the checkpoint)",
        )
    else:
        p.add_argument(
            "--submission", required=True, type=Path, help="submission CSV (hit_id,track_id)"
        )


def reconstruct(args: argparse.Namespace) -> None:
    from hepml import config
    from hepml.io import atomic_output, read_trackml_csv
    from hepml.reco.chain import Reconstruction, reconstruct_event
    from hepml.tasks.hit_labeller import MODEL_NAME

    check_input_dir(args.input)
    cfg = config.load(args.config)
    model: Any = None
    if args.method == "bigru":
        from hepml.train import load_model

        path = (
            args.model
            if args.model is not None
            else Path(cfg["workflow"]["results"]) / "models" / "hit_labeller" / "model.pt"
        )
        if args.backend == "onnxruntime":
            from hepml.export import OnnxLabeller

            onnx_path = path if path.suffix == ".onnx" else path.with_name("model.onnx")
            model = OnnxLabeller(onnx_path)
        else:
            model, meta = load_model(path)
            if meta["model_name"] != MODEL_NAME:
                raise HepmlError(
                    f"'{path}' holds a '{meta['model_name']}' model, not the hit labeller's '{MODEL_NAME}'"
                )
    hits, _ = read_trackml_csv(args.input, args.event, truth=False)
    reco = Reconstruction.from_config(cfg)
    surf = reco.detector.surface_of(hits["volume_id"].to_numpy(), hits["layer_id"].to_numpy())
    n_other = int((surf < 0).sum())
    if n_other == len(hits):
        raise HepmlError(
            f"event '{args.event}' in '{args.input}' has no hit on a surface of the detector ({reco.detector.source})"
        )
    if n_other:
        print(
            f"hepml reconstruct: note: ignoring {n_other} of {len(hits)} hits on (volume_id, layer_id) pairs the detector does not know",
            file=sys.stderr,
        )
    t0 = time.perf_counter()
    timing: dict[str, float] = {}
    track_id = reconstruct_event(hits, reco, model, timing)
    dt = time.perf_counter() - t0
    sub = pd.DataFrame({"hit_id": hits["hit_id"].to_numpy(np.int64), "track_id": track_id})
    with atomic_output(args.out) as tmp:
        sub.to_csv(tmp, index=False)
    n_tracks = int(len(np.unique(track_id[track_id > 0])))
    parts = ", ".join(f"{k} {v:.2f} s" for k, v in timing.items())
    print(
        f"hepml reconstruct: {args.event}: {n_tracks} tracks from {len(hits) - n_other} hits ({args.method}) in {dt:.2f} s ({parts}) -> {args.out}",
        file=sys.stderr,
    )


def read_submission(path: Path) -> pd.DataFrame:
    """``hit_id, track_id`` of a submission file, as int64; one-line errors otherwise.

    Both columns must be integers (no empty, fractional or text value) and
    ``track_id`` non-negative (0: in no track). :func:`check_submission` checks
    it against an event.
    """
    check_input_file(path, "submission file")
    try:
        sub = pd.read_csv(path)
    except Exception as exc:
        raise HepmlError(f"'{path}' is not a readable CSV file ({type(exc).__name__})") from None
    for c in ("hit_id", "track_id"):
        if c not in sub.columns:
            raise HepmlError(f"submission '{path}' lacks column '{c}'")
    for c in ("hit_id", "track_id"):
        col = sub[c]
        if col.isna().any():
            line = int(np.flatnonzero(col.isna().to_numpy())[0]) + 2
            raise HepmlError(f"submission '{path}' has an empty {c} at line {line}")
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise HepmlError(f"submission '{path}': column {c} holds non-numbers")
        values = col.to_numpy()
        frac = values != np.round(values) if values.dtype.kind == "f" else np.zeros(len(col), bool)
        if frac.any():
            line = int(np.flatnonzero(frac)[0]) + 2
            raise HepmlError(
                f"submission '{path}': {c} {values[frac][0]} at line {line} is not an integer"
            )
        neg = values < 0
        if neg.any():
            line = int(np.flatnonzero(neg)[0]) + 2
            raise HepmlError(
                f"submission '{path}': {c} {values[neg][0]} at line {line} is negative"
            )
    return sub[["hit_id", "track_id"]].astype(np.int64)


def check_submission(sub: pd.DataFrame, hit_ids: np.ndarray, path: Path, event: str) -> None:
    """TrackML's rule: a submission assigns every hit of the event exactly once."""
    dup = sub["hit_id"].duplicated()
    if dup.any():
        raise HepmlError(
            f"submission '{path}' assigns hit_id {int(sub['hit_id'][dup].iloc[0])} more than once"
        )
    unknown = ~sub["hit_id"].isin(hit_ids)
    if unknown.any():
        raise HepmlError(
            f"submission '{path}' names hit_id {int(sub['hit_id'][unknown].iloc[0])}, absent from event '{event}'"
        )
    missing = ~np.isin(hit_ids, sub["hit_id"].to_numpy())
    if missing.any():
        raise HepmlError(
            f"submission '{path}' leaves {int(missing.sum())} of {len(hit_ids)} hits of event '{event}' unassigned (first: hit_id {int(hit_ids[missing][0])}); every hit needs a track_id, 0 for none"
        )


def score(args: argparse.Namespace) -> None:
    from hepml.evaluate.trackml import (
        efficiency_by_abs_eta,
        hit_weights,
        tracking_efficiency,
        trackml_score,
    )
    from hepml.io import read_trackml_csv

    check_input_dir(args.input)
    hits, particles = read_trackml_csv(args.input, args.event)
    if particles is None:
        raise HepmlError(
            f"event '{args.event}' in '{args.input}' has no truth ({args.event}-truth.csv and {args.event}-particles.csv): cannot score"
        )
    sub = read_submission(args.submission)
    if "weight" in hits.columns:  # the truth file's own weights
        hits["weight"] = hits["weight"].to_numpy(np.float64)
    else:
        hits["weight"] = hit_weights(hits, particles)
    check_submission(sub, hits["hit_id"].to_numpy(), args.submission, args.event)
    assigned = sub[sub["track_id"] > 0]
    s = trackml_score(hits[["hit_id", "particle_id", "weight"]], assigned)
    res = tracking_efficiency(hits, particles, assigned)
    print(f"event {args.event}: {len(hits)} hits, {res.n_tracks} tracks")
    print(f"trackml_score {s:.6f}")
    print(
        f"efficiency {res.efficiency:.6f} ({res.n_found} of {res.n_reconstructable} particles with pT > 1 GeV and >= 5 hits)"
    )
    print(f"fake_rate {res.fake_rate:.6f} ({res.n_fake} of {res.n_tracks} tracks)")
    print(f"duplicate_rate {res.duplicate_rate:.6f} ({res.n_duplicate} duplicates)")
    for key, v in efficiency_by_abs_eta(res).items():
        eff = "n/a" if v["efficiency"] is None else f"{v['efficiency']:.6f}"
        print(f"efficiency_abs_eta_{key} {eff} ({v['n_found']} of {v['n_reconstructable']})")


def run(args: argparse.Namespace) -> None:
    if args.verb == "reconstruct":
        reconstruct(args)
    else:
        score(args)
