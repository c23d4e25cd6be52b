"""hepml.detector.trackml: reading TrackML's detectors.csv[.gz] (the real file when present),
and every bad input as one line naming the file, the line and the column, with nothing
written by the ``hepml detector`` verb."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepml.cli import main
from hepml.detector.generate import generate_modules
from hepml.detector.geometry import Modules
from hepml.detector.trackml import COLUMNS, read_detectors_csv, write_detectors_csv
from hepml.errors import HepmlError

ROOT = Path(__file__).resolve().parents[1]
TRACKML_DIR = Path(os.environ.get("HEPML_TRACKML_DIR", ROOT.parent / "shared" / "trackml"))
REAL_CSV = TRACKML_DIR / "detectors.csv.gz"


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Twelve modules of each of three volumes (pixel barrel, strip disk), as a CSV table."""
    from hepml import config

    m = generate_modules(config.validate({})["tracker"]["detector"])
    rows = np.concatenate([np.flatnonzero(m.volume_id == v)[:12] for v in (8, 13, 18)])
    sub = Modules(*(getattr(m, f)[rows] for f in Modules.__dataclass_fields__))
    path = tmp_path_factory.mktemp("good") / "detectors.csv"
    write_detectors_csv(path, sub)
    return pd.read_csv(path)


def test_real_detectors_csv_is_read() -> None:
    if not REAL_CSV.is_file():
        pytest.skip(f"TrackML's detectors.csv.gz is not in {TRACKML_DIR} (set HEPML_TRACKML_DIR)")
    m = read_detectors_csv(REAL_CSV)
    assert len(m) == 18728
    key = (m.volume_id.astype(np.int64) * 1000 + m.layer_id) * 100_000 + m.module_id
    assert (np.diff(key) > 0).all()  # sorted, unique
    rot = m.rotation
    np.testing.assert_allclose(
        np.einsum("nki,nkj->nij", rot, rot), np.broadcast_to(np.eye(3), rot.shape), atol=1e-4
    )
    assert (m.hv > 0).all() and (m.maxhu > 0).all() and (m.minhu > 0).all()
    assert set(np.round(np.unique(m.pitch_u), 3)) == {0.05, 0.08, 0.12}


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_good_file_round_trips(tmp_path: Path, good: pd.DataFrame, suffix: str) -> None:
    path = tmp_path / f"detectors{suffix}"
    shuffled = good.sample(frac=1.0, random_state=np.random.RandomState(0))  # any row order
    shuffled.to_csv(path, index=False)
    m = read_detectors_csv(path)
    assert len(m) == len(good)
    np.testing.assert_array_equal(m.module_id, good.module_id.to_numpy())  # sorted back
    np.testing.assert_allclose(m.center[:, 0], good.cx.to_numpy())
    # a blank line closing the file is not a module
    with path.open("ab") if suffix == ".csv" else gzip.open(path, "ab") as f:
        f.write(b"\n\n")
    assert len(read_detectors_csv(path)) == len(good)


def _set(col: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def spoil(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        df[col] = df[col].astype(object)
        df.loc[row, col] = value
        return df

    return spoil


def _drop(col: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda df: df.drop(columns=[col])


def _duplicate(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[9, ["volume_id", "layer_id", "module_id"]] = df.loc[
        2, ["volume_id", "layer_id", "module_id"]
    ].to_numpy()
    return df


# data row k (1-based) is line k + 1: df row i is line i + 2
CASES = {
    "missing column": (_drop("module_hv"), ["line 1 (the header)", "lacks column 'module_hv'"]),
    "missing columns": (
        lambda df: df.drop(columns=["pitch_u", "pitch_v"]),
        ["lacks column 'pitch_u' (and 1 more)"],
    ),
    "nan": (_set("cy", 6, np.nan), ["line 8 (data row 7)", "column 'cy'", "not a finite number"]),
    "text": (_set("rot_xu", 3, "abc"), ["line 5 (data row 4)", "column 'rot_xu'", "'abc'"]),
    "inf": (_set("cz", 0, np.inf), ["line 2 (data row 1)", "column 'cz'", "not a finite number"]),
    "fractional id": (
        _set("module_id", 4, 2.5),
        ["line 6", "column 'module_id'", "not an integer"],
    ),
    "duplicate": (
        _duplicate,
        ["line 11 (data row 10)", "'volume_id', 'layer_id', 'module_id'", "first on line 4"],
    ),
    "zero hv": (
        _set("module_hv", 11, 0.0),
        ["line 13 (data row 12)", "column 'module_hv'", "must be positive"],
    ),
    "negative hv": (_set("module_hv", 5, -3.0), ["line 7", "column 'module_hv'", "-3.0"]),
    "zero maxhu": (
        _set("module_maxhu", 20, 0.0),
        ["line 22 (data row 21)", "column 'module_maxhu'"],
    ),
    "negative minhu": (
        _set("module_minhu", 14, -1.0),
        ["line 16", "column 'module_minhu'", "must not be negative"],
    ),
    "zero pitch_u": (
        _set("pitch_u", 7, 0.0),
        ["line 9 (data row 8)", "column 'pitch_u'", "module pitch 0.0"],
    ),
    "zero pitch_v": (_set("pitch_v", 30, 0.0), ["line 32", "column 'pitch_v'", "must be positive"]),
    "zero thickness": (
        _set("module_t", 1, 0.0),
        ["line 3 (data row 2)", "column 'module_t'", "module thickness"],
    ),
    "rotation": (
        _set("rot_xu", 2, 5.0),
        ["line 4 (data row 3)", "'rot_xu'..'rot_zw'", "not orthonormal"],
    ),
}


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_detectors_csv_is_one_line_naming_file_line_and_column(
    tmp_path: Path, good: pd.DataFrame, case: str, suffix: str
) -> None:
    spoil, expected = CASES[case]
    path = tmp_path / f"bad-detectors{suffix}"
    spoil(good).to_csv(path, index=False)
    if suffix == ".csv.gz":
        assert path.read_bytes()[:2] == b"\x1f\x8b"  # really gzipped
    with pytest.raises(HepmlError) as err:
        read_detectors_csv(path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg, msg
    for part in expected:
        assert part in msg, msg
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing written beside it


def test_minhu_zero_is_a_triangle_and_accepted(tmp_path: Path, good: pd.DataFrame) -> None:
    path = tmp_path / "detectors.csv"
    _set("module_minhu", 3, 0.0)(good).to_csv(path, index=False)
    m = read_detectors_csv(path)
    assert (m.minhu == 0).sum() == 1 and (m.area_mm2() > 0).all()


def test_blank_line_inside_and_unreadable_files(tmp_path: Path, good: pd.DataFrame) -> None:
    text = good.to_csv(index=False).splitlines()
    inside = tmp_path / "blank.csv"
    inside.write_text("\n".join([*text[:5], "", *text[5:]]) + "\n")
    with pytest.raises(HepmlError, match=r"line 6 \(data row 5\), column 'volume_id'"):
        read_detectors_csv(inside)
    cases = {
        "empty.csv": (b"", "is not a readable CSV file"),
        "header.csv": ((",".join(COLUMNS) + "\n").encode(), "holds no module"),
        "notgzip.csv.gz": (b"volume_id,layer_id\n1,2\n", "is not a readable CSV file"),
        "truncated.csv.gz": (
            gzip.compress(good.to_csv(index=False).encode())[:300],
            "is not a readable CSV file",
        ),
        "ragged.csv": ("\n".join([text[0], text[1], text[2] + ",7"]).encode() + b"\n", "line 3"),
    }
    for name, (data, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(HepmlError) as err:
            read_detectors_csv(path)
        msg = str(err.value)
        assert str(path) in msg and "\n" not in msg and expected in msg, (name, msg)
    for missing in (tmp_path / "nope.csv", tmp_path):
        with pytest.raises(HepmlError, match="detector file"):
            read_detectors_csv(missing)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_cli_detector_on_a_bad_csv_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good: pd.DataFrame, suffix: str
) -> None:
    bad = tmp_path / f"detectors{suffix}"
    _set("pitch_v", 4, 0.0)(good).to_csv(bad, index=False)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"tracker:\n  detector:\n    source: trackml_csv\n    trackml_csv: {bad}\n")
    out = tmp_path / "out" / "written.csv.gz"
    rc = main(["detector", "--config", str(cfg), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 2
    err = captured.err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(bad) in err and "line 6 (data row 5)" in err and "column 'pitch_v'" in err, err
    assert captured.out == ""  # no surface printed either
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([bad.name, "config.yaml"])
