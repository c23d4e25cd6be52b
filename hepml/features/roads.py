"""The hit-labeller data contract: per-hit features of a road, written down once.

A *road* (:mod:`hepml.reco.roads`) is the sequence of hits the labeller sees for
one seed: the seed's three hits first (inner to outer), then, layer after later
layer, the candidates inside the seed's window, at most
``roads.max_hits_per_layer`` per layer, ordered by their residual to the road
follower's running prediction. Every feature below is computed in
:func:`hepml.reco.roads.build_roads` and nowhere else; building, training,
evaluation and ``hepml reconstruct`` all use that one function.

Feature columns (``FEATURES``, float32, all O(1)):

==================  ===========================================================
``u_seed``          r*phi residual to the seed helix prediction / window half-width (in [-1, 1]; 0 on seed hits)
``v_seed``          z residual to the seed helix prediction / window half-width (in [-1, 1]; 0 on seed hits)
``r``               hit radius / 1000 mm
``layer``           global layer / (n_layers - 1)
``density``         log1p(hits in the seed window per cm^2) (0 on seed hits)
``n_window``        log1p(hits in the seed window of this layer) (0 on seed hits)
``is_seed``         1 for the seed's three hits
``rank``            rank of the hit in its layer by follower chi2 / max_hits_per_layer (0 = best)
``q_over_pt``       the seed fit's q / pT times 0.2 GeV, clipped to [-2, 2]
``cot_theta``       the seed fit's cot(theta), clipped to [-3, 3]
``u_follow``        asinh(r*phi residual to the follower's running prediction / sigma_rphi)
``v_follow``        asinh(z residual to the follower's running prediction / sigma_z)
``picked``          1 if the road follower took the hit
``u_final``         asinh(r*phi residual to the follower's final fit / sigma_rphi)
``v_final``         asinh(z residual to the follower's final fit / sigma_z)
``n_picked``        hits in the follower's track (seed included) / n_layers (same for the whole road)
==================  ===========================================================

In ``u_follow``/``v_follow`` sigma is the follower's expected residual width at
the hit's layer: hit resolution (pitch / sqrt(12)), Highland scattering since its
last hit and its fit's extrapolation error, in quadrature (the chi2 the follower
ranks and cuts on, :func:`hepml.reco.roads.build_roads`). In ``u_final``/``v_final``
sigma is the hit resolution and the scattering accumulated from the beam line
(:func:`hepml.reco.roads.ms_sigma_since` from layer 0); elements whose helix does
not reach the layer get 10. On a seed hit the running prediction is the final
fit. The road follower's per-hit score (the ROC baseline) is -chi2.

Tensors for the network (:func:`pad_roads`): ``x`` (N, L, F) zero-padded,
``lengths`` (N,) int64, ``target`` (N, L) float 0/1, ``mask`` (N, L) bool.
"""

from __future__ import annotations

import numpy as np

FEATURES: tuple[str, ...] = (
    "u_seed",
    "v_seed",
    "r",
    "layer",
    "density",
    "n_window",
    "is_seed",
    "rank",
    "q_over_pt",
    "cot_theta",
    "u_follow",
    "v_follow",
    "picked",
    "u_final",
    "v_final",
    "n_picked",
)
N_FEATURES = len(FEATURES)
COL = {name: i for i, name in enumerate(FEATURES)}


def pad_roads(
    road_ptr: np.ndarray, values: np.ndarray, width: int | None = None, fill: float = 0.0
) -> np.ndarray:
    """Scatter flat per-element ``values`` (M, ...) of roads ``road_ptr`` (R+1,) into (R, L, ...).

    L is ``width`` or the longest road; elements beyond a road's length are ``fill``.
    """
    road_ptr = np.asarray(road_ptr, dtype=np.int64)
    lengths = np.diff(road_ptr)
    n = len(lengths)
    width = int(lengths.max(initial=0)) if width is None else int(width)
    out = np.full((n, width, *values.shape[1:]), fill, dtype=values.dtype)
    road = np.repeat(np.arange(n), lengths)
    pos = np.arange(len(road)) - np.repeat(road_ptr[:-1], lengths)
    out[road, pos] = values
    return out


def unpad(road_ptr: np.ndarray, padded: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pad_roads`: the flat (M, ...) elements of padded (R, L, ...) values."""
    road_ptr = np.asarray(road_ptr, dtype=np.int64)
    lengths = np.diff(road_ptr)
    road = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.arange(len(road)) - np.repeat(road_ptr[:-1], lengths)
    return padded[road, pos]
