"""HitBiGRU: a stacked bidirectional GRU labelling every hit of a road (hit_labeller task).

The road is a variable-length sequence of hits ordered by path length along the
seed's helix (two hits of one layer both kept); the features
are written down in :mod:`hepml.features.roads`). Each hit gets a logit for
"belongs to the seed's particle". The sequences are packed
(``nn.utils.rnn.pack_padded_sequence``), so padding never enters the recurrence.
Bidirectional recurrent labelling of sequences: Schuster & Paliwal, IEEE Trans.
Signal Process. 45 (1997) 2673; GRU: Cho et al., arXiv:1406.1078.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from hepml.features.roads import N_FEATURES


class HitBiGRU(nn.Module):
    """Per-hit logits from a stacked bidirectional GRU over a road.

    Shapes: ``x`` (N, L, F) float, ``lengths`` (N,) int64 -> logits (N, L') with
    L' = max(lengths) of the batch; positions at or beyond a road's length are 0
    and carry no meaning (mask them).

    The hyper-parameters have no default here: theirs live once, in the schema
    (``hit_labeller.model``); the size defaults to the data contract (:attr:`CONTRACT`).

    Args:
        hidden: GRU hidden size per direction.
        num_layers: stacked GRU layers.
        dropout: dropout between GRU layers and before the head.
        n_features: per-hit features F (:data:`hepml.features.roads.N_FEATURES`).
    """

    #: constructor arguments fixed by the data contract (:mod:`hepml.features.roads`)
    CONTRACT: ClassVar[dict[str, int]] = {"n_features": N_FEATURES}

    def __init__(
        self, *, hidden: int, num_layers: int, dropout: float, n_features: int = N_FEATURES
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.embed = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU())
        self.gru = nn.GRU(
            input_size=hidden,
            hidden_size=hidden,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(2 * hidden + hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths_cpu = lengths.detach().to("cpu", torch.int64).clamp_min(1)
        width = int(lengths_cpu.max()) if len(lengths_cpu) else 0
        e = self.embed(x[:, :width])
        packed = nn.utils.rnn.pack_padded_sequence(
            e, lengths_cpu, batch_first=True, enforce_sorted=False
        )
        out, _ = self.gru(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=width)
        # the per-hit embedding beside the context: a skip connection for the local features
        return self.head(torch.cat([h, e], dim=-1)).squeeze(-1)

    @classmethod
    def example_inputs(
        cls, n: int, generator: torch.Generator, n_features: int = N_FEATURES, max_len: int = 24
    ) -> dict[str, torch.Tensor]:
        """Random roads of the documented shapes: ``x`` (n, max_len, F), ``lengths`` (n,)."""
        lengths = torch.randint(3, max_len + 1, (n,), generator=generator, dtype=torch.int64)
        x = torch.randn(n, max_len, n_features, generator=generator)
        x = x * (torch.arange(max_len)[None, :, None] < lengths[:, None, None])
        return {"x": x, "lengths": lengths}
