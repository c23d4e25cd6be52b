"""Helix fits of barrel track candidates: a Karimaki circle fit in xy and a line in s-z.

Track parameters are perigee parameters at the z axis (field along +z):

* ``rho_per_mm``: signed curvature, > 0 when the track turns clockwise seen from +z,
  which is a positive charge in a field along +z; radius R = 1/|rho| and
  pT = 0.299792458e-3 * |B| / |rho| GeV (R in mm, PDG eq. 34.33);
* ``phi0``: direction of the transverse momentum at the point of closest
  approach (PCA) to the z axis;
* ``d0_mm``: signed transverse impact parameter, the PCA being
  d0 * (sin phi0, -cos phi0) (d0 > 0 when the z axis lies to the left of the track);
* ``z0_mm``: z at the PCA; ``cot_theta = dz/ds = pz/pT`` with s the transverse arc
  length from the PCA.

In these parameters the track circle is (Karimaki, NIM A305 (1991) 187, eq. 2)

    F(x, y) = rho/2 (x^2 + y^2) - (1 + rho d0) (x sin phi0 - y cos phi0) + rho d0^2/2 + d0 = 0,

with centre (d0 + 1/rho) (sin phi0, -cos phi0), and F > 0 for points to the left
of the direction of motion. Nothing diverges for straight tracks (rho -> 0).

The circle fit is Karimaki's non-iterative weighted fit (ibid., eqs. 8-12): it
minimises the algebraic distance F, which equals the geometric one to O(rho *
distance), exact for three points. The s-z line is a weighted least-squares
straight line. The chi2 uses the geometric residuals (left-signed distance to the
circle, z residual at the hit's arc length) and per-hit resolutions, which
:class:`LayerResolution` derives from the layers' pitch and multiple scattering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numba import njit

from hepml.detector.arrays import flat_arrays
from hepml.detector.layers import TrackerGeometry
from hepml.detector.scattering import highland_theta0

#: pT [GeV] = K * |q| * B [T] * R [mm] (PDG 2024, eq. 34.33 with R in mm).
GEV_PER_T_MM = 0.299792458e-3


@dataclass
class HelixFit:
    """Fitted (or true) helices, one entry per track; every field is an ``(N,)`` array.

    Units: mm, GeV, rad. ``q`` is +-1 (``sign(rho * B)``); ``chi2``/``ndf`` are NaN/0
    for helices built from truth (:func:`helix_from_truth`). The centre and
    radius are derived from (rho, phi0, d0) and are huge for straight tracks.
    """

    pt_GeV: np.ndarray
    q: np.ndarray
    phi0: np.ndarray
    d0_mm: np.ndarray
    z0_mm: np.ndarray
    cot_theta: np.ndarray
    rho_per_mm: np.ndarray
    xc_mm: np.ndarray
    yc_mm: np.ndarray
    radius_mm: np.ndarray
    chi2: np.ndarray
    ndf: np.ndarray
    chi2_ndf: np.ndarray
    n_hits: np.ndarray

    def __len__(self) -> int:
        return len(self.pt_GeV)

    @property
    def eta(self) -> np.ndarray:
        """Pseudorapidity asinh(cot theta)."""
        return np.arcsinh(self.cot_theta)

    @property
    def p_GeV(self) -> np.ndarray:
        """Momentum pT * sqrt(1 + cot^2 theta)."""
        return self.pt_GeV * np.sqrt(1.0 + self.cot_theta**2)

    def take(self, idx: np.ndarray) -> HelixFit:
        """The tracks ``idx`` (index array or boolean mask)."""
        return HelixFit(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @classmethod
    def concat(cls, fits: list[HelixFit]) -> HelixFit:
        """The tracks of several fits, in order."""
        return cls(
            **{f.name: np.concatenate([getattr(x, f.name) for x in fits]) for f in fields(cls)}
        )


def _from_perigee(
    rho: np.ndarray,
    phi0: np.ndarray,
    d0: np.ndarray,
    z0: np.ndarray,
    cot: np.ndarray,
    bfield_T: float | np.ndarray,
    chi2: np.ndarray,
    ndf: np.ndarray,
    n_hits: np.ndarray,
) -> HelixFit:
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / rho
        pt = GEV_PER_T_MM * np.abs(bfield_T) * np.abs(inv)
        chi2_ndf = np.where(ndf > 0, chi2 / np.maximum(ndf, 1), np.nan)
    q = np.where(rho * np.sign(bfield_T) >= 0, 1, -1).astype(np.int8)
    lever = d0 + inv
    return HelixFit(
        pt_GeV=pt,
        q=q,
        phi0=phi0,
        d0_mm=d0,
        z0_mm=z0,
        cot_theta=cot,
        rho_per_mm=rho,
        xc_mm=lever * np.sin(phi0),
        yc_mm=-lever * np.cos(phi0),
        radius_mm=np.abs(inv),
        chi2=chi2,
        ndf=ndf,
        chi2_ndf=chi2_ndf,
        n_hits=n_hits,
    )


def _arc_from_chord(chord: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Transverse arc length s = (2/|rho|) asin(|rho| c / 2) of a chord c (stable at rho -> 0)."""
    shape, (c, r) = flat_arrays(chord, rho)
    return _arc_from_chord_flat(c, r).reshape(shape)


@njit(cache=True, error_model="numpy")
def arc_from_chord1(chord: float, rho: float) -> float:
    """:func:`_arc_from_chord` of one chord (compiled; the one implementation)."""
    u = np.minimum(0.5 * abs(rho) * chord, 1.0)
    return arc_of_asin1(chord, u, math.asin(u) if u >= 1e-4 else 0.0)


@njit(cache=True, error_model="numpy")
def lagrange1(s0: float, s1: float, s2: float, s_t: float) -> tuple[float, float, float]:
    """The Lagrange weights at ``s_t`` of the parabola through three points at s0, s1, s2:
    its value there is the weighted sum of theirs (denominators kept >= 1e-6 in size)."""
    s = (s0, s1, s2)
    w = [1.0, 1.0, 1.0]
    for i in range(3):
        for j in range(3):
            if i != j:
                den = s[i] - s[j]
                den = 1e-6 if abs(den) < 1e-6 else den
                w[i] *= (s_t - s[j]) / den
    return w[0], w[1], w[2]


@njit(cache=True, error_model="numpy")
def arc_of_asin1(chord: float, u: float, asin_u: float) -> float:
    """:func:`arc_from_chord1` given u = min(|rho| chord / 2, 1) and asin(u) (a caller that
    has the arcsine already): chord asin(u) / u, or its series below u = 1e-4."""
    if u < 1e-4:
        return chord * (1.0 + u * u / 6.0)
    return chord * (asin_u / u)


@njit(cache=True, error_model="numpy")
def _arc_from_chord_flat(chord: np.ndarray, rho: np.ndarray) -> np.ndarray:
    out = np.empty(len(chord))
    for i in range(len(chord)):
        out[i] = arc_from_chord1(chord[i], rho[i])
    return out


def arc_length(
    x: np.ndarray, y: np.ndarray, rho: np.ndarray, phi0: np.ndarray, d0: np.ndarray
) -> np.ndarray:
    """Signed transverse arc length (mm) from the PCA to the points ``(x, y)`` on the circle.

    Broadcasts track parameters of shape (N,) or (N, 1) against points (N, L).
    Positive along the motion (up to half a turn).
    """
    shape, flat = flat_arrays(x, y, rho, phi0, d0)
    return _arc_length_flat(*flat).reshape(shape)


@njit(cache=True, error_model="numpy")
def arc_length1(x: float, y: float, rho: float, phi0: float, d0: float) -> float:
    """:func:`arc_length` of one point (compiled)."""
    return arc_length_sc(x, y, rho, math.sin(phi0), math.cos(phi0), d0)


@njit(cache=True, error_model="numpy")
def arc_length_sc(x: float, y: float, rho: float, sp: float, cp: float, d0: float) -> float:
    """:func:`arc_length1` given sin(phi0), cos(phi0) (the one implementation)."""
    dx = x - d0 * sp
    dy = y + d0 * cp
    chord = math.hypot(dx, dy)
    sign = 1.0 if dx * cp + dy * sp >= 0.0 else -1.0
    return sign * arc_from_chord1(chord, rho)


@njit(cache=True, error_model="numpy")
def _arc_length_flat(
    x: np.ndarray, y: np.ndarray, rho: np.ndarray, phi0: np.ndarray, d0: np.ndarray
) -> np.ndarray:
    out = np.empty(len(x))
    for i in range(len(x)):
        out[i] = arc_length1(x[i], y[i], rho[i], phi0[i], d0[i])
    return out


def circle_residual(
    x: np.ndarray, y: np.ndarray, rho: np.ndarray, phi0: np.ndarray, d0: np.ndarray
) -> np.ndarray:
    """Left-signed geometric distance (mm) of the points ``(x, y)`` from the track circle.

    With F the circle function of the module docstring, the distance is
    2F / (1 + sqrt(1 + 2 rho F)) (exact; Karimaki 1991, eq. 4), > 0 to the left of
    the direction of motion.
    """
    shape, flat = flat_arrays(x, y, rho, phi0, d0)
    return _circle_residual_flat(*flat).reshape(shape)


@njit(cache=True, error_model="numpy")
def circle_residual1(x: float, y: float, rho: float, phi0: float, d0: float) -> float:
    """:func:`circle_residual` of one point (compiled)."""
    return circle_residual_sc(x, y, rho, math.sin(phi0), math.cos(phi0), d0)


@njit(cache=True, error_model="numpy")
def circle_residual_sc(x: float, y: float, rho: float, sp: float, cp: float, d0: float) -> float:
    """:func:`circle_residual1` given sin(phi0), cos(phi0) (the one implementation)."""
    f = 0.5 * rho * (x * x + y * y) - (1.0 + rho * d0) * (x * sp - y * cp)
    f = f + 0.5 * rho * d0 * d0 + d0
    return 2.0 * f / (1.0 + math.sqrt(np.maximum(1.0 + 2.0 * rho * f, 0.0)))


@njit(cache=True, error_model="numpy")
def _circle_residual_flat(
    x: np.ndarray, y: np.ndarray, rho: np.ndarray, phi0: np.ndarray, d0: np.ndarray
) -> np.ndarray:
    out = np.empty(len(x))
    for i in range(len(x)):
        out[i] = circle_residual1(x[i], y[i], rho[i], phi0[i], d0[i])
    return out


def fit_helix(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    mask: np.ndarray,
    bfield_T: float | np.ndarray,
    sigma_rphi: np.ndarray | None = None,
    sigma_z: np.ndarray | None = None,
) -> HelixFit:
    """Fit a helix to each row of hits: Karimaki circle in xy, weighted line in s-z.

    Shapes: ``x, y, z, mask, sigma_*``: (N, L); hits may be in any order and
    ``mask`` says which are present. ``sigma_rphi``/``sigma_z`` (mm) are per-hit
    resolutions (default 1 mm, so that the chi2 is in mm^2). Rows with fewer
    than 3 hits get NaN parameters. The direction of motion is taken from the
    innermost to the outermost hit (an outgoing track). ``ndf = 2 n - 5``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if x.ndim != 2 or x.shape != mask.shape or y.shape != x.shape or z.shape != x.shape:
        raise ValueError(f"fit_helix: x, y, z, mask must share one (N, L) shape, got {x.shape}")
    sr = np.ones_like(x) if sigma_rphi is None else np.asarray(sigma_rphi, dtype=np.float64)
    sz = np.ones_like(x) if sigma_z is None else np.asarray(sigma_z, dtype=np.float64)
    n, k = x.shape
    idx = np.where(mask, np.arange(n * k).reshape(n, k), -1)
    xf, yf, zf, srf, szf = (
        np.ascontiguousarray(np.broadcast_to(a, x.shape)).ravel() for a in (x, y, z, sr, sz)
    )
    return fit_helix_points(xf, yf, zf, srf, szf, idx, bfield_T)


def fit_helix_points(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    sigma_rphi: np.ndarray,
    sigma_z: np.ndarray,
    rows: np.ndarray,
    bfield_T: float | np.ndarray,
) -> HelixFit:
    """:func:`fit_helix` of rows of points: ``rows`` (N, L) index the points ``x, y, z`` and
    their resolutions (all (P,)), -1 where a row has no hit."""
    rho, phi, d0, z0, cot, chi2, n_hits = _fit_rows(
        x, y, z, sigma_rphi, sigma_z, np.ascontiguousarray(rows, dtype=np.int64)
    )
    ndf = np.maximum(2 * n_hits - 5, 0)
    return _from_perigee(rho, phi, d0, z0, cot, bfield_T, chi2, ndf, n_hits)


@njit(cache=True, error_model="numpy")
def _fit_rows(
    x_: np.ndarray,
    y_: np.ndarray,
    z_: np.ndarray,
    sr_: np.ndarray,
    sz_: np.ndarray,
    rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`fit_helix` of every row (compiled): ``(rho, phi0, d0, z0, cot, chi2, n_hits)``.

    The circle is Karimaki's weighted fit (NIM A305 (1991) 187, eqs. 8-12: the weighted
    means of x, y, r^2 and their covariances C give phi (modulo pi), oriented from the
    innermost to the outermost hit, then rho and d0); the s-z line a weighted least-squares
    line at the hits' arc lengths. Sums run over the hits in order."""
    n, k = rows.shape
    x = np.empty(k)
    y = np.empty(k)
    z = np.empty(k)
    sr = np.empty(k)
    sz = np.empty(k)
    mask = np.empty(k, np.bool_)
    rho_o, phi_o, d0_o = np.empty(n), np.empty(n), np.empty(n)
    z0_o, cot_o, chi2_o = np.empty(n), np.empty(n), np.empty(n)
    nh_o = np.empty(n, np.int64)
    s = np.empty(k)
    for i in range(n):
        for j in range(k):
            h = rows[i, j]
            mask[j] = h >= 0
            if h >= 0:
                x[j], y[j], z[j], sr[j], sz[j] = x_[h], y_[h], z_[h], sr_[h], sz_[h]
        # Karimaki's sums
        sw = 0.0
        sx = sy = sr2 = sxx = sxy = syy = sxr = syr = srr = 0.0
        n_hit = 0
        i_out = i_in = 0
        big, small = -np.inf, np.inf
        for j in range(k):
            m = mask[j]
            xj = x[j] if m else 0.0
            yj = y[j] if m else 0.0
            wj = 1.0 / (sr[j] * sr[j]) if m else 0.0
            r2 = xj * xj + yj * yj
            n_hit += 1 if m else 0
            sw += wj
            sx += wj * xj
            sy += wj * yj
            sr2 += wj * r2
            sxx += wj * (xj * xj)
            sxy += wj * (xj * yj)
            syy += wj * (yj * yj)
            sxr += wj * (xj * r2)
            syr += wj * (yj * r2)
            srr += wj * (r2 * r2)
            if m and r2 > big:
                big, i_out = r2, j
            if m and r2 < small:
                small, i_in = r2, j
        sw = sw if sw > 0 else 1.0
        mx, my, mr2 = sx / sw, sy / sw, sr2 / sw
        cxx = sxx / sw - mx * mx
        cxy = sxy / sw - mx * my
        cyy = syy / sw - my * my
        cxr = sxr / sw - mx * mr2
        cyr = syr / sw - my * mr2
        crr = srr / sw - mr2 * mr2
        q1 = crr * cxy - cxr * cyr
        q2 = crr * (cxx - cyy) - cxr * cxr + cyr * cyr
        phi = 0.5 * math.atan2(2.0 * q1, q2)
        # orient phi along the motion: from the innermost to the outermost hit
        x_out = x[i_out] if mask[i_out] else 0.0
        x_in = x[i_in] if mask[i_in] else 0.0
        y_out = y[i_out] if mask[i_out] else 0.0
        y_in = y[i_in] if mask[i_in] else 0.0
        if (x_out - x_in) * math.cos(phi) + (y_out - y_in) * math.sin(phi) < 0.0:
            phi = phi + np.pi
        sp, cp = math.sin(phi), math.cos(phi)
        kappa = (sp * cxr - cp * cyr) / crr
        delta = -kappa * mr2 + sp * mx - cp * my
        root = math.sqrt(np.maximum(1.0 - 4.0 * delta * kappa, 0.0))
        rho = 2.0 * kappa / root
        d0 = 2.0 * delta / (1.0 + root)
        phi = math.atan2(math.sin(phi), math.cos(phi))
        s_phi, c_phi = math.sin(phi), math.cos(phi)
        # s-z line: z = z0 + cot * s
        swz = swzs = swzz = 0.0
        for j in range(k):
            m = mask[j]
            s[j] = arc_length_sc(x[j], y[j], rho, s_phi, c_phi, d0) if m else 0.0
            wz = 1.0 / (sz[j] * sz[j]) if m else 0.0
            swz += wz
            swzs += wz * s[j]
            swzz += wz * (z[j] if m else 0.0)
        ms = swzs / swz
        mz = swzz / swz
        vss = vsz = 0.0
        for j in range(k):
            m = mask[j]
            wz = 1.0 / (sz[j] * sz[j]) if m else 0.0
            ds = s[j] - ms
            vss += wz * (ds * ds)
            vsz += wz * ds * ((z[j] if m else 0.0) - mz)
        cot = vsz / vss
        z0 = mz - cot * ms
        chi2_xy = chi2_z = 0.0
        for j in range(k):
            m = mask[j]
            wj = 1.0 / (sr[j] * sr[j]) if m else 0.0
            wz = 1.0 / (sz[j] * sz[j]) if m else 0.0
            e_xy = circle_residual_sc(x[j], y[j], rho, s_phi, c_phi, d0) if m else 0.0
            e_z = z[j] - (z0 + cot * s[j]) if m else 0.0
            chi2_xy += wj * e_xy * e_xy
            chi2_z += wz * e_z * e_z
        chi2 = chi2_xy + chi2_z
        if n_hit < 3:
            rho = phi = d0 = z0 = cot = chi2 = np.nan
        rho_o[i], phi_o[i], d0_o[i], z0_o[i], cot_o[i], chi2_o[i] = rho, phi, d0, z0, cot, chi2
        nh_o[i] = n_hit
    return rho_o, phi_o, d0_o, z0_o, cot_o, chi2_o, nh_o


def residuals(
    fit: HelixFit, x: np.ndarray, y: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-hit residuals to the helices: ``(r*phi residual, z residual, s)`` in mm, shape (N, L).

    The r*phi residual is the left-signed distance to the circle, the z residual
    is z - (z0 + cot * s) at the hit's arc length s.
    """
    rho, phi, d0 = fit.rho_per_mm[:, None], fit.phi0[:, None], fit.d0_mm[:, None]
    s = arc_length(x, y, rho, phi, d0)
    e_xy = circle_residual(x, y, rho, phi, d0)
    e_z = z - (fit.z0_mm[:, None] + fit.cot_theta[:, None] * s)
    return e_xy, e_z, s


def predict_on_cylinder(
    fit: HelixFit, r_mm: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Outgoing intersection of each helix with the cylinder of radius ``r_mm``.

    Writing the circle equation at (r cos a, r sin a) gives
    sin(phi0 - a) = (rho r^2/2 + rho d0^2/2 + d0) / ((1 + rho d0) r) =: A, and the
    first crossing along the motion is a = phi0 - asin(A). ``ok`` is False where
    |A| > 1 (the helix does not reach r, or its PCA lies outside r).
    Returns ``(x, y, z, ok)``, each (N,) (``r_mm`` scalar or (N,)).
    """
    shape, flat = flat_arrays(fit.rho_per_mm, fit.phi0, fit.d0_mm, fit.z0_mm, fit.cot_theta, r_mm)
    x, y, z, ok = _on_cylinder_flat(*flat)
    return x.reshape(shape), y.reshape(shape), z.reshape(shape), ok.reshape(shape)


@njit(cache=True, error_model="numpy")
def on_cylinder1(
    rho: float, phi0: float, d0: float, z0: float, cot: float, r: float
) -> tuple[float, float, float, bool]:
    """:func:`predict_on_cylinder` of one helix (compiled; the one implementation)."""
    a_ = (0.5 * rho * (r * r + d0 * d0) + d0) / ((1.0 + rho * d0) * r)
    ok = np.isfinite(a_) and abs(a_) <= 1.0
    alpha = phi0 - math.asin(np.minimum(np.maximum(a_ if ok else 0.0, -1.0), 1.0))
    x = r * math.cos(alpha)
    y = r * math.sin(alpha)
    s = arc_length1(x, y, rho, phi0, d0)
    return x, y, z0 + cot * s, ok


@njit(cache=True, error_model="numpy")
def _on_cylinder_flat(
    rho: np.ndarray,
    phi0: np.ndarray,
    d0: np.ndarray,
    z0: np.ndarray,
    cot: np.ndarray,
    r: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(rho)
    x, y, z, ok = np.empty(n), np.empty(n), np.empty(n), np.empty(n, np.bool_)
    for i in range(n):
        x[i], y[i], z[i], ok[i] = on_cylinder1(rho[i], phi0[i], d0[i], z0[i], cot[i], r[i])
    return x, y, z, ok


def point_at_arc(fit: HelixFit, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position (x, y, z) at signed transverse arc ``s`` (mm) from the PCA along the motion.

    The direction angle turns as phi(s) = phi0 - rho s, so
    x = x0 + s cos(phi0 - rho s / 2) sinc(rho s / 2), y = y0 + s sin(phi0 - rho s / 2) sinc(rho s / 2)
    from the PCA (x0, y0) = d0 (sin phi0, -cos phi0) (stable for rho -> 0).
    """
    shape, flat = flat_arrays(fit.rho_per_mm, fit.phi0, fit.d0_mm, fit.z0_mm, fit.cot_theta, s)
    x, y, z = _at_arc_flat(*flat)
    return x.reshape(shape), y.reshape(shape), z.reshape(shape)


@njit(cache=True, error_model="numpy")
def at_arc1(
    rho: float, phi0: float, d0: float, z0: float, cot: float, s: float
) -> tuple[float, float, float]:
    """:func:`point_at_arc` of one helix (compiled; the one implementation)."""
    half = 0.5 * rho * s
    sinc = 1.0 if abs(half) < 1e-8 else math.sin(half) / (1.0 if half == 0 else half)
    ang = phi0 - half
    x = d0 * math.sin(phi0) + s * math.cos(ang) * sinc
    y = -d0 * math.cos(phi0) + s * math.sin(ang) * sinc
    return x, y, z0 + cot * s


@njit(cache=True, error_model="numpy")
def _at_arc_flat(
    rho: np.ndarray,
    phi0: np.ndarray,
    d0: np.ndarray,
    z0: np.ndarray,
    cot: np.ndarray,
    s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(rho)
    x, y, z = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        x[i], y[i], z[i] = at_arc1(rho[i], phi0[i], d0[i], z0[i], cot[i], s[i])
    return x, y, z


def predict_on_plane(
    fit: HelixFit, z_mm: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Intersection of each helix with the plane z = ``z_mm`` (a disk): arc s = (z - z0) / cot.

    ``ok`` is False where the plane lies behind the PCA or beyond half a turn.
    Returns ``(x, y, z, ok)``, each (N,).
    """
    shape, flat = flat_arrays(fit.rho_per_mm, fit.phi0, fit.d0_mm, fit.z0_mm, fit.cot_theta, z_mm)
    x, y, z, ok = _on_plane_flat(*flat)
    return x.reshape(shape), y.reshape(shape), z.reshape(shape), ok.reshape(shape)


@njit(cache=True, error_model="numpy")
def on_plane1(
    rho: float, phi0: float, d0: float, z0: float, cot: float, z: float
) -> tuple[float, float, float, bool]:
    """:func:`predict_on_plane` of one helix (compiled; the one implementation)."""
    s = (z - z0) / cot
    ok = np.isfinite(s) and s > 0 and abs(rho * s) < np.pi
    x, y, _ = at_arc1(rho, phi0, d0, z0, cot, s if ok else 0.0)
    return x, y, z, ok


@njit(cache=True, error_model="numpy")
def _on_plane_flat(
    rho: np.ndarray,
    phi0: np.ndarray,
    d0: np.ndarray,
    z0: np.ndarray,
    cot: np.ndarray,
    zp: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(rho)
    x, y, z, ok = np.empty(n), np.empty(n), np.empty(n), np.empty(n, np.bool_)
    for i in range(n):
        x[i], y[i], z[i], ok[i] = on_plane1(rho[i], phi0[i], d0[i], z0[i], cot[i], zp[i])
    return x, y, z, ok


def helix_from_truth(
    vx: np.ndarray,
    vy: np.ndarray,
    vz: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    q: np.ndarray,
    bfield_T: float,
) -> HelixFit:
    """Perigee parameters of the helices of particles from vertex ``v`` with momentum ``p``.

    rho = 0.299792458e-3 q B / pT; the circle's centre is c = v + n_v / rho with
    n_v = (sin phi_v, -cos phi_v) the right normal of the momentum at the vertex.
    From c = (d0 + 1/rho) n the normal at the PCA is n = (n_v + rho v)/|n_v + rho v|
    and d0 = (2 v.n_v + rho |v|^2) / (1 + |n_v + rho v|) (stable for rho -> 0);
    z0 = vz - cot * s_v with s_v the arc from the PCA to the vertex.
    """
    vx, vy, vz, px, py, pz = (np.asarray(a, dtype=np.float64) for a in (vx, vy, vz, px, py, pz))
    pt = np.hypot(px, py)
    rho = GEV_PER_T_MM * np.asarray(q, dtype=np.float64) * bfield_T / pt
    nvx, nvy = py / pt, -px / pt
    ax, ay = nvx + rho * vx, nvy + rho * vy
    norm = np.hypot(ax, ay)
    nx, ny = ax / norm, ay / norm
    d0 = (2.0 * (vx * nvx + vy * nvy) + rho * (vx * vx + vy * vy)) / (1.0 + norm)
    phi0 = np.arctan2(nx, -ny)
    cot = pz / pt
    s_v = arc_length(vx, vy, rho, phi0, d0)
    z0 = vz - cot * s_v
    nan = np.full(len(pt), np.nan)
    return _from_perigee(
        rho,
        phi0,
        d0,
        z0,
        cot,
        bfield_T,
        nan,
        np.zeros(len(pt), np.int64),
        np.zeros(len(pt), np.int64),
    )


# --------------------------------------------------------------------------- resolutions
@dataclass(frozen=True)
class LayerResolution:
    """Per-layer measurement resolution and material, for hit weights and windows.

    Arrays of shape (n_layers,): radius (mm), r*phi and z resolution (mm,
    pitch/sqrt(12)), material at normal incidence (x/X0).
    """

    radius_mm: np.ndarray
    sigma_rphi_mm: np.ndarray
    sigma_z_mm: np.ndarray
    x_over_x0: np.ndarray
    half_length_mm: np.ndarray

    @classmethod
    def from_geometry(cls, geometry: TrackerGeometry) -> LayerResolution:
        return cls(
            radius_mm=geometry.radii_mm,
            sigma_rphi_mm=np.array([lay.resolution_rphi_mm for lay in geometry.layers]),
            sigma_z_mm=np.array([lay.resolution_z_mm for lay in geometry.layers]),
            x_over_x0=np.array([lay.x_over_x0 for lay in geometry.layers]),
            half_length_mm=geometry.half_lengths_mm,
        )

    def ms_sigma_rphi(self, p_GeV: np.ndarray, cot_theta: np.ndarray) -> np.ndarray:
        """Multiple-scattering displacement (mm, r*phi) at every layer, shape (N, n_layers).

        sigma_i^2 = sum_{j<i} theta0_j^2 ((r_i - r_j) / sin theta)^2 with the Highland
        width theta0_j = 13.6 MeV/p sqrt(t_j) (1 + 0.038 ln t_j), t_j = (x/X0)_j / sin theta
        (PDG 2024 eq. 34.15, beta = 1), scattering in every layer inside r_i. A diagonal
        approximation: correlations between layers and what the fit absorbs are ignored.
        The displacement along z at fixed radius is this divided by sin theta.
        """
        p = np.maximum(np.asarray(p_GeV, dtype=np.float64), 1e-3)
        sin_t = 1.0 / np.sqrt(1.0 + np.asarray(cot_theta, dtype=np.float64) ** 2)
        t = self.x_over_x0[None, :] / sin_t[:, None]
        theta0_sq = highland_theta0(p[:, None], t, beta=1.0) ** 2
        dr = self.radius_mm[:, None] - self.radius_mm[None, :]  # (i, j)
        lever = np.where(dr > 0, dr, 0.0) ** 2
        var = theta0_sq @ lever.T  # (N, n_layers)
        return np.sqrt(var) / sin_t[:, None]

    def hit_sigmas(
        self,
        layer: np.ndarray,
        p_GeV: np.ndarray | None = None,
        cot_theta: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(sigma_rphi, sigma_z)`` (mm) of hits on global layers ``layer`` (N, L).

        The measurement resolution, plus in quadrature the multiple-scattering
        displacement of :meth:`ms_sigma_rphi` when ``p_GeV``/``cot_theta`` (N,) are
        given. Padding (layer < 0) gets 1 mm.
        """
        lay = np.asarray(layer)
        safe = np.clip(lay, 0, len(self.radius_mm) - 1)
        sr = self.sigma_rphi_mm[safe]
        sz = self.sigma_z_mm[safe]
        if p_GeV is not None and cot_theta is not None:
            p = np.nan_to_num(np.asarray(p_GeV, dtype=np.float64), nan=1.0, posinf=1e6)
            cot = np.nan_to_num(np.asarray(cot_theta, dtype=np.float64))
            ms = np.take_along_axis(self.ms_sigma_rphi(p, cot), safe, axis=1)
            sin_t = 1.0 / np.sqrt(1.0 + cot**2)
            sr = np.sqrt(sr * sr + ms * ms)
            sz = np.sqrt(sz * sz + (ms / sin_t[:, None]) ** 2)
        pad = lay < 0
        return np.where(pad, 1.0, sr), np.where(pad, 1.0, sz)
