"""Physical constants and particle masses used by the detector, simulation and reconstruction.

Each constant is written here once and imported everywhere else.
"""

from __future__ import annotations

#: pT [GeV] = GEV_PER_T_MM * |q| * B [T] * R [mm]: pT = 0.299792458 |q| B R with R in metres.
GEV_PER_T_MM = 0.299792458e-3

#: Masses (GeV) by PDG code, PDG 2024; the sign of the code is the charge convention.
MASS_GEV: dict[int, float] = {
    11: 0.00051099895,
    13: 0.1056583755,
    211: 0.13957039,
    321: 0.493677,
    2212: 0.93827208816,
    310: 0.497611,
    3122: 1.115683,
}
#: Charged pion mass (GeV): the default mass hypothesis (Highland's beta in reconstruction).
PION_MASS_GEV = MASS_GEV[211]
#: Proper decay lengths c*tau (mm), PDG 2024.
CTAU_MM: dict[int, float] = {310: 26.844, 3122: 78.96}
#: Mean ionisation loss of a minimum-ionising particle per radiation length of silicon (MeV/X0):
#: (dE/dx)_min = 1.664 MeV cm^2/g, rho = 2.329 g/cm^3, X0 = 9.370 cm (PDG 2024 atomic and nuclear properties).
SILICON_MIP_MEV_PER_X0 = 1.664 * 2.329 * 9.370
#: Silicon: X0 / lambda_I = 9.370 cm / 46.52 cm (nuclear interaction length), PDG 2024.
SILICON_X0_OVER_LAMBDA = 9.370 / 46.52
