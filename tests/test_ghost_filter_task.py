"""The ghost-filter task end to end on the tiny test config, and its bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepml import config
from hepml.cli import main
from hepml.errors import HepmlError
from hepml.evaluate.roc import read_metrics
from hepml.features import sequences as seq
from hepml.io import HIT_COLUMNS, PARTICLE_COLUMNS, read_tracker_root, write_tracker_root
from hepml.sim.tracker import simulate_shard
from hepml.tasks import ghost_filter

TEST_CONFIG = Path(__file__).resolve().parents[1] / "config" / "test.yaml"


@pytest.fixture(scope="module")
def cfg():
    return config.load(TEST_CONFIG)


@pytest.fixture(scope="module")
def shards(cfg, tmp_path_factory):
    d = tmp_path_factory.mktemp("gf")
    sims, data = [], []
    for k in range(2):
        sim = d / "sim" / f"shard{k}.root"
        simulate_shard(cfg, k, sim, progress=False)
        out = d / "data" / f"shard{k}.npz"
        ghost_filter.build(cfg, [sim], out)
        sims.append(sim)
        data.append(out)
    return d, sims, data


# Lightning warns that `srun` exists on machines with SLURM installed; not about this run.
@pytest.mark.filterwarnings("ignore:.*srun.*")
def test_build_train_evaluate(cfg, shards):
    d, sims, data = shards
    test = seq.load_dataset(data[1])
    n = len(test["label"])
    assert n > 0 and 0 < test["label"].mean() < 1  # the test config's loose windows make ghosts

    # every candidate traces back to its hits in the simulated file
    hits, _ = read_tracker_root(sims[1])
    by_id = hits.set_index(["event_id", "hit_id"])
    ids = test["hit_ids"]
    valid = ids >= 0
    ev = np.repeat(test["event_id"], ids.shape[1]).reshape(ids.shape)[valid]
    h = by_id.loc[list(zip(ev, ids[valid], strict=True))]
    r = np.hypot(h["x"].to_numpy(), h["y"].to_numpy())
    assert np.allclose(test["hit_features"][..., 0][valid] * 1000, r, rtol=1e-5)
    # labels agree with the hits' particles (>= 70% from the majority particle)
    pid = np.zeros(ids.shape, dtype=np.int64)
    pid[valid] = h["particle_id"].to_numpy()
    frac = (np.where(valid, pid == test["particle_id"][:, None], False) & (pid != 0)).sum(
        1
    ) / valid.sum(1)
    assert np.array_equal(frac >= 0.7 - 1e-9, test["label"] == 1)

    ghost_filter.train(cfg, [data[0]], d / "model")
    assert (d / "model" / "model.pt").is_file() and (d / "model" / "gbdt_train.npz").is_file()
    ghost_filter.evaluate(cfg, [data[1], sims[1]], d / "model", d / "eval")
    m = read_metrics(d / "eval" / "metrics.json")
    roc = m["rocs"]["ghost"]
    assert set(roc["methods"]) == {"lstm", "chi2", "gbdt"}
    assert roc["n_signal"] + roc["n_background"] == n == m["n_test_candidates"]
    assert m["ghost_fraction"] == pytest.approx(1 - test["label"].mean())
    for method in ("lstm", "chi2", "gbdt"):
        entry = m["ghost_rejection"][method]
        b = roc["methods"][method]["bkg_eff_at_sig_eff"]["0.99"]
        assert entry["0.99"]["ghosts_removed"] == pytest.approx(1 - b)
        assert set(entry) == {"0.95", "0.99"}
    # the chi2 cut is a real baseline even on these tiny events
    assert roc["methods"]["chi2"]["auc"] > 0.6
    for png in ("roc.png", *m["plots"]):
        assert (d / "eval" / png).stat().st_size > 1000


def test_corrupt_root_is_one_line_and_writes_nothing(cfg, shards, tmp_path, capsys):
    _, sims, _ = shards
    bad = tmp_path / "shard0.root"
    bad.write_bytes(sims[0].read_bytes()[:5000])  # truncated
    out = tmp_path / "out.npz"
    rc = main(
        [
            "build",
            "ghost_filter",
            "--config",
            str(TEST_CONFIG),
            "--input",
            str(bad),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and "shard0.root" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".out.npz*"))


def test_empty_shard_gives_an_empty_dataset_and_training_refuses_it(cfg, tmp_path):
    empty_h = pd.DataFrame({c: np.zeros(0, dtype=t) for c, t in HIT_COLUMNS.items()})
    empty_p = pd.DataFrame({c: np.zeros(0, dtype=t) for c, t in PARTICLE_COLUMNS.items()})
    sim = tmp_path / "shard0.root"
    write_tracker_root(sim, empty_h, empty_p)
    out = tmp_path / "shard0.npz"
    ghost_filter.build(cfg, [sim], out)
    data = seq.load_dataset(out)
    assert len(data["label"]) == 0 and len(data["events"]) == 0
    assert data["hit_features"].shape == (0, 10, seq.N_HIT_FEATURES)
    with pytest.raises(HepmlError, match="no track candidates"):
        ghost_filter.train(cfg, [out], tmp_path / "model")
    with pytest.raises(HepmlError, match="no track candidates"):
        ghost_filter.evaluate(cfg, [out, sim], tmp_path / "model", tmp_path / "eval")
    assert not (tmp_path / "model" / "model.pt").exists()


def test_event_without_candidates_is_kept(cfg, shards, tmp_path):
    """A shard whose events give no candidate: a valid dataset of 0 candidates that still lists them."""
    _, sims, _ = shards
    hits, parts = read_tracker_root(sims[0])
    few = hits[hits["particle_id"] == 0]  # noise only: no track
    sim = tmp_path / "noise.root"
    write_tracker_root(sim, few, parts)
    out = tmp_path / "noise.npz"
    ghost_filter.build(config.validate({}), [sim], out)  # default (realistic) windows
    data = seq.load_dataset(out)
    assert len(data["label"]) == 0
    assert data["events"].tolist() == sorted(set(hits["event_id"].tolist()))
    assert len(data["particles_id"]) == len(parts)
