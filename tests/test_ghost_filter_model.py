"""GhostLSTM alone (packing, registry, learning a seeded toy) and the sequence data contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from hepml import config
from hepml.detector import load_detector
from hepml.errors import HepmlError
from hepml.evaluate.roc import auc
from hepml.features import sequences as seq
from hepml.models import build_model
from hepml.models.ghost_lstm import GhostLSTM
from hepml.reco.chain import Reconstruction
from hepml.reco.matching import match_tracks
from hepml.reco.spacepoints import SpacePoints
from hepml.rng import rng as make_rng
from hepml.sim.tracker import TrackerSimConfig, simulate_events
from hepml.tasks.ghost_filter import event_candidates
from hepml.train import TensorData, TrainerConfig, fit, predict

TEST_CONFIG = Path(__file__).resolve().parents[1] / "config" / "test.yaml"


def test_default_sizes_follow_the_contract():
    m = GhostLSTM(hidden=8, layers=1, dropout=0.0, head_hidden=8)
    assert m.n_hit_features == seq.N_HIT_FEATURES
    assert m.n_track_features == seq.N_TRACK_FEATURES
    hp = {"hidden": 8, "layers": 1, "dropout": 0.0, "head_hidden": 4}
    assert isinstance(build_model("ghost_lstm", hp), GhostLSTM)


def test_padding_never_enters_the_recurrence():
    g = torch.Generator().manual_seed(0)
    model = GhostLSTM(hidden=16, layers=2, dropout=0.0, head_hidden=64).eval()
    inputs = GhostLSTM.example_inputs(64, g, max_len=20)
    assert inputs["hits"].shape == (64, 20, seq.N_HIT_FEATURES)
    assert inputs["track"].shape == (64, seq.N_TRACK_FEATURES)
    assert int(inputs["lengths"].min()) >= seq.MIN_LENGTH
    with torch.no_grad():
        out = model(**inputs)
        junk = inputs["hits"].clone()
        pad = torch.arange(20)[None, :] >= inputs["lengths"][:, None]
        junk[pad] = 1e3
        out_junk = model(**{**inputs, "hits": junk})
        # a shorter sequence differs: the length is used
        shorter = model(**{**inputs, "lengths": (inputs["lengths"] - 1).clamp_min(1)})
    assert out.shape == (64,)
    assert torch.allclose(out, out_junk, atol=1e-6)
    assert not torch.allclose(out, shorter)


def _kink_toy(n: int, rng: np.random.Generator) -> TensorData:
    """Sequences of 3-16 hits; ghosts' per-hit pulls jump by 2 after a random hit (a kink).

    The track features are noise, so only the sequence tells the classes apart.
    """
    width = 16
    lengths = rng.integers(5, width + 1, n)
    hits = rng.standard_normal((n, width, seq.N_HIT_FEATURES)).astype(np.float32) * 0.5
    label = (rng.random(n) < 0.6).astype(np.float32)
    kink = rng.integers(2, 4, n)
    pos = np.arange(width)[None, :]
    col = seq.HIT_COL["pull_t"]
    hits[:, :, col] += np.where((label[:, None] == 0) & (pos >= kink[:, None]), 2.0, 0.0)
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


# --------------------------------------------------------------------------- the contract on an event
@pytest.fixture(scope="module")
def event():
    """One test.yaml-sized event (600 primaries) through the finder: candidates, fit, features."""
    return _through_the_finder(config.load(TEST_CONFIG), "test-gf-contract")


def test_candidates_are_the_road_followers_picks_in_path_order(event):
    det, hits, _, sp, roads, cand, _, feats, _ = event
    # every road with >= 3 picks is one candidate holding exactly its picks
    rid = roads.road_of_element
    n_pick = np.bincount(rid[roads.picked], minlength=len(roads))
    assert np.array_equal(cand.road, np.flatnonzero(n_pick >= 3))
    assert np.array_equal(cand.lengths, n_pick[cand.road])
    for i in (0, len(cand) // 2, len(cand) - 1):
        r = cand.road[i]
        sl = slice(roads.road_ptr[r], roads.road_ptr[r + 1])
        assert sorted(roads.hit[sl][roads.picked[sl]]) == sorted(
            cand.hit[cand.ptr[i] : cand.ptr[i + 1]]
        )
    # ordered by path length within each candidate
    first = np.r_[True, np.diff(cand.of_hit) != 0]
    assert np.all(np.diff(cand.s)[~first[1:]] >= 0)
    f = feats["hit_features"]
    assert f.shape == (len(cand.hit), seq.N_HIT_FEATURES) and f.dtype == np.float32
    assert feats["track_features"].shape == (len(cand), seq.N_TRACK_FEATURES)
    assert np.isfinite(f).all() and np.isfinite(feats["track_features"]).all()
    # per-hit features trace back to the hit's own position and surface
    assert np.allclose(f[:, seq.HIT_COL["r"]] * 1000, sp.r[cand.hit], rtol=1e-5)
    assert np.allclose(f[:, seq.HIT_COL["z"]] * 3000, sp.z[cand.hit], atol=1e-2)
    assert np.array_equal(f[:, seq.HIT_COL["disk"]] == 1, sp.disk[cand.hit])
    vol = np.array([s.volume_id for s in det.surfaces])[sp.surface[cand.hit]]
    region = f[:, seq.HIT_COL["region"]]
    assert np.all(region[np.isin(vol, [7, 8, 9])] == 0) and np.all(
        region[np.isin(vol, [16, 17, 18])] == 1
    )
    # both hits of an overlap stay: consecutive hits on one surface, flagged
    same = f[:, seq.HIT_COL["same_surface"]] == 1
    assert same.sum() > 0.05 * len(cand)
    assert np.array_equal(same[1:], ~first[1:] & (cand.surface[1:] == cand.surface[:-1]))
    # barrel and disk hits, pixels and strips are all there
    assert 0.1 < sp.disk[cand.hit].mean() < 0.9 and (region > 0).mean() > 0.15


def _through_the_finder(cfg: dict[str, Any], stream: str) -> tuple:
    det = load_detector(cfg)
    hits, particles = simulate_events(
        det, TrackerSimConfig.from_config(cfg), np.arange(1), make_rng(11, stream)
    )
    reco = Reconstruction.from_config(cfg, det)
    sp = SpacePoints.from_hits(det, hits)
    roads, _ = event_candidates(sp, reco)
    cand = seq.candidates_from_roads(roads)
    cf = seq.fit_candidates(sp, det, cand)
    feats = seq.candidate_features(sp, det, cand, cf)
    pid = hits["particle_id"].to_numpy()
    match = match_tracks(
        seq.pad(cand.ptr, pid[cand.hit]), seq.pad(cand.ptr, np.ones(len(cand.hit), bool), False)
    )
    return det, hits, particles, sp, roads, cand, cf, feats, match


def test_fit_residuals_are_the_pitch_without_scattering():
    """No scattering, no energy loss, a uniform field: the residuals of true candidates
    across the track are the binary readout's, pitch/sqrt(12) (measured 1.08-1.18 in
    1.4826 MAD units, a uniform residual's robust width being 1.28 its RMS, times the
    fit's sqrt(1 - leverage)), and the fitted pT is the particle's (PDG 34.33)."""
    raw = yaml.safe_load(TEST_CONFIG.read_text())
    raw["tracker"]["simulation"].update(
        multiple_scattering=False, energy_loss=False, nuclear_interactions=False
    )
    raw["tracker"]["field"] = {"model": "uniform"}
    _, _, particles, sp, _, cand, cf, _, match = _through_the_finder(
        config.validate(raw), "test-gf-clean"
    )
    fit = cf.fit
    good = match.is_true & (match.purity == 1.0) & (fit.pt_GeV > 1.0)
    assert good.sum() >= 50
    sel = good[cand.of_hit]
    u = cf.res_t[sel] / sp.sigma_t[cand.hit][sel]
    assert 0.9 < 1.4826 * np.median(np.abs(u)) < 1.4
    barrel = sel & ~sp.disk[cand.hit]
    v = cf.res_l[barrel] / sp.sigma_l[cand.hit][barrel]
    assert 0.8 < 1.4826 * np.median(np.abs(v)) < 1.4
    p = particles.set_index("particle_id").loc[match.particle_id[good]]
    rel = fit.pt_GeV[good] / np.hypot(p["px"].to_numpy(), p["py"].to_numpy()) - 1.0
    assert abs(np.median(rel)) < 0.005 and 1.4826 * np.median(np.abs(rel)) < 0.02


def test_fit_sigmas_cover_the_scattering(event):
    """With scattering, the fit's sigmas (pitch and diagonal Highland) are conservative
    for stiff central tracks (pulls ~0.3 wide, measured: the fit absorbs much of the
    scattering the diagonal sum counts), never too narrow; ghosts fit far worse."""
    _, _, _, _, _, cand, cf, _, match = event
    fit = cf.fit
    stiff = match.is_true & (match.purity == 1.0) & (fit.pt_GeV > 0.5) & (np.abs(fit.eta) < 1.5)
    assert stiff.sum() >= 50
    sel = stiff[cand.of_hit]
    w_t = 1.4826 * np.median(np.abs(cf.res_t[sel] / cf.sigma_t[sel]))
    w_l = 1.4826 * np.median(np.abs(cf.res_l[sel] / cf.sigma_l[sel]))
    assert 0.15 < w_t < 1.2 and 0.15 < w_l < 1.2, (w_t, w_l)
    assert np.median(fit.chi2_ndf[~match.is_true]) > 10 * np.median(fit.chi2_ndf[stiff])


def test_tensors_pad_the_flat_sequences(event):
    _, hits, _, _, _, cand, _, feats, match = event
    n = len(cand)
    data = {
        **{k: np.zeros(n, dtype=dt) for k, dt in seq.CANDIDATE_ARRAYS.items()},
        "lengths": cand.lengths,
        "track_features": feats["track_features"],
        "label": match.is_true.astype(np.float32),
        "hit_features": feats["hit_features"],
    }
    td = seq.to_tensor_data(data)
    x = td.inputs["hits"].numpy()
    assert x.shape == (n, int(cand.lengths.max()), seq.N_HIT_FEATURES)
    valid = np.arange(x.shape[1])[None, :] < cand.lengths[:, None]
    assert np.array_equal(x[valid], feats["hit_features"])
    assert np.all(x[~valid] == 0.0)


def test_dataset_files_round_trip_and_refuse_other_contracts(tmp_path: Path):
    data = seq.empty_dataset()
    seq.save_dataset(tmp_path / "a.npz", data)
    back = seq.load_datasets([tmp_path / "a.npz", tmp_path / "a.npz"])
    assert back["hit_features"].shape == (0, seq.N_HIT_FEATURES)
    assert len(seq.to_tensor_data(back)) == 0
    with np.load(tmp_path / "a.npz") as f:
        arrays = dict(f)
    arrays["contract_version"] = np.array(seq.CONTRACT_VERSION - 1)
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(HepmlError, match="contract version"):
        seq.load_dataset(tmp_path / "old.npz")
    arrays["contract_version"] = np.array(seq.CONTRACT_VERSION)
    arrays["lengths"] = np.array([4], dtype=np.int64)  # a sequence with no hits behind it
    np.savez(tmp_path / "short.npz", **arrays)
    with pytest.raises(HepmlError, match="short.npz"):
        seq.load_dataset(tmp_path / "short.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(HepmlError, match="bad.npz"):
        seq.load_dataset(tmp_path / "bad.npz")
