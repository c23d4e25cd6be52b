"""Tracker simulation rate on one core, against a bare numpy helix-plus-scattering kernel.

Runs ``hepml.sim.tracker.simulate_events`` on a TrackML-density sample (the
default config: ~8k particles per event) and, on the same particles in the same
process, a bare kernel: the same circle-cylinder intersection and Highland kicks
with nothing else (no efficiency, measurement, noise, ids, ordering or tables).
The two are timed alternately, ``--repeat`` times each, and the best time of
each is used (the machines are shared). Prints both rates, their ratio and, as
the last line, ``hits_per_s_per_core <number>`` for the full simulation.

Usage: ``python benchmarks/simulate.py [--config config/config.yaml] [--events 16] [--repeat 5]``
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
from hepml.rng import rng as make_rng  # noqa: E402
from hepml.sim.geometry import TrackerGeometry  # noqa: E402
from hepml.sim.tracker import TrackerSimConfig, generate_particles, simulate_events  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def bare_kernel(
    particles: dict[str, np.ndarray],
    radii: np.ndarray,
    half: np.ndarray,
    x0: np.ndarray,
    bfield_T: float,
    rng: np.random.Generator,
) -> int:
    """Helix to each cylinder plus two Gaussian Highland kicks (beta = 1, normal incidence); returns the crossings."""
    px, py, pz = particles["px"], particles["py"], particles["pz"]
    pt = np.sqrt(px * px + py * py)
    p = np.sqrt(pt * pt + pz * pz)
    st = np.stack(
        [
            particles["vx"],
            particles["vy"],
            particles["vz"],
            px / pt,
            py / pt,
            pt / p,
            pz / p,
            p,
            -particles["q"] * 0.299792458e-3 * bfield_T,
        ]
    )
    n_hits = 0
    for r, hl, t in zip(radii, half, x0, strict=True):
        x, y, z, ux, uy, sn, cs, pp, kq = st
        k = kq / (pp * sn)
        ik = 1.0 / k
        cx = x - uy * ik
        cy = y + ux * ik
        d = np.sqrt(cx * cx + cy * cy)
        a = (r * r + x * x + y * y + 2.0 * (y * ux - x * uy) * ik) / (2.0 * d)
        h2 = r * r - a * a
        h = np.copysign(np.sqrt(np.abs(h2)), k)
        qx = (a * cx + h * cy) / d
        qy = (a * cy - h * cx) / d
        ak = np.abs(k)
        s = 2.0 * np.arcsin(np.minimum(0.5 * ak * np.sqrt((qx - x) ** 2 + (qy - y) ** 2), 1.0)) / ak
        st[2] = z + s * cs / sn
        st[0], st[1], st[3], st[4] = qx, qy, (cy - qy) * k, (qx - cx) * k
        st = np.compress((h2 >= 0) & (np.abs(st[2]) <= hl), st, axis=1)
        n_hits += st.shape[1]
        x, y, z, ux, uy, sn, cs, pp, kq = st
        th0 = 0.0136 / pp * np.sqrt(t) * (1.0 + 0.038 * np.log(t))
        k1, k2 = rng.standard_normal((2, st.shape[1])) * th0
        b = sn + k2 * cs
        tr = np.sqrt(b * b + k1 * k1)
        nrm = np.sqrt(1.0 + k1 * k1 + k2 * k2)
        st[3], st[4], st[5], st[6] = (
            (b * ux - k1 * uy) / tr,
            (b * uy + k1 * ux) / tr,
            tr / nrm,
            (cs - k2 * sn) / nrm,
        )
    return n_hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    ap.add_argument("--events", type=int, default=16, help="events per timed run")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each")
    args = ap.parse_args()

    cfg = config.load(args.config)
    geo = TrackerGeometry.from_config(cfg)
    sim = TrackerSimConfig.from_config(cfg)
    ids = np.arange(args.events)
    parts = generate_particles(sim, args.events, make_rng(cfg["seed"], "bench-particles"))
    radii, half = geo.radii_mm, geo.half_lengths_mm
    x0 = np.array([lay.x_over_x0 for lay in geo.layers])

    simulate_events(geo, sim, ids[:1], make_rng(0, "warm-up"))  # warm-up
    best_sim, best_bare = np.inf, np.inf
    n_sim = n_bare = 0
    for i in range(args.repeat):
        t0 = time.perf_counter()
        hits, _ = simulate_events(geo, sim, ids, make_rng(cfg["seed"], "bench", i))
        t1 = time.perf_counter()
        n_bare = bare_kernel(
            parts, radii, half, x0, geo.bfield_T, make_rng(cfg["seed"], "bench-bare", i)
        )
        t2 = time.perf_counter()
        n_sim = len(hits)
        best_sim, best_bare = min(best_sim, t1 - t0), min(best_bare, t2 - t1)

    n_signal = int((hits["particle_id"] != 0).sum())
    rate_sim, rate_bare = n_sim / best_sim, n_bare / best_bare
    print(
        f"config {args.config}: {args.events} events x {sim.particles_per_event} particles, best of {args.repeat}"
    )
    print(
        f"hepml simulate_events: {n_sim / args.events:.0f} hits/event ({n_signal / args.events:.0f} from particles), {best_sim * 1e3:.1f} ms, {rate_sim:.3e} hits/s"
    )
    print(
        f"bare numpy kernel:     {n_bare / args.events:.0f} crossings/event, {best_bare * 1e3:.1f} ms, {rate_bare:.3e} crossings/s"
    )
    print(f"ratio full/bare (rate): {rate_sim / rate_bare:.2f}")
    print(f"hits_per_s_per_core {rate_sim:.4g}")


if __name__ == "__main__":
    main()
