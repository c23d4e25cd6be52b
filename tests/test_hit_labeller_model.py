"""HitBiGRU: packing, bidirectional context, and that it learns to label road hits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepml import config
from hepml.features.roads import N_FEATURES
from hepml.models import build_model
from hepml.models.hit_bigru import HitBiGRU
from hepml.rng import rng
from hepml.sim.tracker import simulate_events


def test_registered_and_example_inputs():
    m = build_model(
        "hit_bigru", {"n_features": N_FEATURES, "hidden": 8, "num_layers": 2, "dropout": 0.0}
    )
    assert isinstance(m, HitBiGRU)
    inp = HitBiGRU.example_inputs(7, torch.Generator().manual_seed(0))
    assert inp["x"].shape == (7, 24, N_FEATURES) and inp["lengths"].shape == (7,)
    out = m(**inp)
    assert out.shape == (7, int(inp["lengths"].max()))


def test_padding_and_batch_neighbours_do_not_change_logits():
    torch.manual_seed(0)
    m = HitBiGRU(n_features=5, hidden=6, num_layers=2, dropout=0.0).eval()
    x = torch.randn(3, 9, 5)
    lengths = torch.tensor([4, 9, 6])
    with torch.inference_mode():
        full = m(x, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = m(x[i : i + 1, :n], lengths[i : i + 1])
            torch.testing.assert_close(full[i, :n], alone[0], rtol=1e-5, atol=1e-6)
            garbage = x[i : i + 1].clone()
            garbage[0, n:] = 100.0  # whatever sits in the padding is never read
            torch.testing.assert_close(
                m(garbage, lengths[i : i + 1])[0, :n], alone[0], rtol=1e-5, atol=1e-6
            )


def test_context_flows_both_ways():
    torch.manual_seed(1)
    m = HitBiGRU(n_features=4, hidden=6, num_layers=1, dropout=0.0).eval()
    x = torch.randn(1, 6, 4)
    lengths = torch.tensor([6])
    with torch.inference_mode():
        base = m(x, lengths)[0]
        late = x.clone()
        late[0, 5] += 3.0
        early = x.clone()
        early[0, 0] += 3.0
        assert (m(late, lengths)[0, 0] - base[0]).abs() > 1e-4  # the first hit sees the last
        assert (m(early, lengths)[0, 5] - base[5]).abs() > 1e-4  # and the last the first


@pytest.fixture(scope="module")
def road_sample(tmp_path_factory):
    """Roads (with labels) of four small full-detector events: three to train on, one to test."""
    from hepml.reco.chain import Reconstruction, event_roads
    from hepml.reco.spacepoints import SpacePoints
    from hepml.sim.tracker import TrackerSimConfig

    cfg = config.validate(
        {
            "seed": 5,
            "tracker": {"simulation": {"n_particles": 3000, "noise_per_module": 0.8}},
            "hit_labeller": {"seeding": {"min_pt_GeV": 0.3}},
        }
    )
    reco = Reconstruction.from_config(cfg)
    hits, _ = simulate_events(
        reco.detector, TrackerSimConfig.from_config(cfg), np.arange(4), rng(5, "test-labeller")
    )
    out = []
    for _, h in hits.groupby("event_id"):
        h = h.reset_index(drop=True)
        sp = SpacePoints.from_hits(reco.detector, h)
        roads, _ = event_roads(sp, reco, h["particle_id"].to_numpy(np.int64))
        out.append(roads)
    return out


def _dataset(roads_list):
    from hepml.tasks.hit_labeller import tensor_data

    ptr = [np.zeros(1, np.int64)]
    off = 0
    for r in roads_list:
        ptr.append(r.road_ptr[1:] + off)
        off += int(r.road_ptr[-1])
    d = {
        "road_ptr": np.concatenate(ptr),
        "features": np.concatenate([r.features for r in roads_list]),
        "label": np.concatenate([r.label for r in roads_list]),
    }
    return d, tensor_data(d)


def test_labeller_learns_and_beats_the_road_follower(road_sample, tmp_path):
    """A few epochs on three events: per-hit AUC above the follower's chi2 score and above 0.95."""
    from sklearn.metrics import roc_auc_score

    from hepml.reco.chain import label_roads
    from hepml.train import TrainerConfig, build_model_seeded, fit, split_train_val

    _, train_td = _dataset(road_sample[:3])
    test_d, _ = _dataset(road_sample[3:])
    tr, va = split_train_val(train_td, 0.15, seed=3)
    hp = {"n_features": N_FEATURES, "hidden": 16, "num_layers": 1, "dropout": 0.0}
    model = build_model_seeded("hit_bigru", hp, seed=3)
    cfg = TrainerConfig(max_epochs=6, batch_size=256, lr=5e-3, patience=6, device="cpu", threads=1)
    fit(model, "hit_bigru", hp, tr, va, cfg, tmp_path, seed=3, loss="bce")
    logits = label_roads(model, test_d["road_ptr"], test_d["features"])
    y = test_d["label"]
    auc_net = roc_auc_score(y, logits)
    auc_rf = roc_auc_score(y, np.concatenate([r.follower_score for r in road_sample[3:]]))
    assert auc_net > 0.95, auc_net
    assert auc_net > auc_rf, (auc_net, auc_rf)
