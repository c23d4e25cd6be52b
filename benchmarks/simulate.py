"""Tracker simulation rate on one core, against a bare numpy plane-intersection kernel.

Simulates full-density events of the config (the default: TrackML's 18,728
modules, ~7k primaries over |eta| < 4, ~105k hits per event with noise) with
:func:`hepml.sim.tracker.simulate_events`, and times in the same process a bare
kernel doing the least a simulation must do per hit: for every particle hit of
the simulated event, from the particle's previous crossing (or its vertex), the
straight-line intersection with the plane of the module it hit, two Newton steps
onto the helix about z in the central field, local (u, v) and the inside test
(no navigation, field map, material, random numbers, noise, ids or tables).
Both are timed alternately, ``--repeat`` times, in CPU time of this
process (one thread: the time of one core, robust to other jobs on a shared
machine), and the best time of each is used. Prints both rates, their ratio and, as the last
line, ``hits_per_s_per_core <number>`` for the full simulation (all hits,
noise included).

One thread for numpy (set before numpy is imported).

Usage: ``python benchmarks/simulate.py [--config config/config.yaml] [--events 1] [--repeat 5]``
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
import pandas as pd  # noqa: E402

from hepml import config  # noqa: E402
from hepml.detector import Detector, load_detector  # noqa: E402
from hepml.detector.constants import GEV_PER_T_MM  # noqa: E402
from hepml.rng import rng as make_rng  # noqa: E402
from hepml.sim.tracker import TrackerSimConfig, simulate_events  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def kernel_inputs(det: Detector, hits: pd.DataFrame, parts: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per particle hit: the start state (previous true crossing of the particle, else its
    vertex and initial momentum), q and the module row it hit. Prepared outside the timing."""
    h = hits[hits.particle_id != 0].sort_values(["particle_id", "hit_id"], kind="stable")
    h = h.merge(parts[["particle_id", "vx", "vy", "vz", "px", "py", "pz", "q"]], on="particle_id")
    # order each particle's hits by distance from its vertex along the motion (path order)
    t = np.hypot(np.hypot(h.tx - h.vx, h.ty - h.vy), h.tz - h.vz).to_numpy()
    pid = h.particle_id.to_numpy()
    order = np.lexsort((t, pid))
    h = h.iloc[order]
    pid = pid[order]
    first = np.r_[True, pid[1:] != pid[:-1]]
    cols = {}
    for c, tc, pc in (("x", "tx", "vx"), ("y", "ty", "vy"), ("z", "tz", "vz")):
        prev = np.r_[0.0, h[tc].to_numpy(np.float64)[:-1]]
        cols[c] = np.where(first, h[pc].to_numpy(np.float64), prev)
    for c, tc, pc in (("px", "tpx", "px"), ("py", "tpy", "py"), ("pz", "tpz", "pz")):
        prev = np.r_[0.0, h[tc].to_numpy(np.float64)[:-1]]
        cols[c] = np.where(first, h[pc].to_numpy(np.float64), prev)
    cols["q"] = h.q.to_numpy(np.float64)
    cols["module"] = det.module_row(
        h.volume_id.to_numpy(), h.layer_id.to_numpy(), h.module_id.to_numpy()
    )
    return cols


def bare_kernel(det: Detector, k: dict[str, np.ndarray], bz_T: float) -> int:
    """Straight line to each module plane, two Newton steps onto the helix about z, local
    (u, v), inside the trapezoid; returns how many land inside their module."""
    m = det.modules
    mod = k["module"]
    px, py, pz = k["px"], k["py"], k["pz"]
    p = np.sqrt(px * px + py * py + pz * pz)
    ux, uy, uz = px / p, py / p, pz / p
    om = -k["q"] * GEV_PER_T_MM * bz_T / p
    x, y, z = k["x"], k["y"], k["z"]
    n = m.rotation[mod, :, 2]
    c = m.center[mod]
    t = (n[:, 0] * (c[:, 0] - x) + n[:, 1] * (c[:, 1] - y) + n[:, 2] * (c[:, 2] - z)) / (
        n[:, 0] * ux + n[:, 1] * uy + n[:, 2] * uz
    )
    for _ in range(2):
        ph = om * t
        sn, cs = np.sin(ph), np.cos(ph)
        a, b = sn / om, (1.0 - cs) / om
        hx, hy, hz = x + ux * a - uy * b, y + uy * a + ux * b, z + uz * t
        ex, ey = ux * cs - uy * sn, uy * cs + ux * sn
        f = n[:, 0] * (hx - c[:, 0]) + n[:, 1] * (hy - c[:, 1]) + n[:, 2] * (hz - c[:, 2])
        t = t - f / (n[:, 0] * ex + n[:, 1] * ey + n[:, 2] * uz)
    ph = om * t
    a, b = np.sin(ph) / om, (1.0 - np.cos(ph)) / om
    hx, hy, hz = x + ux * a - uy * b, y + uy * a + ux * b, z + uz * t
    u, v, _ = m.to_local(mod, hx, hy, hz)
    return int(m.inside(mod, u, v, tol=0.01).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    ap.add_argument("--events", type=int, default=1, help="events per timed run")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each")
    args = ap.parse_args()

    cfg = config.load(args.config)
    det = load_detector(cfg)
    sim = TrackerSimConfig.from_config(cfg)
    ids = np.arange(args.events)
    hits, parts = simulate_events(det, sim, ids, make_rng(cfg["seed"], "bench"))  # warm-up
    k = kernel_inputs(det, hits, parts)
    bz = det.field.central_T
    best_sim, best_bare = np.inf, np.inf
    n_sim = n_inside = 0
    for i in range(args.repeat):
        t0 = time.process_time()
        hits, _ = simulate_events(det, sim, ids, make_rng(cfg["seed"], "bench", i))
        t1 = time.process_time()
        n_inside = bare_kernel(det, k, bz)
        t2 = time.process_time()
        n_sim = len(hits)
        best_sim, best_bare = min(best_sim, t1 - t0), min(best_bare, t2 - t1)

    n_signal = int((hits["particle_id"] != 0).sum())
    n_bare = len(k["module"])
    rate_sim, rate_bare = n_sim / best_sim, n_bare / best_bare
    print(
        f"config {args.config}: {args.events} event(s) x {sim.particles_per_event} primaries, "
        f"{len(det.modules)} modules, field {type(det.field).__name__}, best of {args.repeat}"
    )
    print(
        f"hepml simulate_events: {n_sim / args.events:.0f} hits/event ({n_signal / args.events:.0f} "
        f"from particles), {best_sim * 1e3:.1f} ms, {rate_sim:.3e} hits/s"
    )
    print(
        f"bare numpy kernel:     {n_bare} plane intersections ({n_inside / n_bare:.1%} inside their "
        f"module in the central-field helix), {best_bare * 1e3:.1f} ms, {rate_bare:.3e} hits/s"
    )
    print(f"ratio full/bare (rate): {rate_sim / rate_bare:.3f}")
    print(f"hits_per_s_per_core {rate_sim:.4g}")


if __name__ == "__main__":
    main()
