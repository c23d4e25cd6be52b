"""Neural networks (``nn.Module`` only; the training system lives in :mod:`hepml.train`).

Each model file defines one class with typed, keyword-only constructor arguments:
hyper-parameters without defaults (theirs live once, in the schema's ``<task>.model``),
sizes fixed by the data contract defaulting to it and listed in its ``CONTRACT``;
a docstring with a ``Shapes:`` line, and a classmethod
``example_inputs(n, generator) -> dict[str, Tensor]`` giving inputs of the
documented shapes (for benchmarks and tests). ``forward(**inputs)`` returns logits.
"""

from __future__ import annotations

import importlib

import torch.nn as nn

# model name -> "module:Class". An explicit registry: checkpoints name a key here,
# never a file path or an arbitrary attribute.
MODELS: dict[str, str] = {
    "ghost_lstm": "hepml.models.ghost_lstm:GhostLSTM",
    "hit_bigru": "hepml.models.hit_bigru:HitBiGRU",
    "calo_cnn": "hepml.models.calo_cnn:CaloCNN",
}


def model_class(name: str) -> type[nn.Module]:
    """The class registered as ``name``."""
    if name not in MODELS:
        raise KeyError(f"unknown model '{name}' (known: {', '.join(sorted(MODELS))})")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_model(name: str, hparams: dict) -> nn.Module:
    """Instantiate registered model ``name`` with constructor arguments ``hparams``."""
    return model_class(name)(**hparams)


def contract_sizes(name: str) -> dict[str, int]:
    """The constructor arguments of model ``name`` that its data contract fixes (``CONTRACT``)."""
    return dict(getattr(model_class(name), "CONTRACT", {}))
