"""Magnetic field models: a uniform solenoid field and an ideal finite solenoid.

TrackML's field is not uniform: measured on the real sample's truth (the turn of
the transverse momentum between consecutive hits of a particle, ``tpx, tpy`` at
each hit), the apparent field is 2.0 T for |z| < 500 mm, 1.8 T at |z| ~ 1250 mm,
1.3 T at ~1750 mm and 0.4-0.6 T at 2250-3000 mm, in the strip endcaps. An ideal
finite solenoid (a uniform azimuthal current sheet of radius ``radius_mm`` and
half-length ``half_length_mm``) reproduces that fall-off with its exact radial
component, so that the field is divergence-free (:class:`SolenoidField`).

Fields are evaluated at many points at once: ``field.at(x, y, z)`` returns the
arrays ``(bx, by, bz)`` in tesla. Compiled code (:mod:`hepml.detector.propagation`'s
numba kernels) reads a field through :func:`field_arrays`, and evaluates it with
:func:`field_at`, the one implementation of the table lookup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numba import njit

from hepml.detector.arrays import flat_arrays
from hepml.errors import HepmlError


class Field(Protocol):
    """What propagation needs of a field."""

    @property
    def uniform(self) -> bool:
        """True when the field is the same everywhere (exact helices, no stepping)."""
        ...

    @property
    def central_T(self) -> float:
        """Bz at the origin (T)."""
        ...

    def bz_axis(self, z: np.ndarray) -> np.ndarray:
        """Bz (T) on the axis at z (mm)."""
        ...

    def at(
        self, x: np.ndarray, y: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bx, by, bz) in tesla at the points (mm)."""
        ...


@dataclass(frozen=True)
class UniformField:
    """B = (0, 0, bz_T) everywhere."""

    bz_T: float
    uniform: bool = True

    @property
    def central_T(self) -> float:
        return self.bz_T

    def at(
        self, x: np.ndarray, y: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.asarray(x)
        zero = np.zeros(x.shape)
        return zero, zero, np.full(x.shape, self.bz_T)

    def bz_axis(self, z: np.ndarray) -> np.ndarray:
        return np.full(np.shape(z), self.bz_T)


def cel(
    kc: np.ndarray, p: np.ndarray, c: float, s: np.ndarray | float, iterations: int = 40
) -> np.ndarray:
    """Bulirsch's complete elliptic integral
    C(kc, p, c, s) = int_0^{pi/2} (c cos^2 + s sin^2) / ((cos^2 + p sin^2) sqrt(cos^2 + kc^2 sin^2)) dphi
    for p > 0 (R. Bulirsch, Numer. Math. 13 (1969) 305; the vectorised form of
    Derby & Olbert, Am. J. Phys. 78 (2010) 229, appendix). Converges quadratically;
    ``iterations`` covers kc down to 1e-12.
    """
    kc = np.abs(np.asarray(kc, dtype=np.float64))
    kc = np.maximum(kc, 1e-15)
    pp = np.sqrt(np.asarray(p, dtype=np.float64))
    ss = np.asarray(s, dtype=np.float64) / pp
    cc = np.full(kc.shape, float(c))
    em = np.ones(kc.shape)
    k = kc.copy()
    f = cc
    cc = cc + ss / pp
    g = k / pp
    ss = 2.0 * (ss + f * g)
    pp = g + pp
    g = em
    em = k + em
    kk = k
    for _ in range(iterations):
        k = 2.0 * np.sqrt(kk)
        kk = k * em
        f = cc
        cc = cc + ss / pp
        g = kk / pp
        ss = 2.0 * (ss + f * g)
        pp = g + pp
        g = em
        em = k + em
        if np.all(np.abs(g - k) <= g * 1e-14):
            break
    return (np.pi / 2.0) * (ss + cc * em) / (em * (em + pp))


def ideal_solenoid(
    rho_mm: np.ndarray, z_mm: np.ndarray, radius_mm: float, half_length_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """(B_rho, B_z) of an ideal finite solenoid, in units of mu0 n I / pi.

    Derby & Olbert, Am. J. Phys. 78 (2010) 229, eqs. (3)-(4): with z_pm = z +- b,
    alpha_pm = a / sqrt(z_pm^2 + (rho + a)^2), beta_pm = z_pm / sqrt(z_pm^2 + (rho + a)^2),
    gamma = (a - rho) / (a + rho), k_pm = sqrt((z_pm^2 + (a - rho)^2) / (z_pm^2 + (a + rho)^2)):
    B_rho = alpha_+ C(k_+, 1, 1, -1) - alpha_- C(k_-, 1, 1, -1),
    B_z = a / (a + rho) [beta_+ C(k_+, gamma^2, 1, gamma) - beta_- C(k_-, gamma^2, 1, gamma)].
    """
    a, b = float(radius_mm), float(half_length_mm)
    rho = np.asarray(rho_mm, dtype=np.float64)
    z = np.asarray(z_mm, dtype=np.float64)
    gamma = (a - rho) / (a + rho)
    g2 = np.maximum(gamma * gamma, 1e-30)
    br = np.zeros(np.broadcast(rho, z).shape)
    bz = np.zeros_like(br)
    for sign, zpm in ((-1.0, z - b), (1.0, z + b)):
        d = np.sqrt(zpm * zpm + (rho + a) ** 2)
        alpha = a / d
        beta = zpm / d
        k = np.sqrt((zpm * zpm + (a - rho) ** 2) / (zpm * zpm + (rho + a) ** 2))
        br += -sign * alpha * cel(k, np.ones_like(k), 1.0, -1.0)
        bz += -sign * beta * cel(k, g2, 1.0, gamma)
    return br, bz * a / (a + rho)


@dataclass(frozen=True)
class SolenoidField:
    """The field of an ideal finite solenoid, scaled to ``central_T`` at the origin.

    Tabulated once on an (r, |z|) grid of ``grid_mm`` spacing over the tracker
    (B_z even and B_r odd in z) and interpolated bilinearly; the table reproduces
    the exact field to ~1e-4 T at 10 mm spacing inside the coil.
    """

    central_T: float
    radius_mm: float
    half_length_mm: float
    r_max_mm: float = 1200.0
    z_max_mm: float = 3200.0
    grid_mm: float = 10.0
    uniform: bool = False
    _table: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False, compare=False)
    #: (8, cells) the four corners of every table cell, B_r then B_z: one gather per lookup
    _corners: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.radius_mm > 0 and self.half_length_mm > 0):
            raise HepmlError(
                f"solenoid: radius_mm and half_length_mm must be positive, got {self.radius_mm}, {self.half_length_mm}"
            )
        nr = int(np.ceil(self.r_max_mm / self.grid_mm)) + 2
        nz = int(np.ceil(self.z_max_mm / self.grid_mm)) + 2
        r = np.arange(nr) * self.grid_mm
        z = np.arange(nz) * self.grid_mm
        rr, zz = np.meshgrid(r, z, indexing="ij")
        br, bz = ideal_solenoid(rr, zz, self.radius_mm, self.half_length_mm)
        _, bz0 = ideal_solenoid(np.zeros(1), np.zeros(1), self.radius_mm, self.half_length_mm)
        scale = self.central_T / float(bz0[0])
        br, bz = br * scale, bz * scale
        object.__setattr__(self, "_table", (br, bz))
        object.__setattr__(self, "_corners", _corners_of(br, bz))

    def rz(self, r: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B_r, B_z) in tesla at cylindrical (r, z), bilinear in the table (clamped at its edge)."""
        r, z = np.broadcast_arrays(np.asarray(r, dtype=np.float64), np.asarray(z, dtype=np.float64))
        br, bz = _table_rz_many(
            np.ascontiguousarray(r).ravel(),
            np.ascontiguousarray(z).ravel(),
            self._corners,
            self._table[0].shape[0],
            self._table[0].shape[1],
            self.grid_mm,
        )
        return br.reshape(r.shape), bz.reshape(r.shape)

    def bz_axis(self, z: np.ndarray) -> np.ndarray:
        bz_t = self._table[1]
        grid = np.arange(bz_t.shape[1]) * self.grid_mm
        return np.interp(np.abs(np.asarray(z, dtype=np.float64)), grid, bz_t[0])

    def at(
        self, x: np.ndarray, y: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bx, by, bz = np.broadcast_arrays(x, y, z)
        return _field_at_many(bx, by, bz, *field_arrays(self))


#: :func:`field_arrays`' kinds
_UNIFORM, _TABLE = 0, 1


def field_arrays(field: Field) -> tuple[int, float, np.ndarray, int, int, float]:
    """The field as compiled code reads it: ``(kind, bz_T, corners, n_r, n_z, grid_mm)``,
    kind 0 a uniform B_z = bz_T, kind 1 a table on an (r, |z|) grid of ``grid_mm`` (n_r by
    n_z points, the four corners of every cell in ``corners`` (8, cells)): a
    :class:`SolenoidField`'s own, or any other axially symmetric field's, tabulated once at
    10 mm from its ``at``."""
    if isinstance(field, UniformField):
        return _UNIFORM, float(field.bz_T), np.zeros((8, 1)), 2, 2, 1.0
    if isinstance(field, SolenoidField):
        br, bz, grid = field._table[0], field._table[1], field.grid_mm
        corners = field._corners
    else:
        br, bz, grid = _tabulated(field)
        corners = _corners_of(br, bz)
    return _TABLE, float(field.central_T), corners, br.shape[0], br.shape[1], grid


def _tabulated(field: Field, grid: float = 10.0) -> tuple[np.ndarray, np.ndarray, float]:
    """(B_r, B_z) of an axially symmetric field on :class:`SolenoidField`'s default grid
    (cached on the field object, when it has a ``__dict__``)."""
    cache = getattr(field, "__dict__", {})
    if "_tabulated" not in cache:
        cache["_tabulated"] = _tabulate(field, grid)
    return cache["_tabulated"]


def _tabulate(field: Field, grid: float) -> tuple[np.ndarray, np.ndarray, float]:
    r = np.arange(int(np.ceil(1200.0 / grid)) + 2) * grid
    z = np.arange(int(np.ceil(3200.0 / grid)) + 2) * grid
    rr, zz = np.meshgrid(r, z, indexing="ij")
    bx, _, bz = field.at(rr.ravel(), np.zeros(rr.size), zz.ravel())
    return np.asarray(bx).reshape(rr.shape), np.asarray(bz).reshape(rr.shape), grid


def _corners_of(br: np.ndarray, bz: np.ndarray) -> np.ndarray:
    """(8, cells): the four corners of every cell of (n_r, n_z) tables, B_r then B_z."""
    nr, nz = br.shape
    corners = [t[a : nr - 1 + a, b : nz - 1 + b] for t in (br, bz) for b in (0, 1) for a in (0, 1)]
    return np.stack([c.ravel() for c in corners])


@njit(cache=True, error_model="numpy")
def _table_rz(
    r: float, z: float, corners: np.ndarray, n_r: int, n_z: int, grid: float
) -> tuple[float, float]:
    """(B_r, B_z) (T) at cylindrical (r, z): bilinear in the table (B_z even, B_r odd in z),
    clamped at its edge."""
    fr = min(r / grid, n_r - 1.000001)
    fz = min(abs(z) / grid, n_z - 1.000001)
    if not (fr >= 0.0 and fz >= 0.0):  # NaN
        return np.nan, np.nan
    i = int(fr)
    j = int(fz)
    tr = fr - i
    tz = fz - j
    w00 = (1 - tr) * (1 - tz)
    w10 = tr * (1 - tz)
    w01 = (1 - tr) * tz
    w11 = tr * tz
    c = i * (n_z - 1) + j
    br = corners[0, c] * w00 + corners[1, c] * w10 + corners[2, c] * w01 + corners[3, c] * w11
    bz = corners[4, c] * w00 + corners[5, c] * w10 + corners[6, c] * w01 + corners[7, c] * w11
    return np.copysign(br, z), bz


@njit(cache=True, error_model="numpy")
def field_at(
    x: float,
    y: float,
    z: float,
    kind: int,
    bz_T: float,
    corners: np.ndarray,
    n_r: int,
    n_z: int,
    grid: float,
) -> tuple[float, float, float]:
    """(bx, by, bz) (T) at one point (mm) of a field given by :func:`field_arrays` (compiled)."""
    if kind == _UNIFORM:
        return 0.0, 0.0, bz_T
    r = np.sqrt(x * x + y * y)
    br, bz = _table_rz(r, z, corners, n_r, n_z, grid)
    inv = br / max(r, 1e-9)
    return x * inv, y * inv, bz


@njit(cache=True, error_model="numpy")
def _table_rz_many(
    r: np.ndarray, z: np.ndarray, corners: np.ndarray, n_r: int, n_z: int, grid: float
) -> tuple[np.ndarray, np.ndarray]:
    br = np.empty(len(r))
    bz = np.empty(len(r))
    for i in range(len(r)):
        br[i], bz[i] = _table_rz(r[i], z[i], corners, n_r, n_z, grid)
    return br, bz


def _field_at_many(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    kind: int,
    bz_T: float,
    corners: np.ndarray,
    n_r: int,
    n_z: int,
    grid: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shape = np.shape(x)
    xf, yf, zf = (np.ascontiguousarray(a, dtype=np.float64).ravel() for a in (x, y, z))
    bx, by, bz = _field_at_flat(
        xf,
        yf,
        zf,
        kind,
        bz_T,
        corners,
        n_r,
        n_z,
        grid,
    )
    return bx.reshape(shape), by.reshape(shape), bz.reshape(shape)


@njit(cache=True, error_model="numpy")
def _field_at_flat(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    kind: int,
    bz_T: float,
    corners: np.ndarray,
    n_r: int,
    n_z: int,
    grid: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bx = np.empty(len(x))
    by = np.empty(len(x))
    bz = np.empty(len(x))
    for i in range(len(x)):
        bx[i], by[i], bz[i] = field_at(x[i], y[i], z[i], kind, bz_T, corners, n_r, n_z, grid)
    return bx, by, bz


def field_from_config(section: dict[str, Any]) -> Field:
    """The field of the validated ``tracker.field`` config section."""
    kind = section["model"]
    if kind == "uniform":
        return UniformField(float(section["central_T"]))
    if kind == "solenoid":
        return SolenoidField(
            float(section["central_T"]),
            float(section["solenoid_radius_mm"]),
            float(section["solenoid_half_length_mm"]),
        )
    raise HepmlError(f"tracker.field.model: unknown field model '{kind}' (uniform, solenoid)")


def bending_bz(
    field: Field, x: np.ndarray, y: np.ndarray, z: np.ndarray, cot_theta: np.ndarray
) -> np.ndarray:
    """The field (T) that bends a nearly radial track of polar angle theta in the transverse
    plane at (x, y, z) mm: B_z - cot(theta) B_r, since the azimuthal force per charge is
    v_z B_r - v_r B_z. Beyond the solenoid's end B_r grows and, at |eta| ~ 2 (cot theta ~ 3.6),
    changes the bending by more than B_z's own fall."""
    shape, (xf, yf, zf, cf) = flat_arrays(x, y, z, cot_theta)
    return _bending_bz_flat(xf, yf, zf, cf, *field_arrays(field)).reshape(shape)


@njit(cache=True, error_model="numpy")
def bending_bz1(
    x: float,
    y: float,
    z: float,
    cot_theta: float,
    kind: int,
    bz_T: float,
    corners: np.ndarray,
    n_r: int,
    n_z: int,
    grid: float,
) -> float:
    """:func:`bending_bz` at one point (compiled; the one implementation)."""
    bx, by, bz = field_at(x, y, z, kind, bz_T, corners, n_r, n_z, grid)
    r = np.maximum(math.hypot(x, y), 1e-9)
    br = (bx * x + by * y) / r
    return bz - cot_theta * br


@njit(cache=True, error_model="numpy")
def _bending_bz_flat(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    cot: np.ndarray,
    kind: int,
    bz_T: float,
    corners: np.ndarray,
    n_r: int,
    n_z: int,
    grid: float,
) -> np.ndarray:
    out = np.empty(len(x))
    for i in range(len(x)):
        out[i] = bending_bz1(x[i], y[i], z[i], cot[i], kind, bz_T, corners, n_r, n_z, grid)
    return out
