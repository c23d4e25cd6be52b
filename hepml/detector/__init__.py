"""The one description of the tracker that simulation and reconstruction both import.

Surfaces (barrel layers, endcap disks) of planar modules (:mod:`.geometry`), read
from TrackML's ``detectors.csv`` (:mod:`.trackml`) or generated from the config's
compact description (:mod:`.generate`); material, the magnetic field
(:mod:`.field`), helix propagation through the modules (:mod:`.propagation`),
multiple scattering (:mod:`.scattering`) and navigation (:mod:`.navigation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hepml.detector.field import Field, field_from_config
from hepml.detector.geometry import Detector, Modules, PassiveCylinder, Surface
from hepml.errors import HepmlError

__all__ = ["Detector", "Modules", "Surface", "load_detector", "detector_from_modules"]


def module_material(
    modules: Modules, material: list[Mapping[str, Any]], source: str = "tracker.material"
) -> tuple[np.ndarray, np.ndarray]:
    """(x/X0, x/lambda_I) of every module from the ``tracker.material`` list (by volume id)."""
    x0 = np.full(len(modules), np.nan)
    lam = np.full(len(modules), np.nan)
    for entry in material:
        sel = np.isin(modules.volume_id, np.asarray(entry["volumes"], dtype=np.int64))
        x0[sel] = float(entry["x_over_x0"])
        lam[sel] = float(entry["x_over_lambda"])
    if np.isnan(x0).any():
        vols = sorted({int(v) for v in modules.volume_id[np.isnan(x0)]})
        raise HepmlError(f"{source}: no material given for volume(s) {vols}")
    return x0, lam


def detector_from_modules(
    modules: Modules, tracker: Mapping[str, Any], source: str, field: Field | None = None
) -> Detector:
    """A :class:`Detector` of ``modules`` with the material, passive layers and field of the
    validated ``tracker`` config section."""
    x0, lam = module_material(modules, tracker["material"])
    passive = tuple(
        PassiveCylinder(
            str(p["name"]),
            float(p["r_mm"]),
            float(p["half_length_mm"]),
            float(p["x_over_x0"]),
            float(p["x_over_lambda"]),
        )
        for p in tracker["passive"]
    )
    return Detector.build(
        modules,
        x0,
        lam,
        passive,
        field if field is not None else field_from_config(tracker["field"]),
        source,
    )


def load_detector(cfg: Mapping[str, Any]) -> Detector:
    """The detector of a validated config: generated from ``tracker.detector`` or read
    from the TrackML file it names."""
    tracker = cfg["tracker"]
    section = tracker["detector"]
    if section.get("source") == "trackml_csv":
        from hepml.detector.trackml import read_detectors_csv

        path = section.get("trackml_csv")
        if not path:
            raise HepmlError(
                "tracker.detector.trackml_csv: give the path of a detectors.csv[.gz] file"
            )
        return detector_from_modules(read_detectors_csv(Path(path)), tracker, str(path))
    from hepml.detector.generate import generate_modules

    return detector_from_modules(generate_modules(section), tracker, "generated")
