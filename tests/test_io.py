"""hepml.io: ROOT and TrackML CSV round trips, corrupt inputs, atomic writes; the simulate CLI's errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepml import config
from hepml.cli import main
from hepml.detector import load_detector
from hepml.errors import HepmlError
from hepml.io import (
    HIT_COLUMNS,
    PARTICLE_COLUMNS,
    read_root,
    read_tracker_events,
    read_tracker_root,
    read_trackml_csv,
    trackml_event_name,
    write_root,
    write_tracker_root,
    write_trackml_csv,
)
from hepml.rng import rng as make_rng
from hepml.sim.tracker import TrackerSimConfig, simulate_events

ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = ROOT / "config" / "test.yaml"


@pytest.fixture(scope="module")
def events() -> tuple[pd.DataFrame, pd.DataFrame]:
    cfg = config.load(TEST_CONFIG)
    hits, parts = simulate_events(
        load_detector(cfg),
        TrackerSimConfig.from_config(cfg),
        np.array([7, 12]),
        make_rng(0, "test-io"),
    )
    return hits, parts


def _listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def test_root_round_trip_keeps_every_value(
    tmp_path: Path, events: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    hits, parts = events
    out = tmp_path / "ev.root"
    write_tracker_root(out, hits, parts)
    h, p = read_tracker_root(out)
    pd.testing.assert_frame_equal(h, hits, check_exact=True)
    pd.testing.assert_frame_equal(p, parts, check_exact=True)
    assert (
        dict(h.dtypes.astype(str)) == HIT_COLUMNS and dict(p.dtypes.astype(str)) == PARTICLE_COLUMNS
    )
    assert _listing(tmp_path) == ["ev.root"]  # no temporary left
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    # several shard files concatenate
    out2 = tmp_path / "ev2.root"
    write_tracker_root(out2, hits, parts)
    h2, p2 = read_tracker_events([out, out2])
    assert len(h2) == 2 * len(hits) and len(p2) == 2 * len(parts)


@pytest.mark.parametrize("compress", [False, True], ids=["csv", "csv.gz"])
def test_root_to_trackml_csv_to_root_keeps_every_value(
    tmp_path: Path, events: tuple[pd.DataFrame, pd.DataFrame], compress: bool
) -> None:
    hits, parts = events
    first = tmp_path / "first.root"
    write_tracker_root(first, hits, parts)
    h0, p0 = read_tracker_root(first)

    csv_dir = tmp_path / "csv"
    back_h, back_p = [], []
    for eid in (7, 12):
        name = trackml_event_name(eid)
        paths = write_trackml_csv(
            csv_dir, name, h0[h0.event_id == eid], p0[p0.event_id == eid], compress=compress
        )
        ext = ".csv.gz" if compress else ".csv"
        assert [p.name for p in paths] == [
            f"{name}-hits{ext}",
            f"{name}-truth{ext}",
            f"{name}-particles{ext}",
        ]
        if compress:  # really gzip, not text under a .gz name
            assert paths[0].read_bytes()[:2] == b"\x1f\x8b"
        truth = pd.read_csv(paths[1])
        assert truth.weight.sum() == pytest.approx(1.0, rel=1e-5)  # TrackML weights of one event
        assert (truth.weight[truth.particle_id == 0] == 0).all()
        h, p = read_trackml_csv(csv_dir, name)
        assert p is not None
        back_h.append(h[list(HIT_COLUMNS)])
        back_p.append(p)

    second = tmp_path / "second.root"
    write_tracker_root(
        second, pd.concat(back_h, ignore_index=True), pd.concat(back_p, ignore_index=True)
    )
    h1, p1 = read_tracker_root(second)
    pd.testing.assert_frame_equal(h1, h0, check_exact=True)  # float32 values exactly
    pd.testing.assert_frame_equal(p1, p0, check_exact=True)


def test_trackml_csv_without_truth(
    tmp_path: Path, events: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    hits, parts = events
    name = trackml_event_name(7)
    paths = write_trackml_csv(tmp_path, name, hits[hits.event_id == 7], parts[parts.event_id == 7])
    paths[1].unlink()  # no truth file: a test event as TrackML ships it
    h, p = read_trackml_csv(tmp_path, name)
    assert p is None and (h.particle_id == -1).all()
    np.testing.assert_array_equal(h.x.to_numpy(), hits.x[hits.event_id == 7].to_numpy())


def test_truncated_or_corrupt_root_file_names_the_file(
    tmp_path: Path, events: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    hits, parts = events
    good = tmp_path / "good.root"
    write_tracker_root(good, hits, parts)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.root"
    garbage.write_bytes(b"this is not a ROOT file\n" * 20)
    empty = tmp_path / "empty.root"
    empty.touch()
    for bad in (truncated, garbage, empty, tmp_path / "missing.root"):
        with pytest.raises(HepmlError) as exc:
            read_tracker_root(bad)
        msg = str(exc.value)
        assert str(bad) in msg and "\n" not in msg


def test_missing_tree_or_branch_names_it(
    tmp_path: Path, events: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    hits, _ = events
    only_hits = tmp_path / "only_hits.root"
    write_root(only_hits, {"hits": hits})
    with pytest.raises(
        HepmlError, match=r"only_hits\.root' has no TTree 'particles' \(found: hits\)"
    ):
        read_tracker_root(only_hits)
    with pytest.raises(HepmlError, match="lacks branch 'nope'"):
        read_root(only_hits, "hits", ["x", "nope"])


def test_unwritable_path_raises_and_leaves_nothing(
    tmp_path: Path, events: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    hits, parts = events
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    target = blocker / "sub" / "ev.root"  # a directory cannot be made below a file
    with pytest.raises(HepmlError, match="cannot write") as exc:
        write_tracker_root(target, hits, parts)
    assert str(target) in str(exc.value)
    assert _listing(tmp_path) == ["a_file"] and blocker.read_text() == "x"


def test_failed_write_leaves_nothing_and_keeps_old_file(
    tmp_path: Path, events: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    hits, parts = events
    out = tmp_path / "ev.root"
    write_tracker_root(out, hits, parts)
    before = out.read_bytes()
    with pytest.raises(ValueError, match="different lengths"):
        write_root(out, {"t": {"a": np.zeros(3), "b": np.zeros(4)}})
    assert _listing(tmp_path) == ["ev.root"] and out.read_bytes() == before


# --------------------------------------------------------------------------- hepml simulate
def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(args)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize(
    ("kind", "shard", "expected"),
    [
        ("tracker", "2", "--shard 2 is out of range: workflow.tracker_shards is 2"),
        ("tracker", "-1", "--shard -1 is out of range"),
        ("calo", "5", "--shard 5 is out of range: workflow.calo_shards is 2"),
    ],
)
def test_simulate_cli_bad_shard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, shard: str, expected: str
) -> None:
    out = tmp_path / "out" / "shard.root"
    rc, err = _run_cli(
        ["simulate", kind, "--config", str(TEST_CONFIG), "--shard", shard, "--out", str(out)],
        capsys,
    )
    assert rc == 2
    assert expected in err and str(TEST_CONFIG) in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert _listing(tmp_path) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "tracker:\n  simulation:\n    n_particle: 5\n",
            "unknown key 'tracker.simulation.n_particle'",
        ),
        (
            "tracker:\n  simulation:\n    eta_max: -1\n",
            "key 'tracker.simulation.eta_max': value -1 is out of range",
        ),
        (
            "tracker:\n  simulation:\n    noise_per_module: lots\n",
            "key 'tracker.simulation.noise_per_module': expected number",
        ),
    ],
)
def test_simulate_cli_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = tmp_path / "out" / "shard.root"
    rc, err = _run_cli(
        ["simulate", "tracker", "--config", str(cfg), "--shard", "0", "--out", str(out)], capsys
    )
    assert rc == 2
    assert expected in err and str(cfg) in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert _listing(tmp_path) == ["bad.yaml"]


def test_simulate_cli_rejects_non_root_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "shard.csv"
    rc, err = _run_cli(
        ["simulate", "tracker", "--config", str(TEST_CONFIG), "--shard", "0", "--out", str(out)],
        capsys,
    )
    assert rc == 2 and "must be a .root file" in err and err.count("\n") == 1
    assert _listing(tmp_path) == []


def test_simulate_cli_writes_the_shard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim" / "shard1.root"
    rc, _ = _run_cli(
        ["simulate", "tracker", "--config", str(TEST_CONFIG), "--shard", "1", "--out", str(out)],
        capsys,
    )
    assert rc == 0
    hits, parts = read_tracker_root(out)
    cfg = config.load(TEST_CONFIG)
    per = cfg["workflow"]["tracker_events_per_shard"]
    assert sorted(parts.event_id.unique()) == list(range(per, 2 * per))
    # the primaries, plus V0 daughters and secondaries of hadronic interactions
    assert len(parts) >= per * (
        cfg["tracker"]["simulation"]["n_particles"] + cfg["tracker"]["simulation"]["n_high_pt"]
    )
    # the file holds what the library simulates for the shard's random stream
    h_mem, p_mem = simulate_events(
        load_detector(cfg),
        TrackerSimConfig.from_config(cfg),
        np.arange(per, 2 * per),
        make_rng(cfg["seed"], "tracker", 1),
    )
    pd.testing.assert_frame_equal(hits, h_mem)
    pd.testing.assert_frame_equal(parts, p_mem)
    assert len(hits) > 0 and _listing(tmp_path) == ["sim", "sim/shard1.root"]


def test_trees_are_ttrees_with_fixed_shape_branches(tmp_path: Path) -> None:
    """ROOT users get TTrees (not RNTuples); (N, a, b) columns are fixed-size array branches."""
    import uproot

    from hepml.io import read_root, write_root

    cells = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    write_root(tmp_path / "t.root", {"showers": {"shower_id": np.array([5, 6]), "cells": cells}})
    with uproot.open(tmp_path / "t.root") as f:
        assert f.classnames() == {"showers;1": "TTree"}
        assert f["showers"].typenames()["cells"] == "float[3][4]"
    back = read_root(tmp_path / "t.root", "showers")
    np.testing.assert_array_equal(back["cells"], cells)
