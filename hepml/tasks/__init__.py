"""The three learning tasks, each gluing the stages into build / train / evaluate.

A task module defines three plain functions, callable without Snakemake::

    build(cfg: dict, inputs: list[Path], out: Path) -> None
        one simulated shard file in ``inputs`` -> one dataset file ``out`` (.npz)
    train(cfg: dict, data: list[Path], out_dir: Path) -> None
        training shards' datasets -> ``out_dir/model.pt`` (+ checkpoints/, metrics.csv)
    evaluate(cfg: dict, data: list[Path], model_dir: Path, out_dir: Path) -> None
        test shards' datasets (and simulated files where needed) ->
        ``out_dir/metrics.json`` in the common layout and ``out_dir/roc.png``

``cfg`` is the whole validated config (:func:`hepml.config.load`); each task
turns its own section into typed dataclasses before calling library code.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# task name -> module. An explicit registry, never getattr on arbitrary modules.
TASKS: dict[str, str] = {
    "ghost_filter": "hepml.tasks.ghost_filter",
    "hit_labeller": "hepml.tasks.hit_labeller",
    "calo_classifier": "hepml.tasks.calo_classifier",
}


def task_module(name: str) -> ModuleType:
    """The module of task ``name`` (one of :data:`TASKS`)."""
    return importlib.import_module(TASKS[name])
