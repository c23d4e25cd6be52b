"""The calorimeter CNN (hepml.models.calo_cnn) on its own."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hepml.models import MODELS, build_model
from hepml.models.calo_cnn import CaloCNN


def test_shapes_registry_and_json_hparams() -> None:
    assert MODELS["calo_cnn"] == "hepml.models.calo_cnn:CaloCNN"
    hp = {
        "in_channels": 3,
        "image_size": [32, 32],
        "channels": [8, 16, 16],
        "hidden": 16,
        "n_classes": 3,
        "dropout": 0.0,
        "phi_reduce": 4,
    }
    model = build_model("calo_cnn", json.loads(json.dumps(hp))).eval()
    inputs = CaloCNN.example_inputs(5, torch.Generator().manual_seed(0))
    assert inputs["images"].shape == (5, 3, 32, 32) and inputs["log_e"].shape == (5,)
    assert inputs["images"].sum(dim=(1, 2, 3)) == pytest.approx(torch.ones(5))
    logits = model(**inputs)
    assert logits.shape == (5, 3) and torch.isfinite(logits).all()
    # other grids: 16 x 64 pixels with 2 pooling blocks
    other = CaloCNN(
        image_size=(16, 64), channels=(8, 8, 8), hidden=8, dropout=0.0, phi_reduce=4
    ).eval()
    assert other(torch.rand(2, 3, 16, 64), torch.ones(2)).shape == (2, 3)
    with pytest.raises(ValueError, match="divisible"):
        CaloCNN(image_size=(30, 32), channels=(8, 8, 8), hidden=8, dropout=0.0, phi_reduce=4)


def test_eval_is_deterministic_and_training_flips_are_mirror_images() -> None:
    torch.manual_seed(1)
    model = CaloCNN(image_size=(32, 32), channels=(8, 8, 8), hidden=8, dropout=0.0, phi_reduce=4)
    x = CaloCNN.example_inputs(16, torch.Generator().manual_seed(2))
    model.eval()
    assert torch.equal(model(**x), model(**x))
    model.train()
    torch.manual_seed(3)
    flips = torch.rand(2, 16) < 0.5  # per image: eta, phi
    torch.manual_seed(3)
    augmented = model(**x)
    model.flip_augment = False
    images = x["images"]
    images = torch.where(flips[0][:, None, None, None], images.flip(2), images)
    images = torch.where(flips[1][:, None, None, None], images.flip(3), images)
    mirrored = model(images=images, log_e=x["log_e"])
    assert torch.allclose(augmented, mirrored, atol=1e-5)


def _blobs(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: one narrow blob in the strip channel; class 1: two blobs 4 pixels apart in eta."""
    y = torch.randint(0, 2, (n,), generator=g)
    eta = torch.arange(32.0)[None, :, None]
    centre = 14.0 + 4.0 * torch.rand(n, generator=g)[:, None, None]
    share = 0.3 + 0.4 * torch.rand(n, generator=g)[:, None, None]
    one = torch.exp(-0.5 * ((eta - centre) / 0.8) ** 2)
    two = share * torch.exp(-0.5 * ((eta - centre + 2) / 0.8) ** 2) + (1 - share) * torch.exp(
        -0.5 * ((eta - centre - 2) / 0.8) ** 2
    )
    profile = torch.where(y[:, None, None] == 1, two, one).expand(n, 32, 32)
    images = torch.zeros(n, 3, 32, 32)
    images[:, 0] = profile / profile.sum(dim=(1, 2), keepdim=True) * 0.2
    images[:, 1] = 0.8 / 1024
    images += 1e-4 * torch.randn(images.shape, generator=g)
    return images, y


@pytest.fixture
def one_thread():
    """Single-threaded torch: small convolutions on a shared 2-core machine thrash with 2."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_learns_to_tell_one_strip_peak_from_two(one_thread: None) -> None:
    g = torch.Generator().manual_seed(4)
    x, y = _blobs(512, g)
    xt, yt = _blobs(256, g)
    torch.manual_seed(5)
    model = CaloCNN(image_size=(32, 32), channels=(8, 16, 16), hidden=16, dropout=0.0, phi_reduce=4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    log_e = torch.full((512,), 3.0)
    for step in range(60):
        idx = torch.arange(step * 64, step * 64 + 64) % 512
        loss = F.cross_entropy(model(images=x[idx], log_e=log_e[idx])[:, :2], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (
            (model(images=xt, log_e=torch.full((256,), 3.0))[:, :2].argmax(1) == yt)
            .float()
            .mean()
            .item()
        )
    assert acc > 0.9, acc
    assert np.isfinite(loss.item())
