"""GhostLSTM: is a track candidate a real particle or a ghost? (ghost_filter task)

An LSTM (Hochreiter & Schmidhuber, Neural Comput. 9 (1997) 1735) reads the
candidate's hits ordered by path length, any number of them, barrel layers and
disks alike (features of :mod:`hepml.features.sequences`);
its final hidden state, beside the track-level features (fit quantities), feeds
a small head giving one logit per candidate ("true track"). The sequences are
packed (``nn.utils.rnn.pack_padded_sequence``), so padding never enters the
recurrence. The idea follows LHCb's ghost probability (a network on track
quantities, LHCb-PUB-2017-011) with the hit sequence read directly.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from hepml.features.sequences import MIN_LENGTH, N_HIT_FEATURES, N_TRACK_FEATURES


class GhostLSTM(nn.Module):
    """One logit per track candidate from its hit sequence and track features.

    Shapes: ``hits`` (N, L, F_hit) float, zero-padded, ``lengths`` (N,) int64 (1 <= length <= L),
    ``track`` (N, F_track) float -> logits (N,).

    The hyper-parameters have no default here: theirs live once, in the schema
    (``ghost_filter.model``); the sizes default to the data contract (:attr:`CONTRACT`).

    Args:
        hidden: LSTM hidden size.
        layers: stacked LSTM layers.
        dropout: dropout between LSTM layers and in the head.
        head_hidden: width of the head's hidden layer.
        n_hit_features: per-hit features F_hit (:data:`hepml.features.sequences.N_HIT_FEATURES`).
        n_track_features: per-track features F_track (:data:`hepml.features.sequences.N_TRACK_FEATURES`).
    """

    #: constructor arguments fixed by the data contract (:mod:`hepml.features.sequences`)
    CONTRACT: ClassVar[dict[str, int]] = {
        "n_hit_features": N_HIT_FEATURES,
        "n_track_features": N_TRACK_FEATURES,
    }

    def __init__(
        self,
        *,
        hidden: int,
        layers: int,
        dropout: float,
        head_hidden: int,
        n_hit_features: int = N_HIT_FEATURES,
        n_track_features: int = N_TRACK_FEATURES,
    ) -> None:
        super().__init__()
        self.n_hit_features = n_hit_features
        self.n_track_features = n_track_features
        self.lstm = nn.LSTM(
            input_size=n_hit_features,
            hidden_size=hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.head = nn.Sequential(
            nn.Linear(hidden + n_track_features, head_hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(head_hidden, 1),
        )

    def forward(
        self, hits: torch.Tensor, lengths: torch.Tensor, track: torch.Tensor
    ) -> torch.Tensor:
        lengths_cpu = lengths.detach().to("cpu", torch.int64).clamp_min(1)
        packed = nn.utils.rnn.pack_padded_sequence(
            hits, lengths_cpu, batch_first=True, enforce_sorted=False
        )
        _, (h_n, _) = self.lstm(packed)
        last = h_n[-1]  # (N, hidden): the top layer after each sequence's last hit
        return self.head(torch.cat([last, track], dim=1)).squeeze(1)

    @classmethod
    def example_inputs(
        cls,
        n: int,
        generator: torch.Generator,
        n_hit_features: int = N_HIT_FEATURES,
        n_track_features: int = N_TRACK_FEATURES,
        max_len: int = 16,
    ) -> dict[str, torch.Tensor]:
        """Random candidates of the documented shapes (lengths MIN_LENGTH..max_len, padding zero)."""
        lengths = torch.randint(
            min(MIN_LENGTH, max_len), max_len + 1, (n,), generator=generator, dtype=torch.int64
        )
        hits = torch.randn(n, max_len, n_hit_features, generator=generator)
        hits = hits * (torch.arange(max_len)[None, :, None] < lengths[:, None, None])
        track = torch.randn(n, n_track_features, generator=generator)
        return {"hits": hits, "lengths": lengths, "track": track}
