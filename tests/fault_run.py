"""One tiny training with dropout in its own process, for the fault tests.

::

    python fault_run.py OUT EPOCHS N DATA     DATA: a | b (another sample) | nan

Environment: ``FAULT_KILL_AT_STEP=K`` sends SIGKILL to itself at the K-th
training step (counted from 1 over the run, so mid-epoch);
``FAULT_KILL_AT_RENAME=NAME:K`` at the K-th rename of a finished temporary onto
a file called NAME (a checkpoint written, not yet in place: the worst moment of
a write); ``FAULT_STEP_SLEEP=S`` sleeps S seconds per training step. A
:class:`~hepml.errors.HepmlError` ends as the CLI does: one line, exit 2.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import separable_sample  # noqa: E402

from hepml import models  # noqa: E402
from hepml.errors import HepmlError  # noqa: E402
from hepml.train import TensorData, TrainerConfig, build_model_seeded, fit, split_train_val  # noqa: E402

models.MODELS["drop_mlp"] = "fault_run:DropMLP"
_STEPS = 0
_RENAMES = 0
_replace = os.replace


def _replace_or_die(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    global _RENAMES
    name, _, k = os.environ.get("FAULT_KILL_AT_RENAME", ":").partition(":")
    if name and Path(dst).name == name:
        _RENAMES += 1
        if _RENAMES == int(k):
            os.kill(os.getpid(), signal.SIGKILL)
    _replace(src, dst)


class DropMLP(nn.Module):
    """Shapes: x (N, F) -> logits (N,). Dropout, so that the result depends on torch's RNG."""

    def __init__(self, n_in: int = 4, hidden: int = 32, dropout: float = 0.3) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        global _STEPS
        if self.training:
            _STEPS += 1
            if _STEPS == int(os.environ.get("FAULT_KILL_AT_STEP", "0")):
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(float(os.environ.get("FAULT_STEP_SLEEP", "0")))
        return self.net(x).squeeze(-1)


def main(out: str, max_epochs: int, n: int, data: str) -> int:
    x, y = separable_sample(n, seed=1 if data == "b" else 0)
    if data == "nan":
        x[17, 2] = float("nan")
    train, val = split_train_val(TensorData({"x": x}, y), 0.2, seed=1)
    cfg = TrainerConfig(max_epochs=max_epochs, batch_size=64, patience=100, threads=1)
    model = build_model_seeded("drop_mlp", {"n_in": 4}, seed=3)
    try:
        res = fit(model, "drop_mlp", {"n_in": 4}, train, val, cfg, Path(out), seed=3)
    except HepmlError as exc:
        print(f"fault_run: error: {exc}", file=sys.stderr)
        return 2
    print(f"resumed_from_epoch={res.resumed_from_epoch}")
    print(f"best_val_loss={res.best_val_loss!r}")
    return 0


if __name__ == "__main__":
    os.replace = _replace_or_die  # type: ignore[assignment]  # in its own process only
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
