"""``hepml build|train|evaluate TASK``: thin adapters around the task functions."""

from __future__ import annotations

import argparse
from pathlib import Path

from hepml import config
from hepml.io import check_input_dir
from hepml.tasks import TASKS, task_module


def add_arguments(verb: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("task", choices=sorted(TASKS), help="which task")
    p.add_argument("--config", required=True, type=Path, help="config YAML file")
    if verb == "build":
        p.add_argument("--input", required=True, nargs="+", type=Path, help="simulated shard files")
        p.add_argument(
            "--out",
            required=True,
            type=Path,
            help="dataset file to write (.npz), one per input shard",
        )
    else:
        p.add_argument(
            "--data",
            required=True,
            nargs="+",
            type=Path,
            help="files built by 'hepml build' (and, where a task needs them, simulated shards)",
        )
        p.add_argument("--out", required=True, type=Path, help="output directory")
    if verb == "evaluate":
        p.add_argument(
            "--model", required=True, type=Path, help="directory written by 'hepml train'"
        )


def run(args: argparse.Namespace) -> None:
    cfg = config.load(args.config)
    mod = task_module(args.task)
    if args.verb == "evaluate":
        check_input_dir(args.model, "model directory")
    if args.verb == "build":
        mod.build(cfg, list(args.input), args.out)
    elif args.verb == "train":
        mod.train(cfg, list(args.data), args.out)
    else:
        mod.evaluate(cfg, list(args.data), args.model, args.out)
