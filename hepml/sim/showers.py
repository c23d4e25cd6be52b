"""Shower physics of the sampling calorimeter: pure numpy functions.

Every function takes arrays and returns arrays; the ones that draw random numbers
take a :class:`numpy.random.Generator`. Units: GeV for energies (MeV where a name
says so), cm for lengths, radiation lengths X0 and nuclear interaction lengths
lambda_I for depths, radians for angles.

Electromagnetic showers follow GFlash, G. Grindhammer and S. Peters, "The
parameterized simulation of electromagnetic showers in homogeneous and sampling
calorimeters", hep-ex/0001020 (below "GP"): Sec. 2 (ansatz dE = E f(t) dt f(r) dr
f(phi) dphi), Sec. 3 (longitudinal profiles, homogeneous media then the sampling
corrections), Sec. 4 (radial profiles), Sec. 5 (fluctuations through energy
spots) and Sec. 6 (effective medium of a sampling calorimeter). The numerical
coefficients are those of GP as coded in Geant4's GFlash
(``GVFlashHomoShowerTuning.hh``, ``GFlashSamplingShowerTuning.hh``), which are
quoted next to each formula.

Hadronic showers (charged pions) use: an interaction depth exponential in lambda_I;
the mean electromagnetic fraction of Groom (NIM A 572 (2007) 633; PDG Review
"Calorimetry", 2024, Eq. 34.x ``f_em = 1 - (E/E0)^(m-1)``) with beta-distributed
event-by-event fluctuations; the hadronic longitudinal profile of Bock, Hansl-Kozanecka
and Shah (NIM 186 (1981) 533); and a two-component radial profile of the GFlash
form (Grindhammer, Rudowicz and Peters, NIM A 290 (1990) 469) with widths in
lambda_I. A pion that does not interact crosses the calorimeter as a minimum-ionising
particle with Landau (Moyal) fluctuations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Scale energy of multiple scattering, E_s = m_e sqrt(4 pi / alpha) (MeV), GP Sec. 6.
ES_MEV = 21.2
#: Neutral pion mass (GeV), PDG 2024.
PI0_MASS_GEV = 0.1349768
#: Mean free path of a photon before pair conversion, 9/7 X0 (PDG "Passage of
#: particles through matter", Eq. 34.32; GP Sec. 2 starts photon showers there).
PHOTON_CONVERSION_X0 = 9.0 / 7.0
#: Mean of the standard Moyal distribution (Euler gamma + ln 2).
MOYAL_MEAN = 0.5772156649 + math.log(2.0)


# --------------------------------------------------------------------------- materials
@dataclass(frozen=True)
class Material:
    """One material of the sampling structure; properties as in the PDG tables."""

    name: str
    Z: float
    A: float  # g/mol
    density_g_cm3: float
    x0_g_cm2: float  # radiation length
    lambda_g_cm2: float  # nuclear interaction length
    dedx_MeV_cm2_g: float  # minimum ionisation
    thickness_mm: float  # per sampling cell

    @property
    def critical_energy_MeV(self) -> float:
        """E_c = 2.66 MeV (X0 Z / A)^1.1 with X0 in g/cm^2 (GP Sec. 6; Geant4 GFlash)."""
        return 2.66 * (self.x0_g_cm2 * self.Z / self.A) ** 1.1

    @property
    def areal_density_g_cm2(self) -> float:
        return self.density_g_cm3 * self.thickness_mm / 10.0


@dataclass(frozen=True)
class SamplingMedium:
    """Effective quantities of a passive/active sampling structure (GP Sec. 6).

    ``x0_cm``, ``rm_cm``, ``lambda_cm``: effective radiation length, Moliere
    radius and nuclear interaction length; ``ec_MeV`` the effective critical
    energy; ``fs`` the sampling frequency F_S = X0_eff / (d_a + d_p); ``ehat`` the
    e/mip ratio 1 / (1 + 0.007 (Z_p - Z_a)); ``mip_GeV_per_X0`` the
    electromagnetic-scale signal of a minimum-ionising particle per X0 of path.
    """

    z_eff: float
    density_g_cm3: float
    x0_cm: float
    rm_cm: float
    ec_MeV: float
    lambda_cm: float
    fs: float
    ehat: float
    mip_GeV_per_X0: float

    @property
    def x0_per_lambda(self) -> float:
        """Radiation lengths in one interaction length."""
        return self.lambda_cm / self.x0_cm


def sampling_medium(passive: Material, active: Material) -> SamplingMedium:
    """Effective medium of a two-material sampling calorimeter (GP Sec. 6).

    With mass fractions w_i = d_i rho_i / sum_j d_j rho_j:
    Z_eff = sum w_i Z_i; 1/X0_eff = sum w_i / X0_i (g/cm^2, likewise 1/lambda_eff);
    E_c,eff = X0_eff sum w_i E_c,i / X0_i; R_M,eff = E_s X0_eff / E_c,eff;
    F_S = X0_eff / (d_a + d_p); e_hat = e/mip = 1 / (1 + 0.007 (Z_p - Z_a)).
    The minimum-ionising signal at the electromagnetic scale is the mean dE/dx
    of the cell divided by e_hat (the calibration is made with electrons).
    """
    m_p, m_a = passive.areal_density_g_cm2, active.areal_density_g_cm2
    w_p, w_a = m_p / (m_p + m_a), m_a / (m_p + m_a)
    thick_cm = (passive.thickness_mm + active.thickness_mm) / 10.0
    rho = (m_p + m_a) / thick_cm
    x0_g = 1.0 / (w_p / passive.x0_g_cm2 + w_a / active.x0_g_cm2)
    lam_g = 1.0 / (w_p / passive.lambda_g_cm2 + w_a / active.lambda_g_cm2)
    ec = x0_g * (
        w_p * passive.critical_energy_MeV / passive.x0_g_cm2
        + w_a * active.critical_energy_MeV / active.x0_g_cm2
    )
    rm_g = ES_MEV * x0_g / ec
    ehat = 1.0 / (1.0 + 0.007 * (passive.Z - active.Z))
    dedx_MeV_per_g_cm2 = w_p * passive.dedx_MeV_cm2_g + w_a * active.dedx_MeV_cm2_g
    return SamplingMedium(
        z_eff=w_p * passive.Z + w_a * active.Z,
        density_g_cm3=rho,
        x0_cm=x0_g / rho,
        rm_cm=rm_g / rho,
        ec_MeV=ec,
        lambda_cm=lam_g / rho,
        fs=(x0_g / rho) / thick_cm,
        ehat=ehat,
        mip_GeV_per_X0=dedx_MeV_per_g_cm2 * x0_g / ehat / 1000.0,
    )


# --------------------------------------------------------------------------- GFlash longitudinal
@dataclass(frozen=True)
class LongitudinalProfile:
    """Per-shower Gamma profiles: energy (sampling T, alpha) and spot (homogeneous-based) ones.

    ``t_max`` and ``alpha`` (X0, dimensionless) give the energy profile
    f(t) = (beta t)^(alpha-1) beta exp(-beta t) / Gamma(alpha), beta = (alpha - 1) / T;
    ``t_spot``/``alpha_spot`` the spot-number profile (GP Sec. 5);
    ``alpha_mean`` = exp<ln alpha> enters the radial variable tau.
    """

    t_max: np.ndarray
    alpha: np.ndarray
    t_spot: np.ndarray
    alpha_spot: np.ndarray
    alpha_mean: np.ndarray

    @property
    def beta(self) -> np.ndarray:
        return (self.alpha - 1.0) / self.t_max

    @property
    def beta_spot(self) -> np.ndarray:
        return (self.alpha_spot - 1.0) / self.t_spot


def _inverse_clipped(denom: np.ndarray, cap: float = 0.5) -> np.ndarray:
    """1/denom, at most ``cap`` and ``cap`` where denom <= 1/cap (as Geant4 guards low y)."""
    return np.where(denom > 1.0 / cap, 1.0 / np.maximum(denom, 1e-12), cap)


def gflash_longitudinal(
    energy_GeV: np.ndarray, medium: SamplingMedium, rng: np.random.Generator
) -> LongitudinalProfile:
    """Fluctuated, correlated longitudinal parameters of electron showers (GP Sec. 3).

    Homogeneous media (GP Sec. 3.1), y = E / E_c:
      <ln T_hom> = ln(ln y - 0.812),  <ln alpha_hom> = ln(0.81 + (0.458 + 2.26/Z) ln y),
      sigma(ln T_hom) = (-1.4 + 1.26 ln y)^-1, sigma(ln alpha_hom) = (-0.58 + 0.86 ln y)^-1,
      rho(ln T_hom, ln alpha_hom) = 0.705 - 0.023 ln y.
    Sampling corrections (GP Sec. 3.2):
      <ln T_sam> = ln(exp<ln T_hom> - 0.55 F_S^-1 - 0.69 (1 - e_hat)),
      <ln alpha_sam> = ln(exp<ln alpha_hom> - 0.476 F_S^-1),
      sigma(ln T_sam) = (-2.5 + 1.25 ln y)^-1, sigma(ln alpha_sam) = (-0.82 + 0.79 ln y)^-1,
      rho = 0.784 - 0.023 ln y.
    Correlated pairs (GP Sec. 3.1): with z1, z2 ~ N(0, 1),
      ln T = <ln T> + sigma_T (sqrt((1+rho)/2) z1 + sqrt((1-rho)/2) z2),
      ln alpha = <ln alpha> + sigma_a (sqrt((1+rho)/2) z1 - sqrt((1-rho)/2) z2).
    Spot profile (GP Sec. 5, sampling tuning): T_spot = T_hom (0.813 + 0.0019 Z),
    alpha_spot = alpha_hom (0.844 + 0.0026 Z). Guards as in Geant4: means floored
    at 0.1, sigmas capped at 0.5, T >= 1 X0 and alpha >= 1.1 (sub-GeV showers).
    """
    e = np.asarray(energy_GeV, dtype=np.float64)
    ln_y = np.log(np.maximum(e * 1000.0 / medium.ec_MeV, 1.0 + 1e-9))
    z = medium.z_eff
    mean_t_hom = np.maximum(ln_y - 0.812, 0.1)
    mean_a_hom = np.maximum(0.81 + (0.458 + 2.26 / z) * ln_y, 0.1)
    mean_ln_t = np.log(np.maximum(mean_t_hom - 0.55 / medium.fs - 0.69 * (1.0 - medium.ehat), 0.1))
    mean_ln_a = np.log(np.maximum(mean_a_hom - 0.476 / medium.fs, 1.0 + 1e-3))
    sig_t_hom = _inverse_clipped(-1.4 + 1.26 * ln_y)
    sig_a_hom = _inverse_clipped(-0.58 + 0.86 * ln_y)
    rho_hom = np.clip(0.705 - 0.023 * ln_y, -1.0, 1.0)
    sig_t = _inverse_clipped(-2.5 + 1.25 * ln_y)
    sig_a = _inverse_clipped(-0.82 + 0.79 * ln_y)
    rho = np.clip(0.784 - 0.023 * ln_y, -1.0, 1.0)
    z1 = rng.standard_normal(e.shape)
    z2 = rng.standard_normal(e.shape)
    c1, c2 = np.sqrt((1.0 + rho) / 2.0), np.sqrt((1.0 - rho) / 2.0)
    c1h, c2h = np.sqrt((1.0 + rho_hom) / 2.0), np.sqrt((1.0 - rho_hom) / 2.0)
    t_max = np.maximum(np.exp(mean_ln_t + sig_t * (c1 * z1 + c2 * z2)), 1.0)
    alpha = np.maximum(np.exp(mean_ln_a + sig_a * (c1 * z1 - c2 * z2)), 1.1)
    t_hom = np.maximum(np.exp(np.log(mean_t_hom) + sig_t_hom * (c1h * z1 + c2h * z2)), 1.0)
    a_hom = np.maximum(np.exp(np.log(mean_a_hom) + sig_a_hom * (c1h * z1 - c2h * z2)), 1.1)
    t_spot = np.maximum(t_hom * (0.813 + 0.0019 * z), 0.5)
    a_spot = np.maximum(a_hom * (0.844 + 0.0026 * z), 1.1)
    return LongitudinalProfile(
        t_max=t_max, alpha=alpha, t_spot=t_spot, alpha_spot=a_spot, alpha_mean=np.exp(mean_ln_a)
    )


def gflash_spot_count(
    energy_GeV: np.ndarray, sampling_term: float, spot_scale: float = 1.0
) -> np.ndarray:
    """Number of energy spots of a shower in a sampling calorimeter (GP Sec. 5).

    N_spot = 10.3 / c_S * (E/GeV)^0.959, with c_S the sampling term (GeV^1/2);
    ``spot_scale`` multiplies it (1 reproduces GP); at least one spot.
    """
    e = np.asarray(energy_GeV, dtype=np.float64)
    n = spot_scale * 10.3 / sampling_term * np.power(np.maximum(e, 0.0), 0.959)
    return np.maximum(np.ceil(n), 1).astype(np.int64)


def gamma_log_pdf(
    t: np.ndarray, alpha: np.ndarray, beta: np.ndarray, lgamma_alpha: np.ndarray
) -> np.ndarray:
    """log of the Gamma profile f(t) = (beta t)^(alpha-1) beta exp(-beta t) / Gamma(alpha) (GP Eq. of Sec. 3)."""
    return (alpha - 1.0) * np.log(beta * t) + np.log(beta) - beta * t - lgamma_alpha


# --------------------------------------------------------------------------- GFlash radial
def gflash_radial(
    tau: np.ndarray, energy_GeV: np.ndarray, medium: SamplingMedium
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core radius R_C, tail radius R_T (Moliere radii) and core weight p at tau (GP Sec. 4).

    tau = t / T is the depth in units of the shower maximum. Homogeneous media:
      R_C = z1 + z2 tau, z1 = 0.0251 + 0.00319 ln E, z2 = 0.1162 - 0.000381 Z;
      R_T = k1 (exp(k3 (tau - k2)) + exp(k4 (tau - k2))), k1 = 0.659 - 0.00309 Z,
            k2 = 0.645, k3 = -2.59, k4 = 0.3585 + 0.0412 ln E;
      p = p1 exp((p2 - tau)/p3 - exp((p2 - tau)/p3)), p1 = 2.632 - 0.00094 Z,
            p2 = 0.401 + 0.00187 Z, p3 = 1.313 - 0.0686 ln E.
    Sampling corrections:
      R_C += -0.0203 (1 - e_hat) + 0.0397 F_S^-1 exp(-tau);
      R_T += -0.14 (1 - e_hat) - 0.495 F_S^-1 exp(-tau);
      p  += (1 - e_hat) (0.348 - 0.642 F_S^-1 exp(-(tau - 1)^2)).
    The radial density of each component is f(r) = 2 r R^2 / (r^2 + R^2)^2.
    Radii are kept within [1e-3, 100] R_M (tau capped at 50).
    """
    ln_e = np.log(np.maximum(np.asarray(energy_GeV, dtype=np.float64), 1e-3))
    tau = np.minimum(tau, 50.0)  # far behind any calorimeter; keeps exp() finite
    z = medium.z_eff
    one_m_e = 1.0 - medium.ehat
    inv_fs = 1.0 / medium.fs
    r_core = (0.0251 + 0.00319 * ln_e) + (0.1162 - 0.000381 * z) * tau
    k1, k2, k3 = 0.659 - 0.00309 * z, 0.645, -2.59
    k4 = 0.3585 + 0.0412 * ln_e
    r_tail = k1 * (np.exp(k3 * (tau - k2)) + np.exp(k4 * (tau - k2)))
    p1, p2 = 2.632 - 0.00094 * z, 0.401 + 0.00187 * z
    p3 = 1.313 - 0.0686 * ln_e
    x = (p2 - tau) / p3
    p = p1 * np.exp(x - np.exp(x))
    r_core = r_core - 0.0203 * one_m_e + 0.0397 * inv_fs * np.exp(-tau)
    r_tail = r_tail - 0.14 * one_m_e - 0.495 * inv_fs * np.exp(-tau)
    p = p + one_m_e * (0.348 - 0.642 * inv_fs * np.exp(-((tau - 1.0) ** 2)))
    return np.clip(r_core, 1e-3, 100.0), np.clip(r_tail, 2e-3, 100.0), np.clip(p, 0.0, 1.0)


def two_component_radius(
    r_core: np.ndarray,
    r_tail: np.ndarray,
    p_core: np.ndarray | np.floating | float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Radii drawn from f(r) = p f_C(r) + (1 - p) f_T(r), f_R(r) = 2 r R^2 / (r^2 + R^2)^2.

    Inverting the cumulative r^2 / (r^2 + R^2): r = R sqrt(u / (1 - u)), u ~ U(0, 1)
    (GP Sec. 4); the component is chosen with probability p. Same unit as R.
    """
    n = np.shape(r_core)
    pick = rng.random(n, dtype=np.float32) < p_core
    u = rng.random(n, dtype=np.float32)
    u = np.minimum(u, np.float32(1.0 - 1e-6))
    return np.where(pick, r_core, r_tail) * np.sqrt(u / (1.0 - u))


# --------------------------------------------------------------------------- spots
@dataclass(frozen=True)
class Spots:
    """Energy spots of a set of showers: one entry per spot.

    ``item``: index of the shower (or sub-shower) the spot belongs to; ``depth_X0``:
    depth along the shower axis from the shower's own start; ``dx_cm``/``dy_cm``:
    transverse offset from the axis (x along the polar direction e_theta, y along
    e_phi); ``e_GeV``: the spot's energy.
    """

    item: np.ndarray
    depth_X0: np.ndarray
    dx_cm: np.ndarray
    dy_cm: np.ndarray
    e_GeV: np.ndarray


def em_spots(
    energy_GeV: np.ndarray,
    medium: SamplingMedium,
    sampling_term: float,
    rng: np.random.Generator,
    spot_scale: float = 1.0,
) -> Spots:
    """GFlash energy spots of electromagnetic showers, vectorised over showers (GP Secs. 3-5).

    Per shower: correlated (T, alpha) from :func:`gflash_longitudinal`, N spots from
    :func:`gflash_spot_count`. The spot depths are drawn from the spot-number
    profile Gamma(alpha_spot, beta_spot) and each spot carries the energy
    E f_E(t) / (N f_N(t)), so that the number of spots per depth interval follows
    the spot profile and the energy the energy profile (GP Sec. 5); the weights of
    one shower are normalised to sum to E exactly. Radii come from
    :func:`gflash_radial` at tau = t/T with T rescaled as Geant4's ComputeTau
    (tau = t (alpha-1)/(alpha T) * <alpha>/(<alpha>-1)), azimuths are uniform.
    Depths in X0 from the shower start, offsets in cm.
    """
    e = np.asarray(energy_GeV, dtype=np.float64)
    prof = gflash_longitudinal(e, medium, rng)
    n_spots = gflash_spot_count(e, sampling_term, spot_scale)
    item = np.repeat(np.arange(e.size), n_spots)
    a_s = prof.alpha_spot.astype(np.float32)[item]
    t = rng.standard_gamma(a_s, dtype=np.float32) / prof.beta_spot.astype(np.float32)[item]
    t = np.maximum(t, np.float32(1e-4))
    lg_e = np.array([math.lgamma(a) for a in prof.alpha])
    lg_s = np.array([math.lgamma(a) for a in prof.alpha_spot])
    log_w = gamma_log_pdf(t, prof.alpha[item], prof.beta[item], lg_e[item]) - gamma_log_pdf(
        t, prof.alpha_spot[item], prof.beta_spot[item], lg_s[item]
    )
    w = np.exp(np.minimum(log_w, 30.0))
    norm = np.bincount(item, weights=w, minlength=e.size)
    spot_e = (w * (e / np.maximum(norm, 1e-300))[item]).astype(np.float32)
    a_mean = prof.alpha_mean
    tau_scale = (prof.alpha - 1.0) / (prof.alpha * prof.t_max) * a_mean / (a_mean - 1.0)
    tau = t * tau_scale.astype(np.float32)[item]
    r_core, r_tail, p = gflash_radial(tau, e[item], medium)
    r_cm = two_component_radius(
        r_core.astype(np.float32), r_tail.astype(np.float32), p.astype(np.float32), rng
    ) * np.float32(medium.rm_cm)
    psi = rng.random(item.size, dtype=np.float32) * np.float32(2.0 * np.pi)
    return Spots(
        item=item, depth_X0=t, dx_cm=r_cm * np.cos(psi), dy_cm=r_cm * np.sin(psi), e_GeV=spot_e
    )


# --------------------------------------------------------------------------- kinematics
def direction(eta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors n, e_theta, e_phi (each (N, 3)) of directions (eta, phi)."""
    theta = 2.0 * np.arctan(np.exp(-np.asarray(eta, dtype=np.float64)))
    st, ct = np.sin(theta), np.cos(theta)
    sp, cp = np.sin(phi), np.cos(phi)
    n = np.stack([st * cp, st * sp, ct], axis=-1)
    e_t = np.stack([ct * cp, ct * sp, -st], axis=-1)
    e_p = np.stack([-sp, cp, np.zeros_like(sp)], axis=-1)
    return n, e_t, e_p


def eta_phi_of(v: np.ndarray, phi_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eta, phi) of vectors v (N, 3); phi unwrapped to lie within pi of ``phi_ref``."""
    pt = np.hypot(v[:, 0], v[:, 1])
    eta = np.arcsinh(v[:, 2] / pt)
    dphi = np.arctan2(v[:, 1], v[:, 0]) - phi_ref
    dphi = (dphi + np.pi) % (2.0 * np.pi) - np.pi
    return eta, phi_ref + dphi


def opening_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between vectors a and b (N, 3), atan2(|a x b|, a.b) (accurate at small angles)."""
    return np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.einsum("ij,ij->i", a, b))


@dataclass(frozen=True)
class Pi0Decay:
    """The two photons of pi0 -> gamma gamma in the lab: energies (GeV), directions, opening angle (rad)."""

    e1_GeV: np.ndarray
    eta1: np.ndarray
    phi1: np.ndarray
    e2_GeV: np.ndarray
    eta2: np.ndarray
    phi2: np.ndarray
    opening: np.ndarray


def pi0_decay(
    energy_GeV: np.ndarray, eta: np.ndarray, phi: np.ndarray, rng: np.random.Generator
) -> Pi0Decay:
    """pi0 -> gamma gamma, isotropic in the rest frame and boosted to the lab.

    In the rest frame each photon has energy m/2 and direction (theta*, phi*) with
    cos(theta*) ~ U(-1, 1). Boosting along the pi0 momentum (beta = p/E, gamma = E/m):
      E_1,2 = (E/2)(1 +- beta cos theta*)  (energy sharing flat in [E(1-beta)/2, E(1+beta)/2]),
      p_par = gamma (m/2)(+-cos theta* + beta), p_perp = (m/2) sin theta*.
    The opening angle satisfies sin(theta_min/2) = m/E, theta_min ~ 2m/E (PDG
    "Kinematics", two-body decays).
    """
    e = np.asarray(energy_GeV, dtype=np.float64)
    m = PI0_MASS_GEV
    p = np.sqrt(np.maximum(e * e - m * m, 0.0))
    beta, gamma = p / e, e / m
    cos_t = rng.uniform(-1.0, 1.0, e.shape)
    sin_t = np.sqrt(1.0 - cos_t * cos_t)
    phs = rng.uniform(0.0, 2.0 * np.pi, e.shape)
    half = 0.5 * m
    px, py = half * sin_t * np.cos(phs), half * sin_t * np.sin(phs)
    pz1 = gamma * half * (cos_t + beta)
    pz2 = gamma * half * (-cos_t + beta)
    e1 = gamma * half * (1.0 + beta * cos_t)
    e2 = gamma * half * (1.0 - beta * cos_t)
    n, e_t, e_p = direction(eta, phi)
    v1 = px[:, None] * e_t + py[:, None] * e_p + pz1[:, None] * n
    v2 = -px[:, None] * e_t - py[:, None] * e_p + pz2[:, None] * n
    eta1, phi1 = eta_phi_of(v1, np.asarray(phi, dtype=np.float64))
    eta2, phi2 = eta_phi_of(v2, np.asarray(phi, dtype=np.float64))
    return Pi0Decay(
        e1_GeV=e1,
        eta1=eta1,
        phi1=phi1,
        e2_GeV=e2,
        eta2=eta2,
        phi2=phi2,
        opening=opening_angle(v1, v2),
    )


# --------------------------------------------------------------------------- hadrons
def interaction_depth_lambda(n: int, rng: np.random.Generator) -> np.ndarray:
    """Depth of the first inelastic interaction in lambda_I: P(z) = exp(-z) (PDG Eq. 34.x)."""
    return rng.exponential(1.0, n)


def em_fraction(
    energy_GeV: np.ndarray, e0_GeV: float, m: float, concentration: float, rng: np.random.Generator
) -> np.ndarray:
    """Electromagnetic fraction of pion showers, fluctuating shower by shower.

    Mean <f_em> = 1 - (E/E0)^(m-1) (Groom, NIM A 572 (2007) 633; PDG "Calorimetry"),
    drawn from a Beta distribution of that mean and concentration kappa
    (variance <f>(1-<f>)/(kappa+1)), which reproduces the large, asymmetric
    event-by-event fluctuations of f_em (Wigmans, "Calorimetry", 2nd ed., Sec. 2.3).
    """
    e = np.asarray(energy_GeV, dtype=np.float64)
    mean = np.clip(1.0 - np.power(np.maximum(e / e0_GeV, 1.0), m - 1.0), 0.02, 0.98)
    return rng.beta(mean * concentration, (1.0 - mean) * concentration)


def bock_hadronic_depth_lambda(energy_GeV: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Depths (lambda_I, from the interaction point) drawn from the hadronic term of Bock et al.

    dE/dx ~ (x/lambda)^(a-1) exp(-d x/lambda) with a = 0.6165 + 0.3183 ln E and
    d = 0.9099 - 0.0237 ln E (E in GeV): Bock, Hansl-Kozanecka, Shah, NIM 186 (1981) 533.
    One depth per entry of ``energy_GeV`` (a Gamma(a, 1/d) variate).
    """
    ln_e = np.log(np.maximum(np.asarray(energy_GeV, dtype=np.float64), 1.0))
    a = 0.6165 + 0.3183 * ln_e
    d = 0.9099 - 0.0237 * ln_e
    return rng.standard_gamma(a) / d


def moyal(n: int, rng: np.random.Generator) -> np.ndarray:
    """Standard Moyal variates (the Landau approximation of J.E. Moyal, Phil. Mag. 46 (1955) 263).

    If Z ~ N(0, 1) then -ln(Z^2) has density exp(-(x + e^-x)/2)/sqrt(2 pi): mode 0,
    mean gamma_E + ln 2.
    """
    z = rng.standard_normal(n)
    return -np.log(np.maximum(z * z, 1e-300))


def mip_energy(
    path_X0: np.ndarray, mip_GeV_per_X0: float, landau_width: float, rng: np.random.Generator
) -> np.ndarray:
    """Signal (GeV, electromagnetic scale) of a minimum-ionising particle over ``path_X0``.

    Mean path * dE/dx; Landau-like fluctuations E = mean (1 + w (X - <X>)), X Moyal,
    truncated at zero. Entries with zero path give zero.
    """
    path = np.asarray(path_X0, dtype=np.float64)
    x = moyal(path.size, rng).reshape(path.shape)
    e = path * mip_GeV_per_X0 * (1.0 + landau_width * (x - MOYAL_MEAN))
    return np.where(path > 0, np.maximum(e, 0.0), 0.0)


# --------------------------------------------------------------------------- detector response
def sampling_fluctuation(
    e_GeV: np.ndarray, stochastic_term: float, rng: np.random.Generator
) -> np.ndarray:
    """Sampling fluctuations of deposited energies: each value E -> Gamma(E/a^2, a^2).

    Mean E and variance a^2 E, i.e. sigma/E = a/sqrt(E) (a = 0.11 GeV^1/2 for the
    ATLAS LAr barrel). As in Geant4's GFlash ``ApplySampling``; applied per cell,
    which is the same in distribution as per spot since Gamma variates of a common
    scale add. Non-positive entries stay 0.
    """
    e = np.asarray(e_GeV, dtype=np.float64)
    a2 = stochastic_term * stochastic_term
    out = np.zeros_like(e)
    pos = e > 0
    out[pos] = rng.standard_gamma(e[pos] / a2) * a2
    return out


def electronic_noise(
    shape: tuple[int, ...], sigma_GeV: float, rng: np.random.Generator
) -> np.ndarray:
    """Incoherent Gaussian electronic noise of rms ``sigma_GeV`` per cell."""
    return rng.normal(0.0, sigma_GeV, shape)
