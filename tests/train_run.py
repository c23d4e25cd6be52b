"""Run one tiny training in its own process (the resume test kills it mid-run)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import separable_sample  # noqa: E402

from hepml import models  # noqa: E402
from hepml.train import TensorData, TrainerConfig, build_model_seeded, fit, split_train_val  # noqa: E402

models.MODELS["tiny_mlp"] = "tiny_models:TinyMLP"


def main(out: str, max_epochs: int, n: int) -> None:
    x, y = separable_sample(n, seed=0)
    train, val = split_train_val(TensorData({"x": x}, y), 0.2, seed=1)
    cfg = TrainerConfig(max_epochs=max_epochs, batch_size=64, patience=100, threads=1)
    model = build_model_seeded("tiny_mlp", {"n_in": 4}, seed=3)
    res = fit(model, "tiny_mlp", {"n_in": 4}, train, val, cfg, Path(out), seed=3)
    print(f"resumed_from_epoch={res.resumed_from_epoch}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
