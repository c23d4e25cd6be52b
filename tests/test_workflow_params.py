"""Reruns of only what a config change touches (each rule's ``params: cfg`` carries the config
sections it reads; the resolved config is an ``ancient`` input), the ONNX models the workflow
writes, and ``snakemake --report``'s archive: every ROC and efficiency plot with its caption."""

from __future__ import annotations

import html
import json
import re
import zipfile
from pathlib import Path

import pytest
from workflow_run import completed_run, job_counts, snakemake

from hepml.tasks import TASKS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return completed_run(tmp_path_factory)


def dry_run(results: Path, overrides: dict | None = None) -> dict[str, int]:
    proc = snakemake(results, "-n", "--cores", "1", overrides=overrides, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return job_counts(proc.stdout)


def test_nothing_to_do_after_a_run(results: Path) -> None:
    assert dry_run(results) == {}


def test_evaluate_setting_reruns_only_evaluation_and_report(results: Path) -> None:
    before = (results / "config.resolved.yaml").read_text()
    jobs = dry_run(results, {"evaluate": {"bootstrap": 37}})
    assert jobs == {"evaluate": 3, "report_figures": 3, "report": 1, "all": 1}
    assert (results / "config.resolved.yaml").read_text() == before  # a dry run writes nothing


def test_training_setting_reruns_that_task_only(results: Path) -> None:
    jobs = dry_run(results, {"hit_labeller": {"train": {"max_epochs": 3}}})
    # the hit labeller's train, its evaluation, ONNX export and report figures, and the report
    assert jobs == {
        "train": 1,
        "evaluate": 1,
        "export_onnx": 1,
        "report_figures": 1,
        "report": 1,
        "all": 1,
    }


def test_simulation_setting_reruns_its_simulation_downstream(results: Path) -> None:
    jobs = dry_run(results, {"calo": {"sampling_term": 0.12}})
    assert jobs["simulate"] == 2 and jobs["build"] == 2 and jobs["train"] == 1  # calo only
    assert jobs["evaluate"] == 1


def test_workflow_writes_checked_onnx_models(results: Path) -> None:
    import onnx

    for task in TASKS:
        path = results / "models" / task / "model.onnx"
        onnx.checker.check_model(onnx.load(str(path)))
        log = (results / "logs" / "export" / f"{task}.log").read_text()
        diff = float(log.rsplit("= ", 1)[1].split()[0])
        assert diff < 1e-5


def test_report_archive_holds_every_figure_with_its_caption(results: Path, tmp_path: Path) -> None:
    archive = tmp_path / "report.zip"
    proc = snakemake(results, "--report", str(archive), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        page = z.read("report/report.html").decode()
    # the rendered captions (not the params, which hold the same text)
    captions = " ".join(re.findall(r'"caption": "((?:[^"\\]|\\.)*)"', page))
    for task in TASKS:
        plots = json.loads((results / "evaluate" / task / "metrics.json").read_text())["plots"]
        assert "roc.png" in plots and any("efficiency" in p or "rejection" in p for p in plots)
        for name, caption in plots.items():
            assert sum(n.endswith(f"/{name}") for n in names) >= 1, (
                f"{task}: {name} not in the archive"
            )
            # the caption rendered (docutils escapes quotes and <, >, &)
            assert html.escape(caption.split(",")[0], quote=False) in captions, (
                f"{task}: {name}'s caption"
            )
