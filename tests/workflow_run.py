"""One completed run of the workflow on config/test.yaml, shared by the test files that need
its outputs (tests/test_workflow_params.py, tests/test_notebook.py): made once per pytest
session in a temporary directory (~3-5 min on 2 CPU cores), without the real-data sections."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_DONE: dict[str, Path] = {}


def snakemake(
    results: Path, *args: str, overrides: dict | None = None, timeout: int = 900
) -> subprocess.CompletedProcess[str]:
    """``snakemake`` on config/test.yaml, results in ``results``, real data off, plus ``overrides``."""
    extra = {"workflow": {"results": str(results)}, "evaluate": {"trackml_dir": None}}
    for key, value in (overrides or {}).items():
        extra.setdefault(key, {}).update(value)
    over = results.parent / f"override-{abs(hash(repr(extra)))}.yaml"
    over.write_text(yaml.safe_dump(extra))
    cmd = [sys.executable, "-m", "snakemake", "--configfile", "config/test.yaml", str(over), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def job_counts(stdout: str) -> dict[str, int]:
    """A run's or dry run's 'Job stats' table: ``{rule: count}`` (empty when nothing is to do)."""
    if "Job stats:" not in stdout:
        return {}
    block = stdout.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {
        m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M) if m[1] != "total"
    }


def completed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The results directory of a completed ``snakemake --cores 2`` run (made once per session)."""
    if "results" not in _DONE:
        results = tmp_path_factory.mktemp("workflow") / "results-test"
        proc = snakemake(results, "--cores", "2")
        if proc.returncode != 0:
            raise AssertionError(f"workflow failed:\n{proc.stderr[-4000:]}")
        _DONE["results"] = results
    return _DONE["results"]
