"""ROC curves, AUCs and background efficiencies with percentile-bootstrap intervals.

Conventions (HEP): a score is larger for signal. For a threshold ``t`` the
*signal efficiency* is the fraction of signal with ``score >= t`` (the true
positive rate) and the *background efficiency* the fraction of background kept
(the false positive rate); the *rejection* is ``1 / background efficiency``.

* AUC: the Mann-Whitney statistic ``P(s_sig > s_bkg) + P(s_sig = s_bkg) / 2``
  (Hanley & McNeil, Radiology 143 (1982) 29), equal to the trapezoidal area under
  the ROC curve with tied scores joined by straight segments.
* Background efficiency at a signal efficiency ``e``: the ROC curve is the
  polyline through the points of every distinct threshold (tied scores joined by
  straight segments, i.e. ties broken at random); the value is read off it by
  linear interpolation between the last point with signal efficiency ``< e`` and
  the first with ``>= e``. A plateau at exactly ``e`` gives its smallest
  background efficiency (the tightest threshold reaching ``e``).
* 95% intervals: percentile bootstrap (Efron & Tibshirani, *An Introduction to
  the Bootstrap*, 1993, ch. 13) over candidates: each resample draws N candidates
  with replacement, signal and background together, so the class counts vary as
  they would between test samples. The same resamples serve every method of a
  ROC (paired), so their intervals are comparable. The scores are ranked once
  per method; a replica is then a histogram of the resampled candidates' ranks
  (one ``bincount``, O(N), no re-sorting), from which the AUC and the curve
  follow in O(bins). With more than 2**17 distinct scores, neighbouring ranks
  share a replica bin (quantiles of the rank): pairs inside one bin count as
  ties, which moves a replica's AUC by at most half the fraction of
  signal-background pairs sharing a bin, itself at most
  ``(N / 2**17) / min(N_sig, N_bkg)`` (a few 1e-5 for 1e6 candidates; 1e-8
  measured by ``benchmarks/roc_bootstrap.py``), far below the interval's
  width. Point estimates are always exact.

The ``metrics.json`` layout that every evaluation writes (:func:`write_metrics`)
is checked by :func:`validate_metrics`::

    {"network": "lstm",
     "rocs": {"<roc>": {"signal": "true tracks", "background": "ghosts",
                        "n_signal": 0, "n_background": 0, "n_boot": 200,
                        "methods": {"<method>": {
                            "auc": 0.0, "auc_ci95": [0.0, 0.0],
                            "bkg_eff_at_sig_eff": {"0.8": 0.0, ...},
                            "bkg_eff_at_sig_eff_ci95": {"0.8": [0.0, 0.0], ...},
                            "rejection_at_sig_eff": {"0.8": 1.0, ...},
                            "rejection_at_sig_eff_ci95": {"0.8": [1.0, 1.0], ...}}}}},
     "plots": {"roc.png": "caption", ...},      # optional, used by the report
     ...task-specific blocks...}

An infinite rejection (no background left) is written as ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeGuard

import numpy as np

from hepml.config import schema_default
from hepml.errors import HepmlError
from hepml.io import atomic_output, atomic_write_text, check_input_file

DEFAULT_SIG_EFFS: tuple[float, ...] = (0.8, 0.9, 0.95, 0.99)
_CHUNK_ELEMENTS = 1 << 21  # bootstrap work arrays hold at most this many elements (16 MB each)
_MAX_BOOT_BINS = (
    1 << 17
)  # score groups of a bootstrap replica (exact below this many distinct scores)


@dataclass(frozen=True)
class EvaluateConfig:
    """The ``evaluate`` section of the config: bootstrap resamples and working points."""

    # defaults: the schema's (evaluate.*), read when an instance is made, never repeated here
    bootstrap: int = field(default_factory=lambda: schema_default("evaluate.bootstrap"))
    sig_effs: tuple[float, ...] = field(
        default_factory=lambda: tuple(schema_default("evaluate.sig_effs"))
    )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> EvaluateConfig:
        """Build from the whole validated config (:func:`hepml.config.load`)."""
        sec = cfg["evaluate"]
        return cls(
            bootstrap=int(sec["bootstrap"]),
            sig_effs=tuple(float(e) for e in sec["sig_effs"]),
        )


def sig_eff_key(sig_eff: float) -> str:
    """The metrics.json key of a signal efficiency: ``0.8 -> "0.8"``, ``0.99 -> "0.99"``."""
    return repr(round(float(sig_eff), 6))


# --------------------------------------------------------------------------- input checks
def _labels(y_true: np.ndarray) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-d, got shape {y.shape}")
    if y.dtype != bool:
        if y.size and not np.isin(y, (0, 1)).all():
            raise ValueError("y_true must hold only 0/1 or booleans")
        y = y.astype(bool)
    return y


def _scores(score: np.ndarray, n: int, name: str = "score") -> np.ndarray:
    s = np.asarray(score, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"scores of '{name}' have shape {s.shape}, expected ({n},)")
    bad = int(np.count_nonzero(~np.isfinite(s)))
    if bad:
        raise HepmlError(f"scores of '{name}' contain {bad} NaN or infinite values")
    return s


# --------------------------------------------------------------------------- the core
@dataclass(frozen=True)
class _Ranked:
    """One method's candidates ranked once by decreasing score.

    ``group`` is the dense rank of each candidate's score (0 = highest; equal
    scores share a group). For bootstrap replicas the groups are merged, in
    order, into at most :data:`_MAX_BOOT_BINS` bins, so that a replica is a
    histogram of resampled candidates (one ``bincount``) rather than a re-sort.
    """

    group: np.ndarray  # (N,) dense score rank, 0 = highest
    is_sig: np.ndarray  # (N,) 0/1
    thresholds: np.ndarray  # (G,) the score of each group, decreasing
    boot_code: np.ndarray  # (N,) int32: 2 * bin + is_sig
    n_bins: int

    @classmethod
    def build(cls, y: np.ndarray, s: np.ndarray) -> _Ranked:
        order = np.argsort(-s, kind="stable")
        ss = s[order]
        new = np.ones(len(ss), dtype=bool)
        new[1:] = ss[1:] != ss[:-1]
        group = np.empty(len(s), dtype=np.int64)
        group[order] = np.cumsum(new) - 1
        n_groups = int(new.sum())
        n_bins = min(n_groups, _MAX_BOOT_BINS)
        bins = group if n_bins == n_groups else (group * n_bins) // n_groups
        is_sig = y.astype(np.int64)
        return cls(group, is_sig, ss[new], (2 * bins + is_sig).astype(np.int32), n_bins)

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Signal and background count of each score group, ``(1, G)`` each (exact)."""
        g = len(self.thresholds)
        h = np.bincount(2 * self.group + self.is_sig, minlength=2 * g).reshape(1, g, 2)
        return h[..., 1], h[..., 0]

    def boot_counts(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signal and background count per bin of each resample, ``(B, n_bins)`` each.

        ``idx`` is ``(B, N)``: the candidates drawn (with replacement) by each resample.
        """
        k = self.n_bins
        h = np.stack([np.bincount(self.boot_code[row], minlength=2 * k) for row in idx]).reshape(
            -1, k, 2
        )
        return h[..., 1], h[..., 0]


def _auc_from_groups(gp: np.ndarray, gn: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC of each row; NaN where a row lacks signal or background."""
    n_sig = gp.sum(axis=1)
    n_bkg = gn.sum(axis=1)
    bkg_above_or_at = np.cumsum(gn, axis=1)  # background with score >= this group's
    below = n_bkg[:, None] - bkg_above_or_at
    num = (gp * below).sum(axis=1, dtype=np.float64) + 0.5 * (gp * gn).sum(axis=1, dtype=np.float64)
    den = n_sig.astype(np.float64) * n_bkg
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _roc_points(gp: np.ndarray, gn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sig_eff, bkg_eff), each ``(B, G + 1)``, starting at the origin."""
    n_sig = gp.sum(axis=1, keepdims=True).astype(np.float64)
    n_bkg = gn.sum(axis=1, keepdims=True).astype(np.float64)
    zero = np.zeros((gp.shape[0], 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.concatenate([zero, np.cumsum(gp, axis=1) / n_sig], axis=1)
        fpr = np.concatenate([zero, np.cumsum(gn, axis=1) / n_bkg], axis=1)
    return tpr, fpr


def _interp_bkg_eff(tpr: np.ndarray, fpr: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Background efficiency at each target signal efficiency, ``(B, T)``.

    Linear between the last ROC point with ``tpr < e`` and the first with ``tpr >= e``.
    """
    out = np.empty((tpr.shape[0], len(targets)))
    rows = np.arange(tpr.shape[0])
    for k, e in enumerate(targets):
        j = np.clip(np.count_nonzero(tpr < e, axis=1), 1, tpr.shape[1] - 1)
        t0, t1 = tpr[rows, j - 1], tpr[rows, j]
        f0, f1 = fpr[rows, j - 1], fpr[rows, j]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(t1 > t0, (e - t0) / (t1 - t0), 1.0)
        out[:, k] = f0 + np.clip(frac, 0.0, 1.0) * (f1 - f0)
    out[~(np.isfinite(tpr[:, -1]) & np.isfinite(fpr[:, -1]))] = np.nan  # a class is empty
    return out


def _need_both(y: np.ndarray) -> None:
    n_sig = int(y.sum())
    if n_sig == 0 or n_sig == len(y):
        missing = "signal" if n_sig == 0 else "background"
        raise HepmlError(
            f"ROC needs signal and background candidates, but there is no {missing} among {len(y)}"
        )


def _check_targets(sig_effs: Sequence[float]) -> np.ndarray:
    t = np.asarray(sig_effs, dtype=np.float64).reshape(-1)
    if not np.all((t > 0) & (t <= 1)):
        raise ValueError(f"signal efficiencies must lie in (0, 1], got {t.tolist()}")
    return t


# --------------------------------------------------------------------------- public: point estimates
def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve as ``(sig_eff, bkg_eff, thresholds)``, one point per distinct score.

    The first point is the origin (threshold ``+inf``); point ``i`` keeps the
    candidates with ``score >= thresholds[i]``. Shapes: ``(G + 1,)`` each.
    """
    y = _labels(y_true)
    _need_both(y)
    srt = _Ranked.build(y, _scores(score, len(y)))
    tpr, fpr = _roc_points(*srt.counts())
    return tpr[0], fpr[0], np.concatenate([[np.inf], srt.thresholds])


def auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted one half)."""
    y = _labels(y_true)
    _need_both(y)
    srt = _Ranked.build(y, _scores(score, len(y)))
    return float(_auc_from_groups(*srt.counts())[0])


def bkg_eff_at_sig_eff(
    y_true: np.ndarray, score: np.ndarray, sig_effs: Sequence[float] = DEFAULT_SIG_EFFS
) -> np.ndarray:
    """Fraction of background kept at the threshold giving each signal efficiency, ``(T,)``."""
    y = _labels(y_true)
    _need_both(y)
    srt = _Ranked.build(y, _scores(score, len(y)))
    tpr, fpr = _roc_points(*srt.counts())
    return _interp_bkg_eff(tpr, fpr, _check_targets(sig_effs))[0]


def rejection(bkg_eff: np.ndarray | float) -> np.ndarray:
    """Background rejection ``1 / bkg_eff`` (``inf`` where no background is left)."""
    b = np.asarray(bkg_eff, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(b > 0, 1.0 / np.where(b > 0, b, 1.0), np.inf)


# --------------------------------------------------------------------------- public: bootstrap
@dataclass(frozen=True)
class RocSummary:
    """AUC and background efficiencies of one method, with 95% percentile-bootstrap intervals.

    Shapes: ``sig_effs``, ``bkg_eff`` (T,); ``bkg_eff_ci95`` (T, 2);
    ``boot_auc`` (n_boot,); ``boot_bkg_eff`` (n_boot, T).
    """

    auc: float
    auc_ci95: tuple[float, float]
    sig_effs: np.ndarray
    bkg_eff: np.ndarray
    bkg_eff_ci95: np.ndarray
    boot_auc: np.ndarray
    boot_bkg_eff: np.ndarray


def _ci95(values: np.ndarray) -> np.ndarray:
    """2.5 and 97.5 percentiles over axis 0, ignoring NaN (resamples without a class)."""
    v = values.reshape(values.shape[0], -1)
    out = np.full((2, v.shape[1]), np.nan)
    for k in range(v.shape[1]):
        col = v[:, k][np.isfinite(v[:, k])]
        if col.size:
            out[:, k] = np.percentile(col, [2.5, 97.5])
    return out.T.reshape(values.shape[1:] + (2,))


def bootstrap_roc(
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    sig_effs: Sequence[float] = DEFAULT_SIG_EFFS,
    n_boot: int = 200,
    rng: np.random.Generator | None = None,
) -> dict[str, RocSummary]:
    """AUC and background efficiency at ``sig_effs`` for each method, with 95% intervals.

    All methods share the same ``n_boot`` resamples of the candidates, drawn
    from ``rng`` (required; a default of None only lets it be passed by
    position or keyword). Cost: one sort per method, then O(N) per resample and method.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "pass rng, a numpy Generator (hepml.rng.rng(seed, stream)), for the bootstrap"
        )
    y = _labels(y_true)
    n = len(y)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not scores:
        raise ValueError("no methods given")
    targets = _check_targets(sig_effs)
    _need_both(y)
    ranked = {m: _Ranked.build(y, _scores(s, n, m)) for m, s in scores.items()}
    boot_auc = {m: np.empty(n_boot) for m in scores}
    boot_eff = {m: np.empty((n_boot, len(targets))) for m in scores}
    chunk = max(1, min(n_boot, _CHUNK_ELEMENTS // max(n, 1)))
    for b0 in range(0, n_boot, chunk):
        b1 = min(n_boot, b0 + chunk)
        idx = rng.integers(0, n, size=(b1 - b0, n))  # shared by every method: paired
        for m, srt in ranked.items():
            gp, gn = srt.boot_counts(idx)
            boot_auc[m][b0:b1] = _auc_from_groups(gp, gn)
            boot_eff[m][b0:b1] = _interp_bkg_eff(*_roc_points(gp, gn), targets)
    out = {}
    for m, srt in ranked.items():
        gp, gn = srt.counts()
        a = float(_auc_from_groups(gp, gn)[0])
        eff = _interp_bkg_eff(*_roc_points(gp, gn), targets)[0]
        lo, hi = _ci95(boot_auc[m][:, None])[0]
        out[m] = RocSummary(
            auc=a,
            auc_ci95=(float(lo), float(hi)),
            sig_effs=targets,
            bkg_eff=eff,
            bkg_eff_ci95=_ci95(boot_eff[m]),
            boot_auc=boot_auc[m],
            boot_bkg_eff=boot_eff[m],
        )
    return out


def binned_bkg_eff(
    x: np.ndarray,
    bins: np.ndarray,
    y_true: np.ndarray,
    score: np.ndarray,
    sig_eff: float,
    n_boot: int = 200,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background efficiency at ``sig_eff`` in bins of ``x`` (the threshold set per bin).

    For "rejection against true energy" plots: returns ``(bkg_eff, lo, hi)``,
    each ``(len(bins) - 1,)``, with 95% bootstrap intervals; NaN in bins that
    lack signal or background. Take :func:`rejection` of them for rejections.
    ``rng`` is required.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "pass rng, a numpy Generator (hepml.rng.rng(seed, stream)), for the bootstrap"
        )
    y = _labels(y_true)
    s = _scores(score, len(y))
    xv = np.asarray(x, dtype=np.float64)
    nb = len(bins) - 1
    eff, lo, hi = (np.full(nb, np.nan) for _ in range(3))
    which = np.digitize(xv, bins) - 1
    which[xv == bins[-1]] = nb - 1  # the last bin is closed on the right
    for k in range(nb):
        sel = which == k
        ys = y[sel]
        if ys.any() and not ys.all():
            r = bootstrap_roc(ys, {"m": s[sel]}, (sig_eff,), n_boot, rng=rng)["m"]
            eff[k], (lo[k], hi[k]) = r.bkg_eff[0], r.bkg_eff_ci95[0]
    return eff, lo, hi


# --------------------------------------------------------------------------- metrics.json
def _pair(v: Sequence[float]) -> list[float | None]:
    return [None if not math.isfinite(float(x)) else float(x) for x in v]


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(float(x)) else None


def roc_block(
    signal: str,
    background: str,
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    sig_effs: Sequence[float] = DEFAULT_SIG_EFFS,
    n_boot: int = 200,
    rng: np.random.Generator | None = None,
) -> dict[str, Any]:
    """One entry of ``metrics.json["rocs"]``: counts, and per method AUC and efficiencies with CIs.

    ``signal``/``background`` name the classes (``"true tracks"``, ``"ghosts"``);
    ``scores`` maps a method name to its scores, larger for signal; ``rng``
    (required) draws the bootstrap resamples.
    """
    y = _labels(y_true)
    summaries = bootstrap_roc(y, scores, sig_effs, n_boot, rng=rng)
    methods: dict[str, Any] = {}
    for m, r in summaries.items():
        keys = [sig_eff_key(e) for e in r.sig_effs]
        rej = rejection(r.bkg_eff)
        rej_ci = rejection(r.bkg_eff_ci95[:, ::-1])  # a decreasing map swaps the ends
        methods[m] = {
            "auc": r.auc,
            "auc_ci95": _pair(r.auc_ci95),
            "bkg_eff_at_sig_eff": {k: float(v) for k, v in zip(keys, r.bkg_eff, strict=True)},
            "bkg_eff_at_sig_eff_ci95": {
                k: _pair(v) for k, v in zip(keys, r.bkg_eff_ci95, strict=True)
            },
            "rejection_at_sig_eff": {k: _finite_or_none(v) for k, v in zip(keys, rej, strict=True)},
            "rejection_at_sig_eff_ci95": {k: _pair(v) for k, v in zip(keys, rej_ci, strict=True)},
        }
    return {
        "signal": str(signal),
        "background": str(background),
        "n_signal": int(y.sum()),
        "n_background": int((~y).sum()),
        "n_boot": int(n_boot),
        "methods": methods,
    }


class MetricsLayoutError(ValueError):
    """A metrics dict that does not follow the common layout; the message names the key."""


def _is_num(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool)


def validate_metrics(data: Any) -> None:
    """Check the common metrics layout; raise :class:`MetricsLayoutError` naming the key."""

    def fail(key: str, what: str) -> NoReturn:
        raise MetricsLayoutError(f"key '{key}' {what}")

    if not isinstance(data, Mapping):
        raise MetricsLayoutError(f"top level must be an object, got {type(data).__name__}")
    if not isinstance(data.get("network"), str) or not data["network"]:
        fail("network", "is missing or not a non-empty string")
    rocs = data.get("rocs")
    if not isinstance(rocs, Mapping) or not rocs:
        fail("rocs", "is missing or not a non-empty object")
    for name, roc in rocs.items():
        p = f"rocs.{name}"
        if not isinstance(roc, Mapping):
            fail(p, "is not an object")
        for k in ("signal", "background"):
            if not isinstance(roc.get(k), str):
                fail(f"{p}.{k}", "is missing or not a string")
        for k in ("n_signal", "n_background"):
            v = roc.get(k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                fail(f"{p}.{k}", "is missing or not a non-negative integer")
        methods = roc.get("methods")
        if not isinstance(methods, Mapping) or not methods:
            fail(f"{p}.methods", "is missing or not a non-empty object")
        for m, entry in methods.items():
            q = f"{p}.methods.{m}"
            if not isinstance(entry, Mapping):
                fail(q, "is not an object")
            a = entry.get("auc")
            if not _is_num(a) or not 0.0 <= float(a) <= 1.0:
                fail(f"{q}.auc", "is missing or not a number in [0, 1]")
            ci = entry.get("auc_ci95")
            if (
                not isinstance(ci, list | tuple)
                or len(ci) != 2
                or not all(c is None or _is_num(c) for c in ci)
            ):
                fail(f"{q}.auc_ci95", "is missing or not a pair [low, high]")
            if all(_is_num(c) for c in ci) and ci[0] > ci[1]:
                fail(f"{q}.auc_ci95", f"has low {ci[0]} > high {ci[1]}")
            effs = entry.get("bkg_eff_at_sig_eff")
            if not isinstance(effs, Mapping) or not effs:
                fail(f"{q}.bkg_eff_at_sig_eff", "is missing or not a non-empty object")
            for k, v in effs.items():
                try:
                    e = float(k)
                except ValueError:
                    e = -1.0
                if not 0.0 < e <= 1.0:
                    fail(f"{q}.bkg_eff_at_sig_eff.{k}", "is not a signal efficiency in (0, 1]")
                if not _is_num(v) or not 0.0 <= v <= 1.0:
                    fail(f"{q}.bkg_eff_at_sig_eff.{k}", "is not a number in [0, 1]")
    plots = data.get("plots")
    if plots is not None and (
        not isinstance(plots, Mapping) or not all(isinstance(v, str) for v in plots.values())
    ):
        fail("plots", "is not an object of file name -> caption")


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays, tuples and paths; NaN and inf become None."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"cannot write a {type(obj).__name__} to metrics.json")


def write_metrics(
    path: str | Path, network: str, rocs: Mapping[str, Mapping[str, Any]], **blocks: Any
) -> dict[str, Any]:
    """Write ``metrics.json`` in the common layout, atomically; return what was written.

    ``rocs`` maps a ROC name to a :func:`roc_block`; ``blocks`` are task-specific
    (``ghost_fraction=0.2``, ``tracking={...}``, ``plots={"roc.png": "caption"}``).
    numpy types are converted; a wrong layout raises :class:`MetricsLayoutError`.
    """
    data = to_jsonable({"network": network, "rocs": rocs, **blocks})
    validate_metrics(data)
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
    return data


def read_metrics(path: str | Path) -> dict[str, Any]:
    """Read and validate a ``metrics.json``; any problem is a :class:`HepmlError` naming the file."""
    path = check_input_file(path, "metrics file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HepmlError(
            f"metrics file '{path}' is not valid JSON ({type(exc).__name__})"
        ) from None
    try:
        validate_metrics(data)
    except MetricsLayoutError as exc:
        raise HepmlError(f"metrics file '{path}': {exc}") from None
    return data


# --------------------------------------------------------------------------- plot
def _curve_for_plot(
    tpr: np.ndarray, fpr: np.ndarray, n_points: int = 600
) -> tuple[np.ndarray, np.ndarray]:
    """The ROC sampled on a signal-efficiency grid dense near 1 (keeps plots light for 1e6 candidates)."""
    grid = np.unique(
        np.concatenate([np.linspace(0.0, 1.0, n_points), 1.0 - np.geomspace(1e-4, 0.5, n_points)])
    )
    grid = grid[grid > 0]
    return grid, _interp_bkg_eff(tpr[None], fpr[None], grid)[0]


def plot_rocs(
    path: str | Path,
    curves: Mapping[str, tuple[np.ndarray, Mapping[str, np.ndarray]]],
    rocs: Mapping[str, Mapping[str, Any]] | None = None,
    title: str = "",
) -> None:
    """Draw ROC curves, one panel per ROC, and save a PNG atomically.

    ``curves`` maps a ROC name to ``(y_true, {method: scores})``; ``rocs``
    (optional) maps the same names to their :func:`roc_block`, whose AUC and 95%
    interval go into the legend and whose working points are marked. Axes: x =
    signal efficiency, y = background rejection ``1 / bkg_eff`` (log), the HEP
    convention; the dotted line is a random classifier (rejection ``1 / sig_eff``).
    Rendered with matplotlib's Agg canvas on a standalone ``Figure`` (no pyplot,
    no global backend change).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("no ROC to plot")
    rocs = rocs or {}
    n = len(curves)
    fig = Figure(figsize=(5.2 * n, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (name, (y_true, scores)) in zip(axes, curves.items(), strict=True):
        y = _labels(y_true)
        block = rocs.get(name, {})
        ymax = 1.0
        for m, s in scores.items():
            srt = _Ranked.build(y, _scores(s, len(y), m))
            tpr, fpr = _roc_points(*srt.counts())
            x, b = _curve_for_plot(tpr[0], fpr[0])
            keep = b > 0
            entry = block.get("methods", {}).get(m)
            if entry is not None:
                lo, hi = entry["auc_ci95"]
                ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
                label = f"{m}: AUC {entry['auc']:.3f}{ci}"
            else:
                label = f"{m}: AUC {_auc_from_groups(*srt.counts())[0]:.3f}"
            ax.plot(x[keep], 1.0 / b[keep], label=label, lw=1.6)
            if keep.any():
                ymax = max(ymax, float((1.0 / b[keep]).max()))
        xs = np.linspace(0.01, 1.0, 200)
        ax.plot(xs, 1.0 / xs, ls=":", color="grey", lw=1, label="random")
        for k in block.get("methods", {}).get(next(iter(scores)), {}).get("bkg_eff_at_sig_eff", {}):
            ax.axvline(float(k), color="0.85", lw=0.8, zorder=0)
        ax.set_yscale("log")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.8, ymax * 2.0)
        sig = block.get("signal", "signal")
        bkg = block.get("background", "background")
        ax.set_xlabel(f"signal efficiency ({sig})")
        ax.set_ylabel(f"background rejection 1/eff ({bkg})")
        counts = (
            f" (n = {block['n_signal']} / {block['n_background']})" if "n_signal" in block else ""
        )
        ax.set_title(f"{name}{counts}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
