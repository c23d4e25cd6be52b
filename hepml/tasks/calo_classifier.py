"""Calorimeter classifier task: images -> CNN, against shower shapes -> boosted trees.

* ``build``: one simulated calorimeter shard (.root) -> one dataset (.npz) with the
  images and the shower-shape variables (:mod:`hepml.features.calo_images`).
* ``train``: the training shards -> ``out_dir/model.pt`` (CNN, 3 classes photon /
  pi0 / charged pion, cross-entropy, :func:`hepml.train.fit`) and
  ``out_dir/baseline_train.npz``: the shower shapes and labels of the same
  training showers, on which ``evaluate`` refits the (seeded, deterministic)
  gradient-boosted baseline, so that no pickled model is ever loaded.
* ``evaluate``: the test shards' datasets (the simulated .root files that the
  workflow also passes are not needed and are ignored) -> ``out_dir/metrics.json``,
  ``roc.png``, ``rejection_vs_energy.png``, ``confusion_matrix.png``.

ROCs (scores larger for signal):

* ``gamma_vs_pi0``: signal photons, background pi0s (charged pions left out);
  score p(photon) / (p(photon) + p(pi0)).
* ``em_vs_hadron``: signal electromagnetic showers (photons and pi0s), background
  hadronic showers (charged pions); score p(photon) + p(pi0) = 1 - p(pion).

Methods: ``cnn`` (:class:`hepml.models.calo_cnn.CaloCNN` on the images) and
``shower_shapes`` (sklearn's HistGradientBoostingClassifier on the variables of
:mod:`hepml.features.shower_shapes`, multi-class, seeded). Extra blocks of
metrics.json: ``rejection_vs_energy`` (pi0 rejection at ``rejection_sig_eff``
photon efficiency in bins of true energy, threshold set per bin, 95% bootstrap
intervals), ``confusion_matrix`` (true class x arg-max class, both methods),
``samples`` and ``baseline``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hepml.errors import HepmlError

log = logging.getLogger(__name__)

MODEL = "calo_cnn"
TASK = "calo_classifier"


# --------------------------------------------------------------------------- helpers
def _tensor_data(ds: dict[str, np.ndarray]) -> Any:
    import torch

    from hepml.train import TensorData

    return TensorData(
        inputs={
            "images": torch.from_numpy(np.ascontiguousarray(ds["images"], dtype=np.float32)),
            "log_e": torch.from_numpy(np.asarray(ds["log_e"], dtype=np.float32)),
        },
        target=torch.from_numpy(np.asarray(ds["label"], dtype=np.int64)),
    )


def hparams(cfg: dict[str, Any], image_shape: tuple[int, ...]) -> dict[str, Any]:
    """CaloCNN constructor arguments: sizes from the data, the rest from ``calo_classifier.model``."""
    m = cfg[TASK]["model"]
    return {
        "in_channels": int(image_shape[0]),
        "image_size": [int(image_shape[1]), int(image_shape[2])],
        "channels": [int(c) for c in m["channels"]],
        "hidden": int(m["hidden"]),
        "n_classes": 3,
        "dropout": float(m["dropout"]),
        "phi_reduce": int(m["phi_reduce"]),
    }


def gamma_pi0_score(proba: np.ndarray) -> np.ndarray:
    """p(photon) / (p(photon) + p(pi0)) from class probabilities (N, 3)."""
    return proba[:, 0] / np.maximum(proba[:, 0] + proba[:, 1], 1e-30)


def em_score(proba: np.ndarray) -> np.ndarray:
    """p(photon) + p(pi0) from class probabilities (N, 3)."""
    return proba[:, 0] + proba[:, 1]


@contextlib.contextmanager
def _threads(cfg: dict[str, Any]) -> Iterator[None]:
    """Torch and OpenMP (sklearn) threads as ``calo_classifier.train.threads`` says (0: leave)."""
    import torch
    from threadpoolctl import threadpool_limits

    from hepml.train import TrainerConfig

    n = TrainerConfig.from_config(cfg, TASK).threads
    if n <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_baseline(cfg: dict[str, Any], shapes: np.ndarray, labels: np.ndarray) -> Any:
    """The shower-shape classifier: HistGradientBoostingClassifier, seeded, early stopping."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from hepml.rng import stream_id

    b = cfg[TASK]["baseline"]
    clf = HistGradientBoostingClassifier(
        max_iter=int(b["max_iter"]),
        learning_rate=float(b["learning_rate"]),
        max_leaf_nodes=int(b["max_leaf_nodes"]),
        early_stopping=True,
        validation_fraction=0.1,
        random_state=int((int(cfg["seed"]) + stream_id("calo_classifier/baseline")) % (2**31)),
    )
    return clf.fit(shapes, labels)


# --------------------------------------------------------------------------- build
def build(cfg: dict[str, Any], inputs: list[Path], out: Path) -> None:
    """Simulated shard(s) (.root) -> one dataset file ``out`` (.npz), written atomically."""
    from hepml.features.calo_images import ImageConfig, build_dataset, save_dataset
    from hepml.sim.calo import CaloGeometry, read_calo_root

    if not inputs:
        raise HepmlError("calo_classifier build: no input file given")
    geometry = CaloGeometry.from_config(cfg)
    image = ImageConfig.from_config(cfg)
    parts = [read_calo_root(p) for p in inputs]
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arrays = build_dataset(data, geometry, image)
    save_dataset(out, arrays)
    print(
        f"calo_classifier build: {len(arrays['label'])} showers from {len(data['pdg_id'])} "
        f"(skipped {int(arrays['n_skipped_nonfinite'])} with NaN/inf cells, "
        f"{int(arrays['n_skipped_empty'])} with no deposited energy) -> {out}"
    )


# --------------------------------------------------------------------------- train
def train(cfg: dict[str, Any], data: list[Path], out_dir: Path) -> None:
    """Training datasets -> ``out_dir/model.pt`` (CNN) and ``out_dir/baseline_train.npz``."""
    from hepml.features.calo_images import load_dataset, save_dataset
    from hepml.rng import stream_id
    from hepml.train import TrainerConfig, build_model_seeded, fit, split_train_val

    ds = load_dataset([p for p in data if Path(p).suffix == ".npz"])
    if len(ds["label"]) < 10:
        raise HepmlError(
            f"calo_classifier train: only {len(ds['label'])} showers in {len(data)} dataset files"
        )
    seed = int(cfg["seed"])
    tcfg = TrainerConfig.from_config(cfg, TASK)
    full = _tensor_data(ds)
    tr, va = split_train_val(
        full,
        float(cfg["workflow"]["val_fraction"]),
        seed + stream_id("calo_classifier/split") % 1000,
    )
    hp = hparams(cfg, tuple(ds["images"].shape[1:]))
    model = build_model_seeded(MODEL, hp, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # the baseline's training sample first: model.pt (the rule's output) comes last
    save_dataset(
        out_dir / "baseline_train.npz",
        {"shapes": ds["shapes"], "label": ds["label"], "shape_names": ds["shape_names"]},
    )
    with _threads(cfg):
        res = fit(model, MODEL, hp, tr, va, tcfg, out_dir, seed=seed, loss="ce")
    print(
        f"calo_classifier train: {len(tr)} training / {len(va)} validation showers, {res.epochs} epochs, "
        f"best val_loss {res.best_val_loss:.4f}, {res.samples_per_s:.0f} samples/s -> {res.model_path}"
    )


# --------------------------------------------------------------------------- evaluate
def _confusion(labels: np.ndarray, proba: np.ndarray) -> list[list[int]]:
    pred = proba.argmax(axis=1)
    m = np.zeros((3, 3), dtype=np.int64)
    np.add.at(m, (labels, pred), 1)
    return m.tolist()


def _plot_confusion(
    path: Path, matrices: dict[str, list[list[int]]], classes: tuple[str, ...]
) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from hepml.io import atomic_output

    fig = Figure(figsize=(4.6 * len(matrices), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    for ax, (name, mat) in zip(axes, matrices.items(), strict=True):
        m = np.asarray(mat, dtype=np.float64)
        frac = m / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
        ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
        for i in range(3):
            for j in range(3):
                ax.text(
                    j,
                    i,
                    f"{frac[i, j]:.2f}\n({int(m[i, j])})",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if frac[i, j] > 0.6 else "black",
                )
        ax.set_xticks(range(3), classes, fontsize=8)
        ax.set_yticks(range(3), classes, fontsize=8)
        ax.set_xlabel("predicted (arg max)")
        ax.set_ylabel("true")
        ax.set_title(f"{name} (rows normalised)", fontsize=10)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def evaluate(cfg: dict[str, Any], data: list[Path], model_dir: Path, out_dir: Path) -> None:
    """Test datasets + trained model -> metrics.json and plots in ``out_dir``."""
    from hepml.evaluate.plots import plot_binned
    from hepml.evaluate.roc import (
        EvaluateConfig,
        binned_bkg_eff,
        plot_rocs,
        rejection,
        roc_block,
        write_metrics,
    )
    from hepml.features.calo_images import CLASSES, load_dataset
    from hepml.rng import rng as make_rng
    from hepml.train import load_model, predict

    npz = [p for p in data if Path(p).suffix == ".npz"]
    if not npz:
        raise HepmlError("calo_classifier evaluate: no .npz dataset among --data")
    ds = load_dataset(npz)
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    model, meta = load_model(model_dir / "model.pt")
    if meta.get("model_name") != MODEL:
        raise HepmlError(
            f"'{model_dir / 'model.pt'}' holds model '{meta.get('model_name')}', not '{MODEL}'"
        )
    want = [int(ds["images"].shape[1])] + [int(s) for s in ds["images"].shape[2:]]
    have = [int(meta["hparams"]["in_channels"])] + [int(s) for s in meta["hparams"]["image_size"]]
    if want != have:
        raise HepmlError(
            f"images of {npz[0]} are {want} (channels, eta, phi) but the model in '{model_dir}' was trained on {have}"
        )
    base_path = model_dir / "baseline_train.npz"
    if not base_path.is_file():
        raise HepmlError(f"'{base_path}' does not exist (written by 'hepml train calo_classifier')")
    with np.load(base_path, allow_pickle=False) as z:
        if not np.array_equal(z["shape_names"], ds["shape_names"]):
            raise HepmlError(f"'{base_path}' has other shower-shape variables than {npz[0]}")
        base_x, base_y = z["shapes"], z["label"]

    with _threads(cfg):
        p_cnn = _softmax(predict(model, _tensor_data(ds)))
        p_bdt = fit_baseline(cfg, base_x, base_y).predict_proba(ds["shapes"])
    labels = ds["label"]
    ecfg = EvaluateConfig.from_config(cfg)
    gen = make_rng(cfg["seed"], "evaluate/calo_classifier")
    gp = labels < 2
    y_gp = labels[gp] == 0
    y_em = labels < 2
    gp_scores = {"cnn": gamma_pi0_score(p_cnn[gp]), "shower_shapes": gamma_pi0_score(p_bdt[gp])}
    em_scores = {"cnn": em_score(p_cnn), "shower_shapes": em_score(p_bdt)}
    rocs = {
        "gamma_vs_pi0": roc_block(
            "photons", "pi0", y_gp, gp_scores, ecfg.sig_effs, ecfg.bootstrap, rng=gen
        ),
        "em_vs_hadron": roc_block(
            "photons and pi0 (EM)",
            "charged pions (hadronic)",
            y_em,
            em_scores,
            ecfg.sig_effs,
            ecfg.bootstrap,
            rng=gen,
        ),
    }

    c = cfg[TASK]
    bins = np.asarray(c["energy_bins_GeV"], dtype=np.float64)
    sig_eff = float(c["rejection_sig_eff"])
    e_gp = ds["e_true_GeV"][gp]
    rej_block: dict[str, Any] = {
        "variable": "e_true_GeV",
        "bins_GeV": bins,
        "signal": "photons",
        "background": "pi0",
        "sig_eff": sig_eff,
        "methods": {},
    }
    series = {}
    for name, s in gp_scores.items():
        eff, lo, hi = binned_bkg_eff(e_gp, bins, y_gp, s, sig_eff, ecfg.bootstrap, rng=gen)
        rej, rlo, rhi = rejection(eff), rejection(hi), rejection(lo)
        rej_block["methods"][name] = {
            "bkg_eff": eff,
            "rejection": rej,
            "rejection_ci95": np.stack([rlo, rhi], axis=1),
        }
        # an infinite rejection (no pi0 left in a small bin) is not drawn
        finite = [np.where(np.isfinite(a), a, np.nan) for a in (rej, rlo, rhi)]
        series[name] = (finite[0], finite[1], finite[2])
    counts = np.histogram(e_gp, bins)[0]
    rej_block["n_candidates"] = counts
    confusion: dict[str, Any] = {
        "classes": list(CLASSES),
        "rows": "true class",
        "columns": "arg-max class",
        "cnn": _confusion(labels, p_cnn),
        "shower_shapes": _confusion(labels, p_bdt),
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    plot_rocs(
        out_dir / "roc.png",
        {"gamma_vs_pi0": (y_gp, gp_scores), "em_vs_hadron": (y_em, em_scores)},
        rocs,
        title="calorimeter classifier: CNN on images vs boosted trees on shower shapes",
    )
    plot_binned(
        out_dir / "rejection_vs_energy.png",
        bins,
        series,
        "true energy (GeV)",
        f"pi0 rejection at {sig_eff:.0%} photon efficiency",
        title="pi0 rejection against energy (threshold per bin, 95% CI)",
    )
    _plot_confusion(
        out_dir / "confusion_matrix.png",
        {k: confusion[k] for k in ("cnn", "shower_shapes")},
        CLASSES,
    )
    write_metrics(
        out_dir / "metrics.json",
        "cnn",
        rocs,
        rejection_vs_energy=rej_block,
        confusion_matrix=confusion,
        samples={
            "n_test": int(len(labels)),
            "per_class": {k: int((labels == i).sum()) for i, k in enumerate(CLASSES)},
            "n_skipped_nonfinite": int(ds["n_skipped_nonfinite"]),
            "n_skipped_empty": int(ds["n_skipped_empty"]),
            "n_baseline_train": int(len(base_y)),
        },
        baseline={
            "classifier": "sklearn HistGradientBoostingClassifier",
            "variables": [str(v) for v in ds["shape_names"]],
        },
        model={
            "name": MODEL,
            "hparams": meta["hparams"],
            "epochs": meta.get("meta", {}).get("epochs"),
        },
        plots={
            "roc.png": "ROC curves: photon vs pi0 and EM vs hadronic, CNN and shower shapes",
            "rejection_vs_energy.png": f"pi0 rejection at {sig_eff:.0%} photon efficiency against true energy",
            "confusion_matrix.png": "confusion matrices (true vs arg-max class), CNN and shower shapes",
        },
    )
    r = rocs["gamma_vs_pi0"]["methods"]
    print(
        "calo_classifier evaluate: gamma_vs_pi0 AUC cnn {:.4f} shower_shapes {:.4f}; pi0 rejection at 80% cnn {} shower_shapes {}".format(
            r["cnn"]["auc"],
            r["shower_shapes"]["auc"],
            r["cnn"]["rejection_at_sig_eff"].get("0.8"),
            r["shower_shapes"]["rejection_at_sig_eff"].get("0.8"),
        )
    )
