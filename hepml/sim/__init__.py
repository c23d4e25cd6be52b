"""Simulation: the silicon tracker and the sampling calorimeter (numpy, explicit RNG)."""
