"""Pure formulas of the tracker simulation: spectra, helix propagation, scattering, smearing.

Every function takes arrays and returns arrays; the ones that draw random numbers
take a :class:`numpy.random.Generator`. Units: mm, GeV, T, radians.

Conventions
-----------
The solenoid field points along +z. A track is described in the transverse
plane by its position ``(x, y)``, its transverse unit direction ``(ux, uy)`` and
its signed curvature ``kappa`` (1/mm), defined by d(phi)/ds = kappa where s is
the transverse arc length and phi the direction angle: a positive charge turns
clockwise seen from +z (F = q v x B), so ``kappa = -q / R`` with
R = pT / (0.299792458e-3 |q| B) in mm. Along z the helix advances by
``ds * pz / pT`` (the dip angle is a constant of motion in a uniform field).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

#: pT [GeV] = K * |q| * B [T] * R [mm]: the relation pT = 0.299792458 |q| B R with R in metres.
GEV_PER_T_MM = 0.299792458e-3
#: Charged pion mass (GeV), used for beta in the Highland formula (PDG 2024).
PION_MASS_GEV = 0.13957039


# --------------------------------------------------------------------------- kinematics
def beta_of(p_GeV: ArrayLike, mass_GeV: float = PION_MASS_GEV) -> np.ndarray:
    """Velocity beta = p / sqrt(p^2 + m^2) (c = 1)."""
    p = np.asarray(p_GeV, dtype=np.float64)
    return p / np.sqrt(p * p + mass_GeV * mass_GeV)


# --------------------------------------------------------------------------- spectra
def minbias_pt_scale_GeV(pt_min_GeV: float, pt_median_GeV: float, tail_power: float) -> float:
    """Scale p0 of :func:`sample_minbias_pt` that puts the spectrum's median at ``pt_median_GeV``.

    The (untruncated) median of dN/dpT ~ (1 + (pT - pT_min)/p0)^-n is
    pT_min + p0 * (2^(1/(n-1)) - 1).
    """
    return (pt_median_GeV - pt_min_GeV) / (2.0 ** (1.0 / (tail_power - 1.0)) - 1.0)


def sample_minbias_pt(
    n: int,
    pt_min_GeV: float,
    pt_median_GeV: float,
    pt_max_GeV: float,
    tail_power: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Minimum-bias transverse momenta (GeV): a Hagedorn-like power law, sampled exactly.

    dN/dpT ~ (1 + (pT - pT_min)/p0)^-n on [pT_min, pT_max] (a shifted Pareto type II,
    i.e. the large-pT form pT^-n of the Hagedorn/Tsallis fits to minimum-bias
    spectra, n ~ 6-7: Hagedorn, Riv. Nuovo Cim. 6N10 (1983) 1; CMS, JHEP 02 (2010) 041).
    The cumulative F(pT) = 1 - (1 + (pT - pT_min)/p0)^-(n-1) is inverted on a
    uniform variate restricted to [0, F(pT_max)]; p0 comes from the median
    (:func:`minbias_pt_scale_GeV`).
    """
    a = tail_power - 1.0
    p0 = minbias_pt_scale_GeV(pt_min_GeV, pt_median_GeV, tail_power)
    f_max = 1.0 - (1.0 + (pt_max_GeV - pt_min_GeV) / p0) ** (-a)
    u = rng.random(n) * f_max
    return pt_min_GeV + p0 * ((1.0 - u) ** (-1.0 / a) - 1.0)


def sample_log_uniform(n: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """Values with density ~ 1/x on [lo, hi] (uniform in log x); lo == hi gives lo."""
    return lo * (hi / lo) ** rng.random(n)


# --------------------------------------------------------------------------- helix
def propagate_to_cylinder(
    x_mm: np.ndarray,
    y_mm: np.ndarray,
    ux: np.ndarray,
    uy: np.ndarray,
    kappa_per_mm: np.ndarray,
    r_mm: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact transverse helix propagation to the cylinder of radius ``r_mm`` (outgoing crossing).

    The track circle has centre c = p + n / kappa (n = (-uy, ux), the left normal)
    and radius R = 1/|kappa|. It meets the circle |x| = r where the two circles
    intersect: with d = |c|, a = (r^2 - R^2 + d^2) / (2 d) and h^2 = r^2 - a^2 the
    points are a c^ -+ h c^_perp (c^ = c/d, c^_perp = c^ rotated by +90 deg). The
    crossing on the outgoing half of the circle (radius growing along the motion)
    is the one with the sign -sign(kappa); it is the first crossing of r for a
    track starting inside r. There is none when h^2 < 0, i.e. r > d + R (for a
    track from the origin: the looper condition 2R < r). The new direction is the
    tangent kappa * (-(y - cy), x - cx); the transverse path is the arc
    s = (2 / |kappa|) asin(|kappa| L / 2) of the chord L, at most half a turn on
    the outgoing half.

    ``d^2 - R^2 = r0^2 + 2 (p . n) / kappa`` is used so that nearly straight
    tracks (R of kilometres) keep full precision.

    Returns ``(x, y, ux, uy, s_mm, reached)``; entries where ``reached`` is False
    are finite but meaningless.
    """
    x, y, k = x_mm, y_mm, kappa_per_mm
    inv_k = 1.0 / k
    cx = x - uy * inv_k
    cy = y + ux * inv_k
    d = np.sqrt(cx * cx + cy * cy)
    np.maximum(d, 1e-12, out=d)
    inv_2d = 0.5 / d
    # a = (r^2 + r0^2 + 2 (p . n) / kappa) / (2 d)
    a = (r_mm * r_mm + x * x + y * y + 2.0 * (y * ux - x * uy) * inv_k) * inv_2d
    h2 = r_mm * r_mm - a * a
    reached = h2 >= 0.0
    np.maximum(h2, 0.0, out=h2)
    # point = (a / d) c + (sign(kappa) h / d) (cy, -cx)  [= a c^ - sign(kappa) h c^_perp]
    big_a = a * (2.0 * inv_2d)
    big_h = np.copysign(np.sqrt(h2), k) * (2.0 * inv_2d)
    qx = big_a * cx + big_h * cy
    qy = big_a * cy - big_h * cx
    ux1 = (cy - qy) * k
    uy1 = (qx - cx) * k
    dx = qx - x
    dy = qy - y
    ak = np.abs(k)
    half_chord_k = 0.5 * ak * np.sqrt(dx * dx + dy * dy)
    np.minimum(half_chord_k, 1.0, out=half_chord_k)
    s = 2.0 * np.arcsin(half_chord_k) / ak
    return qx, qy, ux1, uy1, s, reached


# --------------------------------------------------------------------------- scattering
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
    radiation lengths; ``beta`` defaults to a charged pion of momentum ``p_GeV``.
    """
    p = np.asarray(p_GeV, dtype=np.float64)
    t = np.asarray(x_over_x0, dtype=np.float64)
    b = beta_of(p) if beta is None else np.asarray(beta, dtype=np.float64)
    qa = np.abs(np.asarray(q, dtype=np.float64))
    return 0.0136 / (b * p) * qa * np.sqrt(t) * (1.0 + 0.038 * np.log(t * qa * qa / (b * b)))


def path_in_layer_x0(
    x_over_x0_normal: float,
    x_mm: np.ndarray,
    y_mm: np.ndarray,
    ux: np.ndarray,
    uy: np.ndarray,
    sin_theta: np.ndarray,
    r_mm: float,
    min_cos: float = 1e-3,
) -> np.ndarray:
    """Material crossed in a cylindrical layer, in X0: (x/X0 at normal incidence) / |cos(incidence)|.

    cos(incidence) = u . n with u = (sin(theta) ux, sin(theta) uy, cos(theta)) the
    direction and n = (x, y, 0) / r the cylinder normal; it is floored at
    ``min_cos`` (grazing tracks).
    """
    cos_inc = np.abs(sin_theta * (ux * x_mm + uy * y_mm)) / r_mm
    return x_over_x0_normal / np.maximum(cos_inc, min_cos)


def scatter_direction(
    ux: np.ndarray,
    uy: np.ndarray,
    sin_theta: np.ndarray,
    cos_theta: np.ndarray,
    theta0: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Apply a multiple-scattering kink: two independent Gaussian projected angles.

    The projected angles theta_1, theta_2 ~ N(0, theta0) (PDG 2024 eq. 34.16: the
    two projections are independent and Gaussian to ~2% within the core) act in
    the planes spanned by the direction u and e1 = (-uy, ux, 0) (azimuthal) and
    e2 = (cos(theta) ux, cos(theta) uy, -sin(theta)) (polar):
    u' = (u + tan(theta_1) e1 + tan(theta_2) e2) / sqrt(1 + tan^2 theta_1 + tan^2 theta_2).
    The momentum magnitude is unchanged: energy loss (0.4-1.9 MeV per layer for
    the default material) is neglected.

    Returns the new ``(ux, uy, sin_theta, cos_theta)``.
    """
    n = len(ux)
    k = rng.standard_normal((2, n))
    k *= theta0
    t1 = np.tan(k[0])
    t2 = np.tan(k[1])
    norm = np.sqrt(1.0 + t1 * t1 + t2 * t2)
    a = sin_theta + t2 * cos_theta  # transverse component along u_T (before normalisation)
    trans = np.sqrt(a * a + t1 * t1)
    ux1 = (a * ux - t1 * uy) / trans
    uy1 = (a * uy + t1 * ux) / trans
    return ux1, uy1, trans / norm, (cos_theta - t2 * sin_theta) / norm


# --------------------------------------------------------------------------- measurement
def smear_on_cylinder(
    x_mm: np.ndarray,
    y_mm: np.ndarray,
    z_mm: np.ndarray,
    r_mm: float,
    pitch_rphi_mm: float,
    pitch_z_mm: float,
    half_length_mm: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Measured hit: the true crossing displaced along r*phi and z on the sensor's cylinder.

    The displacements are uniform in [-pitch/2, pitch/2], the residual of a
    binary readout of that pitch for a crossing uniform within the cell, so their
    RMS is pitch/sqrt(12) (e.g. Gluckstern, NIM 24 (1963) 381; PDG 2024 sec. 35.9).
    The hit stays on the cylinder of radius ``r_mm`` (a rotation by
    dphi = d(r*phi)/r, with cos and sin from their Taylor series: |dphi| < 1e-3
    here, so they are exact to double precision); z is clipped to the
    sensitive length.
    """
    n = len(x_mm)
    u = rng.random((2, n))
    u -= 0.5
    dphi = u[0] * (pitch_rphi_mm / r_mm)
    d2 = dphi * dphi
    c = 1.0 - 0.5 * d2 * (1.0 - d2 / 12.0)
    s = dphi * (1.0 - d2 / 6.0 * (1.0 - d2 / 20.0))
    xm = x_mm * c - y_mm * s
    ym = x_mm * s + y_mm * c
    zm = z_mm + u[1] * pitch_z_mm
    np.clip(zm, -half_length_mm, half_length_mm, out=zm)
    return xm, ym, zm


def noise_on_cylinder(
    n: int, r_mm: float, half_length_mm: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` points uniform on the cylinder surface (phi uniform, z uniform in +-half length)."""
    u = rng.random((2, n))
    phi = u[0] * (2.0 * np.pi)
    return r_mm * np.cos(phi), r_mm * np.sin(phi), (2.0 * u[1] - 1.0) * half_length_mm
