"""Navigation: the ordered surfaces a track can cross, and the layer graph of seeding.

"Layer index = radius order" holds in a barrel only. Here the order comes from
propagating tracks: :func:`surfaces_crossed` gives, for tracks from the beam
line at (eta, z0), the surfaces in the order their helices cross them, and
:func:`layer_graph` collects which surface follows which over a grid of
(eta, z0, pT, charge), so that seeding can form triplets on any three
consecutive surfaces a track can cross (barrel-barrel-barrel, barrel-disk-disk,
disk-disk-disk), as ACTS' seeding and the TrackML throughput winners do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepml.detector.geometry import Detector
from hepml.detector.propagation import Crossings, TrackStates, propagate


def surfaces_crossed(
    det: Detector,
    eta: np.ndarray,
    z0_mm: np.ndarray,
    pt_GeV: np.ndarray | float = 1e5,
    q: np.ndarray | float = 1.0,
    phi: np.ndarray | float = 0.0,
) -> list[np.ndarray]:
    """For each track from (0, 0, z0) with (eta, phi, pT, q), its surfaces in crossing order.

    Surfaces whose modules the helix meets (a surface crossed twice through
    overlapping modules appears once). The default pT makes straight lines.
    """
    eta = np.asarray(eta, dtype=np.float64).ravel()
    n = len(eta)
    z0 = np.broadcast_to(np.asarray(z0_mm, dtype=np.float64), (n,))
    pt = np.broadcast_to(np.asarray(pt_GeV, dtype=np.float64), (n,))
    qq = np.broadcast_to(np.asarray(q, dtype=np.float64), (n,))
    ph = np.broadcast_to(np.asarray(phi, dtype=np.float64), (n,))
    states = TrackStates.from_momentum(
        np.zeros(n),
        np.zeros(n),
        z0.copy(),
        pt * np.cos(ph),
        pt * np.sin(ph),
        pt * np.sinh(eta),
        qq.copy(),
    )
    cr = propagate(states, det)
    return _sequences(cr, n)


def _sequences(cr: Crossings, n: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    bounds = np.searchsorted(cr.track, np.arange(n + 1))
    for i in range(n):
        s = cr.surface[bounds[i] : bounds[i + 1]]
        keep = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, dtype=bool)
        out.append(s[keep])
    return out


@dataclass(frozen=True)
class LayerGraph:
    """Which surface follows which along tracks from the beam line.

    ``edges[k]`` is a (n_k, 2) array of (surface, next surface k steps later)
    pairs seen on the grid of tracks, ``count`` how often each was seen.
    """

    n_surfaces: int
    triplets: tuple[tuple[int, int, int], ...]
    skip_triplets: tuple[tuple[int, int, int], ...]
    heads: tuple[tuple[int, ...], ...]

    def triplets_within(
        self, surfaces: set[int], skips: bool = False
    ) -> tuple[tuple[int, int, int], ...]:
        """Triplets (a, b, c) whose three surfaces are all in ``surfaces``: consecutive ones,
        or (``skips``) those with one surface skipped (a missing hit)."""
        pool = self.skip_triplets if skips else self.triplets
        return tuple(t for t in pool if set(t) <= surfaces)

    def early_triplets(
        self, surfaces: set[int], positions: tuple[tuple[int, int, int], ...]
    ) -> tuple[tuple[int, int, int], ...]:
        """Triplets of the surfaces at ``positions`` (0 = the first crossed) among the
        first ones tracks from the beam line cross within ``surfaces``: ((0, 1, 2),)
        is every track's first three; (1, 2, 3), (0, 1, 3), (0, 2, 3) serve tracks
        missing a hit on one of them."""
        out: set[tuple[int, int, int]] = set()
        for h in self.heads:
            inside = [s for s in h if s in surfaces]
            for p in positions:
                if max(p) < len(inside):
                    out.add((inside[p[0]], inside[p[1]], inside[p[2]]))
        return tuple(sorted(out))


def layer_graph(
    det: Detector,
    eta_max: float = 4.0,
    z0_max_mm: float = 150.0,
    pt_GeV: tuple[float, ...] = (0.3, 1.0, 1e5),
    n_eta: int = 161,
    n_z0: int = 7,
) -> LayerGraph:
    """The consecutive-surface triplets of tracks from the beam line over a grid:
    eta in [-eta_max, eta_max], z0 in [-z0_max, z0_max], the given pT and both
    charges (soft tracks curl into other disks than straight ones). Also the
    triplets with one surface skipped (a missing hit). Cached per detector."""
    key = (id(det), eta_max, z0_max_mm, pt_GeV, n_eta, n_z0)
    return _layer_graph_cached(det, key)


def _layer_graph_cached(det: Detector, key: tuple) -> LayerGraph:
    cached = det.__dict__.setdefault("_layer_graphs", {})
    if key in cached:
        return cached[key]
    _, eta_max, z0_max, pts, n_eta, n_z0 = key
    e, z, p, q = np.meshgrid(
        np.linspace(-eta_max, eta_max, n_eta),
        np.linspace(-z0_max, z0_max, n_z0),
        np.asarray(pts, dtype=np.float64),
        np.array([-1.0, 1.0]),
        indexing="ij",
    )
    seqs = surfaces_crossed(det, e.ravel(), z.ravel(), p.ravel(), q.ravel())
    trip: set[tuple[int, int, int]] = set()
    skip: set[tuple[int, int, int]] = set()
    heads: set[tuple[int, ...]] = set()
    for seq in seqs:
        s = [int(v) for v in seq]
        heads.add(tuple(s[:8]))
        for i in range(len(s) - 2):
            trip.add((s[i], s[i + 1], s[i + 2]))
        for i in range(len(s) - 3):
            skip.add((s[i], s[i + 1], s[i + 3]))
            skip.add((s[i], s[i + 2], s[i + 3]))
    graph = LayerGraph(
        len(det.surfaces), tuple(sorted(trip)), tuple(sorted(skip - trip)), tuple(sorted(heads))
    )
    cached[key] = graph
    return graph
