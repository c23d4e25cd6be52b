"""Helix fit: exact helices, resolutions against the least-squares expectations, chi2, scattering."""

from __future__ import annotations

import numpy as np
import pytest

from hepml import config
from hepml.detector.layers import TrackerGeometry
from hepml.reco.fit import (
    GEV_PER_T_MM,
    LayerResolution,
    fit_helix,
    helix_from_truth,
    predict_on_cylinder,
    residuals,
)

B = 2.0


def _particles(n: int, rng: np.random.Generator, pt=(0.5, 50.0), eta_max=1.0, sigma_xy=0.015):
    pt = 10 ** rng.uniform(np.log10(pt[0]), np.log10(pt[1]), n)
    phi = rng.uniform(-np.pi, np.pi, n)
    eta = rng.uniform(-eta_max, eta_max, n)
    q = rng.choice([-1, 1], n)
    vx, vy = rng.normal(0.0, sigma_xy, (2, n))
    vz = rng.normal(0.0, 55.0, n)
    return vx, vy, vz, pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), q


def _helix_point(vx, vy, vz, px, py, pz, q, r, n_steps=200_000):
    """First crossing of radius r by the parametric helix, found by bisection (independent code).

    x(s) = c + (1/rho) (-sin(phi_v - rho s), cos(phi_v - rho s)), z(s) = vz + s pz/pT,
    c = v + (1/rho) (sin phi_v, -cos phi_v), rho = 0.2998e-3 q B / pT.
    """
    pt = np.hypot(px, py)
    rho = GEV_PER_T_MM * q * B / pt
    phv = np.arctan2(py, px)
    cx, cy = vx + np.sin(phv) / rho, vy - np.cos(phv) / rho

    def pos(s):
        return cx - np.sin(phv - rho * s) / rho, cy + np.cos(phv - rho * s) / rho

    lo, hi = 0.0, np.pi / abs(rho)  # half a turn: radius grows monotonically from ~0 there
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        x, y = pos(mid)
        lo, hi = (mid, hi) if np.hypot(x, y) < r else (lo, mid)
    x, y = pos(lo)
    return x, y, vz + lo * pz / pt


def test_truth_helix_crossings_match_parametric_helix():
    rng = np.random.default_rng(1)
    vx, vy, vz, px, py, pz, q = _particles(20, rng, pt=(0.6, 20.0))
    truth = helix_from_truth(vx, vy, vz, px, py, pz, q, B)
    assert np.allclose(truth.pt_GeV, np.hypot(px, py), rtol=1e-12)
    assert np.array_equal(truth.q, q)
    # primaries from a 15 um beam spot: |d0| below the vertex displacement
    assert np.all(np.abs(truth.d0_mm) <= np.hypot(vx, vy) + 1e-12)
    for r in (32.0, 500.0, 1000.0):
        x, y, z, ok = predict_on_cylinder(truth, r)
        assert ok.all()
        for i in range(len(q)):
            ex, ey, ez = _helix_point(vx[i], vy[i], vz[i], px[i], py[i], pz[i], q[i], r)
            assert abs(x[i] - ex) < 1e-6 and abs(y[i] - ey) < 1e-6 and abs(z[i] - ez) < 1e-6


def test_looper_does_not_reach_outer_layer():
    # R = pT / (0.3 B) = 250 mm: reaches r < 2R = 500 mm only
    truth = helix_from_truth([0.0], [0.0], [0.0], [0.15], [0.0], [0.0], [1], B)
    assert predict_on_cylinder(truth, 400.0)[3][0]
    assert not predict_on_cylinder(truth, 600.0)[3][0]


def test_exact_helices_are_recovered():
    rng = np.random.default_rng(2)
    vx, vy, vz, px, py, pz, q = _particles(500, rng, sigma_xy=0.5)
    truth = helix_from_truth(vx, vy, vz, px, py, pz, q, B)
    radii = np.array([32.0, 72.0, 116.0, 172.0, 260.0, 360.0, 500.0])
    x, y, z, ok = (
        np.stack(a, axis=1)
        for a in zip(*(predict_on_cylinder(truth, r) for r in radii), strict=True)
    )
    fit = fit_helix(x, y, z, ok, B)
    good = ok.sum(axis=1) >= 3
    assert good.mean() > 0.9
    assert np.allclose(fit.pt_GeV[good], truth.pt_GeV[good], rtol=1e-8)
    assert np.allclose(fit.d0_mm[good], truth.d0_mm[good], atol=1e-8)
    assert np.allclose(fit.z0_mm[good], truth.z0_mm[good], atol=1e-7)
    assert np.allclose(fit.cot_theta[good], truth.cot_theta[good], atol=1e-10)
    assert np.allclose(np.cos(fit.phi0[good] - truth.phi0[good]), 1.0, atol=1e-12)
    assert np.array_equal(fit.q[good], truth.q[good])
    assert np.all(fit.chi2[good] < 1e-12)


def _smeared_tracks(n, pt, sigma_rphi, sigma_z, radii, rng):
    vx, vy, vz, px, py, pz, q = _particles(n, rng, pt=(pt, pt), eta_max=0.5, sigma_xy=0.0)
    truth = helix_from_truth(vx, vy, vz, px, py, pz, q, B)
    pts = [predict_on_cylinder(truth, r) for r in radii]
    x, y, z, ok = (np.stack(a, axis=1) for a in zip(*pts, strict=True))
    assert ok.all()
    dphi = rng.standard_normal(x.shape) * sigma_rphi / radii[None, :]
    xs = x * np.cos(dphi) - y * np.sin(dphi)
    ys = x * np.sin(dphi) + y * np.cos(dphi)
    zs = z + rng.standard_normal(z.shape) * sigma_z
    return truth, xs, ys, zs


def test_resolutions_match_least_squares_expectations():
    """pT, d0, z0 spreads against Gluckstern (NIM 24 (1963) 381) and the linear LS covariance."""
    rng = np.random.default_rng(3)
    n, pt, sr, sz = 4000, 10.0, 0.02, 0.5
    radii = np.linspace(100.0, 1000.0, 10)
    truth, x, y, z = _smeared_tracks(n, pt, sr, sz, radii, rng)
    sig_r = np.full(x.shape, sr)
    sig_z = np.full(x.shape, sz)
    fit = fit_helix(x, y, z, np.ones(x.shape, bool), B, sig_r, sig_z)

    # curvature: sigma_k = sigma / L^2 sqrt(720 / (N + 4)) for N equally spaced points over L
    length = radii[-1] - radii[0]
    sigma_k = sr / length**2 * np.sqrt(720.0 / (len(radii) + 4))
    expected = sigma_k * pt / (GEV_PER_T_MM * B)  # sigma(pT)/pT = sigma_k * R
    rel = truth.pt_GeV / fit.pt_GeV - 1.0  # 1/pT is Gaussian
    assert abs(rel.std() / expected - 1.0) < 0.1
    assert abs(rel.mean()) < 4 * expected / np.sqrt(n)

    # d0: intercept of the parabola y = a + b x + c x^2 through the radii (straight-ish tracks)
    design = np.stack([np.ones_like(radii), radii, radii**2], axis=1)
    sigma_d0 = sr * np.sqrt(np.linalg.inv(design.T @ design)[0, 0])
    dd0 = fit.d0_mm - truth.d0_mm
    assert abs(dd0.std() / sigma_d0 - 1.0) < 0.1
    assert abs(dd0.mean()) < 4 * sigma_d0 / np.sqrt(n)

    # z0: intercept of the straight line z = z0 + cot * s, s ~ r at 10 GeV
    design = np.stack([np.ones_like(radii), radii], axis=1)
    sigma_z0 = sz * np.sqrt(np.linalg.inv(design.T @ design)[0, 0])
    dz0 = fit.z0_mm - truth.z0_mm
    assert abs(dz0.std() / sigma_z0 - 1.0) < 0.1
    assert abs(dz0.mean()) < 4 * sigma_z0 / np.sqrt(n)

    # chi2 with the true resolutions: <chi2/ndf> = 1 (ndf = 2N - 5 = 15)
    assert np.all(fit.ndf == 15)
    assert abs(fit.chi2_ndf.mean() - 1.0) < 5 * np.sqrt(2.0 / 15.0 / n)

    # residuals: the fit absorbs 3 (circle) and 2 (line) of the N = 10 degrees of freedom,
    # so the pulls have widths sqrt((N - 3)/N) and sqrt((N - 2)/N)
    e_xy, e_z, _ = residuals(fit, x, y, z)
    assert abs((e_xy / sr).std() / np.sqrt(7 / 10) - 1.0) < 0.02
    assert abs((e_z / sz).std() / np.sqrt(8 / 10) - 1.0) < 0.02


def test_missing_hits_and_short_rows():
    rng = np.random.default_rng(4)
    truth, x, y, z = _smeared_tracks(50, 5.0, 0.01, 0.1, np.linspace(50, 500, 6), rng)
    mask = np.ones(x.shape, bool)
    mask[:, 2] = False  # a hole
    mask[0, 3:] = False  # row 0 keeps 2 hits: no fit
    x[~mask] = 1e6  # padding values must not matter
    fit = fit_helix(x, y, z, mask, B, np.full(x.shape, 0.01), np.full(x.shape, 0.1))
    assert np.isnan(fit.pt_GeV[0])
    assert np.all(np.abs(fit.pt_GeV[1:] / 5.0 - 1.0) < 0.05)
    assert np.array_equal(fit.ndf[1:], np.full(49, 2 * 5 - 5))


def test_multiple_scattering_sigma_is_highland():
    cfg = config.validate({})
    res = LayerResolution.from_geometry(TrackerGeometry.from_config(cfg))
    p, cot = np.array([1.0]), np.array([0.0])
    ms = res.ms_sigma_rphi(p, cot)[0]
    assert ms[0] == 0.0  # nothing scatters before the first layer
    t = res.x_over_x0[0]
    theta0 = 0.0136 / 1.0 * np.sqrt(t) * (1 + 0.038 * np.log(t))  # PDG eq. 34.15
    assert ms[1] == pytest.approx(theta0 * (res.radius_mm[1] - res.radius_mm[0]), rel=1e-12)
    # 1/p scaling, and a longer path at cot theta = 1 (x/X0 / sin theta, lever / sin theta)
    assert np.allclose(res.ms_sigma_rphi(np.array([2.0]), cot)[0], ms / 2.0)
    assert np.all(res.ms_sigma_rphi(p, np.array([1.0]))[0][1:] > ms[1:] * np.sqrt(2.0))
    sr, sz = res.hit_sigmas(np.array([[0, 1, -1]]), p, cot)
    assert sr[0, 0] == pytest.approx(res.sigma_rphi_mm[0])
    assert sr[0, 1] == pytest.approx(np.hypot(res.sigma_rphi_mm[1], ms[1]))
    assert sz[0, 2] == 1.0  # padding
