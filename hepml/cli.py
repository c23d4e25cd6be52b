"""The ``hepml`` command: one verb per stage.

::

    hepml simulate tracker|calo --config FILE --shard K --out PATH.root
    hepml build    TASK --config FILE --input FILE... --out PATH
    hepml train    TASK --config FILE --data PATH --out DIR
    hepml evaluate TASK --config FILE --data PATH --model DIR --out DIR
    hepml report        --config FILE --input DIR... --out report.html
    hepml export   TASK --model DIR --out model.onnx
    hepml reconstruct   --input DIR --event eventNNNNNNNNN --out submission.csv
    hepml score         --input DIR --event eventNNNNNNNNN --submission submission.csv
    hepml real-trackml  --input DIR --event eventNNNNNNNNN --submission METHOD=FILE... --config FILE --out DIR

TASK is one of :data:`hepml.tasks.TASKS`. A user mistake (bad config, missing
file, unwritable output) ends with one line on stderr and exit status 2; no
traceback and no half-written output.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from hepml.errors import HepmlError

# verb -> module defining ``add_arguments(parser)`` and ``run(args) -> int | None``.
# An explicit registry: nothing is looked up by name on arbitrary modules.
VERBS: dict[str, tuple[str, str]] = {
    "simulate": ("hepml.sim.cli", "simulate tracker events or calorimeter showers"),
    "build": ("hepml.tasks.cli", "build a task's dataset from simulated events"),
    "train": ("hepml.tasks.cli", "train a task's model"),
    "evaluate": ("hepml.tasks.cli", "evaluate a task's model against its baselines"),
    "report": ("hepml.evaluate.report", "gather every metrics.json into one HTML report"),
    "reconstruct": (
        "hepml.tasks.reconstruct",
        "reconstruct a TrackML-format event with the hit labeller",
    ),
    "score": ("hepml.tasks.reconstruct", "TrackML score of a submission against the event's truth"),
    "compare-real": (
        "hepml.evaluate.compare_cli",
        "compare a simulated event with a real TrackML event",
    ),
    "real-trackml": (
        "hepml.evaluate.real_trackml",
        "score reconstructed real TrackML events beside the own simulation",
    ),
    "detector": ("hepml.detector.cli", "print the detector's surfaces; write its detectors.csv"),
    "export": ("hepml.export", "export a task's trained model to ONNX (checked against torch)"),
}


# what each verb's --out names: a file or a directory (checked before any work)
OUT_KIND: dict[str, str] = {
    "simulate": "file",
    "build": "file",
    "train": "dir",
    "evaluate": "dir",
    "report": "file",
    "reconstruct": "file",
    "compare-real": "dir",
    "real-trackml": "dir",
    "detector": "file",
}


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message.splitlines()[0]}\n")


def finite_number(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` that parses with ``kind`` and refuses NaN and infinities."""

    def parse(text: str) -> Any:
        value = kind(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        return value

    parse.__name__ = getattr(kind, "__name__", "number")  # argparse names it in errors
    return parse


def _finite_numeric_options(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if action.type in (float, int):
            action.type = finite_number(action.type)


def _module(verb: str) -> ModuleType:
    return importlib.import_module(VERBS[verb][0])


def _usage() -> str:
    lines = ["usage: hepml VERB [options]   (hepml VERB --help for a verb's options)", "", "verbs:"]
    lines += [f"  {verb:<12} {help_text}" for verb, (_, help_text) in VERBS.items()]
    return "\n".join(lines)


def build_parser(verb: str) -> argparse.ArgumentParser:
    """The parser of one verb; only that verb's module is imported."""
    parser = _Parser(prog=f"hepml {verb}", description=VERBS[verb][1])
    add: Callable[[str, argparse.ArgumentParser], None] = _module(verb).add_arguments
    add(verb, parser)
    _finite_numeric_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    verb = argv[0]
    if verb not in VERBS:
        print(
            f"hepml: error: unknown verb '{verb}' (choose from {', '.join(VERBS)})", file=sys.stderr
        )
        return 2
    try:
        args = build_parser(verb).parse_args(argv[1:])
    except SystemExit as exc:  # --help (0) or a one-line usage error (2)
        return int(exc.code or 0)
    args.verb = verb
    try:
        out = getattr(args, "out", None)
        if isinstance(out, Path):
            from hepml.io import check_output_path

            check_output_path(out, OUT_KIND.get(verb, "file"))
        rc = _module(verb).run(args)
    except HepmlError as exc:
        print(f"hepml {verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hepml {verb}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
