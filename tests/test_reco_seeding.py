"""Triplet seeding: the (phi, z) index against brute force, cuts, efficiency on a dense event."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from hepml import config
from hepml.detector.layers import TrackerGeometry
from hepml.errors import HepmlError
from hepml.reco.fit import LayerResolution, fit_helix, helix_from_beamline, predict_on_cylinder
from hepml.reco.seeding import (
    EventHits,
    PhiZIndex,
    SeedingConfig,
    _Circles,
    _DoubletBlock,
    _Extrapolation,
    _triplets,
    _unique_hit_sets,
    expand_ranges,
    find_seeds,
    wrap_phi,
)
from hepml.rng import rng as make_rng
from hepml.sim.tracker import TrackerSimConfig, simulate_events
from hepml.tasks.hit_labeller import seeding_config


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
    truth = helix_from_beamline(pts, phi, eta, vz, q, geometry.bfield_T)
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
    seeds = find_seeds(x, y, z, lay, cfg, geometry)
    sp = pid[seeds]
    assert np.all(sp[:, 0] == sp[:, 1]) and np.all(
        sp[:, 1] == sp[:, 2]
    )  # isolated tracks: no fakes
    assert sorted(set(sp[:, 0].tolist())) == [3, 4, 5, 6]  # the particles above 0.5 GeV
    fit = fit_helix(x[seeds], y[seeds], z[seeds], np.ones(seeds.shape, bool), geometry.bfield_T)
    assert np.all(fit.pt_GeV >= cfg.min_pt_GeV)
    assert np.all(np.diff(lay[seeds], axis=1) > 0)  # inner to outer


@pytest.fixture(scope="module")
def dense():
    """One TrackML-density event (default config, ~57k barrel hits, scattering, noise)."""
    cfg = config.load("config/config.yaml")
    geometry = TrackerGeometry.from_config(cfg)
    hits, parts = simulate_events(
        geometry,
        TrackerSimConfig.from_config(cfg),
        np.array([0]),
        make_rng(11, "test-seeding"),
    )
    lay = geometry.global_layer(hits["volume_id"].to_numpy(), hits["layer_id"].to_numpy())
    return cfg, geometry, hits, parts, lay.astype(np.int64)


def test_seeding_efficiency_on_a_dense_event(dense):
    """TrackML density (default config, ~57k barrel hits, multiple scattering, noise)."""
    cfg, geometry, hits, parts, lay = dense
    x, y, z = (hits[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    pid = hits["particle_id"].to_numpy()
    scfg = SeedingConfig.from_config(cfg)
    seeds = find_seeds(x, y, z, lay, scfg, geometry)
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
    assert len(seeds) > 3 * true.sum()


def test_config_rejects_bad_triplet():
    cfg = config.validate({"ghost_filter": {"seeding": {"layer_triplets": [[0, 2, 1]]}}})
    with pytest.raises(HepmlError, match="layer_triplets"):
        SeedingConfig.from_config(cfg)


def test_circle_predictions_are_exact_without_scattering():
    """The circle through three hits of an exact helix predicts its crossings outwards and inwards."""
    geometry = TrackerGeometry.from_config(config.validate({}))
    rng = np.random.default_rng(8)
    pts = np.array([0.16, 0.3, 1.0, 10.0])
    n = len(pts)
    phi, eta = rng.uniform(-np.pi, np.pi, n), rng.uniform(-1.0, 1.0, n)
    truth = helix_from_beamline(
        pts, phi, eta, rng.normal(0, 55.0, n), np.array([1, -1, 1, -1]), geometry.bfield_T
    )
    cross = [predict_on_cylinder(truth, lay.radius_mm) for lay in geometry.layers]
    x = np.concatenate([c[0] for c in cross])
    y = np.concatenate([c[1] for c in cross])
    z = np.concatenate([c[2] for c in cross])
    ok = np.concatenate([c[3] for c in cross])
    hits = EventHits(x, y, z, np.repeat(np.arange(geometry.n_layers), n))
    row = np.arange(geometry.n_layers * n).reshape(geometry.n_layers, n).T  # (particle, layer)
    out = _Circles.through(hits, row[:, 1:4])
    inw = _Circles.through(hits, row[:, 1:4], inward=True)
    for lay in (0, 4, 5, 9):
        for circ in (out, inw):
            ph, zz, _, good = circ.predict(float(geometry.layers[lay].radius_mm))
            reach = ok.reshape(geometry.n_layers, n)[lay]
            assert np.array_equal(good, reach)
            np.testing.assert_allclose(wrap_phi(ph - hits.phi[row[:, lay]])[reach], 0.0, atol=1e-9)
            np.testing.assert_allclose((zz - hits.z[row[:, lay]])[reach], 0.0, atol=1e-6)
    np.testing.assert_allclose(out.pt(geometry.bfield_T), pts, rtol=1e-9)
    np.testing.assert_allclose(out.d0(), 0.0, atol=1e-6)


def test_extrapolation_error_coefficients():
    """Kinks the fit absorbs have no weight; the others match the small-angle algebra."""
    res = LayerResolution.from_geometry(TrackerGeometry.from_config(config.validate({})))
    r = res.radius_mm
    # three free hits (phi = a + b r + c/r): a kink at the first hit is a change of d0
    ext = _Extrapolation.build(
        res, (0, 1, 2), (1, 2), 3, ((lambda u: 1.0), (lambda u: u), (lambda u: 1 / u))
    )
    layers_phi = [x0 for x0, _ in ext.ms_phi]
    assert len(ext.ms_phi) == 2 and len(ext.ms_z) == 1  # kinks at hits 2 and 3 (phi), at hit 3 (z)
    assert layers_phi == [res.x_over_x0[1], res.x_over_x0[2]]
    assert ext.ms_z[0][1] == pytest.approx(r[3] - r[2])  # z: the line through the last two hits
    # beam-line constrained pair (phi = a + b r): the first hit's kink leaks (r_c - r_a)(r_c - r_b)/(r_b r_c)
    pair = _Extrapolation.build(res, (0, 1), (0, 1), 2, ((lambda u: 1.0), (lambda u: u)))
    assert len(pair.ms_phi) == 2
    assert abs(pair.ms_phi[0][1]) == pytest.approx((r[2] - r[0]) * (r[2] - r[1]) / (r[1] * r[2]))
    assert abs(pair.ms_phi[1][1]) == pytest.approx((r[2] - r[1]) / r[2])


def test_third_hit_pulls_follow_the_highland_windows(dense):
    """True triplets' third hits: squared pulls ~ chi2 with 2 dof, at low and high momentum.

    The windows come from the Highland width at the doublet's momentum (20% low) and the
    pixel resolution, so the pulls are at most unit-width: mean below 2 (chi2_2), and
    not much narrower (a gross overestimate would open the windows to fakes).
    """
    cfg, geometry, hits, parts, lay = dense
    scfg = seeding_config(cfg)
    h = EventHits(*(hits[c].to_numpy(np.float64) for c in "xyz"), lay)
    res = LayerResolution.from_geometry(geometry)
    pid = hits["particle_id"].to_numpy()
    pt_of = dict(zip(parts["particle_id"], np.hypot(parts["px"], parts["py"]), strict=True))
    for kind, pair in (((0, 1, 2), (1, 2)), ((1, 2, 3), (1, 2)), ((0, 1, 2), (0, 1))):
        block = _DoubletBlock.find(h, *pair, res, scfg, geometry.bfield_T, None)
        trip, d2 = _triplets(h, kind, block, res, scfg, None)
        p = pid[trip]
        true = (p[:, 0] == p[:, 1]) & (p[:, 1] == p[:, 2]) & (p[:, 0] > 0)
        pt = np.array([pt_of.get(q, 0.0) for q in p[:, 0]])
        for lo, hi in ((0.15, 0.3), (1.0, 100.0)):
            sel = true & (pt >= lo) & (pt < hi)
            assert sel.sum() > 200
            assert 0.8 < d2[sel].mean() < 2.2, (kind, pair, lo, d2[sel].mean())
            assert np.mean(d2[sel] > 9.0) < 0.02


def test_confirmed_seeds_keep_the_particles_and_drop_the_fakes(dense):
    cfg, geometry, hits, parts, lay = dense
    x, y, z = (hits[c].to_numpy(np.float64) for c in "xyz")
    pid = hits["particle_id"].to_numpy()
    scfg = seeding_config(cfg)
    assert scfg.confirm_hits == 2
    seeds = find_seeds(x, y, z, lay, scfg, geometry)
    loose = find_seeds(x, y, z, lay, dataclasses.replace(scfg, confirm_hits=0), geometry)
    pt = np.hypot(parts["px"], parts["py"]).to_numpy()
    df = pd.DataFrame({"p": pid, "l": lay})
    n_layers = df[(df.p > 0) & (df.l >= 0)].drop_duplicates().groupby("p").size()
    pixels = df[(df.p > 0) & (df.l >= 0) & (df.l < 4)].drop_duplicates().groupby("p").size()
    for lo, want in ((1.0, 0.97), (0.3, 0.93)):
        good = (
            set(parts["particle_id"][pt > lo])
            & set(n_layers[n_layers >= 6].index)
            & set(pixels[pixels == 4].index)
        )
        for s, w in ((seeds, want), (loose, want)):
            sp = pid[s]
            # a seed serves a particle when two of its three hits are the particle's
            held = set(sp[:, 0][(sp[:, 0] == sp[:, 1]) | (sp[:, 0] == sp[:, 2])]) | set(
                sp[:, 1][sp[:, 1] == sp[:, 2]]
            )
            assert np.mean([q in held for q in good]) > w
    assert len(seeds) < 0.2 * len(loose)
    sp = pid[seeds]
    n_true = ((sp[:, 0] == sp[:, 1]) & (sp[:, 1] == sp[:, 2]) & (sp[:, 0] > 0)).sum()
    assert n_true > 0.2 * len(seeds)


def test_unique_hit_sets():
    sets = np.array(
        [
            [1, 2, 3, 4],
            [1, 2, 9, 10],  # two hits of a better set: dropped
            [5, 6, 7, 8],
            [1, 11, 12, 13],  # one shared hit: kept
            [-1, 20, 21, 22],
            [-1, 23, 21, 22],  # shares 21, 22 with the better set above: dropped
            [-1, -1, 30, 31],
            [-1, -1, 32, 33],  # padding does not count as shared
        ]
    )
    quality = np.array([1.0, 2.0, 3.0, 0.5, 1.0, 4.0, 1.0, 1.0])
    assert _unique_hit_sets(sets, quality, 40).tolist() == [0, 2, 3, 4, 6, 7]
    assert _unique_hit_sets(sets[:0], quality[:0], 40).tolist() == []
