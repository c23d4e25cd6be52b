"""Truth matching of track candidates (LHCb's definition).

A candidate's *majority particle* is the particle that left most of its hits
(noise hits, particle id ``noise_id``, never count as a particle; a tie goes to
the smaller particle id). Its *purity* is the fraction of the candidate's hits
(noise included) that the majority particle left. A candidate is **true** when
its purity is at least ``min_purity`` (0.7: LHCb, "LHCb detector performance",
Int. J. Mod. Phys. A 30 (2015) 1530022, section 3) and a **ghost** otherwise. Of
several true candidates of one particle (within one event), all but the best
(highest purity, then most hits, then first in order) are **clones**.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: LHCb's matching threshold: at least 70% of the hits from one particle.
MIN_PURITY = 0.7


@dataclass
class TrackMatch:
    """Truth of each candidate; every field is an ``(N,)`` array.

    ``particle_id`` is the majority particle (``noise_id`` when every hit is noise),
    ``n_hits`` the candidate's hits, ``n_majority`` those of the majority particle.
    """

    particle_id: np.ndarray
    purity: np.ndarray
    n_hits: np.ndarray
    n_majority: np.ndarray
    is_true: np.ndarray
    is_clone: np.ndarray

    @property
    def is_ghost(self) -> np.ndarray:
        return ~self.is_true


def _padded(
    track_hit_particle_ids: np.ndarray | Sequence[np.ndarray], mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(track_hit_particle_ids, np.ndarray) and track_hit_particle_ids.ndim == 2:
        ids = track_hit_particle_ids.astype(np.int64)
        m = np.ones(ids.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if m.shape != ids.shape:
            raise ValueError(f"mask shape {m.shape} differs from the ids' {ids.shape}")
        return ids, m
    rows = [np.asarray(r, dtype=np.int64).ravel() for r in track_hit_particle_ids]
    width = max((len(r) for r in rows), default=0)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    m = np.zeros((len(rows), width), dtype=bool)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        m[i, : len(r)] = True
    return ids, m


def match_tracks(
    track_hit_particle_ids: np.ndarray | Sequence[np.ndarray],
    mask: np.ndarray | None = None,
    event_id: np.ndarray | None = None,
    min_purity: float = MIN_PURITY,
    noise_id: int = 0,
) -> TrackMatch:
    """Majority particle, purity, true/ghost and clone flags of each candidate.

    Args:
        track_hit_particle_ids: the particle id of every hit of every candidate,
            either a list of (n_i,) arrays or an (N, L) array with ``mask`` (N, L)
            saying which entries are hits.
        event_id: (N,) event of each candidate; clones are looked for within an
            event (default: all candidates from one event).
        min_purity: the true-track threshold (LHCb: 0.7).
        noise_id: the particle id of noise hits.
    """
    ids, m = _padded(track_hit_particle_ids, mask)
    n = len(ids)
    n_hits = m.sum(axis=1)
    ev = np.zeros(n, dtype=np.int64) if event_id is None else np.asarray(event_id, dtype=np.int64)
    track = np.repeat(np.arange(n), ids.shape[1]).reshape(ids.shape)
    sel = m & (ids != noise_id)
    t, p = track[sel], ids[sel]
    particle = np.full(n, noise_id, dtype=np.int64)
    n_major = np.zeros(n, dtype=np.int64)
    if len(t):
        order = np.lexsort((p, t))
        t, p = t[order], p[order]
        new = np.r_[True, (t[1:] != t[:-1]) | (p[1:] != p[:-1])]
        starts = np.flatnonzero(new)
        counts = np.diff(np.r_[starts, len(t)])
        ut, up = t[starts], p[starts]
        # per track: most hits, then the smallest particle id
        best = np.lexsort((up, -counts, ut))
        first = np.r_[True, ut[best][1:] != ut[best][:-1]]
        b = best[first]
        particle[ut[b]] = up[b]
        n_major[ut[b]] = counts[b]
    with np.errstate(divide="ignore", invalid="ignore"):
        purity = np.where(n_hits > 0, n_major / np.maximum(n_hits, 1), 0.0)
    is_true = (purity >= min_purity - 1e-12) & (particle != noise_id)
    is_clone = np.zeros(n, dtype=bool)
    tt = np.flatnonzero(is_true)
    if len(tt):
        # best per (event, particle): highest purity, most hits, first in order
        order = np.lexsort((tt, -n_hits[tt], -purity[tt], particle[tt], ev[tt]))
        o = tt[order]
        first = np.r_[True, (particle[o][1:] != particle[o][:-1]) | (ev[o][1:] != ev[o][:-1])]
        is_clone[o[~first]] = True
    return TrackMatch(
        particle_id=particle,
        purity=purity.astype(np.float64),
        n_hits=n_hits.astype(np.int64),
        n_majority=n_major,
        is_true=is_true,
        is_clone=is_clone,
    )
