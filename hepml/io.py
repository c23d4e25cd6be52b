"""Event I/O: ROOT files through uproot, parquet, and the TrackML CSV format.

Every writer goes through :func:`atomic_output`: the file is written under a
temporary name in the destination directory and renamed when complete, so an
interrupted job never leaves a half-written output behind.

Tracker events (TrackML names and units: mm, GeV, ns) are two tables, one row
per hit and one per particle, each with an ``event_id`` column:

* ``hits``: ``event_id, hit_id, x, y, z, volume_id, layer_id, module_id,
  particle_id`` plus the truth at the hit ``tx, ty, tz, tpx, tpy, tpz``
  (``particle_id`` 0 is noise);
* ``particles``: ``event_id, particle_id, vx, vy, vz, px, py, pz, q, nhits,
  particle_type, generation`` (``particle_type`` the PDG code, 0 where a file
  does not say, as TrackML's hits-only events; ``generation`` 0 for the event
  generator's particles, n >= 1 for the secondaries of the n-th interaction in
  the material).

TrackML CSV files are read as ``.csv`` or ``.csv.gz`` (whichever exists) and
written as either.

In a ROOT file each table is a flat TTree of the same name, one entry per row.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hepml.errors import HepmlError

HIT_COLUMNS: dict[str, str] = {
    "event_id": "int64",
    "hit_id": "int64",
    "x": "float32",
    "y": "float32",
    "z": "float32",
    "volume_id": "int32",
    "layer_id": "int32",
    "module_id": "int64",
    "particle_id": "int64",
    "tx": "float32",
    "ty": "float32",
    "tz": "float32",
    "tpx": "float32",
    "tpy": "float32",
    "tpz": "float32",
}
PARTICLE_COLUMNS: dict[str, str] = {
    "event_id": "int64",
    "particle_id": "int64",
    "vx": "float32",
    "vy": "float32",
    "vz": "float32",
    "px": "float32",
    "py": "float32",
    "pz": "float32",
    "q": "int32",
    "nhits": "int32",
    "particle_type": "int32",
    "generation": "int32",
}
TRACKER_TREES = {"hits": HIT_COLUMNS, "particles": PARTICLE_COLUMNS}


# --------------------------------------------------------------------------- atomic writes
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


# a temporary of atomic_output: .<name>.<pid>.<8 random characters>.tmp<suffixes>
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]{8}\.tmp")


def _stale(p: Path, name: str | None = None) -> bool:
    m = _TEMPORARY.match(p.name)
    return (
        m is not None
        and (name is None or m["name"] == name)
        and not _pid_alive(int(m["pid"]))
        and p.is_file()
    )


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporaries of ``path`` (beside it) left by a killed writer (dead pid)."""
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")]
    except OSError:
        return
    for p in candidates:
        if _stale(p, path.name):
            p.unlink(missing_ok=True)


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Remove every temporary of :func:`atomic_output` in ``directory`` (not below it) whose
    writer is dead (killed outright, so its ``finally`` never ran); returns those removed."""
    try:
        found = [p for p in Path(directory).iterdir() if _stale(p)]
    except OSError:
        return []
    for p in found:
        p.unlink(missing_ok=True)
    return found


def check_output_path(path: str | Path, kind: str = "file") -> Path:
    """Refuse, before any work, an output ``path`` that cannot be written as a ``kind``.

    ``kind`` is ``"file"`` or ``"dir"``. A file output that is an existing
    directory, a directory output that is an existing file, or a path under an
    existing file is a :class:`HepmlError` naming the path.
    """
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise HepmlError(f"cannot write '{path}': it is a directory, not a file")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise HepmlError(f"cannot write '{path}': it is a file, not a directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise HepmlError(f"cannot write '{path}': '{parent}' is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise HepmlError(f"cannot write '{path}': directory '{parent}' is not writable")
            break
    return path


def _missing(path: Path, what: str) -> HepmlError:
    """The error for a ``path`` that does not exist: named after its cause (a parent that
    is a file, or a path that is simply absent)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return HepmlError(f"{what} '{path}': '{parent}' is a file, not a directory")
            break
    return HepmlError(f"{what} '{path}' does not exist")


def check_input_file(path: str | Path, what: str = "input file") -> Path:
    """``path`` if it is a file; else a one-line :class:`HepmlError` naming the cause
    (a directory, a parent that is a file, or nothing there)."""
    path = Path(path)
    if path.is_dir():
        raise HepmlError(f"{what} '{path}' is a directory, not a file")
    if not path.is_file():
        raise _missing(path, what)
    return path


def check_input_dir(path: str | Path, what: str = "input directory") -> Path:
    """``path`` if it is a directory; else a one-line :class:`HepmlError` naming the cause."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise HepmlError(f"{what} '{path}' is a file, not a directory")
    if not path.is_dir():
        raise _missing(path, what)
    return path


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    The temporary name carries the writer's pid (``.<name>.<pid>.XXXX.tmp<suffixes>``):
    temporaries of a writer killed outright (SIGKILL) are removed by the next
    writer of the same path. An unwritable destination raises :class:`HepmlError` naming it.
    """
    path = Path(path)
    check_output_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}.",
            suffix=".tmp" + "".join(path.suffixes),
            dir=path.parent,
        )
    except OSError as exc:
        raise HepmlError(f"cannot write '{path}': {exc.strerror or exc}") from None
    # mkstemp makes the file private (0600); give it the permissions of a normal file
    umask = os.umask(0o022)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)


# --------------------------------------------------------------------------- ROOT
def write_root(
    path: str | Path, trees: Mapping[str, Mapping[str, np.ndarray] | pd.DataFrame]
) -> None:
    """Write flat (or fixed-shape) TTrees with uproot, atomically.

    ``trees`` maps a tree name to columns; a column of shape ``(N, a, b)`` becomes
    a fixed-size array branch. Every column of one tree must have the same N.
    Baskets are ZSTD-compressed (level 1: readable by ROOT >= 6.20 and by uproot
    through its ``cramjam`` dependency; ~5x faster to write than ZLIB, and smaller).
    """
    import uproot

    with atomic_output(path) as tmp:
        with uproot.recreate(tmp, compression=uproot.ZSTD(1)) as f:
            for name, cols in trees.items():
                if isinstance(cols, pd.DataFrame):
                    data = {c: cols[c].to_numpy() for c in cols.columns}
                else:
                    data = {c: np.asarray(v) for c, v in cols.items()}
                lengths = {len(v) for v in data.values()}
                if len(lengths) > 1:
                    raise ValueError(
                        f"tree '{name}': columns of different lengths {sorted(lengths)}"
                    )
                # mktree + extend: a TTree (assigning a dict would write an RNTuple)
                tree = f.mktree(
                    name,
                    {c: (v.dtype, v.shape[1:]) if v.ndim > 1 else v.dtype for c, v in data.items()},
                )
                tree.extend(data)


def read_root(
    path: str | Path, tree: str, columns: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Read branches of one TTree as numpy arrays; clear one-line errors otherwise."""
    import uproot

    path = check_input_file(path)
    if path.stat().st_size == 0:
        raise HepmlError(f"input file '{path}' is empty (0 bytes)")
    try:
        with uproot.open(path) as f:
            if tree not in f:
                raise HepmlError(
                    f"'{path}' has no TTree '{tree}' (found: {', '.join(sorted(k.split(';')[0] for k in f.keys())) or 'nothing'})"
                )
            t = f[tree]
            missing = [c for c in (columns or []) if c not in t]
            if missing:
                raise HepmlError(f"'{path}': TTree '{tree}' lacks branch '{missing[0]}'")
            arrays = t.arrays(columns, library="np")
    except HepmlError:
        raise
    except Exception as exc:  # uproot raises many kinds on corrupt or truncated files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HepmlError(
            f"'{path}' is not a readable ROOT file ({type(exc).__name__}: {msg[:120]})"
        ) from None
    return {k: np.asarray(v) for k, v in arrays.items()}


def _typed_frame(
    cols: Mapping[str, np.ndarray], schema: Mapping[str, str], optional: Sequence[str] = ()
) -> pd.DataFrame:
    data = {}
    for c, dt in schema.items():
        if c in cols:
            data[c] = np.asarray(cols[c]).astype(dt, copy=False)
        elif c not in optional:
            raise KeyError(c)
    return pd.DataFrame(data)


def write_tracker_root(path: str | Path, hits: pd.DataFrame, particles: pd.DataFrame) -> None:
    """Write tracker events (trees ``hits`` and ``particles``) to a ROOT file."""
    write_root(
        path,
        {
            "hits": _typed_frame({c: hits[c].to_numpy() for c in hits.columns}, HIT_COLUMNS),
            "particles": _typed_frame(
                {c: particles[c].to_numpy() for c in particles.columns}, PARTICLE_COLUMNS
            ),
        },
    )


TRUTH_AT_HIT = ("tx", "ty", "tz", "tpx", "tpy", "tpz")


def _first_bad_row(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad)[0])


def _first_non_finite(table: pd.DataFrame, columns: tuple[str, ...]) -> tuple[str, int, int] | None:
    """The first of ``columns`` (those ``table`` has) holding a NaN or inf: ``(column, first
    such row, how many rows)``; None when all are finite."""
    for c in columns:
        if c in table:
            bad = ~np.isfinite(table[c].to_numpy())
            if bad.any():
                return c, _first_bad_row(bad), int(bad.sum())
    return None


def check_tracker_tables(
    hits: pd.DataFrame, particles: pd.DataFrame | None, source: str | Path
) -> None:
    """Validate tracker tables where they enter; a one-line :class:`HepmlError` naming ``source``.

    Hit coordinates ``x, y, z`` and particle vertices and momenta are finite;
    ``hit_id`` is unique within each event; every hit's ``particle_id`` > 0 is
    a particle of the same event in ``particles`` (when given). An event of
    noise only (no particle) is valid.
    """
    found = _first_non_finite(hits, ("x", "y", "z"))
    if found is not None:
        c, i, n = found
        raise HepmlError(
            f"'{source}': hit_id {int(hits['hit_id'].iloc[i])} has non-finite {c} = {hits[c].iloc[i]} ({n} such hits)"
        )
    ev = hits["event_id"].to_numpy() if "event_id" in hits else np.zeros(len(hits), np.int64)
    dup = pd.DataFrame({"e": ev, "h": hits["hit_id"].to_numpy()}).duplicated().to_numpy()
    if dup.any():
        i = _first_bad_row(dup)
        raise HepmlError(
            f"'{source}': hit_id {int(hits['hit_id'].iloc[i])} appears more than once in event {int(ev[i])}"
        )
    if particles is None:
        return
    found = _first_non_finite(particles, ("vx", "vy", "vz", "px", "py", "pz"))
    if found is not None:
        c, i, _ = found
        raise HepmlError(
            f"'{source}': particle_id {int(particles['particle_id'].iloc[i])} has non-finite {c}"
        )
    pid = hits["particle_id"].to_numpy()
    sel = pid > 0
    if sel.any():
        pev = (
            particles["event_id"].to_numpy()
            if "event_id" in particles
            else np.zeros(len(particles), np.int64)
        )
        known = pd.MultiIndex.from_arrays([pev, particles["particle_id"].to_numpy()])
        wanted = pd.MultiIndex.from_arrays([ev[sel], pid[sel]])
        missing = ~wanted.isin(known)
        if missing.any():
            i = _first_bad_row(missing)
            e, q = int(ev[sel][i]), int(pid[sel][i])
            other = sorted(set(np.unique(pev).tolist()) - set(np.unique(ev).tolist()))
            hint = f" (the particles are of other events: {other[:3]})" if other else ""
            raise HepmlError(
                f"'{source}': hits of event {e} name particle_id {q}, absent from the particles of that event{hint}"
            )


def read_tracker_root(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``(hits, particles)`` written by :func:`write_tracker_root` (checked by
    :func:`check_tracker_tables`)."""
    required = [c for c in HIT_COLUMNS if c not in TRUTH_AT_HIT]
    hits_cols = read_root(path, "hits")
    for c in required:
        if c not in hits_cols:
            raise HepmlError(f"'{path}': TTree 'hits' lacks branch '{c}'")
    part_cols = read_root(path, "particles", list(PARTICLE_COLUMNS))
    hits = _typed_frame(hits_cols, HIT_COLUMNS, optional=TRUTH_AT_HIT)
    particles = _typed_frame(part_cols, PARTICLE_COLUMNS)
    check_tracker_tables(hits, particles, path)
    return hits, particles


def read_tracker_events(paths: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate the events of several tracker shard files."""
    hs, ps = zip(*(read_tracker_root(p) for p in paths), strict=True)
    return pd.concat(hs, ignore_index=True), pd.concat(ps, ignore_index=True)


def check_same_events(
    ids: np.ndarray, source: str | Path, reference: np.ndarray, reference_source: str | Path
) -> None:
    """One-line :class:`HepmlError` unless ``ids`` and ``reference`` hold the same event ids
    (say, a dataset built from one shard and the simulated hits of another)."""
    a, b = set(np.unique(np.asarray(ids)).tolist()), set(np.unique(np.asarray(reference)).tolist())
    if a != b:
        only = sorted(a - b) or sorted(b - a)
        where = reference_source if a - b else source
        raise HepmlError(
            f"'{source}' and '{reference_source}' hold different events (event {only[0]} is not in '{where}')"
        )


def check_finite_arrays(
    arrays: Mapping[str, np.ndarray], names: Sequence[str], source: str | Path
) -> None:
    """One-line :class:`HepmlError` naming ``source`` and the array when any of ``names``
    (floating-point arrays, the sample axis first) holds a NaN or an infinity."""
    for name in names:
        a = np.asarray(arrays[name])
        if a.dtype.kind not in "fc":
            continue
        bad = ~np.isfinite(a)
        if bad.any():
            rows = int(bad.reshape(len(a), -1).any(axis=1).sum()) if a.ndim else 1
            raise HepmlError(
                f"'{source}': array '{name}' has {int(bad.sum())} non-finite values (NaN or inf) in {rows} of {len(a) if a.ndim else 1} rows"
            )


# --------------------------------------------------------------------------- TrackML CSV
_EVENT_RE = re.compile(r"^event\d+$")
_FLOAT_FMT = "%.9g"  # round-trips float32 exactly


def trackml_event_name(event_id: int) -> str:
    """TrackML's file prefix for an event: ``event000001000`` (9 digits)."""
    return f"event{int(event_id):09d}"


def _check_event_name(event: str) -> None:
    if not _EVENT_RE.match(event):
        raise HepmlError(f"event name '{event}' is not of the form eventNNNNNNNNN")


def write_trackml_csv(
    directory: str | Path,
    event: str,
    hits: pd.DataFrame,
    particles: pd.DataFrame,
    compress: bool = False,
) -> list[Path]:
    """Write one event as TrackML's ``-hits.csv``, ``-truth.csv`` and ``-particles.csv``.

    ``hits`` needs the :data:`HIT_COLUMNS` of one event (``module_id`` 0 where
    absent); the truth file's ``weight`` column is the TrackML score weight of
    each hit (:func:`hepml.evaluate.trackml.hit_weights`) unless ``hits`` has
    one. ``compress`` writes ``.csv.gz`` files. Returns the three paths.
    """
    from hepml.evaluate.trackml import hit_weights

    _check_event_name(event)
    directory = Path(directory)
    h = hits.reset_index(drop=True)
    if "weight" in h:
        weight = h["weight"].to_numpy()
    else:
        weight = hit_weights(h, particles)
    module = h["module_id"].to_numpy() if "module_id" in h else np.zeros(len(h), dtype=np.int64)
    part_cols = [c for c in PARTICLE_COLUMNS if c != "event_id"]
    parts = particles.reset_index(drop=True)
    if "particle_type" not in parts:
        parts = parts.assign(particle_type=np.zeros(len(parts), dtype=np.int32))
    tables = {
        "hits": pd.DataFrame(
            {
                "hit_id": h["hit_id"],
                "x": h["x"],
                "y": h["y"],
                "z": h["z"],
                "volume_id": h["volume_id"],
                "layer_id": h["layer_id"],
                "module_id": module,
            }
        ),
        "truth": pd.DataFrame(
            {
                "hit_id": h["hit_id"],
                "particle_id": h["particle_id"],
                **{c: h[c] if c in h else np.zeros(len(h), np.float32) for c in TRUTH_AT_HIT},
                "weight": np.asarray(weight, dtype=np.float32),
            }
        ),
        "particles": parts[part_cols],
    }
    suffix = ".csv.gz" if compress else ".csv"
    out = []
    for kind, df in tables.items():
        p = directory / f"{event}-{kind}{suffix}"
        with atomic_output(p) as tmp:
            # the temporary name ends in .tmp.csv[.gz]: pandas compresses by that suffix
            df.to_csv(tmp, index=False, float_format=_FLOAT_FMT, compression="infer")
        out.append(p)
    return out


#: TrackML's particle_id packs (vertex, primary, generation, secondary, process)
#: into bit fields (the challenge's ``trackml.utils.decode_particle_id``); the
#: generation, 0 for the event generator's particles and n >= 1 for those of the
#: n-th interaction in the detector material, is bits 24-35.
TRACKML_GENERATION_BITS = (24, 0xFFF)


def trackml_generation(particle_id: np.ndarray) -> np.ndarray:
    """The generation field of TrackML ``particle_id`` values, ``(N,)`` int32."""
    shift, mask = TRACKML_GENERATION_BITS
    pid = np.asarray(particle_id, dtype=np.int64).astype(np.uint64)
    return ((pid >> np.uint64(shift)) & np.uint64(mask)).astype(np.int32)


def trackml_file(directory: str | Path, event: str, kind: str) -> Path:
    """The path of ``<event>-<kind>.csv`` in ``directory``, or of its ``.csv.gz`` if only that exists."""
    plain = Path(directory) / f"{event}-{kind}.csv"
    gz = plain.with_name(plain.name + ".gz")
    return gz if not plain.is_file() and gz.is_file() else plain


def _read_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    if not path.is_file():
        raise HepmlError(f"TrackML file '{path}' does not exist (nor its .csv.gz)")
    try:
        df = pd.read_csv(path, compression="infer")
    except Exception as exc:
        raise HepmlError(f"'{path}' is not a readable CSV file ({type(exc).__name__})") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise HepmlError(f"'{path}' lacks column '{missing[0]}'")
    for c in required:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise HepmlError(f"'{path}': column '{c}' is not numeric")
        if c not in ("x", "y", "z") and df[c].isna().any():
            raise HepmlError(
                f"'{path}': column '{c}' has an empty value at line {int(np.flatnonzero(df[c].isna().to_numpy())[0]) + 2}"
            )
    return df


def read_trackml_csv(
    directory: str | Path, event: str, event_id: int | None = None, truth: bool | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read one TrackML-format event (``.csv`` or ``.csv.gz``) into the tables of this module.

    ``truth=None`` reads ``-truth.csv`` and ``-particles.csv`` when both exist;
    without truth, ``particle_id`` is -1 (unknown) and no particle table is returned.
    ``event_id`` defaults to the number in the event name. A hits file without
    ``module_id`` gets 0; a particles file without ``particle_type`` gets 0, and
    one without ``generation`` (TrackML's own files) gets the generation encoded
    in its ``particle_id`` (:func:`trackml_generation`).
    """
    _check_event_name(event)
    directory = check_input_dir(directory, "TrackML event directory")
    eid = int(event[5:]) if event_id is None else int(event_id)
    hits = _read_csv(
        trackml_file(directory, event, "hits"), ["hit_id", "x", "y", "z", "volume_id", "layer_id"]
    )
    if "module_id" not in hits:
        hits["module_id"] = 0
    tpath, ppath = (
        trackml_file(directory, event, "truth"),
        trackml_file(directory, event, "particles"),
    )
    have_truth = tpath.is_file() and ppath.is_file() if truth is None else truth
    hits.insert(0, "event_id", eid)
    particles = None
    if have_truth:
        t = _read_csv(tpath, ["hit_id", "particle_id"])
        if len(t) != len(hits):
            raise HepmlError(f"'{tpath}' has {len(t)} rows but the hits file has {len(hits)}")
        if not hits["hit_id"].is_unique:
            dup = int(hits["hit_id"][hits["hit_id"].duplicated()].iloc[0])
            raise HepmlError(
                f"'{trackml_file(directory, event, 'hits')}': hit_id {dup} appears more than once"
            )
        if not t["hit_id"].is_unique:
            dup = int(t["hit_id"][t["hit_id"].duplicated()].iloc[0])
            raise HepmlError(f"'{tpath}': hit_id {dup} appears more than once")
        t = t.set_index("hit_id").reindex(hits["hit_id"].to_numpy())
        if t["particle_id"].isna().any():
            raise HepmlError(f"'{tpath}' does not cover every hit_id of the hits file")
        hits["particle_id"] = t["particle_id"].to_numpy()
        for c in (*TRUTH_AT_HIT, "weight"):
            if c in t:
                hits[c] = t[c].to_numpy()
        particles = _read_csv(
            ppath,
            [c for c in PARTICLE_COLUMNS if c not in ("event_id", "particle_type", "generation")],
        )
        if "particle_type" not in particles:
            particles["particle_type"] = 0
        if "generation" not in particles:  # a TrackML particle_id says it
            particles["generation"] = trackml_generation(particles["particle_id"].to_numpy())
        particles.insert(0, "event_id", eid)
        particles = _typed_frame(
            {c: particles[c].to_numpy() for c in particles.columns}, PARTICLE_COLUMNS
        )
    else:
        hits["particle_id"] = -1
    extra = {c: hits[c].to_numpy() for c in hits.columns if c not in HIT_COLUMNS}
    typed = _typed_frame(
        {c: hits[c].to_numpy() for c in hits.columns}, HIT_COLUMNS, optional=TRUTH_AT_HIT
    )
    for c, v in extra.items():
        typed[c] = v
    check_tracker_tables(typed, particles, trackml_file(directory, event, "hits"))
    return typed, particles
