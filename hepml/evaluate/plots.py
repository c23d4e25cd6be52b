"""Binned efficiencies with binomial intervals, and plots of quantities in bins.

Intervals on an efficiency ``k / n`` in a bin:

* ``"clopper-pearson"`` (default, ROOT ``TEfficiency``'s default): the exact
  central interval from the beta distribution, Clopper & Pearson, Biometrika 26
  (1934) 404: ``lo = B^-1(a/2; k, n - k + 1)``, ``hi = B^-1(1 - a/2; k + 1, n - k)``
  with ``a = 1 - cl`` (``lo = 0`` at ``k = 0``, ``hi = 1`` at ``k = n``);
* ``"wilson"``: the score interval, Wilson, JASA 22 (1927) 209.

The default ``cl = 0.6827`` gives one-sigma error bars, the usual choice in
efficiency plots. Figures are drawn on a standalone matplotlib ``Figure`` with
the Agg canvas (no pyplot, no global backend change) and written atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from hepml.io import atomic_output

if TYPE_CHECKING:
    from matplotlib.axes import Axes

ONE_SIGMA = 0.6827
INTERVALS = ("clopper-pearson", "wilson")


def binomial_interval(
    k: np.ndarray, n: np.ndarray, cl: float = ONE_SIGMA, method: str = "clopper-pearson"
) -> tuple[np.ndarray, np.ndarray]:
    """Central ``cl`` interval ``(lo, hi)`` on the efficiency ``k / n``; NaN where ``n = 0``."""
    if method not in INTERVALS:
        raise ValueError(f"unknown interval '{method}' (choose from {', '.join(INTERVALS)})")
    if not 0.0 < cl < 1.0:
        raise ValueError(f"confidence level must lie in (0, 1), got {cl}")
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("binomial interval needs 0 <= k <= n")
    empty = n <= 0
    nn = np.where(empty, 1.0, n)
    alpha = 1.0 - cl
    if method == "clopper-pearson":
        from scipy.special import betaincinv  # scipy comes with scikit-learn

        k_pos = np.where(k > 0, k, 1.0)  # placeholders where the bound is fixed at 0 or 1
        m_pos = np.where(k < nn, nn - k, 1.0)
        lo = np.where(k > 0, betaincinv(k_pos, nn - k + 1.0, alpha / 2.0), 0.0)
        hi = np.where(k < nn, betaincinv(k + 1.0, m_pos, 1.0 - alpha / 2.0), 1.0)
    else:
        z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
        p = k / nn
        den = 1.0 + z * z / nn
        centre = (p + z * z / (2.0 * nn)) / den
        half = z * np.sqrt(p * (1.0 - p) / nn + z * z / (4.0 * nn * nn)) / den
        lo, hi = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    return np.where(empty, np.nan, lo), np.where(empty, np.nan, hi)


def _bin_index(x: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Bin of each value (-1 outside); the last bin is closed on the right."""
    idx = np.searchsorted(bins, x, side="right") - 1
    idx[x == bins[-1]] = len(bins) - 2
    idx[(x < bins[0]) | (x > bins[-1]) | ~np.isfinite(x)] = -1
    return idx


def _check_bins(bins: Sequence[float] | np.ndarray) -> np.ndarray:
    b = np.asarray(bins, dtype=np.float64)
    if b.ndim != 1 or len(b) < 2 or np.any(np.diff(b) <= 0):
        raise ValueError("bins must be at least two increasing edges")
    return b


def binned_efficiency(
    x: np.ndarray,
    passed: np.ndarray,
    bins: Sequence[float] | np.ndarray,
    *,
    cl: float = ONE_SIGMA,
    interval: str = "clopper-pearson",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction of ``passed`` in bins of ``x`` with its binomial interval.

    Returns ``(eff, lo, hi)``, each ``(len(bins) - 1,)``; NaN in empty bins.
    Entries outside the bins (or with non-finite ``x``) are ignored.
    """
    b = _check_bins(bins)
    xv = np.asarray(x, dtype=np.float64)
    ok = np.asarray(passed, dtype=bool)
    if xv.shape != ok.shape or xv.ndim != 1:
        raise ValueError(f"x {xv.shape} and passed {ok.shape} must be 1-d of one length")
    idx = _bin_index(xv, b)
    inside = idx >= 0
    nb = len(b) - 1
    n = np.bincount(idx[inside], minlength=nb)
    k = np.bincount(idx[inside], weights=ok[inside], minlength=nb)
    lo, hi = binomial_interval(k, n, cl, interval)
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    return eff, lo, hi


def plot_binned(
    path: str | Path,
    bins: Sequence[float] | np.ndarray,
    series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    xlabel: str,
    ylabel: str,
    *,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    ylim: tuple[float, float] | None = None,
) -> None:
    """Plot a quantity in bins for several methods, ``{method: (value, lo, hi)}``, as a PNG.

    Each point sits at the bin centre with the bin width as horizontal bar and
    ``[lo, hi]`` as vertical bar; NaN values (empty bins) are left out.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    b = _check_bins(bins)
    centre = np.sqrt(b[:-1] * b[1:]) if logx and b[0] > 0 else 0.5 * (b[:-1] + b[1:])
    fig = Figure(figsize=(5.6, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    markers = "osD^vP*X"
    for i, (name, (val, lo, hi)) in enumerate(series.items()):
        v, lo_, hi_ = (np.asarray(a, dtype=np.float64) for a in (val, lo, hi))
        if v.shape != centre.shape:
            raise ValueError(f"series '{name}' has {v.shape[0]} values for {len(centre)} bins")
        keep = np.isfinite(v)
        yerr = np.vstack([np.nan_to_num(v - lo_, nan=0.0), np.nan_to_num(hi_ - v, nan=0.0)])
        xerr = np.vstack([centre - b[:-1], b[1:] - centre])
        ax.errorbar(
            centre[keep],
            v[keep],
            xerr=xerr[:, keep],
            yerr=np.clip(yerr[:, keep], 0.0, None),
            fmt=markers[i % len(markers)],
            ms=4,
            capsize=2,
            lw=1.2,
            label=name,
        )
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlim(b[0], b[-1])
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def efficiency_plot(
    path: str | Path,
    x: np.ndarray | Mapping[str, np.ndarray],
    passed: Mapping[str, np.ndarray],
    bins: Sequence[float] | np.ndarray,
    xlabel: str,
    ylabel: str,
    *,
    title: str = "",
    logx: bool = False,
    cl: float = ONE_SIGMA,
    interval: str = "clopper-pearson",
    ylim: tuple[float, float] | None = (0.0, 1.05),
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Plot ``passed`` fractions against ``x`` in bins, one series per method, as a PNG.

    ``x`` is one array shared by every method (efficiency of the same
    candidates) or ``{method: array}`` (for example fake rate against the pT of
    each method's own tracks). Returns ``{method: (eff, lo, hi)}`` as plotted.
    """
    series = {}
    for name, ok in passed.items():
        xv = x[name] if isinstance(x, Mapping) else x
        series[name] = binned_efficiency(xv, ok, bins, cl=cl, interval=interval)
    plot_binned(path, bins, series, xlabel, ylabel, title=title, logx=logx, ylim=ylim)
    return series


# --------------------------------------------------------------------------- distributions
def histogram_fractions(
    values: np.ndarray, bins: Sequence[float] | np.ndarray, *, overflow: bool = True
) -> tuple[np.ndarray, np.ndarray, int]:
    """Fraction of the entries in each bin, its Poisson error ``sqrt(k) / n``, and ``n``.

    ``n`` counts every finite entry; with ``overflow`` the entries below (above)
    the bins are added to the first (last) bin, else they are left out of the
    bins (but still counted in ``n``).
    """
    b = _check_bins(bins)
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if overflow:
        v = np.clip(v, b[0], b[-1])
    k = np.histogram(v, bins=b)[0].astype(np.float64)
    n = len(v)
    nn = max(n, 1)
    return k / nn, np.sqrt(k) / nn, n


def _draw_histograms(
    ax: Axes,
    b: np.ndarray,
    samples: Mapping[str, np.ndarray],
    *,
    density: bool,
    overflow: bool,
    reference: tuple[np.ndarray, np.ndarray, str] | None,
) -> dict[str, np.ndarray]:
    width = np.diff(b)
    centre = 0.5 * (b[:-1] + b[1:])
    out = {}
    for i, (name, values) in enumerate(samples.items()):
        frac, err, _ = histogram_fractions(values, b, overflow=overflow)
        if density:
            frac, err = frac / width, err / width
        out[name] = frac
        colour = f"C{i % 10}"
        ax.stairs(frac, b, color=colour, lw=1.4, label=name)
        ax.errorbar(centre, frac, yerr=err, fmt="none", ecolor=colour, lw=0.8, capsize=0)
    if reference is not None:
        rx, ry, rlabel = reference
        ax.plot(rx, ry, color="0.35", ls="--", lw=1.0, label=rlabel)
    return out


def plot_histograms(
    path: str | Path,
    bins: Sequence[float] | np.ndarray,
    samples: Mapping[str, np.ndarray],
    xlabel: str,
    ylabel: str = "fraction of entries",
    *,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    density: bool = False,
    overflow: bool = True,
    reference: tuple[np.ndarray, np.ndarray, str] | None = None,
) -> dict[str, np.ndarray]:
    """Normalised histograms of several samples on one axis (a shape comparison), as a PNG.

    Each sample is drawn as a step line of its fractions per bin
    (:func:`histogram_fractions`; divided by the bin width with ``density``)
    with Poisson error bars; ``reference`` ``(x, y, label)`` adds a dashed curve.
    Returns ``{sample: fractions}`` as plotted.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    b = _check_bins(bins)
    fig = Figure(figsize=(5.6, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    out = _draw_histograms(ax, b, samples, density=density, overflow=overflow, reference=reference)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlim(b[0], b[-1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if samples:
        ax.legend(fontsize=8)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return out


def plot_histogram_grid(
    path: str | Path,
    bins: Sequence[float] | np.ndarray,
    panels: Mapping[str, Mapping[str, np.ndarray]],
    xlabel: str,
    ylabel: str = "fraction of entries",
    *,
    ncols: int = 2,
    density: bool = False,
    overflow: bool = True,
    logy: bool = False,
    reference: tuple[np.ndarray, np.ndarray, str] | None = None,
) -> None:
    """:func:`plot_histograms` for several panels ``{panel title: {sample: values}}`` on one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("no panel to plot")
    b = _check_bins(bins)
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.9 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (title, samples) in zip(axes.ravel(), panels.items(), strict=False):
        _draw_histograms(ax, b, samples, density=density, overflow=overflow, reference=reference)
        if logy:
            ax.set_yscale("log")
        ax.set_xlim(b[0], b[-1])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def plot_categories(
    path: str | Path,
    labels: Sequence[str],
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ylabel: str,
    *,
    xlabel: str = "",
    title: str = "",
    logy: bool = False,
) -> None:
    """A value per named category for several series, ``{series: (value, error)}``, as a PNG.

    Points with error bars, the series side by side within each category; NaN
    values (a category a series does not have) are left out.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(labels)
    fig = Figure(figsize=(max(5.6, 0.22 * n + 1.5), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(n, dtype=np.float64)
    markers = "osD^vP*X"
    step = 0.6 / max(len(series), 1)
    for i, (name, (val, err)) in enumerate(series.items()):
        v, e = np.asarray(val, dtype=np.float64), np.asarray(err, dtype=np.float64)
        if v.shape != (n,) or e.shape != (n,):
            raise ValueError(f"series '{name}' has {v.shape} values for {n} categories")
        keep = np.isfinite(v)
        ax.errorbar(
            x[keep] + (i - 0.5 * (len(series) - 1)) * step,
            v[keep],
            yerr=np.nan_to_num(e[keep], nan=0.0),
            fmt=markers[i % len(markers)],
            ms=4,
            capsize=2,
            lw=1.0,
            label=name,
        )
    ax.set_xticks(x, list(labels), rotation=90 if n > 10 else 0, fontsize=7 if n > 10 else 9)
    ax.set_xlim(-0.6, n - 0.4)
    if logy:
        ax.set_yscale("log")
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
