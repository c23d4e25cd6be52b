"""The TrackML score and the tracking efficiency, fake and duplicate rates.

TrackML score (Amrouche et al., "The Tracking Machine Learning challenge:
Accuracy phase", arXiv:1904.06778, sec. 4; the challenge's ``trackml-library``,
``weights.py`` and ``score.py``): every hit carries a weight; a reconstructed
track *scores* when its majority particle holds > 50% of the track's hits and
the track holds > 50% of that particle's hits (double majority); the event score
is the sum of the weights of the scoring tracks' hits that belong to their
majority particle.

Hit weights, as in the ``trackml-library``:

* pT weight: 0.2 below 0.5 GeV, rising linearly to 1 at 3 GeV, 1 above. (The
  library also sets 0 below 0.05 GeV, "just to be sure", which no particle
  reaching our tracker has; we keep the rule as stated in the paper.)
* order weight: a particle's hits are ordered by ``|z - vz|`` (the true ``tz`` at
  the hit when the hits carry it, else the measured ``z``; ``vz`` the particle's
  production vertex). The profile ``[10, 8, 6, 5, 3, 3, 3, 5, 6]`` is stretched
  over the particle's hit count: the library places the nine profile values at
  ``i * (nhits - 1) / 8``, ``i = 0..8``, interpolates linearly at hit indices
  ``0..nhits-1`` (``numpy.interp``), and normalises the result to sum to 1 over
  the particle's hits. Hit counts above 20 use the 20-hit profile and hits after
  the 20th get weight 0, as in the library. Particles with fewer than 4 hits get
  0, and so does noise (``particle_id`` 0) and any hit whose particle is absent
  from the particle table.
* material secondaries: hits of particles made in the detector material
  (``generation`` >= 1 in the particle table; TrackML's ``particle_id`` encodes
  it) get 0. This rule is not in the library's ``weights.py``, but it is in the
  weights the challenge published with its truth files. In the real sample
  ``event000000001``, every one of the 41 generation >= 1 particles with four or
  more hits has weight 0. With the rule, these weights reproduce the published
  ones on every hit to 1e-5 (``tests/test_evaluate_trackml.py``). All 41 of
  those particles have pT < 0.5 GeV, so the sample cannot tell this rule from a
  "below 0.5 GeV" one; the simpler is kept. In the full real events' particle
  tables, 26 of 797 and 24 of 1001 such particles (4+ hits) are above 0.5 GeV.
* ``weight = pT weight * order weight``, normalised so that the weights of one
  event sum to 1. Equal ``|z - vz|`` within a particle (the library's average
  rank then maps tied hits to one index, double-counting a profile value) are
  broken by ``hit_id`` here, so each particle's order weights sum to exactly 1.

Majority ties: a track's majority particle is the one with most hits on it,
ties broken towards the smallest ``particle_id`` (as the library's scan does,
so noise, id 0, wins a tie). A tie means the majority holds at most half of the
track's hits, so a tied track never scores and the choice never changes the
score; it only decides which particle a fake track is attributed to.
Hits absent from the submission (or with an empty ``track_id``) belong to no
track. With an ``event_id`` column in both tables, hits are matched on
``(event_id, hit_id)`` and tracks are per event; the score is then the sum over
events divided by the total truth weight, i.e. the mean of the event scores
when each event's weights sum to 1.

Tracking efficiency (the hit-labeller issue's definition): a *reconstructable*
particle has pT > ``min_pt`` and >= ``min_hits`` hits; it is *found* when a track
holds > 50% of its hits and > 50% of that track's hits are its (the double
majority). A track is *matched* to its majority particle when that (non-noise)
particle holds > 50% of the track's hits; otherwise it is a *fake* (majority
holds <= 50%, or the majority is noise). Among the tracks matched to one
particle the one holding most of its hits (then the smallest ``track_id``) is
the original, the others are *duplicates*; the duplicate rate is duplicates
over matched tracks (the ACTS convention). Tracks with fewer than
``min_track_hits`` hits are not counted as tracks (left-over hits that a track
builder emits as singletons); this cannot change the efficiency for
``min_track_hits <= 3`` and ``min_hits >= 5``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hepml.errors import HepmlError

ORDER_PROFILE: tuple[float, ...] = (10.0, 8.0, 6.0, 5.0, 3.0, 3.0, 3.0, 5.0, 6.0)
ORDER_MIN_HITS = 4
ORDER_MAX_HITS = 20
PT_WEIGHT_GEV = (
    (0.5, 0.2),
    (3.0, 1.0),
)  # (pT in GeV, weight): flat below, linear between, flat above
NOISE_ID = 0


def order_weight_matrix(
    profile: Sequence[float] = ORDER_PROFILE,
    min_hits: int = ORDER_MIN_HITS,
    max_hits: int = ORDER_MAX_HITS,
) -> np.ndarray:
    """Order weights indexed ``[nhits, ihit]``, shape ``(max_hits + 1, max_hits)``.

    Row ``nhits`` (``min_hits <= nhits <= max_hits``) is the profile stretched
    over ``nhits`` hits and normalised to sum 1; rows below ``min_hits`` are 0.
    """
    prof = np.asarray(profile, dtype=np.float64)
    w = np.zeros((max_hits + 1, max_hits))
    for nhits in range(min_hits, max_hits + 1):
        support = np.arange(len(prof)) * (nhits - 1) / (len(prof) - 1)
        row = np.interp(np.arange(nhits), support, prof)
        w[nhits, :nhits] = row / row.sum()
    return w


def pt_weight(pt_gev: np.ndarray) -> np.ndarray:
    """TrackML pT weight: 0.2 below 0.5 GeV, linear to 1 at 3 GeV, 1 above."""
    (p0, w0), (p1, w1) = PT_WEIGHT_GEV
    return np.interp(np.asarray(pt_gev, dtype=np.float64), [p0, p1], [w0, w1])


def _need(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise HepmlError(f"{what} lacks column '{missing[0]}'")


def _event_col(*dfs: pd.DataFrame) -> bool:
    return all("event_id" in d.columns for d in dfs)


def hit_weights(hits: pd.DataFrame, particles: pd.DataFrame) -> np.ndarray:
    """TrackML score weight of every hit, aligned with the rows of ``hits``, ``(N,)``.

    ``hits``: ``hit_id, particle_id, z`` (and ``tz`` when known; ``event_id`` for
    several events); ``particles``: ``particle_id, vz, px, py`` (GeV; and
    ``event_id``; ``generation`` when known, else every particle is taken as
    the generator's). The weights of each event sum to 1 (all zero for an event
    without a weighted hit). See the module docstring for the rules.
    """
    _need(hits, ["hit_id", "particle_id", "z"], "hits table")
    _need(particles, ["particle_id", "vz", "px", "py"], "particles table")
    per_event = _event_col(hits, particles)
    n = len(hits)
    if n == 0:
        return np.zeros(0)
    ev = hits["event_id"].to_numpy(np.int64) if per_event else np.zeros(n, np.int64)
    pid = hits["particle_id"].to_numpy(np.int64)
    z = hits["tz" if "tz" in hits.columns else "z"].to_numpy(np.float64)
    hid = hits["hit_id"].to_numpy(np.int64)

    keys = ["event_id", "particle_id"] if per_event else ["particle_id"]
    cols = keys + ["vz", "px", "py"] + (["generation"] if "generation" in particles else [])
    p = particles[cols].drop_duplicates(subset=keys)
    p_index = pd.MultiIndex.from_frame(p[keys]) if per_event else pd.Index(p["particle_id"])
    h_index = pd.MultiIndex.from_arrays([ev, pid]) if per_event else pd.Index(pid)
    row = p_index.get_indexer(h_index)  # -1: particle unknown
    known = (row >= 0) & (pid != NOISE_ID)
    row = np.where(known, row, 0)
    vz_p = np.append(p["vz"].to_numpy(np.float64), 0.0)  # one spare entry: tables may be empty
    pt_p = np.append(np.hypot(p["px"].to_numpy(np.float64), p["py"].to_numpy(np.float64)), 0.0)
    if "generation" in p:  # material secondaries weigh nothing
        known &= np.append(p["generation"].to_numpy(np.int64), 0)[row] == 0
    vz = np.where(known, vz_p[row], 0.0)
    w_pt = np.where(known, pt_weight(pt_p[row]), 0.0)

    # order of each hit along its particle: sort by (event, particle, |z - vz|, hit_id)
    dz = np.abs(z - vz)
    order = np.lexsort((hid, dz, pid, ev))
    e_s, p_s = ev[order], pid[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (e_s[1:] != e_s[:-1]) | (p_s[1:] != p_s[:-1])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, n))
    group = np.cumsum(new) - 1
    ihit = np.arange(n) - starts[group]
    nhits = sizes[group]
    table = order_weight_matrix()
    capped = np.minimum(nhits, ORDER_MAX_HITS)
    w_order_s = np.where(
        ihit < ORDER_MAX_HITS, table[capped, np.minimum(ihit, ORDER_MAX_HITS - 1)], 0.0
    )
    w_order = np.empty(n)
    w_order[order] = w_order_s

    w = w_pt * w_order
    _, ev_idx = np.unique(ev, return_inverse=True)
    total = np.bincount(ev_idx, weights=w)
    return np.where(total[ev_idx] > 0, w / np.where(total[ev_idx] > 0, total[ev_idx], 1.0), 0.0)


# --------------------------------------------------------------------------- track analysis
def _merge_submission(
    truth: pd.DataFrame, submission: pd.DataFrame, truth_cols: Sequence[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Truth rows with the submission's ``track_id`` and an ``assigned`` flag, and the event key."""
    _need(truth, ["hit_id", "particle_id", *truth_cols], "truth table")
    _need(submission, ["hit_id", "track_id"], "submission")
    ev_key = ["event_id"] if _event_col(truth, submission) else []
    hit_key = [*ev_key, "hit_id"]
    if truth.duplicated(subset=hit_key).any():
        dup = truth.loc[truth.duplicated(subset=hit_key), "hit_id"].iloc[0]
        raise HepmlError(f"truth table lists hit_id {dup} more than once")
    sub = submission[[*hit_key, "track_id"]].dropna(subset=["track_id"])
    if sub.duplicated(subset=hit_key).any():
        dup = sub.loc[sub.duplicated(subset=hit_key), "hit_id"].iloc[0]
        raise HepmlError(f"submission assigns hit_id {dup} more than once")
    t_index = pd.MultiIndex.from_frame(truth[hit_key]) if ev_key else pd.Index(truth["hit_id"])
    s_index = pd.MultiIndex.from_frame(sub[hit_key]) if ev_key else pd.Index(sub["hit_id"])
    pos = t_index.get_indexer(s_index)
    if (pos < 0).any():
        raise HepmlError(
            f"submission has hit_id {sub['hit_id'].iloc[int(np.argmax(pos < 0))]}, which is not in the truth table"
        )
    merged = truth[[*hit_key, "particle_id", *truth_cols]].reset_index(drop=True)
    track = np.zeros(len(merged), dtype=sub["track_id"].dtype)
    track[pos] = sub["track_id"].to_numpy()
    assigned = np.zeros(len(merged), dtype=bool)
    assigned[pos] = True
    merged["track_id"] = track
    merged["assigned"] = assigned
    return merged, ev_key


def _analyze_tracks(merged: pd.DataFrame, ev_key: list[str], weight: bool) -> pd.DataFrame:
    """One row per track: nhits, majority particle, its hits on the track and in total.

    Columns: ``[event_id], track_id, nhits, major_particle_id, major_nhits,
    major_particle_nhits`` (+ ``major_weight`` when ``weight``).
    """
    particle_nhits = (
        merged.groupby([*ev_key, "particle_id"], sort=False).size().rename("major_particle_nhits")
    )
    assigned = merged[merged["assigned"]]
    aggs: dict[str, Any] = {"n": ("particle_id", "size")}
    if weight:
        aggs["w"] = ("weight", "sum")
    pairs = (
        assigned.groupby([*ev_key, "track_id", "particle_id"], sort=False).agg(**aggs).reset_index()
    )
    nhits = pairs.groupby([*ev_key, "track_id"], sort=False)["n"].transform("sum")
    pairs["nhits"] = nhits
    # majority: most hits, ties to the smallest particle_id
    pairs = pairs.sort_values(
        [*ev_key, "track_id", "n", "particle_id"],
        ascending=[True] * len(ev_key) + [True, False, True],
        kind="stable",
    )
    major = pairs.drop_duplicates(subset=[*ev_key, "track_id"], keep="first")
    cols = {"particle_id": "major_particle_id", "n": "major_nhits"}
    if weight:
        cols["w"] = "major_weight"
    tracks = major.rename(columns=cols)
    tracks = tracks.join(particle_nhits, on=[*ev_key, "major_particle_id"])
    keep = [
        *ev_key,
        "track_id",
        "nhits",
        "major_particle_id",
        "major_nhits",
        "major_particle_nhits",
    ]
    if weight:
        keep.append("major_weight")
    return tracks[keep].reset_index(drop=True)


def trackml_score(truth: pd.DataFrame, submission: pd.DataFrame) -> float:
    """The TrackML score of a hit -> track assignment, in [0, 1] for one event.

    ``truth``: ``hit_id, particle_id, weight`` (:func:`hit_weights`);
    ``submission``: ``hit_id, track_id``; both may carry ``event_id``. A hit
    assigned twice, or not in the truth, is a :class:`HepmlError`.
    """
    merged, ev_key = _merge_submission(truth, submission, ["weight"])
    total = float(merged["weight"].sum())
    if total <= 0:
        raise HepmlError("truth weights sum to zero: no hit can score")
    tracks = _analyze_tracks(merged, ev_key, weight=True)
    if tracks.empty:
        return 0.0
    good = (2 * tracks["major_nhits"] > tracks["nhits"]) & (
        2 * tracks["major_nhits"] > tracks["major_particle_nhits"]
    )
    return float(tracks.loc[good, "major_weight"].sum() / total)


# --------------------------------------------------------------------------- efficiency, fakes, duplicates
@dataclass(frozen=True)
class TrackingResult:
    """Tracking efficiency, fake and duplicate rates, with per-particle and per-track flags.

    ``particles`` (one row per particle with hits): ``[event_id], particle_id,
    pt`` (GeV), ``eta, nhits, reconstructable, n_matched, found, duplicated``.
    ``tracks`` (tracks with >= ``min_track_hits`` hits): ``[event_id],
    track_id, nhits, major_particle_id, major_nhits, major_particle_nhits,
    purity, matched, fake, duplicate, double_majority, pt, eta`` (pT and eta of
    the majority particle; NaN for noise).
    """

    efficiency: float
    fake_rate: float
    duplicate_rate: float
    n_reconstructable: int
    n_found: int
    n_tracks: int
    n_fake: int
    n_duplicate: int
    particles: pd.DataFrame
    tracks: pd.DataFrame

    def summary(self) -> dict[str, float | int | None]:
        """The numbers for a ``metrics.json`` block (NaN rates, from empty samples, as None)."""

        def num(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        return {
            "efficiency": num(self.efficiency),
            "fake_rate": num(self.fake_rate),
            "duplicate_rate": num(self.duplicate_rate),
            "n_reconstructable": self.n_reconstructable,
            "n_found": self.n_found,
            "n_tracks": self.n_tracks,
            "n_fake": self.n_fake,
            "n_duplicate": self.n_duplicate,
        }


#: |eta| bins of the per-bin efficiencies (width 0.5 up to 3, as the issue asks, then the far forward)
ETA_BINS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)


def efficiency_by_abs_eta(
    result: TrackingResult, bins: tuple[float, ...] = ETA_BINS
) -> dict[str, dict[str, float | int | None]]:
    """Efficiency of the reconstructable particles in bins of |eta|: ``{"0.0-0.5": {efficiency,
    n_found, n_reconstructable}, ...}`` (efficiency None in an empty bin)."""
    p = result.particles[result.particles["reconstructable"]]
    a = np.abs(p["eta"].to_numpy(np.float64))
    found = p["found"].to_numpy(bool)
    out: dict[str, dict[str, float | int | None]] = {}
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        sel = (a >= lo) & (a < hi)
        n = int(sel.sum())
        k = int(found[sel].sum())
        out[f"{lo:.1f}-{hi:.1f}"] = {
            "efficiency": k / n if n else None,
            "n_found": k,
            "n_reconstructable": n,
        }
    return out


def _ratio(k: int, n: int) -> float:
    return k / n if n > 0 else float("nan")


def tracking_efficiency(
    hits: pd.DataFrame,
    particles: pd.DataFrame,
    submission: pd.DataFrame,
    *,
    min_pt_gev: float = 1.0,
    min_hits: int = 5,
    min_track_hits: int = 3,
) -> TrackingResult:
    """Efficiency, fake rate and duplicate rate of a hit -> track assignment.

    ``hits``: ``hit_id, particle_id``; ``particles``: ``particle_id, px, py, pz``
    (GeV); ``submission``: ``hit_id, track_id``; all may carry ``event_id``.
    Definitions in the module docstring.
    """
    _need(particles, ["particle_id", "px", "py", "pz"], "particles table")
    merged, ev_key = _merge_submission(hits, submission, [])
    pkey = [*ev_key, "particle_id"]
    kin = particles[[*pkey, "px", "py", "pz"]].drop_duplicates(subset=pkey).copy()
    kin["pt"] = np.hypot(kin["px"].to_numpy(np.float64), kin["py"].to_numpy(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        kin["eta"] = np.arcsinh(kin["pz"].to_numpy(np.float64) / kin["pt"].to_numpy())
    kin = kin.set_index(pkey)[["pt", "eta"]]

    tracks = _analyze_tracks(merged, ev_key, weight=False)
    tracks = tracks[tracks["nhits"] >= min_track_hits].copy()
    tracks["purity"] = tracks["major_nhits"] / tracks["nhits"]
    tracks["matched"] = (2 * tracks["major_nhits"] > tracks["nhits"]) & (
        tracks["major_particle_id"] != NOISE_ID
    )
    tracks["fake"] = ~tracks["matched"]
    tracks["double_majority"] = tracks["matched"] & (
        2 * tracks["major_nhits"] > tracks["major_particle_nhits"]
    )
    # among tracks matched to one particle the first by (most of its hits, smallest track_id) is the original
    ranked = tracks[tracks["matched"]].sort_values(
        [*ev_key, "major_particle_id", "major_nhits", "track_id"],
        ascending=[True] * len(ev_key) + [True, False, True],
        kind="stable",
    )
    dup_index = ranked.index[ranked.duplicated(subset=[*ev_key, "major_particle_id"], keep="first")]
    tracks["duplicate"] = tracks.index.isin(dup_index)
    tracks = tracks.join(kin, on=[*ev_key, "major_particle_id"])
    tracks.loc[tracks["major_particle_id"] == NOISE_ID, ["pt", "eta"]] = np.nan
    tracks = tracks.reset_index(drop=True)

    truth_parts = (
        merged[merged["particle_id"] != NOISE_ID]
        .groupby(pkey, sort=True)
        .size()
        .rename("nhits")
        .reset_index()
    )
    truth_parts = truth_parts.join(kin, on=pkey)
    matched = tracks[tracks["matched"]]
    n_matched = matched.groupby([*ev_key, "major_particle_id"]).size()
    n_matched.index = n_matched.index.set_names(pkey)
    found = matched[matched["double_majority"]].groupby([*ev_key, "major_particle_id"]).size()
    found.index = found.index.set_names(pkey)
    truth_parts = truth_parts.join(n_matched.rename("n_matched"), on=pkey).join(
        found.rename("n_double"), on=pkey
    )
    truth_parts["n_matched"] = truth_parts["n_matched"].fillna(0).astype(np.int64)
    truth_parts["found"] = truth_parts["n_double"].fillna(0) > 0
    truth_parts["duplicated"] = truth_parts["n_matched"] > 1
    truth_parts["reconstructable"] = (truth_parts["pt"] > min_pt_gev) & (
        truth_parts["nhits"] >= min_hits
    )
    parts = truth_parts.drop(columns="n_double")

    rec = parts["reconstructable"]
    n_rec, n_found = int(rec.sum()), int((rec & parts["found"]).sum())
    n_tracks, n_fake = len(tracks), int(tracks["fake"].sum())
    n_dup, n_match = int(tracks["duplicate"].sum()), int(tracks["matched"].sum())
    return TrackingResult(
        efficiency=_ratio(n_found, n_rec),
        fake_rate=_ratio(n_fake, n_tracks),
        duplicate_rate=_ratio(n_dup, n_match),
        n_reconstructable=n_rec,
        n_found=n_found,
        n_tracks=n_tracks,
        n_fake=n_fake,
        n_duplicate=n_dup,
        particles=parts,
        tracks=tracks,
    )
