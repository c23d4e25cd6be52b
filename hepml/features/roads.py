"""The hit-labeller data contract: per-hit features of a road, written down once.

A *road* (:mod:`hepml.reco.roads`) is the sequence of space points the labeller
sees for one seed: the seed's hits first, then, surface after surface along the
seed helix's path through the detector (barrel layers and disks alike), the
candidates inside the seed's window, at most ``roads.max_hits_per_surface`` per
surface, nearest first. A road has any length; two hits of one surface (an
overlap of modules) both appear. Every feature below is computed in
:func:`road_features`, called by :func:`hepml.reco.roads.build_roads` and
nowhere else; building, training, evaluation and ``hepml reconstruct`` all use it.

Feature columns (``FEATURES``, float32, all O(1)):

==================  ===========================================================
``u_seed``          asinh(residual across the track to the seed helix prediction / sigma) / 3 (0 on seed hits)
``v_seed``          asinh(residual along the surface (z barrel, r disk) to the seed prediction / sigma) / 3
``r``               point radius / 1000 mm
``z``               point z / 3000 mm
``s``               path length from the seed's first hit / 3000 mm
``disk``            1 on an endcap disk, 0 on a barrel layer
``region``          0 pixels, 0.5 short strips, 1 long strips (TrackML volumes 7-9, 12-14, 16-18)
``is_seed``         1 for the seed's hits
``rank``            rank of the point on its surface by distance to the seed prediction / 4 (0 = nearest)
``n_window``        log1p(points in the seed window on this surface)
``q_over_pt``       the seed fit's q / pT times 0.2 GeV, clipped to [-2, 2]
``eta``             the seed fit's pseudorapidity / 4
``follow_chi2``     log1p(chi2 to the road follower's running prediction) / 5 (0 on seed hits)
``picked``          1 if the road follower took the point
``u_final``         asinh(residual across the track to the follower's final fit / resolution) / 3
``v_final``         asinh(residual along the surface to the follower's final fit / resolution) / 3
``n_picked``        points in the follower's track (seed included) / 20 (same for the whole road)
``overlap``         1 if another point of the road lies on the same surface (an overlap or a rival)
==================  ===========================================================

Tensors for the network (:func:`pad_roads`): ``x`` (N, L, F) zero-padded,
``lengths`` (N,) int64, ``target`` (N, L) float 0/1, ``mask`` (N, L) bool.

A shard's dataset file (``.npz``, :func:`save_dataset` / :func:`load_datasets`)
holds the arrays :data:`DATASET_KEYS` (M road elements, R roads, E events) and
``feature_names``; a file built with other features is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hepml.detector import Detector
    from hepml.reco.fit import HelixFit
    from hepml.reco.spacepoints import SpacePoints

#: arrays of a road dataset file (``M`` road elements, ``R`` roads, ``E`` events)
DATASET_KEYS = (
    "features",  # (M, F) float32, FEATURES
    "label",  # (M,) int8, 1 = the seed's majority particle
    "hit_id",  # (M,) int64, the element's hit in its event
    "slot",  # (M,) int64, the building's one-hit key: module row, or n_modules + surface
    "picked",  # (M,) bool, taken by the road follower
    "follower_score",  # (M,) float32, -chi2 to the follower's running prediction
    "road_ptr",  # (R+1,) int64, road i = elements road_ptr[i]:road_ptr[i+1]
    "road_event",  # (R,) int64, event_id of each road
    "seed_particle",  # (R,) int64, the seed's majority particle (0: none)
    "event_ids",  # (E,) int64, every event of the shard (also those without roads)
    "event_n_seeds",  # (E,) int64, seeds found per event
)

FEATURES: tuple[str, ...] = (
    "u_seed",
    "v_seed",
    "r",
    "z",
    "s",
    "disk",
    "region",
    "is_seed",
    "rank",
    "n_window",
    "q_over_pt",
    "eta",
    "follow_chi2",
    "picked",
    "u_final",
    "v_final",
    "n_picked",
    "overlap",
)
N_FEATURES = len(FEATURES)
COL = {name: i for i, name in enumerate(FEATURES)}
#: TrackML volume -> region feature
REGION = {7: 0.0, 8: 0.0, 9: 0.0, 12: 0.5, 13: 0.5, 14: 0.5, 16: 1.0, 17: 1.0, 18: 1.0}


def road_features(
    *,
    sp: SpacePoints,
    det: Detector,
    road_ptr: np.ndarray,
    hit: np.ndarray,
    s: np.ndarray,
    is_seed: np.ndarray,
    picked: np.ndarray,
    follower_score: np.ndarray,
    final_t: np.ndarray,
    final_l: np.ndarray,
    n_picked: np.ndarray,
    seed_fit: HelixFit,
    u_seed: np.ndarray,
    v_seed: np.ndarray,
    rank: np.ndarray,
    n_window: np.ndarray,
) -> np.ndarray:
    """The (M, F) float32 features of road elements (see the module docstring)."""
    lengths = np.diff(road_ptr)
    road = np.repeat(np.arange(len(lengths)), lengths)
    surf_region = np.array([REGION.get(int(sf.volume_id), 0.5) for sf in det.surfaces])
    region = surf_region[np.maximum(sp.surface[hit], 0)]
    qpt = np.nan_to_num(seed_fit.q / seed_fit.pt_GeV, nan=0.0)[road]
    eta = np.nan_to_num(np.arcsinh(seed_fit.cot_theta), nan=0.0)[road]
    surf = sp.surface[hit]
    same_prev = np.r_[False, (surf[1:] == surf[:-1]) & (road[1:] == road[:-1])]
    same_next = np.r_[(surf[1:] == surf[:-1]) & (road[1:] == road[:-1]), False]
    cols = {
        "u_seed": np.arcsinh(u_seed) / 3.0,
        "v_seed": np.arcsinh(v_seed) / 3.0,
        "r": sp.r[hit] / 1000.0,
        "z": sp.z[hit] / 3000.0,
        "s": s / 3000.0,
        "disk": sp.disk[hit].astype(float),
        "region": region,
        "is_seed": is_seed.astype(float),
        "rank": rank / 4.0,
        "n_window": np.log1p(n_window),
        "q_over_pt": np.clip(0.2 * qpt, -2.0, 2.0),
        "eta": eta / 4.0,
        "follow_chi2": np.where(is_seed, 0.0, np.log1p(np.minimum(-follower_score, 1e6)) / 5.0),
        "picked": picked.astype(float),
        "u_final": np.arcsinh(final_t) / 3.0,
        "v_final": np.arcsinh(final_l) / 3.0,
        "n_picked": (n_picked / 20.0)[road],
        "overlap": (same_prev | same_next).astype(float),
    }
    out = np.empty((len(hit), len(FEATURES)), dtype=np.float32)
    values = [np.broadcast_to(cols[f], (len(hit),)) for f in FEATURES]
    # column by column (no (M, F) float64 temporary), in blocks of rows that stay in cache
    for start in range(0, len(hit), _BLOCK_ROWS):
        block = out[start : start + _BLOCK_ROWS]
        for i, v in enumerate(values):
            block[:, i] = v[start : start + _BLOCK_ROWS]
    return out


#: rows of the feature matrix filled at a time (8192 x F float32: 0.6 MB)
_BLOCK_ROWS = 8192


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


def save_dataset(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a road dataset (:data:`DATASET_KEYS` and the feature names) atomically."""
    from hepml.io import atomic_output

    missing = [k for k in DATASET_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"road dataset lacks '{missing[0]}'")
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, feature_names=np.asarray(FEATURES), **arrays)  # type: ignore[arg-type]


def load_datasets(paths: list[Path]) -> dict[str, np.ndarray]:
    """Concatenate road datasets (road pointers shifted); one-line errors for bad files."""
    from hepml.errors import HepmlError
    from hepml.io import check_finite_arrays, check_input_file

    parts = []
    for p in paths:
        p = check_input_file(Path(p), "dataset file")
        try:
            with np.load(p, allow_pickle=False) as d:
                missing = [k for k in DATASET_KEYS if k not in d.files]
                if missing:
                    raise HepmlError(f"'{p}' is not a hit_labeller dataset (lacks '{missing[0]}')")
                names = (
                    tuple(str(s) for s in d["feature_names"]) if "feature_names" in d.files else ()
                )
                if names != FEATURES:
                    raise HepmlError(
                        f"'{p}' was built with other features than hepml.features.roads.FEATURES; rebuild it"
                    )
                part = {k: d[k] for k in DATASET_KEYS}
        except HepmlError:
            raise
        except Exception as exc:
            raise HepmlError(f"'{p}' is not a readable .npz file ({type(exc).__name__})") from None
        check_finite_arrays(part, ("features",), p)
        parts.append(part)
    if not parts:
        raise HepmlError("no hit_labeller dataset given")
    out = {}
    for k in DATASET_KEYS:
        if k == "road_ptr":
            ptrs, off = [np.zeros(1, np.int64)], 0
            for d in parts:
                ptrs.append(d["road_ptr"][1:] + off)
                off += int(d["road_ptr"][-1])
            out[k] = np.concatenate(ptrs)
        else:
            out[k] = np.concatenate([d[k] for d in parts])
    return out
