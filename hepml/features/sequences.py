"""The ghost-filter data contract: per-track hit sequences, written down once.

Used by building (:func:`hepml.tasks.ghost_filter.build`), training and
evaluation alike; a dataset file carries :data:`CONTRACT_VERSION` and the
feature names, and :func:`load_datasets` refuses files of another contract.

**Sequences.** Each track candidate is a sequence of its hits ordered by radius
(global layer, inner to outer), left-aligned and zero-padded to ``L = n_layers``
(10 for the TrackML barrel); ``lengths`` gives the number of hits. Per hit
(:data:`HIT_FEATURES`, fixed scales, no fitted standardisation):

==============  ======================================================  =====================
name            definition                                              normalisation
==============  ======================================================  =====================
r               hit radius (mm)                                         / 1000
phi             hit azimuth minus the track's phi0 at the PCA (rad)     wrapped, / 0.5
z               hit z (mm)                                              / 1000
pull_rphi       r*phi residual to the fitted helix / sigma_rphi         clipped to +-10, / 3
pull_z          z residual to the fitted helix / sigma_z                clipped to +-10, / 3
res_rphi        r*phi residual (mm)                                     asinh(res / 0.02) / 5
res_z           z residual (mm)                                         asinh(res / 0.05) / 5
layer           global layer 0..n-1                                     / (n - 1)
d_layer         layers stepped from the previous hit (0 for the first)  / 3
d_r             radius step from the previous hit (mm, 0 first)         / 1000
d_phi           azimuth step from the previous hit (rad, 0 first)       wrapped, / 0.1
d_z             z step from the previous hit (mm, 0 first)              / 100
==============  ======================================================  =====================

sigma_rphi and sigma_z are the resolutions the fit used: pitch/sqrt(12) plus
multiple scattering for the fitted momentum
(:meth:`hepml.reco.fit.LayerResolution.hit_sigmas`). Residuals are left-signed
in r*phi and (measured - fitted) in z (:func:`hepml.reco.fit.residuals`).

Per track (:data:`TRACK_FEATURES`), from the final helix fit: ``log10_pt``
(log10 pT/GeV clipped to [-1, 2]), ``q`` (+-1), ``d0`` (asinh(d0 / 0.1 mm) / 3),
``z0`` (z0 / 100 mm), ``eta`` (asinh cot theta), ``log_chi2_ndf``
(log(1 + chi2/ndf) clipped to 10), ``ndf`` (/ 15), ``n_hits`` (/ 10),
``n_holes`` (missing layers between the first and last hit), ``shared_fraction``
(fraction of the hits also used by another candidate of the event),
``max_pull_rphi`` and ``max_pull_z`` (log(1 + max |pull|)), ``first_layer``
(layer of the first hit / 3). The gradient-boosted baseline uses these same
track features; the chi2 baseline uses the raw ``chi2_ndf``.

**Dataset file** (``.npz``, :func:`save_dataset`; N candidates, E events, P particles):

* ``hit_features`` (N, L, F_hit) float32, ``lengths`` (N,) int64,
  ``track_features`` (N, F_track) float32 — the model inputs;
* ``hit_ids`` (N, L) int64: the TrackML ``hit_id`` of each sequence entry
  (-1 padding) and ``event_id`` (N,) int64, so that every prediction traces back
  to its hits;
* ``label`` (N,) float32: 1 true track, 0 ghost (purity >= ``min_purity``);
  ``is_clone`` (N,) bool; ``purity`` (N,) float32; ``particle_id`` (N,) int64
  (majority particle, 0 when none);
* ``particle_pt_GeV``, ``particle_eta`` (N,) float32: truth of the majority
  particle (NaN when none), and ``pt_GeV``, ``eta``, ``chi2_ndf``, ``d0_mm``,
  ``z0_mm`` (N,) float32, ``n_hits`` (N,) int64 from the fit;
* ``events`` (E,) int64: every event of the shard, even one without candidates;
* ``particles_event_id``, ``particles_id`` (P,) int64, ``particles_pt_GeV``,
  ``particles_eta`` (P,) float32, ``particles_n_layers`` (P,) int64: every
  particle of those events (the efficiency denominator);
* ``hit_feature_names``, ``track_feature_names`` (str arrays), ``contract_version``.

A shard without events or without candidates is written as a valid dataset with
N = 0 (and a note on stderr); training or evaluating on no candidates at all is
an error naming the files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hepml.errors import HepmlError
from hepml.io import atomic_output
from hepml.reco.fit import HelixFit, LayerResolution, residuals
from hepml.reco.seeding import wrap_phi

if TYPE_CHECKING:
    from hepml.train import TensorData

CONTRACT_VERSION = 1

HIT_FEATURES: tuple[str, ...] = (
    "r",
    "phi",
    "z",
    "pull_rphi",
    "pull_z",
    "res_rphi",
    "res_z",
    "layer",
    "d_layer",
    "d_r",
    "d_phi",
    "d_z",
)
TRACK_FEATURES: tuple[str, ...] = (
    "log10_pt",
    "q",
    "d0",
    "z0",
    "eta",
    "log_chi2_ndf",
    "ndf",
    "n_hits",
    "n_holes",
    "shared_fraction",
    "max_pull_rphi",
    "max_pull_z",
    "first_layer",
)
N_HIT_FEATURES = len(HIT_FEATURES)
N_TRACK_FEATURES = len(TRACK_FEATURES)

#: per-candidate arrays of a dataset file: name -> (dtype, trailing shape kind)
CANDIDATE_ARRAYS: dict[str, str] = {
    "hit_features": "float32",
    "lengths": "int64",
    "track_features": "float32",
    "hit_ids": "int64",
    "event_id": "int64",
    "label": "float32",
    "is_clone": "bool",
    "purity": "float32",
    "particle_id": "int64",
    "particle_pt_GeV": "float32",
    "particle_eta": "float32",
    "pt_GeV": "float32",
    "eta": "float32",
    "chi2_ndf": "float32",
    "d0_mm": "float32",
    "z0_mm": "float32",
    "n_hits": "int64",
}
PARTICLE_ARRAYS: dict[str, str] = {
    "particles_event_id": "int64",
    "particles_id": "int64",
    "particles_pt_GeV": "float32",
    "particles_eta": "float32",
    "particles_n_layers": "int64",
}


def _clip(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.nan_to_num(a, nan=0.0, posinf=hi, neginf=lo), lo, hi)


def candidate_sequences(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    cand_hits: np.ndarray,
    fit: HelixFit,
    resolution: LayerResolution,
    n_holes: np.ndarray,
) -> dict[str, np.ndarray]:
    """Hit sequences and track features of one event's candidates.

    Args:
        x, y, z: (n,) the event's hits (mm).
        cand_hits: (N, n_layers) rows into the hit arrays by global layer, -1 for none
            (:attr:`hepml.reco.following.Candidates.hits`).
        fit: the candidates' final helix fit.
        resolution: per-layer resolutions and material (the fit's).
        n_holes: (N,) missing layers between the first and last hit.

    Returns ``hit_features`` (N, L, F_hit), ``lengths`` (N,), ``hit_rows`` (N, L)
    (rows into the hit arrays in sequence order, -1 padding) and ``track_features``
    (N, F_track), as documented in the module docstring.
    """
    cand_hits = np.asarray(cand_hits, dtype=np.int64)
    n, n_layers = cand_hits.shape
    present = cand_hits >= 0
    # left-align: present hits first, in layer (radius) order
    order = np.argsort(~present, axis=1, kind="stable")
    rows = np.take_along_axis(cand_hits, order, axis=1)
    layer = np.where(rows >= 0, order, -1)
    valid = rows >= 0
    lengths = valid.sum(axis=1).astype(np.int64)
    safe = np.maximum(rows, 0)
    hx, hy, hz = x[safe], y[safe], z[safe]
    r = np.hypot(hx, hy)
    phi = np.arctan2(hy, hx)
    e_xy, e_z, _ = residuals(fit, hx, hy, hz)
    sr, sz = resolution.hit_sigmas(layer, fit.p_GeV, fit.cot_theta)
    pull_r = _clip(e_xy / sr, -10, 10)
    pull_z = _clip(e_z / sz, -10, 10)

    prev = np.concatenate(
        [np.zeros((n, 1), dtype=np.int64), np.arange(n_layers - 1)[None, :].repeat(n, 0)], axis=1
    )
    has_prev = (np.arange(n_layers) > 0)[None, :] & valid
    r_prev = np.take_along_axis(r, prev, axis=1)
    phi_prev = np.take_along_axis(phi, prev, axis=1)
    z_prev = np.take_along_axis(hz, prev, axis=1)
    lay_prev = np.take_along_axis(layer, prev, axis=1)

    feats = np.stack(
        [
            r / 1000.0,
            wrap_phi(phi - fit.phi0[:, None]) / 0.5,
            hz / 1000.0,
            pull_r / 3.0,
            pull_z / 3.0,
            np.arcsinh(_clip(e_xy, -1e3, 1e3) / 0.02) / 5.0,
            np.arcsinh(_clip(e_z, -1e4, 1e4) / 0.05) / 5.0,
            layer / max(n_layers - 1, 1),
            np.where(has_prev, layer - lay_prev, 0) / 3.0,
            np.where(has_prev, r - r_prev, 0.0) / 1000.0,
            np.where(has_prev, wrap_phi(phi - phi_prev), 0.0) / 0.1,
            np.where(has_prev, hz - z_prev, 0.0) / 100.0,
        ],
        axis=-1,
    )
    feats = np.where(valid[:, :, None], _clip(feats, -50, 50), 0.0).astype(np.float32)

    # hits also used by another candidate of the event
    flat = rows[valid]
    uniq, counts = np.unique(flat, return_counts=True)
    shared_hit = np.zeros(valid.shape, dtype=bool)
    if len(uniq):
        pos = np.searchsorted(uniq, safe)
        shared_hit = valid & (counts[np.minimum(pos, len(uniq) - 1)] > 1)
    n_hits = np.maximum(lengths, 1)
    abs_pr = np.where(valid, np.abs(pull_r), 0.0).max(axis=1) if n_layers else np.zeros(n)
    abs_pz = np.where(valid, np.abs(pull_z), 0.0).max(axis=1) if n_layers else np.zeros(n)
    first_layer = np.where(lengths > 0, layer[:, 0], 0)
    track = np.stack(
        [
            _clip(np.log10(np.maximum(np.nan_to_num(fit.pt_GeV, nan=1e-3), 1e-3)), -1.0, 2.0),
            fit.q.astype(np.float64),
            np.arcsinh(_clip(fit.d0_mm, -1e3, 1e3) / 0.1) / 3.0,
            _clip(fit.z0_mm, -1e4, 1e4) / 100.0,
            _clip(np.arcsinh(np.nan_to_num(fit.cot_theta)), -5, 5),
            _clip(np.log1p(np.maximum(np.nan_to_num(fit.chi2_ndf, nan=1e4), 0.0)), 0.0, 10.0),
            fit.ndf / 15.0,
            lengths / 10.0,
            np.asarray(n_holes, dtype=np.float64),
            shared_hit.sum(axis=1) / n_hits,
            np.log1p(abs_pr),
            np.log1p(abs_pz),
            first_layer / 3.0,
        ],
        axis=-1,
    ).astype(np.float32)
    return {
        "hit_features": feats,
        "lengths": lengths,
        "hit_rows": np.where(valid, rows, -1),
        "track_features": track,
    }


# --------------------------------------------------------------------------- files
def empty_dataset(n_layers: int) -> dict[str, np.ndarray]:
    """A dataset with no candidates, no events and no particles (valid, N = 0)."""
    shapes = {
        "hit_features": (0, n_layers, N_HIT_FEATURES),
        "track_features": (0, N_TRACK_FEATURES),
        "hit_ids": (0, n_layers),
    }
    out = {k: np.zeros(shapes.get(k, (0,)), dtype=dt) for k, dt in CANDIDATE_ARRAYS.items()}
    out.update({k: np.zeros(0, dtype=dt) for k, dt in PARTICLE_ARRAYS.items()})
    out["events"] = np.zeros(0, dtype=np.int64)
    return out


def concat_datasets(parts: Sequence[dict[str, np.ndarray]], n_layers: int) -> dict[str, np.ndarray]:
    """Concatenate datasets (of events, or of shards) along their first axis."""
    if not parts:
        return empty_dataset(n_layers)
    keys = [*CANDIDATE_ARRAYS, *PARTICLE_ARRAYS, "events"]
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def save_dataset(path: str | Path, data: dict[str, np.ndarray]) -> None:
    """Write a dataset ``.npz`` atomically, with the contract's names and version."""
    out = {k: np.asarray(data[k]).astype(dt, copy=False) for k, dt in CANDIDATE_ARRAYS.items()}
    out.update({k: np.asarray(data[k]).astype(dt, copy=False) for k, dt in PARTICLE_ARRAYS.items()})
    out["events"] = np.asarray(data["events"], dtype=np.int64)
    out["hit_feature_names"] = np.array(HIT_FEATURES)
    out["track_feature_names"] = np.array(TRACK_FEATURES)
    out["contract_version"] = np.array(CONTRACT_VERSION)
    n = len(out["label"])
    for k in CANDIDATE_ARRAYS:
        if len(out[k]) != n:
            raise ValueError(f"dataset array '{k}' has {len(out[k])} rows, label has {n}")
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **out)  # type: ignore[arg-type]


def load_dataset(path: str | Path) -> dict[str, np.ndarray]:
    """Read one dataset file; a file of another contract or a damaged one is a HepmlError."""
    path = Path(path)
    if not path.is_file():
        raise HepmlError(f"dataset file '{path}' does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except Exception as exc:
        raise HepmlError(
            f"'{path}' is not a readable dataset file ({type(exc).__name__})"
        ) from None
    version = int(data["contract_version"]) if "contract_version" in data else -1
    if version != CONTRACT_VERSION:
        raise HepmlError(
            f"'{path}': ghost-filter contract version {version}, expected {CONTRACT_VERSION}; rebuild it"
        )
    if (
        tuple(data["hit_feature_names"]) != HIT_FEATURES
        or tuple(data["track_feature_names"]) != TRACK_FEATURES
    ):
        raise HepmlError(
            f"'{path}': feature names differ from hepml.features.sequences; rebuild it"
        )
    missing = [k for k in [*CANDIDATE_ARRAYS, *PARTICLE_ARRAYS, "events"] if k not in data]
    if missing:
        raise HepmlError(f"'{path}' lacks array '{missing[0]}'")
    return data


def load_datasets(paths: Sequence[str | Path]) -> dict[str, np.ndarray]:
    """Read and concatenate several dataset files (all of one sequence length)."""
    parts = [load_dataset(p) for p in paths]
    widths = {p["hit_ids"].shape[1] for p in parts}
    if len(widths) > 1:
        raise HepmlError(
            f"dataset files {', '.join(map(str, paths))} have different sequence lengths {sorted(widths)}"
        )
    return concat_datasets(parts, widths.pop() if widths else 0)


def to_tensor_data(data: dict[str, np.ndarray]) -> TensorData:
    """The model inputs and target of a dataset: ``hits``, ``lengths``, ``track`` -> ``label``."""
    import torch

    from hepml.train import TensorData

    return TensorData(
        inputs={
            "hits": torch.from_numpy(np.ascontiguousarray(data["hit_features"], dtype=np.float32)),
            "lengths": torch.from_numpy(np.ascontiguousarray(data["lengths"], dtype=np.int64)),
            "track": torch.from_numpy(
                np.ascontiguousarray(data["track_features"], dtype=np.float32)
            ),
        },
        target=torch.from_numpy(np.ascontiguousarray(data["label"], dtype=np.float32)),
    )
