"""The hit-labeller task glue: build -> train -> evaluate on tiny simulated shards (config/test.yaml)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hepml import config
from hepml.errors import HepmlError
from hepml.sim.tracker import simulate_shard
from hepml.tasks import hit_labeller as task

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hl")
    cfg = config.load(ROOT / "config" / "test.yaml")
    cfg["workflow"]["results"] = str(tmp)
    cfg["tracker"]["simulation"]["n_particles"] = 600  # enough roads for a split, still tiny
    cfg["hit_labeller"]["seeding"]["min_pt_GeV"] = 0.3
    sims, data = [], []
    for k in range(2):
        sims.append(tmp / f"sim/shard{k}.root")
        simulate_shard(cfg, k, sims[-1], progress=False)
        data.append(tmp / f"data/shard{k}.npz")
        task.build(cfg, [sims[-1]], data[-1])
    task.train(cfg, [data[0]], tmp / "models")
    task.evaluate(cfg, [data[1], sims[1]], tmp / "models", tmp / "evaluate")
    return {"cfg": cfg, "tmp": tmp, "sims": sims, "data": data}


def test_dataset_follows_the_contract(run):
    d = task.load_datasets([run["data"][0]])
    m = len(d["label"])
    assert d["features"].shape == (m, task.N_FEATURES)
    assert d["road_ptr"][-1] == m and len(d["road_ptr"]) == len(d["road_event"]) + 1
    assert set(np.unique(d["label"])) == {0, 1}
    assert (d["hit_id"] > 0).all()
    np.testing.assert_array_equal(d["event_ids"], [0])  # shard 0 of one event per shard


def test_metrics_layout_and_numbers(run):
    metrics = json.loads((run["tmp"] / "evaluate" / "metrics.json").read_text())
    assert metrics["network"] == "bigru"
    methods = metrics["rocs"]["hit"]["methods"]
    assert set(methods) == {"bigru", "road_follower"}
    for m in methods.values():
        lo, hi = m["auc_ci95"]
        assert 0.5 < lo <= m["auc"] <= hi <= 1.0
    tracking = metrics["tracking"]
    for method in ("bigru", "road_follower"):
        t = tracking[method]
        for k in ("trackml_score", "efficiency", "fake_rate", "duplicate_rate"):
            assert 0.0 <= t[k] <= 1.0, (method, k, t[k])
    # on a sparse event the classical follower is already good: a sanity floor on both
    assert tracking["road_follower"]["trackml_score"] > 0.5
    assert tracking["road_follower"]["efficiency"] > 0.8
    for name in metrics["plots"]:
        assert (run["tmp"] / "evaluate" / name).stat().st_size > 1000


def test_evaluate_needs_the_simulated_events(run):
    with pytest.raises(HepmlError, match=r"\.root"):
        task.evaluate(run["cfg"], [run["data"][1]], run["tmp"] / "models", run["tmp"] / "other")
    assert not (run["tmp"] / "other" / "metrics.json").exists()


def test_bad_dataset_files(run, tmp_path):
    with pytest.raises(HepmlError, match="does not exist"):
        task.load_datasets([tmp_path / "missing.npz"])
    bad = tmp_path / "bad.npz"
    np.savez(bad, features=np.zeros((1, 2)))
    with pytest.raises(HepmlError, match="not a hit_labeller dataset"):
        task.load_datasets([bad])
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(HepmlError, match="not a readable"):
        task.load_datasets([junk])
