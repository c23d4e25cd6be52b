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


# --------------------------------------------------------------------------- real-data sections
def _table_after(page: str, heading: str) -> tuple[list[str], list[list[str]]]:
    """Header cells and body rows (cell texts, tags stripped) of the table after ``heading``."""
    i = page.index(f">{heading}</h3>")
    table = page[i : page.index("</table>", i)]
    strip = lambda c: re.sub(r"<[^>]+>", "", c).replace("&#10003; ", "").replace("&#10007; ", "")  # noqa: E731
    head = [strip(c) for c in re.findall(r"<th[^>]*>(.*?)</th>", table.split("</thead>")[0])]
    body = table.split("<tbody>")[1]
    rows = [
        [strip(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)]
        for r in body.split("</tr>")
        if "<td" in r
    ]
    return head, rows


def make_section(root: Path, name: str, data: dict, pngs: dict[str, str]) -> Path:
    d = root / name
    d.mkdir(parents=True)
    for png in pngs:
        plots.plot_histograms(d / png, np.linspace(0, 1, 5), {"a": np.array([0.1, 0.6])}, "x")
    (d / "metrics.json").write_text(json.dumps({**data, "plots": pngs}))
    return d


def test_report_real_data_sections(tmp_path: Path, cfg: Path) -> None:
    """Both real-data sections from small synthetic metrics: the comparison as figure, hepml,
    real, band, in band? (an out-of-band row marked "no", an unbanded one "n/a"), the real
    event beside the own simulation with readable headings, and every plot embedded."""
    from hepml.evaluate import compare_cli, real_trackml

    cmp = make_section(
        tmp_path,
        "compare_real",
        {
            "section": compare_cli.SECTION,
            "real_event": "event000000001",
            "all_in_band": False,
            "out_of_band": "noise_share",
            "comparison": {
                "noise_share": {
                    "what": "noise hits over all hits",
                    "sim": 0.05,
                    "real": 0.15,
                    "ratio": 1 / 3,
                    "difference": -0.1,
                    "band": "ratio 0.5-1.6",
                    "ok": False,
                },
                "double_hit_share": {
                    "what": "pairs with 2+ hits",
                    "sim": 0.3,
                    "real": 0.278,
                    "ratio": 1.08,
                    "difference": 0.022,
                    "band": "ratio 0.6-1.5",
                    "ok": True,
                },
                "secondary_share": {
                    "what": "<secondaries>",
                    "sim": 0.2,
                    "real": 0.24,
                    "ratio": 0.83,
                    "difference": -0.04,
                    "band": "none (reported)",
                    "ok": None,
                },
            },
            "tables": compare_cli.TABLES,
        },
        {"hits_per_particle.png": "hits per particle", "particle_pt.png": "pT"},
    )
    real = "real event000000001"
    row = {
        "trackml_score": 0.72,
        "efficiency": 0.906,
        "fake_rate": 0.0,
        "duplicate_rate": 0.0,
        "n_reconstructable": 53,
        "n_found": 48,
        "n_tracks": 274,
        "n_fake": 0,
        "n_duplicate": 0,
    }
    own = {**row, "trackml_score": 0.877, "efficiency": 0.993, "n_tracks": 5000}
    rt = make_section(
        tmp_path,
        "real_trackml",
        {
            "section": real_trackml.SECTION,
            "selection": "pT > 1 GeV, >= 5 hits",
            "tracking": {f"road_follower, {real}": row, "road_follower, own simulation": own},
            "efficiency_by_abs_eta": {
                f"road_follower, {real}": {"0.0-0.5": 0.78, "0.5-1.0": None},
                "road_follower, own simulation": {"0.0-0.5": 0.99, "0.5-1.0": 0.98},
            },
            "tables": real_trackml.TABLES,
        },
        dict.fromkeys(real_trackml.PLOTS, "caption"),
    )
    out = tmp_path / "report" / "index.html"
    assert (
        main(["report", "--config", str(cfg), "--input", str(cmp), str(rt), "--out", str(out)]) == 0
    )
    page = out.read_text()
    assert "<h2>Simulation against real TrackML</h2>" in page and "<h2>Real TrackML</h2>" in page
    assert page.index("<h2>Simulation against real TrackML</h2>") < page.index(
        "<h2>Real TrackML</h2>"
    )

    head, rows = _table_after(page, compare_cli.TABLES["comparison"]["title"])
    assert head == ["figure", "hepml", "real", "band", "in band?"]
    assert rows == [
        ["noise hits over all hits", "0.0500", "0.1500", "ratio 0.5-1.6", "no"],
        ["pairs with 2+ hits", "0.3000", "0.2780", "ratio 0.6-1.5", "yes"],
        ["&lt;secondaries&gt;", "0.2000", "0.2400", "none (reported)", "n/a"],
    ]
    head, rows = _table_after(page, real_trackml.TABLES["tracking"]["title"])
    assert head == [
        "method, sample",
        "TrackML score",
        "efficiency",
        "fake rate",
        "duplicate rate",
        "reconstructable",
        "found",
        "tracks",
    ]
    assert rows == [
        [f"road_follower, {real}", "0.7200", "0.9060", "0", "0", "53", "48", "274"],
        ["road_follower, own simulation", "0.8770", "0.9930", "0", "0", "53", "48", "5,000"],
    ]
    head, rows = _table_after(page, real_trackml.TABLES["efficiency_by_abs_eta"]["title"])
    assert head == ["method, sample", "0.0-0.5", "0.5-1.0"]
    assert rows[0] == [f"road_follower, {real}", "0.7800", "n/a"]
    assert page.count("data:image/png;base64,") == 2 + len(real_trackml.PLOTS)
    for png in real_trackml.PLOTS:
        assert f"<b>{png}</b>" in page


def test_malformed_tables_block_is_a_one_line_error(
    tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = make_section(
        tmp_path,
        "s",
        {"section": "S", "x": {"a": {"b": 1}}, "tables": {"x": {"columns": {"b": 3}}}},
        {},
    )
    out = tmp_path / "index.html"
    assert main(["report", "--config", str(cfg), "--input", str(d), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tables.x.columns" in err and str(d / "metrics.json") in err
    assert not out.exists()
