"""Roads around seeds and the road follower, on small simulated events with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from hepml import config
from hepml.detector.layers import TrackerGeometry
from hepml.features.roads import COL, FEATURES, N_FEATURES, pad_roads, unpad
from hepml.reco.roads import RoadConfig, build_roads, seed_majority
from hepml.reco.seeding import find_seeds
from hepml.rng import rng
from hepml.sim.tracker import TrackerSimConfig, simulate_events
from hepml.tasks.hit_labeller import seeding_config


@pytest.fixture(scope="module")
def event():
    cfg = config.validate(
        {
            "tracker": {
                "simulation": {"n_particles": 1500, "n_high_pt": 40, "noise_per_layer": 150.0}
            },
            "hit_labeller": {"seeding": {"min_pt_GeV": 0.3}},
        }
    )
    geometry = TrackerGeometry.from_config(cfg)
    hits, particles = simulate_events(
        geometry, TrackerSimConfig.from_config(cfg), np.array([1]), rng(11, "test-roads")
    )
    lay = geometry.global_layer(hits["volume_id"].to_numpy(), hits["layer_id"].to_numpy()).astype(
        np.int64
    )
    x, y, z = (hits[c].to_numpy(np.float64) for c in "xyz")
    pid = hits["particle_id"].to_numpy(np.int64)
    seeds = find_seeds(x, y, z, lay, seeding_config(cfg), geometry)
    rcfg = RoadConfig.from_config(cfg)
    roads = build_roads(x, y, z, lay, seeds, geometry, rcfg, pid)
    return {
        "cfg": cfg,
        "geometry": geometry,
        "hits": hits,
        "particles": particles,
        "lay": lay,
        "x": x,
        "y": y,
        "z": z,
        "pid": pid,
        "seeds": seeds,
        "rcfg": rcfg,
        "roads": roads,
    }


def test_seed_majority():
    p = np.array([[5, 5, 7], [5, 7, 7], [5, 7, 5], [5, 6, 7], [0, 0, 3], [0, 3, 3]])
    np.testing.assert_array_equal(seed_majority(p), [5, 7, 5, 0, 0, 3])


def test_roads_hold_the_seed_particles_hits(event):
    """For pure seeds of particles above 1 GeV the road holds > 95% of the particle's later hits."""
    r, pid, lay = event["roads"], event["pid"], event["lay"]
    sp = r.seed_particle
    pure = (pid[r.seeds] == sp[:, None]).all(axis=1) & (sp > 0)
    pt_of = dict(
        zip(
            event["particles"]["particle_id"],
            np.hypot(event["particles"]["px"], event["particles"]["py"]),
            strict=True,
        )
    )
    pt = np.array([pt_of.get(p, 0.0) for p in sp])
    sel = np.flatnonzero(pure & (pt > 1.0))
    assert len(sel) >= 20
    road = r.road_of_element
    in_road = np.bincount(road, weights=r.label, minlength=len(r))
    last_seed = lay[r.seeds].max(axis=1)
    wanted = np.array([np.sum((pid == sp[i]) & (lay > last_seed[i])) + 3 for i in sel])
    eff = in_road[sel].sum() / wanted.sum()
    assert eff > 0.95, eff
    # and the follower takes them: its picks on these roads are nearly all right
    picks = r.picked & np.isin(road, sel)
    assert r.label[picks].mean() > 0.97


def test_labels_are_the_seed_majority_particle(event):
    r, pid = event["roads"], event["pid"]
    road = r.road_of_element
    expect = (pid[r.hit] == r.seed_particle[road]) & (r.seed_particle[road] > 0)
    np.testing.assert_array_equal(r.label.astype(bool), expect)
    frac = r.label.mean()
    assert 0.2 < frac < 0.9, frac  # other particles' hits and noise are in the roads too
    assert (r.label[~r.features[:, COL["is_seed"]].astype(bool)] == 0).any()


def test_road_layout_and_features(event):
    r, rcfg, lay = event["roads"], event["rcfg"], event["lay"]
    assert r.features.shape == (len(r.hit), N_FEATURES) and len(FEATURES) == N_FEATURES
    assert np.isfinite(r.features).all()
    road = r.road_of_element
    is_seed = r.features[:, COL["is_seed"]].astype(bool)
    pos = np.arange(len(road)) - r.road_ptr[road]
    np.testing.assert_array_equal(is_seed, pos < 3)  # the seed's three hits first
    np.testing.assert_array_equal(r.hit[is_seed].reshape(-1, 3), r.seeds)
    # then by layer, and within a layer by follower chi2 (rank 0 first), capped
    later = ~is_seed
    same_road = road[1:] == road[:-1]
    step = same_road & later[1:] & later[:-1]
    assert (np.diff(r.layer.astype(int))[step] >= 0).all()
    same_layer = step & (r.layer[1:] == r.layer[:-1])
    assert (-np.diff(r.follower_score)[same_layer] >= 0).all()
    key = road[later] * 100 + r.layer[later]
    assert np.bincount(np.unique(key, return_inverse=True)[1]).max() <= rcfg.max_hits_per_layer
    assert (r.layer[later] > lay[r.seeds].max(axis=1)[road[later]]).all()
    # seed-window residuals lie in the window; the follower found >= min_picked hits per road
    assert (np.abs(r.features[later, COL["u_seed"]]) <= 1 + 1e-6).all()
    assert (np.abs(r.features[later, COL["v_seed"]]) <= 1 + 1e-6).all()
    n_pick = np.bincount(road, weights=r.picked & later, minlength=len(r))
    assert (n_pick >= rcfg.min_picked).all()
    assert (np.bincount(road, weights=r.picked, minlength=len(r)) == n_pick + 3).all()
    assert (r.follower_score[later] <= 0).all()
    assert (-r.follower_score[r.picked & later] < rcfg.chi2_max).all()


def test_pad_and_unpad_round_trip():
    ptr = np.array([0, 3, 3, 7])
    v = np.arange(14, dtype=np.float32).reshape(7, 2)
    padded = pad_roads(ptr, v, fill=-1.0)
    assert padded.shape == (3, 4, 2)
    assert (padded[1] == -1).all() and (padded[0, 3] == -1).all()
    np.testing.assert_array_equal(unpad(ptr, padded), v)


def test_config_rejects_wrong_window_lengths():
    from hepml.errors import HepmlError

    cfg = config.validate({"hit_labeller": {"roads": {"window_rphi_mm": [1.0, 2.0]}}})
    with pytest.raises(HepmlError, match="window_rphi_mm"):
        RoadConfig.from_config(cfg)


def test_ambiguity_resolution_drops_duplicate_and_fake_roads(event):
    """min_won_fraction: roads losing most of their follower track to better roads go.

    Per particle (pT > 0.5 GeV, seeded), the best road's share of the particle's hits
    is unchanged, while duplicate roads of one particle and fake seeds running into
    real tracks disappear.
    """
    import dataclasses

    e = event
    strict = dataclasses.replace(e["rcfg"], min_won_fraction=0.5)
    kept = build_roads(
        e["x"], e["y"], e["z"], e["lay"], e["seeds"], e["geometry"], strict, e["pid"]
    )
    loose = e["roads"]
    assert len(kept) < 0.8 * len(loose)

    def best_share(r):
        """particle -> the largest number of its hits one road's follower picked."""
        road = r.road_of_element
        pk = r.picked & (r.label == 1)
        n = np.bincount(road[pk], minlength=len(r))
        out: dict[int, int] = {}
        for p, k in zip(r.seed_particle, n, strict=True):
            if p > 0:
                out[p] = max(out.get(p, 0), int(k))
        return out

    pt = dict(
        zip(
            e["particles"]["particle_id"],
            np.hypot(e["particles"]["px"], e["particles"]["py"]),
            strict=True,
        )
    )
    a, b = best_share(loose), best_share(kept)
    hard = [p for p in a if pt[p] > 0.5]
    assert len(hard) > 200
    same = np.mean([b.get(p, 0) >= a[p] for p in hard])
    assert same > 0.98, same
    # fewer roads per particle: duplicates are gone
    assert len(kept) / len(b) < len(loose) / len(a)


def test_second_pass_seeds_the_hits_the_first_pass_left(event):
    """Iterative tracking: [0, 1, 2] seeds, then [1, 2, 3] seeds among the hits no kept road picked.

    The second pass's seed triplets use only free hits, and its roads serve particles
    the first pass missed: particles (pT > 0.5 GeV, 8+ layers) with a road holding
    most of their hits become more, never fewer.
    """
    import dataclasses

    from hepml.tasks.hit_labeller import Reconstruction, event_roads

    cfg = event["cfg"]
    one = dataclasses.replace(
        Reconstruction.from_config(cfg),
        seeding=dataclasses.replace(seeding_config(cfg), layer_triplets=((0, 1, 2),)),
        roads=dataclasses.replace(event["rcfg"], min_won_fraction=0.5),
    )
    two = dataclasses.replace(
        one, second_pass=dataclasses.replace(seeding_config(cfg), layer_triplets=((1, 2, 3),))
    )
    hits = event["hits"]
    r1, rows, n1 = event_roads(hits, one, truth=True)
    r2, rows2, n2 = event_roads(hits, two, truth=True)
    assert np.array_equal(rows, rows2) and n2 > n1
    assert len(r2) > len(r1)
    # the first pass's roads come first, unchanged
    np.testing.assert_array_equal(r2.hit[: len(r1.hit)], r1.hit)
    extra_seeds = r2.seeds[len(r1) :]
    used = np.zeros(len(rows), dtype=bool)
    used[r1.hit[r1.picked]] = True
    assert not used[extra_seeds].any()
    lay = event["lay"][rows]
    assert np.all(lay[extra_seeds] == np.array([1, 2, 3]))

    pid = event["pid"][rows]
    pt = dict(
        zip(
            event["particles"]["particle_id"],
            np.hypot(event["particles"]["px"], event["particles"]["py"]),
            strict=True,
        )
    )
    n_hits = np.bincount(np.searchsorted(np.unique(pid), pid))
    nh = dict(zip(np.unique(pid), n_hits, strict=True))

    def served(r):
        road = r.road_of_element
        good = np.bincount(road, weights=r.label, minlength=len(r))
        return {p for p, k in zip(r.seed_particle, good, strict=True) if p > 0 and k > 0.5 * nh[p]}

    want = {p for p in nh if p > 0 and pt.get(p, 0) > 0.5 and nh[p] >= 8}
    s1, s2 = served(r1) & want, served(r2) & want
    assert s1 <= s2 and len(s2) > len(s1)


def test_second_pass_config():
    from hepml.errors import HepmlError
    from hepml.tasks.hit_labeller import second_pass_config

    cfg = config.validate(
        {
            "hit_labeller": {
                "seeding": {"min_pt_GeV": 0.3, "n_sigma": 2.0},
                "second_pass": {"layer_triplets": [[1, 2, 3]], "min_pt_GeV": 0.1},
            }
        }
    )
    sp = second_pass_config(cfg)
    assert sp is not None
    assert sp.layer_triplets == ((1, 2, 3),) and sp.min_pt_GeV == 0.1 and sp.n_sigma == 2.0
    assert second_pass_config(config.validate({})) is None
    bad = config.validate({"hit_labeller": {"second_pass": {"layer_triplets": [[2, 1, 3]]}}})
    with pytest.raises(HepmlError, match=r"hit_labeller\.second_pass\.layer_triplets"):
        second_pass_config(bad)
