"""The shared training system: learning, masked losses, resume after a kill, safe loading."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_models import separable_sample

from hepml import config, models
from hepml.errors import HepmlError
from hepml.train import (
    TensorData,
    TrainerConfig,
    build_model_seeded,
    compute_loss,
    fit,
    load_model,
    predict,
    split_train_val,
)

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _tiny_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(models.MODELS, "tiny_mlp", "tiny_models:TinyMLP")


def _fit(out: Path, epochs: int = 6, seed: int = 3):
    x, y = separable_sample(4000, seed=0)
    train, val = split_train_val(TensorData({"x": x}, y), 0.2, seed=1)
    cfg = TrainerConfig(max_epochs=epochs, batch_size=64, patience=100, threads=1)
    model = build_model_seeded("tiny_mlp", {"n_in": 4}, seed=seed)
    return fit(model, "tiny_mlp", {"n_in": 4}, train, val, cfg, out, seed=seed), val


def test_learns_a_plane_and_reloads_safely(tmp_path: Path) -> None:
    res, val = _fit(tmp_path / "run")
    model, meta = load_model(res.model_path)
    logits = predict(model, val)
    acc = float(((logits > 0) == val.target.numpy().astype(bool)).mean())
    assert acc > 0.95, acc
    assert meta["model_name"] == "tiny_mlp" and meta["hparams"] == {"n_in": 4}
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert list(metrics["epoch"]) == list(range(6))
    assert metrics["val_loss"].iloc[-1] < 0.5 * metrics["val_loss"].iloc[0]
    assert res.best_val_loss == pytest.approx(metrics["val_loss"].min(), rel=1e-6)


def test_same_seed_same_weights_other_seed_differs(tmp_path: Path) -> None:
    a, _ = _fit(tmp_path / "a", epochs=2)
    b, _ = _fit(tmp_path / "b", epochs=2)
    c, _ = _fit(tmp_path / "c", epochs=2, seed=4)
    sa, sb, sc = (torch.load(r.model_path, weights_only=True)["state_dict"] for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_killed_run_resumes_from_last_checkpoint(tmp_path: Path) -> None:
    """SIGKILL mid-training, rerun: resumes and ends with the uninterrupted run's weights."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    epochs, n = 8, 30000
    ref = tmp_path / "ref"
    subprocess.run(
        [sys.executable, HERE / "train_run.py", ref, str(epochs), str(n)],
        check=True,
        env=env,
        capture_output=True,
    )
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, HERE / "train_run.py", out, str(epochs), str(n)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if last.is_file() and torch.load(last, weights_only=True)["epoch"] >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model.pt").exists()
    rerun = subprocess.run(
        [sys.executable, HERE / "train_run.py", out, str(epochs), str(n)],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    resumed = int(rerun.stdout.strip().split("=")[1])
    assert 2 <= resumed < epochs
    a = torch.load(ref / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert list(pd.read_csv(out / "metrics.csv")["epoch"]) == list(range(epochs))


def test_masked_per_element_loss_matches_hand_computation() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    got = compute_loss(logits, {"target": target, "mask": mask}, "bce")
    terms = [np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0)), np.log(2.0)]
    assert float(got) == pytest.approx(np.mean(terms), rel=1e-6)


def test_trainer_config_task_override() -> None:
    cfg = config.validate({"training": {"lr": 0.01, "batch_size": 64}})
    cfg["ghost_filter"]["train"] = {"batch_size": 1024}
    tc = TrainerConfig.from_config(cfg, "ghost_filter")
    assert (tc.lr, tc.batch_size) == (0.01, 1024)


def test_load_model_refuses_pickled_objects(tmp_path: Path) -> None:
    bad = tmp_path / "evil.pt"
    torch.save({"model_name": "tiny_mlp", "hparams": {}, "state_dict": {}, "obj": Path("x")}, bad)
    with pytest.raises(HepmlError, match="not a hepml model file"):
        load_model(bad)
    with pytest.raises(HepmlError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
