"""Small models registered by the training-system tests (not part of hepml)."""

from __future__ import annotations

import torch
import torch.nn as nn


class TinyMLP(nn.Module):
    """Shapes: x (N, F) -> logits (N,)."""

    def __init__(self, n_in: int = 4, hidden: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def separable_sample(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points in 4D labelled by the side of the plane x0 + 0.5 x1 = 0."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).float()
