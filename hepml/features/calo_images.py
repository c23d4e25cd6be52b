"""Calorimeter images: the data contract between the simulated cells and the CNN.

Written down once, here:

* **Channels**: one per depth layer, in the order strip, middle, back.
* **Grid**: a common (eta, phi) pixel grid of ``n_eta x n_phi`` pixels (32 x 32 by
  default) with pitches ``eta_pixel`` x ``phi_pixel`` (0.003125 x 0.00625 by
  default: one strip in eta, a quarter of a middle cell in phi, so the image
  covers 0.1 x 0.2, i.e. 4 x 8 middle cells). Global pixel k covers
  [k pitch, (k+1) pitch), like the cells (:mod:`hepml.sim.calo`), so with the
  default pitches every cell boundary of every layer is a pixel boundary.
  Rebinning onto the middle-layer grid instead would throw away the strip
  layer's eta granularity, the very thing that tells a pi0's two photons from one.
* **Rebinning**: each cell's energy is shared among the pixels it overlaps in
  proportion to the overlap area (energy conserving; a middle cell is spread
  evenly over its 8 x 4 pixels). Pixels outside a layer's stored window are 0.
* **Centre**: the energy-weighted centroid of the middle layer's 3 x 3 cells around
  its hottest cell (positive cells only), rounded to the nearest pixel corner; the
  image spans n/2 pixels on each side of it.
* **Energy unit and normalisation**: cell energies in GeV at the electromagnetic
  scale; pixels are divided by max(E, 1 GeV), E the total energy of the shower
  (sum of all cells of the three windows, noise included), so an image sums to at
  most 1. The 1 GeV floor keeps noise-dominated showers (pions crossing as MIPs,
  ~0.3 GeV) from being blown up to noise images of unit sum.
* **Scalar input**: ``log_e = ln(E / GeV)`` is kept as a separate input.
* **Classes** (:data:`CLASSES`): 0 photon (PDG 22), 1 pi0 (111), 2 charged pion (+-211).
* **Bad showers**: showers with a non-finite cell (NaN or inf) and showers whose
  total energy is not positive (nothing deposited) are skipped; the counts are
  returned, logged and stored in the dataset (``n_skipped_nonfinite``,
  ``n_skipped_empty``).

Dataset file (.npz, one per shard; :func:`save_dataset` / :func:`load_dataset`):
``images`` (N, 3, n_eta, n_phi) float16, ``log_e`` (N,) float32, ``e_total_GeV``,
``label`` (N,) int64, ``pdg_id``, ``e_true_GeV``, ``eta``, ``shower_id``,
``shapes`` (N, F) float32 with ``shape_names`` (F,) (the baseline's variables,
:mod:`hepml.features.shower_shapes`), and the skip counts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hepml.config import schema_default
from hepml.errors import HepmlError
from hepml.features.shower_shapes import NAMES as SHAPE_NAMES
from hepml.features.shower_shapes import shower_shapes
from hepml.sim.calo import LAYERS, CaloGeometry

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = ("photon", "pi0", "charged_pion")
#: images are divided by max(E_total, this) (GeV)
NORM_FLOOR_GEV = 1.0
_PDG_CLASS = {22: 0, 111: 1, 211: 2}
DATASET_KEYS: tuple[str, ...] = (
    "images",
    "log_e",
    "e_total_GeV",
    "label",
    "pdg_id",
    "e_true_GeV",
    "eta",
    "shower_id",
    "shapes",
    "shape_names",
)


@dataclass(frozen=True)
class ImageConfig:
    """Image grid: pixels along eta and phi and their pitches."""

    # defaults: the schema's (calo_classifier.image.*), read when an instance is made
    n_eta: int = field(default_factory=lambda: schema_default("calo_classifier.image.size")[0])
    n_phi: int = field(default_factory=lambda: schema_default("calo_classifier.image.size")[1])
    eta_pixel: float = field(
        default_factory=lambda: schema_default("calo_classifier.image.eta_pixel")
    )
    phi_pixel: float = field(
        default_factory=lambda: schema_default("calo_classifier.image.phi_pixel")
    )

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> ImageConfig:
        """From the validated config's ``calo_classifier.image`` section."""
        im = cfg["calo_classifier"]["image"]
        return cls(
            int(im["size"][0]), int(im["size"][1]), float(im["eta_pixel"]), float(im["phi_pixel"])
        )


def labels_of(pdg_id: np.ndarray) -> np.ndarray:
    """Class index (:data:`CLASSES`) of PDG ids; unknown ids raise :class:`HepmlError`."""
    a = np.abs(np.asarray(pdg_id))
    out = np.full(a.shape, -1, dtype=np.int64)
    for pdg, k in _PDG_CLASS.items():
        out[a == pdg] = k
    if (out < 0).any():
        raise HepmlError(
            f"pdg_id {int(np.asarray(pdg_id)[out < 0][0])} is not one of the classified particles (22, 111, +-211)"
        )
    return out


def middle_centroid(
    middle: np.ndarray, ieta0: np.ndarray, iphi0: np.ndarray, eta_pitch: float, phi_pitch: float
) -> tuple[np.ndarray, np.ndarray]:
    """(eta, phi) centroid of the 3 x 3 middle cells around the hottest one, positive energies only.

    Cell (i, j) of a window with first global indices (ieta0, iphi0) has its centre at
    ((ieta0 + i + 1/2) eta_pitch, (iphi0 + j + 1/2) phi_pitch). Falls back to the hottest
    cell's centre when no cell of the 3 x 3 is positive.
    """
    n, ni, nj = middle.shape
    hot = middle.reshape(n, -1).argmax(axis=1)
    ci, cj = hot // nj, hot % nj
    di = np.arange(ni)[None, :, None] - ci[:, None, None]
    dj = np.arange(nj)[None, None, :] - cj[:, None, None]
    w = np.where((np.abs(di) <= 1) & (np.abs(dj) <= 1), np.maximum(middle, 0.0), 0.0)
    s = w.sum(axis=(1, 2))
    safe = np.where(s > 0, s, 1.0)
    mi = np.where(s > 0, (w * di).sum(axis=(1, 2)) / safe, 0.0) + ci
    mj = np.where(s > 0, (w * dj).sum(axis=(1, 2)) / safe, 0.0) + cj
    return (ieta0 + mi + 0.5) * eta_pitch, (iphi0 + mj + 0.5) * phi_pitch


def overlap_matrix(
    pix0: np.ndarray,
    n_pix: int,
    pix_pitch: float,
    cell0: np.ndarray,
    n_cells: int,
    cell_pitch: float,
) -> np.ndarray:
    """Fraction of each cell's extent inside each pixel along one axis, (N, n_pix, n_cells).

    Pixel p of row n spans [(pix0[n] + p) pix_pitch, (pix0[n] + p + 1) pix_pitch); cell c
    spans [(cell0[n] + c) cell_pitch, ...). Exact for aligned grids up to float rounding.
    """
    p_lo = (pix0[:, None] + np.arange(n_pix)[None, :]) * pix_pitch
    c_lo = (cell0[:, None] + np.arange(n_cells)[None, :]) * cell_pitch
    lo = np.maximum(p_lo[:, :, None], c_lo[:, None, :])
    hi = np.minimum(p_lo[:, :, None] + pix_pitch, c_lo[:, None, :] + cell_pitch)
    frac = np.clip(hi - lo, 0.0, None) / cell_pitch
    return np.where(frac > 1e-9, frac, 0.0)


def layer_images(
    cells: np.ndarray,
    ieta0: np.ndarray,
    iphi0: np.ndarray,
    eta_pitch: float,
    phi_pitch: float,
    pix_eta0: np.ndarray,
    pix_phi0: np.ndarray,
    image: ImageConfig,
) -> np.ndarray:
    """Cells (N, n_eta, n_phi) of one layer rebinned onto the image grids, (N, image.n_eta, image.n_phi)."""
    n, ni, nj = cells.shape
    we = overlap_matrix(
        pix_eta0, image.n_eta, image.eta_pixel, ieta0.astype(np.int64), ni, eta_pitch
    )
    wp = overlap_matrix(
        pix_phi0, image.n_phi, image.phi_pixel, iphi0.astype(np.int64), nj, phi_pitch
    )
    return np.einsum("npi,nij,nqj->npq", we, cells, wp, optimize=True)


@dataclass(frozen=True)
class CaloImages:
    """Images and scalars of the kept showers, the mask of kept ones and the skip counts."""

    images: np.ndarray  # (N_kept, 3, n_eta, n_phi) float32, divided by max(e_total, 1 GeV)
    log_e: np.ndarray  # (N_kept,) ln(E_total / GeV)
    e_total_GeV: np.ndarray  # (N_kept,)
    keep: np.ndarray  # (N,) bool over the input showers
    n_skipped_nonfinite: int
    n_skipped_empty: int


def build_images(
    data: dict[str, np.ndarray], geometry: CaloGeometry, image: ImageConfig, chunk: int = 1024
) -> CaloImages:
    """Images of the showers in ``data`` (the branches of :func:`hepml.sim.calo.read_calo_root`)."""
    cells = {name: np.asarray(data[f"cells_{name}"], dtype=np.float64) for name in LAYERS}
    n = len(data["pdg_id"])
    finite = np.ones(n, dtype=bool)
    total = np.zeros(n)
    for c in cells.values():
        finite &= np.isfinite(c).all(axis=(1, 2))
        total += np.where(np.isfinite(c), c, 0.0).sum(axis=(1, 2))
    keep = finite & (total > 0)
    n_nonfinite = int((~finite).sum())
    n_empty = int((finite & ~(total > 0)).sum())
    if n_nonfinite or n_empty:
        log.warning(
            "calo images: skipped %d showers with NaN/inf cells and %d with no deposited energy (of %d)",
            n_nonfinite,
            n_empty,
            n,
        )
    idx = np.flatnonzero(keep)
    mid = geometry.layer("middle")
    out = np.zeros((idx.size, len(LAYERS), image.n_eta, image.n_phi), dtype=np.float32)
    for s in range(0, idx.size, chunk):
        sel = idx[s : s + chunk]
        ce, cp = middle_centroid(
            cells["middle"][sel],
            data["middle_ieta0"][sel],
            data["middle_iphi0"][sel],
            mid.eta_pitch,
            mid.phi_pitch,
        )
        pe0 = np.rint(ce / image.eta_pixel).astype(np.int64) - image.n_eta // 2
        pp0 = np.rint(cp / image.phi_pixel).astype(np.int64) - image.n_phi // 2
        for li, name in enumerate(LAYERS):
            lay = geometry.layer(name)
            img = layer_images(
                cells[name][sel],
                data[f"{name}_ieta0"][sel],
                data[f"{name}_iphi0"][sel],
                lay.eta_pitch,
                lay.phi_pitch,
                pe0,
                pp0,
                image,
            )
            out[s : s + sel.size, li] = img / np.maximum(total[sel], NORM_FLOOR_GEV)[:, None, None]
    return CaloImages(
        images=out,
        log_e=np.log(total[idx]).astype(np.float32),
        e_total_GeV=total[idx].astype(np.float32),
        keep=keep,
        n_skipped_nonfinite=n_nonfinite,
        n_skipped_empty=n_empty,
    )


def build_dataset(
    data: dict[str, np.ndarray], geometry: CaloGeometry, image: ImageConfig
) -> dict[str, np.ndarray]:
    """The dataset arrays (see the module docstring) of one shard's showers."""
    im = build_images(data, geometry, image)
    k = im.keep
    shapes = shower_shapes(
        np.asarray(data["cells_strip"][k], dtype=np.float64),
        np.asarray(data["cells_middle"][k], dtype=np.float64),
        np.asarray(data["cells_back"][k], dtype=np.float64),
        geometry.layer("middle").eta_pitch,
    )
    return {
        "images": im.images.astype(np.float16),
        "log_e": im.log_e,
        "e_total_GeV": im.e_total_GeV,
        "label": labels_of(data["pdg_id"][k]),
        "pdg_id": np.asarray(data["pdg_id"][k], dtype=np.int32),
        "e_true_GeV": np.asarray(data["e_true_GeV"][k], dtype=np.float32),
        "eta": np.asarray(data["eta"][k], dtype=np.float32),
        "shower_id": np.asarray(data["shower_id"][k], dtype=np.int64),
        "shapes": shapes,
        "shape_names": np.array(SHAPE_NAMES),
        "n_skipped_nonfinite": np.array(im.n_skipped_nonfinite, dtype=np.int64),
        "n_skipped_empty": np.array(im.n_skipped_empty, dtype=np.int64),
    }


def save_dataset(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a dataset .npz atomically (through an open file, so no suffix is appended)."""
    from hepml.io import atomic_output

    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def load_dataset(files: Sequence[Path | str]) -> dict[str, np.ndarray]:
    """Concatenate dataset files; a missing, truncated or foreign file, or NaN or inf in the
    images, energies or shower shapes, is a one-line :class:`HepmlError`."""
    from hepml.io import check_finite_arrays, check_input_file

    paths = [Path(f) for f in files]
    parts = []
    for p in paths:
        check_input_file(p, "dataset file")
        try:
            with open(p, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                missing = [k for k in DATASET_KEYS if k not in z.files]
                if missing:
                    raise HepmlError(
                        f"dataset file '{p}' lacks array '{missing[0]}' (not a calo_classifier dataset?)"
                    )
                part = {k: z[k] for k in z.files}
        except HepmlError:
            raise
        except Exception as exc:
            raise HepmlError(
                f"dataset file '{p}' is not a readable .npz ({type(exc).__name__})"
            ) from None
        # the network's and the baseline's inputs (the build skips showers with NaN cells)
        check_finite_arrays(part, ("images", "log_e", "shapes"), p)
        parts.append(part)
    if not parts:
        raise HepmlError("no calo_classifier dataset files given")
    names = parts[0]["shape_names"]
    for p, part in zip(paths, parts, strict=True):
        if part["images"].shape[1:] != parts[0]["images"].shape[1:] or not np.array_equal(
            part["shape_names"], names
        ):
            raise HepmlError(
                f"dataset file '{p}' has images {part['images'].shape[1:]} or variables unlike '{paths[0]}'"
            )
    out = {
        k: np.concatenate([part[k] for part in parts]) for k in DATASET_KEYS if k != "shape_names"
    }
    out["shape_names"] = names
    for k in ("n_skipped_nonfinite", "n_skipped_empty"):
        out[k] = np.array(sum(int(part.get(k, 0)) for part in parts), dtype=np.int64)
    return out
