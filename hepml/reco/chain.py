"""The whole reconstruction of one event, every volume: space points -> seeds -> roads -> tracks.

1. **Space points** (:mod:`hepml.reco.spacepoints`): each hit with its surface,
   module and resolution; hits on surfaces the detector does not know are left out.
2. **Seeding** (:mod:`hepml.reco.seeding`): triplets on the first surfaces of
   the layer graph in the pixels (barrel and disks).
3. **Roads** (:mod:`hepml.reco.roads`): the seeds' helices propagated through
   the field and every surface, the hits around them, and the road follower.
4. **Later passes** (iterative tracking, as CMS's): the points no track built so
   far holds (the tracks of the kept roads: the labeller's, labelled pass by pass,
   or the road follower's) are seeded again, and the new roads join the earlier
   ones: a softer **second pass**; a **displaced pass**, pixel triplets anywhere
   for detached particles; a **strip pass**, strip triplets for particles born
   beyond the pixels.
5. **Labelling and building** (:mod:`hepml.reco.building`): the hit labeller
   (HitBiGRU) scores every road element, or the road follower's picks stand,
   and building turns them into one track id per hit.
6. **Extension** (:func:`hepml.reco.roads.extend_tracks`): each track's outer
   hits are followed outwards over the points no track holds.

:func:`reconstruct_event` is what ``hepml reconstruct``, the hit labeller's
evaluation and ``benchmarks/reconstruct.py`` run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hepml.detector import Detector, load_detector
from hepml.reco.building import BuildingConfig, Tracks, build_tracks
from hepml.reco.roads import (
    ExtensionConfig,
    RoadConfig,
    Roads,
    build_roads,
    extend_tracks,
    select_roads,
)
from hepml.reco.seeding import SeedingConfig, find_seeds
from hepml.reco.spacepoints import SpacePoints

if TYPE_CHECKING:
    import torch.nn as nn

# a labeller outside torch: (x (B, W, F) float32, lengths (B,) int64) -> logits (B, >= W)
RoadLabeller = Callable[[np.ndarray, np.ndarray], np.ndarray]


def seeding_config(cfg: dict[str, Any]) -> SeedingConfig:
    """The hit labeller's first pass: ``ghost_filter.seeding`` with ``hit_labeller.seeding``'s overrides."""
    merged = {**cfg["ghost_filter"]["seeding"], **cfg["hit_labeller"]["seeding"]}
    return SeedingConfig.from_section_dict(merged, "hit_labeller.seeding")


def _later_pass(cfg: dict[str, Any], key: str) -> SeedingConfig | None:
    over = cfg["hit_labeller"][key]
    if not over:
        return None
    merged = {**cfg["ghost_filter"]["seeding"], **cfg["hit_labeller"]["seeding"], **over}
    return SeedingConfig.from_section_dict(merged, f"hit_labeller.{key}")


def second_pass_config(cfg: dict[str, Any]) -> SeedingConfig | None:
    """The second pass: the first pass's seeding with ``hit_labeller.second_pass``'s
    overrides; None when that section is empty."""
    return _later_pass(cfg, "second_pass")


def displaced_pass_config(cfg: dict[str, Any]) -> SeedingConfig | None:
    """The detached-tracks pass: the first pass's seeding with ``hit_labeller.displaced_pass``'s
    overrides; None when that section is empty."""
    return _later_pass(cfg, "displaced_pass")


def strip_pass_config(cfg: dict[str, Any]) -> SeedingConfig | None:
    """The strip-seeded pass: the first pass's seeding with ``hit_labeller.strip_pass``'s
    overrides; None when that section is empty."""
    return _later_pass(cfg, "strip_pass")


@dataclass(frozen=True)
class Reconstruction:
    """Everything :func:`reconstruct_event` needs besides the hits and the model."""

    detector: Detector
    seeding: SeedingConfig
    roads: RoadConfig
    building: BuildingConfig
    extension: ExtensionConfig
    second_pass: SeedingConfig | None = None
    displaced_pass: SeedingConfig | None = None
    strip_pass: SeedingConfig | None = None

    @property
    def later_passes(self) -> tuple[SeedingConfig, ...]:
        """The passes after the first, in order (each seeds the points the earlier ones left)."""
        return tuple(
            p for p in (self.second_pass, self.displaced_pass, self.strip_pass) if p is not None
        )

    @classmethod
    def from_config(cls, cfg: dict[str, Any], detector: Detector | None = None) -> Reconstruction:
        return cls(
            detector=detector if detector is not None else load_detector(cfg),
            seeding=seeding_config(cfg),
            roads=RoadConfig.from_config(cfg),
            building=BuildingConfig.from_config(cfg),
            extension=ExtensionConfig.from_config(cfg),
            second_pass=second_pass_config(cfg),
            displaced_pass=displaced_pass_config(cfg),
            strip_pass=strip_pass_config(cfg),
        )


def event_roads(
    sp: SpacePoints,
    reco: Reconstruction,
    particle_id: np.ndarray | None = None,
    select: bool = True,
    later_passes: bool = True,
    labeller: nn.Module | RoadLabeller | None = None,
    timing: dict[str, float] | None = None,
) -> tuple[Roads, int]:
    """Seeds and roads of one event's space points (every pass); ``(roads, n_seeds)``.

    ``particle_id`` (n,) labels the roads (truth); None for real data without it.
    Each later pass (``reco.later_passes``, unless ``later_passes`` is False) seeds the
    points that no track built so far holds: the tracks of the roads the earlier passes'
    selection (:func:`hepml.reco.roads.select_roads`) kept; with
    ``roads.free_below_hits``, also the points of those tracks with fewer hits. A point a
    kept road picked but no track took (a fake road's, or one a duplicate lost) is free
    again: on two default-config events that lifts the efficiency above 1 GeV for
    secondaries born 30-200 mm from the beam line from 62 to 69 of 91 and the road
    follower's TrackML score by 0.001-0.003, for ~0.3 s more an event (more detached
    seeds).

    The tracks so far are the road follower's (:func:`follower_tracks`), or with a
    ``labeller`` the labeller's (:func:`labeller_tracks`): each pass's kept roads are
    labelled as they come (``roads.logits``: every road labelled once), and a later pass
    sees the points the follower's fake tracks held but the labeller left free. On two
    default-config events the Bi-GRU's own TrackML score rose by 0.008-0.010 with it (soft
    primaries whose pixel hits a fake follower track had taken got seeds), for ~0.02 s more
    per full-density event. The labeller's seconds go to ``timing["network"]``.
    ``select`` False returns every road, before that selection (the ghost filter's
    candidates; no labeller).
    """
    if labeller is not None and not select:
        raise ValueError("event_roads labels only the selected roads (select=True)")
    det = reco.detector
    seeds = find_seeds(sp, det, reco.seeding)
    every = [build_roads(sp, det, seeds, reco.roads, particle_id, select=False)]
    kept = [select_roads(every[0], reco.roads)]
    if labeller is not None:
        _label_kept(labeller, kept[-1], timing)
    n_seeds = len(seeds)
    for later in reco.later_passes if later_passes else ():
        so_far = Roads.concat(kept)
        if labeller is None:
            built = follower_tracks(so_far, len(sp), reco.building)
        else:
            assert so_far.logits is not None
            built = labeller_tracks(so_far, so_far.logits, len(sp), reco.building)
        free = (sp.surface >= 0) & (
            _track_size(built.track_id) < max(reco.roads.free_below_hits, 1)
        )
        more_seeds = find_seeds(sp, det, later, allowed=free)
        every.append(
            build_roads(
                sp,
                det,
                more_seeds,
                reco.roads,
                particle_id,
                select=False,
                backoff_mm=later.road_start_mm,
            )
        )
        kept.append(select_roads(every[-1], reco.roads))
        if labeller is not None:
            _label_kept(labeller, kept[-1], timing)
        n_seeds += len(more_seeds)
    return Roads.concat(kept if select else every), n_seeds


def _label_kept(
    labeller: nn.Module | RoadLabeller, roads: Roads, timing: dict[str, float] | None
) -> None:
    """Set ``roads.logits`` (the labeller's); the seconds go to ``timing["network"]``."""
    t0 = time.perf_counter()
    roads.logits = label_roads(labeller, roads.road_ptr, roads.features)
    if timing is not None:
        timing["network"] = timing.get("network", 0.0) + time.perf_counter() - t0


def _track_size(track_id: np.ndarray) -> np.ndarray:
    """The number of hits of each point's track, 0 for points in no track, (n,)."""
    size = np.bincount(track_id, minlength=1)
    size[0] = 0
    return size[track_id]


def label_roads(
    model: nn.Module | RoadLabeller,
    road_ptr: np.ndarray,
    features: np.ndarray,
    batch_size: int = 512,
    threads: int = 1,
) -> np.ndarray:
    """The labeller's logit for every road element, flat (M,) float32.

    Roads are sorted by length and run in batches (eval mode, no grad), so that
    padding stays small; the model packs each batch. Batches of 512 keep a batch's
    activations in the CPU's cache: the real full-density event's 10,599 roads take
    0.21 s against 0.23 s in batches of 256 and 0.26 s in batches of 1024 (the same
    logits). ``threads`` torch CPU threads during the call (0 keeps torch's setting).
    ``model`` may also be a :data:`RoadLabeller` outside torch
    (:class:`hepml.export.OnnxLabeller`).
    """
    import torch

    road_ptr = np.asarray(road_ptr, dtype=np.int64)
    lengths = np.diff(road_ptr)
    out = np.zeros(len(features), dtype=np.float32)
    if len(lengths) == 0:
        return out
    order = np.argsort(-lengths, kind="stable")
    if not isinstance(model, torch.nn.Module):  # numpy in, numpy out (onnxruntime)
        for start in range(0, len(order), batch_size):
            x, ln, src, valid = _road_batch(
                road_ptr, lengths, features, order[start : start + batch_size]
            )
            out[src[valid]] = np.asarray(model(x, ln))[:, : x.shape[1]][valid]
        return out
    device = next(model.parameters()).device
    model.eval()
    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                x, ln, src, valid = _road_batch(
                    road_ptr, lengths, features, order[start : start + batch_size]
                )
                logits = model(x=torch.from_numpy(x).to(device), lengths=torch.from_numpy(ln))
                out[src[valid]] = logits.float().cpu().numpy()[valid]
    finally:
        torch.set_num_threads(before)
    return out


def _road_batch(
    road_ptr: np.ndarray, lengths: np.ndarray, features: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Roads ``idx`` zero-padded: ``x`` (B, W, F), lengths (B,), flat element index (B, W), valid (B, W)."""
    ln = lengths[idx]
    width = int(ln.max())
    pos = np.arange(width)[None, :]
    src = road_ptr[idx][:, None] + pos
    valid = pos < ln[:, None]
    x = np.zeros((len(idx), width, features.shape[1]), dtype=np.float32)
    x[valid] = features[src[valid]]
    return x, ln, src, valid


def follower_tracks(roads: Roads, n_points: int, cfg: BuildingConfig) -> Tracks:
    """The road follower's tracks: its picks, built like the labeller's (score 1 / (1 + chi2))."""
    score = 1.0 / (1.0 - np.minimum(roads.follower_score, 0.0))
    return build_tracks(roads.road_ptr, roads.hit, roads.slot, score, roads.picked, n_points, cfg)


def labeller_tracks(roads: Roads, logits: np.ndarray, n_points: int, cfg: BuildingConfig) -> Tracks:
    """The labeller's tracks: road elements with probability above ``cfg.threshold``."""
    prob = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return build_tracks(
        roads.road_ptr, roads.hit, roads.slot, prob, prob > cfg.threshold, n_points, cfg
    )


def extended(tracks: Tracks, sp: SpacePoints, reco: Reconstruction) -> Tracks:
    """``tracks`` grown outwards over the points no track holds (``reco.extension``:
    :func:`hepml.reco.roads.extend_tracks`); the final tracks of either method."""
    tid = extend_tracks(sp, reco.detector, tracks.track_id, reco.roads, reco.extension)
    return Tracks(tid, tracks.confidence, tracks.n_merged)


def reconstruct_event(
    hits: pd.DataFrame,
    reco: Reconstruction,
    model: nn.Module | RoadLabeller | None,
    timing: dict[str, float] | None = None,
) -> np.ndarray:
    """``track_id`` (n,) int64 of every row of ``hits`` (one event); 0 = in no track.

    ``model`` None runs the road follower instead of the labeller (also for the later
    passes' free points: :func:`event_roads`). ``timing``
    (optional) receives the seconds spent in ``roads`` (space points and seeding
    included), ``network`` and ``building`` (the track extension included).
    """
    t0 = time.perf_counter()
    sp = SpacePoints.from_hits(reco.detector, hits)
    net: dict[str, float] = {}
    roads, _ = event_roads(sp, reco, labeller=model, timing=net)
    t1 = time.perf_counter()
    if model is None:
        tracks = follower_tracks(roads, len(sp), reco.building)
    else:
        assert roads.logits is not None
        tracks = labeller_tracks(roads, roads.logits, len(sp), reco.building)
    tracks = extended(tracks, sp, reco)
    t2 = time.perf_counter()
    if timing is not None:
        t_net = net.get("network", 0.0)
        timing["roads"] = timing.get("roads", 0.0) + t1 - t0 - t_net
        timing["network"] = timing.get("network", 0.0) + t_net
        timing["building"] = timing.get("building", 0.0) + t2 - t1
    return tracks.track_id.astype(np.int64)
