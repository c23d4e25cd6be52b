"""Faults: SIGKILL during simulate, build and train (mid-epoch and while a checkpoint is being
written); two trainers on one folder; a truncated checkpoint; changed data (other tensors, and
re-binned calorimeter images from the CLI and through the workflow); non-finite data
(issue 12, problems 1, 3, 4 and the kill of 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fault_run
import pandas as pd
import pytest
import torch

from hepml import cli

HERE = Path(__file__).parent
EPOCHS, N = 4, 4000  # 3,200 training samples, 64 a batch: 50 steps an epoch
STEPS_PER_EPOCH = 50
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
TINY = """\
seed: 7
workflow: {tracker_shards: 2, tracker_events_per_shard: 1, calo_shards: 2, calo_showers_per_shard: 100}
tracker:
  simulation: {n_particles: 200, n_high_pt: 2, noise_per_module: 0.01}
"""


def _train(out: Path, data: str = "a", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, HERE / "fault_run.py", out, str(EPOCHS), str(N), data],
        env={**ENV, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "model.pt", weights_only=True)["state_dict"]


def _stderr_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp" in p.name]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run."""
    out = tmp_path_factory.mktemp("faults") / "ref"
    proc = _train(out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_killed_mid_epoch_resumes_bit_identical(
    reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Problem 4: SIGKILL in the middle of epoch 2 (of 0-3), rerun: the same weights bit for bit,
    though dropout draws from torch's RNG (restored from the checkpoint, not reseeded)."""
    out = tmp_path / "killed"
    kill_at = 2 * STEPS_PER_EPOCH + 17
    killed = _train(out, FAULT_KILL_AT_STEP=str(kill_at))
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "model.pt").exists()
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    assert _temporaries(out) == []  # killed between writes: nothing half-written
    capsys.readouterr()
    assert fault_run.main(str(out), EPOCHS, N, "a") == 0  # the rerun, in this process
    assert "resumed_from_epoch=2" in capsys.readouterr().out
    assert _temporaries(out) == []
    a, b = _weights(reference), _weights(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ref_m, got_m = (pd.read_csv(p / "metrics.csv") for p in (reference, out))
    assert list(got_m["epoch"]) == list(range(EPOCHS))
    assert got_m["val_loss"].tolist() == ref_m["val_loss"].tolist()  # exact, not approx


def test_killed_while_writing_a_checkpoint_leaves_nothing_stale(
    reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Problems 4 and 6: SIGKILL at the worst moment of a checkpoint write (the end of epoch 1:
    the new last.ckpt complete under its temporary name, not yet renamed). The previous
    last.ckpt stays whole, nothing lands in the system's temporary folder (Lightning's own
    writer puts its temporary there), and the rerun removes the dead writer's temporary,
    resumes from epoch 1 and ends bit-identical to the uninterrupted run."""
    out, system_tmp = tmp_path / "killed", tmp_path / "system_tmp"
    system_tmp.mkdir()
    killed = _train(out, FAULT_KILL_AT_RENAME="last.ckpt:2", TMPDIR=str(system_tmp))
    assert killed.returncode == -signal.SIGKILL
    stale = _temporaries(out)
    assert len(stale) == 1 and stale[0].parent.name == "checkpoints", stale
    assert stale[0].name.startswith(".last.ckpt.") and stale[0].stat().st_size > 0
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    assert [p for p in system_tmp.rglob("*") if p.is_file()] == []
    capsys.readouterr()
    assert fault_run.main(str(out), EPOCHS, N, "a") == 0
    assert "resumed_from_epoch=1" in capsys.readouterr().out
    assert _temporaries(out) == []
    a, b = _weights(reference), _weights(out)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_reseeding_instead_of_restoring_would_differ(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control of the test above: another dropout stream gives other weights, so
    bit-identity after a resume is not an accident of a model that ignores its RNG."""
    import hepml.train.system as system

    seed_torch = torch.manual_seed
    monkeypatch.setattr(system.torch, "manual_seed", lambda _seed: seed_torch(12345))
    out = tmp_path / "other"
    assert fault_run.main(str(out), EPOCHS, N, "a") == 0
    a, b = _weights(reference), _weights(out)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_changed_data_starts_afresh(
    reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Problem 1: other data of the same size in the same folder never resumes the old run."""
    out = tmp_path / "changed"
    assert fault_run.main(str(out), EPOCHS, N, "a") == 0
    a_weights = _weights(out)
    capsys.readouterr()
    assert fault_run.main(str(out), EPOCHS, N, "b") == 0
    captured = capsys.readouterr()
    assert "resumed_from_epoch=None" in captured.out
    assert "training data or data contract changed" in captured.err
    fresh = tmp_path / "fresh_b"
    assert fault_run.main(str(fresh), EPOCHS, N, "b") == 0
    b, b_fresh = _weights(out), _weights(fresh)
    assert all(torch.equal(b_fresh[k], b[k]) for k in b)
    assert not all(torch.equal(a_weights[k], b[k]) for k in b)


CALO = """\
seed: 7
workflow: {calo_shards: 2, calo_showers_per_shard: 60}
training: {max_epochs: 1, batch_size: 32, threads: 1}
calo_classifier:
  model: {channels: [4, 4, 4], hidden: 8}
  image: {eta_pixel: %s}
"""


def test_rebinned_calo_images_start_afresh_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Problem 1 as the issue found it: the calorimeter images re-binned
    (``calo_classifier.image.eta_pixel``), rebuilt into the same dataset file and trained into
    the same --out. The rerun says it starts afresh and ends with the weights of a fresh
    training on the new images, not the old model (a resumed run of one epoch would have
    nothing left to do and keep the old weights)."""
    sim, data, out = tmp_path / "calo0.root", tmp_path / "calo0.npz", tmp_path / "model"
    old_cfg, new_cfg = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old_cfg.write_text(CALO % "0.003125")
    new_cfg.write_text(CALO % "0.0025")
    simulate = ["simulate", "calo", "--config", old_cfg, "--shard", 0, "--out", sim]
    assert cli.main([str(a) for a in simulate]) == 0

    def build_and_train(cfg: Path, model: Path) -> str:
        build = ["build", "calo_classifier", "--config", cfg, "--input", sim, "--out", data]
        assert cli.main([str(a) for a in build]) == 0
        capsys.readouterr()
        train = ["train", "calo_classifier", "--config", cfg, "--data", data, "--out", model]
        assert cli.main([str(a) for a in train]) == 0
        return capsys.readouterr().err

    assert "afresh" not in build_and_train(old_cfg, out)
    old = _weights(out)
    log = build_and_train(new_cfg, out)
    assert "not resuming" in log and "training data or data contract changed" in log
    assert "starting afresh" in log and "resuming calo_cnn" not in log
    new = _weights(out)
    assert not all(torch.equal(old[k], new[k]) for k in old)
    build_and_train(new_cfg, tmp_path / "fresh")
    fresh = _weights(tmp_path / "fresh")
    assert all(torch.equal(fresh[k], new[k]) for k in new)


@pytest.mark.slow
def test_rebinned_calo_images_start_afresh_through_the_workflow(tmp_path: Path) -> None:
    """Problem 1 through Snakemake: after a run, ``calo_classifier.image.eta_pixel`` changed;
    the rerun rebuilds the calorimeter datasets (no simulation), retrains the classifier and
    its log says it started afresh; the model differs from the first."""
    from workflow_run import job_counts, snakemake

    results = tmp_path / "results-test"
    model = results / "models" / "calo_classifier" / "model.pt"
    small = {"workflow": {"calo_showers_per_shard": 100}, "training": {"max_epochs": 1}}
    first = snakemake(results, "--cores", "2", str(model), overrides=small)
    assert first.returncode == 0, first.stderr[-3000:]
    log = results / "logs" / "train" / "calo_classifier.log"
    assert "afresh" not in log.read_text()
    old = _weights(model.parent)
    rebinned = {**small, "calo_classifier": {"image": {"eta_pixel": 0.0025}}}
    second = snakemake(results, "--cores", "2", str(model), overrides=rebinned)
    assert second.returncode == 0, second.stderr[-3000:]
    jobs = job_counts(second.stdout + "\n" + second.stderr)
    assert jobs.get("simulate", 0) == 0 and jobs["build"] >= 1 and jobs["train"] == 1, jobs
    text = log.read_text()
    assert "training data or data contract changed" in text and "starting afresh" in text
    new = _weights(model.parent)
    assert not all(torch.equal(old[k], new[k]) for k in old)


def test_second_trainer_on_one_folder_is_refused(reference: Path, tmp_path: Path) -> None:
    """Problem 4: a second trainer on the same --out stops with one line; the first is unharmed."""
    out = tmp_path / "shared"
    first = subprocess.Popen(
        [sys.executable, HERE / "fault_run.py", out, str(EPOCHS), str(N), "a"],
        env={**ENV, "FAULT_STEP_SLEEP": "0.004"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = out / "train.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (lock.is_file() and lock.read_text().strip()):
        time.sleep(0.02)
    second = _train(out)
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 2
    lines = _stderr_lines(second)
    assert len(lines) == 1 and "another trainer" in lines[0] and str(out) in lines[0], lines
    a, b = _weights(reference), _weights(out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert list(pd.read_csv(out / "metrics.csv")["epoch"]) == list(range(EPOCHS))


def test_truncated_checkpoint_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Problem 4: a truncated last.ckpt: one line naming it and how to restart, every rerun."""
    out = tmp_path / "trunc"
    assert _train(out, FAULT_KILL_AT_STEP=str(STEPS_PER_EPOCH + 5)).returncode == -signal.SIGKILL
    last = out / "checkpoints" / "last.ckpt"
    blob = last.read_bytes()
    last.write_bytes(blob[: len(blob) // 2])
    assert fault_run.main(str(out), EPOCHS, N, "a") == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and str(last) in lines[0] and "delete" in lines[0], lines
    assert not (out / "model.pt").exists()
    assert last.stat().st_size == len(blob) // 2  # left as it was, for the user to look at


def test_non_finite_training_data_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Problem 3: one NaN feature: one line naming the tensor, no output folder at all."""
    out = tmp_path / "nan"
    assert fault_run.main(str(out), EPOCHS, N, "nan") == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "input.x" in lines[0] and "non-finite" in lines[0], lines
    assert not out.exists()


def _hepml(*args: object, killed: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, HERE / "fault_cli.py"] if killed else [sys.executable, "-m", "hepml.cli"]
    return subprocess.run(
        [*cmd, *map(str, args)], env=ENV, capture_output=True, text=True, timeout=300
    )


def test_kill_during_simulate_and_build_leaves_nothing_stale(tmp_path: Path) -> None:
    """Problem 6: SIGKILL at the worst moment of a write (temporary complete, not yet renamed)
    leaves no output; the rerun writes it and removes the dead writer's temporary."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    sim = tmp_path / "sim" / "shard0.root"
    proc = _hepml("simulate", "tracker", "--config", cfg, "--shard", 0, "--out", sim, killed=True)
    assert proc.returncode == -signal.SIGKILL
    assert not sim.exists() and len(_temporaries(tmp_path)) == 1
    assert (
        cli.main(["simulate", "tracker", "--config", str(cfg), "--shard", "0", "--out", str(sim)])
        == 0
    )
    assert sim.is_file() and _temporaries(tmp_path) == []

    data = tmp_path / "data" / "shard0.npz"
    build = ("build", "ghost_filter", "--config", cfg, "--input", sim, "--out", data)
    assert _hepml(*build, killed=True).returncode == -signal.SIGKILL
    assert not data.exists() and len(_temporaries(tmp_path)) == 1
    assert cli.main([str(a) for a in build]) == 0
    assert data.is_file() and _temporaries(tmp_path) == []


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device to write a GPU checkpoint"
)
def test_gpu_checkpoint_resumes_on_cpu(tmp_path: Path) -> None:
    """A run killed on the GPU resumes on the CPU (checkpoints load with map_location)."""
    out = tmp_path / "gpu"
    killed = _train(out, FAULT_KILL_AT_STEP=str(STEPS_PER_EPOCH + 5))
    assert killed.returncode == -signal.SIGKILL
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["hepml_rng_states"]["cuda"], "the checkpoint was not written on a GPU"
    rerun = _train(out, CUDA_VISIBLE_DEVICES="")
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed_from_epoch=2" in rerun.stdout
