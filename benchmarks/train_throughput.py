"""Training throughput: hepml's trainer against a bare loop on the same tensors.

    python benchmarks/train_throughput.py --model ghost_filter [--n 65536] [--epochs 3] [--compile]

Both run in this process, on the same device, tensors and batch size:

* bare: ``for each batch: logits = model(**inputs); loss; backward; AdamW.step()``
  over contiguous slices, with bf16 autocast on CUDA like the trainer;
* trainer: :func:`hepml.train.fit` (Lightning, shuffled index batches, gradient
  clipping, logging, a checkpoint per epoch), its samples/s as logged per epoch
  (training time only), the median over epochs after the first;
* with ``--compile``: the trainer again with ``training.compile: true``
  (torch.compile, inductor), its compile time inside the first epoch, which is
  left out; it prints ``compile_ratio <compiled/eager trainer>``.

On CUDA it also prints the trainer's peak GPU memory (``peak_gpu_mib``).
The last line is ``ratio <trainer/bare>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from hepml import config
from hepml.models import build_model, model_class
from hepml.sim.calo import LAYERS
from hepml.tasks import task_module
from hepml.train import TensorData, TrainerConfig, build_model_seeded, compute_loss, fit

# task -> registered model
TASK_MODELS = {
    "ghost_filter": "ghost_lstm",
    "hit_labeller": "hit_bigru",
    "calo_classifier": "calo_cnn",
}


def model_hparams(task: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """The task's model as the config makes it (hyper-parameters from the config's
    ``<task>.model``, sizes from the data contract and the config's image grid)."""
    mod = task_module(task)
    if task == "calo_classifier":
        return mod.hparams(cfg, (len(LAYERS), *cfg[task]["image"]["size"]))
    return mod.model_hparams(cfg)


def synthetic_data(
    model_name: str, hparams: dict[str, Any], n: int, seed: int
) -> tuple[TensorData, str]:
    """The model's example inputs (of the sizes in ``hparams``) with random targets of the
    shape its logits have."""
    g = torch.Generator().manual_seed(seed)
    example = model_class(model_name).example_inputs  # type: ignore[attr-defined]
    sizes = {k: v for k, v in hparams.items() if k in inspect.signature(example).parameters}
    inputs = example(n, g, **sizes)
    probe = build_model(model_name, hparams)
    with torch.no_grad():
        logits = probe(**{k: v[:4] for k, v in inputs.items()})
    if logits.dim() == 1:
        return TensorData(inputs, torch.randint(0, 2, (n,), generator=g).float()), "bce"
    if "lengths" in inputs:  # per-element labels over a padded sequence
        width = inputs[next(k for k in inputs if k != "lengths")].shape[1]
        mask = torch.arange(width)[None, :] < inputs["lengths"][:, None]
        return TensorData(
            inputs, torch.randint(0, 2, (n, width), generator=g).float(), mask=mask
        ), "bce"
    return TensorData(inputs, torch.randint(0, logits.shape[1], (n,), generator=g)), "ce"


def bare_loop(
    model: nn.Module,
    data: TensorData,
    batch_size: int,
    epochs: int,
    loss: str,
    cfg: TrainerConfig,
    device: torch.device,
) -> float:
    """Samples/s of a plain forward-backward-AdamW loop (median over epochs after the first)."""
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    bf16 = cfg.lightning_precision(device) == "bf16-mixed"
    rates = []
    n = len(data)
    for _ in range(epochs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for start in range(0, n, batch_size):
            batch = data.batch(torch.arange(start, min(start + batch_size, n), device=device))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(**batch["inputs"])
            value = compute_loss(logits, batch, loss)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates[1:]) if len(rates) > 1 else rates[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model", required=True, choices=sorted(TASK_MODELS), help="task whose model to time"
    )
    p.add_argument(
        "--config",
        type=Path,
        default=Path("config/config.yaml"),
        help="batch size and trainer settings from here",
    )
    p.add_argument("--n", type=int, default=32768, help="training samples")
    p.add_argument(
        "--epochs", type=int, default=3, help="epochs per measurement (the first is warm-up)"
    )
    p.add_argument("--batch-size", type=int, default=0, help="override the config's batch size")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--compile", action="store_true", help="also time the trainer with training.compile"
    )
    args = p.parse_args(argv)

    cfg = config.load(args.config)
    task_cfg = TrainerConfig.from_config(cfg, args.model)
    tc = TrainerConfig(
        max_epochs=args.epochs,
        batch_size=args.batch_size or task_cfg.batch_size,
        lr=task_cfg.lr,
        weight_decay=task_cfg.weight_decay,
        grad_clip=task_cfg.grad_clip,
        patience=args.epochs + 1,
        device=args.device,
        precision=task_cfg.precision,
        threads=task_cfg.threads,
    )
    device = tc.torch_device()
    if tc.threads > 0:  # both loops on the trainer's thread count
        torch.set_num_threads(tc.threads)
    name = TASK_MODELS[args.model]
    hp = model_hparams(args.model, cfg)
    data, loss = synthetic_data(name, hp, args.n, seed=0)
    data = data.to(device)
    val = data.subset(torch.arange(min(len(data), 1024), device=device))
    print(
        f"model={name} device={device} precision={tc.lightning_precision(device)} n={args.n} batch={tc.batch_size} threads={torch.get_num_threads()}",
        file=sys.stderr,
    )

    bare = bare_loop(
        build_model_seeded(name, hp, 0), data, tc.batch_size, args.epochs, loss, tc, device
    )

    def trainer_rate(tcfg: TrainerConfig) -> float:
        """The trainer's samples/s: the median of the logged epochs after the first."""
        import pandas as pd

        with tempfile.TemporaryDirectory() as tmp:
            model = build_model_seeded(name, hp, 0)
            fit(model, name, hp, data, val, tcfg, Path(tmp), seed=0, loss=loss)
            rates = pd.read_csv(Path(tmp) / "metrics.csv")["samples_per_s"].dropna().tolist()
        return statistics.median(rates[1:]) if len(rates) > 1 else rates[0]

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer = trainer_rate(tc)
    print(f"bare_samples_per_s {bare:.0f}")
    print(f"trainer_samples_per_s {trainer:.0f}")
    if device.type == "cuda":
        print(f"peak_gpu_mib {torch.cuda.max_memory_allocated(device) / 2**20:.0f}")
    if args.compile:
        compiled = trainer_rate(dataclasses.replace(tc, compile=True))
        print(f"compiled_samples_per_s {compiled:.0f}")
        print(f"compile_ratio {compiled / trainer:.3f}")
    print(f"ratio {trainer / bare:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
