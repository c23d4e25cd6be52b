"""Shared, session-scoped events of the reconstruction tests (small: one 3,000-particle event)."""

from __future__ import annotations

import numpy as np
import pytest
from reco_events import DETECTORS, EVENT, SAMPLE, SKIP_REASON, RecoEvent, have_trackml_sample

from hepml import config
from hepml.detector import load_detector
from hepml.rng import rng
from hepml.sim.tracker import TrackerSimConfig, simulate_events

#: primaries of the simulated event: ~54k hits with noise on the default (TrackML) detector
SIM_PARTICLES = 3000


@pytest.fixture(scope="session")
def sim_event() -> RecoEvent:
    """One simulated event on the default detector: 3,000 primaries over |eta| < 4, secondaries,
    multiple scattering, energy loss and noise (0.8 hits per module)."""
    cfg = config.validate({"tracker": {"simulation": {"n_particles": SIM_PARTICLES}}})
    det = load_detector(cfg)
    hits, particles = simulate_events(
        det, TrackerSimConfig.from_config(cfg), np.array([1]), rng(11, "test-reco-event")
    )
    return RecoEvent(cfg, det, hits, particles)


@pytest.fixture(scope="session")
def trackml_event() -> RecoEvent:
    """The real TrackML sample (5% of an event's particles, every hit of theirs, and noise)
    on the detector of TrackML's detectors.csv."""
    if not have_trackml_sample():
        pytest.skip(SKIP_REASON)
    from hepml.io import read_trackml_csv

    cfg = config.validate(
        {"tracker": {"detector": {"source": "trackml_csv", "trackml_csv": str(DETECTORS)}}}
    )
    hits, particles = read_trackml_csv(SAMPLE, EVENT)
    assert particles is not None
    return RecoEvent(cfg, load_detector(cfg), hits, particles)
