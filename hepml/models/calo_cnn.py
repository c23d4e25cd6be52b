"""CNN classifier of calorimeter shower images (photon / pi0 / charged pion)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn as nn

from hepml.features.calo_images import CLASSES
from hepml.sim.calo import LAYERS


class CaloCNN(nn.Module):
    """Conv blocks with batch norm and pooling, then a small head.

    The images first go through a batch norm without affine parameters (and a
    cumulative running average), which puts the three layers, whose pixel values
    differ in scale by the number of pixels per cell, on a common scale.

    The first block reduces phi: a (3 x phi_reduce) convolution with stride
    (1, phi_reduce), batch norm and ReLU. With the default image grid
    (:mod:`hepml.features.calo_images`) a middle cell is 4 pixels wide in phi and
    a strip 16, while the strips' fine eta pitch is one pixel: reducing phi by 4
    first keeps every layer's granularity and costs a quarter of a
    full-resolution first layer. Each further block is a 3x3 convolution, batch
    norm, ReLU and 2x2 max pooling. The flattened feature map is concatenated
    with the scalar ``log_e`` (the log of the shower's total energy) and passed
    through Linear(hidden), ReLU, dropout, Linear(n_classes).

    With ``flip_augment`` each training image is mirrored in eta and/or phi at
    random (the barrel and the showers are symmetric under both), drawing from
    torch's global generator, which the trainer seeds; evaluation never flips.
    On CUDA the images are put in channels-last memory format (faster cuDNN
    kernels).

    The image size and hyper-parameters have no default here: theirs live once, in
    the schema (``calo_classifier.image.size``, ``calo_classifier.model``); the
    channels and classes default to the data contract (:attr:`CONTRACT`).

    Args:
        image_size: pixels (n_eta, n_phi); n_eta must be divisible by
            2 ** (len(channels) - 1) and n_phi by phi_reduce * 2 ** (len(channels) - 1).
        channels: output channels of the conv blocks (the first is the phi-reducing one).
        hidden: width of the head's hidden layer.
        dropout: dropout probability in the head.
        phi_reduce: phi stride of the first block.
        in_channels: image channels, one per calorimeter layer (:data:`hepml.sim.calo.LAYERS`).
        n_classes: output logits, one per class (:data:`hepml.features.calo_images.CLASSES`).
        flip_augment: mirror training images at random in eta and phi.

    Shapes:
        images (N, C, H, W) float, log_e (N,) float -> logits (N, n_classes).
    """

    #: constructor arguments fixed by the data contract (:mod:`hepml.features.calo_images`)
    CONTRACT: ClassVar[dict[str, int]] = {"in_channels": len(LAYERS), "n_classes": len(CLASSES)}

    def __init__(
        self,
        *,
        image_size: Sequence[int],
        channels: Sequence[int],
        hidden: int,
        dropout: float,
        phi_reduce: int,
        in_channels: int = len(LAYERS),
        n_classes: int = len(CLASSES),
        flip_augment: bool = True,
    ) -> None:
        super().__init__()
        self.flip_augment = bool(flip_augment)
        # cumulative average (momentum None): the input statistics are those of the
        # data, fixed, and tiny (pixels ~1e-3), so an exponential average started at
        # variance 1 would take hundreds of batches to forget its start
        self.input_norm = nn.BatchNorm2d(in_channels, affine=False, momentum=None)
        h, w = int(image_size[0]), int(image_size[1])
        scale = 2 ** (len(channels) - 1)
        if h % scale or w % (scale * phi_reduce):
            raise ValueError(
                f"image_size {tuple(image_size)}: n_eta must be divisible by {scale} and n_phi by {scale * phi_reduce}"
            )
        blocks: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                int(channels[0]),
                kernel_size=(3, phi_reduce),
                stride=(1, phi_reduce),
                padding=(1, 0),
                bias=False,
            ),
            nn.BatchNorm2d(int(channels[0])),
            nn.ReLU(inplace=True),
        ]
        c_in = int(channels[0])
        for c_out in channels[1:]:
            blocks += [
                nn.Conv2d(c_in, int(c_out), kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(int(c_out)),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = int(c_out)
        self.features = nn.Sequential(*blocks)
        n_flat = c_in * (h // scale) * (w // phi_reduce // scale)
        self.head = nn.Sequential(
            nn.Linear(n_flat + 1, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, images: torch.Tensor, log_e: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(images.float())
        if self.training and self.flip_augment:
            # per sample, so that every batch (and its batch-norm statistics) mixes orientations
            flips = torch.rand(2, x.shape[0]) < 0.5
            for dim, which in ((2, flips[0]), (3, flips[1])):
                x = torch.where(which.to(x.device)[:, None, None, None], torch.flip(x, (dim,)), x)
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.features(x).flatten(1)
        return self.head(torch.cat([x, log_e.float().reshape(-1, 1)], dim=1))

    @classmethod
    def example_inputs(
        cls,
        n: int,
        generator: torch.Generator,
        in_channels: int = len(LAYERS),
        image_size: Sequence[int] = (32, 32),
    ) -> dict[str, torch.Tensor]:
        """Images of ``image_size`` normalised to sum ~1, log_e of 10-100 GeV."""
        h, w = (int(s) for s in image_size)
        images = torch.rand(n, in_channels, h, w, generator=generator)
        images = images / images.sum(dim=(1, 2, 3), keepdim=True)
        log_e = torch.log(10.0 + 90.0 * torch.rand(n, generator=generator))
        return {"images": images, "log_e": log_e}
