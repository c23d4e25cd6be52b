"""Tracker simulation: particle gun + pile-up, exact helices, multiple scattering, hits.

One event is a set of charged particles from a smeared beam spot (minimum-bias
pile-up plus a few high-pT particles) propagated outwards through the barrel
layers of :class:`~hepml.sim.geometry.TrackerGeometry`. At every layer a
particle

1. is moved along its exact helix to the cylinder (:func:`~hepml.sim.physics.propagate_to_cylinder`);
   it stops for good when the circle no longer reaches the radius (a looper) or
   when the crossing lies beyond the layer's half length;
2. leaves a hit with the layer's efficiency, measured as the true crossing
   displaced uniformly within +-pitch/2 along r*phi and z, the residual of a binary
   readout, of RMS pitch/sqrt(12) (:func:`~hepml.sim.physics.smear_on_cylinder`);
3. is kinked by multiple scattering in the layer's material, with the path
   length at the actual incidence angle (Highland formula,
   :func:`~hepml.sim.physics.highland_theta0`); a particle turned back inwards
   stops (only the outgoing branch is simulated).

Energy loss is neglected: a minimum-ionising particle loses 0.36 MeV (silicon)
to 0.74 MeV (carbon) per 1% X0 (PDG 2024 Table of atomic and nuclear
properties), i.e. 0.4-1.9 MeV per layer and about 10 MeV through all ten
default layers: ~2.5% of the median momentum (0.4 GeV), up to ~5% for the
softest particles over the layers they reach, so the curvature changes by that
much along the outermost hits of those. Secondaries and decays are not
simulated. Each layer also gets uniform noise hits (``particle_id`` 0).

Whole events are simulated together (about :data:`CHUNK` particles at a time):
the arrays run over every particle and the only Python loop is over the layers.

IDs follow TrackML: ``hit_id`` runs 1..N within each event (hits ordered by layer,
randomly within a layer); ``particle_id = event_id * 1_000_000 + k``, k = 1..n
(minimum-bias and high-pT particles shuffled), so it is > 0 and unique across
a whole data set (event ids are unique across shards).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepml.errors import HepmlError
from hepml.io import HIT_COLUMNS, PARTICLE_COLUMNS, write_tracker_root
from hepml.rng import rng as make_rng
from hepml.sim.geometry import TrackerGeometry
from hepml.sim.physics import (
    GEV_PER_T_MM,
    beta_of,
    highland_theta0,
    noise_on_cylinder,
    path_in_layer_x0,
    propagate_to_cylinder,
    sample_log_uniform,
    sample_minbias_pt,
    scatter_direction,
    smear_on_cylinder,
)

#: particle_id = event_id * PARTICLE_ID_STRIDE + k, k = 1..(particles per event).
PARTICLE_ID_STRIDE = 1_000_000
#: simulate_shard runs events in batches of about this many particles.
PARTICLES_PER_BATCH = 1 << 17


@dataclass(frozen=True)
class TrackerSimConfig:
    """Particle gun, beam spot and noise of the tracker simulation (``tracker.simulation``).

    Units: GeV, mm. Each field is described, with its default, in
    ``hepml/schemas/tracker.schema.yaml``; build it with :meth:`from_config`.
    """

    n_particles: int
    pt_min_GeV: float
    pt_median_GeV: float
    pt_max_GeV: float
    pt_tail_power: float
    n_high_pt: int
    high_pt_min_GeV: float
    high_pt_max_GeV: float
    eta_max: float
    vertex_sigma_xy_mm: float
    vertex_sigma_z_mm: float
    noise_per_layer: float
    multiple_scattering: bool
    mass_GeV: float

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TrackerSimConfig:
        """From the validated config (its ``tracker.simulation`` section)."""
        s = cfg["tracker"]["simulation"]
        sim = cls(
            n_particles=int(s["n_particles"]),
            pt_min_GeV=float(s["pt_min_GeV"]),
            pt_median_GeV=float(s["pt_median_GeV"]),
            pt_max_GeV=float(s["pt_max_GeV"]),
            pt_tail_power=float(s["pt_tail_power"]),
            n_high_pt=int(s["n_high_pt"]),
            high_pt_min_GeV=float(s["high_pt_min_GeV"]),
            high_pt_max_GeV=float(s["high_pt_max_GeV"]),
            eta_max=float(s["eta_max"]),
            vertex_sigma_xy_mm=float(s["vertex_sigma_xy_mm"]),
            vertex_sigma_z_mm=float(s["vertex_sigma_z_mm"]),
            noise_per_layer=float(s["noise_per_layer"]),
            multiple_scattering=bool(s["multiple_scattering"]),
            mass_GeV=float(s["mass_GeV"]),
        )
        sim.check()
        return sim

    def check(self) -> None:
        """Cross-field checks the schema cannot express; HepmlError names the key."""
        k = "tracker.simulation"
        if not self.pt_min_GeV < self.pt_median_GeV < self.pt_max_GeV:
            raise HepmlError(
                f"{k}: need pt_min_GeV < pt_median_GeV < pt_max_GeV, got {self.pt_min_GeV}, {self.pt_median_GeV}, {self.pt_max_GeV}"
            )
        if self.high_pt_max_GeV < self.high_pt_min_GeV:
            raise HepmlError(
                f"{k}.high_pt_max_GeV: {self.high_pt_max_GeV} is below high_pt_min_GeV {self.high_pt_min_GeV}"
            )
        if self.particles_per_event >= PARTICLE_ID_STRIDE:
            raise HepmlError(
                f"{k}: n_particles + n_high_pt must be below {PARTICLE_ID_STRIDE}, got {self.particles_per_event}"
            )

    @property
    def particles_per_event(self) -> int:
        return self.n_particles + self.n_high_pt


# --------------------------------------------------------------------------- particles
def generate_particles(
    sim: TrackerSimConfig, n_events: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The primary particles of ``n_events`` events (index ``event`` 0..n_events-1).

    Per event ``n_particles`` minimum-bias particles (pT from
    :func:`~hepml.sim.physics.sample_minbias_pt`) and ``n_high_pt`` particles with
    pT log-uniform in [high_pt_min, high_pt_max]; all with phi uniform, eta uniform
    in [-eta_max, eta_max] (minimum-bias dN/deta is flat there), q = +-1 with equal
    probability and a Gaussian vertex (sigma_xy, sigma_z). Within an event the
    particles are in a random order; ``k`` is the 1-based position.
    Returns arrays ``event, k, q, vx, vy, vz, px, py, pz`` (mm, GeV).
    """
    per = sim.particles_per_event
    n = n_events * per
    kinds = np.zeros((n_events, per), dtype=bool)
    kinds[:, sim.n_particles :] = True
    # random order within each event, so that k says nothing about the kind
    is_high = rng.permuted(kinds, axis=1).ravel()
    pt = np.empty(n)
    pt[~is_high] = sample_minbias_pt(
        n_events * sim.n_particles,
        sim.pt_min_GeV,
        sim.pt_median_GeV,
        sim.pt_max_GeV,
        sim.pt_tail_power,
        rng,
    )
    pt[is_high] = sample_log_uniform(
        n_events * sim.n_high_pt, sim.high_pt_min_GeV, sim.high_pt_max_GeV, rng
    )
    u = rng.random((3, n))
    phi = u[0] * (2.0 * np.pi)
    eta = (2.0 * u[1] - 1.0) * sim.eta_max
    q = np.where(u[2] < 0.5, -1, 1).astype(np.int32)
    v = rng.standard_normal((3, n))
    return {
        "event": np.repeat(np.arange(n_events), per),
        "k": np.tile(np.arange(1, per + 1, dtype=np.int64), n_events),
        "q": q,
        "vx": v[0] * sim.vertex_sigma_xy_mm,
        "vy": v[1] * sim.vertex_sigma_xy_mm,
        "vz": v[2] * sim.vertex_sigma_z_mm,
        "px": pt * np.cos(phi),
        "py": pt * np.sin(phi),
        "pz": pt * np.sinh(eta),
    }


# --------------------------------------------------------------------------- propagation
# rows of the propagation state (one column per live particle)
_X, _Y, _Z, _UX, _UY, _SIN, _COS, _P, _KQ, _BETA, _IDX = range(11)
#: rows of the float32 hit block returned by :func:`propagate`
HIT_BLOCK_ROWS = ("x", "y", "z", "tx", "ty", "tz", "tpx", "tpy", "tpz")
#: simulate_events propagates whole events together, about this many particles at a
#: time (so that the working arrays stay in the CPU cache)
CHUNK = 8192


def propagate(
    geometry: TrackerGeometry,
    sim: TrackerSimConfig,
    particles: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Propagate every particle outwards through the layers; return its recorded hits.

    ``particles`` holds arrays ``q, vx, vy, vz, px, py, pz`` (mm, GeV). Returns
    ``(particle, layer, block)`` with one entry per recorded hit (hits lost to
    inefficiency are absent), ordered by layer then particle: the particle's row
    (int64), the global layer (int32) and a float32 array of shape (9, n_hits)
    whose rows are :data:`HIT_BLOCK_ROWS`: measured ``x, y, z`` and the truth at
    the crossing, position ``tx, ty, tz`` and momentum ``tpx, tpy, tpz`` (arriving
    at the layer, before its scattering). The loop runs over layers only.
    """
    px, py, pz = particles["px"], particles["py"], particles["pz"]
    pt = np.sqrt(px * px + py * py)
    p = np.sqrt(pt * pt + pz * pz)
    n = len(px)
    state = np.empty((11, n))
    state[_X] = particles["vx"]
    state[_Y] = particles["vy"]
    state[_Z] = particles["vz"]
    state[_UX] = px / pt
    state[_UY] = py / pt
    state[_SIN] = pt / p
    state[_COS] = pz / p
    state[_P] = p
    state[_KQ] = -particles["q"] * (GEV_PER_T_MM * geometry.bfield_T)
    state[_BETA] = beta_of(p, sim.mass_GeV)
    state[_IDX] = np.arange(n)

    idx_out: list[np.ndarray] = []
    lay_out: list[np.ndarray] = []
    blk_out: list[np.ndarray] = []
    last = geometry.n_layers - 1
    for il, lay in enumerate(geometry.layers):
        if state.shape[1] == 0:
            break
        r = lay.radius_mm
        kappa = state[_KQ] / (state[_P] * state[_SIN])
        x1, y1, ux1, uy1, s, reached = propagate_to_cylinder(
            state[_X], state[_Y], state[_UX], state[_UY], kappa, r
        )
        state[_Z] += s * (state[_COS] / state[_SIN])
        state[_X], state[_Y], state[_UX], state[_UY] = x1, y1, ux1, uy1
        ok = reached & (np.abs(state[_Z]) <= lay.half_length_mm)
        if not ok.all():
            state = np.compress(ok, state, axis=1)
        m = state.shape[1]

        # the hit: truth at the crossing, the measurement, then the efficiency
        blk = np.empty((9, m), dtype=np.float32)
        blk[3:6] = state[_X : _Z + 1]
        pt = state[_P] * state[_SIN]
        blk[6] = pt * state[_UX]
        blk[7] = pt * state[_UY]
        blk[8] = state[_P] * state[_COS]
        blk[0], blk[1], blk[2] = smear_on_cylinder(
            state[_X],
            state[_Y],
            state[_Z],
            r,
            lay.pitch_rphi_mm,
            lay.pitch_z_mm,
            lay.half_length_mm,
            rng,
        )
        idx = state[_IDX].astype(np.int64)
        if lay.efficiency < 1.0:
            keep = rng.random(m) < lay.efficiency
            blk, idx = np.compress(keep, blk, axis=1), idx[keep]
        idx_out.append(idx)
        lay_out.append(np.full(len(idx), il, dtype=np.int32))
        blk_out.append(blk)

        if sim.multiple_scattering and il < last:
            x1, y1 = state[_X], state[_Y]
            t = path_in_layer_x0(lay.x_over_x0, x1, y1, state[_UX], state[_UY], state[_SIN], r)
            theta0 = highland_theta0(state[_P], t, beta=state[_BETA])
            state[_UX], state[_UY], state[_SIN], state[_COS] = scatter_direction(
                state[_UX], state[_UY], state[_SIN], state[_COS], theta0, rng
            )
            outgoing = (x1 * state[_UX] + y1 * state[_UY]) > 0.0
            if not outgoing.all():
                state = np.compress(outgoing, state, axis=1)
    if not blk_out:
        return np.empty(0, np.int64), np.empty(0, np.int32), np.empty((9, 0), np.float32)
    return np.concatenate(idx_out), np.concatenate(lay_out), np.concatenate(blk_out, axis=1)


# --------------------------------------------------------------------------- events
def simulate_events(
    geometry: TrackerGeometry,
    sim: TrackerSimConfig,
    event_ids: np.ndarray,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate the events ``event_ids``; return ``(hits, particles)``.

    The tables have the columns and dtypes of :data:`hepml.io.HIT_COLUMNS` and
    :data:`hepml.io.PARTICLE_COLUMNS`; noise hits have ``particle_id`` 0 and zero
    truth. Hits are ordered by event, then layer, then at random (so that
    ``hit_id`` says nothing about the truth); particles by event and
    ``particle_id``. The same ``rng`` state gives the same tables.
    """
    event_ids = np.asarray(event_ids, dtype=np.int64).ravel()
    n_ev = len(event_ids)
    per = sim.particles_per_event
    parts = generate_particles(sim, n_ev, rng)
    pid = event_ids[parts["event"]] * PARTICLE_ID_STRIDE + parts["k"]
    nhits = np.zeros(len(pid), dtype=np.int32)
    n_lay = geometry.n_layers
    counts = np.zeros((n_ev, n_lay), dtype=np.int64)  # hits per (event, layer)
    hit_pid, blocks = [], []
    # whole events at a time, about CHUNK particles
    step = max(1, CHUNK // max(1, per))
    for e0 in range(0, n_ev, step):
        e1 = min(n_ev, e0 + step)
        sl = slice(e0 * per, e1 * per)
        sig_idx, sig_layer, sig_blk = propagate(
            geometry, sim, {k: v[sl] for k, v in parts.items()}, rng
        )
        nhits[sl] = np.bincount(sig_idx, minlength=(e1 - e0) * per)
        noise_ev, noise_layer, noise_blk = _noise_hits(geometry, sim, e1 - e0, rng)
        group = np.concatenate(
            [(sig_idx // per) * n_lay + sig_layer, noise_ev * n_lay + noise_layer]
        )
        counts[e0:e1] = np.bincount(group, minlength=(e1 - e0) * n_lay).reshape(e1 - e0, n_lay)
        order = _group_shuffle_order(group, rng)
        sig_pid = pid[sig_idx + e0 * per]
        hit_pid.append(np.concatenate([sig_pid, np.zeros(len(noise_ev), np.int64)])[order])
        blocks.append(np.take(np.concatenate([sig_blk, noise_blk], axis=1), order, axis=1))

    blk = np.concatenate(blocks, axis=1) if blocks else np.empty((9, 0), np.float32)
    per_event = counts.sum(axis=1)
    n_hits = int(per_event.sum())
    first = np.cumsum(per_event) - per_event
    flat = counts.ravel()
    vol = np.array([lay.volume_id for lay in geometry.layers], dtype=np.int32)
    lid = np.array([lay.layer_id for lay in geometry.layers], dtype=np.int32)
    hits = pd.DataFrame(
        {
            "event_id": np.repeat(event_ids, per_event),
            "hit_id": np.arange(1, n_hits + 1, dtype=np.int64) - np.repeat(first, per_event),
            "x": blk[0],
            "y": blk[1],
            "z": blk[2],
            "volume_id": np.repeat(np.tile(vol, n_ev), flat),
            "layer_id": np.repeat(np.tile(lid, n_ev), flat),
            "module_id": np.zeros(n_hits, dtype=np.int64),
            "particle_id": np.concatenate(hit_pid) if hit_pid else np.empty(0, np.int64),
            **{c: blk[3 + i] for i, c in enumerate(("tx", "ty", "tz", "tpx", "tpy", "tpz"))},
        },
        copy=False,
    )
    # rows are already by event, then particle_id (generate_particles' order)
    particles = pd.DataFrame(
        {
            "event_id": event_ids[parts["event"]],
            "particle_id": pid,
            **{c: parts[c].astype(np.float32) for c in ("vx", "vy", "vz", "px", "py", "pz")},
            "q": parts["q"],
            "nhits": nhits,
            "particle_type": np.where(parts["q"] > 0, 211, -211).astype(np.int32),
        },
        copy=False,
    )
    return hits.astype(HIT_COLUMNS), particles.astype(PARTICLE_COLUMNS)


def _noise_hits(
    geometry: TrackerGeometry, sim: TrackerSimConfig, n_ev: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise of ``n_ev`` events: a Poisson count per (event, layer), uniform on the layer.

    Returns ``(event, layer, block)`` like :func:`propagate` (event 0..n_ev-1,
    truth rows zero), ordered by layer then event.
    """
    n_lay = geometry.n_layers
    counts = rng.poisson(sim.noise_per_layer, size=(n_ev, n_lay))
    per_layer = counts.sum(axis=0)
    blk = np.zeros((9, int(per_layer.sum())), dtype=np.float32)
    at = 0
    for il, lay in enumerate(geometry.layers):
        c = int(per_layer[il])
        blk[0:3, at : at + c] = noise_on_cylinder(c, lay.radius_mm, lay.half_length_mm, rng)
        at += c
    ev = np.repeat(np.tile(np.arange(n_ev), n_lay), counts.T.ravel())
    layer = np.repeat(np.arange(n_lay, dtype=np.int32), per_layer)
    return ev, layer, blk


def _group_shuffle_order(group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation that sorts ``group`` (non-negative ints), at random within a group.

    A uniform random permutation followed by a stable sort on the group (numpy
    radix-sorts 16-bit keys).
    """
    perm = rng.permutation(len(group))
    g = group[perm]
    if len(g) and g.max() <= np.iinfo(np.uint16).max:
        g = g.astype(np.uint16)
    return perm[np.argsort(g, kind="stable")]


def shard_event_ids(cfg: dict[str, Any], shard: int) -> np.ndarray:
    """``event_id`` of the events of tracker shard ``shard``: shard * events_per_shard + i."""
    per = int(cfg["workflow"]["tracker_events_per_shard"])
    return shard * per + np.arange(per, dtype=np.int64)


def simulate_shard(cfg: dict[str, Any], shard: int, out: Path, progress: bool = True) -> None:
    """Simulate tracker shard ``shard`` of the validated config ``cfg`` into the ROOT file ``out``.

    Deterministic given (``seed``, ``shard``): the random stream is
    ``hepml.rng.rng(seed, "tracker", shard)``. Events are simulated in batches of
    about :data:`PARTICLES_PER_BATCH` particles, with a progress bar on stderr.
    """
    from tqdm import tqdm

    n_shards = int(cfg["workflow"]["tracker_shards"])
    if not 0 <= shard < n_shards:
        raise HepmlError(
            f"tracker shard {shard} is out of range: workflow.tracker_shards is {n_shards}"
        )
    geometry = TrackerGeometry.from_config(cfg)
    sim = TrackerSimConfig.from_config(cfg)
    gen = make_rng(cfg["seed"], "tracker", shard)
    ids = shard_event_ids(cfg, shard)
    batch = max(1, PARTICLES_PER_BATCH // max(1, sim.particles_per_event))
    hits, parts = [], []
    with tqdm(
        total=len(ids),
        desc=f"tracker shard {shard}",
        unit="event",
        file=sys.stderr,
        disable=not progress or None,
    ) as bar:
        for start in range(0, len(ids), batch):
            h, p = simulate_events(geometry, sim, ids[start : start + batch], gen)
            hits.append(h)
            parts.append(p)
            bar.update(len(ids[start : start + batch]))
    write_tracker_root(out, pd.concat(hits, ignore_index=True), pd.concat(parts, ignore_index=True))
