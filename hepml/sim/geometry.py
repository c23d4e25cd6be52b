"""Tracker geometry: cylindrical barrel layers in a solenoid (TrackML's barrel by default).

The default is the barrel of the TrackML detector (Amrouche et al., "The Tracking
Machine Learning challenge: Accuracy phase", arXiv:1904.06778): pixel volume 8,
short-strip volume 13 and long-strip volume 17, in a 2 T field along z.
Layers are numbered 0..9 from the inside out (the *global layer*); TrackML's
``(volume_id, layer_id)`` pair is kept for I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hepml.errors import HepmlError


@dataclass(frozen=True)
class Layer:
    """One cylindrical sensor layer. Lengths in mm."""

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


@dataclass(frozen=True)
class TrackerGeometry:
    """The barrel: layers ordered by radius and the solenoid field along z (T)."""

    layers: tuple[Layer, ...]
    bfield_T: float

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TrackerGeometry:
        """From the validated config's ``tracker`` section (defaults: TrackML barrel)."""
        t = cfg["tracker"]
        layers = tuple(
            Layer(
                name=lay["name"],
                volume_id=int(lay["volume_id"]),
                layer_id=int(lay["layer_id"]),
                radius_mm=float(lay["radius_mm"]),
                half_length_mm=float(lay["half_length_mm"]),
                thickness_mm=float(lay["thickness_mm"]),
                x_over_x0=float(lay["x_over_x0"]),
                pitch_rphi_mm=float(lay["pitch_rphi_mm"]),
                pitch_z_mm=float(lay["pitch_z_mm"]),
                efficiency=float(lay["efficiency"]),
            )
            for lay in t["layers"]
        )
        radii = [lay.radius_mm for lay in layers]
        if radii != sorted(radii) or len(set(radii)) != len(radii):
            raise HepmlError(
                f"tracker.layers: radii must increase strictly from layer to layer, got {radii}"
            )
        keys = [(lay.volume_id, lay.layer_id) for lay in layers]
        if len(set(keys)) != len(keys):
            raise HepmlError("tracker.layers: (volume_id, layer_id) pairs must be unique")
        return cls(layers=layers, bfield_T=float(t["bfield_T"]))

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


def curvature_radius_mm(pt_GeV: np.ndarray, bfield_T: float) -> np.ndarray:
    """Radius of the transverse circle, R [m] = pT [GeV] / (0.299792458 * B [T] * |q|), in mm."""
    return np.asarray(pt_GeV) / (0.299792458 * bfield_T) * 1000.0
