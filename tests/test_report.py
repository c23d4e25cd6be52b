"""The HTML report: every task's AUCs, blocks and plots on one self-contained page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hepml.cli import main
from hepml.evaluate import plots, roc
from hepml.evaluate.report import fmt


def make_task(root: Path, name: str, seed: int, **blocks) -> dict:
    rng = np.random.default_rng(seed)
    n = 400
    y = rng.random(n) < 0.4
    a = rng.normal(size=n) + 1.5 * y
    b = rng.normal(size=n) + 0.6 * y
    scores = {"net": a, "<b>baseline</b>": b}
    rocs = {"main": roc.roc_block("signal & co", "background", y, scores, n_boot=30, rng=rng)}
    d = root / name
    roc.plot_rocs(d / "roc.png", {"main": (y, scores)}, rocs)
    plots.efficiency_plot(
        d / "eff_vs_pt.png",
        rng.uniform(0, 5, n),
        {"net": a > 0},
        np.linspace(0, 5, 6),
        "pT [GeV]",
        "efficiency",
    )
    return roc.write_metrics(
        d / "metrics.json",
        "lstm",
        rocs,
        plots={"eff_vs_pt.png": "efficiency against <pT>"},
        **blocks,
    )


@pytest.fixture()
def cfg(tmp_path: Path) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text("seed: 4242\n")
    return p


def test_report_shows_every_method_block_and_plot(tmp_path: Path, cfg: Path) -> None:
    m1 = make_task(tmp_path, "ghost_filter", 1, ghost_fraction=0.21)
    m2 = make_task(
        tmp_path,
        "calo_classifier",
        2,
        confusion_matrix={
            "labels": ["gamma", "pi0", "pi+"],
            "matrix": [[90, 8, 2], [12, 85, 3], [1, 2, 97]],
        },
        tracking={
            "bigru": {
                "trackml_score": 0.934,
                "efficiency": 0.97,
                "fake_rate": 0.012,
                "duplicate_rate": 0.003,
            }
        },
    )
    out = tmp_path / "report" / "index.html"
    rc = main(
        [
            "report",
            "--config",
            str(cfg),
            "--input",
            str(tmp_path / "ghost_filter" / "metrics.json"),
            str(tmp_path / "calo_classifier"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    page = out.read_text()
    assert "seed 4242" in page
    for m in (m1, m2):
        for entry in m["rocs"]["main"]["methods"].values():
            assert fmt(entry["auc"]) in page
            lo, hi = entry["auc_ci95"]
            assert f"[{fmt(lo)}, {fmt(hi)}]" in page
            assert entry["auc"] == pytest.approx(float(fmt(entry["auc"])), abs=5e-5)
    # strings from files are escaped; nothing is loaded from elsewhere
    assert "&lt;b&gt;baseline&lt;/b&gt;" in page and "<b>baseline</b>" not in page
    assert "signal &amp; co" in page and "efficiency against &lt;pT&gt;" in page
    assert not re.search(r"(src|href)=\"(https?:|//)", page)
    assert page.count('src="data:image/png;base64,') == 4
    # task blocks
    assert "ghost_fraction" in page and "0.2100" in page
    assert "pi0" in page and ">85<" in page
    assert "trackml_score" in page and "0.9340" in page
    assert page.index('id="task-ghost_filter"') < page.index('id="task-calo_classifier"')
    assert sorted(p.name for p in out.parent.iterdir()) == ["index.html"]


def test_missing_or_malformed_metrics_are_one_line_errors(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_task(tmp_path, "good", 3)
    out = tmp_path / "index.html"
    missing = tmp_path / "nowhere" / "metrics.json"
    assert (
        main(
            [
                "report",
                "--config",
                str(cfg),
                "--input",
                str(tmp_path / "good"),
                str(missing),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert str(missing) in err and err.count("\n") == 1
    bad = tmp_path / "bad" / "metrics.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    assert main(["report", "--config", str(cfg), "--input", str(bad), "--out", str(out)]) == 2
    assert str(bad) in capsys.readouterr().err
    data = json.loads((tmp_path / "good" / "metrics.json").read_text())
    del data["rocs"]["main"]["methods"]["net"]["auc"]
    bad.write_text(json.dumps(data))
    assert main(["report", "--config", str(cfg), "--input", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "rocs.main.methods.net.auc" in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".index.html")]


def test_number_format() -> None:
    assert [
        fmt(x) for x in (0.95321, 12.345, 1234.5, 123456.0, 0.00012, 3, None, float("inf"))
    ] == [
        "0.9532",
        "12.3",
        "1234",
        "123,456",
        "1.20e-04",
        "3",
        "n/a",
        "&infin;",
    ]
