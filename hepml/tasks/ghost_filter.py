"""The ghost-filter task: the finder's track candidates -> GhostLSTM against a chi2 cut and a GBDT.

* :func:`build`: a simulated tracker shard (ROOT) -> the track candidates of
  every event (:func:`event_candidates`: the hit labeller's finder,
  :mod:`hepml.reco.chain`'s seeding and roads through the whole detector, each
  road's follower picks one candidate, taken before the roads' ``min_picked``
  cut and ambiguity resolution so that ghosts and duplicates remain),
  truth-matched (:func:`hepml.reco.matching.match_tracks`, >= ``min_purity``
  of the hits from one particle; duplicates count as true) and written as
  variable-length sequences in the contract of :mod:`hepml.features.sequences`
  (``.npz``).
* :func:`train`: the training shards -> ``model.pt`` (GhostLSTM through
  :func:`hepml.train.fit`) and ``gbdt_train.npz`` (the training sample of the
  gradient-boosted baseline on the track features, refit with its seed at
  evaluation so that no pickled model is ever loaded), both in the output directory.
* :func:`evaluate`: the test shards -> ``metrics.json`` (ROC ``ghost`` with the
  methods ``lstm``, ``chi2`` (score -chi2/ndf of the helix fit) and ``gbdt``;
  ROC ``ghost_after_chi2``: ``lstm`` and ``gbdt`` on the candidates that pass
  the chi2 cut at the working point, and ROC ``ghost_long``: all three on the
  candidates long enough to pass the roads' ``min_picked`` cut, each when both
  classes have at least 10; blocks ``ghost_fraction``, ``n_test_candidates``,
  ``ghost_rejection`` (fraction of ghosts removed and rejection 1/bkg_eff at
  95% and 99% true-track efficiency), ``working_point``, ``finder`` (counts,
  clones, mean purity)), ``roc.png`` and efficiency / ghost-rate plots against
  pT and eta at the working point.

**Real TrackML** (:func:`evaluate_real`): an entry of ``evaluate``'s ``data``
that names a TrackML event, ``DIR/eventNNNNNNNNN`` (its
``-hits/-truth/-particles.csv[.gz]`` files; ``hepml.io.read_trackml_csv``),
is not a dataset: the event's candidates are found and truth-matched as above,
scored by the trained LSTM, the chi2 cut and the GBDT, and
``out_dir/real_trackml.json`` gets, for the real event and for the own
simulation's test candidates side by side, each method's AUC (95% bootstrap
interval) and the fraction of ghosts kept at 99% true-track efficiency, the
ghost fraction and the candidate counts; ``metrics.json`` gets the same as its
block ``real_trackml`` and the ROC ``ghost_real_trackml``. For example::

    hepml evaluate ghost_filter --config config/config.yaml \\
        --data results/data/ghost_filter/shard3.npz $HEPML_TRACKML_DIR/sample/event000000001 \\
        --model results/models/ghost_filter --out results/evaluate/ghost_filter

Empty input: a shard without events or candidates is built into a valid empty
dataset (with a note on stderr); training or evaluating on no candidates, or on
one class only, stops with a one-line error naming the files.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepml.config import from_section, schema_default
from hepml.errors import HepmlError
from hepml.features import sequences as seq
from hepml.io import atomic_output, atomic_write_text, read_tracker_events
from hepml.reco.chain import Reconstruction, event_roads
from hepml.reco.matching import match_tracks
from hepml.reco.roads import Roads
from hepml.reco.seeding import SeedingConfig
from hepml.reco.spacepoints import SpacePoints
from hepml.rng import rng as make_rng
from hepml.rng import torch_seed

MODEL_NAME = "ghost_lstm"
# the baseline's training sample; the GBDT is refit (seeded) where needed, never unpickled
GBDT_FILE = "gbdt_train.npz"
REAL_FILE = "real_trackml.json"
#: fewest candidates of each class for the ROCs of subsets (after the chi2 cut, long ones)
MIN_CLASS_FOR_ROC = 10
_EVENT_NAME = re.compile(r"^event\d{9}$")


def _default(key: str) -> Any:
    return schema_default(f"ghost_filter.{key}")


@dataclass(frozen=True)
class GhostFilterConfig:
    """Task-level settings of ``ghost_filter`` (the finder's are the hit labeller's)."""

    # defaults: the schema's (ghost_filter.*), read when an instance is made, never repeated here
    min_purity: float = dataclasses.field(default_factory=lambda: _default("min_purity"))
    working_point_efficiency: float = dataclasses.field(
        default_factory=lambda: _default("working_point_efficiency")
    )
    reconstructable_min_pt_GeV: float = dataclasses.field(
        default_factory=lambda: _default("reconstructable_min_pt_GeV")
    )
    reconstructable_min_hits: int = dataclasses.field(
        default_factory=lambda: _default("reconstructable_min_hits")
    )
    min_hits: int = dataclasses.field(default_factory=lambda: _default("candidates.min_hits"))
    later_passes: bool = dataclasses.field(
        default_factory=lambda: _default("candidates.later_passes")
    )
    gbdt_max_iter: int = dataclasses.field(
        default_factory=lambda: _default("baselines.gbdt_max_iter")
    )
    gbdt_learning_rate: float = dataclasses.field(
        default_factory=lambda: _default("baselines.gbdt_learning_rate")
    )
    gbdt_max_leaf_nodes: int = dataclasses.field(
        default_factory=lambda: _default("baselines.gbdt_max_leaf_nodes")
    )

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> GhostFilterConfig:
        g = cfg["ghost_filter"]
        return from_section(cls, {**g, **g["candidates"], **g["baselines"]})


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
def event_candidates(
    sp: SpacePoints, reco: Reconstruction, later_passes: bool = True
) -> tuple[Roads, int]:
    """Every road of one event's seeds, before the ``min_picked`` cut and ambiguity
    resolution; ``(roads, n_seeds)``: :func:`hepml.reco.chain.event_roads` with
    ``select=False`` (each later pass seeds the points the earlier passes' kept roads left)."""
    return event_roads(sp, reco, select=False, later_passes=later_passes)


def _particle_truth(particles: pd.DataFrame, pid: np.ndarray, eid: int) -> dict[str, np.ndarray]:
    p_id = particles["particle_id"].to_numpy(np.int64)
    px, py, pz = (particles[c].to_numpy(np.float64) for c in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    uniq, counts = np.unique(pid[pid > 0], return_counts=True)
    n_hits = np.zeros(len(p_id), dtype=np.int64)
    if len(uniq):
        pos = np.minimum(np.searchsorted(uniq, p_id), len(uniq) - 1)
        n_hits = np.where(uniq[pos] == p_id, counts[pos], 0)
    return {
        "particles_event_id": np.full(len(p_id), eid, dtype=np.int64),
        "particles_id": p_id,
        "particles_pt_GeV": pt,
        "particles_eta": np.arcsinh(pz / np.maximum(pt, 1e-12)),
        "particles_n_hits": n_hits.astype(np.int64),
    }


def event_dataset(
    hits: pd.DataFrame,
    particles: pd.DataFrame,
    reco: Reconstruction,
    task: GhostFilterConfig,
    eid: int,
) -> tuple[dict[str, np.ndarray], int]:
    """The dataset arrays (contract of :mod:`hepml.features.sequences`) of ONE event
    (``hits`` of that event, with truth), and its number of seeds."""
    det = reco.detector
    sp = SpacePoints.from_hits(det, hits, source=f"event {eid}")
    pid = hits["particle_id"].to_numpy(np.int64)
    roads, n_seeds = event_candidates(sp, reco, task.later_passes)
    cand = seq.candidates_from_roads(roads, task.min_hits)
    cf = seq.fit_candidates(sp, det, cand)
    feats = seq.candidate_features(sp, det, cand, cf)
    ptr = cand.ptr
    match = match_tracks(
        seq.pad(ptr, pid[cand.hit], fill=0),
        seq.pad(ptr, np.ones(len(cand.hit), dtype=bool), fill=False),
        min_purity=task.min_purity,
    )
    truth = _particle_truth(particles, pid, eid)
    order = np.argsort(truth["particles_id"])
    p_sorted = truth["particles_id"][order]
    pos = np.minimum(np.searchsorted(p_sorted, match.particle_id), max(len(p_sorted) - 1, 0))
    known = (match.particle_id > 0) & (len(p_sorted) > 0)
    if len(p_sorted):
        known &= p_sorted[pos] == match.particle_id
    m_pt = np.where(known, truth["particles_pt_GeV"][order][pos] if len(p_sorted) else 0, np.nan)
    m_eta = np.where(known, truth["particles_eta"][order][pos] if len(p_sorted) else 0, np.nan)
    n = len(cand)
    fit = cf.fit
    hid = hits["hit_id"].to_numpy(np.int64)
    return {
        "hit_features": feats["hit_features"],
        "hit_ids": hid[cand.hit],
        "lengths": cand.lengths,
        "track_features": feats["track_features"],
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
        "events": np.array([eid], dtype=np.int64),
        **truth,
    }, n_seeds


def _no_hit_event(eid: int, particles: pd.DataFrame) -> dict[str, np.ndarray]:
    d = seq.empty_dataset()
    d.update(_particle_truth(particles, np.zeros(0, np.int64), eid))
    d["events"] = np.array([eid], dtype=np.int64)
    return d


def _summary(d: dict[str, np.ndarray]) -> str:
    n = len(d["label"])
    ghosts = int((d["label"] == 0).sum())
    return (
        f"{n} candidates, {ghosts} ghosts ({ghosts / max(n, 1):.1%}), "
        f"{int(d['is_clone'].sum())} duplicates, mean purity {float(np.mean(d['purity'])) if n else 0:.3f}"
    )


def build(cfg: dict[str, Any], inputs: list[Path], out: Path) -> None:
    """Simulated tracker shard(s) ``inputs`` (ROOT) -> one candidate dataset ``out`` (.npz)."""
    reco = Reconstruction.from_config(cfg)
    task = GhostFilterConfig.from_config(cfg)
    hits, particles = read_tracker_events(inputs)
    events = np.union1d(hits["event_id"].to_numpy(), particles["event_id"].to_numpy())
    names = ", ".join(f"'{p}'" for p in inputs)
    if len(events) == 0:
        _note(f"{names} holds no events: writing an empty dataset to '{out}'")
        seq.save_dataset(out, seq.empty_dataset())
        return
    h_ev = hits["event_id"].to_numpy()
    p_ev = particles["event_id"].to_numpy()
    parts = []
    for eid in events:
        h = hits[h_ev == eid].reset_index(drop=True)
        p = particles[p_ev == eid].reset_index(drop=True)
        t0 = time.perf_counter()
        if len(h):
            d, n_seeds = event_dataset(h, p, reco, task, int(eid))
        else:
            d, n_seeds = _no_hit_event(int(eid), p), 0
        _note(
            f"event {eid}: {len(h)} hits, {n_seeds} seeds, {_summary(d)}, {time.perf_counter() - t0:.2f} s"
        )
        parts.append(d)
    data = seq.concat_datasets(parts)
    if len(data["label"]) == 0:
        _note(
            f"{names}: no track candidates in {len(events)} event(s): writing an empty dataset to '{out}'"
        )
    seq.save_dataset(out, data)


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
    val_fraction = float(cfg["workflow"]["val_fraction"])
    train_d, val_d = split_train_val(tensors, val_fraction, seed)
    # the GBDT learns on the same training candidates as the LSTM
    idx = _train_indices(len(d["label"]), val_fraction, seed, train_d)
    with atomic_output(out_dir / GBDT_FILE) as tmp, open(tmp, "wb") as f:
        np.savez(f, track_features=d["track_features"][idx], label=d["label"][idx])

    hparams = model_hparams(cfg)
    model = build_model_seeded(MODEL_NAME, hparams, seed)
    tcfg = TrainerConfig.from_config(cfg, "ghost_filter")
    t0 = time.perf_counter()
    res = fit(model, MODEL_NAME, hparams, train_d, val_d, tcfg, out_dir, seed=seed, loss="bce")
    _note(
        f"lstm: {len(train_d)} training / {len(val_d)} validation candidates "
        f"(longest {tensors.inputs['hits'].shape[1]} hits), {res.epochs} epochs, "
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


def _is_trackml_event(path: Path) -> bool:
    return bool(_EVENT_NAME.match(path.name)) and any(
        (path.parent / f"{path.name}-hits{ext}").is_file() for ext in (".csv", ".csv.gz")
    )


@dataclass
class _Scorers:
    """The trained LSTM and the refit GBDT, and what scoring a dataset needs."""

    model: Any
    gbdt: Any

    def scores(self, d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each method's score (larger: more like a true track) of a dataset's candidates."""
        from hepml.train import predict

        chi2 = np.nan_to_num(d["chi2_ndf"].astype(np.float64), nan=1e9, posinf=1e9)
        return {
            "lstm": predict(self.model, seq.to_tensor_data(d)).astype(np.float64),
            "chi2": -chi2,
            "gbdt": self.gbdt.predict_proba(d["track_features"])[:, 1],
        }


def _load_scorers(cfg: dict[str, Any], model_dir: Path, task: GhostFilterConfig) -> _Scorers:
    from hepml.train import load_model

    gbdt_path = model_dir / GBDT_FILE
    if not gbdt_path.is_file():
        raise HepmlError(f"'{gbdt_path}' does not exist: run 'hepml train ghost_filter' first")
    model, meta = load_model(model_dir / "model.pt")
    if meta["model_name"] != MODEL_NAME:
        raise HepmlError(
            f"'{model_dir / 'model.pt'}' holds a '{meta['model_name']}' model, not '{MODEL_NAME}'"
        )
    if int(meta["hparams"]["n_hit_features"]) != seq.N_HIT_FEATURES:
        raise HepmlError(
            f"'{model_dir / 'model.pt'}' was trained on another ghost-filter contract; retrain it"
        )
    try:
        with open(gbdt_path, "rb") as f, np.load(f, allow_pickle=False) as z:
            base_x, base_y = z["track_features"], z["label"]
    except Exception as exc:
        raise HepmlError(
            f"'{gbdt_path}' is not a readable baseline sample ({type(exc).__name__})"
        ) from None
    if base_x.ndim != 2 or base_x.shape[1] != seq.N_TRACK_FEATURES:
        raise HepmlError(f"'{gbdt_path}' holds other track features; retrain it")
    t0 = time.perf_counter()
    gbdt = train_gbdt(base_x, base_y, task, torch_seed(cfg["seed"], "ghost_filter.train"))
    _note(
        f"gbdt: {len(base_y)} candidates, {gbdt.n_iter_} iterations, {time.perf_counter() - t0:.1f} s"
    )
    return _Scorers(model, gbdt)


def _rejection(block: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for m, entry in block["methods"].items():
        out[m] = {}
        for e in (0.95, 0.99):
            key = next(k for k in entry["bkg_eff_at_sig_eff"] if abs(float(k) - e) < 1e-9)
            b = float(entry["bkg_eff_at_sig_eff"][key])
            lo, hi = entry["bkg_eff_at_sig_eff_ci95"][key]
            out[m][key] = {
                "ghosts_removed": 1.0 - b,
                "ghosts_removed_ci95": [
                    None if hi is None else 1.0 - hi,
                    None if lo is None else 1.0 - lo,
                ],
                "rejection": (1.0 / b) if b > 0 else None,
            }
    return out


def _side_by_side(block: dict[str, Any], y: np.ndarray, d: dict[str, np.ndarray]) -> dict[str, Any]:
    """AUC and ghosts kept at 99% true-track efficiency of each method, and the sample."""
    methods = {}
    for m, e in block["methods"].items():
        key = next(k for k in e["bkg_eff_at_sig_eff"] if abs(float(k) - 0.99) < 1e-9)
        methods[m] = {
            "auc": e["auc"],
            "auc_ci95": e["auc_ci95"],
            "ghosts_kept_at_0.99": e["bkg_eff_at_sig_eff"][key],
            "ghosts_kept_at_0.99_ci95": e["bkg_eff_at_sig_eff_ci95"][key],
        }
    return {
        "events": len(d["events"]),
        "candidates": len(y),
        "ghosts": int((y == 0).sum()),
        "ghost_fraction": float((y == 0).mean()) if len(y) else None,
        "duplicates": int(d["is_clone"].sum()),
        "mean_purity": float(np.mean(d["purity"])) if len(y) else None,
        "methods": methods,
    }


def evaluate(cfg: dict[str, Any], data: list[Path], model_dir: Path, out_dir: Path) -> None:
    """Test shards -> ``metrics.json``, ``roc.png`` and efficiency/ghost-rate plots in ``out_dir``.

    ``data`` holds the test shards' datasets (``.npz``) and optionally TrackML
    events (``DIR/eventNNNNNNNNN``, evaluated by :func:`evaluate_real`);
    simulated ``.root`` files given beside them are not needed (the datasets
    carry the particles' truth for the efficiency denominator) and are ignored.
    Working-point thresholds are chosen on the test candidates themselves, like
    the ROC's efficiencies.
    """
    from hepml.evaluate.roc import EvaluateConfig, plot_rocs, roc_block, write_metrics

    task = GhostFilterConfig.from_config(cfg)
    ev_cfg = EvaluateConfig.from_config(cfg)
    real_events = [Path(p) for p in data if _is_trackml_event(Path(p))]
    d = _datasets(data, "evaluate")
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    scorers = _load_scorers(cfg, model_dir, task)
    y = d["label"].astype(np.int64)
    scores = scorers.scores(d)
    wp = task.working_point_efficiency
    sig_effs = tuple(sorted({*ev_cfg.sig_effs, 0.95, 0.99, wp}))

    def block_of(
        name: str, sel: np.ndarray | None, methods: tuple[str, ...], signal: str, background: str
    ) -> None:
        ys = y if sel is None else y[sel]
        sub = {m: scores[m] if sel is None else scores[m][sel] for m in methods}
        if sel is not None and min(int(ys.sum()), int((ys == 0).sum())) < MIN_CLASS_FOR_ROC:
            _note(
                f"only {int((ys == 0).sum())} ghosts / {int(ys.sum())} true tracks: no '{name}' ROC"
            )
            return
        rocs[name] = roc_block(
            signal,
            background,
            ys,
            sub,
            sig_effs,
            ev_cfg.bootstrap,
            rng=make_rng(cfg["seed"], f"ghost_filter.evaluate.{name}"),
        )
        curves[name] = (ys, sub)

    rocs: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    block_of("ghost", None, ("lstm", "chi2", "gbdt"), "true tracks", "ghosts")
    block = rocs["ghost"]
    # the hard part: what the networks remove among the candidates the chi2 cut keeps
    passed = scores["chi2"] >= _threshold(scores["chi2"], y, wp)
    block_of(
        "ghost_after_chi2",
        passed,
        ("lstm", "gbdt"),
        "true tracks passing the chi2 cut",
        "ghosts passing the chi2 cut",
    )
    # and among the candidates long enough for the roads' own cut (seed + min_picked)
    min_long = 3 + int(cfg["hit_labeller"]["roads"]["min_picked"])
    block_of(
        "ghost_long",
        d["lengths"] >= min_long,
        ("lstm", "chi2", "gbdt"),
        f"true tracks of >= {min_long} hits",
        f"ghosts of >= {min_long} hits",
    )

    n = len(y)
    own = _side_by_side(block, y, d)
    real_block: dict[str, Any] = {}
    for ev in real_events:
        res = evaluate_real(cfg, ev, scorers, task, sig_effs, ev_cfg.bootstrap)
        name = "ghost_real_trackml" if len(real_events) == 1 else f"ghost_real_{ev.name}"
        roc, curve = res.pop("roc"), res.pop("curve")
        if roc is not None:
            rocs[name], curves[name] = roc, curve
        real_block[ev.name] = res

    out_dir.mkdir(parents=True, exist_ok=True)
    plot_rocs(
        out_dir / "roc.png",
        curves,
        rocs,
        title=f"ghost filter: {int(y.sum())} true tracks, {int((y == 0).sum())} ghosts",
    )
    thresholds = {m: _threshold(s, y, wp) for m, s in scores.items()}
    kept = {m: scores[m] >= thresholds[m] for m in scores}
    plots = _wp_plots(out_dir, d, y, kept, wp, task)
    blocks: dict[str, Any] = {}
    if real_events:
        real = {"own_simulation": own, "real_trackml": real_block}
        atomic_write_text(out_dir / REAL_FILE, _json(real))
        blocks["real_trackml"] = real
    write_metrics(
        out_dir / "metrics.json",
        "lstm",
        rocs,
        ghost_fraction=float((y == 0).mean()),
        n_test_candidates=n,
        ghost_rejection=_rejection(block),
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
            "mean_purity": float(d["purity"].mean()),
            "mean_purity_true": float(d["purity"][y == 1].mean()),
            "mean_purity_ghosts": float(d["purity"][y == 0].mean()),
            "mean_length": float(d["lengths"].mean()),
            "candidates_per_event": n / max(len(d["events"]), 1),
        },
        **blocks,
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


def _json(obj: Any) -> str:
    import json

    from hepml.evaluate.roc import to_jsonable

    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n"


def real_event_dataset(
    cfg: dict[str, Any], event: Path, task: GhostFilterConfig | None = None
) -> dict[str, np.ndarray]:
    """The candidate dataset of the TrackML event ``event`` (``DIR/eventNNNNNNNNN``, with truth)."""
    from hepml.io import read_trackml_csv

    task = task if task is not None else GhostFilterConfig.from_config(cfg)
    hits, particles = read_trackml_csv(event.parent, event.name)
    if particles is None:
        raise HepmlError(
            f"TrackML event '{event}' has no truth ({event.name}-truth.csv and -particles.csv): "
            "cannot label its candidates"
        )
    reco = Reconstruction.from_config(cfg)
    over = cfg["ghost_filter"]["real_trackml"]["seeding"]
    if over:
        merged = {**cfg["ghost_filter"]["seeding"], **cfg["hit_labeller"]["seeding"], **over}
        seeding = SeedingConfig.from_section_dict(merged, "ghost_filter.real_trackml.seeding")
        reco = dataclasses.replace(reco, seeding=seeding)
    surf = reco.detector.surface_of(hits["volume_id"].to_numpy(), hits["layer_id"].to_numpy())
    if not (surf >= 0).any():
        raise HepmlError(f"TrackML event '{event}' has no hit on a surface of the detector")
    t0 = time.perf_counter()
    eid = int(hits["event_id"].iloc[0])
    d, n_seeds = event_dataset(hits.reset_index(drop=True), particles, reco, task, eid)
    _note(
        f"{event}: {len(hits)} hits, {n_seeds} seeds, {_summary(d)}, {time.perf_counter() - t0:.2f} s"
    )
    return d


def evaluate_real(
    cfg: dict[str, Any],
    event: Path,
    scorers: _Scorers | Path,
    task: GhostFilterConfig | None = None,
    sig_effs: tuple[float, ...] = (0.9, 0.95, 0.99),
    n_boot: int = 200,
) -> dict[str, Any]:
    """The finder's candidates of a real TrackML event, truth-matched and scored by each method.

    ``scorers`` is a trained model directory (``hepml train ghost_filter``'s
    output) or the loaded scorers. Returns the side-by-side summary (see
    :func:`_side_by_side`) with the ``roc`` block and ``curve`` (labels, scores)
    added. A real event whose candidates hold one class only is an error.
    """
    from hepml.evaluate.roc import roc_block

    task = task if task is not None else GhostFilterConfig.from_config(cfg)
    if isinstance(scorers, Path):
        scorers = _load_scorers(cfg, scorers, task)
    d = real_event_dataset(cfg, event, task)
    y = d["label"].astype(np.int64)
    n_ghost, n_true = int((y == 0).sum()), int(y.sum())
    if min(n_ghost, n_true) < MIN_CLASS_FOR_ROC:
        note = (
            f"{len(y)} candidates, {n_ghost} ghosts: fewer than {MIN_CLASS_FOR_ROC} of a class, "
            "no ROC (open ghost_filter.real_trackml.seeding's windows)"
        )
        _note(f"real TrackML {event.name}: {note}")
        return {
            **_side_by_side({"methods": {}}, y, d),
            "event": event.name,
            "note": note,
            "roc": None,
            "curve": None,
        }
    scores = scorers.scores(d)
    block = roc_block(
        "true tracks (real TrackML)",
        "ghosts (real TrackML)",
        y,
        scores,
        tuple(sorted({*sig_effs, 0.99})),
        n_boot,
        rng=make_rng(cfg["seed"], "ghost_filter.evaluate.real", int(d["events"][0])),
    )
    out = _side_by_side(block, y, d)
    out["event"] = event.name
    out["roc"] = block
    out["curve"] = (y, scores)
    summary = ", ".join(f"{m} AUC {e['auc']:.4f}" for m, e in out["methods"].items())
    _note(f"real TrackML {event.name}: ghost fraction {out['ghost_fraction']:.3f}; {summary}")
    return out


def _wp_plots(
    out_dir: Path,
    d: dict[str, np.ndarray],
    y: np.ndarray,
    kept: dict[str, np.ndarray],
    wp: float,
    task: GhostFilterConfig,
) -> dict[str, str]:
    """Tracking efficiency and ghost rate against pT and eta, before and after each filter."""
    from hepml.evaluate.plots import efficiency_plot

    series = {"no filter": np.ones(len(y), dtype=bool), **kept}
    # particles: reconstructable = pT above threshold and enough hits
    recon = (d["particles_pt_GeV"] >= task.reconstructable_min_pt_GeV) & (
        d["particles_n_hits"] >= task.reconstructable_min_hits
    )
    key_p = d["particles_event_id"][recon] * (1 << 32) + d["particles_id"][recon]
    found = {}
    for m, k in series.items():
        good = k & (y == 1)
        key_t = d["event_id"][good] * (1 << 32) + d["particle_id"][good]
        found[m] = np.isin(key_p, key_t)
    label = f"at {wp:.0%} true-track efficiency"
    pt_bins = np.geomspace(max(task.reconstructable_min_pt_GeV, 0.1), 20.0, 11)
    eta_bins = np.linspace(-4.0, 4.0, 17)
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
        np.geomspace(0.1, 20.0, 11),
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
