"""The sampling calorimeter: geometry, single-particle showers, ROOT output.

Geometry (defaults after the ATLAS liquid-argon EM barrel, |eta| < 0.8: ATLAS
Collaboration, JINST 3 (2008) S08003, Sec. 5.2): a projective (eta, phi) cell
grid at radius ``front_radius_cm`` with three depth layers,

=========  ==================  =================  ==========================
layer      cell (eta x phi)    depth (X0, eta=0)  window (cells, eta x phi)
=========  ==================  =================  ==========================
strip      0.025/8 x 0.1       0 - 4.3            81 x 3
middle     0.025 x 0.025       4.3 - 20.5         11 x 11
back       0.05 x 0.025        20.5 - 25          7 x 11
=========  ==================  =================  ==========================

of lead (1.53 mm) and liquid argon (2 x 2.1 mm gaps) sampling cells, whose
effective X0, Moliere radius and lambda_I come from
:func:`hepml.sim.showers.sampling_medium` (X0 = 1.89 cm, R_M = 4.2 cm,
lambda_I = 42 cm, so 25 X0 = 1.1 lambda_I at eta = 0 and 1.5 lambda_I at |eta| = 0.8).
Layer depths are radial: a particle at eta crosses cosh(eta) times more
material. A transverse offset d (cm) at radius r moves a deposit by d/r in eta
and in phi (projective barrel). Particles come from the origin along straight
lines (no field) and meet no material before the calorimeter (no presampler, no
upstream conversions: photons convert in the strips, 9/7 X0 in on average); the
window of each layer is centred on the cell that the particle's direction hits,
so the grid phase varies from shower to shower.

Showers (:mod:`hepml.sim.showers`): photons and the two photons of a pi0
(each at its own impact point) shower as GFlash electromagnetic showers from
their conversion point; a charged pion interacts at an exponential depth in
lambda_I (or crosses as a MIP), its electromagnetic fraction becomes GFlash
sub-showers and the rest a wider, deeper hadronic component seen at h/e = 0.6.
Cells get sampling fluctuations (11%/sqrt(E) for EM energy) and Gaussian noise.

A global cell index k of a layer covers [k * pitch, (k + 1) * pitch) in eta (and
likewise in phi, without wrap-around: the windows are local); the window's first
cell is stored per shower (``<layer>_ieta0``, ``<layer>_iphi0``). Energy landing
outside a window or behind the last layer is lost and recorded in ``e_leak_GeV``.

Output, one ROOT file per shard (:func:`hepml.io.write_root`), tree ``showers``:
``shower_id`` (shard * showers_per_shard + i), ``pdg_id`` (22, 111, +-211),
``e_true_GeV``, ``eta``, ``phi`` (direction from the origin), ``cells_strip``
(N, 81, 3), ``cells_middle`` (N, 11, 11), ``cells_back`` (N, 7, 11) in GeV at the
electromagnetic scale (sampling fluctuations and noise included), the window
origins, and ``e_leak_GeV`` (electromagnetic-scale energy lost out of the window
or the back, before sampling fluctuations).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hepml.errors import HepmlError
from hepml.sim import showers as sh

LAYERS: tuple[str, ...] = ("strip", "middle", "back")
PARTICLES: dict[str, int] = {"photon": 22, "pi0": 111, "charged_pion": 211}
#: showers simulated together (bounds the memory of the spot arrays, ~0.3 GB)
CHUNK = 512


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class CaloLayer:
    """One depth layer: back boundary (X0 at eta = 0), cell pitches, window size, noise."""

    name: str
    depth_X0: float
    eta_pitch: float
    phi_pitch: float
    n_eta: int
    n_phi: int
    noise_GeV: float

    @property
    def n_cells(self) -> int:
        return self.n_eta * self.n_phi


@dataclass(frozen=True)
class CaloGeometry:
    """Front radius (cm), layers from the front, and the sampling medium."""

    front_radius_cm: float
    layers: tuple[CaloLayer, ...]
    passive: sh.Material
    active: sh.Material
    medium: sh.SamplingMedium

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> CaloGeometry:
        """From the validated config's ``calo`` section."""
        c = cfg["calo"]
        layers = tuple(
            CaloLayer(
                name=name,
                depth_X0=float(c["layers"][name]["depth_X0"]),
                eta_pitch=float(c["layers"][name]["eta_pitch"]),
                phi_pitch=float(c["layers"][name]["phi_pitch"]),
                n_eta=int(c["layers"][name]["window"][0]),
                n_phi=int(c["layers"][name]["window"][1]),
                noise_GeV=float(c["layers"][name]["noise_GeV"]),
            )
            for name in LAYERS
        )
        depths = [lay.depth_X0 for lay in layers]
        if any(b <= a for a, b in zip([0.0, *depths[:-1]], depths, strict=True)):
            raise HepmlError(
                f"key 'calo.layers': depth_X0 must increase from strip to back, got {depths}"
            )
        passive = _material(c["passive"], "calo.passive")
        active = _material(c["active"], "calo.active")
        return cls(
            float(c["front_radius_cm"]),
            layers,
            passive,
            active,
            sh.sampling_medium(passive, active),
        )

    @property
    def boundaries_X0(self) -> np.ndarray:
        """Back boundary of each layer in X0 at eta = 0, shape (3,)."""
        return np.array([lay.depth_X0 for lay in self.layers])

    @property
    def depth_lambda(self) -> float:
        """Total depth in interaction lengths at eta = 0."""
        return self.layers[-1].depth_X0 / self.medium.x0_per_lambda

    def layer(self, name: str) -> CaloLayer:
        return self.layers[LAYERS.index(name)]


def _material(m: dict[str, Any], key: str) -> sh.Material:
    return sh.Material(
        name=str(m["name"]),
        Z=float(m["Z"]),
        A=float(m["A"]),
        density_g_cm3=float(m["density_g_cm3"]),
        x0_g_cm2=float(m["x0_g_cm2"]),
        lambda_g_cm2=float(m["lambda_g_cm2"]),
        dedx_MeV_cm2_g=float(m["dedx_MeV_cm2_g"]),
        thickness_mm=float(m["thickness_mm"]),
    )


@dataclass(frozen=True)
class HadronConfig:
    """Charged-pion shower parameters (see :mod:`hepml.sim.showers`)."""

    em_fraction_e0_GeV: float
    em_fraction_m: float
    em_fraction_concentration: float
    h_over_e: float
    stochastic_term: float
    mean_extra_subshowers: float
    subshower_pt_GeV: float
    radial_core_lambda: float
    radial_tail_lambda: float
    core_fraction: float
    spots_per_GeV: float
    landau_width: float


@dataclass(frozen=True)
class CaloSimConfig:
    """What is simulated: particle mix, energies, directions and response parameters."""

    eta_max: float
    energy_min_GeV: float
    energy_max_GeV: float
    energy_spectrum: str  # "flat" or "log_flat"
    fractions: dict[int, float]  # pdg id (22, 111, 211) -> probability
    sampling_term: float
    spot_scale: float
    hadron: HadronConfig

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> CaloSimConfig:
        c = cfg["calo"]
        if c["energy_max_GeV"] < c["energy_min_GeV"]:
            raise HepmlError(
                f"key 'calo.energy_max_GeV': {c['energy_max_GeV']} is below calo.energy_min_GeV = {c['energy_min_GeV']}"
            )
        weights = {PARTICLES[k]: float(v) for k, v in c["particles"].items()}
        total = sum(weights.values())
        if total <= 0:
            raise HepmlError(
                "key 'calo.particles': at least one particle type needs a positive fraction"
            )
        h = c["hadron"]
        return cls(
            eta_max=float(c["eta_max"]),
            energy_min_GeV=float(c["energy_min_GeV"]),
            energy_max_GeV=float(c["energy_max_GeV"]),
            energy_spectrum=str(c["energy_spectrum"]),
            fractions={k: v / total for k, v in weights.items()},
            sampling_term=float(c["sampling_term"]),
            spot_scale=float(c["spot_scale"]),
            hadron=HadronConfig(**{k: float(v) for k, v in h.items()}),
        )


# --------------------------------------------------------------------------- particles
def draw_particles(
    sim: CaloSimConfig, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(pdg_ids, energies_GeV)`` of ``n`` particles: the configured mix (charged pions of
    either sign with equal probability) and a flat or log-flat energy spectrum."""
    ids = np.array(list(sim.fractions), dtype=np.int32)
    probs = np.array([sim.fractions[int(i)] for i in ids])
    pdg = ids[rng.choice(len(ids), size=n, p=probs)]
    sign = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int32)
    pdg = np.where(pdg == 211, pdg * sign, pdg).astype(np.int32)
    lo, hi = sim.energy_min_GeV, sim.energy_max_GeV
    u = rng.random(n)
    e = lo * (hi / lo) ** u if sim.energy_spectrum == "log_flat" else lo + (hi - lo) * u
    return pdg, e


# --------------------------------------------------------------------------- simulation
def _window_origins(
    geometry: CaloGeometry, eta: np.ndarray, phi: np.ndarray
) -> dict[str, np.ndarray]:
    """Global index of each layer window's first cell: the impact cell minus half the window."""
    out = {}
    for lay in geometry.layers:
        out[f"{lay.name}_ieta0"] = (
            np.floor(eta / lay.eta_pitch).astype(np.int64) - lay.n_eta // 2
        ).astype(np.int32)
        out[f"{lay.name}_iphi0"] = (
            np.floor(phi / lay.phi_pitch).astype(np.int64) - lay.n_phi // 2
        ).astype(np.int32)
    return out


def _bin_spots(
    geometry: CaloGeometry,
    n_showers: int,
    origins: dict[str, np.ndarray],
    cosh_eta: np.ndarray,
    shower: np.ndarray,
    depth_X0: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    e: np.ndarray,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Sum spot energies into the layer windows: ``([cells (N, n_eta, n_phi) per layer], leak (N,))``.

    A spot belongs to the layer whose [front, back) interval, in X0 along the
    particle's path (radial depths times cosh eta), contains its depth; spots
    behind the last layer or outside the window count as leakage.
    """
    n_cells = np.array([lay.n_cells for lay in geometry.layers])
    offsets = np.concatenate([[0], np.cumsum(n_cells)[:-1]])
    total = int(n_cells.sum())
    bounds = geometry.boundaries_X0
    path_depth = depth_X0 / cosh_eta[shower]
    layer = np.searchsorted(bounds, path_depth, side="right")
    flat = np.full(shower.shape, -1, dtype=np.int64)
    for li, lay in enumerate(geometry.layers):
        sel = np.flatnonzero(layer == li)
        if sel.size == 0:
            continue
        s = shower[sel]
        ie = np.floor(eta[sel] / lay.eta_pitch).astype(np.int64) - origins[f"{lay.name}_ieta0"][s]
        ip = np.floor(phi[sel] / lay.phi_pitch).astype(np.int64) - origins[f"{lay.name}_iphi0"][s]
        ok = (ie >= 0) & (ie < lay.n_eta) & (ip >= 0) & (ip < lay.n_phi)
        flat[sel[ok]] = s[ok] * total + offsets[li] + ie[ok] * lay.n_phi + ip[ok]
    inside = flat >= 0
    cells = np.bincount(flat[inside], weights=e[inside], minlength=n_showers * total).reshape(
        n_showers, total
    )
    leak = np.bincount(shower[~inside], weights=e[~inside], minlength=n_showers)
    per_layer = [
        cells[:, offsets[i] : offsets[i] + n].reshape(n_showers, lay.n_eta, lay.n_phi)
        for i, (lay, n) in enumerate(zip(geometry.layers, n_cells, strict=True))
    ]
    return per_layer, leak


def _place(
    geometry: CaloGeometry,
    cosh_eta: np.ndarray,
    shower: np.ndarray,
    axis_eta: np.ndarray,
    axis_phi: np.ndarray,
    depth_X0: np.ndarray,
    dx_cm: np.ndarray,
    dy_cm: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(eta, phi) of deposits at path depth ``depth_X0`` and transverse offset (dx along
    e_theta, dy along e_phi) from an axis: a transverse d at radius r shifts eta by
    -d/r and phi by d/r, with r = front + depth X0_cm / cosh(eta)."""
    r = geometry.front_radius_cm + depth_X0 * geometry.medium.x0_cm / cosh_eta[shower]
    return axis_eta - dx_cm / r, axis_phi + dy_cm / r


def simulate_showers(
    geometry: CaloGeometry,
    sim_cfg: CaloSimConfig,
    pdg_ids: np.ndarray,
    energies: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Showers of particles ``pdg_ids`` (22, 111, +-211) of ``energies`` (GeV) from the origin.

    Directions: eta ~ U(-eta_max, eta_max), phi ~ U(-pi, pi). Returns the branches
    described in the module docstring except ``shower_id``. Showers are processed
    in chunks of :data:`CHUNK` (vectorised within a chunk).
    """
    pdg_ids = np.asarray(pdg_ids, dtype=np.int32)
    energies = np.asarray(energies, dtype=np.float64)
    bad = np.flatnonzero(
        ~np.isin(np.abs(pdg_ids), [22, 111, 211]) | (pdg_ids == -22) | (pdg_ids == -111)
    )
    if bad.size:
        raise HepmlError(
            f"pdg id {int(pdg_ids[bad[0]])} is not simulated (known: 22, 111, 211, -211)"
        )
    n = pdg_ids.size
    eta = rng.uniform(-sim_cfg.eta_max, sim_cfg.eta_max, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, n, CHUNK):
        sl = slice(start, min(n, start + CHUNK))
        parts.append(
            _simulate_chunk(geometry, sim_cfg, pdg_ids[sl], energies[sl], eta[sl], phi[sl], rng)
        )
    out = (
        {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if parts
        else _empty_output(geometry)
    )
    out["pdg_id"] = pdg_ids
    out["e_true_GeV"] = energies.astype(np.float32)
    out["eta"] = eta.astype(np.float32)
    out["phi"] = phi.astype(np.float32)
    return out


def _empty_output(geometry: CaloGeometry) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {
        f"cells_{lay.name}": np.zeros((0, lay.n_eta, lay.n_phi), np.float32)
        for lay in geometry.layers
    }
    for lay in geometry.layers:
        out[f"{lay.name}_ieta0"] = np.zeros(0, np.int32)
        out[f"{lay.name}_iphi0"] = np.zeros(0, np.int32)
    out["e_leak_GeV"] = np.zeros(0, np.float32)
    return out


def _simulate_chunk(
    geometry: CaloGeometry,
    sim: CaloSimConfig,
    pdg: np.ndarray,
    energy: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    med = geometry.medium
    had = sim.hadron
    n = pdg.size
    idx = np.arange(n)
    cosh_eta = np.cosh(eta)
    depth_total = geometry.boundaries_X0[-1] * cosh_eta  # X0 along the path
    origins = _window_origins(geometry, eta, phi)

    # ---- electromagnetic (sub)showers: one item each
    is_g, is_pi0, is_pic = pdg == 22, pdg == 111, np.abs(pdg) == 211
    g = idx[is_g]
    p0 = idx[is_pi0]
    dec = sh.pi0_decay(energy[p0], eta[p0], phi[p0], rng)
    c = idx[is_pic]
    z_int = sh.interaction_depth_lambda(c.size, rng) * med.x0_per_lambda  # X0 along the path
    interacts = z_int < depth_total[c]
    ci, zi = c[interacts], z_int[interacts]
    f_em = sh.em_fraction(
        energy[ci], had.em_fraction_e0_GeV, had.em_fraction_m, had.em_fraction_concentration, rng
    )
    n_sub = 1 + rng.poisson(had.mean_extra_subshowers, ci.size)
    sub_parent = np.repeat(np.arange(ci.size), n_sub)
    share = rng.exponential(1.0, sub_parent.size)  # Dirichlet(1,...,1) energy sharing
    share /= np.bincount(sub_parent, weights=share, minlength=ci.size)[sub_parent]
    sub_e = share * (f_em * energy[ci])[sub_parent]
    # Every sub-shower starts at the interaction depth (the electromagnetic term of
    # Bock et al. peaks a few X0 after it). The first is on the pion's axis; the
    # others come from secondary hadrons, displaced by a radius drawn from the
    # core of the non-electromagnetic radial profile.
    first = np.r_[True, sub_parent[1:] != sub_parent[:-1]] if sub_parent.size else np.zeros(0, bool)
    sub_pivot = zi[sub_parent]
    core = np.full(sub_parent.size, had.radial_core_lambda, np.float32)
    off_r = np.where(
        first, 0.0, sh.two_component_radius(core, core, np.float32(1.0), rng) * med.lambda_cm
    )
    off_psi = rng.uniform(0.0, 2.0 * np.pi, sub_parent.size)
    pt = rng.exponential(had.subshower_pt_GeV, sub_parent.size)
    psi = rng.uniform(0.0, 2.0 * np.pi, sub_parent.size)
    tilt = pt / np.maximum(sub_e, 1e-3)

    zeros = np.zeros(g.size + 2 * p0.size)
    item_shower = np.concatenate([g, p0, p0, ci[sub_parent]])
    item_e = np.concatenate([energy[g], dec.e1_GeV, dec.e2_GeV, sub_e])
    item_eta = np.concatenate([eta[g], dec.eta1, dec.eta2, eta[ci][sub_parent]])
    item_phi = np.concatenate([phi[g], dec.phi1, dec.phi2, phi[ci][sub_parent]])
    item_pivot = np.concatenate([zeros, sub_pivot])
    item_start = item_pivot + rng.exponential(sh.PHOTON_CONVERSION_X0, item_shower.size)
    item_tx = np.concatenate([zeros, tilt * np.cos(psi)])
    item_ty = np.concatenate([zeros, tilt * np.sin(psi)])
    item_ox = np.concatenate([zeros, off_r * np.cos(off_psi)])
    item_oy = np.concatenate([zeros, off_r * np.sin(off_psi)])

    spots = sh.em_spots(item_e, med, sim.sampling_term, rng, sim.spot_scale)
    it = spots.item
    s_shower = item_shower[it]
    s_depth = item_start[it] + spots.depth_X0
    lever_cm = (s_depth - item_pivot[it]) * med.x0_cm
    s_dx = spots.dx_cm + item_ox[it] + item_tx[it] * lever_cm
    s_dy = spots.dy_cm + item_oy[it] + item_ty[it] * lever_cm
    s_eta, s_phi = _place(
        geometry, cosh_eta, s_shower, item_eta[it], item_phi[it], s_depth, s_dx, s_dy
    )
    em_cells, em_leak = _bin_spots(
        geometry, n, origins, cosh_eta, s_shower, s_depth, s_eta, s_phi, spots.e_GeV
    )

    # ---- hadronic (non-electromagnetic) component of interacting pions
    e_had = (1.0 - f_em) * energy[ci] * had.h_over_e
    n_h = np.maximum(np.ceil(e_had * had.spots_per_GeV), 1).astype(np.int64)
    h_par = np.repeat(np.arange(ci.size), n_h)
    h_depth = zi[h_par] + sh.bock_hadronic_depth_lambda(energy[ci][h_par], rng) * med.x0_per_lambda
    core = np.full(h_par.size, had.radial_core_lambda, np.float32)
    tail = np.full(h_par.size, had.radial_tail_lambda, np.float32)
    r_cm = sh.two_component_radius(core, tail, np.float32(had.core_fraction), rng) * med.lambda_cm
    psi_h = rng.uniform(0.0, 2.0 * np.pi, h_par.size)
    h_shower = ci[h_par]
    h_eta, h_phi = _place(
        geometry,
        cosh_eta,
        h_shower,
        eta[h_shower],
        phi[h_shower],
        h_depth,
        r_cm * np.cos(psi_h),
        r_cm * np.sin(psi_h),
    )
    h_e = (e_had / n_h)[h_par]
    had_cells, had_leak = _bin_spots(
        geometry, n, origins, cosh_eta, h_shower, h_depth, h_eta, h_phi, h_e
    )

    # ---- minimum-ionising track of every charged pion up to its interaction (or the back)
    track_end = np.minimum(z_int, depth_total[c])
    out: dict[str, np.ndarray] = {}
    front = np.zeros(c.size)
    for li, lay in enumerate(geometry.layers):
        back = geometry.boundaries_X0[li] * cosh_eta[c]
        path = np.clip(np.minimum(track_end, back) - front, 0.0, None)
        front = back
        mip = sh.mip_energy(path, med.mip_GeV_per_X0, had.landau_width, rng)
        cells = sh.sampling_fluctuation(em_cells[li], sim.sampling_term, rng)
        cells += sh.sampling_fluctuation(had_cells[li], had.stochastic_term, rng)
        cells[c, lay.n_eta // 2, lay.n_phi // 2] += mip
        cells += sh.electronic_noise(cells.shape, lay.noise_GeV, rng)
        out[f"cells_{lay.name}"] = cells.astype(np.float32)
    out.update(origins)
    out["e_leak_GeV"] = (em_leak + had_leak).astype(np.float32)
    return out


# --------------------------------------------------------------------------- shards and I/O
def simulate_shard(cfg: dict[str, Any], shard: int, out: Path, progress: bool = True) -> None:
    """Simulate shard ``shard`` of the validated config ``cfg`` into the ROOT file ``out``.

    ``workflow.calo_showers_per_shard`` showers from the stream
    ``hepml.rng.rng(seed, "calo", shard)``; shower ids shard * n + i. Written atomically.
    """
    from tqdm import tqdm

    from hepml.io import write_root
    from hepml.rng import rng as make_rng

    geometry = CaloGeometry.from_config(cfg)
    sim = CaloSimConfig.from_config(cfg)
    n = int(cfg["workflow"]["calo_showers_per_shard"])
    gen = make_rng(cfg["seed"], "calo", shard)
    pdg, energy = draw_particles(sim, n, gen)
    parts = []
    bar = tqdm(total=n, desc=f"calo shard {shard}", unit="shower", disable=not progress)
    # Chunks of the same size whatever the progress setting: identical arrays either way.
    step = 4 * CHUNK
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        parts.append(simulate_showers(geometry, sim, pdg[sl], energy[sl], gen))
        bar.update(sl.stop - sl.start)
    bar.close()
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    branches = {"shower_id": (shard * n + np.arange(n)).astype(np.int64), **data}
    write_root(out, {"showers": branches})


def showers_branches() -> list[str]:
    """Names of the branches of tree ``showers``."""
    names = ["shower_id", "pdg_id", "e_true_GeV", "eta", "phi"]
    names += [f"cells_{name}" for name in LAYERS]
    names += [f"{name}_{ax}" for name in LAYERS for ax in ("ieta0", "iphi0")]
    return [*names, "e_leak_GeV"]


def read_calo_root(path: str | Path) -> dict[str, np.ndarray]:
    """The ``showers`` tree of a file written by :func:`simulate_shard`, as numpy arrays.

    Raises :class:`HepmlError` naming the file for a missing, empty, truncated or
    malformed file (missing branch, cell arrays that are not (N, n_eta, n_phi)).
    """
    from hepml.io import read_root

    data = read_root(path, "showers", showers_branches())
    n = data["shower_id"].shape[0]
    for name in LAYERS:
        cells = data[f"cells_{name}"]
        if cells.ndim != 3 or cells.shape[0] != n:
            raise HepmlError(
                f"'{path}': branch 'cells_{name}' has shape {cells.shape}, expected ({n}, n_eta, n_phi)"
            )
    return data
