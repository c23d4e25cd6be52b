"""``hepml detector --config FILE [--out detectors.csv[.gz]]``: thin adapter.

Loads and validates the config, builds the detector it describes (generated from
``tracker.detector`` or read from the TrackML file it names, with the config's
material and field: :func:`hepml.detector.load_detector`), prints one line per
surface and, with ``--out``, writes its modules as a TrackML ``detectors.csv``
(gzipped when the name ends in ``.gz``), atomically. Mistakes raise
:class:`HepmlError`, which the ``hepml`` command prints as one line (exit status
2) before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hepml import config
from hepml.errors import HepmlError

OUT_SUFFIXES = (".csv", ".csv.gz")


def add_arguments(verb: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="config YAML file")
    p.add_argument(
        "--out", type=Path, default=None, help="write the modules as a TrackML detectors.csv[.gz]"
    )


def run(args: argparse.Namespace) -> None:
    out: Path | None = args.out
    if out is not None and not out.name.endswith(OUT_SUFFIXES):
        raise HepmlError(f"--out '{out}': the output must be a .csv or .csv.gz file")
    cfg = config.load(args.config)
    from hepml.detector import load_detector
    from hepml.detector.trackml import write_detectors_csv

    det = load_detector(cfg)
    n_barrel = sum(s.is_barrel for s in det.surfaces)
    print(det.describe())
    print(
        f"{len(det.modules)} modules on {len(det.surfaces)} surfaces "
        f"({n_barrel} barrel layers, {len(det.surfaces) - n_barrel} disks), source {det.source}"
    )
    if out is not None:
        write_detectors_csv(out, det.modules)
        print(f"hepml detector: {len(det.modules)} modules written to {out}", file=sys.stderr)
