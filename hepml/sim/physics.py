"""Pure formulas of the tracker simulation: the particle spectra.

Every function takes arrays and returns arrays; the ones that draw random numbers
take a :class:`numpy.random.Generator`. Units: mm, GeV, T, radians.

Propagation, scattering and the magnetic constant live in :mod:`hepml.detector`.
"""

from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------------- spectra
def _hagedorn_cdf(pt: np.ndarray, p0: float, n: float) -> np.ndarray:
    """Unnormalised cumulative of dN/dpT = pT (1 + pT/p0)^-n from pT = 0, closed form.

    With u = 1 + pT/p0: integral of p0^2 (u - 1) u^-n du = p0^2 [u^(2-n)/(2-n) - u^(1-n)/(1-n)]
    (n > 2; n = 2 takes the log limit).
    """
    u = 1.0 + np.asarray(pt, dtype=np.float64) / p0
    if abs(n - 2.0) < 1e-9:
        g = np.log(u) + 1.0 / u
    else:
        g = u ** (2.0 - n) / (2.0 - n) - u ** (1.0 - n) / (1.0 - n)
    g0 = 1.0 / (2.0 - n) - 1.0 / (1.0 - n) if abs(n - 2.0) >= 1e-9 else 1.0
    return p0 * p0 * (g - g0)


def minbias_pt_scale_GeV(
    pt_min_GeV: float, pt_median_GeV: float, tail_power: float, pt_max_GeV: float
) -> float:
    """Scale p0 of :func:`sample_minbias_pt` that puts the spectrum's median on [pT_min,
    pT_max] at ``pt_median_GeV`` (bisection in log p0: the median rises with p0)."""
    lo, hi = 1e-4, 1e4

    def median_of(p0: float) -> float:
        c = _hagedorn_cdf(np.array([pt_min_GeV, pt_median_GeV, pt_max_GeV]), p0, tail_power)
        return float((c[1] - c[0]) / (c[2] - c[0]))  # F(median): 0.5 at the solution

    for _ in range(200):
        mid = np.sqrt(lo * hi)
        if median_of(mid) > 0.5:  # too much below the median: a harder spectrum
            lo = mid
        else:
            hi = mid
    return float(np.sqrt(lo * hi))


def sample_minbias_pt(
    n: int,
    pt_min_GeV: float,
    pt_median_GeV: float,
    pt_max_GeV: float,
    tail_power: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Minimum-bias transverse momenta (GeV): the Hagedorn spectrum on [pT_min, pT_max].

    dN/dpT = pT (1 + pT/p0)^-n: the invariant yield E d^3N/dp^3 ~ (1 + pT/p0)^-n of
    Hagedorn's QCD-inspired fit times the phase-space factor pT (Hagedorn, Riv. Nuovo
    Cim. 6N10 (1983) 1; CMS, JHEP 02 (2010) 041, fits of n ~ 6-7 to minimum-bias
    charged hadrons), so that the spectrum rises from 0 to its maximum at p0/(n-1)
    and falls as pT^(1-n). p0 comes from the median (:func:`minbias_pt_scale_GeV`).
    The cumulative (closed form) is inverted by linear interpolation on a
    16,384-point logarithmic grid (steps of 0.04% in pT).
    """
    p0 = minbias_pt_scale_GeV(pt_min_GeV, pt_median_GeV, tail_power, pt_max_GeV)
    grid = np.geomspace(pt_min_GeV, pt_max_GeV, 16384)
    c = _hagedorn_cdf(grid, p0, tail_power)
    c = (c - c[0]) / (c[-1] - c[0])
    return np.interp(rng.random(n), c, grid)


def sample_log_uniform(n: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """Values with density ~ 1/x on [lo, hi] (uniform in log x); lo == hi gives lo."""
    return lo * (hi / lo) ** rng.random(n)
