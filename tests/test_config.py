"""Config validation: defaults filled, every mistake is one line naming the key, nothing written."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hepml import config
from hepml.cli import main

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
