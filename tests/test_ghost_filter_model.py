"""GhostLSTM alone (packing, registry, learning a seeded toy) and the sequence data contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hepml import config
from hepml.detector.layers import TrackerGeometry
from hepml.errors import HepmlError
from hepml.evaluate.roc import auc
from hepml.features import sequences as seq
from hepml.models import build_model
from hepml.models.ghost_lstm import GhostLSTM
from hepml.reco.fit import LayerResolution, helix_from_beamline, predict_on_cylinder
from hepml.reco.following import FollowingConfig, find_candidates
from hepml.reco.seeding import SeedingConfig
from hepml.train import TensorData, TrainerConfig, fit, predict


def test_default_sizes_follow_the_contract():
    m = GhostLSTM()
    assert m.n_hit_features == seq.N_HIT_FEATURES
    assert m.n_track_features == seq.N_TRACK_FEATURES
    assert isinstance(build_model("ghost_lstm", {"hidden": 8, "layers": 1}), GhostLSTM)


def test_padding_never_enters_the_recurrence():
    g = torch.Generator().manual_seed(0)
    model = GhostLSTM(hidden=16, layers=2, dropout=0.0).eval()
    inputs = GhostLSTM.example_inputs(64, g)
    assert inputs["hits"].shape == (64, 10, seq.N_HIT_FEATURES)
    assert inputs["track"].shape == (64, seq.N_TRACK_FEATURES)
    with torch.no_grad():
        out = model(**inputs)
        junk = inputs["hits"].clone()
        pad = torch.arange(10)[None, :] >= inputs["lengths"][:, None]
        junk[pad] = 1e3
        out_junk = model(**{**inputs, "hits": junk})
        # a shorter sequence differs: the length is used
        shorter = model(**{**inputs, "lengths": (inputs["lengths"] - 1).clamp_min(1)})
    assert out.shape == (64,)
    assert torch.allclose(out, out_junk, atol=1e-6)
    assert not torch.allclose(out, shorter)


def _kink_toy(n: int, rng: np.random.Generator) -> TensorData:
    """Sequences of 7-10 hits; ghosts' per-hit pulls jump by 2 after a random hit (a kink).

    The track features are noise, so only the sequence tells the classes apart.
    """
    lengths = rng.integers(7, 11, n)
    hits = rng.standard_normal((n, 10, seq.N_HIT_FEATURES)).astype(np.float32) * 0.5
    label = (rng.random(n) < 0.6).astype(np.float32)
    kink = rng.integers(3, 6, n)
    pos = np.arange(10)[None, :]
    hits[:, :, 3] += np.where((label[:, None] == 0) & (pos >= kink[:, None]), 2.0, 0.0)
    hits[pos >= lengths[:, None]] = 0.0
    track = rng.standard_normal((n, seq.N_TRACK_FEATURES)).astype(np.float32)
    return TensorData(
        inputs={
            "hits": torch.from_numpy(hits),
            "lengths": torch.from_numpy(lengths),
            "track": torch.from_numpy(track),
        },
        target=torch.from_numpy(label),
    )


# Lightning warns that `srun` exists on machines with SLURM installed; not about this run.
@pytest.mark.filterwarnings("ignore:.*srun.*")
def test_lstm_learns_a_seeded_toy(tmp_path: Path):
    rng = np.random.default_rng(9)
    train, val, test = _kink_toy(2000, rng), _kink_toy(500, rng), _kink_toy(1000, rng)
    hparams: dict[str, Any] = {"hidden": 16, "layers": 1, "dropout": 0.0, "head_hidden": 16}
    torch.manual_seed(0)
    model = GhostLSTM(**hparams)
    cfg = TrainerConfig(max_epochs=6, batch_size=128, lr=5e-3, patience=3, device="cpu", threads=1)
    fit(model, "ghost_lstm", hparams, train, val, cfg, tmp_path, seed=1)
    score = predict(model, test)
    assert auc(test.target.numpy(), score) > 0.9
    assert (tmp_path / "model.pt").is_file()


@pytest.fixture(scope="module")
def toy_candidates():
    cfg = config.validate({})
    geometry = TrackerGeometry.from_config(cfg)
    rng = np.random.default_rng(10)
    n = 30
    pt = 10 ** rng.uniform(0, 1, n)
    phi = np.linspace(-np.pi, np.pi, n, endpoint=False)
    vz = rng.normal(0, 30, n)
    eta = rng.uniform(-0.5, 0.5, n)
    truth = helix_from_beamline(pt, phi, eta, vz, rng.choice([-1, 1], n), 2.0)
    cols = [predict_on_cylinder(truth, layer.radius_mm) for layer in geometry.layers]
    x, y, z = (np.concatenate([c[i] for c in cols]) for i in range(3))
    lay = np.repeat(np.arange(geometry.n_layers), n)
    keep = ~((lay == 5) & (np.arange(len(lay)) % n == 0))  # particle 0 misses layer 5: a hole
    x, y, z, lay = x[keep], y[keep], z[keep], lay[keep]
    cands = find_candidates(
        x, y, z, lay, geometry, SeedingConfig.from_config(cfg), FollowingConfig.from_config(cfg)
    )
    return geometry, x, y, z, lay, cands


def test_sequences_follow_the_contract(toy_candidates):
    geometry, x, y, z, lay, cands = toy_candidates
    res = LayerResolution.from_geometry(geometry)
    out = seq.candidate_sequences(x, y, z, cands.hits, cands.fit, res, cands.n_holes)
    n = len(cands)
    f, rows, lengths = out["hit_features"], out["hit_rows"], out["lengths"]
    assert f.shape == (n, geometry.n_layers, seq.N_HIT_FEATURES) and f.dtype == np.float32
    assert out["track_features"].shape == (n, seq.N_TRACK_FEATURES)
    col = {name: i for i, name in enumerate(seq.HIT_FEATURES)}
    tcol = {name: i for i, name in enumerate(seq.TRACK_FEATURES)}
    valid = rows >= 0
    assert np.array_equal(valid.sum(axis=1), lengths)
    assert np.all(valid[:, :-1] >= valid[:, 1:])  # left-aligned
    assert np.all(f[~valid] == 0.0)  # zero padding
    # every entry traces back to its hit: radius, z and layer, ordered by radius
    r = np.hypot(x, y)
    assert np.allclose(f[..., col["r"]][valid] * 1000, r[rows[valid]], rtol=1e-6)
    assert np.allclose(f[..., col["z"]][valid] * 1000, z[rows[valid]], atol=1e-3)
    assert np.allclose(f[..., col["layer"]][valid] * 9, lay[rows[valid]])
    assert np.all(np.diff(np.where(valid, f[..., col["r"]], np.inf), axis=1)[valid[:, 1:]] > 0)
    # exact helices: pulls vanish
    assert np.abs(f[..., col["pull_rphi"]][valid]).max() < 1e-3
    # steps: one layer apart except across the hole of particle 0's track
    steps = np.round(f[..., col["d_layer"]] * 3)[:, 1:][valid[:, 1:]]
    assert set(steps.tolist()) == {1.0, 2.0}
    holes = out["track_features"][:, tcol["n_holes"]]
    assert sorted(holes.tolist()) == [0.0] * (n - 1) + [1.0]
    assert np.allclose(out["track_features"][:, tcol["n_hits"]], lengths / 10)
    assert np.all(out["track_features"][:, tcol["shared_fraction"]] == 0.0)  # isolated tracks


def test_dataset_files_round_trip_and_refuse_other_contracts(toy_candidates, tmp_path: Path):
    data = seq.empty_dataset(10)
    seq.save_dataset(tmp_path / "a.npz", data)
    back = seq.load_datasets([tmp_path / "a.npz", tmp_path / "a.npz"])
    assert back["hit_features"].shape == (0, 10, seq.N_HIT_FEATURES)
    assert len(seq.to_tensor_data(back)) == 0
    with np.load(tmp_path / "a.npz") as f:
        arrays = dict(f)
    arrays["contract_version"] = np.array(seq.CONTRACT_VERSION + 1)
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(HepmlError, match="contract version"):
        seq.load_dataset(tmp_path / "old.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(HepmlError, match="bad.npz"):
        seq.load_dataset(tmp_path / "bad.npz")
