"""notebooks/explore_event.ipynb runs (nbclient) on the outputs of a config/test.yaml workflow
run made here, and shows what it promises: an event display, a ROC, a few roads, and the
hit labeller's efficiency and onnxruntime parity in its printed lines."""

from __future__ import annotations

import re

import pytest
from workflow_run import ROOT, completed_run

pytestmark = pytest.mark.slow


def test_notebook_runs_on_the_test_workflow_outputs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    results = completed_run(tmp_path_factory)
    monkeypatch.setenv("HEPML_RESULTS", str(results))
    nb = nbformat.read(ROOT / "notebooks" / "explore_event.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    ).execute()
    text = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    images = sum(
        "image/png" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    assert images == 3  # event display, ROC, roads
    eff = float(re.search(r"efficiency (\d\.\d+) \(", text)[1])
    assert eff > 0.5  # of particles with pT > 0.5 GeV and >= 5 hits, after 2 epochs' training
    diff = float(re.search(r"max \|torch - onnxruntime\| over \d+ road hits: (\S+)", text)[1])
    assert diff < 1e-5
    aucs = dict(re.findall(r"'(\w+)': (0\.\d+)", text))
    assert float(aucs["bigru"]) > 0.6 and float(aucs["road_follower"]) > 0.6
