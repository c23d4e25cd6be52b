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
    header is line 1, so data row k is line k + 1) and the column: missing column,
    a value that is not a finite number, a duplicate (volume_id, layer_id,
    module_id), a size or pitch that is not positive (``module_minhu`` may be 0
    only if ``module_maxhu`` is not: a triangle is still an area), or a rotation
    that is not orthonormal.
    """
    path = Path(path)
    if path.is_dir():
        raise HepmlError(f"detector file '{path}' is a directory, not a detectors.csv file")
    if not path.is_file():
        raise HepmlError(f"detector file '{path}' does not exist")
    try:
        df = pd.read_csv(path, compression="infer", skip_blank_lines=False)
    except Exception as exc:
        what = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HepmlError(f"'{path}' is not a readable CSV file: {what}") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise HepmlError(f"'{path}' line 1 (the header) lacks column '{missing[0]}'{more}")
    # blank lines are kept as rows so that line numbers stay right; those closing the file go
    blank = df.isna().all(axis=1).to_numpy()
    n_trailing = len(blank) - int(np.flatnonzero(~blank)[-1]) - 1 if (~blank).any() else len(blank)
    if n_trailing:
        df = df.iloc[: len(df) - n_trailing].copy()
    if len(df) == 0:
        raise HepmlError(f"'{path}' holds no module")
    for c in COLUMNS:
        values = pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise HepmlError(
                f"'{path}' {_where(i)}, column '{c}': value {df[c].iloc[i]!r} is not a finite number"
            )
        if c in ID_COLUMNS and np.any(values != np.round(values)):
            i = int(np.flatnonzero(values != np.round(values))[0])
            raise HepmlError(f"'{path}' {_where(i)}, column '{c}': {values[i]} is not an integer")
        df[c] = values
    ids = df[list(ID_COLUMNS)].astype(np.int64)
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        key = tuple(int(v) for v in ids.iloc[i])
        first = int(np.flatnonzero((ids.to_numpy() == np.array(key)).all(axis=1))[0])
        raise HepmlError(
            f"'{path}' {_where(i)}, columns 'volume_id', 'layer_id', 'module_id': duplicate module"
            f" (volume_id, layer_id, module_id) = {key}, first on line {first + 2}"
        )
    for c in SIZE_COLUMNS:
        v = df[c].to_numpy()
        if c == "module_minhu":
            # 0 is a triangle (still an area) unless module_maxhu is 0 too
            bad = (v < 0) | ((v == 0) & (df["module_maxhu"].to_numpy() <= 0))
            need = "must not be negative (nor 0 with module_maxhu 0)"
        else:
            bad = v <= 0
            need = "must be positive"
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            what = "pitch" if c.startswith("pitch") else "thickness" if c == "module_t" else "size"
            raise HepmlError(f"'{path}' {_where(i)}, column '{c}': module {what} {v[i]} {need}")
    rot = df[list(ROTATION_COLUMNS)].to_numpy().reshape(-1, 3, 3)
    err = np.abs(np.einsum("nki,nkj->nij", rot, rot) - np.eye(3)).max(axis=(1, 2))
    if np.any(err > 1e-4):
        i = int(np.argmax(err > 1e-4))
        raise HepmlError(
            f"'{path}' {_where(i)}, columns 'rot_xu'..'rot_zw': the rotation is not orthonormal (error {err[i]:.2g})"
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


def _where(i: int) -> str:
    """Where data row ``i`` (0-based) of the file is: its line (the header is line 1) and row."""
    return f"line {i + 2} (data row {i + 1})"


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
