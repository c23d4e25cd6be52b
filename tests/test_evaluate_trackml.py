"""TrackML weights and score, tracking efficiency, fake and duplicate rates, on hand-computed cases."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from hepml.errors import HepmlError
from hepml.evaluate import trackml
from hepml.evaluate.trackml import (
    hit_weights,
    order_weight_matrix,
    pt_weight,
    tracking_efficiency,
    trackml_score,
)

PROFILE = np.array([10, 8, 6, 5, 3, 3, 3, 5, 6], dtype=float)


def event() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Particle 1: 6 hits, pT 2 GeV, vz 5 mm; particle 2: 4 hits, 0.3 GeV; particle 3: 3 hits; 2 noise hits.

    Rows are shuffled and hit_ids are not in |z - vz| order, so the order must come from z.
    """
    hits = pd.DataFrame(
        {
            "hit_id": np.arange(1, 16),
            "particle_id": [1] * 6 + [2] * 4 + [3] * 3 + [0, 0],
            # particle 1 (vz = 5): |z - vz| = 0, 10, 20, 30, 40, 50 for hits 1..6, given in a mixed order
            "z": [25.0, 5.0, 55.0, 15.0, 45.0, 35.0]
            + [0.0, -5.0, -10.0, -15.0]
            + [1.0, 2.0, 3.0]
            + [7.0, 8.0],
        }
    )
    parts = pd.DataFrame(
        {
            "particle_id": [1, 2, 3],
            "vz": [5.0, 0.0, 0.0],
            "px": [0.0, 0.3, 5.0],
            "py": [2.0, 0.0, 0.0],
            "pz": [1.0, 0.0, 0.0],
        }
    )
    return hits.sample(frac=1.0, random_state=3).reset_index(drop=True), parts


def expected_weights(hits: pd.DataFrame) -> pd.Series:
    """Weights computed by hand for :func:`event`, indexed by hit_id."""
    # 6-hit profile: supports at i * 5/8; values at 0..5 = 10, 6.8, 4.6, 3, 3.8, 6 (sum 34.2)
    o6 = np.array([10, 6.8, 4.6, 3.0, 3.8, 6.0]) / 34.2
    # 4-hit profile: supports at i * 3/8; hit 1 lies between 0.75 (6) and 1.125 (5): 6 - 2/3;
    # values at 0..3 = 10, 16/3, 3, 6 (sum 24.333..)
    o4 = np.array([10, 16 / 3, 3.0, 6.0])
    o4 /= o4.sum()
    w1 = 0.2 + 0.8 * (2.0 - 0.5) / 2.5  # 0.68
    w2 = 0.2
    w = {}
    # particle 1 by |z - vz|: hit 2 (0), hit 4 (10), hit 1 (20), hit 6 (30), hit 5 (40), hit 3 (50)
    for rank, hid in enumerate([2, 4, 1, 6, 5, 3]):
        w[hid] = w1 * o6[rank]
    for rank, hid in enumerate([7, 8, 9, 10]):
        w[hid] = w2 * o4[rank]
    for hid in (11, 12, 13, 14, 15):  # 3-hit particle and noise
        w[hid] = 0.0
    s = pd.Series(w)
    return s / s.sum()


def truth_of(hits: pd.DataFrame, parts: pd.DataFrame) -> pd.DataFrame:
    return hits.assign(weight=hit_weights(hits, parts))


def sub(assign: dict[int, int]) -> pd.DataFrame:
    return pd.DataFrame({"hit_id": list(assign), "track_id": list(assign.values())})


# --------------------------------------------------------------------------- weights
def test_order_profile_matches_the_challenge_rules() -> None:
    m = order_weight_matrix()
    np.testing.assert_allclose(m[4:].sum(axis=1), 1.0)
    assert np.all(m[:4] == 0)
    np.testing.assert_allclose(m[9, :9], PROFILE / PROFILE.sum())  # nine hits: the profile itself
    # 17 hits: supports at 0, 2, ..., 16 -> even hits take the profile, odd hits the midpoints
    raw = np.empty(17)
    raw[::2] = PROFILE
    raw[1::2] = 0.5 * (PROFILE[:-1] + PROFILE[1:])
    np.testing.assert_allclose(m[17, :17], raw / raw.sum())
    assert m[20, :20].sum() == pytest.approx(1.0) and m.shape == (21, 20)
    np.testing.assert_allclose(
        pt_weight(np.array([0.1, 0.5, 1.75, 3.0, 10.0])), [0.2, 0.2, 0.6, 1.0, 1.0]
    )


def test_hit_weights_by_hand() -> None:
    hits, parts = event()
    w = pd.Series(hit_weights(hits, parts), index=hits["hit_id"])
    exp = expected_weights(hits)
    np.testing.assert_allclose(w.sort_index().to_numpy(), exp.sort_index().to_numpy(), rtol=1e-12)
    assert w.sum() == pytest.approx(1.0)


def test_hit_weights_prefer_true_z_and_normalise_per_event() -> None:
    hits, parts = event()
    shifted = hits.assign(
        tz=hits["z"], z=hits["z"][::-1].to_numpy()
    )  # measured z scrambled, true z right
    np.testing.assert_allclose(hit_weights(shifted, parts), hit_weights(hits, parts))
    two = pd.concat(
        [hits.assign(event_id=1), hits.assign(event_id=2, hit_id=hits["hit_id"])], ignore_index=True
    )
    p2 = pd.concat(
        [parts.assign(event_id=1), parts.assign(event_id=2, px=parts["px"] * 2)], ignore_index=True
    )
    w = hit_weights(two, p2)
    assert w[two["event_id"].to_numpy() == 1].sum() == pytest.approx(1.0)
    assert w[two["event_id"].to_numpy() == 2].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(w[:15], hit_weights(hits, parts))


def test_equal_distances_are_broken_by_hit_id() -> None:
    hits = pd.DataFrame(
        {"hit_id": [4, 3, 2, 1], "particle_id": [1] * 4, "z": [10.0, 10.0, 20.0, 0.0]}
    )
    parts = pd.DataFrame({"particle_id": [1], "vz": [0.0], "px": [5.0], "py": [0.0]})
    w = hit_weights(hits, parts)
    o4 = order_weight_matrix()[4, :4]
    np.testing.assert_allclose(w, [o4[2], o4[1], o4[3], o4[0]])  # hit 3 before hit 4 at |dz| = 10
    assert w.sum() == pytest.approx(1.0)


def test_material_secondaries_weigh_nothing() -> None:
    hits, parts = event()
    # particle 2 made in the material: its 4 hits lose their weight, particle 1 keeps its shape
    w = pd.Series(hit_weights(hits, parts.assign(generation=[0, 1, 0])), index=hits["hit_id"])
    exp = expected_weights(hits)
    exp[[7, 8, 9, 10]] = 0.0
    np.testing.assert_allclose(w.sort_index(), (exp / exp.sum()).sort_index(), rtol=1e-12)
    # generation 0 everywhere is the same as no generation column
    np.testing.assert_allclose(
        hit_weights(hits, parts.assign(generation=0)), hit_weights(hits, parts)
    )


def test_weights_reproduce_the_published_ones_of_the_real_sample(trackml_event) -> None:
    """The real sample's truth file carries the challenge's own weights: hit_weights, with the
    generation read from TrackML's particle_id, gives every hit's weight to 1e-5 (the file
    prints six digits), and the same hits weigh nothing."""
    hits, parts = trackml_event.hits, trackml_event.particles
    published = hits["weight"].to_numpy(np.float64)
    published = published / published.sum()
    w = hit_weights(hits.drop(columns="weight"), parts)
    assert int((parts["generation"] > 0).sum()) > 100  # the sample does hold material secondaries
    np.testing.assert_array_equal(w == 0, published == 0)
    np.testing.assert_allclose(w, published, rtol=1e-5, atol=0)
    # without the rule, the generation >= 1 particles would take 7% of the event's weight
    w_all = hit_weights(hits, parts.drop(columns="generation"))
    secondary = hits["particle_id"].isin(parts.loc[parts["generation"] > 0, "particle_id"])
    assert w_all[secondary.to_numpy()].sum() > 0.05


# --------------------------------------------------------------------------- score
def test_perfect_submission_scores_one() -> None:
    hits, parts = event()
    truth = truth_of(hits, parts)
    perfect = truth[["hit_id", "particle_id"]].rename(columns={"particle_id": "track_id"})
    assert trackml_score(truth, perfect) == pytest.approx(1.0)


def test_noise_only_and_singleton_submissions_score_zero() -> None:
    hits, parts = event()
    truth = truth_of(hits, parts)
    assert trackml_score(truth, sub({14: 1, 15: 1})) == 0.0  # only the noise hits, as one track
    assert (
        trackml_score(truth, sub({int(h): int(h) for h in truth["hit_id"]})) == 0.0
    )  # every hit alone
    assert trackml_score(truth, sub({})) == 0.0  # nothing assigned


def test_split_and_merged_tracks() -> None:
    hits, parts = event()
    truth = truth_of(hits, parts)
    w = expected_weights(hits)
    # particle 1 split 4 + 2: the 4-hit part holds 4/6 > 50% and scores; the 2-hit part does not
    assert trackml_score(truth, sub({1: 10, 2: 10, 3: 10, 4: 10, 5: 11, 6: 11})) == pytest.approx(
        w[[1, 2, 3, 4]].sum()
    )
    # split 3 + 3: neither half holds more than 50% of the particle
    assert trackml_score(truth, sub({1: 10, 2: 10, 3: 10, 4: 11, 5: 11, 6: 11})) == 0.0
    # 4 hits of particle 1 + 3 hits of particle 2 + a noise hit: 4/8 is not a majority of the track
    assert trackml_score(truth, sub({1: 1, 2: 1, 3: 1, 4: 1, 7: 1, 8: 1, 9: 1, 14: 1})) == 0.0
    # without the noise hit: 4/7 > 50% of the track and 4/6 of particle 1; only particle 1's hits count
    assert trackml_score(truth, sub({1: 1, 2: 1, 3: 1, 4: 1, 7: 1, 8: 1, 9: 1})) == pytest.approx(
        w[[1, 2, 3, 4]].sum()
    )
    # particle 2 complete plus 2 noise hits: 4/6 of the track, 4/4 of the particle
    assert trackml_score(truth, sub({7: 5, 8: 5, 9: 5, 10: 5, 14: 5, 15: 5})) == pytest.approx(
        w[[7, 8, 9, 10]].sum()
    )


def test_ties_never_score_and_go_to_the_smallest_particle_id() -> None:
    hits = pd.DataFrame({"hit_id": np.arange(1, 9), "particle_id": [7, 7, 7, 7, 5, 5, 5, 5]})
    truth = hits.assign(weight=1 / 8)
    # 2 + 2 hits of particles 7 and 5: a tie, not a majority
    tied = sub({1: 1, 2: 1, 5: 1, 6: 1, 3: 2, 4: 2, 7: 3, 8: 3})
    assert trackml_score(truth, tied) == 0.0
    tracks = trackml._analyze_tracks(
        *trackml._merge_submission(truth, tied, ["weight"]), weight=True
    )
    assert tracks.set_index("track_id").loc[1, "major_particle_id"] == 5
    # a tie between noise and a particle goes to noise (id 0), as in the trackml-library
    noisy = pd.DataFrame(
        {"hit_id": [1, 2, 3, 4], "particle_id": [0, 0, 9, 9], "weight": [0, 0, 0.5, 0.5]}
    )
    tracks = trackml._analyze_tracks(
        *trackml._merge_submission(noisy, sub({1: 1, 2: 1, 3: 1, 4: 1}), ["weight"]), weight=True
    )
    assert tracks["major_particle_id"].tolist() == [0]


def reference_score(truth: pd.DataFrame, submission: pd.DataFrame) -> float:
    """The rules written out with plain dictionaries, for comparison."""
    pid = dict(zip(truth["hit_id"], truth["particle_id"], strict=True))
    weight = dict(zip(truth["hit_id"], truth["weight"], strict=True))
    particle_n = Counter(truth["particle_id"])
    tracks: dict[int, list[int]] = {}
    for h, t in zip(submission["hit_id"], submission["track_id"], strict=True):
        tracks.setdefault(t, []).append(h)
    score = 0.0
    for hs in tracks.values():
        counts = Counter(pid[h] for h in hs)
        best = max(counts.values())
        major = min(p for p, c in counts.items() if c == best)
        if 2 * best > len(hs) and 2 * best > particle_n[major]:
            score += sum(weight[h] for h in hs if pid[h] == major)
    return score / sum(weight.values())


def test_score_agrees_with_a_plain_reference_on_random_submissions() -> None:
    rng = np.random.default_rng(5)
    n_part = 60
    nh = rng.integers(1, 13, n_part)
    pid = np.concatenate([np.full(n, i + 1) for i, n in enumerate(nh)] + [np.zeros(40, int)])
    hits = pd.DataFrame(
        {
            "hit_id": rng.permutation(len(pid)) + 100,
            "particle_id": pid,
            "z": rng.normal(0, 300, len(pid)),
        }
    )
    parts = pd.DataFrame(
        {
            "particle_id": np.arange(1, n_part + 1),
            "vz": rng.normal(0, 50, n_part),
            "px": rng.exponential(1.5, n_part),
            "py": rng.exponential(1.5, n_part),
        }
    )
    truth = truth_of(hits, parts)
    for trial in range(5):
        track = pid.copy()
        move = rng.random(len(pid)) < 0.1 * trial  # scramble a growing fraction of hits
        track[move] = rng.integers(0, n_part + 5, move.sum())
        keep = rng.random(len(pid)) > 0.05  # a few hits unassigned
        s = pd.DataFrame({"hit_id": hits["hit_id"][keep], "track_id": track[keep]})
        assert trackml_score(truth, s) == pytest.approx(reference_score(truth, s), abs=1e-12)


def test_several_events_average_their_scores() -> None:
    hits, parts = event()
    truth = truth_of(hits, parts)
    w = expected_weights(hits)
    both = pd.concat([truth.assign(event_id=1), truth.assign(event_id=2)], ignore_index=True)
    perfect = truth[["hit_id", "particle_id"]].rename(columns={"particle_id": "track_id"})
    half = sub({1: 10, 2: 10, 3: 10, 4: 10, 5: 11, 6: 11})
    s = pd.concat([perfect.assign(event_id=1), half.assign(event_id=2)], ignore_index=True)
    assert trackml_score(both, s) == pytest.approx((1.0 + w[[1, 2, 3, 4]].sum()) / 2)


def test_bad_submissions_are_named() -> None:
    hits, parts = event()
    truth = truth_of(hits, parts)
    with pytest.raises(HepmlError, match="hit_id 3 more than once"):
        trackml_score(truth, sub({3: 1}).pipe(lambda d: pd.concat([d, d])))
    with pytest.raises(HepmlError, match="hit_id 999"):
        trackml_score(truth, sub({999: 1}))
    with pytest.raises(HepmlError, match="submission lacks column 'track_id'"):
        trackml_score(truth, pd.DataFrame({"hit_id": [1]}))


# --------------------------------------------------------------------------- efficiency
def test_efficiency_fakes_and_duplicates_by_hand() -> None:
    hits, parts = event()
    # particle 1 (2 GeV, 6 hits): found by track 10 (4 of its hits), duplicated by track 11 (its other 2 + hit 12)
    # particle 2 (0.3 GeV): below 1 GeV, not reconstructable; its track 20 is matched
    # particle 3 (5 GeV, 3 hits): below 5 hits, not reconstructable
    # track 30: 2 noise + 1 hit of particle 3: a noise-majority fake
    # track 40: 1 hit of particle 3 + 1 of particle 2 + ... too short (2 hits) to count
    assign = {
        1: 10,
        2: 10,
        3: 10,
        4: 10,
        5: 11,
        6: 11,
        12: 11,
        7: 20,
        8: 20,
        9: 20,
        14: 30,
        15: 30,
        11: 30,
        13: 40,
        10: 40,
    }
    r = tracking_efficiency(hits, parts, sub(assign))
    assert (r.n_reconstructable, r.n_found, r.efficiency) == (1, 1, 1.0)
    assert (r.n_tracks, r.n_fake) == (4, 1) and r.fake_rate == pytest.approx(1 / 4)
    # matched tracks: 10, 11 (2 of 3 hits are particle 1's), 20 -> one duplicate among three
    assert r.n_duplicate == 1 and r.duplicate_rate == pytest.approx(1 / 3)
    t = r.tracks.set_index("track_id")
    assert t.loc[11, "duplicate"] and not t.loc[10, "duplicate"] and t.loc[30, "fake"]
    assert t.loc[10, "pt"] == pytest.approx(2.0) and t.loc[10, "eta"] == pytest.approx(
        np.arcsinh(0.5)
    )
    assert np.isnan(t.loc[30, "pt"])
    p = r.particles.set_index("particle_id")
    assert p.loc[1, "found"] and p.loc[1, "duplicated"] and p.loc[1, "n_matched"] == 2
    assert not p.loc[2, "reconstructable"] and p.loc[2, "found"]
    # with a looser selection particle 2 counts: found as well -> 2/2
    loose = tracking_efficiency(hits, parts, sub(assign), min_pt_gev=0.1, min_hits=4)
    assert (loose.n_reconstructable, loose.efficiency) == (2, 1.0)
    assert set(r.summary()) >= {"efficiency", "fake_rate", "duplicate_rate"}


def test_half_found_particle_is_lost() -> None:
    hits, parts = event()
    # particle 1 split 3 + 3: each track is pure (matched) but holds only half of the hits
    r = tracking_efficiency(hits, parts, sub({1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2}))
    assert r.efficiency == 0.0 and r.fake_rate == 0.0
    assert r.n_duplicate == 1  # two tracks matched to one particle


def test_long_particles_and_unknown_particles() -> None:
    # 25 hits: the 20-hit profile for the first 20 (by |z - vz|), zero after, as in the trackml-library
    hits = pd.DataFrame(
        {
            "hit_id": np.arange(1, 28),
            "particle_id": [1] * 25 + [8, 8],
            "z": np.r_[np.arange(25.0), 1.0, 2.0],
        }
    )
    parts = pd.DataFrame({"particle_id": [1], "vz": [0.0], "px": [4.0], "py": [0.0]})
    w = hit_weights(hits, parts)
    np.testing.assert_allclose(w[:20], order_weight_matrix()[20, :20])
    assert np.all(w[20:] == 0)  # hits 21..25, and particle 8 absent from the particle table
