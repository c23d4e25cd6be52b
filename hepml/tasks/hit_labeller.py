"""The hit-labeller task: roads around seeds -> HitBiGRU hit labels -> tracks of whole events.

* :func:`build`: a simulated tracker shard (ROOT) -> the roads of every event
  (:func:`hepml.reco.chain.event_roads`: seeding on the pixel surfaces, roads
  through every volume, the road follower), with per-hit features and labels in
  the contract of :mod:`hepml.features.roads` (``.npz``).
* :func:`train`: the training shards -> ``model.pt`` (HitBiGRU through
  :func:`hepml.train.fit`, per-element BCE with a padding mask).
* :func:`evaluate`: the test shards' roads (``.npz``) and simulated events
  (``.root``, for the truth) -> ``metrics.json`` (ROC ``hit`` with methods
  ``bigru`` and ``road_follower`` (score: -chi2 to the follower's prediction);
  block ``tracking`` with the TrackML score, efficiency, fake and duplicate rate
  of both methods after the same track building; efficiency per |eta| bin;
  per-event scores), ``roc.png``, and efficiency / fake-rate / duplicate-rate
  plots against pT and eta and the TrackML score per event.

The reconstruction chain itself lives in :mod:`hepml.reco.chain`; this module is
glue.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from hepml.errors import HepmlError
from hepml.features.roads import N_FEATURES, load_datasets, pad_roads, save_dataset
from hepml.io import atomic_output, check_same_events, read_tracker_events
from hepml.reco.chain import (
    Reconstruction,
    event_roads,
    extended,
    follower_tracks,
    label_roads,
    reconstruct_event,
)
from hepml.reco.roads import Roads
from hepml.reco.spacepoints import SpacePoints

MODEL_NAME = "hit_bigru"
TASK = "hit_labeller"


def _note(msg: str) -> None:
    print(f"{TASK}: {msg}", file=sys.stderr)


def model_hparams(cfg: dict[str, Any]) -> dict[str, Any]:
    """HitBiGRU constructor arguments: the feature count from the data contract, the rest from ``hit_labeller.model``."""
    m = cfg[TASK]["model"]
    return {
        "n_features": N_FEATURES,
        "hidden": int(m["hidden"]),
        "num_layers": int(m["num_layers"]),
        "dropout": float(m["dropout"]),
    }


# --------------------------------------------------------------------------- build
def build(cfg: dict[str, Any], inputs: list[Path], out: Path) -> None:
    """Roads (features, labels) of every event of the simulated shards ``inputs`` -> ``out`` (.npz)."""
    reco = Reconstruction.from_config(cfg)
    hits, _ = read_tracker_events(inputs)
    event_ids = (
        np.unique(hits["event_id"].to_numpy(np.int64)) if len(hits) else np.zeros(0, np.int64)
    )
    keys = (
        "features",
        "label",
        "hit_id",
        "slot",
        "picked",
        "follower_score",
        "road_event",
        "seed_particle",
    )
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    lengths: list[np.ndarray] = []
    n_seeds = []
    t0 = time.perf_counter()
    for eid, h in hits.groupby("event_id", sort=True):
        h = h.reset_index(drop=True)
        sp = SpacePoints.from_hits(reco.detector, h, source=f"event {eid}")
        roads, ns = event_roads(sp, reco, h["particle_id"].to_numpy(np.int64))
        assert roads.label is not None and roads.seed_particle is not None
        n_seeds.append(ns)
        hid = h["hit_id"].to_numpy(np.int64)
        chunks["features"].append(roads.features)
        chunks["label"].append(roads.label)
        chunks["hit_id"].append(hid[roads.hit])
        chunks["slot"].append(roads.slot)
        chunks["picked"].append(roads.picked)
        chunks["follower_score"].append(roads.follower_score)
        chunks["road_event"].append(np.full(len(roads), int(eid), dtype=np.int64))
        chunks["seed_particle"].append(roads.seed_particle)
        lengths.append(roads.lengths)
        _note(
            f"event {eid}: {len(h)} hits, {ns} seeds, {len(roads)} roads, {len(roads.hit)} road hits ({roads.label.mean() if len(roads.label) else 0:.3f} labelled)"
        )
    if len(event_ids) == 0:
        _note(f"'{inputs[0]}' holds no hits: writing an empty dataset")
    empty = Roads.empty(truth=True)
    empties: dict[str, np.ndarray] = {
        "features": empty.features,
        "label": np.zeros(0, np.int8),
        "hit_id": np.zeros(0, np.int64),
        "slot": np.zeros(0, np.int64),
        "picked": np.zeros(0, bool),
        "follower_score": np.zeros(0, np.float32),
        "road_event": np.zeros(0, np.int64),
        "seed_particle": np.zeros(0, np.int64),
    }
    arrays: dict[str, np.ndarray] = {
        k: np.concatenate(v) if v else empties[k] for k, v in chunks.items()
    }
    ln = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    arrays["road_ptr"] = np.concatenate([[0], np.cumsum(ln)]).astype(np.int64)
    arrays["event_ids"] = event_ids
    arrays["event_n_seeds"] = np.asarray(n_seeds, dtype=np.int64)
    save_dataset(out, arrays)
    _note(
        f"{len(event_ids)} events -> {len(ln)} roads in {time.perf_counter() - t0:.1f} s -> {out}"
    )


# --------------------------------------------------------------------------- train
def tensor_data(d: dict[str, np.ndarray], roads: np.ndarray | None = None) -> Any:
    """:class:`hepml.train.TensorData` of the roads ``roads`` (all by default): x (N, L, F), lengths, target, mask."""
    from hepml.train import TensorData

    ptr = d["road_ptr"]
    if roads is not None:
        starts, ends = ptr[roads], ptr[roads + 1]
        ln = ends - starts
        idx = np.repeat(starts - np.concatenate([[0], np.cumsum(ln)[:-1]]), ln) + np.arange(
            int(ln.sum())
        )
        ptr = np.concatenate([[0], np.cumsum(ln)]).astype(np.int64)
        feats, label = d["features"][idx], d["label"][idx]
    else:
        feats, label = d["features"], d["label"]
    lengths = np.diff(ptr)
    x = pad_roads(ptr, feats)
    target = pad_roads(ptr, label.astype(np.float32))
    mask = pad_roads(ptr, np.ones(len(label), dtype=bool), fill=False)
    return TensorData(
        inputs={"x": torch.from_numpy(x), "lengths": torch.from_numpy(lengths.astype(np.int64))},
        target=torch.from_numpy(target),
        mask=torch.from_numpy(mask),
    )


def train(cfg: dict[str, Any], data: list[Path], out_dir: Path) -> None:
    """Train the HitBiGRU on the training shards' roads -> ``out_dir/model.pt``."""
    from hepml.rng import rng as make_rng
    from hepml.rng import torch_seed
    from hepml.train import TrainerConfig, build_model_seeded, fit, split_train_val

    d = load_datasets(data)
    n_roads = len(d["road_ptr"]) - 1
    if n_roads < 2 or d["label"].min(initial=1) == d["label"].max(initial=0):
        raise HepmlError(
            f"too few roads ({n_roads}) or a single label class in {', '.join(str(p) for p in data)}"
        )
    cap = int(cfg[TASK]["max_train_roads"])
    roads = None
    if n_roads > cap:
        roads = np.sort(
            make_rng(cfg["seed"], "hit_labeller-train-subset").choice(n_roads, cap, replace=False)
        )
        _note(f"training on {cap} of {n_roads} roads (hit_labeller.max_train_roads)")
    td = tensor_data(d, roads)
    seed = torch_seed(cfg["seed"], "hit_labeller.train")
    tr, va = split_train_val(td, float(cfg["workflow"]["val_fraction"]), seed)
    hp = model_hparams(cfg)
    model = build_model_seeded(MODEL_NAME, hp, seed)
    tcfg = TrainerConfig.from_config(cfg, TASK)
    t0 = time.perf_counter()
    res = fit(model, MODEL_NAME, hp, tr, va, tcfg, Path(out_dir), seed, loss="bce")
    _note(
        f"trained on {len(tr)} roads ({int(tr.target.numel() if tr.mask is None else tr.mask.sum())} hits), validated on {len(va)}: best val loss {res.best_val_loss:.4f} after {res.epochs} epochs, {time.perf_counter() - t0:.0f} s"
    )


# --------------------------------------------------------------------------- evaluate
def _track_params(sp: SpacePoints, det: Any, track_id: np.ndarray) -> pd.DataFrame:
    """pT (GeV) and eta of every track (> 0) from a helix fit of its hits (resolution-weighted)."""
    from hepml.reco.fit import fit_helix

    sel = np.flatnonzero(track_id > 0)
    if len(sel) == 0:
        return pd.DataFrame(
            {"track_id": np.zeros(0, np.int64), "pt": np.zeros(0), "eta": np.zeros(0)}
        )
    t = track_id[sel]
    ids, ti, counts = np.unique(t, return_inverse=True, return_counts=True)
    order = np.argsort(ti, kind="stable")
    pos = np.arange(len(sel)) - np.repeat(np.cumsum(counts) - counts, counts)
    width = int(counts.max())
    rows = np.full((len(ids), width), -1, dtype=np.int64)
    rows[ti[order], pos] = sel[order]
    mask = rows >= 0
    h = np.where(mask, rows, 0)
    sz = np.where(sp.disk[h], 4.0 * sp.sigma_l[h], sp.sigma_l[h])
    bz = det.field.bz_axis(np.where(mask, sp.z[h], 0.0).mean(axis=1))
    f = fit_helix(sp.x[h], sp.y[h], sp.z[h], mask, bz, sp.sigma_t[h], sz)
    return pd.DataFrame({"track_id": ids, "pt": f.pt_GeV, "eta": f.eta})


def evaluate(cfg: dict[str, Any], data: list[Path], model_dir: Path, out_dir: Path) -> None:
    """Hit ROC and whole-event tracking of the labeller and the road follower on the test shards."""
    from hepml.evaluate.roc import EvaluateConfig, plot_rocs, roc_block, write_metrics
    from hepml.evaluate.trackml import (
        efficiency_by_abs_eta,
        hit_weights,
        tracking_efficiency,
        trackml_score,
    )
    from hepml.rng import rng as make_rng
    from hepml.train import load_model

    npz = [Path(p) for p in data if Path(p).suffix == ".npz"]
    roots = [Path(p) for p in data if Path(p).suffix == ".root"]
    if not npz or not roots:
        raise HepmlError(
            "hit_labeller evaluation needs the test shards' roads (.npz) and their simulated events (.root)"
        )
    reco = Reconstruction.from_config(cfg)
    ev_cfg = EvaluateConfig.from_config(cfg)
    out_dir = Path(out_dir)
    model, _ = load_model(Path(model_dir) / "model.pt")
    d = load_datasets(npz)
    hits, particles = read_tracker_events(roots)
    # the roads must have been built from these simulated events (not another shard's)
    check_same_events(
        d["event_ids"],
        ", ".join(map(str, npz)),
        hits["event_id"].to_numpy(),
        ", ".join(map(str, roots)),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    label = d["label"].astype(bool)
    if not label.any() or label.all():
        raise HepmlError(f"the test roads of {', '.join(map(str, npz))} hold a single label class")
    t0 = time.perf_counter()
    logits = label_roads(model, d["road_ptr"], d["features"])
    t_net = time.perf_counter() - t0

    rng = make_rng(cfg["seed"], "hit_labeller-evaluate")
    scores = {"bigru": logits, "road_follower": d["follower_score"]}
    rocs = {
        "hit": roc_block(
            "hits of the seed's particle",
            "other hits in the road",
            label,
            scores,
            sig_effs=ev_cfg.sig_effs,
            n_boot=ev_cfg.bootstrap,
            rng=rng,
        )
    }
    plot_rocs(
        out_dir / "roc.png",
        {"hit": (label, scores)},
        rocs,
        title="hit labeller: road hits (test events)",
    )

    # whole events: both methods built into tracks, scored against the truth
    hits = hits.reset_index(drop=True)
    hits["weight"] = hit_weights(hits, particles)
    road_event = d["road_event"]
    elem_event = np.repeat(road_event, np.diff(d["road_ptr"]))
    subs: dict[str, list[pd.DataFrame]] = {"bigru": [], "road_follower": []}
    params: dict[str, list[pd.DataFrame]] = {"bigru": [], "road_follower": []}
    per_event: dict[str, dict[str, float]] = {"bigru": {}, "road_follower": {}}
    t_build = 0.0
    for eid, h in hits.groupby("event_id", sort=True):
        h = h.reset_index(drop=True)
        sp = SpacePoints.from_hits(reco.detector, h, source=f"event {eid}")
        hid = h["hit_id"].to_numpy(np.int64)
        order = np.argsort(hid)
        r_sel = np.flatnonzero(road_event == eid)
        if len(r_sel):
            e0, e1 = d["road_ptr"][r_sel[0]], d["road_ptr"][r_sel[-1] + 1]
        else:
            e0 = e1 = 0
        ptr = d["road_ptr"][r_sel[0] : r_sel[-1] + 2] - e0 if len(r_sel) else np.zeros(1, np.int64)
        assert (elem_event[e0:e1] == eid).all()
        pos = np.searchsorted(hid[order], d["hit_id"][e0:e1])
        if len(pos) and (
            pos.max() >= len(hid) or not np.array_equal(hid[order][pos], d["hit_id"][e0:e1])
        ):
            raise HepmlError(
                f"event {eid}: the roads of {', '.join(map(str, npz))} name hits absent from {', '.join(map(str, roots))}; rebuild them"
            )
        roads = Roads(
            road_ptr=ptr,
            seed_hits=np.zeros((len(ptr) - 1, 3), np.int64),
            hit=order[pos],
            surface=np.zeros(e1 - e0, np.int32),
            slot=d["slot"][e0:e1],
            s=np.zeros(e1 - e0),
            features=d["features"][e0:e1],
            picked=d["picked"][e0:e1],
            follower_score=d["follower_score"][e0:e1],
            is_seed=np.zeros(e1 - e0, bool),
        )
        # the Bi-GRU's whole chain as `hepml reconstruct` runs it: its tracks free the later
        # passes' points (event_roads), so its roads differ from the dataset's after pass one
        chain: dict[str, float] = {}
        t1 = time.perf_counter()
        track_ids = {
            "bigru": reconstruct_event(h, reco, model, chain),
            "road_follower": extended(
                follower_tracks(roads, len(h), reco.building), sp, reco
            ).track_id,
        }
        t_build += time.perf_counter() - t1 - chain["roads"] - chain["network"]
        for m, tid in track_ids.items():
            keep = tid > 0
            sub = pd.DataFrame(
                {
                    "event_id": int(eid),
                    "hit_id": hid[keep],
                    "track_id": tid[keep],
                }
            )
            subs[m].append(sub)
            per_event[m][str(eid)] = trackml_score(
                h[["hit_id", "particle_id", "weight"]], sub[["hit_id", "track_id"]]
            )
            tp = _track_params(sp, reco.detector, tid)
            tp.insert(0, "event_id", int(eid))
            params[m].append(tp)

    h_cfg = cfg[TASK]
    tracking: dict[str, Any] = {}
    eff_eta: dict[str, Any] = {}
    results = {}
    for m in subs:
        sub = pd.concat(subs[m], ignore_index=True)
        res = tracking_efficiency(
            hits,
            particles,
            sub,
            min_pt_gev=float(h_cfg["efficiency_min_pt_GeV"]),
            min_hits=int(h_cfg["efficiency_min_hits"]),
            min_track_hits=int(reco.building.min_hits),
        )
        results[m] = res
        tracking[m] = {
            "trackml_score": trackml_score(
                hits[["event_id", "hit_id", "particle_id", "weight"]], sub
            ),
            **res.summary(),
        }
        eff_eta[m] = {k: v["efficiency"] for k, v in efficiency_by_abs_eta(res).items()}
        _note(
            f"{m}: TrackML score {tracking[m]['trackml_score']:.4f}, efficiency {res.efficiency:.4f}, fake rate {res.fake_rate:.4f}, duplicate rate {res.duplicate_rate:.4f}"
        )

    plots = _tracking_plots(
        out_dir,
        results,
        {m: pd.concat(v, ignore_index=True) for m, v in params.items()},
        per_event,
        h_cfg,
    )
    n_events = len(per_event["bigru"])
    write_metrics(
        out_dir / "metrics.json",
        "bigru",
        rocs,
        tracking=tracking,
        efficiency_by_abs_eta=eff_eta,
        trackml_score_per_event=per_event,
        test_sample={
            "events": n_events,
            "roads": int(len(d["road_ptr"]) - 1),
            "road_hits": int(len(label)),
            "label_fraction": float(label.mean()),
            "seeds_per_event": float(d["event_n_seeds"].mean()) if len(d["event_n_seeds"]) else 0.0,
        },
        timing_s_per_event={
            "network": t_net / max(n_events, 1),
            "building_both_methods": t_build / max(n_events, 1),
        },
        plots={"roc.png": "Road-hit ROC: the Bi-GRU against the road follower's chi2", **plots},
    )
    _note(f"wrote {out_dir / 'metrics.json'}")


def _tracking_plots(
    out_dir: Path,
    results: dict[str, Any],
    params: dict[str, pd.DataFrame],
    per_event: dict[str, dict[str, float]],
    h_cfg: dict[str, Any],
) -> dict[str, str]:
    from hepml.evaluate.plots import efficiency_plot

    pt_bins = np.array([0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0])
    eta_bins = np.linspace(-4.0, 4.0, 17)
    min_hits = int(h_cfg["efficiency_min_hits"])
    min_pt = float(h_cfg["efficiency_min_pt_GeV"])
    plots = {}
    # efficiency: against pT for every particle with enough hits, against eta above min_pt
    parts = {m: r.particles for m, r in results.items()}
    enough = {m: (p["nhits"] >= min_hits).to_numpy() for m, p in parts.items()}
    efficiency_plot(
        out_dir / "efficiency_pt.png",
        {m: p["pt"].to_numpy()[enough[m]] for m, p in parts.items()},
        {m: p["found"].to_numpy()[enough[m]] for m, p in parts.items()},
        pt_bins,
        "particle pT [GeV]",
        "tracking efficiency",
        title=f"particles with >= {min_hits} hits",
        logx=True,
    )
    plots["efficiency_pt.png"] = (
        f"Tracking efficiency against particle pT (particles with >= {min_hits} hits; double majority)"
    )
    rec = {m: p["reconstructable"].to_numpy() for m, p in parts.items()}
    efficiency_plot(
        out_dir / "efficiency_eta.png",
        {m: p["eta"].to_numpy()[rec[m]] for m, p in parts.items()},
        {m: p["found"].to_numpy()[rec[m]] for m, p in parts.items()},
        eta_bins,
        "particle eta",
        "tracking efficiency",
        title=f"pT > {min_pt} GeV, >= {min_hits} hits",
    )
    plots["efficiency_eta.png"] = f"Tracking efficiency against particle eta (pT > {min_pt} GeV)"
    # fake and duplicate rates against the fitted pT and eta of each method's own tracks
    tracks = {}
    for m, r in results.items():
        t = r.tracks
        keys = ["event_id", "track_id"] if "event_id" in t else ["track_id"]
        tracks[m] = t.drop(columns=["pt", "eta"]).merge(params[m], on=keys, how="left")
    for what, flag, caption, sel in (
        (
            "fake_rate",
            "fake",
            "Fake rate (majority particle holds <= 50% of the track's hits)",
            None,
        ),
        (
            "duplicate_rate",
            "duplicate",
            "Duplicate rate (extra tracks matched to an already matched particle)",
            "matched",
        ),
    ):
        for var, bins, label, logx in (
            ("pt", pt_bins, "track pT (helix fit) [GeV]", True),
            ("eta", eta_bins, "track eta (helix fit)", False),
        ):
            xs, ok = {}, {}
            for m, t in tracks.items():
                tt = t[t[sel]] if sel else t
                xs[m] = tt[var].to_numpy(np.float64)
                ok[m] = tt[flag].to_numpy(bool)
            name = f"{what}_{var}.png"
            efficiency_plot(
                out_dir / name, xs, ok, bins, label, what.replace("_", " "), logx=logx, ylim=None
            )
            plots[name] = f"{caption} against {label}"
    _plot_event_scores(out_dir / "trackml_score_events.png", per_event)
    plots["trackml_score_events.png"] = (
        "TrackML score of every test event, Bi-GRU and road follower"
    )
    return plots


def _plot_event_scores(path: Path, per_event: dict[str, dict[str, float]]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    methods = list(per_event)
    events = sorted(per_event[methods[0]], key=int)
    xs = np.arange(len(events))
    width = 0.8 / max(len(methods), 1)
    for i, m in enumerate(methods):
        vals = [per_event[m][e] for e in events]
        ax.bar(
            xs + (i - (len(methods) - 1) / 2) * width,
            vals,
            width,
            label=f"{m} (mean {np.mean(vals):.3f})",
        )
    ax.set_xticks(xs, events, rotation=45 if len(events) > 8 else 0)
    ax.set_xlabel("test event")
    ax.set_ylabel("TrackML score")
    ax.set_ylim(0, 1.05)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
