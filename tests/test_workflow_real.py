"""The workflow's real-data sections: planned when the real TrackML sample exists, left out
with a one-line note when it does not (``snakemake -n`` on config/test.yaml, dry runs only)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hepml.workflow import split_shards

ROOT = Path(__file__).resolve().parents[1]
TRACKML_DIR = Path(os.environ.get("HEPML_TRACKML_DIR", ROOT.parent / "shared" / "trackml"))
SAMPLE = TRACKML_DIR / "sample"
EVENT = "event000000001"
REAL_JOBS = ("compare_real", "reconstruct_real", "real_trackml")

needs_sample = pytest.mark.skipif(
    not (SAMPLE / f"{EVENT}-truth.csv.gz").is_file(),
    reason=f"the real TrackML sample is not in {SAMPLE} (set HEPML_TRACKML_DIR to the folder holding sample/)",
)


def dry_run(
    results: Path, trackml_dir: str | Path | None, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``snakemake -n -p`` on config/test.yaml with results in ``results``."""
    evaluate = "{trackml_dir: null}" if trackml_dir is None else f"{{trackml_dir: '{trackml_dir}'}}"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "-p",
        "--nolock",
        "--cores",
        "1",
        "--configfile",
        "config/test.yaml",
        "--config",
        f"workflow={{results: '{results}'}}",
        f"evaluate={evaluate}",
        *extra,
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)


def job_counts(stdout: str) -> dict[str, int]:
    """The dry run's 'Job stats' table: ``{rule: count}``."""
    block = stdout.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def shell_line(stdout: str, verb: str) -> list[str]:
    """The planned shell commands running ``hepml <verb>``, split into words."""
    return [ln.split() for ln in stdout.splitlines() if f" hepml {verb} " in ln]


def notes(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("hepml: note:")]


@needs_sample
def test_real_rules_planned_when_the_sample_exists(tmp_path: Path) -> None:
    res = dry_run(tmp_path / "res", TRACKML_DIR)
    assert res.returncode == 0, res.stderr[-2000:]
    counts = job_counts(res.stdout)
    assert counts["compare_real"] == 1 and counts["real_trackml"] == 1
    assert counts["reconstruct_real"] == 2  # bigru and road_follower
    assert not notes(res.stderr)

    # compare_real holds the first test shard of the tracker simulation against the sample
    resolved = yaml.safe_load((tmp_path / "res" / "config.resolved.yaml").read_text())
    assert resolved["evaluate"]["trackml_dir"] == str(TRACKML_DIR)
    _, test = split_shards(
        resolved["workflow"]["tracker_shards"], resolved["workflow"]["test_fraction"]
    )
    (cmp,) = shell_line(res.stdout, "compare-real")
    assert cmp[cmp.index("--sim") + 1] == f"{tmp_path / 'res'}/sim/tracker/shard{test[0]}.root"
    assert cmp[cmp.index("--real") + 1] == str(SAMPLE) and cmp[cmp.index("--event") + 1] == EVENT
    assert cmp[cmp.index("--out") + 1] == f"{tmp_path / 'res'}/evaluate/compare_real"

    # both methods reconstructed; only the Bi-GRU needs (and waits for) the trained model
    rec = {w[w.index("--method") + 1]: w for w in shell_line(res.stdout, "reconstruct")}
    assert set(rec) == {"bigru", "road_follower"}
    model = f"{tmp_path / 'res'}/models/hit_labeller/model.pt"
    assert rec["bigru"][rec["bigru"].index("--model") + 1] == model
    assert "--model" not in rec["road_follower"]
    (rt,) = shell_line(res.stdout, "real-trackml")
    assert rt[rt.index("--own-sim") + 1] == f"{tmp_path / 'res'}/evaluate/hit_labeller/metrics.json"
    subs = rt[rt.index("--submission") + 1 : rt.index("--config")]
    assert [s.split("=")[0] for s in subs] == ["bigru", "road_follower"]

    # the report gathers both sections after the tasks
    (rep,) = shell_line(res.stdout, "report")
    inputs = rep[rep.index("--input") + 1 : rep.index("--out")]
    assert [Path(p).parent.name for p in inputs[-2:]] == ["compare_real", "real_trackml"]


def test_real_rules_left_out_with_a_note_without_the_data(tmp_path: Path) -> None:
    missing = tmp_path / "no_trackml_here"
    res = dry_run(tmp_path / "res", missing)
    assert res.returncode == 0, res.stderr[-2000:]
    counts = job_counts(res.stdout)
    assert not set(REAL_JOBS) & set(counts)
    assert counts["report"] == 1 and counts["evaluate"] == 3  # the rest of the workflow runs
    (note,) = notes(res.stderr)
    assert str(missing / "sample") in note and "left out" in note
    (rep,) = shell_line(res.stdout, "report")
    assert not any("compare_real" in w or "real_trackml" in w for w in rep)


def test_null_trackml_dir_leaves_the_real_rules_out(tmp_path: Path) -> None:
    """``--config evaluate='{trackml_dir: null}'`` arrives as the string 'null': still null."""
    res = dry_run(tmp_path / "res", None)
    assert res.returncode == 0, res.stderr[-2000:]
    assert not set(REAL_JOBS) & set(job_counts(res.stdout))
    (note,) = notes(res.stderr)
    assert "evaluate.trackml_dir is null" in note


@needs_sample
def test_an_event_the_sample_lacks_is_a_one_line_error(tmp_path: Path) -> None:
    res = dry_run(tmp_path / "res", TRACKML_DIR, "evaluate={real_event: event000000042}")
    assert res.returncode != 0
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("hepml: error:")]
    assert len(errors) == 1 and "evaluate.real_event" in errors[0]
    assert "event000000042-hits.csv" in errors[0]
