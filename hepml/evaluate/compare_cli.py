"""``hepml compare-real``: one simulated event against one real TrackML event, figure by figure.

::

    hepml compare-real --real DIR --event eventNNNNNNNNN --sim FILE.root [--sim-event ID]
                       [--detectors PATH] --out DIR [--check]

Reads the real event (TrackML CSV with its truth: ``-hits``, ``-truth`` and
``-particles``, ``.csv`` or ``.csv.gz``) and one event of a simulated tracker
file (``--sim-event``, default the lowest ``event_id`` in the file), computes the
figures of :mod:`hepml.evaluate.realdata` for both and writes to ``DIR``:

* ``metrics.json``: ``section`` (the report's heading), where the events came
  from, ``comparison`` (``{figure: {what, sim, real, ratio, difference, band,
  ok}}``; ``ok`` is null for a figure reported without a band), ``all_in_band``,
  ``out_of_band``, the events' counts, the double-hit share per volume, the RMS
  local residuals in pitches, ``plots`` (file -> caption) and ``tables`` (how
  :mod:`hepml.evaluate.report` lays out the tables, :data:`TABLES`);
* PNG plots: hits per particle, hit share per (volume, layer), particle pT and
  eta, double-hit share per volume, local residuals (:data:`PLOTS`).

The table is printed on stdout. Local residuals need the modules:
``--detectors`` (a TrackML ``detectors.csv[.gz]``, used for both events,
matched by (volume_id, layer_id, module_id)), by default ``DIR/detectors.csv[.gz]``
of the real event's directory or of its parent; without one the residual plot
is skipped with a note on stderr.

Bad input (a missing directory, event or file, a real event without truth, a
simulated event id absent from the file) stops with one line and exit status 2
before anything is written. With ``--check``, a figure outside its band makes
the command exit with status 2 and one line on stderr naming the first such
figure (and how many there are), *after* writing the outputs: the comparison is
then on disk to look at. Every file is written atomically; ``metrics.json``
last, and plots an earlier run left that this run did not make are removed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepml.errors import HepmlError
from hepml.evaluate import realdata as rd

SECTION = "Simulation against real TrackML"
#: Every plot this verb may write, with its caption.
PLOTS: dict[str, str] = {
    "hits_per_particle.png": "Hits per particle (particles with at least one hit), normalised.",
    "layer_hit_share.png": "Share of all hits (noise included) on each volume:layer; binomial errors.",
    "particle_pt.png": "Transverse momentum of the particles with hits, normalised (the outer bins hold the overflow).",
    "particle_eta.png": "Pseudorapidity of the momentum of the particles with hits, normalised.",
    "double_hit_share.png": "Share of the (particle, layer) pairs with two or more hits (module overlaps), per volume.",
    "residuals.png": (
        "Local residual of the particles' hits to their true crossing on the module mid-plane "
        "(measured minus true), in pitches, per sensor technology, along u and v; dashed: uniform "
        "over one pitch, whose RMS is pitch/sqrt(12) = 0.289 pitch. The outer bins hold the overflow."
    ),
}


#: How the report lays out the tables (:mod:`hepml.evaluate.report`): the comparison as
#: figure, hepml, real, band, in band? (ratio and difference stay in metrics.json).
TABLES: dict[str, dict[str, Any]] = {
    "comparison": {
        "title": "hepml simulation against the real event",
        "row_header": "figure",
        "row_label": "what",
        "columns": {"sim": "hepml", "real": "real", "band": "band", "ok": "in band?"},
    },
    "events": {"title": "events compared", "row_header": "event"},
    "double_hit_share_by_volume": {"title": "double-hit share per volume"},
    "residual_rms_in_pitches": {"title": "RMS local residual [pitch]"},
}


def add_arguments(verb: str, p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--real", required=True, type=Path, help="directory of the real TrackML event (with truth)"
    )
    p.add_argument("--event", required=True, help="real event name, eventNNNNNNNNN")
    p.add_argument("--sim", required=True, type=Path, help="simulated tracker file (.root)")
    p.add_argument(
        "--sim-event",
        type=int,
        default=None,
        help="event_id of the simulated event (default: the lowest in the file)",
    )
    p.add_argument(
        "--detectors",
        type=Path,
        default=None,
        help="TrackML detectors.csv[.gz] for the local residuals (default: in --real or its parent)",
    )
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit with status 2 if a figure is out of its band (the outputs are still written)",
    )


# --------------------------------------------------------------------------- inputs
def read_real(directory: Path, event: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The real event with its truth; HepmlError naming what is missing."""
    from hepml.io import check_input_dir, read_trackml_csv

    check_input_dir(directory, "real event directory")
    hits, particles = read_trackml_csv(directory, event)
    if particles is None:
        raise HepmlError(
            f"event '{event}' in '{directory}' has no truth ({event}-truth.csv and {event}-particles.csv): cannot compare"
        )
    return hits, particles


def read_sim(path: Path, event_id: int | None) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """One event of a simulated tracker file: ``(hits, particles, event_id)``."""
    from hepml.io import read_tracker_root

    hits, particles = read_tracker_root(path)
    ids = np.unique(hits["event_id"].to_numpy())
    if not len(ids):
        raise HepmlError(f"simulated file '{path}' holds no hit")
    eid = int(ids[0]) if event_id is None else int(event_id)
    if eid not in ids:
        shown = ", ".join(str(int(i)) for i in ids[:10]) + (", ..." if len(ids) > 10 else "")
        raise HepmlError(f"simulated file '{path}' has no event_id {eid} (it has {shown})")
    h = hits[hits["event_id"].to_numpy() == eid].reset_index(drop=True)
    p = particles[particles["event_id"].to_numpy() == eid].reset_index(drop=True)
    return h, p, eid


def default_detectors(real_dir: Path) -> Path | None:
    """``detectors.csv[.gz]`` in the real event's directory or its parent, if there is one."""
    for d in (real_dir, real_dir.parent):
        for name in ("detectors.csv", "detectors.csv.gz"):
            if (d / name).is_file():
                return d / name
    return None


# --------------------------------------------------------------------------- outputs
def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{x:.4g}"


def format_table(rows: Sequence[rd.ComparisonRow]) -> str:
    """The comparison as a fixed-width text table (one line per figure)."""
    head = ("figure", "sim", "real", "ratio", "difference", "band", "ok")
    body = [
        (
            r.figure,
            _fmt(r.sim),
            _fmt(r.real),
            _fmt(r.ratio),
            "n/a" if math.isnan(r.difference) else f"{r.difference:+.4g}",
            r.band,
            "-" if r.ok is None else ("ok" if r.ok else "OUT OF BAND"),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    lines = []
    for row in (head, *body):
        cells = [
            c.ljust(w) if i in (0, 5, 6) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _binomial_error(p: np.ndarray, n: np.ndarray) -> np.ndarray:
    n = np.asarray(n, dtype=np.float64)
    return np.sqrt(np.clip(p * (1.0 - p), 0.0, None) / np.maximum(n, 1.0))


def _plots(
    out: Path,
    sides: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    residuals: Mapping[str, rd.Residuals],
    labels: Mapping[str, str],
) -> list[str]:
    """Write the plots (legend of side ``k``: ``labels[k]``); return the file names written."""
    from hepml.evaluate import plots

    written = []
    counts = {labels[k]: rd.hits_per_particle(h) for k, (h, _) in sides.items()}
    top = max([int(c.max()) for c in counts.values() if len(c)] + [20])
    plots.plot_histograms(
        out / "hits_per_particle.png",
        np.arange(0.5, top + 1.5),
        counts,
        "hits per particle",
        "fraction of particles",
        title="hits per particle",
    )
    written.append("hits_per_particle.png")

    shares = {k: rd.layer_hit_share(h) for k, (h, _) in sides.items()}
    keys = sorted(set().union(*(s.index for s in shares.values())))
    series = {}
    for k, s in shares.items():
        val = s.reindex(pd.MultiIndex.from_tuples(keys)).to_numpy(np.float64)
        n = np.full(len(keys), len(sides[k][0]))
        series[labels[k]] = (val, _binomial_error(np.nan_to_num(val), n))
    plots.plot_categories(
        out / "layer_hit_share.png",
        [f"{v}:{lay}" for v, lay in keys],
        series,
        "share of all hits",
        xlabel="volume:layer",
        title="hit share per layer",
    )
    written.append("layer_hit_share.png")

    kin = {k: rd.particle_pt_eta(h, p) for k, (h, p) in sides.items()}
    plots.plot_histograms(
        out / "particle_pt.png",
        np.geomspace(0.05, 100.0, 31),
        {labels[k]: pt for k, (pt, _) in kin.items()},
        "particle pT [GeV]",
        "fraction of particles",
        title="pT of the particles with hits",
        logx=True,
        logy=True,
    )
    plots.plot_histograms(
        out / "particle_eta.png",
        np.linspace(-5.0, 5.0, 41),
        {labels[k]: eta for k, (_, eta) in kin.items()},
        "particle eta (of the momentum)",
        "fraction of particles",
        title="eta of the particles with hits",
    )
    written += ["particle_pt.png", "particle_eta.png"]

    dbl = {k: rd.double_hit_share_by_volume(h) for k, (h, _) in sides.items()}
    vols = sorted(set().union(*(d.index for d in dbl.values())))
    series = {}
    for k, d in dbl.items():
        d = d.reindex(vols)
        share = d["share"].to_numpy(np.float64)
        n = d["pairs"].fillna(0).to_numpy()
        series[labels[k]] = (share, _binomial_error(np.nan_to_num(share), n))
    plots.plot_categories(
        out / "double_hit_share.png",
        [str(v) for v in vols],
        series,
        "(particle, layer) pairs with 2+ hits",
        xlabel="volume",
        title="double hits per volume",
    )
    written.append("double_hit_share.png")

    if residuals:
        panels: dict[str, dict[str, np.ndarray]] = {}
        for tech in rd.TECHNOLOGIES:
            for axis in rd.AXES:
                title = f"{tech}, {axis}"
                panels[title] = {}
                for k, res in residuals.items():
                    sel = res.table["technology"].to_numpy() == tech
                    d = res.in_pitch(axis)[sel]
                    rms = float(np.sqrt(np.mean(d * d))) if len(d) else math.nan
                    panels[title][f"{labels[k]}: rms {rms:.3f}"] = d
        x = np.array([-2.0, -0.5, -0.5, 0.5, 0.5, 2.0])
        y = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
        plots.plot_histogram_grid(
            out / "residuals.png",
            np.linspace(-2.0, 2.0, 81),
            panels,
            "measured - true [pitch]",
            "entries per pitch (normalised)",
            density=True,
            reference=(x, y, f"uniform, rms {rd.UNIFORM_RMS_PITCH:.3f}"),
        )
        written.append("residuals.png")
    return written


def comparison_metrics(
    rows: Sequence[rd.ComparisonRow],
    sides: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    residuals: Mapping[str, rd.Residuals],
    provenance: Mapping[str, Any],
    plots: Sequence[str],
    notes: Sequence[str],
) -> dict[str, Any]:
    """The ``metrics.json`` content (see the module docstring)."""
    bad = rd.out_of_band(rows)
    data: dict[str, Any] = {
        "section": SECTION,
        **provenance,
        "all_in_band": not bad,
        "out_of_band": ", ".join(r.figure for r in bad) or "none",
        "comparison": {
            r.figure: {
                "what": rd.DESCRIPTIONS.get(r.figure, r.figure),
                "sim": r.sim,
                "real": r.real,
                "ratio": r.ratio,
                "difference": r.difference,
                "band": r.band,
                "ok": r.ok,
            }
            for r in rows
        },
        "events": {k: rd.event_counts(h, p) for k, (h, p) in sides.items()},
    }
    dbl = {k: rd.double_hit_share_by_volume(h)["share"] for k, (h, _) in sides.items()}
    vols = sorted(set().union(*(d.index for d in dbl.values())))
    data["double_hit_share_by_volume"] = {
        f"volume {v}": {k: float(d.get(v, math.nan)) for k, d in dbl.items()} for v in vols
    }
    if residuals:
        rms = {k: r.rms_pitch() for k, r in residuals.items()}
        data["residual_rms_in_pitches"] = {
            name: {**{k: rms[k][name] for k in rms}, "pitch/sqrt(12)": rd.UNIFORM_RMS_PITCH}
            for name in next(iter(rms.values()))
        }
    if notes:
        data["notes"] = " ".join(notes)
    data["plots"] = {name: PLOTS[name] for name in plots}
    data["tables"] = TABLES
    return data


# --------------------------------------------------------------------------- run
def _note(text: str) -> None:
    print(f"hepml compare-real: note: {text}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from hepml.evaluate.roc import to_jsonable
    from hepml.io import atomic_write_text

    # every input is read and checked before anything is written
    real_hits, real_particles = read_real(args.real, args.event)
    sim_hits, sim_particles, sim_eid = read_sim(args.sim, args.sim_event)
    det_path = args.detectors if args.detectors is not None else default_detectors(args.real)
    modules = None
    notes: list[str] = []
    if det_path is not None:
        from hepml.detector.trackml import read_detectors_csv

        modules = read_detectors_csv(det_path)
    else:
        notes.append(
            f"no detectors.csv[.gz] in '{args.real}' or its parent and no --detectors: residual plot skipped."
        )
    sides = {"sim": (sim_hits, sim_particles), "real": (real_hits, real_particles)}
    labels = {"sim": f"sim (event {sim_eid})", "real": f"real ({args.event})"}
    residuals: dict[str, rd.Residuals] = {}
    if modules is not None:
        for side, (h, _) in sides.items():
            label = labels[side]
            if not all(c in h for c in ("tx", "ty", "tz")):
                notes.append(f"{label} has no truth position (tx, ty, tz): no residuals.")
                continue
            res = rd.local_residuals(h, modules)
            n_left = res.n_unknown_module + res.n_off_module
            n_all = n_left + len(res.table)
            if n_all and n_left > 0.01 * n_all:
                notes.append(
                    f"{label}: {n_left} of {n_all} particle hits are on modules absent from "
                    f"'{det_path}' or off their module (another layout?): no residuals."
                )
                continue
            if n_left:
                notes.append(f"{label}: {n_left} of {n_all} hits left out of the residuals.")
            residuals[side] = res
    figures = [rd.event_figures(h, p) for h, p in sides.values()]
    rows = rd.compare(figures[0], figures[1])

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise HepmlError(f"output '{out}' exists and is not a directory")
    written = _plots(out, sides, residuals, labels)
    for name in PLOTS:
        if name not in written:
            (out / name).unlink(missing_ok=True)
    provenance = {
        "sim_file": str(args.sim),
        "sim_event_id": sim_eid,
        "real_directory": str(args.real),
        "real_event": args.event,
        "detectors": str(det_path) if det_path is not None else "none",
    }
    data = comparison_metrics(rows, sides, residuals, provenance, written, notes)
    atomic_write_text(
        out / "metrics.json", json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n"
    )
    for n in notes:
        _note(n)
    print(f"sim: {args.sim} event {sim_eid}; real: {args.real} {args.event}")
    print(format_table(rows))
    bad = rd.out_of_band(rows)
    if args.check and bad:
        first = bad[0]
        more = f" ({len(bad)} figures out of band: {', '.join(r.figure for r in bad)})"
        print(
            f"hepml compare-real: check failed: {first.figure} = {_fmt(first.sim)} against real "
            f"{_fmt(first.real)} is outside its band ({first.band}){more if len(bad) > 1 else ''}",
            file=sys.stderr,
        )
        return 2
    return 0
