"""Track building from labelled road hits: hand-made cases with known answers."""

from __future__ import annotations

import dataclasses

import numpy as np

from hepml.reco.building import BuildingConfig, build_tracks
from hepml.rng import rng as make_rng

CFG = BuildingConfig(
    threshold=0.5, min_hits=4, merge_min_shared=2, merge_min_fraction=0.5, one_hit_per_module=False
)
#: the same with at most one hit per module (slot) in a track
PER_MODULE = dataclasses.replace(CFG, one_hit_per_module=True)


def roads(*elements: list[tuple[int, int, float]]) -> tuple[np.ndarray, ...]:
    """Flat road arrays from per-road lists of (hit, slot, score); a slot is a module (or a layer)."""
    ptr = np.concatenate([[0], np.cumsum([len(r) for r in elements])]).astype(np.int64)
    flat = [e for r in elements for e in r]
    hit = np.array([e[0] for e in flat], dtype=np.int64)
    layer = np.array([e[1] for e in flat], dtype=np.int64)
    score = np.array([e[2] for e in flat], dtype=np.float64)
    return ptr, hit, layer, score


def build(elements: list[list[tuple[int, int, float]]], n_hits: int, cfg: BuildingConfig = CFG):
    ptr, hit, layer, score = roads(*elements)
    return build_tracks(ptr, hit, layer, score, score > cfg.threshold, n_hits, cfg)


def test_one_hit_per_module_keeps_the_most_confident():
    # module 3 has two hits above threshold: with the rule only the 0.9 one joins, without
    # it both do; hit 6 is below threshold
    road = [
        (0, 0, 0.99),
        (1, 1, 0.98),
        (2, 2, 0.97),
        (3, 3, 0.6),
        (4, 3, 0.9),
        (5, 4, 0.8),
        (6, 5, 0.3),
    ]
    t = build([road], 8, PER_MODULE)
    assert t.n_tracks == 1
    np.testing.assert_array_equal(t.track_id, [1, 1, 1, 0, 1, 1, 0, 0])
    assert np.isclose(t.confidence[0], 0.99 + 0.98 + 0.97 + 0.9 + 0.8)
    t = build([road], 8)
    np.testing.assert_array_equal(t.track_id, [1, 1, 1, 1, 1, 1, 0, 0])
    assert np.isclose(t.confidence[0], 0.99 + 0.98 + 0.97 + 0.6 + 0.9 + 0.8)


def test_without_the_module_rule_a_hesitant_hit_stays_and_the_rival_goes_to_its_own_track():
    """Particle A's road holds A's hit 4 (p 0.4) and, on the same module, particle B's hit 14
    (p 0.6); B's own road is sure of 14 (0.95). With one hit per module A keeps 14, loses it
    to B in the contest and ends without hit 4; without the rule A keeps 4 and gives 14 up."""
    a = [(0, 0, 0.9), (1, 1, 0.9), (2, 2, 0.9), (3, 3, 0.9), (4, 4, 0.4), (14, 4, 0.6)]
    b = [(10, 10, 0.9), (11, 11, 0.9), (12, 12, 0.9), (13, 13, 0.9), (14, 4, 0.95)]
    cfg = dataclasses.replace(CFG, threshold=0.3)
    t = build([a, b], 15, cfg)
    assert t.n_tracks == 2
    assert (t.track_id[[1, 2, 3, 4]] == t.track_id[0]).all() and t.track_id[0] > 0
    assert (t.track_id[[11, 12, 13, 14]] == t.track_id[10]).all() and t.track_id[10] > 0
    t = build([a, b], 15, dataclasses.replace(cfg, one_hit_per_module=True))
    assert t.n_tracks == 2 and t.track_id[4] == 0 and t.track_id[14] == t.track_id[10]
    assert (t.track_id[[1, 2, 3]] == t.track_id[0]).all() and t.track_id[0] > 0


def test_too_short_tracks_are_dissolved():
    t = build([[(0, 0, 0.9), (1, 1, 0.9), (2, 2, 0.9), (3, 3, 0.4)]], 4)
    assert t.n_tracks == 0
    assert (t.track_id == 0).all()


def test_duplicates_from_two_seeds_are_merged_into_one_track():
    # two seeds of one particle (hits 0..6 on layers 0..6): the second road misses
    # layer 0 but sees layer 7; merged, the track holds the union
    a = [(i, i, 0.95) for i in range(7)]
    b = [(i, i, 0.9) for i in range(1, 8)]
    t = build([a, b], 10)
    assert t.n_tracks == 1
    np.testing.assert_array_equal(t.track_id, [1] * 8 + [0, 0])
    assert t.n_merged[0] == 2


def test_tracks_sharing_one_hit_stay_apart_and_the_contested_hit_goes_to_the_most_confident():
    # two particles crossing: hit 4 claimed by both roads (one shared hit < merge_min_shared)
    a = [(0, 0, 0.9), (1, 1, 0.9), (2, 2, 0.9), (3, 3, 0.9), (4, 4, 0.6)]
    b = [(10, 0, 0.9), (11, 1, 0.9), (12, 2, 0.9), (13, 3, 0.9), (4, 4, 0.8)]
    t = build([a, b], 14)
    assert t.n_tracks == 2
    tb = t.track_id[10]
    assert tb > 0 and t.track_id[4] == tb  # 0.8 > 0.6: road b wins hit 4
    assert (t.track_id[[0, 1, 2, 3]] != tb).all() and len(set(t.track_id[[0, 1, 2, 3]])) == 1


def test_contest_tie_goes_to_the_more_confident_track():
    a = [(0, 0, 0.9), (1, 1, 0.9), (2, 2, 0.9), (3, 3, 0.9), (4, 4, 0.7)]
    b = [(10, 0, 0.99), (11, 1, 0.99), (12, 2, 0.99), (13, 3, 0.99), (4, 4, 0.7)]
    t = build([a, b], 14)
    assert t.track_id[4] == t.track_id[10] == 1  # b is more confident, numbered first


def test_a_track_losing_contested_hits_below_min_hits_frees_them_for_others():
    # road a (4 hits) loses hit 3 to the surer road b, is dissolved, and its other
    # hits are then free; road c also wanted hit 2 and now gets it
    a = [(0, 0, 0.9), (1, 1, 0.9), (2, 2, 0.95), (3, 3, 0.6)]
    b = [(10, 0, 0.9), (11, 1, 0.9), (12, 2, 0.9), (3, 3, 0.95)]
    c = [(20, 0, 0.9), (21, 1, 0.9), (2, 2, 0.8), (23, 3, 0.9)]
    t = build([a, b, c], 24)
    assert t.n_tracks == 2
    assert (t.track_id[[0, 1]] == 0).all()
    assert t.track_id[3] == t.track_id[10] > 0
    assert t.track_id[2] == t.track_id[20] > 0


def test_merging_needs_enough_shared_hits():
    a = [(i, i, 0.9) for i in range(5)]
    b = [(0, 0, 0.8), (1, 1, 0.8)] + [(10 + i, i, 0.8) for i in range(2, 5)]
    strict = dataclasses.replace(CFG, merge_min_shared=3)
    t = build([a, b], 15, strict)  # 2 shared < 3: no merge; a keeps 0, 1 and b is left with 3 hits
    assert t.n_tracks == 1 and (t.track_id[:5] == 1).all() and (t.track_id[10:] == 0).all()
    # 2 shared >= 2 but < half of the shorter track's 5: no merge, b loses 0, 1 and dissolves
    t = build([a, b], 15)
    assert t.n_tracks == 1 and (t.track_id[:5] == 1).all() and (t.track_id[10:] == 0).all()
    assert t.n_merged[0] == 1
    loose = dataclasses.replace(PER_MODULE, merge_min_fraction=0.4)
    t = build([a, b], 15, loose)  # 2 >= 0.4 * 5: merged; per module the higher score wins
    assert t.n_tracks == 1 and (t.track_id[:5] == 1).all() and (t.track_id[10:] == 0).all()
    assert t.n_merged[0] == 2
    t = build([a, b], 15, dataclasses.replace(loose, one_hit_per_module=False))
    assert t.n_tracks == 1 and (t.track_id[:5] == 1).all() and (t.track_id[12:] == 1).all()
    assert t.n_merged[0] == 2  # without the rule the union keeps b's own hits too


def test_a_fake_road_sharing_the_seed_adds_none_of_its_hits_to_the_true_track():
    """A road grown from a fake seed holds two hits of a true track and six of its own on
    other modules; merging them (as with merge_min_fraction 0) makes a track of 14 hits
    in which the particle holds 8: no longer a double-majority match of anything clean."""
    true = [(i, i, 0.9) for i in range(8)]
    fake = [(0, 0, 0.7), (1, 1, 0.7)] + [(100 + i, 20 + i, 0.6) for i in range(6)]
    t = build([true, fake], 110)
    assert (t.track_id[:8] == t.track_id[0]).all() and t.track_id[0] > 0
    assert not np.isin(t.track_id[100:106], [t.track_id[0]]).any()
    merge_all = dataclasses.replace(CFG, merge_min_fraction=0)
    t = build([true, fake], 110, merge_all)
    assert (t.track_id[100:106] == t.track_id[0]).all()  # what the fraction prevents


def test_many_random_roads_give_a_consistent_assignment():
    rng = make_rng(3, "test-building-random-roads")
    n_hits, n_roads = 400, 300
    elements = []
    for _ in range(n_roads):
        k = rng.integers(3, 12)
        hits = rng.integers(n_hits, size=k)
        elements.append([(int(h), int(h % 10), float(rng.random())) for h in hits])
    for cfg in (CFG, PER_MODULE):
        t = build(elements, n_hits, cfg)
        tid = t.track_id[t.track_id > 0]
        layer = np.flatnonzero(t.track_id > 0) % 10
        if cfg.one_hit_per_module:  # at most one hit per module per track
            assert len(np.unique(tid * 10 + layer)) == len(tid)
        ids, counts = np.unique(t.track_id[t.track_id > 0], return_counts=True)
        assert (counts >= cfg.min_hits).all()
        np.testing.assert_array_equal(ids, np.arange(1, t.n_tracks + 1))
        assert np.all(np.diff(t.confidence) <= 1e-12)  # numbered by decreasing confidence
        # every kept hit is one a road proposed above threshold
        _, hit, _, score = roads(*elements)
        assert np.isin(np.flatnonzero(t.track_id > 0), hit[score > cfg.threshold]).all()


def test_two_hits_of_one_layer_on_overlapping_modules_both_stay():
    # hits 3 and 4 lie on one layer but on two overlapping modules (slots 30 and 31)
    road = [(0, 0, 0.9), (1, 10, 0.9), (2, 20, 0.9), (3, 30, 0.8), (4, 31, 0.7), (5, 40, 0.9)]
    t = build([road], 6, PER_MODULE)
    assert t.n_tracks == 1 and (t.track_id == 1).all()


def test_lexsort_fast_matches_lexsort() -> None:
    """Integer and float keys (ties, NaN, -0.0, inf), and the fallback where the combined key
    would overflow: the same order as np.lexsort."""
    from hepml.reco.building import lexsort_fast

    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 50, 5000):
        h = rng.integers(-5, 90, n)
        s = rng.random(n).round(2)
        if n > 10:
            s[::7], s[::11], s[1::11], s[::13] = np.nan, -0.0, 0.0, np.inf
        r = rng.integers(0, 700, n)
        for keys in ((r, -s, h), (s, -r, h), (r, h), (s,)):
            assert np.array_equal(lexsort_fast(keys), np.lexsort(keys))
    big = np.array([0, 2**40, 5, 2**40])
    assert np.array_equal(lexsort_fast((big, big, big)), np.lexsort((big, big, big)))
