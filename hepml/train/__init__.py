"""The training system shared by every model of the project (see :mod:`hepml.train.system`)."""

from __future__ import annotations

from hepml.train.system import (
    FitResult,
    TensorBatches,
    TensorData,
    TrainerConfig,
    build_model_seeded,
    compute_loss,
    fit,
    load_model,
    predict,
    save_model,
    split_train_val,
)

__all__ = [
    "FitResult",
    "TensorBatches",
    "TensorData",
    "TrainerConfig",
    "build_model_seeded",
    "compute_loss",
    "fit",
    "load_model",
    "predict",
    "save_model",
    "split_train_val",
]
