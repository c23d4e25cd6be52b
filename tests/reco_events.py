"""Events and truth bookkeeping shared by the reconstruction tests (fixtures in conftest.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepml.detector import Detector
from hepml.reco.seeding import Seeds
from hepml.reco.spacepoints import SpacePoints

ROOT = Path(__file__).resolve().parents[1]
TRACKML_DIR = Path(os.environ.get("HEPML_TRACKML_DIR", ROOT.parent / "shared" / "trackml"))
SAMPLE = TRACKML_DIR / "sample"
EVENT = "event000000001"
DETECTORS = TRACKML_DIR / "detectors.csv.gz"
#: the pixel volumes (where seeding looks)
PIXELS = (7, 8, 9)


def have_trackml_sample() -> bool:
    return (SAMPLE / f"{EVENT}-truth.csv.gz").is_file() and DETECTORS.is_file()


SKIP_REASON = (
    f"the real TrackML sample ({SAMPLE}/{EVENT}-*) or detectors.csv.gz is not in {TRACKML_DIR} "
    "(set HEPML_TRACKML_DIR to the folder holding sample/ and detectors.csv.gz)"
)


@dataclass
class RecoEvent:
    """One event with truth: the config, detector, hits, particles and space points.

    Per particle row (aligned with ``particles``): ``pt``, ``eta``, ``primary``
    (vertex within 1 mm of the beam line: the seeding's d0 acceptance).
    """

    cfg: dict[str, Any]
    det: Detector
    hits: pd.DataFrame
    particles: pd.DataFrame
    sp: SpacePoints = field(init=False)
    pid: np.ndarray = field(init=False)
    pt: np.ndarray = field(init=False)
    eta: np.ndarray = field(init=False)
    primary: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.sp = SpacePoints.from_hits(self.det, self.hits)
        self.pid = self.hits["particle_id"].to_numpy(np.int64)
        p = self.particles
        self.pt = np.hypot(p["px"], p["py"]).to_numpy(np.float64)
        self.eta = np.arcsinh(p["pz"].to_numpy(np.float64) / self.pt)
        self.primary = np.hypot(p["vx"], p["vy"]).to_numpy(np.float64) < 1.0

    @property
    def ids(self) -> np.ndarray:
        return self.particles["particle_id"].to_numpy(np.int64)

    def pt_of(self, pid: np.ndarray) -> np.ndarray:
        """pT (GeV) of particle ids (0 for noise and unknown ids)."""
        ids = self.ids
        order = np.argsort(ids)
        pos = np.clip(np.searchsorted(ids[order], pid), 0, len(ids) - 1)
        hit = ids[order][pos] == pid
        return np.where(hit, self.pt[order][pos], 0.0)

    def primary_ids(self) -> set[int]:
        return set(self.ids[self.primary].tolist())

    def surfaces_per_particle(self, volumes: tuple[int, ...] | None = None) -> pd.Series:
        """Distinct surfaces each particle has hits on (in ``volumes``, if given)."""
        sel = (self.pid > 0) & (self.sp.surface >= 0)
        if volumes is not None:
            sel &= np.isin(self.hits["volume_id"].to_numpy(), volumes)
        df = pd.DataFrame({"p": self.pid[sel], "s": self.sp.surface[sel]}).drop_duplicates()
        return df.groupby("p").size()

    def seedable(self, min_pt: float) -> np.ndarray:
        """Primaries above ``min_pt`` with hits on >= 3 pixel surfaces (particle ids)."""
        n = self.surfaces_per_particle(PIXELS)
        ids = self.ids
        ok = self.primary & (self.pt > min_pt) & np.isin(ids, n[n >= 3].index.to_numpy())
        return ids[ok]


def pure_triplet_particles(seeds: Seeds, pid: np.ndarray) -> set[int]:
    """Particles owning all three points of some seed triplet."""
    tp = pid[seeds.triplet]
    true = (tp[:, 0] == tp[:, 1]) & (tp[:, 1] == tp[:, 2]) & (tp[:, 0] > 0)
    return set(tp[true, 0].tolist())


def found_particles(pid: np.ndarray, track_id: np.ndarray) -> set[int]:
    """Particles reconstructed by a track with the double majority (TrackML): more than half
    of the track's hits are the particle's and more than half of the particle's hits are in it."""
    df = pd.DataFrame({"p": pid, "t": track_id})
    n_particle = df[df.p > 0].groupby("p").size()
    n_track = df[df.t > 0].groupby("t").size()
    pair = df[(df.p > 0) & (df.t > 0)].groupby(["t", "p"]).size().rename("n").reset_index()
    ok = (pair.n.to_numpy() > 0.5 * n_track[pair.t].to_numpy()) & (
        pair.n.to_numpy() > 0.5 * n_particle[pair.p].to_numpy()
    )
    return set(pair.p[ok].tolist())


def efficiency(wanted: np.ndarray, got: set[int]) -> float:
    return float(np.mean([int(p) in got for p in wanted])) if len(wanted) else float("nan")
