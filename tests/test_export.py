"""ONNX export (hepml.export): onnx.checker passes and onnxruntime reproduces torch within
1e-5 (absolute, fp32) for each of the three models, at batch sizes and sequence lengths
other than the traced ones; ``hepml reconstruct --backend onnxruntime`` writes the same
submission as the torch backend on the real TrackML sample."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hepml.cli import main
from hepml.export import EXPORTS, OnnxLabeller, check_parity, export_onnx
from hepml.models import build_model
from hepml.train import save_model

ROOT = Path(__file__).resolve().parents[1]
TRACKML_DIR = Path(os.environ.get("HEPML_TRACKML_DIR", ROOT.parent / "shared" / "trackml"))
SAMPLE = TRACKML_DIR / "sample"
EVENT = "event000000001"
TOL = 1e-5

# two recurrent layers, so that the masked layer-by-layer forward is tested between layers too
HPARAMS = {
    "ghost_lstm": {"hidden": 24, "layers": 2, "head_hidden": 16, "dropout": 0.0},
    "hit_bigru": {"hidden": 16, "num_layers": 2, "dropout": 0.0},
    "calo_cnn": {
        "image_size": [32, 32],
        "channels": [8, 16, 16],
        "hidden": 16,
        "dropout": 0.0,
        "phi_reduce": 4,
    },
}


def seeded_model(name: str, seed: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(name, HPARAMS[name])
    if name == "calo_cnn":  # give the batch norms non-trivial statistics, as training does
        model.train()
        with torch.no_grad():
            for _ in range(3):
                x = EXPORTS[name].example_inputs(name, 64, torch.Generator().manual_seed(9), {})
                model(**x)
    return model.eval()


def inputs(name: str, n: int, seed: int, max_len: int | None = None) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    if max_len is None:
        return EXPORTS[name].example_inputs(name, n, gen, HPARAMS[name])
    from hepml.models import model_class

    return model_class(name).example_inputs(n, gen, max_len=max_len)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[torch.nn.Module, Path]]:
    out = tmp_path_factory.mktemp("onnx")
    models = {}
    for name in EXPORTS:
        model = seeded_model(name)
        path = out / f"{name}.onnx"
        export_onnx(name, model, path, inputs(name, 8, 0))  # traced at batch 8
        models[name] = (model, path)
    return models


@pytest.mark.parametrize("name", list(EXPORTS))
def test_onnx_checker_and_dynamic_axes(name: str, exported: dict) -> None:
    import onnx

    _, path = exported[name]
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in graph.graph.input
    }
    assert all(d[0] == "batch" for d in dims.values())
    for k in EXPORTS[name].sequence_inputs:
        assert dims[k][1] == "length"


@pytest.mark.parametrize("name", list(EXPORTS))
@pytest.mark.parametrize("n", [1, 257])
def test_onnxruntime_matches_torch(name: str, n: int, exported: dict) -> None:
    """|torch - onnxruntime| < 1e-5 on every valid output, at batches other than the traced 8."""
    model, path = exported[name]
    x = inputs(name, n, seed=100 + n)
    diff = check_parity(name, model, path, x)
    with torch.inference_mode():
        scale = float(model(**x).abs().max())
    assert scale > 1e-2  # the outputs are not trivially zero
    assert diff < TOL, f"{name}: max |torch - onnxruntime| = {diff:.2e}"


@pytest.mark.parametrize("name", ["ghost_lstm", "hit_bigru"])
def test_variable_lengths_match_packed_torch(name: str, exported: dict) -> None:
    """Longer sequences than traced, lengths from 1 to L: the masked graph gives the packed result."""
    model, path = exported[name]
    x = inputs(name, 300, seed=5, max_len=40)
    x["lengths"][:10] = 1  # single-hit sequences: the recurrence's edge
    x["lengths"][10:20] = 40
    length_axis = next(iter(EXPORTS[name].sequence_inputs))
    x[length_axis] = x[length_axis] * (
        torch.arange(40)[None, :, None] < x["lengths"][:, None, None]
    )
    assert check_parity(name, model, path, x) < TOL


def test_cli_export_writes_a_checked_model(tmp_path: Path) -> None:
    model = seeded_model("hit_bigru")
    save_model(tmp_path / "m" / "model.pt", "hit_bigru", HPARAMS["hit_bigru"], model)
    rc = main(
        [
            "export",
            "hit_labeller",
            "--model",
            str(tmp_path / "m"),
            "--out",
            str(tmp_path / "m" / "model.onnx"),
        ]
    )
    assert rc == 0
    labeller = OnnxLabeller(tmp_path / "m" / "model.onnx")
    x = inputs("hit_bigru", 50, seed=8)
    got = labeller(x["x"].numpy(), x["lengths"].numpy())
    with torch.inference_mode():
        ref = model(**x).numpy()
    valid = np.arange(ref.shape[1])[None, :] < x["lengths"].numpy()[:, None]
    assert np.abs(got[:, : ref.shape[1]] - ref)[valid].max() < TOL


def test_cli_export_wrong_task_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_model(tmp_path / "model.pt", "hit_bigru", HPARAMS["hit_bigru"], seeded_model("hit_bigru"))
    rc = main(
        ["export", "ghost_filter", "--model", str(tmp_path), "--out", str(tmp_path / "g.onnx")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "'hit_bigru'" in err[0] and "ghost_lstm" in err[0]
    assert not (tmp_path / "g.onnx").exists()
    rc = main(
        [
            "export",
            "ghost_filter",
            "--model",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "g.onnx"),
        ]
    )
    assert rc == 2 and "does not exist" in capsys.readouterr().err


@pytest.mark.skipif(
    not (SAMPLE / f"{EVENT}-hits.csv.gz").is_file(),
    reason=f"the real TrackML sample is not in {SAMPLE} (set HEPML_TRACKML_DIR to the folder holding sample/)",
)
def test_reconstruct_backends_give_the_same_submission(tmp_path: Path) -> None:
    import pandas as pd

    model = seeded_model("hit_bigru")
    with torch.no_grad():  # a labeller that keeps some hits and drops others
        model.head[-1].bias.fill_(0.5)
    save_model(tmp_path / "model.pt", "hit_bigru", HPARAMS["hit_bigru"], model)
    assert (
        main(
            [
                "export",
                "hit_labeller",
                "--model",
                str(tmp_path),
                "--out",
                str(tmp_path / "model.onnx"),
            ]
        )
        == 0
    )
    subs = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / f"{backend}.csv"
        args = [
            "reconstruct",
            "--input",
            str(SAMPLE),
            "--event",
            EVENT,
            "--config",
            "config/test.yaml",
        ]
        args += ["--model", str(tmp_path / "model.pt"), "--backend", backend, "--out", str(out)]
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            assert main(args) == 0
        finally:
            os.chdir(cwd)
        subs[backend] = pd.read_csv(out)
    a, b = subs["torch"], subs["onnxruntime"]
    n_tracks = a.loc[a.track_id > 0, "track_id"].nunique()
    assert n_tracks > 20 and (a.track_id > 0).mean() > 0.05  # the labeller builds tracks
    pd.testing.assert_frame_equal(a, b)
