"""The barrel layers as idealised cylinders: the view today's barrel reconstruction takes.

Seeding, roads and fits in :mod:`hepml.reco` describe the barrel as ten
cylinders (a *global layer* 0..n-1 from the inside out) with a radius, a half
length, material and resolutions. :meth:`TrackerGeometry.from_detector` derives
them from the detector's barrel surfaces (nominal radius, envelope, the modules'
material and pitches), so they stay one description with the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepml.detector.geometry import Detector


@dataclass(frozen=True)
class Layer:
    """One barrel layer seen as a cylinder. Lengths in mm."""

    name: str
    volume_id: int
    layer_id: int
    radius_mm: float
    half_length_mm: float
    thickness_mm: float
    x_over_x0: float  # sensor plus support, in radiation lengths
    pitch_rphi_mm: float
    pitch_z_mm: float
    efficiency: float

    @property
    def resolution_rphi_mm(self) -> float:
        """Binary-readout resolution pitch / sqrt(12)."""
        return self.pitch_rphi_mm / np.sqrt(12.0)

    @property
    def resolution_z_mm(self) -> float:
        return self.pitch_z_mm / np.sqrt(12.0)


_REGION = {8: "pixel", 13: "short-strip", 17: "long-strip"}


@dataclass(frozen=True)
class TrackerGeometry:
    """The barrel layers ordered by radius and the central field along z (T)."""

    layers: tuple[Layer, ...]
    bfield_T: float

    @classmethod
    def from_detector(cls, det: Detector, efficiency: float = 1.0) -> TrackerGeometry:
        m = det.modules
        layers = []
        for k, i in enumerate(det.barrel_surfaces):
            s = det.surfaces[int(i)]
            rows = slice(s.first, s.stop)
            region = _REGION.get(s.volume_id, f"volume-{s.volume_id}")
            layers.append(
                Layer(
                    name=f"{region}-{k + 1}",
                    volume_id=s.volume_id,
                    layer_id=s.layer_id,
                    radius_mm=s.r_mm,
                    half_length_mm=max(abs(s.z_min_mm), abs(s.z_max_mm)),
                    thickness_mm=float(np.median(m.thickness[rows])),
                    x_over_x0=float(np.median(det.x_over_x0[rows])),
                    pitch_rphi_mm=float(np.median(m.pitch_u[rows])),
                    pitch_z_mm=float(np.median(m.pitch_v[rows])),
                    efficiency=efficiency,
                )
            )
        return cls(layers=tuple(layers), bfield_T=float(det.field.central_T))

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TrackerGeometry:
        """The barrel of the config's detector (:func:`hepml.detector.load_detector`)."""
        from hepml.detector import load_detector

        return cls.from_detector(
            load_detector(cfg), float(cfg["tracker"]["simulation"]["hit_efficiency"])
        )

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def radii_mm(self) -> np.ndarray:
        return np.array([lay.radius_mm for lay in self.layers])

    @property
    def half_lengths_mm(self) -> np.ndarray:
        return np.array([lay.half_length_mm for lay in self.layers])

    def global_layer(self, volume_id: np.ndarray, layer_id: np.ndarray) -> np.ndarray:
        """Global layer index 0..n-1 of TrackML ``(volume_id, layer_id)``; -1 where not a barrel layer."""
        volume_id = np.asarray(volume_id)
        layer_id = np.asarray(layer_id)
        out = np.full(volume_id.shape, -1, dtype=np.int32)
        for i, lay in enumerate(self.layers):
            out[(volume_id == lay.volume_id) & (layer_id == lay.layer_id)] = i
        return out

    def volume_layer(self, global_layer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`global_layer`."""
        g = np.asarray(global_layer)
        vol = np.array([lay.volume_id for lay in self.layers], dtype=np.int32)
        lid = np.array([lay.layer_id for lay in self.layers], dtype=np.int32)
        return vol[g], lid[g]
