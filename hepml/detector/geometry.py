"""The tracker as TrackML describes it: surfaces (barrel layers, endcap disks) of planar modules.

A module is a thin planar sensor (the content of one row of TrackML's
``detectors.csv``): centre ``c`` (mm), a rotation ``R`` whose columns are the
module's local axes u, v, w in global coordinates (w is the normal), thickness,
half-sizes (a trapezoid: half-width ``minhu`` at v = -hv and ``maxhu`` at v = +hv;
half-length ``hv``), readout pitches along u and v, and the material crossed at
normal incidence (x/X0 and x/lambda_I, not in ``detectors.csv``: from the config).
A global point x has local coordinates ``R^T (x - c)``.

Modules with the same TrackML ``(volume_id, layer_id)`` form a :class:`Surface`:
a barrel layer (module normals radial) or an endcap disk (normals along z). Its
nominal radius (barrel) or z (disk) and its envelope are derived from its
modules. Navigation uses the nominal cylinders and disk planes; a crossing is
then resolved onto the module planes themselves, so a hit lies exactly on its
module, wherever the module sits (staggered, tilted, overlapping).

:class:`Detector` holds the modules, the surfaces, passive material (beam pipe)
and the field, and answers "which modules may a track crossing surface s at
(phi, z) or (phi, r) hit" through one lookup table over all surfaces
(:meth:`Detector.candidates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hepml.detector.field import Field
from hepml.errors import HepmlError

BARREL, DISK = 0, 1
TWO_PI = 2.0 * np.pi


@dataclass(frozen=True)
class Modules:
    """Planar modules, one row each (arrays of length n), sorted by (volume, layer, module).

    Lengths in mm; ``rotation[:, i, j]`` is TrackML's ``rot_{x_i}{u_j}``: global
    component i of local axis j (u, v, w).
    """

    volume_id: np.ndarray  # int32
    layer_id: np.ndarray  # int32
    module_id: np.ndarray  # int64
    center: np.ndarray  # (n, 3)
    rotation: np.ndarray  # (n, 3, 3)
    thickness: np.ndarray
    minhu: np.ndarray
    maxhu: np.ndarray
    hv: np.ndarray
    pitch_u: np.ndarray
    pitch_v: np.ndarray

    def __len__(self) -> int:
        return len(self.module_id)

    @property
    def normal(self) -> np.ndarray:
        """(n, 3) unit normals, the local w axes."""
        return self.rotation[:, :, 2]

    def half_width(self, rows: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Half-width along u at local v (trapezoid: minhu at v = -hv, maxhu at v = +hv)."""
        lo, hi, hv = self.minhu[rows], self.maxhu[rows], self.hv[rows]
        return lo + (hi - lo) * (v + hv) / (2.0 * hv)

    def to_local(
        self, rows: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local (u, v, w) of global points on modules ``rows``."""
        c = self.center[rows]
        R = self.rotation[rows]
        dx, dy, dz = x - c[:, 0], y - c[:, 1], z - c[:, 2]
        u = R[:, 0, 0] * dx + R[:, 1, 0] * dy + R[:, 2, 0] * dz
        v = R[:, 0, 1] * dx + R[:, 1, 1] * dy + R[:, 2, 1] * dz
        w = R[:, 0, 2] * dx + R[:, 1, 2] * dy + R[:, 2, 2] * dz
        return u, v, w

    def to_global(
        self, rows: np.ndarray, u: np.ndarray, v: np.ndarray, w: np.ndarray | float = 0.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Global (x, y, z) of local points on modules ``rows``."""
        c = self.center[rows]
        R = self.rotation[rows]
        x = c[:, 0] + R[:, 0, 0] * u + R[:, 0, 1] * v + R[:, 0, 2] * w
        y = c[:, 1] + R[:, 1, 0] * u + R[:, 1, 1] * v + R[:, 1, 2] * w
        z = c[:, 2] + R[:, 2, 0] * u + R[:, 2, 1] * v + R[:, 2, 2] * w
        return x, y, z

    def inside(
        self, rows: np.ndarray, u: np.ndarray, v: np.ndarray, tol: float = 0.0
    ) -> np.ndarray:
        """Whether local (u, v) lies within the module's active area (plus ``tol`` mm)."""
        return (np.abs(v) <= self.hv[rows] + tol) & (np.abs(u) <= self.half_width(rows, v) + tol)

    def area_mm2(self) -> np.ndarray:
        """Active area of each module: (minhu + maxhu) * 2 hv."""
        return (self.minhu + self.maxhu) * 2.0 * self.hv

    def corners(self) -> np.ndarray:
        """(n, 4, 3) global corners (u, v) = (-minhu, -hv), (minhu, -hv), (maxhu, hv), (-maxhu, hv)."""
        out = np.empty((len(self), 4, 3))
        rows = np.arange(len(self))
        for k, (su, sv) in enumerate(((-1, -1), (1, -1), (1, 1), (-1, 1))):
            hu = self.minhu if sv < 0 else self.maxhu
            out[:, k] = np.stack(self.to_global(rows, su * hu, sv * self.hv), axis=1)
        return out


@dataclass(frozen=True)
class Surface:
    """One TrackML (volume_id, layer_id): a barrel layer or an endcap disk of modules.

    ``r_mm`` / ``z_mm``: the nominal radius (barrel: mean of the module centres'
    radii) or z (disk: mean of the centres' z) used for navigation; the envelope
    ``r_min_mm..r_max_mm``, ``z_min_mm..z_max_mm`` bounds every module corner.
    Its modules are rows ``first:stop`` of :class:`Modules`.
    """

    index: int
    volume_id: int
    layer_id: int
    kind: int  # BARREL or DISK
    r_mm: float
    z_mm: float
    r_min_mm: float
    r_max_mm: float
    z_min_mm: float
    z_max_mm: float
    first: int
    stop: int

    @property
    def is_barrel(self) -> bool:
        return self.kind == BARREL

    @property
    def n_modules(self) -> int:
        return self.stop - self.first


@dataclass(frozen=True)
class PassiveCylinder:
    """Passive material (a beam pipe, a support tube): a cylinder of radius r, |z| <= half length."""

    name: str
    r_mm: float
    half_length_mm: float
    x_over_x0: float
    x_over_lambda: float


@dataclass(frozen=True)
class _Grid:
    """The candidate-module table of every surface, concatenated."""

    offset: np.ndarray  # (S,) first cell of each surface
    n_phi: np.ndarray  # (S,)
    n_2: np.ndarray  # (S,) cells along z (barrel) or r (disk)
    lo_2: np.ndarray  # (S,) lower edge along z or r
    d_2: np.ndarray  # (S,) cell size along z or r
    table: np.ndarray  # (cells, K) module rows, -1 padded


#: In-plane margin (mm) by which the lookup table widens each module.
GRID_MARGIN_MM = 1.0


@dataclass(frozen=True)
class Detector:
    """Modules, surfaces, material and field: the one description of the tracker.

    ``x_over_x0`` / ``x_over_lambda`` are each module's material at normal
    incidence, in radiation and nuclear interaction lengths.
    """

    modules: Modules
    surfaces: tuple[Surface, ...]
    x_over_x0: np.ndarray
    x_over_lambda: np.ndarray
    passive: tuple[PassiveCylinder, ...]
    field: Field
    source: str = "generated"

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        modules: Modules,
        x_over_x0: np.ndarray,
        x_over_lambda: np.ndarray,
        passive: tuple[PassiveCylinder, ...],
        field: Field,
        source: str,
    ) -> Detector:
        """Group sorted modules into surfaces; a surface is a barrel layer when its
        module normals are radial, else a disk."""
        key = modules.volume_id.astype(np.int64) * 1000 + modules.layer_id
        if np.any(np.diff(key) < 0):
            raise HepmlError(f"{source}: modules must be sorted by (volume_id, layer_id)")
        starts = np.flatnonzero(np.r_[True, np.diff(key) != 0])
        stops = np.r_[starts[1:], len(key)]
        corners = modules.corners()
        r_corner = np.hypot(corners[..., 0], corners[..., 1])
        z_corner = corners[..., 2]
        # the middle of each module's v = -hv edge: a disk module's innermost point
        rows = np.arange(len(modules))
        ex, ey, _ = modules.to_global(rows, np.zeros(len(rows)), -modules.hv)
        r_edge = np.hypot(ex, ey)
        c = modules.center
        surfaces = []
        for i, (a, b) in enumerate(zip(starts, stops, strict=True)):
            nz = np.abs(modules.normal[a:b, 2])
            kind = DISK if np.median(nz) > 0.5 else BARREL
            rc = np.hypot(c[a:b, 0], c[a:b, 1])
            surfaces.append(
                Surface(
                    index=i,
                    volume_id=int(modules.volume_id[a]),
                    layer_id=int(modules.layer_id[a]),
                    kind=kind,
                    r_mm=float(rc.mean())
                    if kind == BARREL
                    else 0.5 * float(r_corner[a:b].min() + r_corner[a:b].max()),
                    z_mm=float(c[a:b, 2].mean()) if kind == DISK else 0.0,
                    r_min_mm=float(
                        min(
                            r_corner[a:b].min(),
                            r_edge[a:b].min(),
                            _plane_distance(modules, int(a), int(b)).min(),
                        )
                    ),
                    r_max_mm=float(r_corner[a:b].max()),
                    z_min_mm=float(z_corner[a:b].min()),
                    z_max_mm=float(z_corner[a:b].max()),
                    first=int(a),
                    stop=int(b),
                )
            )
        return cls(modules, tuple(surfaces), x_over_x0, x_over_lambda, passive, field, source)

    # ------------------------------------------------------------------ lookups
    def surface_of(self, volume_id: np.ndarray, layer_id: np.ndarray) -> np.ndarray:
        """Surface index of TrackML (volume_id, layer_id) pairs; -1 where unknown."""
        keys = np.array([s.volume_id * 1000 + s.layer_id for s in self.surfaces], dtype=np.int64)
        q = np.asarray(volume_id, dtype=np.int64) * 1000 + np.asarray(layer_id, dtype=np.int64)
        pos = np.clip(np.searchsorted(keys, q), 0, len(keys) - 1)
        return np.where(keys[pos] == q, pos, -1).astype(np.int32)

    def module_row(
        self, volume_id: np.ndarray, layer_id: np.ndarray, module_id: np.ndarray
    ) -> np.ndarray:
        """Row in :attr:`modules` of TrackML (volume, layer, module) ids; -1 where unknown."""
        m = self.modules
        keys = self._module_keys
        q = _module_key(np.asarray(volume_id), np.asarray(layer_id), np.asarray(module_id))
        pos = np.clip(np.searchsorted(keys, q), 0, len(keys) - 1)
        return np.where(keys[pos] == q, pos, -1).astype(np.int64) if len(m) else pos

    @cached_property
    def _module_keys(self) -> np.ndarray:
        m = self.modules
        return _module_key(m.volume_id, m.layer_id, m.module_id)

    @cached_property
    def module_surface(self) -> np.ndarray:
        """(n,) surface index of every module."""
        out = np.empty(len(self.modules), dtype=np.int32)
        for s in self.surfaces:
            out[s.first : s.stop] = s.index
        return out

    @cached_property
    def barrel_surfaces(self) -> np.ndarray:
        """Indices of the barrel surfaces, by increasing radius."""
        idx = [s.index for s in self.surfaces if s.is_barrel]
        return np.array(sorted(idx, key=lambda i: self.surfaces[i].r_mm), dtype=np.int32)

    @cached_property
    def disk_surfaces(self) -> np.ndarray:
        """Indices of the disk surfaces, by increasing z."""
        idx = [s.index for s in self.surfaces if not s.is_barrel]
        return np.array(sorted(idx, key=lambda i: self.surfaces[i].z_mm), dtype=np.int32)

    @cached_property
    def world(self) -> tuple[float, float]:
        """(r_max, |z|_max) of the tracker: beyond, a particle has left it."""
        return (
            max(s.r_max_mm for s in self.surfaces) + 1.0,
            max(max(abs(s.z_min_mm), abs(s.z_max_mm)) for s in self.surfaces) + 1.0,
        )

    @cached_property
    def grid(self) -> _Grid:
        return _build_grid(self)

    def candidates(
        self, surface: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray
    ) -> np.ndarray:
        """(Q, K) rows of the modules of ``surface`` that may hold the point (x, y, z), -1 padded.

        The point is looked up in (phi, z) on barrel layers and (phi, r) on disks;
        every module within :data:`GRID_MARGIN_MM` of the point's cell is returned.
        """
        g = self.grid
        s = np.asarray(surface, dtype=np.intp)
        is_disk = self._is_disk[s]
        phi = np.arctan2(y, x)
        second = np.where(is_disk, np.hypot(x, y), z)
        n_phi = g.n_phi[s]
        iphi = ((phi + np.pi) * (n_phi / TWO_PI)).astype(np.intp)
        iphi = np.minimum(iphi, n_phi - 1)
        i2 = np.floor((second - g.lo_2[s]) / g.d_2[s]).astype(np.intp)
        i2 = np.clip(i2, 0, g.n_2[s] - 1)
        return g.table[g.offset[s] + iphi * g.n_2[s] + i2]

    @cached_property
    def _is_disk(self) -> np.ndarray:
        return np.array([not s.is_barrel for s in self.surfaces])

    def describe(self) -> str:
        """One line per surface: the summary a physicist checks first."""
        lines = []
        for s in self.surfaces:
            where = (
                f"r {s.r_mm:8.2f} mm, |z| <= {max(abs(s.z_min_mm), abs(s.z_max_mm)):7.1f}"
                if s.is_barrel
                else f"z {s.z_mm:8.1f} mm, r {s.r_min_mm:6.1f}..{s.r_max_mm:6.1f}"
            )
            kind = "barrel" if s.is_barrel else "disk  "
            lines.append(
                f"volume {s.volume_id:2d} layer {s.layer_id:2d} {kind} {s.n_modules:5d} modules, {where}"
            )
        return "\n".join(lines)


def _module_key(volume_id: np.ndarray, layer_id: np.ndarray, module_id: np.ndarray) -> np.ndarray:
    return (
        np.asarray(volume_id, dtype=np.int64) * 1_000_000_000
        + np.asarray(layer_id, dtype=np.int64) * 1_000_000
        + np.asarray(module_id, dtype=np.int64)
    )


def _plane_distance(modules: Modules, a: int, b: int) -> np.ndarray:
    """Distance of each module plane from the z axis along its normal (barrel: its closest radius)."""
    n = modules.normal[a:b]
    c = modules.center[a:b]
    nt = np.hypot(n[:, 0], n[:, 1])
    d = np.abs(c[:, 0] * n[:, 0] + c[:, 1] * n[:, 1]) / np.maximum(nt, 1e-12)
    return np.where(nt > 0.5, d, np.hypot(c[:, 0], c[:, 1]))


def _build_grid(det: Detector) -> _Grid:
    """Per surface, a (phi, z) or (phi, r) table listing every module whose area,
    widened by :data:`GRID_MARGIN_MM`, touches the cell. Cells are about half a
    module wide, so a cell lists the module under it and its overlapping neighbours."""
    m = det.modules
    n_s = len(det.surfaces)
    offset = np.zeros(n_s, dtype=np.intp)
    n_phi = np.zeros(n_s, dtype=np.intp)
    n_2 = np.zeros(n_s, dtype=np.intp)
    lo_2 = np.zeros(n_s)
    d_2 = np.zeros(n_s)
    # sample each module's widened area on a 9 x 9 grid of local points
    t = np.linspace(-1.0, 1.0, 9)
    grid_u, grid_v = np.meshgrid(t, t, indexing="ij")
    tu, tv = grid_u.ravel(), grid_v.ravel()
    cells_all, mods_all = [], []
    at = 0
    for s in det.surfaces:
        rows = np.arange(s.first, s.stop)
        hu_max = np.maximum(m.minhu[rows], m.maxhu[rows]) + GRID_MARGIN_MM
        hv = m.hv[rows] + GRID_MARGIN_MM
        r_ref = s.r_mm if s.is_barrel else max(s.r_min_mm, 1.0)
        width = 2.0 * float(np.min(np.minimum(m.minhu[rows], m.maxhu[rows])))
        n_phi[s.index] = max(8, int(np.ceil(TWO_PI * r_ref / (0.5 * width))))
        if s.is_barrel:
            lo, hi = s.z_min_mm - 1.0, s.z_max_mm + 1.0
        else:
            lo, hi = s.r_min_mm - 1.0, s.r_max_mm + 1.0
        step = float(np.min(m.hv[rows]))  # half a module length
        n_2[s.index] = max(1, int(np.ceil((hi - lo) / step)))
        lo_2[s.index], d_2[s.index] = lo, (hi - lo) / n_2[s.index]
        offset[s.index] = at
        at += n_phi[s.index] * n_2[s.index]
        rr = np.repeat(rows, len(tu))
        u = (hu_max[:, None] * tu[None, :]).ravel()
        v = (hv[:, None] * tv[None, :]).ravel()
        x, y, z = m.to_global(rr, u, v)
        phi = np.arctan2(y, x)
        second = z if s.is_barrel else np.hypot(x, y)
        ip = np.minimum(
            ((phi + np.pi) * (n_phi[s.index] / TWO_PI)).astype(np.intp), n_phi[s.index] - 1
        )
        i2 = np.clip(np.floor((second - lo) / d_2[s.index]).astype(np.intp), 0, n_2[s.index] - 1)
        cells_all.append(offset[s.index] + ip * n_2[s.index] + i2)
        mods_all.append(rr)
    cells = np.concatenate(cells_all)
    mods = np.concatenate(mods_all)
    pair = np.unique(cells.astype(np.int64) * (len(m) + 1) + mods)
    cells, mods = pair // (len(m) + 1), pair % (len(m) + 1)
    counts = np.bincount(cells, minlength=at)
    k = int(counts.max()) if len(counts) else 1
    table = np.full((at, k), -1, dtype=np.int64)
    start = np.cumsum(counts) - counts
    slot = np.arange(len(cells)) - start[cells]
    table[cells, slot] = mods
    return _Grid(offset, n_phi, n_2, lo_2, d_2, table)
