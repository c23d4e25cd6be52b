"""Magnetic field models: a uniform solenoid field and an ideal finite solenoid.

TrackML's field is not uniform: measured on the real sample's truth (the turn of
the transverse momentum between consecutive hits of a particle, ``tpx, tpy`` at
each hit), the apparent field is 2.0 T for |z| < 500 mm, 1.8 T at |z| ~ 1250 mm,
1.3 T at ~1750 mm and 0.4-0.6 T at 2250-3000 mm, in the strip endcaps. An ideal
finite solenoid (a uniform azimuthal current sheet of radius ``radius_mm`` and
half-length ``half_length_mm``) reproduces that fall-off with its exact radial
component, so that the field is divergence-free (:class:`SolenoidField`).

Fields are evaluated at many points at once: ``field.at(x, y, z)`` returns the
arrays ``(bx, by, bz)`` in tesla.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

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
        corners = [
            t[a : nr - 1 + a, b : nz - 1 + b] for t in (br, bz) for b in (0, 1) for a in (0, 1)
        ]
        object.__setattr__(self, "_corners", np.stack([c.ravel() for c in corners]))

    def rz(self, r: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B_r, B_z) in tesla at cylindrical (r, z), bilinear in the table (clamped at its edge)."""
        br_t = self._table[0]
        az = np.abs(z)
        fr = np.minimum(np.asarray(r) / self.grid_mm, br_t.shape[0] - 1.000001)
        fz = np.minimum(az / self.grid_mm, br_t.shape[1] - 1.000001)
        i = fr.astype(np.intp)
        j = fz.astype(np.intp)
        tr = fr - i
        tz = fz - j
        w00 = (1 - tr) * (1 - tz)
        w10 = tr * (1 - tz)
        w01 = (1 - tr) * tz
        w11 = tr * tz
        c = self._corners.take(i * (br_t.shape[1] - 1) + j, axis=1)
        br = c[0] * w00 + c[1] * w10 + c[2] * w01 + c[3] * w11
        bz = c[4] * w00 + c[5] * w10 + c[6] * w01 + c[7] * w11
        return np.copysign(br, z), bz

    def bz_axis(self, z: np.ndarray) -> np.ndarray:
        bz_t = self._table[1]
        grid = np.arange(bz_t.shape[1]) * self.grid_mm
        return np.interp(np.abs(np.asarray(z, dtype=np.float64)), grid, bz_t[0])

    def at(
        self, x: np.ndarray, y: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        r = np.sqrt(x * x + y * y)
        br, bz = self.rz(r, np.asarray(z, dtype=np.float64))
        inv = br / np.maximum(r, 1e-9)
        return x * inv, y * inv, bz


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
    bx, by, bz = field.at(x, y, z)
    r = np.maximum(np.hypot(x, y), 1e-9)
    br = (bx * x + by * y) / r
    return bz - np.asarray(cot_theta) * br
