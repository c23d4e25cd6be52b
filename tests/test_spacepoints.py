"""Space points: surface, module, local frame and errors of each hit; the window index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hepml.errors import HepmlError
from hepml.reco.seeding import find_seeds
from hepml.reco.spacepoints import SpacePoints, SurfaceIndex, expand_ranges, wrap_phi
from hepml.rng import rng


def test_expand_ranges():
    i, j = expand_ranges(np.array([2, 5, 0, 7]), np.array([4, 5, 1, 9]))
    assert i.tolist() == [0, 0, 2, 3, 3]
    assert j.tolist() == [2, 3, 0, 7, 8]
    i, j = expand_ranges(np.array([3]), np.array([1]))
    assert len(i) == len(j) == 0


def _check_points(ev, max_w_mm: float) -> None:
    """Every hit on its (volume, layer, module): on the module's plane, inside its area, with
    pitch / sqrt(12) errors and the surface's kind."""
    det, sp, h = ev.det, ev.sp, ev.hits
    vol, lay, mid = (h[c].to_numpy() for c in ("volume_id", "layer_id", "module_id"))
    np.testing.assert_array_equal(sp.surface, det.surface_of(vol, lay))
    assert (sp.surface >= 0).all() and (sp.module >= 0).all()
    m = det.modules
    row = sp.module
    np.testing.assert_array_equal(m.volume_id[row], vol)
    np.testing.assert_array_equal(m.layer_id[row], lay)
    np.testing.assert_array_equal(m.module_id[row], mid)
    np.testing.assert_array_equal(det.module_surface[row], sp.surface)
    u, v, w = m.to_local(row, sp.x, sp.y, sp.z)
    assert np.abs(w).max() < max_w_mm
    assert m.inside(row, u, v, tol=1e-3).all()
    np.testing.assert_allclose(sp.sigma_t, m.pitch_u[row] / np.sqrt(12.0))
    np.testing.assert_allclose(sp.sigma_l, m.pitch_v[row] / np.sqrt(12.0))
    kind = np.array([not s.is_barrel for s in det.surfaces])[sp.surface]
    np.testing.assert_array_equal(sp.disk, kind)
    np.testing.assert_allclose(sp.r, np.hypot(sp.x, sp.y))
    np.testing.assert_allclose(sp.w, np.where(kind, sp.r, sp.z))
    # local axes: u across the track (along r*phi), v along z (barrel) or r (disk)
    for s in (det.surfaces[det.barrel_surfaces[0]], det.surfaces[det.disk_surfaces[0]]):
        rows = np.arange(s.first, s.stop)
        c = m.center[rows]
        phi_hat = (
            np.stack([-c[:, 1], c[:, 0], np.zeros(len(c))], 1) / np.hypot(c[:, 0], c[:, 1])[:, None]
        )
        assert np.abs(np.einsum("ij,ij->i", m.rotation[rows, :, 0], phi_hat)).min() > 0.99


def test_points_sit_on_their_modules_simulated(sim_event):
    _check_points(sim_event, max_w_mm=1e-3)  # float32 positions


def test_points_sit_on_their_modules_real(trackml_event):
    """Real hits lie within the module's thickness (TrackML's cluster positions)."""
    _check_points(trackml_event, max_w_mm=0.2)


def test_measured_residuals_have_the_binary_resolution(sim_event):
    """Simulated hits: local (u, v) minus the true crossing has RMS pitch / sqrt(12) (uniform)."""
    ev = sim_event
    sel = np.flatnonzero(ev.pid > 0)
    m, row = ev.det.modules, ev.sp.module[sel]
    u, v, _ = m.to_local(row, ev.sp.x[sel], ev.sp.y[sel], ev.sp.z[sel])
    t = ev.hits[["tx", "ty", "tz"]].to_numpy(np.float64)[sel]
    tu, tv, _ = m.to_local(row, t[:, 0], t[:, 1], t[:, 2])
    # edge hits are clipped onto the module; far from the edges the residual is uniform
    inner = m.inside(row, tu, tv, tol=-0.2)
    pix = np.isin(ev.hits["volume_id"].to_numpy()[sel], (7, 8, 9)) & inner
    for du, sig in ((u - tu, ev.sp.sigma_t[sel]), (v - tv, ev.sp.sigma_l[sel])):
        ratio = np.std(du[pix]) / np.median(sig[pix])
        assert 0.97 < ratio < 1.03, ratio
        # |du| <= pitch / 2, to float32 precision
        assert (np.abs(du[pix]) <= np.sqrt(3.0) * sig[pix] + 1e-4).all()


def test_unknown_module_ids_and_surfaces():
    """A module id the detector does not know: module -1, the surface's first module's errors;
    a (volume, layer) it does not know: surface -1, left out of seeding."""
    from hepml import config
    from hepml.detector import load_detector

    det = load_detector(config.validate({}))
    s = det.surfaces[det.barrel_surfaces[0]]
    m = det.modules
    rows = np.array([s.first, s.first + 1])
    x, y, z = m.center[rows].T
    sp = SpacePoints.from_arrays(
        det,
        np.r_[x, 10.0],
        np.r_[y, 10.0],
        np.r_[z, 0.0],
        np.array([s.volume_id, s.volume_id, 99]),
        np.array([s.layer_id, s.layer_id, 2]),
        np.array([m.module_id[s.first], 10**8, 1]),
    )
    assert sp.surface.tolist() == [s.index, s.index, -1]
    assert sp.module.tolist() == [s.first, -1, -1]
    np.testing.assert_allclose(sp.sigma_t[:2], m.pitch_u[s.first] / np.sqrt(12.0))
    no_ids = SpacePoints.from_arrays(det, x, y, z, np.full(2, s.volume_id), np.full(2, s.layer_id))
    assert (no_ids.module == -1).all() and (no_ids.surface == s.index).all()
    with pytest.raises(HepmlError, match="finite"):
        SpacePoints.from_arrays(det, np.r_[x[0], np.nan], y, z, np.full(2, 8), np.full(2, 2))


def test_hits_on_unknown_surfaces_are_left_out(sim_event):
    """Relabelling a third of the pixel-barrel hits to an unknown volume removes them from
    every seed, and the remaining hits still seed."""
    ev = sim_event
    h = ev.hits.copy()
    g = rng(5, "test-unknown-surface")
    vol = h["volume_id"].to_numpy().copy()
    lost = (vol == 8) & (g.random(len(h)) < 1 / 3)
    vol[lost] = 99
    h["volume_id"] = vol
    sp = SpacePoints.from_hits(ev.det, h)
    assert (sp.surface[lost] == -1).all() and (sp.surface[~lost] >= 0).all()
    from hepml.reco.chain import seeding_config

    seeds = find_seeds(sp, ev.det, seeding_config(ev.cfg))
    assert len(seeds) > 500
    assert not np.isin(seeds.hits[seeds.hits >= 0], np.flatnonzero(lost)).any()


def _brute(phi, w, qphi, half, lo, hi):
    dphi = np.abs(wrap_phi(phi[None, :] - qphi[:, None]))
    inside = (dphi <= half[:, None]) & (w[None, :] >= lo[:, None]) & (w[None, :] <= hi[:, None])
    return np.nonzero(inside)


@pytest.mark.parametrize("kind", ["barrel", "disk"])
def test_surface_index_matches_brute_force(sim_event, kind):
    """(phi, z) on a barrel layer, (phi, r) on a disk: every query finds exactly the points in
    its window, once, also across phi = +-pi, for any bin size, with and without ``allowed``."""
    ev = sim_event
    sp = ev.sp
    det = ev.det
    vol = 8 if kind == "barrel" else 9  # pixel barrel layer 4, pixel disk layer 4 (z > 0)
    surf = int(det.surface_of(np.array([vol]), np.array([4]))[0])
    pts = np.flatnonzero(sp.surface == surf)
    assert len(pts) > 300
    w = sp.z[pts] if kind == "barrel" else sp.r[pts]
    np.testing.assert_array_equal(sp.w[pts], w)
    g = rng(7, f"test-surface-index-{kind}")
    nq = 300
    qphi = np.r_[g.uniform(-np.pi, np.pi, nq - 4), np.pi - 1e-3, -np.pi + 1e-3, 3.1, -3.1]
    half = g.uniform(0.0, 0.3, nq)
    wc = g.uniform(w.min() - 20, w.max() + 20, nq)
    hw = g.uniform(0.0, 60.0, nq)
    for w_bin in (3.0, 20.0, 5000.0):
        for allowed in (None, g.random(len(sp)) < 0.5):
            idx = sp.index(surf, w_bin, allowed)
            q, p = idx.query(qphi, half, wc - hw, wc + hw)
            assert np.all(np.diff(q) >= 0)
            got = set(zip(q.tolist(), p.tolist(), strict=True))
            assert len(got) == len(q)  # no duplicates from the wrapped copies
            keep = pts if allowed is None else pts[allowed[pts]]
            kw = sp.z[keep] if kind == "barrel" else sp.r[keep]
            qq, hh = _brute(sp.phi[keep], kw, qphi, half, wc - hw, wc + hw)
            assert got == set(zip(qq.tolist(), keep[hh].tolist(), strict=True))
    assert sp.index(surf, 20.0) is sp.index(surf, 20.0)  # cached


def test_surface_index_of_no_points():
    idx = SurfaceIndex(np.zeros(0), np.zeros(0), np.zeros(0, np.int64))
    q, p = idx.query(np.array([0.0]), np.array([0.1]), np.array([-1.0]), np.array([1.0]))
    assert len(q) == len(p) == 0


def test_from_hits_without_module_ids(sim_event):
    ev = sim_event
    h = pd.DataFrame(ev.hits.drop(columns=["module_id"]))
    sp = SpacePoints.from_hits(ev.det, h)
    assert (sp.module == -1).all()
    np.testing.assert_array_equal(sp.surface, ev.sp.surface)
