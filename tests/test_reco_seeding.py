"""Triplet seeding: the (phi, z) index against brute force, cuts, efficiency on a dense event."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hepml import config
from hepml.errors import HepmlError
from hepml.reco.fit import fit_helix, helix_from_truth, predict_on_cylinder
from hepml.reco.seeding import PhiZIndex, SeedingConfig, expand_ranges, find_seeds, wrap_phi
from hepml.rng import rng as make_rng
from hepml.sim.geometry import TrackerGeometry
from hepml.sim.tracker import TrackerSimConfig, simulate_events


def test_expand_ranges():
    i, j = expand_ranges(np.array([2, 5, 0, 7]), np.array([4, 5, 1, 9]))
    assert i.tolist() == [0, 0, 2, 3, 3]
    assert j.tolist() == [2, 3, 0, 7, 8]


def test_phi_z_index_matches_brute_force():
    rng = np.random.default_rng(5)
    n, nq = 3000, 400
    phi = rng.uniform(-np.pi, np.pi, n)
    z = rng.uniform(-500, 500, n)
    idx = np.arange(n) * 3 + 1  # arbitrary labels
    qphi = np.concatenate(
        [rng.uniform(-np.pi, np.pi, nq - 4), [np.pi - 1e-3, -np.pi + 1e-3, 3.1, -3.1]]
    )
    half = rng.uniform(0.0, 0.3, nq)
    zc = rng.uniform(-600, 600, nq)
    hz = rng.uniform(0.0, 120.0, nq)
    for z_bin in (7.0, 50.0, 2000.0):
        index = PhiZIndex(phi, z, idx, z_bin_mm=z_bin)
        q, h = index.query(qphi, half, zc - hz, zc + hz)
        got = set(zip(q.tolist(), h.tolist(), strict=True))
        dphi = np.abs(wrap_phi(phi[None, :] - qphi[:, None]))
        inside = (dphi <= half[:, None]) & (np.abs(z[None, :] - zc[:, None]) <= hz[:, None])
        qq, hh = np.nonzero(inside)
        want = set(zip(qq.tolist(), idx[hh].tolist(), strict=True))
        assert got == want
        assert len(q) == len(got)  # no duplicates from the wrapped copies


def _toy_event(pts, rng, geometry, sigma=0.0):
    """Exact helices from the beam line (no scattering) on the pixel layers; rows per layer."""
    n = len(pts)
    phi = rng.uniform(-np.pi, np.pi, n)
    eta = rng.uniform(-0.8, 0.8, n)
    q = rng.choice([-1, 1], n)
    vz = rng.normal(0, 55.0, n)
    truth = helix_from_truth(
        np.zeros(n),
        np.zeros(n),
        vz,
        pts * np.cos(phi),
        pts * np.sin(phi),
        pts * np.sinh(eta),
        q,
        geometry.bfield_T,
    )
    xs, ys, zs, lays, pids = [], [], [], [], []
    for lay in range(4):
        x, y, z, ok = predict_on_cylinder(truth, geometry.layers[lay].radius_mm)
        xs.append(x[ok])
        ys.append(y[ok])
        zs.append(z[ok])
        lays.append(np.full(ok.sum(), lay))
        pids.append(np.flatnonzero(ok) + 1)
    return (np.concatenate(a) for a in (xs, ys, zs, lays, pids))


def test_min_pt_cut():
    geometry = TrackerGeometry.from_config(config.validate({}))
    cfg = SeedingConfig(layer_triplets=((0, 1, 2),), min_pt_GeV=0.5)
    rng = np.random.default_rng(6)
    pts = np.array([0.3, 0.45, 0.55, 0.8, 5.0, 50.0])
    x, y, z, lay, pid = _toy_event(pts, rng, geometry)
    seeds = find_seeds(x, y, z, lay, cfg, geometry.bfield_T)
    sp = pid[seeds]
    assert np.all(sp[:, 0] == sp[:, 1]) and np.all(
        sp[:, 1] == sp[:, 2]
    )  # isolated tracks: no fakes
    assert sorted(set(sp[:, 0].tolist())) == [3, 4, 5, 6]  # the particles above 0.5 GeV
    fit = fit_helix(x[seeds], y[seeds], z[seeds], np.ones(seeds.shape, bool), geometry.bfield_T)
    assert np.all(fit.pt_GeV >= cfg.min_pt_GeV)
    assert np.all(np.diff(lay[seeds], axis=1) > 0)  # inner to outer


def test_seeding_efficiency_on_a_dense_event():
    """TrackML density (default config, ~57k barrel hits, multiple scattering, noise)."""
    cfg = config.load("config/config.yaml")
    geometry = TrackerGeometry.from_config(cfg)
    hits, parts = simulate_events(
        geometry, TrackerSimConfig.from_config(cfg), np.array([0]), make_rng(11, "test-seeding")
    )
    lay = geometry.global_layer(hits["volume_id"].to_numpy(), hits["layer_id"].to_numpy())
    x, y, z = (hits[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    pid = hits["particle_id"].to_numpy()
    scfg = SeedingConfig.from_config(cfg)
    seeds = find_seeds(x, y, z, lay, scfg, geometry.bfield_T)
    sp = pid[seeds]
    true = (sp[:, 0] == sp[:, 1]) & (sp[:, 1] == sp[:, 2]) & (sp[:, 0] > 0)
    seeded = set(sp[true, 0].tolist())
    # particles that can be seeded: a hit on each layer of one of the triplets
    df = pd.DataFrame({"p": pid, "l": lay})
    df = df[(df.p > 0) & (df.l >= 0) & (df.l < 4)].drop_duplicates()
    layers = df.groupby("p")["l"].apply(frozenset)
    can = layers[layers.apply(lambda s: any(set(t) <= s for t in scfg.layer_triplets))].index
    pt = np.hypot(parts["px"], parts["py"]).to_numpy()
    high = set(parts["particle_id"].to_numpy()[pt > 1.0].tolist()) & set(can.tolist())
    assert len(high) > 500
    eff = np.mean([p in seeded for p in high])
    assert eff > 0.98
    # a dense event makes many fake triplets; the finder has to cope with them
    assert len(seeds) > 5 * true.sum()


def test_config_rejects_bad_triplet():
    cfg = config.validate({"ghost_filter": {"seeding": {"layer_triplets": [[0, 2, 1]]}}})
    with pytest.raises(HepmlError, match="layer_triplets"):
        SeedingConfig.from_config(cfg)
