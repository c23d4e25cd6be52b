"""ONNX export of the three trained models, and onnxruntime inference.

::

    hepml export TASK --model DIR --out model.onnx

reads ``DIR/model.pt`` (a :func:`hepml.train.save_model` file) and writes an
ONNX graph (opset :data:`OPSET`) that any onnxruntime (ACTS, Athena and CMSSW
all run them) evaluates without Python. Every input has a dynamic batch axis
and the sequences a dynamic length axis; inputs and outputs keep the names of
the models' ``forward`` arguments:

========== ======================================================= ===================
model      inputs                                                  output
========== ======================================================= ===================
ghost_lstm ``hits`` (N, L, F_hit) f32, ``lengths`` (N,) i64,         ``logits`` (N,)
           ``track`` (N, F_track) f32
hit_bigru  ``x`` (N, L, F) f32, ``lengths`` (N,) i64                 ``logits`` (N, L)
calo_cnn   ``images`` (N, C, H, W) f32, ``log_e`` (N,) f32           ``logits`` (N, K)
========== ======================================================= ===================

``pack_padded_sequence`` has no ONNX form, so the recurrent models are exported
through a *masked* forward with the same weights that gives the packed result
on every valid position: the LSTM runs over the zero-padded batch and the
output is taken at each sequence's last valid step (a unidirectional
recurrence never looks ahead, so the padding after it cannot matter); for the
bidirectional GRU each layer's backward direction runs over every sequence
reversed *within its own length* (padding stays at the end) and is reversed
back. Outputs at padded positions (``hit_bigru``, ``t >= lengths``) carry no
meaning, as in torch. :func:`check_parity` compares the two on given inputs.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from hepml.errors import HepmlError

OPSET = 18
DEFAULT_TOL = 1e-5  # absolute, fp32: the parity requirement


# --------------------------------------------------------------------------- masked forwards
def _reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row of ``x`` (N, L, F) reversed over its first ``lengths`` steps; padding stays put."""
    n_steps = x.shape[1]
    t = torch.arange(n_steps, device=x.device).unsqueeze(0)  # (1, L)
    ln = lengths.unsqueeze(1)  # (N, 1)
    idx = torch.where(t < ln, ln - 1 - t, t)  # (N, L)
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def _single_layer_rnn(rnn: nn.GRU | nn.LSTM, layer: int, reverse: bool) -> nn.Module:
    """A unidirectional one-layer copy of ``rnn``'s layer ``layer`` (its reverse direction if asked)."""
    kind = type(rnn)
    in_size = rnn.input_size if layer == 0 else rnn.hidden_size * (2 if rnn.bidirectional else 1)
    one = kind(input_size=in_size, hidden_size=rnn.hidden_size, num_layers=1, batch_first=True)
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            src = getattr(rnn, name + suffix, None)
            if src is not None:
                getattr(one, name + "_l0").copy_(src)
    return one.eval()


class GhostLSTMExport(nn.Module):
    """:class:`hepml.models.ghost_lstm.GhostLSTM` without packing (same weights, same logits).

    Shapes: ``hits`` (N, L, F_hit), ``lengths`` (N,) int64, ``track`` (N, F_track) -> (N,).
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.lstm = model.lstm
        self.head = model.head

    def forward(
        self, hits: torch.Tensor, lengths: torch.Tensor, track: torch.Tensor
    ) -> torch.Tensor:
        out, _ = self.lstm(hits)  # (N, L, hidden): top layer, every step
        last = (lengths.clamp(min=1) - 1).view(-1, 1, 1).expand(-1, 1, out.shape[2])
        h_last = torch.gather(out, 1, last).squeeze(1)
        return self.head(torch.cat([h_last, track], dim=1)).squeeze(1)


class HitBiGRUExport(nn.Module):
    """:class:`hepml.models.hit_bigru.HitBiGRU` without packing: per layer, forward and
    reversed-within-length backward unidirectional GRUs (same weights, same logits on valid hits).

    Shapes: ``x`` (N, L, F), ``lengths`` (N,) int64 -> logits (N, L) (t >= lengths: no meaning).
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        gru = model.gru
        self.embed = model.embed
        self.head = model.head
        self.fwd = nn.ModuleList(
            _single_layer_rnn(gru, k, reverse=False) for k in range(gru.num_layers)
        )
        self.bwd = nn.ModuleList(
            _single_layer_rnn(gru, k, reverse=True) for k in range(gru.num_layers)
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        ln = lengths.clamp(min=1)
        e = self.embed(x)
        h = e
        for fwd, bwd in zip(self.fwd, self.bwd, strict=True):
            out_f, _ = fwd(h)
            out_b, _ = bwd(_reverse_within(h, ln))
            h = torch.cat([out_f, _reverse_within(out_b, ln)], dim=-1)
        return self.head(torch.cat([h, e], dim=-1)).squeeze(-1)


class CaloCNNExport(nn.Module):
    """:class:`hepml.models.calo_cnn.CaloCNN` in eval mode (no flips, no channels-last branch).

    Shapes: ``images`` (N, C, H, W), ``log_e`` (N,) -> logits (N, n_classes).
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.input_norm = model.input_norm
        self.features = model.features
        self.head = model.head

    def forward(self, images: torch.Tensor, log_e: torch.Tensor) -> torch.Tensor:
        x = self.features(self.input_norm(images)).flatten(1)
        return self.head(torch.cat([x, log_e.reshape(-1, 1)], dim=1))


@dataclass(frozen=True)
class ExportSpec:
    """How one registered model is exported: its masked wrapper and its axes."""

    wrapper: Callable[[nn.Module], nn.Module]
    inputs: tuple[str, ...]
    sequence_inputs: tuple[str, ...]  # inputs with a dynamic length axis 1
    sequence_output: bool  # the output has a length axis 1

    def example_inputs(
        self, model_name: str, n: int, generator: torch.Generator, hparams: Mapping[str, Any]
    ) -> dict[str, torch.Tensor]:
        """The registered class's ``example_inputs`` with the feature sizes of ``hparams``."""
        from hepml.models import model_class

        cls: Any = model_class(model_name)
        sizes = {
            k: int(hparams[k])
            for k in ("n_hit_features", "n_track_features", "n_features")
            if k in hparams
        }
        inputs: dict[str, torch.Tensor] = cls.example_inputs(n, generator, **sizes)
        if "images" in inputs and "image_size" in hparams:  # the trained grid, not the default
            c = int(hparams.get("in_channels", 3))
            h, w = (int(s) for s in hparams["image_size"])
            images = torch.rand(n, c, h, w, generator=generator)
            inputs["images"] = images / images.sum(dim=(1, 2, 3), keepdim=True)
        return inputs


# registered model name -> its export; an explicit registry like hepml.models.MODELS
EXPORTS: dict[str, ExportSpec] = {
    "ghost_lstm": ExportSpec(GhostLSTMExport, ("hits", "lengths", "track"), ("hits",), False),
    "hit_bigru": ExportSpec(HitBiGRUExport, ("x", "lengths"), ("x",), True),
    "calo_cnn": ExportSpec(CaloCNNExport, ("images", "log_e"), (), False),
}


def export_module(model_name: str, model: nn.Module) -> nn.Module:
    """The exportable (masked) module of a trained ``model_name`` model, in eval mode, on CPU."""
    if model_name not in EXPORTS:
        raise HepmlError(f"model '{model_name}' has no ONNX export (known: {', '.join(EXPORTS)})")
    return EXPORTS[model_name].wrapper(model.cpu().eval()).eval()


# --------------------------------------------------------------------------- export
def export_onnx(
    model_name: str,
    model: nn.Module,
    out: Path,
    example: Mapping[str, torch.Tensor] | None = None,
    hparams: Mapping[str, Any] | None = None,
    dynamo: bool = False,
) -> None:
    """Write ``model`` (a registered ``model_name``) as an ONNX graph to ``out``, atomically.

    ``example`` (default: the class's ``example_inputs(8)`` with the feature sizes
    of the constructor arguments ``hparams``) traces the graph;
    batch and sequence length stay dynamic. ``onnx.checker`` runs on the result.
    ``dynamo`` uses the torch.export-based exporter instead of the TorchScript one.
    """
    import onnx

    from hepml.io import atomic_output

    spec = EXPORTS.get(model_name)
    if spec is None:
        raise HepmlError(f"model '{model_name}' has no ONNX export (known: {', '.join(EXPORTS)})")
    module = export_module(model_name, model)
    if example is None:
        example = spec.example_inputs(
            model_name, 8, torch.Generator().manual_seed(0), hparams or {}
        )
    args = tuple(example[k].cpu() for k in spec.inputs)
    axes: dict[str, dict[int, str]] = {}
    for k in spec.inputs:
        axes[k] = {0: "batch", 1: "length"} if k in spec.sequence_inputs else {0: "batch"}
    axes["logits"] = {0: "batch", 1: "length"} if spec.sequence_output else {0: "batch"}
    out = Path(out)
    with atomic_output(out) as tmp, warnings.catch_warnings():
        # the TorchScript exporter is deprecated in torch >= 2.9 but maps nn.LSTM / nn.GRU
        # to the ONNX LSTM / GRU operators in ~1 s; torch.export (dynamo=True) gives the
        # same graph and parity in ~40 s. Its batch-size warning concerns a traced h0:
        # here h0 is never an input, and onnxruntime runs any batch (tests/test_export.py).
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message=r".*batch_size other than 1.*")
        warnings.filterwarnings("ignore", category=FutureWarning)
        # nn.LSTM / nn.GRU check the (fixed) feature size in Python while traced
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*(were assigned during export|axis name).*")
        named: dict[str, Any] = {
            "input_names": list(spec.inputs),
            "output_names": ["logits"],
            "opset_version": OPSET,
        }
        if dynamo:
            dims = {"batch": torch.export.Dim("batch"), "length": torch.export.Dim("length")}
            shapes = {k: {ax: dims[n] for ax, n in axes[k].items()} for k in spec.inputs}
            named.update(dynamic_shapes=shapes, dynamo=True, verbose=False)
        else:
            named.update(dynamic_axes=axes, dynamo=False)
        torch.onnx.export(module, args, str(tmp), **named)
        onnx.checker.check_model(onnx.load(str(tmp)), full_check=True)


# --------------------------------------------------------------------------- onnxruntime
class OnnxModel:
    """An exported model in an onnxruntime CPU session: numpy inputs by name -> logits.

    ``threads`` intra-op threads (0: onnxruntime's default).
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise HepmlError(f"ONNX model file '{path}' does not exist")
        opts = ort.SessionOptions()
        if threads > 0:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise HepmlError(
                f"'{path}' is not a loadable ONNX model ({type(exc).__name__})"
            ) from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, **inputs: np.ndarray) -> np.ndarray:
        feed = {}
        for k in self.input_names:
            v = np.asarray(inputs[k])
            feed[k] = np.ascontiguousarray(v, dtype=np.int64 if k == "lengths" else np.float32)
        return self.session.run(["logits"], feed)[0]


class OnnxLabeller:
    """The hit labeller through onnxruntime, for :func:`hepml.reco.chain.label_roads`.

    Called as ``labeller(x, lengths)`` with numpy ``x`` (N, L, F) float32 and
    ``lengths`` (N,) int64; returns logits (N, L) float32.
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.model = OnnxModel(path, threads)
        if self.model.input_names != ["x", "lengths"]:
            raise HepmlError(
                f"'{path}' is not a hit labeller export (inputs {self.model.input_names}, expected ['x', 'lengths'])"
            )

    def __call__(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return self.model(x=x, lengths=lengths)


# --------------------------------------------------------------------------- parity
def valid_mask(
    model_name: str, inputs: Mapping[str, torch.Tensor], shape: tuple[int, ...]
) -> np.ndarray:
    """Where an output of ``shape`` means something (hit_bigru: t < lengths; others: everywhere)."""
    if EXPORTS[model_name].sequence_output:
        ln = inputs["lengths"].cpu().numpy()
        return np.arange(shape[1])[None, :] < ln[:, None]
    return np.ones(shape, dtype=bool)


def check_parity(
    model_name: str, model: nn.Module, onnx_path: Path, inputs: Mapping[str, torch.Tensor]
) -> float:
    """Largest difference between torch's and onnxruntime's logits on valid positions, in units
    of max(1, |torch logit|): absolute for logits up to 1, relative above (fp32 keeps ~7
    digits, so a logit of 36 carries rounding of ~4e-6 whichever the runtime)."""
    model = model.cpu().eval()
    with torch.inference_mode():
        ref = model(**inputs).float().numpy()
    got = OnnxModel(onnx_path)(**{k: v.cpu().numpy() for k, v in inputs.items()})
    if EXPORTS[model_name].sequence_output:  # torch's HitBiGRU trims to the batch's longest road
        got = got[:, : ref.shape[1]]
    if ref.shape != got.shape:
        raise HepmlError(f"'{onnx_path}': output shape {got.shape}, torch gives {ref.shape}")
    mask = valid_mask(model_name, inputs, ref.shape)
    scaled = np.abs(ref - got) / np.maximum(np.abs(ref), 1.0)
    return float(scaled[mask].max()) if mask.any() else 0.0


# --------------------------------------------------------------------------- CLI
def add_arguments(verb: str, p: argparse.ArgumentParser) -> None:
    from hepml.tasks import TASKS

    p.add_argument("task", choices=list(TASKS), help="the task whose model to export")
    p.add_argument("--model", required=True, type=Path, help="model directory holding model.pt")
    p.add_argument("--out", required=True, type=Path, help="ONNX file to write")
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOL,
        help=f"largest |torch - onnxruntime| / max(1, |torch|) allowed on 256 example inputs (default {DEFAULT_TOL:g})",
    )
    p.add_argument(
        "--dynamo",
        action="store_true",
        help="export through torch.export (slower) instead of the TorchScript exporter",
    )


def run(args: argparse.Namespace) -> None:
    from hepml.tasks import task_module
    from hepml.train import load_model

    path = (
        args.model / "model.pt" if args.model.is_dir() or args.model.suffix != ".pt" else args.model
    )
    model, meta = load_model(path)
    expected = getattr(task_module(args.task), "MODEL_NAME", None)
    name = meta["model_name"]
    if expected is not None and name != expected:
        raise HepmlError(
            f"'{path}' holds a '{name}' model, not the {args.task} task's '{expected}'"
        )
    spec = EXPORTS.get(name)
    if spec is None:
        raise HepmlError(f"'{path}': model '{name}' has no ONNX export")
    example = spec.example_inputs(name, 8, torch.Generator().manual_seed(0), meta["hparams"])
    export_onnx(name, model, args.out, example, dynamo=args.dynamo)
    check = spec.example_inputs(name, 256, torch.Generator().manual_seed(1), meta["hparams"])
    diff = check_parity(name, model, args.out, check)
    if not diff <= args.tolerance:
        args.out.unlink(missing_ok=True)
        raise HepmlError(
            f"'{args.out}': onnxruntime differs from torch by {diff:.2e} (of max(1, |logit|)) > --tolerance {args.tolerance:g}; not written"
        )
    print(
        f"hepml export: {args.task} ({name}) -> {args.out}; max |torch - onnxruntime| / max(1, |torch|) = {diff:.1e} on 256 examples",
        file=sys.stderr,
    )
