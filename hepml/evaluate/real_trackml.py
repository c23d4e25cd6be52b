"""``hepml real-trackml``: whole-event reconstruction of a real TrackML event, beside our own simulation.

::

    hepml real-trackml --input DIR --event eventNNNNNNNNN --submission METHOD=FILE... --config FILE
                       [--own-sim results/evaluate/hit_labeller/metrics.json] --out DIR

Scores each method's submission (``hit_id,track_id`` from ``hepml reconstruct``;
``track_id`` 0 is "in no track") against the real event's truth with the
functions of :mod:`hepml.evaluate.trackml` (the TrackML score with the truth
file's ``weight`` column when it has one, else
:func:`~hepml.evaluate.trackml.hit_weights`; efficiency, fake and duplicate
rates; efficiency per |eta| bin of :data:`~hepml.evaluate.trackml.ETA_BINS`).
A particle is reconstructable with pT > ``hit_labeller.efficiency_min_pt_GeV``
and at least ``hit_labeller.efficiency_min_hits`` hits, found by a double
majority track, and tracks shorter than ``hit_labeller.building.min_hits`` are
not counted: the same definitions as the hit labeller's own evaluation, whose
``metrics.json`` (``--own-sim``: its ``tracking`` and ``efficiency_by_abs_eta``
blocks, on the simulated test events) is set side by side with the real event.

Writes to ``DIR``:

* ``metrics.json``: ``section`` ("Real TrackML"), where the event came from, the
  selection in words, ``tracking`` (``{"<method>, <sample>": {trackml_score,
  efficiency, fake_rate, duplicate_rate, n_reconstructable, n_found, n_tracks,
  n_fake, n_duplicate}}``, sample ``real <event>`` or ``own simulation``),
  ``efficiency_by_abs_eta`` (same rows, ``{bin: efficiency}``),
  ``found_by_abs_eta`` (real rows, ``{bin: "found/reconstructable"}``),
  ``efficiency_by_pt`` (real rows, particles with enough hits, ``{bin: efficiency}``),
  ``plots`` (file -> caption) and ``tables`` (the report's layout, :data:`TABLES`);
* PNG plots (:data:`PLOTS`): efficiency against pT and eta on the real event,
  and the real event against the own simulation.

A bad input (missing directory, event, truth or submission, a submission naming
a hit the event lacks, an own-simulation file without the method) stops with
one line and exit status 2 before anything is written; every file is written
atomically, ``metrics.json`` last.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepml.errors import HepmlError
from hepml.evaluate.trackml import (
    ETA_BINS,
    TrackingResult,
    efficiency_by_abs_eta,
    hit_weights,
    tracking_efficiency,
    trackml_score,
)

SECTION = "Real TrackML"
#: pT bin edges (GeV) of the efficiency against pT.
PT_BINS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
#: eta bin edges of the efficiency against eta (coarse: a 5% sample holds ~50 reconstructable particles).
ETA_PLOT_BINS: tuple[float, ...] = tuple(float(x) for x in np.linspace(-4.0, 4.0, 9))
OWN = "own simulation"
#: Every plot this verb may write, with its caption (filled with the selection when written).
PLOTS: dict[str, str] = {
    "efficiency_pt.png": "Tracking efficiency on the real event against particle pT (particles with >= {min_hits} hits; double majority); 68% Clopper-Pearson intervals.",
    "efficiency_eta.png": "Tracking efficiency on the real event against particle eta (pT > {min_pt:g} GeV, >= {min_hits} hits); 68% Clopper-Pearson intervals.",
    "real_vs_sim_eta.png": "Tracking efficiency per |eta| bin: the real event (68% Clopper-Pearson intervals) against the own simulation's test events (their metrics.json holds no counts: no bars).",
    "real_vs_sim.png": "TrackML score, efficiency, fake and duplicate rates: the real event against the own simulation's test events; binomial errors where the counts are known.",
}
RATES = ("trackml_score", "efficiency", "fake_rate", "duplicate_rate")
#: How the report lays out the tables (:mod:`hepml.evaluate.report`).
TABLES: dict[str, dict[str, Any]] = {
    "tracking": {
        "title": "whole-event tracking: real event and own simulation side by side",
        "row_header": "method, sample",
        "columns": {
            "trackml_score": "TrackML score",
            "efficiency": "efficiency",
            "fake_rate": "fake rate",
            "duplicate_rate": "duplicate rate",
            "n_reconstructable": "reconstructable",
            "n_found": "found",
            "n_tracks": "tracks",
        },
    },
    "efficiency_by_abs_eta": {
        "title": "efficiency per |eta| bin",
        "row_header": "method, sample",
    },
    "found_by_abs_eta": {
        "title": "found / reconstructable per |eta| bin (real event)",
        "row_header": "method, sample",
    },
    "efficiency_by_pt": {
        "title": "efficiency per pT bin [GeV] (real event, particles with enough hits)",
        "row_header": "method, sample",
    },
}


@dataclass(frozen=True)
class Selection:
    """The efficiency definition, from the hit labeller's config section."""

    min_pt_gev: float
    min_hits: int
    min_track_hits: int

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Selection:
        from hepml.reco.building import BuildingConfig

        h = cfg["hit_labeller"]
        return cls(
            min_pt_gev=float(h["efficiency_min_pt_GeV"]),
            min_hits=int(h["efficiency_min_hits"]),
            min_track_hits=int(BuildingConfig.from_config(dict(cfg)).min_hits),
        )

    def describe(self) -> str:
        return (
            f"reconstructable: pT > {self.min_pt_gev:g} GeV and >= {self.min_hits} hits; found: a track "
            "holds > 50% of the particle's hits and > 50% of its hits are the particle's (double "
            f"majority); tracks with < {self.min_track_hits} hits are not counted"
        )


# --------------------------------------------------------------------------- scoring
def score_event(
    hits: pd.DataFrame, particles: pd.DataFrame, submission: pd.DataFrame, sel: Selection
) -> tuple[dict[str, Any], TrackingResult]:
    """``({trackml_score, efficiency, ...}, TrackingResult)`` of one event's submission.

    ``hits``: the event's hits with truth (``weight`` used when present);
    ``submission``: ``hit_id, track_id`` with 0 for "in no track".
    """
    unknown = ~submission["hit_id"].isin(hits["hit_id"])
    if unknown.any():
        raise HepmlError(
            f"submission names hit_id {int(submission['hit_id'][unknown].iloc[0])}, absent from the event"
        )
    truth = hits[["hit_id", "particle_id"]].copy()
    truth["weight"] = (
        hits["weight"].to_numpy(np.float64) if "weight" in hits else hit_weights(hits, particles)
    )
    assigned = submission[submission["track_id"] > 0][["hit_id", "track_id"]]
    res = tracking_efficiency(
        hits[["hit_id", "particle_id"]],
        particles,
        assigned,
        min_pt_gev=sel.min_pt_gev,
        min_hits=sel.min_hits,
        min_track_hits=sel.min_track_hits,
    )
    return {"trackml_score": trackml_score(truth, assigned), **res.summary()}, res


def efficiency_by_pt(
    result: TrackingResult, min_hits: int, bins: Sequence[float] = PT_BINS
) -> dict[str, dict[str, float | int | None]]:
    """Efficiency of the particles with >= ``min_hits`` hits in bins of pT (GeV):
    ``{"1.0-1.5": {efficiency, n_found, n_particles}}`` (efficiency None in an empty bin)."""
    p = result.particles[result.particles["nhits"].to_numpy() >= min_hits]
    pt = p["pt"].to_numpy(np.float64)
    found = p["found"].to_numpy(bool)
    out: dict[str, dict[str, float | int | None]] = {}
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        s = (pt >= lo) & (pt < hi)
        n, k = int(s.sum()), int(found[s].sum())
        out[f"{lo:g}-{hi:g}"] = {"efficiency": k / n if n else None, "n_found": k, "n_particles": n}
    return out


def read_own_simulation(path: Path, methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{method: {"tracking": {...}, "efficiency_by_abs_eta": {bin: eff}, "events": n}}`` from
    the hit labeller's ``metrics.json``; HepmlError naming the file and key."""
    from hepml.io import check_input_file

    check_input_file(path, "own-simulation metrics")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HepmlError(f"'{path}' is not a readable JSON file ({type(exc).__name__})") from None
    out = {}
    for m in methods:
        for key in ("tracking", "efficiency_by_abs_eta"):
            block = data.get(key) if isinstance(data, dict) else None
            if not isinstance(block, dict) or not isinstance(block.get(m), dict):
                raise HepmlError(f"own-simulation metrics '{path}': no '{key}.{m}' block")
        t = data["tracking"][m]
        missing = [k for k in RATES if k not in t]
        if missing:
            raise HepmlError(f"own-simulation metrics '{path}': no 'tracking.{m}.{missing[0]}'")
        events = (data.get("test_sample") or {}).get("events")
        out[m] = {
            "tracking": t,
            "efficiency_by_abs_eta": data["efficiency_by_abs_eta"][m],
            "events": events,
        }
    return out


# --------------------------------------------------------------------------- plots
def _err(p: float | None, n: Any) -> float:
    if p is None or not isinstance(n, int | float) or n <= 0:
        return 0.0
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)


def _plots(
    out: Path,
    results: Mapping[str, TrackingResult],
    real_rows: Mapping[str, dict[str, Any]],
    own: Mapping[str, dict[str, Any]],
    sel: Selection,
) -> dict[str, str]:
    from hepml.evaluate.plots import (
        binomial_interval,
        efficiency_plot,
        plot_binned,
        plot_categories,
    )

    written: dict[str, str] = {}
    parts = {m: r.particles for m, r in results.items()}
    enough = {m: p["nhits"].to_numpy() >= sel.min_hits for m, p in parts.items()}
    efficiency_plot(
        out / "efficiency_pt.png",
        {m: p["pt"].to_numpy()[enough[m]] for m, p in parts.items()},
        {m: p["found"].to_numpy()[enough[m]] for m, p in parts.items()},
        PT_BINS,
        "particle pT [GeV]",
        "tracking efficiency",
        title=f"real event: particles with >= {sel.min_hits} hits",
        logx=True,
    )
    rec = {m: p["reconstructable"].to_numpy() for m, p in parts.items()}
    efficiency_plot(
        out / "efficiency_eta.png",
        {m: p["eta"].to_numpy()[rec[m]] for m, p in parts.items()},
        {m: p["found"].to_numpy()[rec[m]] for m, p in parts.items()},
        ETA_PLOT_BINS,
        "particle eta",
        "tracking efficiency",
        title=f"real event: pT > {sel.min_pt_gev:g} GeV, >= {sel.min_hits} hits",
    )
    written["efficiency_pt.png"] = PLOTS["efficiency_pt.png"].format(min_hits=sel.min_hits)
    written["efficiency_eta.png"] = PLOTS["efficiency_eta.png"].format(
        min_hits=sel.min_hits, min_pt=sel.min_pt_gev
    )
    if not own:
        return written

    keys = [f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(ETA_BINS[:-1], ETA_BINS[1:], strict=True)]
    series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for m, r in results.items():
        by_eta = efficiency_by_abs_eta(r)
        k = np.array([by_eta[b]["n_found"] for b in keys], dtype=np.float64)
        n = np.array([by_eta[b]["n_reconstructable"] for b in keys], dtype=np.float64)
        lo, hi = binomial_interval(k, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            eff = np.where(n > 0, k / np.maximum(n, 1.0), np.nan)
        series[f"{m}, real"] = (eff, lo, hi)
        if m in own:
            sim = np.array(
                [
                    np.nan
                    if own[m]["efficiency_by_abs_eta"].get(b) is None
                    else own[m]["efficiency_by_abs_eta"][b]
                    for b in keys
                ],
                dtype=np.float64,
            )
            series[f"{m}, {OWN}"] = (sim, sim, sim)
    plot_binned(
        out / "real_vs_sim_eta.png",
        ETA_BINS,
        series,
        "particle |eta|",
        "tracking efficiency",
        title=f"pT > {sel.min_pt_gev:g} GeV, >= {sel.min_hits} hits: real against own simulation",
        ylim=(0.0, 1.05),
    )
    written["real_vs_sim_eta.png"] = PLOTS["real_vs_sim_eta.png"]

    cats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for m in results:
        for label, t in (
            (f"{m}, real", real_rows[m]),
            (f"{m}, {OWN}", own.get(m, {}).get("tracking")),
        ):
            if t is None:
                continue
            n_matched = (t.get("n_tracks") or 0) - (t.get("n_fake") or 0)
            counts = {
                "trackml_score": None,
                "efficiency": t.get("n_reconstructable"),
                "fake_rate": t.get("n_tracks"),
                "duplicate_rate": n_matched,
            }
            val = np.array([np.nan if t.get(k) is None else t[k] for k in RATES], dtype=np.float64)
            err = np.array([_err(t.get(k), counts[k]) for k in RATES])
            cats[label] = (val, err)
    plot_categories(
        out / "real_vs_sim.png",
        ["TrackML score", "efficiency", "fake rate", "duplicate rate"],
        cats,
        "value",
        title="real event against own simulation",
    )
    written["real_vs_sim.png"] = PLOTS["real_vs_sim.png"]
    return written


# --------------------------------------------------------------------------- CLI
def add_arguments(verb: str, p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input", required=True, type=Path, help="directory of the real TrackML event (with truth)"
    )
    p.add_argument("--event", required=True, help="event name, eventNNNNNNNNN (the files' prefix)")
    p.add_argument(
        "--submission",
        required=True,
        nargs="+",
        metavar="METHOD=FILE",
        help="each method's submission CSV (hit_id,track_id), e.g. bigru=bigru/submission.csv",
    )
    p.add_argument(
        "--config", required=True, type=Path, help="config YAML (the efficiency definition)"
    )
    p.add_argument(
        "--own-sim",
        type=Path,
        default=None,
        help="the hit labeller's metrics.json on the simulated test events, shown beside the real event",
    )
    p.add_argument("--out", required=True, type=Path, help="output directory")


def parse_submissions(items: Sequence[str]) -> dict[str, Path]:
    """``["bigru=a.csv", ...]`` -> ``{"bigru": Path("a.csv")}``; HepmlError on a malformed item."""
    out: dict[str, Path] = {}
    for item in items:
        method, sep, path = item.partition("=")
        if not sep or not method or not path:
            raise HepmlError(f"--submission '{item}' is not METHOD=FILE")
        if method in out:
            raise HepmlError(f"--submission names method '{method}' twice")
        out[method] = Path(path)
    return out


def run(args: argparse.Namespace) -> None:
    from hepml import config
    from hepml.evaluate.roc import to_jsonable
    from hepml.io import atomic_write_text, check_input_dir, read_trackml_csv
    from hepml.tasks.reconstruct import read_submission

    # every input is read and checked before anything is written
    subs_paths = parse_submissions(args.submission)
    sel = Selection.from_config(config.load(args.config))
    check_input_dir(args.input)
    hits, particles = read_trackml_csv(args.input, args.event)
    if particles is None:
        raise HepmlError(
            f"event '{args.event}' in '{args.input}' has no truth ({args.event}-truth.csv and {args.event}-particles.csv): cannot score"
        )
    subs = {m: read_submission(p) for m, p in subs_paths.items()}
    own = read_own_simulation(args.own_sim, list(subs)) if args.own_sim is not None else {}
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise HepmlError(f"output '{out}' exists and is not a directory")

    real = f"real {args.event}"
    rows: dict[str, dict[str, Any]] = {}
    results: dict[str, TrackingResult] = {}
    tracking: dict[str, dict[str, Any]] = {}
    eff_eta: dict[str, dict[str, Any]] = {}
    found_eta: dict[str, dict[str, str]] = {}
    eff_pt: dict[str, dict[str, Any]] = {}
    for m, sub in subs.items():
        try:
            rows[m], results[m] = score_event(hits, particles, sub, sel)
        except HepmlError as exc:
            raise HepmlError(f"'{subs_paths[m]}': {exc}") from None
        by_eta = efficiency_by_abs_eta(results[m])
        tracking[f"{m}, {real}"] = rows[m]
        eff_eta[f"{m}, {real}"] = {b: v["efficiency"] for b, v in by_eta.items()}
        found_eta[f"{m}, {real}"] = {
            b: f"{v['n_found']}/{v['n_reconstructable']}" for b, v in by_eta.items()
        }
        eff_pt[f"{m}, {real}"] = {
            b: v["efficiency"] for b, v in efficiency_by_pt(results[m], sel.min_hits).items()
        }
        if m in own:
            tracking[f"{m}, {OWN}"] = {
                k: own[m]["tracking"].get(k) for k in ("trackml_score", *results[m].summary())
            }
            eff_eta[f"{m}, {OWN}"] = dict(own[m]["efficiency_by_abs_eta"])

    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(out, results, rows, own, sel)
    for name in PLOTS:
        if name not in plots:
            (out / name).unlink(missing_ok=True)
    n_with_hits = int(hits.loc[hits["particle_id"].to_numpy() > 0, "particle_id"].nunique())
    data: dict[str, Any] = {
        "section": SECTION,
        "real_directory": str(args.input),
        "real_event": args.event,
        "own_simulation": str(args.own_sim) if args.own_sim is not None else "none",
        "own_simulation_events": next((o["events"] for o in own.values()), None),
        "real_hits": len(hits),
        "real_particles_with_hits": n_with_hits,
        "selection": sel.describe(),
        "tracking": tracking,
        "efficiency_by_abs_eta": eff_eta,
        "found_by_abs_eta": found_eta,
        "efficiency_by_pt": eff_pt,
        "plots": plots,
        "tables": TABLES,
    }
    atomic_write_text(
        out / "metrics.json", json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n"
    )
    for key, t in tracking.items():
        print(
            f"{key}: TrackML score {_f(t.get('trackml_score'))}, efficiency {_f(t.get('efficiency'))}, "
            f"fake rate {_f(t.get('fake_rate'))}, duplicate rate {_f(t.get('duplicate_rate'))}"
        )
    print(f"hepml real-trackml: wrote {out / 'metrics.json'}", file=sys.stderr)


def _f(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.4f}"
