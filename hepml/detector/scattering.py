"""Multiple scattering and energy loss in thin material: the Highland formula, written once.

The simulation draws scattering angles from these widths; the reconstruction's
windows and fits use the same widths as their error model.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import ArrayLike

from hepml.detector.arrays import flat_arrays
from hepml.detector.constants import PION_MASS_GEV


def beta_of(p_GeV: ArrayLike, mass_GeV: ArrayLike = PION_MASS_GEV) -> np.ndarray:
    """Velocity beta = p / sqrt(p^2 + m^2) (c = 1)."""
    p = np.asarray(p_GeV, dtype=np.float64)
    m = np.asarray(mass_GeV, dtype=np.float64)
    return p / np.sqrt(p * p + m * m)


def highland_theta0(
    p_GeV: ArrayLike,
    x_over_x0: ArrayLike,
    beta: ArrayLike | None = None,
    q: ArrayLike = 1,
) -> np.ndarray:
    """Width (rad) of the projected multiple-scattering angle, Highland formula.

    theta0 = 13.6 MeV / (beta c p) * |q| * sqrt(x/X0) * (1 + 0.038 ln(x q^2 / (X0 beta^2)))
    (PDG 2024, Passage of particles through matter, eq. 34.15; Lynch & Dahl,
    NIM B58 (1991) 6). ``x_over_x0`` is the path length through the material in
    radiation lengths (> 0); ``beta`` defaults to a charged pion of momentum ``p_GeV``.
    """
    p = np.asarray(p_GeV, dtype=np.float64)
    b = beta_of(p) if beta is None else beta
    shape, flat = flat_arrays(p, x_over_x0, b, q)
    return _highland_flat(*flat).reshape(shape)


@njit(cache=True, error_model="numpy")
def highland1(p_GeV: float, x_over_x0: float, beta: float = 1.0, q: float = 1.0) -> float:
    """:func:`highland_theta0` of one crossing (compiled; the one implementation)."""
    qa = abs(q)
    t = x_over_x0
    return (
        0.0136
        / (beta * p_GeV)
        * qa
        * math.sqrt(t)
        * (1.0 + 0.038 * math.log(t * qa * qa / (beta * beta)))
    )


@njit(cache=True, error_model="numpy")
def _highland_flat(p: np.ndarray, t: np.ndarray, b: np.ndarray, q: np.ndarray) -> np.ndarray:
    out = np.empty(len(p))
    for i in range(len(p)):
        out[i] = highland1(p[i], t[i], b[i], q[i])
    return out


def path_x0(
    x_over_x0_normal: ArrayLike, cos_incidence: ArrayLike, min_cos: float = 1e-3
) -> np.ndarray:
    """Material crossed (in X0) by a track at incidence cos(alpha) to the surface normal:
    (x/X0 at normal incidence) / |cos(alpha)|, floored at ``min_cos`` for grazing tracks."""
    shape, (x0, c) = flat_arrays(x_over_x0_normal, cos_incidence)
    return _path_x0_flat(x0, c, min_cos).reshape(shape)


@njit(cache=True, error_model="numpy")
def path_x01(x_over_x0_normal: float, cos_incidence: float, min_cos: float = 1e-3) -> float:
    """:func:`path_x0` of one crossing (compiled; the one implementation)."""
    return x_over_x0_normal / np.maximum(abs(cos_incidence), min_cos)


@njit(cache=True, error_model="numpy")
def track_x01(x_over_x0_normal: float, cot_theta: float, disk: bool) -> float:
    """:func:`track_x0` of one crossing (compiled; the one implementation)."""
    inv_sin = math.sqrt(1.0 + cot_theta * cot_theta)
    return path_x01(x_over_x0_normal, (abs(cot_theta) if disk else 1.0) / inv_sin)


@njit(cache=True, error_model="numpy")
def _path_x0_flat(x0: np.ndarray, c: np.ndarray, min_cos: float) -> np.ndarray:
    out = np.empty(len(x0))
    for i in range(len(x0)):
        out[i] = path_x01(x0[i], c[i], min_cos)
    return out


@njit(cache=True, error_model="numpy")
def _track_x0_flat(x0: np.ndarray, cot: np.ndarray, disk: np.ndarray) -> np.ndarray:
    out = np.empty(len(x0))
    for i in range(len(x0)):
        out[i] = track_x01(x0[i], cot[i], disk[i] != 0.0)
    return out


def track_x0(x_over_x0_normal: ArrayLike, cot_theta: ArrayLike, disk: ArrayLike) -> np.ndarray:
    """Material crossed (in X0) by a track from the beam line of polar angle theta
    (``cot_theta``) on a barrel layer (normal radial: / sin theta) or an endcap disk
    (normal along z: / |cos theta|): :func:`path_x0` at that incidence."""
    shape, (x0, cot, disk_f) = flat_arrays(
        x_over_x0_normal, cot_theta, np.asarray(disk, dtype=bool)
    )
    return _track_x0_flat(x0, cot, disk_f).reshape(shape)


def scatter_direction(
    dx: np.ndarray,
    dy: np.ndarray,
    dz: np.ndarray,
    theta0: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A multiple-scattering kink of the unit direction (dx, dy, dz).

    Two independent Gaussian projected angles theta_1, theta_2 ~ N(0, theta0)
    (PDG 2024 eq. 34.16) act along two unit vectors orthogonal to the direction,
    e1 = (-dy, dx, 0) / sin(theta) (azimuthal) and e2 = d x e1 (polar):
    d' = (d + tan(theta_1) e1 + tan(theta_2) e2) / sqrt(1 + tan^2 theta_1 + tan^2 theta_2).
    Returns the new unit direction.
    """
    n = len(dx)
    k = rng.standard_normal((2, n))
    k *= theta0
    t1 = np.tan(k[0])
    t2 = np.tan(k[1])
    st = np.sqrt(dx * dx + dy * dy)
    st = np.maximum(st, 1e-12)
    e1x, e1y = -dy / st, dx / st
    # e2 = d x e1 = (dy*0 - dz*e1y, dz*e1x - dx*0, dx*e1y - dy*e1x)
    e2x, e2y, e2z = -dz * e1y, dz * e1x, dx * e1y - dy * e1x
    nx = dx + t1 * e1x + t2 * e2x
    ny = dy + t1 * e1y + t2 * e2y
    nz = dz + t2 * e2z
    inv = 1.0 / np.sqrt(nx * nx + ny * ny + nz * nz)
    return nx * inv, ny * inv, nz * inv


def mean_energy_loss_GeV(x_over_x0: ArrayLike, mev_per_x0: float) -> np.ndarray:
    """Mean ionisation loss (GeV) of a minimum-ionising particle crossing ``x_over_x0``
    radiation lengths of a material losing ``mev_per_x0`` MeV per X0 (the Bethe
    plateau; the slow rise and the Landau tail are neglected)."""
    return np.asarray(x_over_x0, dtype=np.float64) * (mev_per_x0 * 1e-3)
