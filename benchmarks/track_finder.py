"""Track-finder time per TrackML-density event, against a bare per-particle helix fit.

Simulates ``--events`` events with the default config (~57k barrel hits each),
then times, alternately and ``--repeat`` times, on one core:

* the finder: :func:`hepml.reco.seeding.find_seeds` plus
  :func:`hepml.reco.following.follow_seeds` (seeding, combinatorial following,
  ambiguity resolution, final fits), as the ghost-filter build runs it;
* a bare baseline: the truth-assigned hits of every particle (>= 3 hits) fitted
  once with :func:`hepml.reco.fit.fit_candidates` — the fit a perfect finder
  would still do, without any search.

The best time of each is used (the machines are shared). Prints the counts, both
times, their ratio and, as the last line, ``seconds_per_event <number>``.

Usage: ``python benchmarks/track_finder.py [--config config/config.yaml] [--events 2] [--repeat 3]``
"""

from __future__ import annotations

import os

# one core: set before numpy is imported
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from hepml import config  # noqa: E402
from hepml.reco.fit import LayerResolution, fit_candidates  # noqa: E402
from hepml.reco.following import FollowingConfig, follow_seeds  # noqa: E402
from hepml.reco.matching import match_tracks  # noqa: E402
from hepml.reco.seeding import SeedingConfig, find_seeds  # noqa: E402
from hepml.rng import rng as make_rng  # noqa: E402
from hepml.detector.layers import TrackerGeometry  # noqa: E402
from hepml.sim.tracker import TrackerSimConfig, simulate_events  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def truth_tracks(pid: np.ndarray, layer: np.ndarray, n_layers: int) -> np.ndarray:
    """(P, n_layers) hit rows of every particle by layer (-1 where none), particles with >= 3 hits."""
    ok = (pid > 0) & (layer >= 0)
    rows = np.flatnonzero(ok)
    uniq, inv = np.unique(pid[rows], return_inverse=True)
    out = np.full((len(uniq), n_layers), -1, dtype=np.int64)
    out[inv, layer[rows]] = rows
    return out[(out >= 0).sum(axis=1) >= 3]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    ap.add_argument("--events", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    cfg = config.load(args.config)
    geometry = TrackerGeometry.from_config(cfg)
    seeding = SeedingConfig.from_config(cfg)
    following = FollowingConfig.from_config(cfg)
    res = LayerResolution.from_geometry(geometry)
    hits, _ = simulate_events(
        geometry,
        TrackerSimConfig.from_config(cfg),
        np.arange(args.events),
        make_rng(cfg["seed"], "benchmark-track-finder"),
    )
    events = []
    for eid in range(args.events):
        h = hits[hits["event_id"] == eid]
        lay = geometry.global_layer(h["volume_id"].to_numpy(), h["layer_id"].to_numpy())
        xyz = tuple(h[c].to_numpy(np.float64) for c in ("x", "y", "z"))
        pid = h["particle_id"].to_numpy()
        events.append((xyz, lay, pid, truth_tracks(pid, lay, geometry.n_layers)))

    def finder() -> tuple[int, int, float]:
        n_seeds = n_cands = n_ghosts = 0
        for (x, y, z), lay, pid, _ in events:
            seeds = find_seeds(x, y, z, lay, seeding, geometry)
            cands = follow_seeds(x, y, z, lay, seeds, geometry, following)
            m = match_tracks(pid[np.maximum(cands.hits, 0)], cands.hits >= 0)
            n_seeds += len(seeds)
            n_cands += len(cands)
            n_ghosts += int(m.is_ghost.sum())
        return n_seeds, n_cands, n_ghosts / max(n_cands, 1)

    def bare() -> int:
        n = 0
        for (x, y, z), _, _, tracks in events:
            safe = np.maximum(tracks, 0)
            lay = np.where(tracks >= 0, np.arange(geometry.n_layers)[None, :], -1)
            fit = fit_candidates(x[safe], y[safe], z[safe], lay, res, geometry.bfield_T)
            n += len(fit)
        return n

    t_find, t_bare = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        n_seeds, n_cands, ghost_frac = finder()
        t_find.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        n_truth = bare()
        t_bare.append(time.perf_counter() - t0)
    per_event = min(t_find) / args.events
    bare_per_event = min(t_bare) / args.events
    n_hits = len(hits) / args.events
    print(f"events {args.events}, {n_hits:.0f} hits per event")
    print(
        f"finder: {n_seeds / args.events:.0f} seeds and {n_cands / args.events:.0f} candidates "
        f"per event, ghost fraction {ghost_frac:.3f}"
    )
    print(f"finder seconds per event {per_event:.3f} (best of {args.repeat})")
    print(
        f"bare truth fit of {n_truth / args.events:.0f} particles per event: {bare_per_event:.3f} s"
    )
    print(f"ratio finder/bare {per_event / bare_per_event:.1f}")
    print(f"seconds_per_event {per_event:.3f}")


if __name__ == "__main__":
    main()
