"""The ghost-filter task: track candidates -> GhostLSTM against a chi2 cut and a GBDT.

* :func:`build`: a simulated tracker shard (ROOT) -> track candidates of every
  event (:func:`hepml.reco.following.find_candidates`), truth-matched
  (:func:`hepml.reco.matching.match_tracks`) and written as sequences in the
  contract of :mod:`hepml.features.sequences` (``.npz``).
* :func:`train`: the training shards -> ``model.pt`` (GhostLSTM through
  :func:`hepml.train.fit`) and ``gbdt_train.npz`` (the training sample of the
  gradient-boosted baseline on the track features, refit with its seed at
  evaluation so that no pickled model is ever loaded), both in the output directory.
* :func:`evaluate`: the test shards -> ``metrics.json`` (ROC ``ghost`` with the
  methods ``lstm``, ``chi2`` (score -chi2/ndf) and ``gbdt``; ROC
  ``ghost_after_chi2``: ``lstm`` and ``gbdt`` on the candidates that pass the chi2
  cut at the working point, when each class has at least 10; blocks
  ``ghost_fraction``, ``n_test_candidates``, ``ghost_rejection`` (fraction of
  ghosts removed and rejection 1/bkg_eff at 95% and 99% true-track efficiency),
  ``working_point``, ``finder``), ``roc.png`` and efficiency / ghost-rate plots
  against pT and eta at the working point.

Empty input: a shard without events or candidates is built into a valid empty
dataset (with a note on stderr); training or evaluating on no candidates, or on
one class only, stops with a one-line error naming the files.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepml.config import from_section
from hepml.detector.layers import TrackerGeometry
from hepml.errors import HepmlError
from hepml.features import sequences as seq
from hepml.io import atomic_output, read_tracker_events
from hepml.reco.fit import LayerResolution
from hepml.reco.following import FollowingConfig, find_candidates
from hepml.reco.matching import match_tracks
from hepml.reco.seeding import SeedingConfig
from hepml.rng import rng as make_rng
from hepml.rng import torch_seed

MODEL_NAME = "ghost_lstm"
# the baseline's training sample; the GBDT is refit (seeded) where needed, never unpickled
GBDT_FILE = "gbdt_train.npz"
#: fewest candidates of each class for the ROC of the candidates passing the chi2 cut
MIN_CLASS_FOR_ROC = 10


@dataclass(frozen=True)
class GhostFilterConfig:
    """Task-level settings of ``ghost_filter`` (the finder's are in its own dataclasses)."""

    min_purity: float = 0.7
    working_point_efficiency: float = 0.99
    reconstructable_min_pt_GeV: float = 0.5
    gbdt_max_iter: int = 200
    gbdt_learning_rate: float = 0.1
    gbdt_max_leaf_nodes: int = 31

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> GhostFilterConfig:
        g = cfg["ghost_filter"]
        return from_section(cls, {**g, **g["baselines"]})


def model_hparams(cfg: dict[str, Any]) -> dict[str, Any]:
    """GhostLSTM constructor arguments: sizes from the data contract, the rest from ``ghost_filter.model``."""
    m = cfg["ghost_filter"]["model"]
    return {
        "n_hit_features": seq.N_HIT_FEATURES,
        "n_track_features": seq.N_TRACK_FEATURES,
        "hidden": int(m["hidden"]),
        "layers": int(m["layers"]),
        "dropout": float(m["dropout"]),
        "head_hidden": int(m["head_hidden"]),
    }


def _note(msg: str) -> None:
    print(f"ghost_filter: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- build
def event_dataset(
    hits: pd.DataFrame,
    particles: pd.DataFrame,
    geometry: TrackerGeometry,
    seeding: SeedingConfig,
    following: FollowingConfig,
    min_purity: float,
) -> dict[str, np.ndarray]:
    """The dataset arrays (contract of :mod:`hepml.features.sequences`) of ONE event."""
    lay = geometry.global_layer(hits["volume_id"].to_numpy(), hits["layer_id"].to_numpy())
    barrel = lay >= 0
    h = hits[barrel]
    lay = lay[barrel]
    x, y, z = (h[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    hit_id = h["hit_id"].to_numpy(np.int64)
    pid = h["particle_id"].to_numpy(np.int64)
    eid = int(hits["event_id"].iloc[0]) if len(hits) else int(particles["event_id"].iloc[0])

    cands = find_candidates(x, y, z, lay, geometry, seeding, following)
    feats = seq.candidate_sequences(
        x, y, z, cands.hits, cands.fit, LayerResolution.from_geometry(geometry), cands.n_holes
    )
    rows = feats["hit_rows"]
    valid = rows >= 0
    match = match_tracks(pid[np.maximum(rows, 0)], valid, min_purity=min_purity)

    # truth of the particles of this event (the efficiency denominator)
    p_id = particles["particle_id"].to_numpy(np.int64)
    px, py, pz = (particles[c].to_numpy(np.float64) for c in ("px", "py", "pz"))
    p_pt = np.hypot(px, py)
    p_eta = np.arcsinh(pz / np.maximum(p_pt, 1e-12))
    n_lay = (
        pd.DataFrame({"p": pid, "l": lay})[pid != 0].drop_duplicates().groupby("p").size()
        if len(pid)
        else pd.Series(dtype=np.int64)
    )
    p_nlay = n_lay.reindex(p_id, fill_value=0).to_numpy(np.int64)
    order = np.argsort(p_id)
    pos = np.searchsorted(p_id[order], match.particle_id)
    pos = np.minimum(pos, max(len(p_id) - 1, 0))
    known = (len(p_id) > 0) & (match.particle_id != 0)
    if len(p_id):
        known = known & (p_id[order][pos] == match.particle_id)
    m_pt = np.where(known, p_pt[order][pos] if len(p_id) else np.nan, np.nan)
    m_eta = np.where(known, p_eta[order][pos] if len(p_id) else np.nan, np.nan)

    n = len(cands)
    fit = cands.fit
    return {
        "hit_features": feats["hit_features"],
        "lengths": feats["lengths"],
        "track_features": feats["track_features"],
        "hit_ids": np.where(valid, hit_id[np.maximum(rows, 0)], -1),
        "event_id": np.full(n, eid, dtype=np.int64),
        "label": match.is_true.astype(np.float32),
        "is_clone": match.is_clone,
        "purity": match.purity,
        "particle_id": match.particle_id,
        "particle_pt_GeV": m_pt,
        "particle_eta": m_eta,
        "pt_GeV": fit.pt_GeV,
        "eta": fit.eta,
        "chi2_ndf": fit.chi2_ndf,
        "d0_mm": fit.d0_mm,
        "z0_mm": fit.z0_mm,
        "n_hits": feats["lengths"],
        "events": np.array([eid], dtype=np.int64),
        "particles_event_id": np.full(len(p_id), eid, dtype=np.int64),
        "particles_id": p_id,
        "particles_pt_GeV": p_pt,
        "particles_eta": p_eta,
        "particles_n_layers": p_nlay,
    }


def build(cfg: dict[str, Any], inputs: list[Path], out: Path) -> None:
    """Simulated tracker shard(s) ``inputs`` (ROOT) -> one candidate dataset ``out`` (.npz)."""
    geometry = TrackerGeometry.from_config(cfg)
    seeding = SeedingConfig.from_config(cfg)
    following = FollowingConfig.from_config(cfg)
    task = GhostFilterConfig.from_config(cfg)
    hits, particles = read_tracker_events(inputs)
    events = np.union1d(hits["event_id"].to_numpy(), particles["event_id"].to_numpy())
    names = ", ".join(f"'{p}'" for p in inputs)
    if len(events) == 0:
        _note(f"{names} holds no events: writing an empty dataset to '{out}'")
        seq.save_dataset(out, seq.empty_dataset(geometry.n_layers))
        return
    h_ev = hits["event_id"].to_numpy()
    p_ev = particles["event_id"].to_numpy()
    parts = []
    for eid in events:
        h = hits[h_ev == eid].reset_index(drop=True)
        p = particles[p_ev == eid].reset_index(drop=True)
        t0 = time.perf_counter()
        d = (
            event_dataset(h, p, geometry, seeding, following, task.min_purity)
            if len(h)
            else _no_hit_event(int(eid), p, geometry)
        )
        dt = time.perf_counter() - t0
        n = len(d["label"])
        ghosts = int((d["label"] == 0).sum())
        _note(
            f"event {eid}: {len(h)} hits, {n} candidates, {ghosts} ghosts "
            f"({ghosts / max(n, 1):.1%}), {dt:.2f} s"
        )
        parts.append(d)
    data = seq.concat_datasets(parts, geometry.n_layers)
    if len(data["label"]) == 0:
        _note(
            f"{names}: no track candidates in {len(events)} event(s): writing an empty dataset to '{out}'"
        )
    seq.save_dataset(out, data)


def _no_hit_event(
    eid: int, particles: pd.DataFrame, geometry: TrackerGeometry
) -> dict[str, np.ndarray]:
    d = seq.empty_dataset(geometry.n_layers)
    px, py, pz = (particles[c].to_numpy(np.float64) for c in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    d["events"] = np.array([eid], dtype=np.int64)
    d["particles_event_id"] = np.full(len(pt), eid, dtype=np.int64)
    d["particles_id"] = particles["particle_id"].to_numpy(np.int64)
    d["particles_pt_GeV"] = pt
    d["particles_eta"] = np.arcsinh(pz / np.maximum(pt, 1e-12))
    d["particles_n_layers"] = np.zeros(len(pt), dtype=np.int64)
    return d


# --------------------------------------------------------------------------- train
def _datasets(paths: list[Path], what: str) -> dict[str, np.ndarray]:
    npz = [Path(p) for p in paths if Path(p).suffix == ".npz"]
    if not npz:
        raise HepmlError(
            f"ghost_filter {what}: no dataset (.npz) among {', '.join(map(str, paths))}"
        )
    data = seq.load_datasets(npz)
    names = ", ".join(f"'{p}'" for p in npz)
    y = data["label"]
    if len(y) == 0:
        raise HepmlError(f"ghost_filter {what}: no track candidates in {names}")
    if y.min() == y.max():
        kind = "true tracks" if y[0] == 1 else "ghosts"
        raise HepmlError(f"ghost_filter {what}: only {kind} ({len(y)} candidates) in {names}")
    return data


def train_gbdt(
    track_features: np.ndarray, label: np.ndarray, task: GhostFilterConfig, seed: int
) -> Any:
    """The gradient-boosted baseline (scikit-learn HistGradientBoostingClassifier), seeded."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(
        max_iter=task.gbdt_max_iter,
        learning_rate=task.gbdt_learning_rate,
        max_leaf_nodes=task.gbdt_max_leaf_nodes,
        early_stopping=len(label) >= 1000,
        validation_fraction=0.1,
        random_state=seed % 2**32,  # sklearn takes 32-bit seeds
    )
    clf.fit(track_features, label.astype(np.int64))
    return clf


def train(cfg: dict[str, Any], data: list[Path], out_dir: Path) -> None:
    """Training shards -> ``out_dir/gbdt_train.npz`` and ``out_dir/model.pt`` (written last)."""
    from hepml.train import TrainerConfig, build_model_seeded, fit, split_train_val

    d = _datasets(data, "train")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = torch_seed(cfg["seed"], "ghost_filter.train")
    tensors = seq.to_tensor_data(d)
    train_d, val_d = split_train_val(tensors, float(cfg["workflow"]["val_fraction"]), seed)
    # the GBDT learns on the same training candidates as the LSTM
    idx = _train_indices(len(d["label"]), float(cfg["workflow"]["val_fraction"]), seed, train_d)
    with atomic_output(out_dir / GBDT_FILE) as tmp, open(tmp, "wb") as f:
        np.savez(f, track_features=d["track_features"][idx], label=d["label"][idx])

    hparams = model_hparams(cfg)
    model = build_model_seeded(MODEL_NAME, hparams, seed)
    tcfg = TrainerConfig.from_config(cfg, "ghost_filter")
    t0 = time.perf_counter()
    res = fit(model, MODEL_NAME, hparams, train_d, val_d, tcfg, out_dir, seed=seed, loss="bce")
    _note(
        f"lstm: {len(train_d)} training / {len(val_d)} validation candidates, {res.epochs} epochs, "
        f"best val loss {res.best_val_loss:.4f}, {time.perf_counter() - t0:.1f} s"
    )


def _train_indices(n: int, val_fraction: float, seed: int, train_d: Any) -> np.ndarray:
    """Rows of the full sample that :func:`hepml.train.split_train_val` put in training."""
    import torch

    from hepml.train import TensorData, split_train_val

    probe = TensorData(inputs={"i": torch.arange(n)}, target=torch.zeros(n))
    tr, _ = split_train_val(probe, val_fraction, seed)
    idx = tr.inputs["i"].numpy()
    if len(idx) != len(train_d):
        raise RuntimeError("split_train_val is not deterministic")
    return idx


# --------------------------------------------------------------------------- evaluate
def _threshold(score: np.ndarray, y: np.ndarray, sig_eff: float) -> float:
    """Largest threshold keeping at least ``sig_eff`` of the true tracks (score >= threshold)."""
    s = np.sort(score[y == 1])[::-1]
    k = max(int(np.ceil(sig_eff * len(s))), 1)
    return float(s[min(k, len(s)) - 1])


def evaluate(cfg: dict[str, Any], data: list[Path], model_dir: Path, out_dir: Path) -> None:
    """Test shards -> ``metrics.json``, ``roc.png`` and efficiency/ghost-rate plots in ``out_dir``.

    ``data`` holds the test shards' datasets (``.npz``); simulated ``.root`` files
    given beside them are not needed (the datasets carry the particles' truth for
    the efficiency denominator) and are ignored. Working-point thresholds are
    chosen on the test candidates themselves, like the ROC's efficiencies.
    """
    from hepml.evaluate.roc import EvaluateConfig, plot_rocs, roc_block, write_metrics
    from hepml.train import load_model, predict

    task = GhostFilterConfig.from_config(cfg)
    following = FollowingConfig.from_config(cfg)
    ev_cfg = EvaluateConfig.from_config(cfg)
    d = _datasets(data, "evaluate")
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    gbdt_path = model_dir / GBDT_FILE
    if not gbdt_path.is_file():
        raise HepmlError(f"'{gbdt_path}' does not exist: run 'hepml train ghost_filter' first")
    model, _ = load_model(model_dir / "model.pt")
    try:
        with open(gbdt_path, "rb") as f, np.load(f, allow_pickle=False) as z:
            base_x, base_y = z["track_features"], z["label"]
    except Exception as exc:
        raise HepmlError(
            f"'{gbdt_path}' is not a readable baseline sample ({type(exc).__name__})"
        ) from None
    t0 = time.perf_counter()
    gbdt = train_gbdt(base_x, base_y, task, torch_seed(cfg["seed"], "ghost_filter.train"))
    _note(
        f"gbdt: {len(base_y)} candidates, {gbdt.n_iter_} iterations, {time.perf_counter() - t0:.1f} s"
    )

    y = d["label"].astype(np.int64)
    chi2 = np.nan_to_num(d["chi2_ndf"].astype(np.float64), nan=1e9, posinf=1e9)
    scores = {
        "lstm": predict(model, seq.to_tensor_data(d)).astype(np.float64),
        "chi2": -chi2,
        "gbdt": gbdt.predict_proba(d["track_features"])[:, 1],
    }
    wp = task.working_point_efficiency
    sig_effs = tuple(sorted({*ev_cfg.sig_effs, 0.95, 0.99, wp}))
    block = roc_block(
        "true tracks",
        "ghosts",
        y,
        scores,
        sig_effs,
        ev_cfg.bootstrap,
        rng=make_rng(cfg["seed"], "ghost_filter.evaluate"),
    )
    rocs = {"ghost": block}
    curves = {"ghost": (y, scores)}
    # the hard part: what the networks remove among the candidates the chi2 cut keeps
    passed = scores["chi2"] >= _threshold(scores["chi2"], y, wp)
    yp = y[passed]
    if min(int(yp.sum()), int((yp == 0).sum())) >= MIN_CLASS_FOR_ROC:
        sub = {m: scores[m][passed] for m in ("lstm", "gbdt")}
        rocs["ghost_after_chi2"] = roc_block(
            "true tracks passing the chi2 cut",
            "ghosts passing the chi2 cut",
            yp,
            sub,
            sig_effs,
            ev_cfg.bootstrap,
            rng=make_rng(cfg["seed"], "ghost_filter.evaluate.after_chi2"),
        )
        curves["ghost_after_chi2"] = (yp, sub)
    else:
        _note(f"only {int((yp == 0).sum())} ghosts pass the chi2 cut: no 'ghost_after_chi2' ROC")
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_rocs(
        out_dir / "roc.png",
        curves,
        rocs,
        title=f"ghost filter: {int(y.sum())} true tracks, {int((y == 0).sum())} ghosts",
    )

    rejection: dict[str, dict[str, Any]] = {}
    for m, entry in block["methods"].items():
        rejection[m] = {}
        for e in (0.95, 0.99):
            key = next(k for k in entry["bkg_eff_at_sig_eff"] if abs(float(k) - e) < 1e-9)
            b = float(entry["bkg_eff_at_sig_eff"][key])
            lo, hi = entry["bkg_eff_at_sig_eff_ci95"][key]
            rejection[m][key] = {
                "ghosts_removed": 1.0 - b,
                "ghosts_removed_ci95": [
                    None if hi is None else 1.0 - hi,
                    None if lo is None else 1.0 - lo,
                ],
                "rejection": (1.0 / b) if b > 0 else None,
            }

    thresholds = {m: _threshold(s, y, wp) for m, s in scores.items()}
    kept = {m: scores[m] >= thresholds[m] for m in scores}
    plots = _wp_plots(out_dir, d, y, kept, wp, task, following)

    n = len(y)
    write_metrics(
        out_dir / "metrics.json",
        "lstm",
        rocs,
        ghost_fraction=float((y == 0).mean()),
        n_test_candidates=n,
        ghost_rejection=rejection,
        working_point={
            "true_track_efficiency": wp,
            "thresholds": thresholds,
            "ghost_rate": {
                m: float((y[k] == 0).mean()) if k.any() else None for m, k in kept.items()
            },
            "true_track_efficiency_measured": {m: float(k[y == 1].mean()) for m, k in kept.items()},
        },
        finder={
            "events": len(d["events"]),
            "candidates": n,
            "true": int(y.sum()),
            "ghosts": int((y == 0).sum()),
            "clones": int(d["is_clone"].sum()),
            "candidates_per_event": n / max(len(d["events"]), 1),
        },
        plots={
            "roc.png": "ROC of the ghost filter: LSTM, chi2/ndf cut and GBDT on the test candidates",
            **plots,
        },
    )
    summary = ", ".join(
        f"{m} AUC {e['auc']:.4f} [{e['auc_ci95'][0]:.4f}, {e['auc_ci95'][1]:.4f}]"
        for m, e in block["methods"].items()
    )
    _note(f"{n} test candidates, ghost fraction {float((y == 0).mean()):.3f}; {summary}")


def _wp_plots(
    out_dir: Path,
    d: dict[str, np.ndarray],
    y: np.ndarray,
    kept: dict[str, np.ndarray],
    wp: float,
    task: GhostFilterConfig,
    following: FollowingConfig,
) -> dict[str, str]:
    """Tracking efficiency and ghost rate against pT and eta, before and after each filter."""
    from hepml.evaluate.plots import efficiency_plot

    series = {"no filter": np.ones(len(y), dtype=bool), **kept}
    # particles: reconstructable = pT above threshold and enough hit layers
    recon = (d["particles_pt_GeV"] >= task.reconstructable_min_pt_GeV) & (
        d["particles_n_layers"] >= following.min_hits
    )
    key_p = d["particles_event_id"][recon] * (1 << 32) + d["particles_id"][recon]
    found = {}
    for m, k in series.items():
        good = k & (y == 1)
        key_t = d["event_id"][good] * (1 << 32) + d["particle_id"][good]
        found[m] = np.isin(key_p, key_t)
    label = f"at {wp:.0%} true-track efficiency"
    pt_bins = np.geomspace(max(task.reconstructable_min_pt_GeV, 0.1), 20.0, 11)
    eta_bins = np.linspace(-1.5, 1.5, 13)
    efficiency_plot(
        out_dir / "efficiency_vs_pt.png",
        d["particles_pt_GeV"][recon].astype(np.float64),
        found,
        pt_bins,
        "particle pT [GeV]",
        "tracking efficiency",
        title=f"reconstructable particles, filters {label}",
        logx=True,
    )
    efficiency_plot(
        out_dir / "efficiency_vs_eta.png",
        d["particles_eta"][recon].astype(np.float64),
        found,
        eta_bins,
        "particle eta",
        "tracking efficiency",
        title=f"reconstructable particles, filters {label}",
    )
    pt_all = d["pt_GeV"].astype(np.float64)
    eta_all = d["eta"].astype(np.float64)
    ghost = {m: (y[k] == 0) for m, k in series.items()}
    efficiency_plot(
        out_dir / "ghost_rate_vs_pt.png",
        {m: pt_all[k] for m, k in series.items()},
        ghost,
        np.geomspace(0.3, 20.0, 11),
        "candidate pT (fit) [GeV]",
        "ghost rate",
        title=f"ghosts among kept candidates, filters {label}",
        logx=True,
        ylim=None,
    )
    efficiency_plot(
        out_dir / "ghost_rate_vs_eta.png",
        {m: eta_all[k] for m, k in series.items()},
        ghost,
        eta_bins,
        "candidate eta (fit)",
        "ghost rate",
        title=f"ghosts among kept candidates, filters {label}",
        ylim=None,
    )
    return {
        "efficiency_vs_pt.png": f"Tracking efficiency against particle pT, without and with each filter {label}",
        "efficiency_vs_eta.png": f"Tracking efficiency against particle eta, without and with each filter {label}",
        "ghost_rate_vs_pt.png": f"Ghost rate against candidate pT, without and with each filter {label}",
        "ghost_rate_vs_eta.png": f"Ghost rate against candidate eta, without and with each filter {label}",
    }
