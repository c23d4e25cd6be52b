"""TrackML's ``detectors.csv[.gz]``: read (validated) and written.

One row per planar module: ``volume_id, layer_id, module_id``, centre ``cx, cy,
cz`` (mm), rotation ``rot_xu ... rot_zw`` (local to global), ``module_t``
(thickness), ``module_minhu, module_maxhu, module_hv`` (half-sizes),
``pitch_u, pitch_v`` (Amrouche et al., arXiv:1904.06778, and the challenge's
data description). The real file has 18,728 modules; users pass their own
(nothing is downloaded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hepml.detector.geometry import Modules
from hepml.errors import HepmlError
from hepml.io import atomic_output

ID_COLUMNS = ("volume_id", "layer_id", "module_id")
ROTATION_COLUMNS = tuple(f"rot_{a}{b}" for a in "xyz" for b in "uvw")
SIZE_COLUMNS = ("module_t", "module_minhu", "module_maxhu", "module_hv", "pitch_u", "pitch_v")
COLUMNS = (*ID_COLUMNS, "cx", "cy", "cz", *ROTATION_COLUMNS, *SIZE_COLUMNS)
_FLOAT_FMT = "%.9g"


def read_detectors_csv(path: str | Path) -> Modules:
    """The modules of a TrackML ``detectors.csv`` or ``detectors.csv.gz``, sorted by id.

    Every mistake is one :class:`HepmlError` line naming the file, the line (the
    header is line 1) and the column: missing column, a value that is not a
    finite number, a duplicate (volume_id, layer_id, module_id), a size or pitch
    that is not positive (``module_minhu`` may be 0 only if ``module_maxhu`` is
    not: a triangle is still an area), or a rotation that is not orthonormal.
    """
    path = Path(path)
    if path.is_dir():
        raise HepmlError(f"detector file '{path}' is a directory, not a detectors.csv file")
    if not path.is_file():
        raise HepmlError(f"detector file '{path}' does not exist")
    try:
        df = pd.read_csv(path, compression="infer")
    except Exception as exc:
        raise HepmlError(f"'{path}' is not a readable CSV file ({type(exc).__name__})") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise HepmlError(f"'{path}' lacks column '{missing[0]}'")
    if len(df) == 0:
        raise HepmlError(f"'{path}' holds no module")
    for c in COLUMNS:
        values = pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise HepmlError(
                f"'{path}' line {i + 2}, column '{c}': value {df[c].iloc[i]!r} is not a finite number"
            )
        if c in ID_COLUMNS and np.any(values != np.round(values)):
            i = int(np.flatnonzero(values != np.round(values))[0])
            raise HepmlError(f"'{path}' line {i + 2}, column '{c}': {values[i]} is not an integer")
        df[c] = values
    ids = df[list(ID_COLUMNS)].astype(np.int64)
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        key = tuple(int(v) for v in ids.iloc[i])
        first = int(np.flatnonzero((ids.to_numpy() == np.array(key)).all(axis=1))[0])
        raise HepmlError(
            f"'{path}' line {i + 2}: duplicate module (volume_id, layer_id, module_id) = {key}, first on line {first + 2}"
        )
    for c in SIZE_COLUMNS:
        v = df[c].to_numpy()
        bad = v <= 0 if c != "module_minhu" else (v < 0) | ((v == 0) & (df["module_maxhu"] <= 0))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise HepmlError(
                f"'{path}' line {i + 2}, column '{c}': module size {v[i]} must be positive"
            )
    rot = df[list(ROTATION_COLUMNS)].to_numpy().reshape(-1, 3, 3)
    err = np.abs(np.einsum("nki,nkj->nij", rot, rot) - np.eye(3)).max(axis=(1, 2))
    if np.any(err > 1e-4):
        i = int(np.argmax(err > 1e-4))
        raise HepmlError(
            f"'{path}' line {i + 2}, columns 'rot_xu'..'rot_zw': the rotation is not orthonormal (error {err[i]:.2g})"
        )
    order = np.lexsort((ids["module_id"], ids["layer_id"], ids["volume_id"]))
    df = df.iloc[order]
    rot = rot[order]
    return Modules(
        volume_id=df["volume_id"].to_numpy(np.int32),
        layer_id=df["layer_id"].to_numpy(np.int32),
        module_id=df["module_id"].to_numpy(np.int64),
        center=df[["cx", "cy", "cz"]].to_numpy(np.float64),
        rotation=np.ascontiguousarray(rot),
        thickness=df["module_t"].to_numpy(np.float64),
        minhu=df["module_minhu"].to_numpy(np.float64),
        maxhu=df["module_maxhu"].to_numpy(np.float64),
        hv=df["module_hv"].to_numpy(np.float64),
        pitch_u=df["pitch_u"].to_numpy(np.float64),
        pitch_v=df["pitch_v"].to_numpy(np.float64),
    )


def write_detectors_csv(path: str | Path, modules: Modules) -> None:
    """Write modules as a TrackML ``detectors.csv`` (``.gz`` by suffix), atomically."""
    rot = modules.rotation.reshape(len(modules), 9)
    df = pd.DataFrame(
        {
            "volume_id": modules.volume_id,
            "layer_id": modules.layer_id,
            "module_id": modules.module_id,
            "cx": modules.center[:, 0],
            "cy": modules.center[:, 1],
            "cz": modules.center[:, 2],
            **{c: rot[:, k] for k, c in enumerate(ROTATION_COLUMNS)},
            "module_t": modules.thickness,
            "module_minhu": modules.minhu,
            "module_maxhu": modules.maxhu,
            "module_hv": modules.hv,
            "pitch_u": modules.pitch_u,
            "pitch_v": modules.pitch_v,
        }
    )
    with atomic_output(path) as tmp:
        df.to_csv(tmp, index=False, float_format=_FLOAT_FMT, compression="infer")
