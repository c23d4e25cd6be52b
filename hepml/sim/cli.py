"""``hepml simulate tracker|calo --config FILE --shard K --out PATH.root``: thin adapter.

Checks the arguments (shard in range, a ``.root`` output), loads and validates the
config, then calls :func:`hepml.sim.tracker.simulate_shard` or
:func:`hepml.sim.calo.simulate_shard`. Mistakes raise :class:`HepmlError`, which
the ``hepml`` command prints as one line (exit status 2) before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hepml import config
from hepml.errors import HepmlError

#: kind -> the workflow key holding its number of shards
SHARD_KEYS = {"tracker": "tracker_shards", "calo": "calo_shards"}


def add_arguments(verb: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=sorted(SHARD_KEYS), help="what to simulate")
    p.add_argument("--config", required=True, type=Path, help="config YAML file")
    p.add_argument(
        "--shard", required=True, type=int, help="shard number K, 0 <= K < workflow.<kind>_shards"
    )
    p.add_argument("--out", required=True, type=Path, help="ROOT file to write (.root)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> None:
    out: Path = args.out
    if out.suffix != ".root":
        raise HepmlError(f"--out '{out}': the output must be a .root file")
    cfg = config.load(args.config)
    key = SHARD_KEYS[args.kind]
    n = int(cfg["workflow"][key])
    if not 0 <= args.shard < n:
        raise HepmlError(
            f"--shard {args.shard} is out of range: workflow.{key} is {n} in '{args.config}' (shards 0..{n - 1})"
        )
    progress = not args.no_progress and sys.stderr.isatty()
    if args.kind == "tracker":
        from hepml.sim import tracker

        tracker.simulate_shard(cfg, args.shard, out, progress=progress)
    else:
        from hepml.sim import calo

        calo.simulate_shard(cfg, args.shard, out, progress)
    print(f"hepml simulate {args.kind}: shard {args.shard} written to {out}", file=sys.stderr)
