"""Tracker simulation: TrackML-like events through the planar modules of :mod:`hepml.detector`.

One event is a set of charged primaries from a smeared beam spot (minimum-bias
pile-up over |eta| < ``eta_max`` plus a few high-pT particles, pions, kaons and
protons), neutral V0s (K0s, Lambda) decaying in flight into charged pairs, and
the secondaries of hadronic interactions in the material; as in TrackML, none
below ``pt_min_GeV`` (0.1 GeV) is made, and those below ``tracked_min_pt_GeV``
(0.15 GeV) stay in the particle table without hits. Every other charged particle
is propagated by :func:`hepml.detector.propagation.propagate` (exact helices in
a uniform field, midpoint-field helix steps in the solenoid's) through the
barrel layers, endcap disks and beam pipe. At each surface it

1. crosses every module plane it meets there (overlapping modules give two
   crossings), each leaving a hit with ``hit_efficiency``: the true crossing on
   the module's mid-plane, measured in the module's local (u, v) as the true
   position displaced uniformly within +-pitch/2 (the residual of a binary
   readout, RMS pitch/sqrt(12)) and kept inside the module;
2. is kinked by multiple scattering in the material crossed (Highland at the
   actual incidence angle, with the particle's own mass in beta), loses its mean
   ionisation energy, and with probability 1 - exp(-x/lambda_I) interacts
   hadronically: it stops and emits ``1 + Poisson(secondaries_mean - 1)``
   charged secondaries (a leading particle with a uniform fraction of its
   momentum near its direction, the rest isotropic with an exponential
   momentum spectrum), which are propagated in the next generation.

A particle also stops when its transverse motion turns inwards (the apex of a
looper; TrackML's real events hold < 1% of hits on an incoming branch) or when
it leaves the tracker. Each module gets Poisson noise hits uniform on its area
(``particle_id`` 0).

IDs follow TrackML: ``hit_id`` runs 1..N within each event, hits ordered by
(volume, layer, module) and at random within a module; ``particle_id =
event_id * 1_000_000 + k``, k = 1..n in a random order within the event (so k
says nothing about a particle's origin); ``particle_type`` is the PDG code;
``generation`` is 0 for the generator's particles (primaries, V0 daughters) and
n >= 1 for the secondaries of the n-th hadronic interaction in the material (the
field TrackML encodes in bits 24-35 of its ``particle_id``; its score gives those
particles no weight, see :mod:`hepml.evaluate.trackml`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepml.config import from_section
from hepml.detector import Detector, load_detector
from hepml.detector.constants import CTAU_MM, MASS_GEV, SILICON_MIP_MEV_PER_X0
from hepml.detector.propagation import Crossings, TrackStates, propagate
from hepml.detector.scattering import (
    beta_of,
    highland_theta0,
    mean_energy_loss_GeV,
    scatter_direction,
)
from hepml.errors import HepmlError
from hepml.io import HIT_COLUMNS, PARTICLE_COLUMNS, write_tracker_root
from hepml.rng import rng as make_rng
from hepml.sim.physics import sample_log_uniform, sample_minbias_pt

#: particle_id = event_id * PARTICLE_ID_STRIDE + k, k = 1..(particles per event).
PARTICLE_ID_STRIDE = 1_000_000
#: simulate_shard runs events in batches of about this many primaries.
PARTICLES_PER_BATCH = 1 << 15
#: two-body decay momenta in the rest frame (GeV): K0s -> pi+ pi-, Lambda -> p pi-
_V0_PSTAR = {310: 0.2061, 3122: 0.1010}
#: a particle whose momentum falls below this (GeV) has stopped
_P_STOP_GEV = 0.02


@dataclass(frozen=True)
class TrackerSimConfig:
    """The ``tracker.simulation`` section (defaults and descriptions: ``tracker.schema.yaml``)."""

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
    species: dict[str, float]
    v0_per_particle: float
    lambda_fraction: float
    nuclear_interactions: bool
    secondaries_mean: float
    secondary_p_mean_GeV: float
    secondary_proton_fraction: float
    max_generations: int
    tracked_min_pt_GeV: float
    hit_efficiency: float
    noise_per_module: float
    multiple_scattering: bool
    energy_loss: bool
    max_step_mm: float

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TrackerSimConfig:
        """From the validated config (``tracker.simulation`` and ``tracker.field.max_step_mm``)."""
        s = cfg["tracker"]["simulation"]
        sim = from_section(
            cls,
            s,
            species=dict(s["species"]),
            max_step_mm=float(cfg["tracker"]["field"]["max_step_mm"]),
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
        if sum(self.species.values()) <= 0:
            raise HepmlError(f"{k}.species: the fractions must not all be zero")
        # primaries, V0 daughters and secondaries all need an id below the stride
        if self.particles_per_event * (3 + 2 * self.secondaries_mean) >= PARTICLE_ID_STRIDE:
            raise HepmlError(
                f"{k}: n_particles + n_high_pt = {self.particles_per_event} leaves no room for the ids of secondaries (particle_id stride {PARTICLE_ID_STRIDE})"
            )

    @property
    def particles_per_event(self) -> int:
        return self.n_particles + self.n_high_pt


# --------------------------------------------------------------------------- particles
_SPECIES_PDG = {"pion": 211, "kaon": 321, "proton": 2212}


def _directions(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Isotropic unit vectors."""
    u = rng.random((2, n))
    cos_t = 2.0 * u[0] - 1.0
    sin_t = np.sqrt(1.0 - cos_t * cos_t)
    phi = u[1] * (2.0 * np.pi)
    return sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t


def generate_particles(
    sim: TrackerSimConfig, n_events: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Primary charged particles of ``n_events`` events, plus the charged daughters of their V0s.

    Per event ``n_particles`` minimum-bias particles (pT from
    :func:`~hepml.sim.physics.sample_minbias_pt`) and ``n_high_pt`` with pT
    log-uniform; phi uniform, eta uniform in [-eta_max, eta_max], species by
    ``species``, q = +-1, a Gaussian vertex. V0s (``v0_per_particle`` per primary,
    same spectra) fly an exponential distance of mean beta gamma c tau and decay
    isotropically in their rest frame into pi+ pi- (K0s) or p pi- / pbar pi+
    (Lambda). Returns arrays ``event, q, pdg, vx, vy, vz, px, py, pz`` (mm, GeV).
    """
    per = sim.particles_per_event
    n = n_events * per
    kinds = np.zeros((n_events, per), dtype=bool)
    kinds[:, sim.n_particles :] = True
    is_high = rng.permuted(kinds, axis=1).ravel()
    n_v0 = rng.poisson(sim.v0_per_particle * per, n_events)
    m = n + int(n_v0.sum())
    pt = np.empty(m)
    soft = np.r_[~is_high, np.ones(m - n, dtype=bool)]
    pt[soft] = sample_minbias_pt(
        int(soft.sum()), sim.pt_min_GeV, sim.pt_median_GeV, sim.pt_max_GeV, sim.pt_tail_power, rng
    )
    pt[~soft] = sample_log_uniform(
        int((~soft).sum()), sim.high_pt_min_GeV, sim.high_pt_max_GeV, rng
    )
    u = rng.random((3, m))
    phi = u[0] * (2.0 * np.pi)
    eta = (2.0 * u[1] - 1.0) * sim.eta_max
    v = rng.standard_normal((3, m))
    vx, vy, vz = (
        v[0] * sim.vertex_sigma_xy_mm,
        v[1] * sim.vertex_sigma_xy_mm,
        v[2] * sim.vertex_sigma_z_mm,
    )
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    names = list(_SPECIES_PDG)
    frac = np.array([sim.species[k] for k in names], dtype=np.float64)
    kind = np.searchsorted(np.cumsum(frac / frac.sum()), u[2, :n], side="right")
    q = np.where(rng.random(n) < 0.5, -1, 1)
    pdg = np.array([_SPECIES_PDG[k] for k in names])[np.minimum(kind, len(names) - 1)] * q
    event = np.repeat(np.arange(n_events), per)
    prim = {
        "event": event,
        "q": q,
        "pdg": pdg,
        "vx": vx[:n],
        "vy": vy[:n],
        "vz": vz[:n],
        "px": px[:n],
        "py": py[:n],
        "pz": pz[:n],
    }
    if m == n:
        return prim
    # V0s: flight, then a two-body decay
    sl = slice(n, m)
    is_lam = rng.random(m - n) < sim.lambda_fraction
    v0_pdg = np.where(is_lam, 3122, 310)
    mass = np.where(is_lam, MASS_GEV[3122], MASS_GEV[310])
    p3 = np.stack([px[sl], py[sl], pz[sl]])
    p = np.linalg.norm(p3, axis=0)
    ctau = np.where(is_lam, CTAU_MM[3122], CTAU_MM[310])
    flight = rng.exponential(1.0, m - n) * ctau * p / mass
    dvx = vx[sl] + flight * p3[0] / p
    dvy = vy[sl] + flight * p3[1] / p
    dvz = vz[sl] + flight * p3[2] / p
    pstar = np.where(is_lam, _V0_PSTAR[3122], _V0_PSTAR[310])
    m1 = np.where(is_lam, MASS_GEV[2212], MASS_GEV[211])  # the p (or pi+ of K0s)
    m2 = np.full(m - n, MASS_GEV[211])
    ax, ay, az = _directions(m - n, rng)
    d1 = _boost(pstar * ax, pstar * ay, pstar * az, np.sqrt(pstar**2 + m1**2), p3, mass)
    d2 = _boost(-pstar * ax, -pstar * ay, -pstar * az, np.sqrt(pstar**2 + m2**2), p3, mass)
    anti = (v0_pdg == 3122) & (rng.random(m - n) < 0.5)  # Lambda-bar -> pbar pi+
    q1 = np.where(anti, -1, 1)
    pdg1 = np.where(is_lam, 2212, 211) * q1
    ev_v0 = np.repeat(np.arange(n_events), n_v0)
    dau = {
        "event": np.r_[ev_v0, ev_v0],
        "q": np.r_[q1, -q1],
        "pdg": np.r_[pdg1, -211 * q1],
        "vx": np.r_[dvx, dvx],
        "vy": np.r_[dvy, dvy],
        "vz": np.r_[dvz, dvz],
        "px": np.r_[d1[0], d2[0]],
        "py": np.r_[d1[1], d2[1]],
        "pz": np.r_[d1[2], d2[2]],
    }
    return {k: np.concatenate([prim[k], dau[k]]) for k in prim}


def _boost(
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    e: np.ndarray,
    p_parent: np.ndarray,
    m_parent: np.ndarray,
) -> np.ndarray:
    """Lorentz boost of rest-frame momenta (px, py, pz, e) to the frame where the parent has ``p_parent`` (3, n)."""
    pp = np.linalg.norm(p_parent, axis=0)
    ep = np.sqrt(pp * pp + m_parent * m_parent)
    gamma = ep / m_parent
    bx, by, bz = p_parent / ep
    b2 = np.maximum(bx * bx + by * by + bz * bz, 1e-300)
    bp = bx * px + by * py + bz * pz
    k = (gamma - 1.0) * bp / b2 + gamma * e
    return np.stack([px + k * bx, py + k * by, pz + k * bz])


# --------------------------------------------------------------------------- material effects
class _Material:
    """The simulation's :class:`~hepml.detector.propagation.MaterialEffects`: scattering,
    energy loss and hadronic interactions, recording where particles interacted."""

    def __init__(
        self, sim: TrackerSimConfig, mass: np.ndarray, q: np.ndarray, rng: np.random.Generator
    ) -> None:
        self.sim, self.mass, self.q, self.rng = sim, mass, q, rng
        self.vertices: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def __call__(
        self,
        track: np.ndarray,
        pos: np.ndarray,
        direction: np.ndarray,
        p: np.ndarray,
        x_over_x0: np.ndarray,
        x_over_lambda: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sim = self.sim
        alive = np.ones(len(track), dtype=bool)
        if sim.multiple_scattering:
            t = np.maximum(x_over_x0, 1e-12)
            theta0 = highland_theta0(p, t, beta=beta_of(p, self.mass[track]), q=self.q[track])
            theta0 = np.where(x_over_x0 > 0, theta0, 0.0)
            direction = np.stack(
                scatter_direction(direction[0], direction[1], direction[2], theta0, self.rng)
            )
        if sim.energy_loss:
            p = p - mean_energy_loss_GeV(x_over_x0, SILICON_MIP_MEV_PER_X0)
            alive &= p > _P_STOP_GEV
            p = np.maximum(p, _P_STOP_GEV)
        if sim.nuclear_interactions:
            hit = self.rng.random(len(track)) < -np.expm1(-x_over_lambda)
            hit &= alive
            if hit.any():
                self.vertices.append(
                    (track[hit], pos[:, hit].copy(), direction[:, hit].copy(), p[hit].copy())
                )
            alive &= ~hit
        return direction, p, alive

    def take_vertices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not self.vertices:
            return np.zeros(0, np.int64), np.zeros((3, 0)), np.zeros((3, 0)), np.zeros(0)
        t, x, d, p = zip(*self.vertices, strict=True)
        self.vertices = []
        return (
            np.concatenate(t),
            np.concatenate(x, axis=1),
            np.concatenate(d, axis=1),
            np.concatenate(p),
        )


def secondaries(
    sim: TrackerSimConfig,
    parent_event: np.ndarray,
    pos: np.ndarray,
    direction: np.ndarray,
    p: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Charged secondaries of hadronic interactions at ``pos`` (3, n) of parents moving along ``direction``.

    Each interaction gives 1 + Poisson(secondaries_mean - 1) of them: the first a
    leading particle with momentum x p (x uniform in [0, 1]) within a Gaussian
    transverse kick of 0.3 GeV of the parent's direction, the others isotropic
    with an exponential momentum of mean ``secondary_p_mean_GeV``. Protons with
    ``secondary_proton_fraction``, else charged pions; q = +-1 at random.
    """
    n_int = len(p)
    mult = 1 + rng.poisson(max(sim.secondaries_mean - 1.0, 0.0), n_int)
    first = np.cumsum(mult) - mult
    who = np.repeat(np.arange(n_int), mult)
    lead = np.zeros(len(who), dtype=bool)
    lead[first] = True
    n = len(who)
    mom = rng.exponential(sim.secondary_p_mean_GeV, n) + _P_STOP_GEV
    ix, iy, iz = _directions(n, rng)
    d = direction[:, who]
    pl = rng.random(n) * p[who] + _P_STOP_GEV
    kick = rng.standard_normal((2, n)) * (0.3 / pl)
    # two unit vectors across the parent's direction
    a = np.where(np.abs(d[2]) < 0.9, 1.0, 0.0)
    ex = np.stack([a * 0 + (1 - a), a * 0, a])  # z axis, or x for near-axial parents
    e1 = np.cross(d.T, ex.T).T
    e1 /= np.linalg.norm(e1, axis=0)
    e2 = np.cross(d.T, e1.T).T
    ld = d + kick[0] * e1 + kick[1] * e2
    ld /= np.linalg.norm(ld, axis=0)
    dirx = np.where(lead, ld[0], ix)
    diry = np.where(lead, ld[1], iy)
    dirz = np.where(lead, ld[2], iz)
    mom = np.where(lead, pl, mom)
    q = np.where(rng.random(n) < 0.5, -1, 1)
    proton = rng.random(n) < sim.secondary_proton_fraction
    return {
        "event": parent_event[who],
        "q": q,
        "pdg": np.where(proton, 2212, 211) * q,
        "vx": pos[0, who],
        "vy": pos[1, who],
        "vz": pos[2, who],
        "px": mom * dirx,
        "py": mom * diry,
        "pz": mom * dirz,
    }


# --------------------------------------------------------------------------- events
def _particle_mass(pdg: np.ndarray) -> np.ndarray:
    a = np.abs(pdg)
    return np.select(
        [a == 2212, a == 321, a == 11, a == 13],
        [MASS_GEV[2212], MASS_GEV[321], MASS_GEV[11], MASS_GEV[13]],
        MASS_GEV[211],
    )


def _above_pt_min(gen: dict[str, np.ndarray], pt_min_GeV: float) -> dict[str, np.ndarray]:
    """The particles of ``gen`` with pT >= ``pt_min_GeV``: as in TrackML, whose events hold no
    particle below 0.1 GeV, V0 daughters and secondaries included (softer ones are not simulated)."""
    keep = np.hypot(gen["px"], gen["py"]) >= pt_min_GeV
    return gen if keep.all() else {k: v[keep] for k, v in gen.items()}


def simulate_particles(
    detector: Detector, sim: TrackerSimConfig, n_events: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], Crossings]:
    """All particles of ``n_events`` events (primaries, V0 daughters, secondaries) and their crossings.

    Returns ``(particles, crossings)``: particle arrays ``event, q, pdg, vx, vy,
    vz, px, py, pz, generation`` and the crossings of :func:`propagate` whose
    ``track`` is the particle's row. ``generation`` is 0 for the generator's
    particles (primaries and V0 daughters) and n for the secondaries of the n-th
    hadronic interaction in the material, as TrackML's ``particle_id`` encodes it.
    """
    gen = _above_pt_min(generate_particles(sim, n_events, rng), sim.pt_min_GeV)
    parts: list[dict[str, np.ndarray]] = []
    crossings: list[Crossings] = []
    offset = 0
    for generation in range(sim.max_generations + 1):
        n = len(gen["q"])
        gen["generation"] = np.full(n, generation, dtype=np.int32)
        if n == 0:
            break
        # particles below tracked_min_pt_GeV stay in the table but are not followed
        tracked = np.flatnonzero(np.hypot(gen["px"], gen["py"]) >= sim.tracked_min_pt_GeV)
        g = {k: v[tracked] for k, v in gen.items()}
        mass = _particle_mass(g["pdg"])
        q = g["q"].astype(np.float64)
        mat = _Material(sim, mass, q, rng)
        states = TrackStates.from_momentum(g["vx"], g["vy"], g["vz"], g["px"], g["py"], g["pz"], q)
        cr = propagate(states, detector, mat, max_step_mm=sim.max_step_mm)
        crossings.append(Crossings(**{**cr.__dict__, "track": tracked[cr.track] + offset}))
        parts.append(gen)
        offset += n
        t, pos, d, p = mat.take_vertices()
        t = tracked[t]
        if generation == sim.max_generations or not sim.nuclear_interactions:
            break
        gen = _above_pt_min(secondaries(sim, gen["event"][t], pos, d, p, rng), sim.pt_min_GeV)
    if not parts:  # no particle at all (noise-only events)
        parts.append(gen)
    particles = {k: np.concatenate([g[k] for g in parts]) for k in parts[0]}
    return particles, Crossings.concatenate(crossings)


def measure(
    detector: Detector, cr: Crossings, efficiency: float, rng: np.random.Generator
) -> tuple[Crossings, np.ndarray]:
    """Hits of the crossings: ``efficiency``, then local (u, v) displaced uniformly within
    +-pitch/2 and kept on the module. Returns the crossings kept and their measured (3, n) positions."""
    if efficiency < 1.0:
        cr = cr.take(np.flatnonzero(rng.random(len(cr)) < efficiency))
    m = detector.modules
    mod = cr.module
    d = rng.random((2, len(cr))) - 0.5
    u = cr.u + d[0] * m.pitch_u[mod]
    v = np.clip(cr.v + d[1] * m.pitch_v[mod], -m.hv[mod], m.hv[mod])
    hu = m.half_width(mod, v)
    u = np.clip(u, -hu, hu)
    return cr, np.stack(m.to_global(mod, u, v))


def noise_hits(
    detector: Detector, per_module: float, n_events: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson(``per_module``) noise hits per module and event, uniform on the module's trapezoid.

    Returns ``(event, module row, positions (3, n))``.
    """
    m = detector.modules
    counts = rng.poisson(per_module, (n_events, len(m)))
    ev, mod = np.nonzero(counts)
    rep = counts[ev, mod]
    ev, mod = np.repeat(ev, rep), np.repeat(mod, rep)
    # uniform on the trapezoid: v with density ~ its width, u uniform across it
    lo, hi = m.minhu[mod], m.maxhu[mod]
    w = rng.random((2, len(mod)))
    # inverse CDF of the width a + b t on t in [0, 1]: a t + b t^2 / 2 = W (a + b / 2)
    b = hi - lo
    tot = w[0] * (lo + 0.5 * b)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(np.abs(b) > 1e-9, (-lo + np.sqrt(lo * lo + 2.0 * b * tot)) / b, w[0])
    v = (2.0 * t - 1.0) * m.hv[mod]
    u = (2.0 * w[1] - 1.0) * m.half_width(mod, v)
    return ev, mod, np.stack(m.to_global(mod, u, v))


def simulate_events(
    detector: Detector, sim: TrackerSimConfig, event_ids: np.ndarray, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate the events ``event_ids``; return ``(hits, particles)`` in the tables of :mod:`hepml.io`.

    Noise hits have ``particle_id`` 0 and zero truth. The same ``rng`` state
    gives the same tables.
    """
    event_ids = np.asarray(event_ids, dtype=np.int64).ravel()
    n_ev = len(event_ids)
    parts, cr = simulate_particles(detector, sim, n_ev, rng)
    cr, meas = measure(detector, cr, sim.hit_efficiency, rng)
    n_parts = len(parts["q"])
    p_event = parts["event"]
    # particle ids: a random order within each event
    order = np.lexsort((rng.random(n_parts), p_event))
    rank = np.empty(n_parts, dtype=np.int64)
    rank[order] = np.arange(n_parts)
    first = np.searchsorted(p_event[order], np.arange(n_ev))
    k = rank - first[p_event] + 1
    pid = event_ids[p_event] * PARTICLE_ID_STRIDE + k
    nhits = np.bincount(cr.track, minlength=n_parts).astype(np.int32)

    nev, nmod, npos = noise_hits(detector, sim.noise_per_module, n_ev, rng)
    m = detector.modules
    h_event = np.r_[p_event[cr.track], nev]
    h_mod = np.r_[cr.module, nmod]
    truth_p = cr.p * np.stack([cr.dx, cr.dy, cr.dz])
    n_sig, n_noise = len(cr), len(nev)
    zeros = np.zeros(n_noise)
    # order: event, then module row (= volume, layer, module), at random within a module
    order = np.lexsort((rng.random(n_sig + n_noise), h_mod, h_event))
    per_event = np.bincount(h_event, minlength=n_ev)
    start = np.cumsum(per_event) - per_event
    hit_id = np.arange(n_sig + n_noise, dtype=np.int64) - np.repeat(start, per_event) + 1
    cols = {
        "x": np.r_[meas[0], npos[0]],
        "y": np.r_[meas[1], npos[1]],
        "z": np.r_[meas[2], npos[2]],
        "tx": np.r_[cr.x, zeros],
        "ty": np.r_[cr.y, zeros],
        "tz": np.r_[cr.z, zeros],
        "tpx": np.r_[truth_p[0], zeros],
        "tpy": np.r_[truth_p[1], zeros],
        "tpz": np.r_[truth_p[2], zeros],
    }
    h_mod = h_mod[order]
    hits = pd.DataFrame(
        {
            "event_id": event_ids[h_event[order]],
            "hit_id": hit_id,
            **{c: cols[c][order] for c in ("x", "y", "z")},
            "volume_id": m.volume_id[h_mod],
            "layer_id": m.layer_id[h_mod],
            "module_id": m.module_id[h_mod],
            "particle_id": np.r_[pid[cr.track], np.zeros(n_noise, np.int64)][order],
            **{c: cols[c][order] for c in ("tx", "ty", "tz", "tpx", "tpy", "tpz")},
        },
        copy=False,
    )
    porder = np.argsort(pid, kind="stable")
    particles = pd.DataFrame(
        {
            "event_id": event_ids[p_event[porder]],
            "particle_id": pid[porder],
            **{c: parts[c][porder] for c in ("vx", "vy", "vz", "px", "py", "pz")},
            "q": parts["q"][porder],
            "nhits": nhits[porder],
            "particle_type": parts["pdg"][porder],
            "generation": parts["generation"][porder],
        },
        copy=False,
    )
    return hits.astype(HIT_COLUMNS), particles.astype(PARTICLE_COLUMNS)


def shard_event_ids(cfg: dict[str, Any], shard: int) -> np.ndarray:
    """``event_id`` of the events of tracker shard ``shard``: shard * events_per_shard + i."""
    per = int(cfg["workflow"]["tracker_events_per_shard"])
    return shard * per + np.arange(per, dtype=np.int64)


def simulate_shard(cfg: dict[str, Any], shard: int, out: Path, progress: bool = True) -> None:
    """Simulate tracker shard ``shard`` of the validated config ``cfg`` into the ROOT file ``out``.

    Deterministic given (``seed``, ``shard``): the random stream is
    ``hepml.rng.rng(seed, "tracker", shard)``. Events are simulated in batches of
    about :data:`PARTICLES_PER_BATCH` primaries, with a progress bar on stderr.
    """
    from tqdm import tqdm

    n_shards = int(cfg["workflow"]["tracker_shards"])
    if not 0 <= shard < n_shards:
        raise HepmlError(
            f"tracker shard {shard} is out of range: workflow.tracker_shards is {n_shards}"
        )
    detector = load_detector(cfg)
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
            h, p = simulate_events(detector, sim, ids[start : start + batch], gen)
            hits.append(h)
            parts.append(p)
            bar.update(len(ids[start : start + batch]))
    write_tracker_root(out, pd.concat(hits, ignore_index=True), pd.concat(parts, ignore_index=True))
