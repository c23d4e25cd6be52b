"""Pure formulas of the tracker simulation: the particle spectra.

Every function takes arrays and returns arrays; the ones that draw random numbers
take a :class:`numpy.random.Generator`. Units: mm, GeV, T, radians.

Propagation, scattering and the magnetic constant live in :mod:`hepml.detector`.
"""

from __future__ import annotations

import numpy as np


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
