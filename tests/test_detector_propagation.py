"""hepml.detector.propagation: the helix and the Runge-Kutta step against the analytic helix,
the stepping through a non-uniform field interface, crossings on their module planes in
path order, propagation through TrackML's detector against a brute-force intersection with
every module and against navigation.surfaces_crossed, and the sense of the bending."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hepml import config
from hepml.detector import Detector, detector_from_modules, load_detector
from hepml.detector.constants import GEV_PER_T_MM
from hepml.detector.field import UniformField
from hepml.detector.navigation import surfaces_crossed
from hepml.detector.propagation import (
    _DX,
    _DZ,
    _N_ROWS,
    _P,
    _Q,
    _X,
    _Y,
    _Z,
    Crossings,
    TrackStates,
    _field_step,
    helix_move,
    helix_move_z,
    propagate,
    propagate_paused,
    propagate_resumed,
)
from hepml.detector.trackml import read_detectors_csv

ROOT = Path(__file__).resolve().parents[1]
TRACKML_DIR = Path(os.environ.get("HEPML_TRACKML_DIR", ROOT.parent / "shared" / "trackml"))
REAL_CSV = TRACKML_DIR / "detectors.csv.gz"


def _uniform_cfg() -> dict:
    return config.validate({"tracker": {"field": {"model": "uniform", "central_T": 2.0}}})


@pytest.fixture(scope="module")
def det() -> Detector:
    """TrackML's detector in a uniform 2 T field: the real detectors.csv when present, else
    the generated default (the same modules)."""
    cfg = _uniform_cfg()
    if REAL_CSV.is_file():
        return detector_from_modules(read_detectors_csv(REAL_CSV), cfg["tracker"], str(REAL_CSV))
    return load_detector(cfg)


def _state(x0: np.ndarray, d: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    st = np.zeros((_N_ROWS, len(p)))
    st[_X : _Z + 1] = x0
    st[_DX : _DZ + 1] = d / np.linalg.norm(d, axis=0)
    st[_P], st[_Q] = p, q
    return st


def _analytic(
    x0: np.ndarray, d: np.ndarray, p: np.ndarray, q: np.ndarray, bz: float, s: np.ndarray
) -> np.ndarray:
    """Position after path s on the helix in B = (0, 0, bz), written independently: a circle
    of radius R = pT / (GEV_PER_T_MM |q| B) about the centre left (q < 0) or right (q > 0)
    of the motion, z advancing as s cos(theta)."""
    d = d / np.linalg.norm(d, axis=0)
    st = np.hypot(d[0], d[1])
    pt = p * st
    radius = pt / (GEV_PER_T_MM * np.abs(q) * bz)
    side = -np.sign(q * bz)  # +1: centre to the left of the transverse motion (counter-clockwise)
    ux, uy = d[0] / st, d[1] / st
    cx, cy = x0[0] - side * uy * radius, x0[1] + side * ux * radius
    phi0 = np.arctan2(x0[1] - cy, x0[0] - cx)
    phi = phi0 + side * s * st / radius
    return np.stack([cx + radius * np.cos(phi), cy + radius * np.sin(phi), x0[2] + s * d[2]])


# --------------------------------------------------------------------------- helix and Runge-Kutta
def test_helix_move_is_the_analytic_helix() -> None:
    rng = np.random.default_rng(1)
    n = 500
    x0 = rng.normal(0.0, 10.0, (3, n))
    d = rng.normal(0.0, 1.0, (3, n))
    p = 0.2 + rng.random(n) * 5.0
    q = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    s = rng.random(n) * 1000.0
    st = _state(x0, d, p, q)
    helix_move(st, (np.zeros(n), np.zeros(n), np.full(n, 2.0)), s)
    np.testing.assert_allclose(st[_X : _Z + 1], _analytic(x0, d, p, q, 2.0, s), atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(st[_DX : _DZ + 1], axis=0), 1.0, rtol=1e-12)
    # about z, helix_move_z is the same motion
    st2 = _state(x0, d, p, q)
    helix_move_z(st2, -q * GEV_PER_T_MM * 2.0 / p, s)
    np.testing.assert_allclose(st2[_X : _DZ + 1], st[_X : _DZ + 1], atol=1e-9)
    # a field along another axis is the same helix, rotated: B along x, motion in (y, z)
    st3 = _state(np.zeros((3, 1)), np.array([[0.0], [1.0], [0.0]]), np.ones(1), np.ones(1))
    helix_move(st3, (np.full(1, 2.0), np.zeros(1), np.zeros(1)), np.full(1, 100.0))
    ref = _analytic(
        np.zeros((3, 1)),
        np.array([[1.0], [0.0], [0.0]]),
        np.ones(1),
        np.ones(1),
        2.0,
        np.full(1, 100.0),
    )
    np.testing.assert_allclose(st3[[_Y, _Z, _X], 0], ref[:, 0], atol=1e-9)  # (y, z, x) as (x, y, z)


def test_runge_kutta_in_a_uniform_field_is_the_helix_to_1um_over_a_metre() -> None:
    n = 16
    phi = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    d = np.stack([np.cos(phi), np.sin(phi), np.linspace(-1.0, 1.0, n)])
    x0 = np.zeros((3, n))
    p = np.ones(n)  # 1 GeV
    q = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    st = _state(x0, d, p, q)
    field = UniformField(2.0)
    for _ in range(10):  # ten 100 mm steps: one metre
        _field_step(st, field, np.full(n, 100.0))
    err = np.linalg.norm(st[_X : _Z + 1] - _analytic(x0, d, p, q, 2.0, np.full(n, 1000.0)), axis=0)
    assert err.max() < 1e-3  # mm
    np.testing.assert_allclose(np.linalg.norm(st[_DX : _DZ + 1], axis=0), 1.0, rtol=1e-12)


@dataclass(frozen=True)
class _SteppedUniform:
    """A uniform field that says it is not: propagation must step it with Runge-Kutta."""

    central_T: float = 2.0
    uniform: bool = False

    def at(
        self, x: np.ndarray, y: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        zero = np.zeros(np.shape(x))
        return zero, zero, np.full(np.shape(x), self.central_T)


def _tracks(n: int, pt: float | np.ndarray, seed: int = 3) -> TrackStates:
    rng = np.random.default_rng(seed)
    eta = (rng.random(n) - 0.5) * 6.0
    phi = rng.random(n) * 2 * np.pi
    pt = np.broadcast_to(np.asarray(pt, dtype=np.float64), (n,))
    q = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    z0 = rng.normal(0.0, 50.0, n)
    return TrackStates.from_momentum(
        np.zeros(n), np.zeros(n), z0, pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), q
    )


def test_stepped_propagation_reproduces_the_exact_helix(det: Detector) -> None:
    """The same tracks through the detector with exact helix moves and with Runge-Kutta steps
    (and the snap onto each surface) meet the same modules at the same points (< 1 um)."""
    tracks = _tracks(400, 1.0)
    exact = propagate(tracks, det)
    stepped_det = Detector(
        det.modules,
        det.surfaces,
        det.x_over_x0,
        det.x_over_lambda,
        det.passive,
        _SteppedUniform(),
        det.source,
    )
    stepped = propagate(tracks, stepped_det)
    assert len(exact) > 3000
    key_e = exact.track * 100_000 + exact.module
    key_s = stepped.track * 100_000 + stepped.module
    common, ie, is_ = np.intersect1d(key_e, key_s, return_indices=True)
    assert len(common) > 0.999 * len(exact) and len(common) > 0.999 * len(stepped)
    dist = np.sqrt(
        (exact.x[ie] - stepped.x[is_]) ** 2
        + (exact.y[ie] - stepped.y[is_]) ** 2
        + (exact.z[ie] - stepped.z[is_]) ** 2
    )
    assert np.quantile(dist, 0.99) < 1e-3 and dist.max() < 1e-2  # mm
    np.testing.assert_allclose(exact.s[ie], stepped.s[is_], atol=1e-2)


def test_paused_and_resumed_propagation_is_the_whole_one() -> None:
    """Stopped after a few surfaces and taken on from there (renumbered), tracks in the
    solenoid's field cross the same surfaces at the same points as in one propagation."""
    sol = load_detector(config.validate({}))
    tracks = _tracks(300, np.geomspace(0.2, 20.0, 300), seed=5)
    whole = propagate(tracks, sol, max_step_mm=300.0, surfaces_only=True)
    first, paused, idx = propagate_paused(tracks, sol, 3, max_step_mm=300.0, surfaces_only=True)
    assert len(idx) > 100 and np.bincount(first.track).max() == 3
    rest = propagate_resumed(paused, sol, 300.0, surfaces_only=True, track=idx + 1000)
    assert (rest.track >= 1000).all()
    both = Crossings.concatenate([first, rest.take(np.arange(len(rest)))])
    both = Crossings(
        **{**both.__dict__, "track": np.where(both.track >= 1000, both.track - 1000, both.track)}
    )
    both = both.take(np.lexsort((both.s, both.track)))
    for f in ("track", "surface", "x", "y", "z", "dx", "dy", "dz", "s"):
        np.testing.assert_array_equal(getattr(both, f), getattr(whole, f))


def test_a_helix_started_at_its_closest_approach_is_propagated_whatever_the_round_off() -> None:
    """A seed's helix starts at its point of closest approach to the beam line, where its
    radial velocity is zero: with |d0| of millimetres (detached seeds, the ghost filter's
    opened windows) round-off of either sign decided whether it counted as turning inwards:
    86 of these 400 were dropped, and the real sample's ghost-filter candidates went from
    659 to 703 once fixed. All of them cross the pixel layers."""
    sol = load_detector(config.validate({}))
    n = 400
    rng = np.random.default_rng(3)
    phi = rng.uniform(-np.pi, np.pi, n)
    d0 = rng.uniform(1.5, 20.0, n)
    tangent = np.stack([-np.sin(phi), np.cos(phi)])
    cot = rng.uniform(-1.0, 1.0, n)
    rad = np.cos(phi) * d0 * tangent[0] + np.sin(phi) * d0 * tangent[1]
    assert (rad < 0).any() and (rad > 0).any()  # round-off of both signs
    tracks = TrackStates.from_momentum(
        np.cos(phi) * d0,
        np.sin(phi) * d0,
        np.zeros(n),
        2.0 * tangent[0],
        2.0 * tangent[1],
        2.0 * cot,
        np.ones(n),
    )
    cr = propagate(tracks, sol, surfaces_only=True)
    assert len(np.unique(cr.track)) == n
    assert np.bincount(cr.track, minlength=n).min() >= 4


# --------------------------------------------------------------------------- crossings
def test_crossings_lie_on_their_module_planes_in_path_order(det: Detector) -> None:
    tracks = _tracks(600, np.geomspace(0.15, 20.0, 600), seed=4)
    cr = propagate(tracks, det)
    m = det.modules
    u, v, w = m.to_local(cr.module, cr.x, cr.y, cr.z)
    assert len(cr) > 5000
    assert np.abs(w).max() < 1e-6  # mm: on the mid-plane
    assert m.inside(cr.module, u, v).all()
    np.testing.assert_allclose(u, cr.u, atol=1e-9)
    np.testing.assert_allclose(v, cr.v, atol=1e-9)
    # cos(incidence) is |d . w| with the module normal
    np.testing.assert_allclose(
        cr.cos_incidence,
        np.abs((np.stack([cr.dx, cr.dy, cr.dz]).T * m.normal[cr.module]).sum(axis=1)),
        atol=1e-12,
    )
    # ordered by track, then by path length
    assert (np.diff(cr.track) >= 0).all()
    same = np.diff(cr.track) == 0
    assert (np.diff(cr.s)[same] > 0).all()
    # the path length is that of the helix: the crossing is the start moved by s
    t = cr.track
    x0 = np.stack([tracks.x[t], tracks.y[t], tracks.z[t]])
    d = np.stack([tracks.dx[t], tracks.dy[t], tracks.dz[t]])
    np.testing.assert_allclose(
        np.stack([cr.x, cr.y, cr.z]),
        _analytic(x0, d, tracks.p[t], tracks.q[t], 2.0, cr.s),
        atol=1e-6,
    )
    assert (cr.surface == det.module_surface[cr.module]).all()


def _brute_force(det: Detector, tracks: TrackStates) -> list[np.ndarray]:
    """Module rows each straight line crosses, ordered along it: every one of the detector's
    modules intersected, no lookup table, no navigation."""
    m = det.modules
    n, c, rows = m.normal, m.center, np.arange(len(m))
    out = []
    for i in range(len(tracks)):
        o = np.array([tracks.x[i], tracks.y[i], tracks.z[i]])
        d = np.array([tracks.dx[i], tracks.dy[i], tracks.dz[i]])
        d = d / np.linalg.norm(d)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((c - o) * n).sum(axis=1) / (n @ d)
        ok = np.isfinite(t) & (t > 0)
        pts = o + np.where(ok, t, 0.0)[:, None] * d
        u, v, _ = m.to_local(rows, pts[:, 0], pts[:, 1], pts[:, 2])
        ok &= m.inside(rows, u, v)
        hit = rows[ok]
        out.append(hit[np.argsort(t[ok])])
    return out


def test_propagation_through_trackml_meets_the_modules_a_line_crosses(det: Detector) -> None:
    """Straight tracks (pT 1e5 GeV) from the beam line: the modules propagate() reports are
    those a brute-force intersection with all modules finds, in the same order, and the
    surfaces are those navigation.surfaces_crossed predicts."""
    n = 120
    rng = np.random.default_rng(5)
    eta = np.linspace(-3.9, 3.9, n)
    z0 = rng.normal(0.0, 50.0, n)
    phi = rng.random(n) * 2 * np.pi
    pt = 1e5
    tracks = TrackStates.from_momentum(
        np.zeros(n),
        np.zeros(n),
        z0,
        pt * np.cos(phi),
        pt * np.sin(phi),
        pt * np.sinh(eta),
        np.ones(n),
    )
    cr = propagate(tracks, det)
    expected = _brute_force(det, tracks)
    bounds = np.searchsorted(cr.track, np.arange(n + 1))
    got = [cr.module[bounds[i] : bounds[i + 1]] for i in range(n)]
    same = [np.array_equal(g, e) for g, e in zip(got, expected, strict=True)]
    assert np.mean(same) > 0.99, np.flatnonzero(~np.array(same))
    assert sum(len(e) for e in expected) > 10 * n  # they cross barrels and disks
    # the surfaces in order, once each, as navigation predicts
    seqs = surfaces_crossed(det, eta, z0, pt, 1.0, phi)
    for i in range(n):
        s = det.module_surface[expected[i]]
        s = s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s
        if same[i]:
            np.testing.assert_array_equal(seqs[i], s)
    barrel = {int(i) for i in det.barrel_surfaces}
    central = [set(seqs[i].tolist()) for i in range(n) if abs(eta[i]) < 0.3]
    assert central and all(barrel <= c for c in central)  # |eta| < 0.3: all ten barrel layers


def test_charge_sign_bends_the_right_way(det: Detector) -> None:
    """In B along +z a positive track turns clockwise seen from +z: starting along +x it
    bends to -y, by |y| = r^2 / (2 R) at radius r, R = pT / (0.3 B)."""
    n = 2
    pt = 1.0
    tracks = TrackStates.from_momentum(
        np.zeros(n),
        np.zeros(n),
        np.zeros(n),
        np.full(n, pt),
        np.zeros(n),
        np.zeros(n),
        np.array([1.0, -1.0]),
    )
    cr = propagate(tracks, det)
    radius = pt / (GEV_PER_T_MM * 2.0)
    for q, sign in ((0, -1.0), (1, 1.0)):
        c = cr.take(np.flatnonzero(cr.track == q))
        r = np.hypot(c.x, c.y)
        assert len(c) >= 10 and (r > 1000.0).any()
        assert (np.sign(c.y) == sign).all()
        # a circle through the origin tangent to x: r^2 = 2 R |y| exactly
        np.testing.assert_allclose(np.abs(c.y), r**2 / (2 * radius), rtol=1e-9)
        # the transverse direction turns the same way
        assert (np.sign(c.dy) == sign).all()
