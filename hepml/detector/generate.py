"""Planar modules generated from the config's compact description (``tracker.detector``).

The default description (``hepml/schemas/detector.schema.yaml``) is TrackML's
detector (Amrouche et al., arXiv:1904.06778), reverse-engineered from the
challenge's ``detectors.csv``: the same 18,728 modules, module by module (module
centres within 0.004 mm of the real ones, the file's six-digit rounding, the same
rotations and sizes). What the file shows, and what is generated here:

* Barrel layers (volumes 8, 13, 17): ``n_rings_z`` rings along z, centred on
  z = 0 at ``ring_pitch_z_mm`` (pixel: 14 rings at +-35..+-455 mm; strips: 21
  at 0, +-103, ..., +-1030 mm), every ring the same ``modules_phi`` rectangles at
  phi_k = -pi + (k + 1/2) 2 pi / n (no phi offset between rings). Ring i (from
  -z) sits at r + r_stagger_mm when i is even, r - r_stagger_mm when odd (0.25 mm
  pixel, 1.5 mm strips). Local v is +z; the normal w is the radial direction
  turned about z by ``tilt_rad`` (+0.14 rad pixel, -0.15 rad strips: the shingled
  overlap in phi); u = v x w. ``module_id`` = i * n + k + 1 (z ring by z ring).
* Disks (volumes 7/9, 12/14, 16/18): each disk pair at |z| = ``disk_z_mm``,
  rings of trapezoids at phi_k = -pi + (k + 1/2) 2 pi / n, centres exactly at
  the ring radius. Local v is the outward radial direction (so the wide side,
  ``module_maxhu``, is outside); w = +z and u = -phi-hat at +z, w = -z and u =
  +phi-hat at -z. A module's |z| is the disk's plus the ring's ``z_offset_mm``
  (strips: rings alternately 3 or 4 mm nearer and farther), plus or minus
  ``phi_stagger_z_mm`` for even / odd k, plus or minus ``phi_sub_stagger_z_mm``
  for k = 0 / 3 mod 4 (pixel inner ring: 0.5 mm); the -z side mirrors the +z
  side. Layer ids grow with z on both sides. Module ids follow TrackML's ACTS
  surface-grid order (``numbering: grid``, exact for the pixel disks) or centre
  phi (``numbering: phi``, used for the strip disks, where TrackML's order is not
  a phi grid; 84-88% of ids agree, the others are a neighbour's).

:func:`generate_modules` takes the validated ``tracker.detector`` section;
:class:`DetectorSpec` is its typed form. Mistakes the schema cannot see (counts
that do not match, radii out of order, duplicate volumes) raise one-line
:class:`~hepml.errors.HepmlError` naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepml.detector.geometry import Modules
from hepml.errors import HepmlError

#: Where the section lives in the config, for error messages.
SECTION_KEY = "tracker.detector"
TWO_PI = 2.0 * math.pi


# ---------------------------------------------------------------------- typed config
def _float(s: Mapping[str, Any], name: str, key: str) -> float:
    value = float(s[name])
    if not math.isfinite(value):
        raise HepmlError(f"key '{key}.{name}': value {value} is not a finite number")
    return value


def _floats(s: Mapping[str, Any], name: str, key: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in s[name])
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise HepmlError(f"key '{key}.{name}.{i}': value {v} is not a finite number")
    return values


def _increasing(values: Sequence[float], where: Sequence[str]) -> None:
    """Raise naming ``where[i]`` if values[i] does not exceed values[i - 1]."""
    for i in range(1, len(values)):
        if values[i] <= values[i - 1]:
            raise HepmlError(
                f"key '{where[i]}': {values[i]} must exceed the previous {values[i - 1]} (increasing order)"
            )


@dataclass(frozen=True)
class BarrelSpec:
    """One barrel volume: layers of rectangular modules in z rings (lengths in mm)."""

    volume_id: int
    layer_radii_mm: tuple[float, ...]
    modules_phi: tuple[int, ...]
    n_rings_z: int
    ring_pitch_z_mm: float
    half_width_mm: float
    half_length_mm: float
    thickness_mm: float
    pitch_u_mm: float
    pitch_v_mm: float
    tilt_rad: float
    r_stagger_mm: float

    @classmethod
    def from_section(cls, s: Mapping[str, Any], key: str) -> BarrelSpec:
        radii = _floats(s, "layer_radii_mm", key)
        counts = tuple(int(n) for n in s["modules_phi"])
        if len(counts) != len(radii):
            raise HepmlError(
                f"key '{key}.modules_phi': {len(counts)} counts for {len(radii)} layer_radii_mm"
            )
        _increasing(radii, [f"{key}.layer_radii_mm.{i}" for i in range(len(radii))])
        spec = cls(
            volume_id=int(s["volume_id"]),
            layer_radii_mm=radii,
            modules_phi=counts,
            n_rings_z=int(s["n_rings_z"]),
            **{
                name: _float(s, name, key)
                for name in (
                    "ring_pitch_z_mm",
                    "half_width_mm",
                    "half_length_mm",
                    "thickness_mm",
                    "pitch_u_mm",
                    "pitch_v_mm",
                    "tilt_rad",
                    "r_stagger_mm",
                )
            },
        )
        if spec.r_stagger_mm >= radii[0]:
            raise HepmlError(
                f"key '{key}.r_stagger_mm': {spec.r_stagger_mm} mm must be below the first layer radius {radii[0]} mm"
            )
        return spec


@dataclass(frozen=True)
class RingSpec:
    """One ring of trapezoidal modules on every disk of an endcap (lengths in mm)."""

    radius_mm: float
    modules_phi: int
    half_width_inner_mm: float
    half_width_outer_mm: float
    half_length_mm: float
    z_offset_mm: float
    phi_stagger_z_mm: float
    phi_sub_stagger_z_mm: float

    @classmethod
    def from_section(cls, s: Mapping[str, Any], key: str) -> RingSpec:
        spec = cls(
            modules_phi=int(s["modules_phi"]),
            **{
                name: _float(s, name, key)
                for name in (
                    "radius_mm",
                    "half_width_inner_mm",
                    "half_width_outer_mm",
                    "half_length_mm",
                    "z_offset_mm",
                    "phi_stagger_z_mm",
                    "phi_sub_stagger_z_mm",
                )
            },
        )
        if spec.half_length_mm >= spec.radius_mm:
            raise HepmlError(
                f"key '{key}.half_length_mm': {spec.half_length_mm} mm reaches the beam axis (radius_mm {spec.radius_mm})"
            )
        if spec.phi_stagger_z_mm and spec.modules_phi % 2:
            raise HepmlError(
                f"key '{key}.phi_stagger_z_mm': alternating modules need an even modules_phi, not {spec.modules_phi}"
            )
        if spec.phi_sub_stagger_z_mm and spec.modules_phi % 4:
            raise HepmlError(
                f"key '{key}.phi_sub_stagger_z_mm': needs modules_phi divisible by 4, not {spec.modules_phi}"
            )
        return spec

    @property
    def max_z_shift_mm(self) -> float:
        return abs(self.z_offset_mm) + self.phi_stagger_z_mm + self.phi_sub_stagger_z_mm


@dataclass(frozen=True)
class EndcapSpec:
    """A pair of endcap volumes (-z and +z), mirror images: disks of rings (lengths in mm)."""

    negative_volume_id: int
    positive_volume_id: int
    disk_z_mm: tuple[float, ...]
    thickness_mm: float
    pitch_u_mm: float
    pitch_v_mm: float
    rings: tuple[RingSpec, ...]
    numbering: str

    @classmethod
    def from_section(cls, s: Mapping[str, Any], key: str) -> EndcapSpec:
        disk_z = _floats(s, "disk_z_mm", key)
        _increasing(disk_z, [f"{key}.disk_z_mm.{i}" for i in range(len(disk_z))])
        rings = tuple(
            RingSpec.from_section(r, f"{key}.rings.{i}") for i, r in enumerate(s["rings"])
        )
        _increasing(
            [r.radius_mm for r in rings], [f"{key}.rings.{i}.radius_mm" for i in range(len(rings))]
        )
        shift = max(r.max_z_shift_mm for r in rings)
        if shift >= disk_z[0]:
            raise HepmlError(
                f"key '{key}.disk_z_mm': the first disk at {disk_z[0]} mm is not beyond its modules' z shifts ({shift} mm)"
            )
        spec = cls(
            negative_volume_id=int(s["negative_volume_id"]),
            positive_volume_id=int(s["positive_volume_id"]),
            disk_z_mm=disk_z,
            thickness_mm=_float(s, "thickness_mm", key),
            pitch_u_mm=_float(s, "pitch_u_mm", key),
            pitch_v_mm=_float(s, "pitch_v_mm", key),
            rings=rings,
            numbering=str(s["numbering"]),
        )
        if spec.negative_volume_id == spec.positive_volume_id:
            raise HepmlError(
                f"key '{key}.positive_volume_id': {spec.positive_volume_id} is also the negative_volume_id"
            )
        return spec


@dataclass(frozen=True)
class DetectorSpec:
    """The typed ``tracker.detector`` description: barrel volumes and endcap pairs."""

    barrels: tuple[BarrelSpec, ...]
    endcaps: tuple[EndcapSpec, ...]

    @classmethod
    def from_section(cls, section: Mapping[str, Any], key: str = SECTION_KEY) -> DetectorSpec:
        """From the validated section; cross-field mistakes raise one-line HepmlErrors."""
        barrels = tuple(
            BarrelSpec.from_section(b, f"{key}.barrels.{i}")
            for i, b in enumerate(section.get("barrels", ()))
        )
        endcaps = tuple(
            EndcapSpec.from_section(e, f"{key}.endcaps.{i}")
            for i, e in enumerate(section.get("endcaps", ()))
        )
        if not barrels and not endcaps:
            raise HepmlError(f"key '{key}': no barrels and no endcaps, the detector has no module")
        seen: dict[int, str] = {}
        named = [(b.volume_id, f"{key}.barrels.{i}.volume_id") for i, b in enumerate(barrels)]
        for i, e in enumerate(endcaps):
            named.append((e.negative_volume_id, f"{key}.endcaps.{i}.negative_volume_id"))
            named.append((e.positive_volume_id, f"{key}.endcaps.{i}.positive_volume_id"))
        for vol, where in named:
            if vol in seen:
                raise HepmlError(f"key '{where}': volume {vol} is already {seen[vol]}")
            seen[vol] = where
        return cls(barrels, endcaps)


# ---------------------------------------------------------------------- generation
def generate_modules(section: Mapping[str, Any]) -> Modules:
    """The modules of the validated ``tracker.detector`` section's description (mm),
    sorted by (volume_id, layer_id, module_id)."""
    return build_modules(DetectorSpec.from_section(section))


def build_modules(spec: DetectorSpec) -> Modules:
    """The modules of a :class:`DetectorSpec`, sorted by (volume_id, layer_id, module_id)."""
    parts = [_barrel(b) for b in spec.barrels]
    for e in spec.endcaps:
        parts.extend(_endcap(e))
    cat = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    order = np.lexsort((cat["module_id"], cat["layer_id"], cat["volume_id"]))
    return Modules(
        volume_id=cat["volume_id"][order].astype(np.int32),
        layer_id=cat["layer_id"][order].astype(np.int32),
        module_id=cat["module_id"][order].astype(np.int64),
        center=np.ascontiguousarray(cat["center"][order]),
        rotation=np.ascontiguousarray(cat["rotation"][order]),
        thickness=cat["thickness"][order],
        minhu=cat["minhu"][order],
        maxhu=cat["maxhu"][order],
        hv=cat["hv"][order],
        pitch_u=cat["pitch_u"][order],
        pitch_v=cat["pitch_v"][order],
    )


def _rotation(u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(n, 3, 3) with columns u, v, w (each (n, 3))."""
    return np.stack([u, v, w], axis=2)


def _part(
    volume: int,
    layer: np.ndarray,
    module: np.ndarray,
    center: np.ndarray,
    rotation: np.ndarray,
    sizes: tuple[np.ndarray | float, ...],
) -> dict[str, np.ndarray]:
    n = len(module)
    names = ("thickness", "minhu", "maxhu", "hv", "pitch_u", "pitch_v")
    out = {
        "volume_id": np.full(n, volume, dtype=np.int64),
        "layer_id": layer.astype(np.int64),
        "module_id": module.astype(np.int64),
        "center": center,
        "rotation": rotation,
    }
    for name, value in zip(names, sizes, strict=True):
        out[name] = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()
    return out


def _barrel(b: BarrelSpec) -> dict[str, np.ndarray]:
    nz = b.n_rings_z
    counts = np.asarray(b.modules_phi, dtype=np.int64)
    per_layer = nz * counts
    layer_index = np.repeat(np.arange(len(counts)), per_layer)
    n_of = counts[layer_index]
    # position within the layer: z ring i outer, phi index k inner (TrackML's module_id order)
    within = np.arange(len(layer_index)) - np.repeat(np.cumsum(per_layer) - per_layer, per_layer)
    iz, k = np.divmod(within, n_of)
    phi = -math.pi + (k + 0.5) * (TWO_PI / n_of)
    r = (
        np.asarray(b.layer_radii_mm)[layer_index]
        + np.where(iz % 2 == 0, 1.0, -1.0) * b.r_stagger_mm
    )
    z = (iz - 0.5 * (nz - 1)) * b.ring_pitch_z_mm
    center = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    alpha = phi + b.tilt_rad
    ca, sa = np.cos(alpha), np.sin(alpha)
    zero, one = np.zeros_like(ca), np.ones_like(ca)
    w = np.stack([ca, sa, zero], axis=1)
    v = np.stack([zero, zero, one], axis=1)
    u = np.stack([-sa, ca, zero], axis=1)  # v x w
    hu = b.half_width_mm
    sizes = (b.thickness_mm, hu, hu, b.half_length_mm, b.pitch_u_mm, b.pitch_v_mm)
    return _part(b.volume_id, 2 * (layer_index + 1), within + 1, center, _rotation(u, v, w), sizes)


def _disk_template(e: EndcapSpec) -> dict[str, np.ndarray]:
    """One disk's modules, ring by ring: phi, r, z shift away from the interaction
    point, sizes, and the module_id of each."""
    ring = np.concatenate([np.full(r.modules_phi, i) for i, r in enumerate(e.rings)])
    k = np.concatenate([np.arange(r.modules_phi) for r in e.rings])
    n_of = np.array([r.modules_phi for r in e.rings])[ring]
    phi = -math.pi + (k + 0.5) * (TWO_PI / n_of)

    def per_ring(name: str) -> np.ndarray:
        return np.array([getattr(r, name) for r in e.rings], dtype=np.float64)[ring]

    sub = np.where(k % 4 == 0, 1.0, np.where(k % 4 == 3, -1.0, 0.0))
    dz = (
        per_ring("z_offset_mm")
        + np.where(k % 2 == 0, 1.0, -1.0) * per_ring("phi_stagger_z_mm")
        + sub * per_ring("phi_sub_stagger_z_mm")
    )
    t = {
        "ring": ring,
        "phi": phi,
        "r": per_ring("radius_mm"),
        "dz": dz,
        "minhu": per_ring("half_width_inner_mm"),
        "maxhu": per_ring("half_width_outer_mm"),
        "hv": per_ring("half_length_mm"),
    }
    order = _grid_order(e, t) if e.numbering == "grid" else np.lexsort((ring, phi))
    module_id = np.empty(len(ring), dtype=np.int64)
    module_id[order] = np.arange(1, len(ring) + 1)
    t["module_id"] = module_id
    return t


def _grid_order(e: EndcapSpec, t: Mapping[str, np.ndarray]) -> np.ndarray:
    """Modules in TrackML's disk order: an ACTS (phi, r) surface grid, max(modules_phi)
    phi bins from -pi and one r bin per ring radius; each bin holds the module whose
    centre is closest (3D, bin centres at the disk's mean z) and modules are numbered
    as first met, phi bin by phi bin, r bins inwards-out. Modules no bin holds follow
    by centre phi."""
    n_phi = max(r.modules_phi for r in e.rings)
    phi_b = -math.pi + (np.arange(n_phi) + 0.5) * (TWO_PI / n_phi)
    r_b = np.array([r.radius_mm for r in e.rings])
    bx = (r_b[None, :] * np.cos(phi_b)[:, None]).ravel()  # phi-major, r-minor
    by = (r_b[None, :] * np.sin(phi_b)[:, None]).ravel()
    mx, my = t["r"] * np.cos(t["phi"]), t["r"] * np.sin(t["phi"])
    mz = t["dz"] - t["dz"].mean()
    d2 = (bx[:, None] - mx[None, :]) ** 2 + (by[:, None] - my[None, :]) ** 2 + mz[None, :] ** 2
    seq = np.argmin(d2, axis=1)
    _, first = np.unique(seq, return_index=True)
    met = seq[np.sort(first)]
    rest = np.setdiff1d(np.arange(len(mx)), met)
    rest = rest[np.lexsort((t["ring"][rest], t["phi"][rest]))]
    return np.concatenate([met, rest])


def _endcap(e: EndcapSpec) -> list[dict[str, np.ndarray]]:
    t = _disk_template(e)
    n, n_disks = len(t["phi"]), len(e.disk_z_mm)
    cp, sp = np.cos(t["phi"]), np.sin(t["phi"])
    zero, one = np.zeros(n), np.ones(n)
    v = np.stack([cp, sp, zero], axis=1)  # radial, outwards
    u_pos = np.stack([sp, -cp, zero], axis=1)  # -phi-hat: u x v = +z
    w_pos = np.stack([zero, zero, one], axis=1)
    rot_pos = _rotation(u_pos, v, w_pos)
    rot_neg = _rotation(-u_pos, v, -w_pos)
    x, y = t["r"] * cp, t["r"] * sp
    sizes = (e.thickness_mm, t["minhu"], t["maxhu"], t["hv"], e.pitch_u_mm, e.pitch_v_mm)
    parts = []
    for side, volume, rot in (
        (1.0, e.positive_volume_id, rot_pos),
        (-1.0, e.negative_volume_id, rot_neg),
    ):
        disk = np.repeat(np.arange(n_disks), n)
        z_abs = np.asarray(e.disk_z_mm)[disk] + np.tile(t["dz"], n_disks)
        center = np.stack([np.tile(x, n_disks), np.tile(y, n_disks), side * z_abs], axis=1)
        layer = 2 * (disk + 1) if side > 0 else 2 * (n_disks - disk)
        rotation = np.broadcast_to(rot, (n_disks, n, 3, 3)).reshape(-1, 3, 3)
        tiled = tuple(s if np.ndim(s) == 0 else np.tile(s, n_disks) for s in sizes)
        parts.append(
            _part(volume, layer, np.tile(t["module_id"], n_disks), center, rotation, tiled)
        )
    return parts
