"""Config validation: defaults filled, every mistake is one line naming the key, nothing written."""

from __future__ import annotations

import copy
import inspect
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hepml import config
from hepml.cli import main
from hepml.errors import HepmlError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_filled_and_shipped_configs_validate() -> None:
    cfg = config.validate({})
    assert cfg["workflow"]["tracker_shards"] >= 2
    assert cfg["training"]["device"] == "auto"
    assert (
        cfg["tracker"]["field"]["model"] == "solenoid"
        and cfg["tracker"]["field"]["central_T"] == 2.0
    )
    assert {7, 8, 9, 12, 13, 14, 16, 17, 18} <= {
        v for m in cfg["tracker"]["material"] for v in m["volumes"]
    }
    for name in ("config.yaml", "test.yaml"):
        loaded = config.load(ROOT / "config" / name)
        assert loaded["seed"] >= 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seed: 1\nbogus: 2\n", "unknown key 'bogus'"),
        ("workflow:\n  tracker_shardz: 3\n", "unknown key 'workflow.tracker_shardz'"),
        ("workflow:\n  tracker_shards: three\n", "key 'workflow.tracker_shards': expected integer"),
        (
            "workflow:\n  tracker_shards: 1\n",
            "key 'workflow.tracker_shards': value 1 is out of range",
        ),
        ("training:\n  device: tpu\n", "key 'training.device'"),
        (
            "tracker:\n  field:\n    central_T: -2\n",
            "key 'tracker.field.central_T': value -2 is out of range",
        ),
        ("seed: [1\n", "not valid YAML at line"),
        ("- 1\n- 2\n", "top level must be a mapping"),
    ],
)
def test_cli_reports_bad_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = tmp_path / "out" / "data.npz"
    rc = main(
        [
            "build",
            "ghost_filter",
            "--config",
            str(cfg),
            "--input",
            str(tmp_path / "x.root"),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert expected in err and str(cfg) in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.parent.exists()


def test_cli_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "train",
            "calo_classifier",
            "--config",
            str(tmp_path / "nope.yaml"),
            "--data",
            "x.npz",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "nope.yaml' does not exist" in err and err.count("\n") == 1


def test_snakemake_stops_on_bad_config_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"workflow": {"calo_shards": 0}}))
    shutil.copytree(ROOT / "config", tmp_path / "config")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "1",
            "-s",
            str(ROOT / "Snakefile"),
            "--configfile",
            str(bad),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"hepml: error: {bad}")
    assert lines[0].endswith("key 'workflow.calo_shards': value 0 is out of range (minimum 2)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "config"]  # nothing written


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    block = readme[readme.index("```bash") + 1 : readme.index("```bash") + 3]
    assert block[0].endswith("snakemake --cores all")
    assert block[1].endswith("pytest")
    assert block[1] in (ROOT / ".ci" / "run").read_text()


def test_from_section_casts_keeps_defaults_and_takes_overrides() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cuts:
        pt_min_GeV: float = 0.5
        n_hits: int = 7
        name: str = "x"
        pair: tuple[int, int] = (0, 1)

    got = config.from_section(Cuts, {"pt_min_GeV": 1, "n_hits": 5.0, "unrelated": 3}, pair=(2, 3))
    assert got == Cuts(pt_min_GeV=1.0, n_hits=5, name="x", pair=(2, 3))
    assert isinstance(got.pt_min_GeV, float) and isinstance(got.n_hits, int)


# --------------------------------------------------------------------------- finite numbers
def _numeric_keys() -> list[tuple[str | int, ...]]:
    """Every key of the schema whose value is a number, as a path into the config; list items
    by their first element (the list's default when it has one), $ref followed."""
    registry = config._registry()
    found: list[tuple[str | int, ...]] = []

    def walk(schema: Any, resolver: Any, default: Any, path: tuple[str | int, ...]) -> None:
        while isinstance(schema, dict) and "$ref" in schema:
            resolved = resolver.lookup(schema["$ref"])
            schema, resolver = resolved.contents, resolved.resolver
        kinds = schema.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if {"number", "integer"} & set(kinds):
            found.append(path)
        for name, sub in schema.get("properties", {}).items():
            walk(sub, resolver, (default or {}).get(name), (*path, name))
        items = schema.get("items")
        if isinstance(items, dict):
            walk(items, resolver, default[0] if default else None, (*path, 0))

    root = registry.resolver(base_uri=config.ROOT_SCHEMA).lookup(config.ROOT_SCHEMA)
    walk(root.contents, root.resolver, config.validate({}), ())
    return found


def _with(cfg: dict[str, Any], path: tuple[str | int, ...], value: float) -> dict[str, Any]:
    """A copy of ``cfg`` with ``value`` at ``path`` (mappings and lists made on the way)."""
    out = copy.deepcopy(cfg)
    node: Any = out
    for i, key in enumerate(path):
        if isinstance(node, list):
            assert isinstance(key, int)
            node.extend([None] * (key + 1 - len(node)))
        if i == len(path) - 1:
            node[key] = value
        else:
            if node[key] is None if isinstance(node, list) else node.get(key) is None:
                node[key] = [] if isinstance(path[i + 1], int) else {}
            node = node[key]
    return out


def test_every_numeric_key_refuses_nan_and_infinity() -> None:
    """Problem 2: NaN, +inf and -inf in any numeric key of the schema (each section, nested
    mappings, list items) is a one-line error naming that key, never a config that runs."""
    keys = _numeric_keys()
    assert len(keys) > 150  # the walk found the schema's numbers, not a handful
    for section in ("workflow", "tracker", "calo", "training", "ghost_filter", "hit_labeller"):
        assert any(k[0] == section for k in keys), section
    defaults = config.validate({})
    accepted = []
    for path in keys:
        dotted = ".".join(map(str, path))
        for value in (math.nan, math.inf, -math.inf):
            try:
                config.validate(_with(defaults, path, value))
            except HepmlError as exc:
                assert f"'{dotted}'" in str(exc), (dotted, str(exc))
            else:
                accepted.append((dotted, value))
    assert accepted == []


# --------------------------------------------------------------------------- one default, in the schema
TASK_MODELS = {
    "ghost_filter": "ghost_lstm",
    "hit_labeller": "hit_bigru",
    "calo_classifier": "calo_cnn",
}


def _task_hparams(task: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments a task's training gives its model."""
    from hepml.sim.calo import LAYERS
    from hepml.tasks import task_module

    mod = task_module(task)
    if task == "calo_classifier":
        return dict(mod.hparams(cfg, (len(LAYERS), *cfg[task]["image"]["size"])))
    return dict(mod.model_hparams(cfg))


@pytest.mark.parametrize("task", sorted(TASK_MODELS))
def test_model_hyperparameters_have_their_default_in_the_schema_only(task: str) -> None:
    """A model constructor has no default for what the schema's ``<task>.model`` holds (nor the
    image size); its defaults are the data contract's sizes only (``GhostLSTM(hidden=128)``
    once disagreed with the schema's 64). The model built from the default config is the
    schema's."""
    from hepml.models import build_model, contract_sizes, model_class

    name = TASK_MODELS[task]
    params = inspect.signature(model_class(name).__init__).parameters
    with_default = {k for k, p in params.items() if p.default is not inspect.Parameter.empty}
    schema_keys = set(config.schema_default(f"{task}.model")) | {"image_size"}
    assert not with_default & schema_keys
    assert with_default <= set(contract_sizes(name)) | {"flip_augment"}  # a model-only switch
    assert all(params[k].default == v for k, v in contract_sizes(name).items())
    hp = _task_hparams(task, config.validate({}))
    for key, value in config.schema_default(f"{task}.model").items():
        assert hp[key] == value, key
    assert sum(p.numel() for p in build_model(name, hp).parameters()) > 0


def _config_dataclasses() -> list[type]:
    """Every dataclass of hepml with a ``from_config(cfg)`` classmethod."""
    import dataclasses
    import importlib
    import pkgutil

    import hepml

    found = []
    for info in pkgutil.walk_packages(hepml.__path__, "hepml."):
        mod = importlib.import_module(info.name)
        for obj in vars(mod).values():
            if (
                inspect.isclass(obj)
                and dataclasses.is_dataclass(obj)
                and obj.__module__ == info.name
                and "from_config" in vars(obj)
            ):
                found.append(obj)
    return found


def test_config_dataclass_defaults_are_the_schemas() -> None:
    """Each Python-side default of a config dataclass equals what ``from_config`` makes of the
    schema's default for that field (most read it from the schema: ``schema_default``)."""
    import dataclasses

    from hepml.train import TrainerConfig

    cfg = config.validate({})
    classes = _config_dataclasses()
    assert {c.__name__ for c in classes} >= {
        "TrainerConfig",
        "EvaluateConfig",
        "ImageConfig",
        "GhostFilterConfig",
    }
    checked = []
    for cls in classes:
        made = (
            TrainerConfig.from_config({"training": cfg["training"]}, "none")
            if cls is TrainerConfig
            else cls.from_config(cfg)  # type: ignore[attr-defined]
        )
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING and f.default is not None:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                continue
            assert default == getattr(made, f.name), (cls.__name__, f.name)
            checked.append(f"{cls.__name__}.{f.name}")
    assert len(checked) >= 25  # 27 on 2026-12-07
