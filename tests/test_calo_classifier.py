"""The calo_classifier task end to end: simulate -> build -> train -> evaluate (tiny, on CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hepml import config
from hepml.cli import main
from hepml.errors import HepmlError
from hepml.evaluate.roc import read_metrics
from hepml.sim.calo import simulate_shard
from hepml.tasks import calo_classifier as task

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cfg() -> dict:
    c = config.load(ROOT / "config" / "test.yaml")
    c["workflow"]["calo_showers_per_shard"] = 300
    c["training"].update(max_epochs=2, threads=1)
    c["evaluate"]["bootstrap"] = 20
    return config.validate(c)


@pytest.fixture(scope="module")
def run(cfg: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shard 0 for training, shard 1 for testing; returns the working directory."""
    d = tmp_path_factory.mktemp("calo")
    for k in (0, 1):
        simulate_shard(cfg, k, d / f"sim{k}.root", progress=False)
        task.build(cfg, [d / f"sim{k}.root"], d / f"data{k}.npz")
    task.train(cfg, [d / "data0.npz"], d / "model")
    task.evaluate(cfg, [d / "data1.npz", d / "sim1.root"], d / "model", d / "eval")
    return d


def test_outputs_and_metrics_layout(run: Path, cfg: dict) -> None:
    m = read_metrics(run / "eval" / "metrics.json")  # validates the common layout
    assert m["network"] == "cnn"
    assert set(m["rocs"]) == {"gamma_vs_pi0", "em_vs_hadron"}
    n_test = m["samples"]["n_test"]
    per = m["samples"]["per_class"]
    assert (
        sum(per.values()) == n_test
        and n_test + m["samples"]["n_skipped_empty"] + m["samples"]["n_skipped_nonfinite"] == 300
    )
    gp = m["rocs"]["gamma_vs_pi0"]
    assert (gp["n_signal"], gp["n_background"]) == (per["photon"], per["pi0"])
    em = m["rocs"]["em_vs_hadron"]
    assert (em["n_signal"], em["n_background"]) == (per["photon"] + per["pi0"], per["charged_pion"])
    for roc in (gp, em):
        assert set(roc["methods"]) == {"cnn", "shower_shapes"}
        for entry in roc["methods"].values():
            assert set(entry["bkg_eff_at_sig_eff"]) == {"0.8", "0.9", "0.95", "0.99"}
            lo, hi = entry["auc_ci95"]
            assert lo <= entry["auc"] <= hi
            r = entry["rejection_at_sig_eff"]["0.8"]
            assert r is None or r == pytest.approx(1.0 / entry["bkg_eff_at_sig_eff"]["0.8"])
    # hadronic showers (deep, wide, a third of the energy) are told from EM ones by both
    assert em["methods"]["shower_shapes"]["auc"] > 0.9
    assert em["methods"]["cnn"]["auc"] > 0.8
    # the pi0's second photon is visible in the strips: shower shapes beat guessing
    assert gp["methods"]["shower_shapes"]["auc"] > 0.6
    rej = m["rejection_vs_energy"]
    n_bins = len(cfg["calo_classifier"]["energy_bins_GeV"]) - 1
    assert (
        len(rej["n_candidates"]) == n_bins
        and sum(rej["n_candidates"]) == per["photon"] + per["pi0"]
    )
    for method in ("cnn", "shower_shapes"):
        assert len(rej["methods"][method]["rejection"]) == n_bins
    conf = m["confusion_matrix"]
    for method in ("cnn", "shower_shapes"):
        mat = np.array(conf[method])
        assert mat.shape == (3, 3) and mat.sum() == n_test
        assert mat.sum(axis=1).tolist() == [per[c] for c in conf["classes"]]
    for png in ("roc.png", "rejection_vs_energy.png", "confusion_matrix.png"):
        assert (run / "eval" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png in m["plots"]
    assert (run / "model" / "model.pt").is_file() and (
        run / "model" / "baseline_train.npz"
    ).is_file()


def test_dataset_contract(run: Path) -> None:
    with np.load(run / "data0.npz", allow_pickle=False) as z:
        assert z["images"].shape[1:] == (3, 32, 32) and z["images"].dtype == np.float16
        assert z["label"].tolist() == [{22: 0, 111: 1, 211: 2}[abs(int(p))] for p in z["pdg_id"]]
        assert np.allclose(z["log_e"], np.log(z["e_total_GeV"]), atol=1e-5)
        total = z["images"].astype(np.float32).sum(axis=(1, 2, 3))
        big = z["e_total_GeV"] > 5.0  # noise outside the image matters little
        assert (total[big] < 1.05).all() and np.median(total[big]) > 0.8
        assert (np.diff(z["shower_id"]) > 0).all()


def test_evaluation_is_reproducible(run: Path, cfg: dict, tmp_path: Path) -> None:
    task.evaluate(cfg, [run / "data1.npz"], run / "model", tmp_path)
    a = json.loads((run / "eval" / "metrics.json").read_text())
    b = json.loads((tmp_path / "metrics.json").read_text())
    assert a["rocs"] == b["rocs"]


def test_bad_inputs_stop_with_one_line(
    run: Path, cfg: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated = tmp_path / "shard0.root"
    truncated.write_bytes((run / "sim0.root").read_bytes()[:5000])
    with pytest.raises(HepmlError, match="shard0.root"):
        task.build(cfg, [truncated], tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(config.dump(cfg))
    rc = main(
        [
            "build",
            "calo_classifier",
            "--config",
            str(cfg_file),
            "--input",
            str(truncated),
            "--out",
            str(tmp_path / "o.npz"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "shard0.root" in err
    no_baseline = tmp_path / "model"
    no_baseline.mkdir()
    (no_baseline / "model.pt").write_bytes((run / "model" / "model.pt").read_bytes())
    with pytest.raises(HepmlError, match="baseline_train.npz"):
        task.evaluate(cfg, [run / "data1.npz"], no_baseline, tmp_path / "eval")
    with pytest.raises(HepmlError, match="no .npz"):
        task.evaluate(cfg, [run / "sim1.root"], run / "model", tmp_path / "eval")
    assert not (tmp_path / "eval").exists()
    wrong = config.validate(
        {**cfg, "calo_classifier": {**cfg["calo_classifier"], "image": {"size": [16, 32]}}}
    )
    with pytest.raises(HepmlError, match="trained on"):
        small = tmp_path / "small.npz"
        task.build(wrong, [run / "sim1.root"], small)
        task.evaluate(wrong, [small], run / "model", tmp_path / "eval2")
