"""One tiny training in its own process, on DEVICES CPU processes (DDP, gloo) or on one.

::

    python ddp_run.py OUT EPOCHS N DEVICES DROPOUT

With DEVICES > 1 Lightning starts ranks 1..DEVICES-1 by rerunning this command
(``LOCAL_RANK`` set), as ``hepml train`` is rerun. ``DDP_KILL_AT_STEP=K`` makes
rank 0 send SIGKILL to its whole process group (every rank: a preempted job) at
its K-th training step. Each rank prints ``rank R done``; rank 0 then
``resumed_from_epoch=`` and ``best_val_loss=``.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import separable_sample  # noqa: E402

from hepml import models  # noqa: E402
from hepml.train import TensorData, TrainerConfig, build_model_seeded, fit, split_train_val  # noqa: E402
from hepml.train.parallel import launch_rank  # noqa: E402

models.MODELS["ddp_mlp"] = "ddp_run:DDPMLP"
BATCH = 63  # odd: the two ranks take 32 and 31 samples a step, so their RNG streams part
_STEPS = 0


class DDPMLP(nn.Module):
    """Shapes: x (N, F) -> logits (N,). With dropout the result depends on each rank's RNG."""

    def __init__(self, n_in: int = 4, hidden: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        global _STEPS
        if self.training and launch_rank() == 0:
            _STEPS += 1
            if _STEPS == int(os.environ.get("DDP_KILL_AT_STEP", "0")):
                os.killpg(os.getpgrp(), signal.SIGKILL)
        return self.net(x).squeeze(-1)


def main(out: str, max_epochs: int, n: int, devices: int, dropout: float) -> None:
    x, y = separable_sample(n, seed=0)
    train, val = split_train_val(TensorData({"x": x}, y), 0.2, seed=1)
    cfg = TrainerConfig(
        max_epochs=max_epochs,
        batch_size=BATCH,
        patience=100,
        threads=1,
        device="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
    )
    hp = {"n_in": 4, "dropout": dropout}
    model = build_model_seeded("ddp_mlp", hp, seed=3)
    res = fit(model, "ddp_mlp", hp, train, val, cfg, Path(out), seed=3)
    print(f"rank {launch_rank()} done", flush=True)
    if launch_rank() == 0:
        print(f"resumed_from_epoch={res.resumed_from_epoch}")
        print(f"best_val_loss={res.best_val_loss!r}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
