"""Seconds to reconstruct one TrackML-density event with the hit labeller, on one CPU core.

Simulates events with the config's tracker (the default: the TrackML detector,
every volume, at TrackML density), then times, per event and in this one process:

* a bare numpy pass over the hits (r and phi of every hit, hits sorted by
  surface and phi: the least any reconstruction does), the baseline;
* the first pass's seeding alone (:func:`hepml.reco.seeding.find_seeds`);
* the whole chain of ``hepml reconstruct`` (:func:`hepml.reco.chain.reconstruct_event`):
  space points, every pass's seeding + roads + road follower + ambiguity
  resolution, the Bi-GRU, track building.

Then the same chain on the real full-density TrackML event
``$HEPML_TRACKML_DIR/full-hits-only/event000001001`` (~94k hits, all volumes,
no truth), when that folder exists (else a note, and no real line).

One thread for numpy's BLAS and torch. Without a trained checkpoint the network
runs with untrained weights of the configured size (same cost; the note says so).
The last lines are ``seconds_per_event <number>`` and, with the real event,
``seconds_per_event_real <number>``.

    python benchmarks/reconstruct.py [--config config/config.yaml] [--model PATH] [--events 3]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hepml import config  # noqa: E402
from hepml.io import read_trackml_csv  # noqa: E402
from hepml.reco.chain import Reconstruction, reconstruct_event  # noqa: E402
from hepml.reco.seeding import find_seeds  # noqa: E402
from hepml.reco.spacepoints import SpacePoints  # noqa: E402
from hepml.rng import rng  # noqa: E402
from hepml.sim.tracker import TrackerSimConfig, simulate_events  # noqa: E402
from hepml.tasks.hit_labeller import MODEL_NAME, model_hparams  # noqa: E402

REAL_EVENT = "event000001001"


def real_dir() -> Path:
    """``$HEPML_TRACKML_DIR/full-hits-only`` (default ``../shared/trackml`` from the repository)."""
    root = Path(__file__).resolve().parents[1]
    return (
        Path(os.environ.get("HEPML_TRACKML_DIR", root.parent / "shared" / "trackml"))
        / "full-hits-only"
    )


def bare_pass(x: np.ndarray, y: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """The baseline: r, phi of every hit and the hits ordered by (surface, phi)."""
    r = np.hypot(x, y)
    phi = np.arctan2(y, x)
    order = np.lexsort((phi, layer))
    return order[r[order] > 0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help="checkpoint (default: <results>/models/hit_labeller/model.pt)",
    )
    p.add_argument(
        "--events", type=int, default=3, help="timed events (one more is simulated to warm up)"
    )
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = config.load(args.config)
    reco = Reconstruction.from_config(cfg)
    path = args.model or Path(cfg["workflow"]["results"]) / "models" / "hit_labeller" / "model.pt"
    if path.is_file():
        from hepml.train import load_model

        model, _ = load_model(path)
        print(f"model: {path}")
    else:
        from hepml.models import build_model

        torch.manual_seed(0)
        model = build_model(MODEL_NAME, model_hparams(cfg)).eval()
        print(f"note: no checkpoint at {path}; timing an untrained network of the configured size")
    sim = TrackerSimConfig.from_config(cfg)
    hits, _ = simulate_events(
        reco.detector, sim, np.arange(args.events + 1), rng(cfg["seed"], "benchmark-reconstruct")
    )
    events = [h.reset_index(drop=True) for _, h in hits.groupby("event_id")]
    det = reco.detector

    t_bare, t_seed, t_all, n_hits, n_seeds = [], [], [], [], []
    parts: dict[str, float] = {}
    for i, h in enumerate(events):
        surf = det.surface_of(h["volume_id"].to_numpy(), h["layer_id"].to_numpy())
        x, y = (h[c].to_numpy(np.float64) for c in ("x", "y"))
        t0 = time.perf_counter()
        bare_pass(x, y, surf)
        t1 = time.perf_counter()
        seeds = find_seeds(SpacePoints.from_hits(det, h), det, reco.seeding)
        t2 = time.perf_counter()
        timing: dict[str, float] = {}
        reconstruct_event(h, reco, model, timing)
        t3 = time.perf_counter()
        if i == 0:
            continue  # warm-up (the layer graph and lookup grids are built once per detector)
        t_bare.append(t1 - t0)
        t_seed.append(t2 - t1)
        t_all.append(t3 - t2)
        n_hits.append(len(h))
        n_seeds.append(len(seeds))
        for k, v in timing.items():
            parts[k] = parts.get(k, 0.0) + v / args.events
    per_event = float(np.mean(t_all))
    print(
        f"events {args.events} (+1 warm-up), hits_per_event {np.mean(n_hits):.0f}, first_pass_seeds_per_event {np.mean(n_seeds):.0f}"
    )
    print(f"bare_numpy_pass_s {np.mean(t_bare):.4f}")
    print(f"first_pass_seeding_s {np.mean(t_seed):.3f}")
    print(
        "chain_s "
        + " ".join(f"{k} {v:.3f}" for k, v in parts.items())
        + "  (roads includes space points and every pass's seeding)"
    )
    print(f"ratio_to_first_pass_seeding {per_event / np.mean(t_seed):.2f}")
    print(f"ratio_to_bare_pass {per_event / np.mean(t_bare):.0f}")
    real = None
    folder = real_dir()
    if folder.is_dir():
        h, _ = read_trackml_csv(folder, REAL_EVENT, truth=False)
        surf = det.surface_of(h["volume_id"].to_numpy(), h["layer_id"].to_numpy())
        x, y = (h[c].to_numpy(np.float64) for c in ("x", "y"))
        t0 = time.perf_counter()
        bare_pass(x, y, surf)
        t1 = time.perf_counter()
        timing = {}
        reconstruct_event(h, reco, model, timing)
        real = time.perf_counter() - t1
        print(
            f"real {REAL_EVENT}: {len(h)} hits ({int((surf >= 0).sum())} on the detector's surfaces), "
            + " ".join(f"{k} {v:.3f}" for k, v in timing.items())
            + f", ratio_to_bare_pass {real / (t1 - t0):.0f}"
        )
    else:
        print(f"note: no real full-density event ({folder} does not exist; set HEPML_TRACKML_DIR)")
    sys.stdout.flush()
    print(f"seconds_per_event {per_event:.3f}")
    if real is not None:
        print(f"seconds_per_event_real {real:.3f}")


if __name__ == "__main__":
    main()
