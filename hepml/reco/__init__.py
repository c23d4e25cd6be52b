"""Reconstruction: seeding, track following, helix fits, roads and truth matching."""
