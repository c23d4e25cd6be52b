"""Classical photon-identification shower shapes computed from calorimeter cells.

The definitions are those of ATLAS photon identification: ATLAS Collaboration,
"Expected photon performance in the ATLAS experiment", ATL-PHYS-PUB-2011-007,
Sec. 3, and "Measurement of the photon identification efficiencies with the
ATLAS detector using LHC Run 2 data collected in 2015 and 2016", Eur. Phys. J. C
79 (2019) 205, Table 1. "S1" is the strip layer, "S2" the middle layer, "S3"
the back layer; sizes are in cells, eta x phi. Inputs are the cell windows of
:mod:`hepml.sim.calo` (energies in GeV). There is no hadronic calorimeter here,
so the hadronic leakage R_had is not available.

Variables (columns of :func:`shower_shapes`, in the order of :data:`NAMES`):

* ``R_eta``  = E(3x7) / E(7x7) in S2, both centred on the hottest S2 cell.
* ``R_phi``  = E(3x3) / E(3x7) in S2.
* ``w_eta2`` = sqrt(sum E_i eta_i^2 / sum E_i - (sum E_i eta_i / sum E_i)^2) over the
  3x5 S2 cells around the hottest cell (eta units).
* ``w_s3``   = sqrt(sum E_i (i - i_max)^2 / sum E_i) over the 3 strips centred on the
  hottest strip (strip units).
* ``w_stot`` = the same over the 20 strips i_max - 10 .. i_max + 9.
* ``f_side`` = (E(7 strips) - E(3 strips)) / E(3 strips) around the hottest strip.
* ``E_ratio`` = (E_1st max - E_2nd max) / (E_1st max + E_2nd max), strip maxima.
* ``DeltaE`` = E_2nd max - E_min, E_min the lowest strip between the two maxima (GeV).
* ``f1``     = E(S1) / E, ``f3`` = E(S3) / E, E the sum of the three layers.
* ``log_e``  = ln(E / GeV), the cluster energy (ATLAS cuts are binned in energy; here
  the classifier gets it as an input, as the CNN does).

The strip profile is the sum over the strip phi-cell with the most energy and the
larger of its two neighbours (Delta phi = 0.2, as ATLAS). Strip maxima are strips
with more energy than both neighbours, searched within 20 strips of the hottest
one; with no second maximum E_2nd max = 0 (E_ratio = 1, DeltaE = 0). Ratios whose
denominator is not positive (noise-only windows) are set to 0.
"""

from __future__ import annotations

import numpy as np

NAMES: tuple[str, ...] = (
    "R_eta",
    "R_phi",
    "w_eta2",
    "w_s3",
    "w_stot",
    "f_side",
    "E_ratio",
    "DeltaE",
    "f1",
    "f3",
    "log_e",
)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _box_sum(
    cells: np.ndarray, ci: np.ndarray, cj: np.ndarray, half_i: int, half_j: int
) -> np.ndarray:
    """Sum of cells[n, ci-half_i : ci+half_i+1, cj-half_j : cj+half_j+1] (zero outside the window)."""
    n, ni, nj = cells.shape
    ii = np.arange(ni)[None, :, None]
    jj = np.arange(nj)[None, None, :]
    mask = (np.abs(ii - ci[:, None, None]) <= half_i) & (np.abs(jj - cj[:, None, None]) <= half_j)
    return (cells * mask).sum(axis=(1, 2))


def middle_shapes(middle: np.ndarray, eta_pitch: float) -> dict[str, np.ndarray]:
    """R_eta, R_phi and w_eta2 from middle-layer windows (N, n_eta, n_phi) in GeV."""
    n, ni, nj = middle.shape
    hot = middle.reshape(n, -1).argmax(axis=1)
    ci, cj = hot // nj, hot % nj
    e77 = _box_sum(middle, ci, cj, 3, 3)
    e37 = _box_sum(middle, ci, cj, 1, 3)
    e33 = _box_sum(middle, ci, cj, 1, 1)
    ii = np.arange(ni)[None, :, None]
    jj = np.arange(nj)[None, None, :]
    m35 = (np.abs(ii - ci[:, None, None]) <= 1) & (np.abs(jj - cj[:, None, None]) <= 2)
    w = middle * m35
    s = w.sum(axis=(1, 2))
    eta = (ii - ci[:, None, None]) * eta_pitch
    m1 = _ratio((w * eta).sum(axis=(1, 2)), s)
    m2 = _ratio((w * eta * eta).sum(axis=(1, 2)), s)
    return {
        "R_eta": _ratio(e37, e77),
        "R_phi": _ratio(e33, e37),
        "w_eta2": np.sqrt(np.maximum(m2 - m1 * m1, 0.0)),
    }


def strip_profile(strips: np.ndarray) -> np.ndarray:
    """Strip energies along eta (N, n_eta): the hottest phi-cell plus its larger neighbour."""
    n, ni, nj = strips.shape
    col = strips.sum(axis=1).argmax(axis=1)
    rows = np.arange(n)
    prof = strips[rows, :, col]
    if nj == 1:
        return prof
    left = np.where(col > 0, col - 1, col)
    right = np.where(col < nj - 1, col + 1, col)
    e_left = np.where(col > 0, strips[rows, :, left].sum(axis=1), -np.inf)
    e_right = np.where(col < nj - 1, strips[rows, :, right].sum(axis=1), -np.inf)
    nb = np.where(e_left >= e_right, left, right)
    return prof + strips[rows, :, nb]


def strip_shapes(profile: np.ndarray, search: int = 20) -> dict[str, np.ndarray]:
    """w_s3, w_stot, f_side, E_ratio and DeltaE from strip profiles (N, n_eta) in GeV."""
    n, ns = profile.shape
    i = np.arange(ns)[None, :]
    imax = profile.argmax(axis=1)[:, None]
    d = i - imax

    def width(mask: np.ndarray) -> np.ndarray:
        e = profile * mask
        return np.sqrt(np.maximum(_ratio((e * d * d).sum(axis=1), e.sum(axis=1)), 0.0))

    e3 = (profile * (np.abs(d) <= 1)).sum(axis=1)
    e7 = (profile * (np.abs(d) <= 3)).sum(axis=1)
    padded = np.pad(profile, ((0, 0), (1, 1)), constant_values=-np.inf)
    is_max = (
        (profile > padded[:, :-2]) & (profile > padded[:, 2:]) & (np.abs(d) <= search) & (d != 0)
    )
    cand = np.where(is_max, profile, -np.inf)
    i2 = cand.argmax(axis=1)
    has2 = np.isfinite(cand.max(axis=1))
    e1 = profile.max(axis=1)
    e2 = np.where(has2, profile[np.arange(n), i2], 0.0)
    lo = np.minimum(imax[:, 0], i2)[:, None]
    hi = np.maximum(imax[:, 0], i2)[:, None]
    between = (i > lo) & (i < hi)
    e_min = np.where(between, profile, np.inf).min(axis=1)
    e_min = np.where(np.isfinite(e_min), e_min, e2)  # adjacent maxima: nothing in between
    return {
        "w_s3": width(np.abs(d) <= 1),
        "w_stot": width((d >= -10) & (d <= 9)),
        "f_side": _ratio(e7 - e3, e3),
        "E_ratio": np.where(has2, _ratio(e1 - e2, e1 + e2), 1.0),
        "DeltaE": np.where(has2, e2 - e_min, 0.0),
    }


def shower_shapes(
    strip: np.ndarray, middle: np.ndarray, back: np.ndarray, middle_eta_pitch: float
) -> np.ndarray:
    """All variables of :data:`NAMES`, shape (N, len(NAMES)), float32.

    ``strip``, ``middle``, ``back``: cell windows (N, n_eta, n_phi) in GeV; rows whose
    total energy is not positive get log_e = ln(1e-6).
    """
    e1, e2, e3 = strip.sum(axis=(1, 2)), middle.sum(axis=(1, 2)), back.sum(axis=(1, 2))
    total = e1 + e2 + e3
    v = {**middle_shapes(middle, middle_eta_pitch), **strip_shapes(strip_profile(strip))}
    v["f1"] = _ratio(e1, total)
    v["f3"] = _ratio(e3, total)
    v["log_e"] = np.log(np.maximum(total, 1e-6))
    return np.stack([v[k] for k in NAMES], axis=1).astype(np.float32)
