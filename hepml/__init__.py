"""hepml: HEP tracking and calorimetry, from simulation to ROC curves."""

from __future__ import annotations

__version__ = "0.1.0"
