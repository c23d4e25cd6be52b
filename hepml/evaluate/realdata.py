"""Simulated events against real TrackML events: the figures, their bands, the distributions.

Pure functions of the tables of :mod:`hepml.io` (one event each: ``hits`` with
``volume_id, layer_id, module_id, particle_id`` (0 = noise), truth ``tx, ty, tz``
at the module mid-plane; ``particles`` with ``particle_id, vx, vy, vz, px, py,
pz``). The figures (issue 9, section 3; the real values quoted are those of
TrackML's ``event000000001`` 5% sample):

* hit share of each part of the detector, over all hits (noise included):
  pixel barrel (volume 8) / endcaps (7, 9), short-strip barrel (13) / endcaps
  (12, 14), long-strip barrel (17) / endcaps (16, 18); real 0.242 / 0.262,
  0.229 / 0.131, 0.084 / 0.053;
* noise share: hits with ``particle_id`` 0 over all hits (real 0.15);
* hits per particle, median and mean, over the particles with at least one hit
  (counted in the hits table; real 11 and 10.0);
* double-hit share: of the (particle, volume, layer) pairs with a hit, those
  with two or more (module overlaps; real 0.278);
* the 95th percentile of ``|eta|`` of the hit positions, all hits (real 3.67);
* secondary share: of the particles with hits, those whose vertex lies at
  transverse radius ``r > 1 mm`` (V0 decays, hadronic interactions; real 0.24);
* the spectrum of the particles the TrackML score weighs (>= 4 hits): their
  median pT (real 0.45 GeV) and the share of them below 0.2 GeV (real 0.08);
* material secondaries: of the particles with >= 4 hits, those made in the
  detector material (``generation`` >= 1; real 0.098), and of those the share
  above 0.5 GeV (real 0 of 41; 0.03 in the full real events' particle tables).
  The TrackML score gives them no weight
  (:func:`hepml.evaluate.trackml.hit_weights`).

:func:`compare` holds a simulated event's figures against a real event's
within :data:`BANDS`: every hit share within 30% of the real value (ratio in
0.7-1.3), hits per particle within 2 hits (difference), the double-hit share
within a factor 0.6-1.5, the noise share within a factor 0.5-1.6, the median
pT within 15% and the soft share within a factor 0.6-1.6 (the sample holds ~50
particles below 0.2 GeV: 15% statistical error); the eta percentile, the
secondary share and the two material-secondary figures are reported without a
band.

:func:`local_residuals` gives the residual of each hit to its true crossing in
the module's local frame (measured minus true, u and v, mm and pitches) by
mapping ``(volume_id, layer_id, module_id)`` onto the rows of a
:class:`~hepml.detector.geometry.Modules` (TrackML's ``detectors.csv``). A
single-pixel (single-strip) hit smeared uniformly over its cell has an RMS
residual of pitch/sqrt(12) (:data:`UNIFORM_RMS_PITCH`); clusters of several
cells do better.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from hepml.detector.geometry import Modules
from hepml.evaluate.trackml import ORDER_MIN_HITS

#: Parts of the detector whose hit shares are compared: (figure suffix, volume ids, words).
DETECTOR_PARTS: tuple[tuple[str, tuple[int, ...], str], ...] = (
    ("pixel_barrel", (8,), "pixel barrel (volume 8)"),
    ("pixel_endcaps", (7, 9), "pixel endcaps (volumes 7, 9)"),
    ("short_strip_barrel", (13,), "short-strip barrel (volume 13)"),
    ("short_strip_endcaps", (12, 14), "short-strip endcaps (volumes 12, 14)"),
    ("long_strip_barrel", (17,), "long-strip barrel (volume 17)"),
    ("long_strip_endcaps", (16, 18), "long-strip endcaps (volumes 16, 18)"),
)
#: Sensor technologies (one pitch each) for the residuals: name -> volume ids.
TECHNOLOGIES: dict[str, tuple[int, ...]] = {
    "pixel": (7, 8, 9),
    "short strip": (12, 13, 14),
    "long strip": (16, 17, 18),
}
#: A vertex beyond this transverse radius (mm) makes a particle a secondary.
SECONDARY_R_MM = 1.0
#: the particles the TrackML score weighs have at least this many hits
WEIGHTED_MIN_HITS = ORDER_MIN_HITS
#: the soft end of the weighted particles' spectrum (GeV)
SOFT_PT_GEV = 0.2
#: the material secondaries' "hard" share is of those above this pT (GeV)
HARD_SECONDARY_PT_GEV = 0.5
#: Percentile of the hits' |eta| that is reported.
ETA_PERCENTILE = 95.0
#: RMS of a uniform distribution over one pitch, in pitches: 1/sqrt(12).
UNIFORM_RMS_PITCH = 1.0 / math.sqrt(12.0)
#: A hit's true crossing must lie this close (mm) to its module (plane and area).
ON_MODULE_TOL_MM = 0.5


@dataclass(frozen=True)
class Band:
    """The accepted range of a simulated figure against the real one.

    ``kind`` ``"ratio"``: ``lo <= sim / real <= hi``; ``"difference"``:
    ``lo <= sim - real <= hi``; ``"none"``: reported only (``ok`` is None).
    """

    kind: Literal["ratio", "difference", "none"]
    lo: float = -math.inf
    hi: float = math.inf

    def describe(self) -> str:
        if self.kind == "ratio":
            return f"ratio {self.lo:g}-{self.hi:g}"
        if self.kind == "difference":
            return f"difference {self.lo:+g} to {self.hi:+g}"
        return "none (reported)"

    def contains(self, sim: float, real: float) -> bool | None:
        """Whether ``sim`` lies in the band around ``real``; None for ``"none"``;
        False when either value is NaN."""
        if self.kind == "none":
            return None
        if not (math.isfinite(sim) and math.isfinite(real)):
            return False
        value = ratio(sim, real) if self.kind == "ratio" else sim - real
        return bool(self.lo <= value <= self.hi)


def ratio(sim: float, real: float) -> float:
    """``sim / real``; 1 when both are 0 (equal), inf when only ``real`` is 0, NaN on NaN."""
    if math.isnan(sim) or math.isnan(real):
        return math.nan
    if real == 0.0:
        return 1.0 if sim == 0.0 else math.inf
    return sim / real


_SHARE = Band("ratio", 0.7, 1.3)
#: Every figure in table order, with its band.
BANDS: dict[str, Band] = {
    **{f"hit_share_{name}": _SHARE for name, _, _ in DETECTOR_PARTS},
    "noise_share": Band("ratio", 0.5, 1.6),
    "hits_per_particle_median": Band("difference", -2.0, 2.0),
    "hits_per_particle_mean": Band("difference", -2.0, 2.0),
    "double_hit_share": Band("ratio", 0.6, 1.5),
    "hit_abs_eta_p95": Band("none"),
    "secondary_share": Band("none"),
    "weighted_pt_median_GeV": Band("ratio", 0.85, 1.15),
    "weighted_soft_share": Band("ratio", 0.6, 1.6),
    "material_secondary_share": Band("none"),
    "material_secondary_hard_share": Band("none"),
}
#: What each figure is, in words (the report's first column).
DESCRIPTIONS: dict[str, str] = {
    **{f"hit_share_{name}": f"hit share, {words}" for name, _, words in DETECTOR_PARTS},
    "noise_share": "noise hits (particle_id 0) over all hits",
    "hits_per_particle_median": "hits per particle with hits, median",
    "hits_per_particle_mean": "hits per particle with hits, mean",
    "double_hit_share": "(particle, layer) pairs with 2+ hits",
    "hit_abs_eta_p95": f"{ETA_PERCENTILE:g}th percentile of the hits' |eta|",
    "secondary_share": f"particles with hits from a vertex at r > {SECONDARY_R_MM:g} mm",
    "weighted_pt_median_GeV": f"median pT (GeV) of the particles with {WEIGHTED_MIN_HITS}+ hits",
    "weighted_soft_share": f"of those, the share below {SOFT_PT_GEV:g} GeV",
    "material_secondary_share": f"particles with {WEIGHTED_MIN_HITS}+ hits made in the material (generation >= 1)",
    "material_secondary_hard_share": f"of those, the share above {HARD_SECONDARY_PT_GEV:g} GeV",
}


# --------------------------------------------------------------------------- figures
def _one_event(hits: pd.DataFrame) -> None:
    if "event_id" in hits and hits["event_id"].nunique() > 1:
        raise ValueError(
            f"the figures are per event; got {hits['event_id'].nunique()} events (select one first)"
        )


def track_hits(hits: pd.DataFrame) -> pd.DataFrame:
    """The hits of particles (``particle_id`` > 0): noise (0) and unknown (-1) left out."""
    return hits[hits["particle_id"].to_numpy() > 0]


def hits_per_particle(hits: pd.DataFrame) -> np.ndarray:
    """Number of hits of every particle with at least one hit, by increasing particle_id."""
    _, counts = np.unique(track_hits(hits)["particle_id"].to_numpy(), return_counts=True)
    return counts


def _layer_pairs(hits: pd.DataFrame) -> pd.Series:
    t = track_hits(hits)
    return t.groupby(["particle_id", "volume_id", "layer_id"], sort=False).size()


def double_hit_share(hits: pd.DataFrame) -> float:
    """Fraction of the (particle, volume, layer) pairs with a hit that have two or more."""
    pairs = _layer_pairs(hits)
    return float((pairs.to_numpy() >= 2).mean()) if len(pairs) else math.nan


def double_hit_share_by_volume(hits: pd.DataFrame) -> pd.DataFrame:
    """:func:`double_hit_share` in each volume: columns ``pairs`` (the (particle, layer)
    pairs with a hit) and ``share`` (of those, the ones with 2+ hits); index ``volume_id``."""
    pairs = _layer_pairs(hits)
    two = (pairs >= 2).astype(np.float64)
    g = two.groupby(level="volume_id")
    return pd.DataFrame({"pairs": g.size(), "share": g.mean()}).sort_index()


def layer_hit_share(hits: pd.DataFrame) -> pd.Series:
    """Fraction of all hits (noise included) on each (volume_id, layer_id)."""
    n = hits.groupby(["volume_id", "layer_id"]).size().sort_index()
    return n / max(len(hits), 1)


def hit_abs_eta(hits: pd.DataFrame) -> np.ndarray:
    """``|eta|`` of the hit positions, ``asinh(|z| / r)`` with ``r`` the transverse radius (mm)."""
    x, y, z = (hits[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    return np.arcsinh(np.abs(z) / np.maximum(np.hypot(x, y), 1e-9))


def particles_with_hits(hits: pd.DataFrame, particles: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``particles`` that have at least one hit in ``hits``."""
    ids = np.unique(track_hits(hits)["particle_id"].to_numpy())
    return particles[np.isin(particles["particle_id"].to_numpy(), ids)]


def particle_pt_eta(hits: pd.DataFrame, particles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Transverse momentum (GeV) and pseudorapidity (of the momentum) of the particles with hits."""
    p = particles_with_hits(hits, particles)
    px, py, pz = (p[c].to_numpy(np.float64) for c in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    return pt, np.arcsinh(pz / np.maximum(pt, 1e-12))


def secondary_share(hits: pd.DataFrame, particles: pd.DataFrame) -> float:
    """Fraction of the particles with hits whose vertex lies at r > :data:`SECONDARY_R_MM`."""
    p = particles_with_hits(hits, particles)
    if not len(p):
        return math.nan
    r = np.hypot(p["vx"].to_numpy(np.float64), p["vy"].to_numpy(np.float64))
    return float((r > SECONDARY_R_MM).mean())


def _with_min_hits(hits: pd.DataFrame, particles: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``particles`` with at least :data:`WEIGHTED_MIN_HITS` hits in ``hits``."""
    ids, counts = np.unique(track_hits(hits)["particle_id"].to_numpy(), return_counts=True)
    return particles[np.isin(particles["particle_id"].to_numpy(), ids[counts >= WEIGHTED_MIN_HITS])]


def weighted_pt(hits: pd.DataFrame, particles: pd.DataFrame) -> np.ndarray:
    """pT (GeV) of the particles with at least :data:`WEIGHTED_MIN_HITS` hits: those the
    TrackML score weighs, and the material secondaries, which it does not."""
    p = _with_min_hits(hits, particles)
    return np.hypot(p["px"].to_numpy(np.float64), p["py"].to_numpy(np.float64))


def material_secondaries(hits: pd.DataFrame, particles: pd.DataFrame) -> tuple[float, float]:
    """Of the particles with at least :data:`WEIGHTED_MIN_HITS` hits, the share made in the
    material (``generation`` >= 1), and of those the share above
    :data:`HARD_SECONDARY_PT_GEV`; NaN where undefined (no ``generation`` column)."""
    p = _with_min_hits(hits, particles)
    if "generation" not in p or not len(p):
        return math.nan, math.nan
    sec = p["generation"].to_numpy() >= 1
    pt = np.hypot(p["px"].to_numpy(np.float64), p["py"].to_numpy(np.float64))[sec]
    return float(sec.mean()), float((pt > HARD_SECONDARY_PT_GEV).mean()) if len(pt) else math.nan


def event_figures(hits: pd.DataFrame, particles: pd.DataFrame) -> dict[str, float]:
    """Every figure of :data:`BANDS` for one event (NaN where undefined, e.g. no particle)."""
    _one_event(hits)
    n = len(hits)
    vol = hits["volume_id"].to_numpy()
    out: dict[str, float] = {}
    for name, vols, _ in DETECTOR_PARTS:
        out[f"hit_share_{name}"] = float(np.isin(vol, vols).sum() / n) if n else math.nan
    out["noise_share"] = float((hits["particle_id"].to_numpy() == 0).sum() / n) if n else math.nan
    counts = hits_per_particle(hits)
    out["hits_per_particle_median"] = float(np.median(counts)) if len(counts) else math.nan
    out["hits_per_particle_mean"] = float(counts.mean()) if len(counts) else math.nan
    out["double_hit_share"] = double_hit_share(hits)
    out["hit_abs_eta_p95"] = (
        float(np.percentile(hit_abs_eta(hits), ETA_PERCENTILE)) if n else math.nan
    )
    out["secondary_share"] = secondary_share(hits, particles)
    pt = weighted_pt(hits, particles)
    out["weighted_pt_median_GeV"] = float(np.median(pt)) if len(pt) else math.nan
    out["weighted_soft_share"] = float((pt < SOFT_PT_GEV).mean()) if len(pt) else math.nan
    (
        out["material_secondary_share"],
        out["material_secondary_hard_share"],
    ) = material_secondaries(hits, particles)
    return out


def event_counts(hits: pd.DataFrame, particles: pd.DataFrame) -> dict[str, int]:
    """Hits, noise hits and particles with hits of one event (the table's context)."""
    return {
        "hits": len(hits),
        "noise_hits": int((hits["particle_id"].to_numpy() == 0).sum()),
        "particles_with_hits": len(particles_with_hits(hits, particles)),
    }


# --------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class ComparisonRow:
    """One figure, simulated against real: ``ok`` None where the figure has no band."""

    figure: str
    sim: float
    real: float
    ratio: float
    difference: float
    band: str
    ok: bool | None


def compare(
    sim: Mapping[str, float], real: Mapping[str, float], bands: Mapping[str, Band] = BANDS
) -> list[ComparisonRow]:
    """One row per figure of ``bands`` (in its order): values, ratio, difference, band, ok."""
    rows = []
    for figure, band in bands.items():
        for side, values in (("sim", sim), ("real", real)):
            if figure not in values:
                raise KeyError(f"figure '{figure}' missing from the {side} figures")
        s, r = float(sim[figure]), float(real[figure])
        rows.append(
            ComparisonRow(figure, s, r, ratio(s, r), s - r, band.describe(), band.contains(s, r))
        )
    return rows


def out_of_band(rows: Sequence[ComparisonRow]) -> list[ComparisonRow]:
    """The rows outside their band, in table order."""
    return [r for r in rows if r.ok is False]


# --------------------------------------------------------------------------- residuals
def module_rows(
    modules: Modules, volume_id: np.ndarray, layer_id: np.ndarray, module_id: np.ndarray
) -> np.ndarray:
    """Row in ``modules`` of each (volume_id, layer_id, module_id); -1 where absent."""

    def key(v: np.ndarray, lay: np.ndarray, m: np.ndarray) -> np.ndarray:
        return (
            np.asarray(v, np.int64) * 1_000_000_000
            + np.asarray(lay, np.int64) * 1_000_000
            + np.asarray(m, np.int64)
        )

    keys = key(modules.volume_id, modules.layer_id, modules.module_id)
    order = np.argsort(keys, kind="stable")
    q = key(volume_id, layer_id, module_id)
    if not len(keys):
        return np.full(len(q), -1, dtype=np.int64)
    pos = np.clip(np.searchsorted(keys[order], q), 0, len(keys) - 1)
    return np.where(keys[order][pos] == q, order[pos], -1).astype(np.int64)


#: The local axes of a residual.
AXES: tuple[Literal["u", "v"], ...] = ("u", "v")


@dataclass(frozen=True)
class Residuals:
    """Measured minus true local coordinates of the hits of particles, with their pitches.

    ``table`` columns: ``volume_id``, ``technology``, ``du_mm``, ``dv_mm``,
    ``pitch_u_mm``, ``pitch_v_mm``. ``n_unknown_module``: hits whose module is not
    in the modules given; ``n_off_module``: hits whose true crossing does not lie
    on their module (another layout, or bad truth); both left out.
    """

    table: pd.DataFrame
    n_unknown_module: int
    n_off_module: int

    def in_pitch(self, axis: Literal["u", "v"]) -> np.ndarray:
        """Residuals along ``axis`` in units of that axis's pitch."""
        return (self.table[f"d{axis}_mm"] / self.table[f"pitch_{axis}_mm"]).to_numpy()

    def rms_pitch(self) -> dict[str, float]:
        """RMS residual in pitches per ``"<technology> <axis>"`` (NaN where no hit)."""
        out = {}
        tech = self.table["technology"].to_numpy()
        for name in TECHNOLOGIES:
            sel = tech == name
            for axis in AXES:
                d = self.in_pitch(axis)[sel]
                out[f"{name} {axis}"] = float(np.sqrt(np.mean(d * d))) if len(d) else math.nan
        return out


def local_residuals(hits: pd.DataFrame, modules: Modules) -> Residuals:
    """Residuals of the particles' hits to their true crossings in the module frames.

    Both the measured ``(x, y, z)`` and the true ``(tx, ty, tz)`` are taken to the
    local frame of the hit's module (``R^T (x - c)``); the residual is measured
    minus true, along u and v. Needs the truth columns ``tx, ty, tz``.
    """
    missing = [c for c in ("tx", "ty", "tz") if c not in hits]
    if missing:
        raise ValueError(f"hits lack the truth column '{missing[0]}'")
    t = track_hits(hits)
    rows = module_rows(
        modules,
        t["volume_id"].to_numpy(),
        t["layer_id"].to_numpy(),
        t["module_id"].to_numpy(),
    )
    known = rows >= 0
    t, rows = t[known], rows[known]
    u, v, _ = modules.to_local(rows, *(t[c].to_numpy(np.float64) for c in ("x", "y", "z")))
    tu, tv, tw = modules.to_local(rows, *(t[c].to_numpy(np.float64) for c in ("tx", "ty", "tz")))
    on = (np.abs(tw) <= 0.5 * modules.thickness[rows] + ON_MODULE_TOL_MM) & modules.inside(
        rows, tu, tv, tol=ON_MODULE_TOL_MM
    )
    vol = t["volume_id"].to_numpy()
    tech = np.full(len(t), "other", dtype=object)
    for name, vols in TECHNOLOGIES.items():
        tech[np.isin(vol, vols)] = name
    table = pd.DataFrame(
        {
            "volume_id": vol[on],
            "technology": tech[on],
            "du_mm": (u - tu)[on],
            "dv_mm": (v - tv)[on],
            "pitch_u_mm": modules.pitch_u[rows][on],
            "pitch_v_mm": modules.pitch_v[rows][on],
        }
    )
    return Residuals(table, int((~known).sum()), int((~on).sum()))
