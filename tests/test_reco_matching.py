"""Truth matching by hand: the 70% threshold, noise, ties, clones."""

from __future__ import annotations

import numpy as np

from hepml.reco.matching import MIN_PURITY, match_tracks


def test_seventy_percent_threshold():
    tracks = [
        [5] * 7 + [6] * 3,  # 7/10 = 0.7: true (>= 70%)
        [5] * 6 + [6] * 4,  # 6/10: ghost
        [8] * 5 + [9] * 2,  # 5/7 = 0.714: true
        [8] * 4 + [9] * 3,  # 4/7 = 0.571: ghost
        [3] * 7,  # pure
    ]
    m = match_tracks(tracks)
    assert MIN_PURITY == 0.7
    assert m.is_true.tolist() == [True, False, True, False, True]
    assert m.particle_id.tolist() == [5, 5, 8, 8, 3]
    assert np.allclose(m.purity, [0.7, 0.6, 5 / 7, 4 / 7, 1.0])
    assert m.n_hits.tolist() == [10, 10, 7, 7, 7]
    assert m.n_majority.tolist() == [7, 6, 5, 4, 7]
    assert not m.is_clone.any()  # particles 5 and 8 have one true candidate each


def test_noise_counts_in_the_denominator_only():
    m = match_tracks([[4] * 7 + [0] * 3, [4] * 6 + [0] * 4, [0] * 8, [0, 0, 7, 7, 7]])
    assert m.particle_id.tolist() == [4, 4, 0, 7]
    assert m.is_true.tolist() == [True, False, False, False]
    assert m.purity[2] == 0.0  # all noise: a ghost without a particle
    assert np.isclose(m.purity[3], 0.6)


def test_ties_go_to_the_smaller_particle_id():
    m = match_tracks([[9, 9, 9, 2, 2, 2], [2, 2, 2, 9, 9, 9]])
    assert m.particle_id.tolist() == [2, 2]
    assert np.allclose(m.purity, 0.5)
    assert not m.is_true.any()


def test_clones_within_an_event():
    tracks = [
        [1] * 8 + [2],  # particle 1, purity 8/9
        [1] * 10,  # particle 1, purity 1: the best, not a clone
        [1] * 7 + [3] * 3,  # particle 1, purity 0.7: clone
        [1] * 9,  # particle 1 but another event: not a clone of the above
        [1] * 5 + [4] * 5,  # ghost: never a clone
    ]
    m = match_tracks(tracks, event_id=np.array([0, 0, 0, 1, 0]))
    assert m.is_true.tolist() == [True, True, True, True, False]
    assert m.is_clone.tolist() == [True, False, True, False, False]
    # equal purity and hits: the first in order is kept
    m = match_tracks([[6] * 8, [6] * 8])
    assert m.is_clone.tolist() == [False, True]


def test_padded_input_equals_list_input():
    rng = np.random.default_rng(7)
    tracks = [rng.integers(0, 4, rng.integers(1, 11)) for _ in range(200)]
    padded = np.full((200, 10), 99, dtype=np.int64)  # padding values must not count
    mask = np.zeros((200, 10), dtype=bool)
    for i, t in enumerate(tracks):
        padded[i, : len(t)] = t
        mask[i, : len(t)] = True
    a, b = match_tracks(tracks), match_tracks(padded, mask)
    for name in ("particle_id", "purity", "n_hits", "n_majority", "is_true", "is_clone"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    # brute force on a few rows
    for i in range(20):
        t = tracks[i]
        real = t[t != 0]
        if len(real):
            ids, counts = np.unique(real, return_counts=True)
            assert a.particle_id[i] == ids[np.argmax(counts)]
            assert np.isclose(a.purity[i], counts.max() / len(t))
