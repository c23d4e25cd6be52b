"""Track-candidate rate of the ghost filter's finder on full-density events, against a bare fit.

Simulates ``--events`` events with the default config (~106k hits each, the
whole detector), then times, alternately and ``--repeat`` times, on one core:

* the finder, as ``hepml build ghost_filter`` runs it: space points, seeding and
  roads with the road follower (:func:`hepml.tasks.ghost_filter.event_candidates`),
  the candidates (:func:`hepml.features.sequences.candidates_from_roads`), their
  two-pass helix fits (:func:`hepml.features.sequences.fit_candidates`) and
  features (:func:`hepml.features.sequences.candidate_features`);
* a bare baseline: the truth-assigned hits of every particle (>= 3 hits, in
  path order) fitted once with the same :func:`~hepml.features.sequences.fit_candidates`,
  the fit a perfect finder would still do, without any search.

The best time of each is used (the machines are shared). Prints the counts, the
candidates per second of each, their ratio and, as the last line,
``candidates_per_s <number>``.

Usage: ``python benchmarks/track_finder.py [--config config/config.yaml] [--events 1] [--repeat 3]``
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
from hepml.detector import load_detector  # noqa: E402
from hepml.features import sequences as seq  # noqa: E402
from hepml.reco.chain import Reconstruction  # noqa: E402
from hepml.reco.matching import match_tracks  # noqa: E402
from hepml.reco.spacepoints import SpacePoints  # noqa: E402
from hepml.rng import rng as make_rng  # noqa: E402
from hepml.sim.tracker import TrackerSimConfig, simulate_events  # noqa: E402
from hepml.tasks.ghost_filter import GhostFilterConfig, event_candidates  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def truth_candidates(sp: SpacePoints, pid: np.ndarray) -> seq.Candidates:
    """Every particle's hits (>= 3 on known surfaces) as one candidate, ordered by |r, z| distance
    from the origin (their path order for particles from the beam line)."""
    ok = (pid > 0) & (sp.surface >= 0)
    rows = np.flatnonzero(ok)
    dist = np.hypot(sp.r[rows], sp.z[rows])
    rows = rows[np.lexsort((dist, pid[rows]))]
    uniq, start, counts = np.unique(pid[rows], return_index=True, return_counts=True)
    good = counts >= 3
    keep = np.repeat(good, counts)
    rows = rows[keep]
    lengths = counts[good]
    zeros = np.zeros(len(rows))
    return seq.Candidates(
        ptr=seq.ptr_of(lengths),
        hit=rows,
        surface=sp.surface[rows].astype(np.int64),
        s=np.hypot(sp.r[rows], sp.z[rows]),
        is_seed=zeros.astype(bool),
        follow_chi2=zeros,
        road=np.arange(len(lengths)),
        n_skipped=np.zeros(len(lengths), np.int64),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    ap.add_argument("--events", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    cfg = config.load(args.config)
    det = load_detector(cfg)
    reco = Reconstruction.from_config(cfg, det)
    task = GhostFilterConfig.from_config(cfg)
    hits, _ = simulate_events(
        det,
        TrackerSimConfig.from_config(cfg),
        np.arange(args.events),
        make_rng(cfg["seed"], "benchmark-track-finder"),
    )
    events = [h.reset_index(drop=True) for _, h in hits.groupby("event_id")]

    def finder() -> tuple[int, int, float]:
        n_seeds = n_cands = n_ghosts = 0
        for h in events:
            sp = SpacePoints.from_hits(det, h)
            roads, ns = event_candidates(sp, reco, task.later_passes)
            cand = seq.candidates_from_roads(roads, task.min_hits)
            cf = seq.fit_candidates(sp, det, cand)
            seq.candidate_features(sp, det, cand, cf)
            pid = h["particle_id"].to_numpy()
            m = match_tracks(
                seq.pad(cand.ptr, pid[cand.hit]),
                seq.pad(cand.ptr, np.ones(len(cand.hit), bool), False),
            )
            n_seeds += ns
            n_cands += len(cand)
            n_ghosts += int(m.is_ghost.sum())
        return n_seeds, n_cands, n_ghosts / max(n_cands, 1)

    prepared = []
    for h in events:
        sp = SpacePoints.from_hits(det, h)
        prepared.append((sp, truth_candidates(sp, h["particle_id"].to_numpy())))

    def bare() -> int:
        n = 0
        for sp, cand in prepared:
            n += len(seq.fit_candidates(sp, det, cand).fit)
        return n

    t_find, t_bare = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        n_seeds, n_cands, ghost_frac = finder()
        t_find.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        n_truth = bare()
        t_bare.append(time.perf_counter() - t0)
    rate = n_cands / min(t_find)
    bare_rate = n_truth / min(t_bare)
    print(f"events {args.events}, {len(hits) / args.events:.0f} hits per event")
    print(
        f"finder: {n_seeds / args.events:.0f} seeds and {n_cands / args.events:.0f} candidates "
        f"per event, ghost fraction {ghost_frac:.3f}, {min(t_find) / args.events:.3f} s per event "
        f"(best of {args.repeat})"
    )
    print(
        f"bare truth fit of {n_truth / args.events:.0f} particles per event: "
        f"{min(t_bare) / args.events:.3f} s per event"
    )
    print(f"candidates per second: finder {rate:.0f}, bare fit {bare_rate:.0f}")
    print(f"ratio bare/finder {bare_rate / rate:.1f}")
    print(f"candidates_per_s {rate:.0f}")


if __name__ == "__main__":
    main()
