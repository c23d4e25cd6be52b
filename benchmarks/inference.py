"""Inference throughput per model: torch eager, torch.compile and onnxruntime on the same inputs.

    python benchmarks/inference.py [--n 4096] [--batch 512] [--threads 1] [--repeats 5]
                                   [--config config/config.yaml] [--models ghost_lstm ...]
                                   [--device cpu|cuda]

Each model is built with the config's sizes (``<task>.model``) and random, seeded
weights (throughput does not depend on them), and run in eval mode without grad on
``--n`` example inputs (the class's ``example_inputs``: tracks, roads or images)
in batches of ``--batch``, on the CPU with ``--threads`` threads for every backend:

* eager: ``model(**inputs)`` (the recurrent models pack each batch);
* compile: ``torch.compile(model)`` (inductor); warmed up first, its compile time
  printed apart; where it fails on this machine the line says so;
* onnxruntime: the :mod:`hepml.export` graph (masked forward) in a CPU session.

Items/s is the median of ``--repeats`` passes over the inputs after one warm-up
pass. The ratios are against eager, measured in the same run.

``--device cuda`` (benchmarks/gpu.sh): eager and compiled run on the GPU with
bf16 autocast, as :func:`hepml.train.predict` does, the inputs already on the GPU;
onnxruntime uses its CUDA provider where the installed onnxruntime has one
(``onnxruntime-gpu``; fp32, numpy inputs copied to the GPU and back each batch),
else says it ran on the CPU; the last column is the peak GPU memory of the
model's eager and compiled runs.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hepml import config
from hepml.export import EXPORTS, OnnxModel, export_onnx
from hepml.models import build_model

TASK_OF = {"ghost_lstm": "ghost_filter", "hit_bigru": "hit_labeller", "calo_cnn": "calo_classifier"}
ITEMS = {"ghost_lstm": "tracks", "hit_bigru": "roads", "calo_cnn": "images"}


def model_hparams(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    hp = dict(cfg[TASK_OF[name]].get("model") or {})
    if name == "calo_cnn":
        hp = {k: v for k, v in hp.items() if k in ("channels", "hidden", "dropout", "phi_reduce")}
        hp["image_size"] = list(cfg["calo_classifier"]["image"]["size"])  # no model default
    return hp


def rate(run: Callable[[], None], n: int, repeats: int) -> float:
    """Items per second: the median over ``repeats`` passes after one warm-up pass."""
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else (lambda: None)
    run()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def batches(inputs: dict[str, torch.Tensor], size: int) -> list[dict[str, torch.Tensor]]:
    n = len(next(iter(inputs.values())))
    return [{k: v[s : s + size] for k, v in inputs.items()} for s in range(0, n, size)]


def bench(name: str, cfg: dict[str, Any], args: argparse.Namespace) -> dict[str, float | str]:
    torch.manual_seed(0)
    hp = model_hparams(cfg, name)
    model = build_model(name, hp).eval()
    data = EXPORTS[name].example_inputs(name, args.n, torch.Generator().manual_seed(1), hp)
    parts = batches(data, args.batch)
    cpu_parts = parts
    out: dict[str, float | str] = {}
    cuda = args.device == "cuda"
    if cuda:
        model = model.cuda()
        parts = [{k: v.cuda() for k, v in b.items()} for b in parts]  # as the trainer holds them
        torch.cuda.reset_peak_memory_stats()

    def autocast() -> contextlib.AbstractContextManager[Any]:
        return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()

    def eager() -> None:
        with torch.inference_mode(), autocast():
            for b in parts:
                model(**b)

    out["eager"] = rate(eager, args.n, args.repeats)

    try:
        compiled = torch.compile(model)
        t0 = time.perf_counter()
        with torch.inference_mode(), autocast():
            compiled(**parts[0])
        out["compile_s"] = time.perf_counter() - t0

        def comp() -> None:
            with torch.inference_mode(), autocast():
                for b in parts:
                    compiled(**b)

        out["compile"] = rate(comp, args.n, args.repeats)
    except Exception as exc:  # inductor needs a C++ compiler; report, do not stop
        out["compile"] = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"

    if cuda:
        out["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.onnx"
        export_onnx(name, build_model(name, hp).eval(), path, cpu_parts[0])
        sess = OnnxModel(path, threads=args.threads)
        out["onnx_provider"] = "CPU"
        if cuda and "CUDAExecutionProvider" in _ort_providers():
            import onnxruntime as ort

            sess.session = ort.InferenceSession(
                str(path), providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
            )
            out["onnx_provider"] = "CUDA"
        np_parts = [{k: v.numpy() for k, v in b.items()} for b in cpu_parts]

        def ort() -> None:
            for b in np_parts:
                sess(**b)

        out["onnxruntime"] = rate(ort, args.n, args.repeats)
    return out


def _ort_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    p.add_argument("--models", nargs="+", default=list(EXPORTS), choices=list(EXPORTS))
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("inference.py: --device cuda, but torch sees no CUDA device")
    torch.set_num_threads(args.threads)
    cfg = config.load(args.config)
    where = (
        f"{torch.cuda.get_device_name()} (bf16 autocast; onnxruntime fp32)"
        if args.device == "cuda"
        else "CPU"
    )
    print(
        f"# {where}, {args.threads} CPU thread(s), batch {args.batch}, {args.n} items, torch {torch.__version__}"
    )
    print(
        f"{'model':<10} {'items':<7} {'eager/s':>10} {'compile/s':>10} {'onnxrt/s':>10} "
        f"{'compile/eager':>14} {'onnxrt/eager':>13}"
        + (f" {'peak MiB':>9}" if args.device == "cuda" else "")
    )
    for name in args.models:
        r = bench(name, cfg, args)
        eager = float(r["eager"])
        comp = r["compile"]
        comp_s = f"{comp:10.0f}" if isinstance(comp, float) else f"{'-':>10}"
        comp_ratio = f"{comp / eager:14.2f}" if isinstance(comp, float) else f"{'-':>14}"
        ort = float(r["onnxruntime"])
        peak = f" {float(r['peak_mib']):9.0f}" if "peak_mib" in r else ""
        print(
            f"{name:<10} {ITEMS[name]:<7} {eager:10.0f} {comp_s} {ort:10.0f} {comp_ratio} {ort / eager:13.2f}{peak}"
        )
        if args.device == "cuda":
            print(f"#   {name}: onnxruntime on the {r['onnx_provider']} execution provider")
        if not isinstance(comp, float):
            print(f"#   {name}: torch.compile {comp}")
        else:
            print(f"#   {name}: torch.compile took {float(r['compile_s']):.1f} s to compile")


if __name__ == "__main__":
    main()
