"""The training system shared by every model: Lightning around a plain ``nn.Module``.

What Lightning does for us (and we do not rewrite): the loop, AdamW stepping,
gradient-norm clipping, bf16 autocast on CUDA, early stopping on the validation
loss, a checkpoint every epoch and resuming from it, per-epoch CSV metrics.

What is ours:

* :class:`TensorData` — the whole sample as tensors already in memory (moved to
  the GPU once when there is one). :class:`TensorBatches` indexes a batch at a
  time with a seeded permutation per epoch, never sample by sample in Python.
* Resume: ``out_dir/checkpoints/last.ckpt`` is picked up when its fingerprint
  (model, hyper-parameters, trainer settings, seed, sample sizes, a hash of the
  training and validation tensors and the data-contract version) matches the
  current run; a run with other settings or other data starts afresh and says
  why. Each checkpoint carries every random state (torch CPU and CUDA, numpy,
  Python; the batch order is a pure function of ``(seed, epoch)``), so a run
  killed at any point and rerun ends with the weights of an uninterrupted run.
  Checkpoints are loaded with ``weights_only=True`` onto the CPU first (one
  written on a GPU resumes on a CPU); an unreadable one is a one-line error.
* One trainer per output folder: ``out_dir/train.lock`` (``flock``, released
  by the kernel when the process dies, even by SIGKILL).
* Non-finite values (NaN, inf) in any input, target or weight are an error
  before the first step.
* ``out_dir/model.pt``: the best epoch's weights with the registry name and
  hyper-parameters, written atomically; :func:`load_model` rebuilds the model
  from :data:`hepml.models.MODELS`.
* Several devices (``training.devices``, DDP) with the config's global batch size
  and learning rate, rank 0 alone writing (:mod:`hepml.train.parallel`), and
  ``training.compile`` (the compiled forward outside the module: plain state-dict keys).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from hepml.config import schema_default
from hepml.errors import HepmlError
from hepml.io import (
    atomic_output,
    atomic_write_text,
    check_input_file,
    remove_stale_temporaries,
)
from hepml.models import build_model, contract_sizes
from hepml.train.parallel import (
    cluster_plugins,
    gather_rank_rng,
    launch_rank,
    rank_part,
    restore_rank_rng,
    slurm_task_mismatch,
    whole_batch_loss,
)

LOSSES = ("bce", "ce")
#: version of the checkpoint layout and fingerprint; a change starts every run afresh
CHECKPOINT_VERSION = 2


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class TrainerConfig:
    """Trainer settings: ``training`` section, overridden by ``<task>.train``."""

    # defaults: the schema's (training.*), read when an instance is made, never repeated here
    max_epochs: int = field(default_factory=lambda: schema_default("training.max_epochs"))
    batch_size: int = field(default_factory=lambda: schema_default("training.batch_size"))
    lr: float = field(default_factory=lambda: schema_default("training.lr"))
    weight_decay: float = field(default_factory=lambda: schema_default("training.weight_decay"))
    grad_clip: float = field(default_factory=lambda: schema_default("training.grad_clip"))
    patience: int = field(default_factory=lambda: schema_default("training.patience"))
    device: str = field(default_factory=lambda: schema_default("training.device"))
    precision: str = field(default_factory=lambda: schema_default("training.precision"))
    threads: int = field(default_factory=lambda: schema_default("training.threads"))
    devices: int = field(default_factory=lambda: schema_default("training.devices"))
    strategy: str = field(default_factory=lambda: schema_default("training.strategy"))
    compile: bool = field(default_factory=lambda: schema_default("training.compile"))

    @classmethod
    def from_config(cls, cfg: dict[str, Any], task: str) -> TrainerConfig:
        merged = dict(cfg.get("training", {}))
        merged.update((cfg.get(task) or {}).get("train") or {})
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in merged.items() if k in names})

    def torch_device(self) -> torch.device:
        """``auto``: CUDA when present, else CPU. Asking for CUDA without one is an error."""
        if self.device == "cuda" and not torch.cuda.is_available():
            raise HepmlError("training.device is 'cuda' but no CUDA device is available")
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def lightning_precision(self, device: torch.device) -> str:
        """``auto``: bf16 autocast on CUDA, fp32 on CPU."""
        if self.precision == "auto":
            return "bf16-mixed" if device.type == "cuda" else "32-true"
        return "bf16-mixed" if self.precision == "bf16" else "32-true"


# --------------------------------------------------------------------------- data
@dataclass
class TensorData:
    """A whole sample as tensors; a batch calls ``model(**inputs)``.

    Shapes: every tensor has the sample axis N first. ``target`` is (N,) float
    0/1 for ``bce``, (N,) int64 for ``ce``, (N, L) float for per-element ``bce``
    with ``mask`` (N, L) bool marking the elements that count; ``weight`` (N,)
    optionally weights each sample's loss.
    """

    inputs: dict[str, torch.Tensor]
    target: torch.Tensor
    mask: torch.Tensor | None = None
    weight: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = len(self.target)
        for name, t in {**self.inputs, "mask": self.mask, "weight": self.weight}.items():
            if t is not None and len(t) != n:
                raise ValueError(f"TensorData: '{name}' has {len(t)} rows, target has {n}")

    def __len__(self) -> int:
        return len(self.target)

    def _map(self, fn: Any) -> TensorData:
        return TensorData(
            inputs={k: fn(v) for k, v in self.inputs.items()},
            target=fn(self.target),
            mask=None if self.mask is None else fn(self.mask),
            weight=None if self.weight is None else fn(self.weight),
        )

    def subset(self, idx: torch.Tensor | np.ndarray) -> TensorData:
        idx_t = torch.as_tensor(idx, device=self.target.device)
        return self._map(lambda t: t.index_select(0, idx_t))

    def to(self, device: torch.device) -> TensorData:
        return self._map(lambda t: t.to(device, non_blocking=True))

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor by name: ``input.<name>``, ``target``, ``mask``, ``weight``."""
        out = {f"input.{k}": v for k, v in sorted(self.inputs.items())}
        out["target"] = self.target
        if self.mask is not None:
            out["mask"] = self.mask
        if self.weight is not None:
            out["weight"] = self.weight
        return out

    def digest(self) -> str:
        """A hash of every tensor's name, dtype, shape and bytes (the data's fingerprint)."""
        h = hashlib.blake2b(digest_size=20)
        for name, t in self.tensors().items():
            c = t.detach().cpu().contiguous()
            h.update(f"{name}:{c.dtype}:{tuple(c.shape)};".encode())
            h.update(c.reshape(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    def check_finite(self, what: str) -> None:
        """A one-line :class:`HepmlError` naming the tensor when any value is NaN or infinite."""
        for name, t in self.tensors().items():
            if t.is_floating_point():
                bad = ~torch.isfinite(t)
                if bool(bad.any()):
                    rows = int(bad.reshape(len(t), -1).any(dim=1).sum()) if t.dim() else 1
                    raise HepmlError(
                        f"{what}: {name} has {int(bad.sum())} non-finite values (NaN or inf) in {rows} of {len(t)} samples"
                    )

    def batch(self, idx: torch.Tensor) -> dict[str, Any]:
        """One batch as a dict (the form Lightning passes to the steps)."""
        out: dict[str, Any] = {
            "inputs": {k: v.index_select(0, idx) for k, v in self.inputs.items()},
            "target": self.target.index_select(0, idx),
        }
        if self.mask is not None:
            out["mask"] = self.mask.index_select(0, idx)
        if self.weight is not None:
            out["weight"] = self.weight.index_select(0, idx)
        return out


def split_train_val(
    data: TensorData, val_fraction: float, seed: int
) -> tuple[TensorData, TensorData]:
    """A seeded random split of ``data`` into training and validation samples."""
    n = len(data)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_val = max(1, int(round(val_fraction * n)))
    if n - n_val < 1:
        raise HepmlError(f"sample of {n} is too small to split off a validation sample")
    return data.subset(perm[n_val:].sort().values), data.subset(perm[:n_val].sort().values)


class TensorBatches:
    """Iterable of batches over a :class:`TensorData` held on its device.

    Shuffled with a permutation drawn from a torch generator seeded by
    ``(seed, epoch)``, so a resumed run sees the same batches as an
    uninterrupted one. Lightning calls :meth:`set_epoch` through ``.sampler``.
    Under DDP (:meth:`shard`) every rank draws the same permutation and takes its
    part of each batch (:func:`hepml.train.parallel.rank_part`); a last batch
    smaller than the number of ranks is left out, so that every rank takes as
    many steps.
    """

    def __init__(self, data: TensorData, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.rank, self.world_size = 0, 1
        self.sampler = self  # Lightning's _set_sampler_epoch looks here
        self.batch_sampler = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard(self, rank: int, world_size: int) -> None:
        """From now on yield rank ``rank``'s part of each batch (of ``world_size`` parts)."""
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        if self.world_size > 1:
            full, rest = divmod(len(self.data), self.batch_size)
            return full + int(rest >= self.world_size)
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self) -> Any:
        n = len(self.data)
        device = self.data.target.device
        if self.shuffle:
            state = np.random.SeedSequence([self.seed, self.epoch]).generate_state(1, np.uint64)
            g = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
            order = torch.randperm(n, generator=g).to(device)
        else:
            order = torch.arange(n, device=device)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.world_size > 1:
                if len(idx) < self.world_size:
                    break
                idx = rank_part(idx, self.rank, self.world_size)
            yield self.data.batch(idx)


# --------------------------------------------------------------------------- loss
def _weighted_losses(
    logits: torch.Tensor, batch: dict[str, Any], loss: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-sample (N,) or per-element (N, L) losses and their weights (mask times sample
    weight; None: all one)."""
    target = batch["target"]
    logits = logits.float()
    if loss == "ce":
        per = F.cross_entropy(logits, target, reduction="none")
    else:
        if logits.dim() == 2 and target.dim() == 2 and logits.shape[1] != target.shape[1]:
            # packed sequences come back as long as the longest in the batch
            target = target[:, : logits.shape[1]]
        per = F.binary_cross_entropy_with_logits(logits, target.float(), reduction="none")
    mask = batch.get("mask")
    weight = batch.get("weight")
    if per.dim() == 2:
        m = mask[:, : per.shape[1]].to(per.dtype) if mask is not None else torch.ones_like(per)
        if weight is not None:
            m = m * weight[:, None].to(per.dtype)
        return per, m
    return per, None if weight is None else weight.to(per.dtype)


def compute_loss(logits: torch.Tensor, batch: dict[str, Any], loss: str) -> torch.Tensor:
    """Mean loss of a batch: ``bce`` (per sample or masked per element) or ``ce``."""
    per, w = _weighted_losses(logits, batch, loss)
    if w is None:
        return per.mean()
    return (per * w).sum() / w.sum().clamp_min(1.0 if per.dim() == 2 else 1e-12)


def loss_sums(
    logits: torch.Tensor, batch: dict[str, Any], loss: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Σ w·loss, Σ w)`` of a batch, whose ratio is :func:`compute_loss`: what DDP adds up
    over the ranks' parts of one batch (:func:`hepml.train.parallel.whole_batch_loss`)."""
    per, w = _weighted_losses(logits, batch, loss)
    if w is None:
        return per.sum(), per.new_tensor(float(per.numel()))
    return (per * w).sum(), w.sum()


# --------------------------------------------------------------------------- Lightning glue
def _lightning_module(
    model: nn.Module, loss: str, cfg: TrainerConfig, batches: tuple[TensorBatches, ...] = ()
) -> Any:
    """``model`` in a LightningModule. ``batches`` (the training and validation
    :class:`TensorBatches`) are moved to this rank's device and sharded when the run starts.
    Logged values are synchronised over DDP ranks (sample-weighted means; samples/s summed)."""
    import lightning as L

    # training.compile: the compiled forward of the same module (same parameters), held
    # outside the LightningModule so that state_dict keys (checkpoints, model.pt) stay plain
    run_model = torch.compile(model) if cfg.compile else model

    class System(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self._t0 = 0.0
            self._seen = 0

        def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
            return run_model(**inputs)

        def setup(self, stage: str) -> None:
            for b in batches:
                b.data = b.data.to(self.trainer.strategy.root_device)
                b.shard(self.global_rank, self.trainer.world_size)

        def on_train_epoch_start(self) -> None:
            self._t0 = time.perf_counter()
            self._seen = 0

        def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
            logits = run_model(**batch["inputs"])
            n = len(batch["target"])
            self._seen += n
            if self.trainer.world_size > 1:
                total, norm = loss_sums(logits, batch, loss)
                value = whole_batch_loss(total, norm, self.trainer.world_size)
                shown = total.detach() / norm.clamp_min(1e-12)
            else:
                value = shown = compute_loss(logits, batch, loss)
            self.log(
                "train_loss", shown, on_step=False, on_epoch=True, batch_size=n, sync_dist=True
            )
            return value

        def on_train_epoch_end(self) -> None:
            dt = max(time.perf_counter() - self._t0, 1e-9)
            self.log(
                "samples_per_s",
                float(self._seen / dt),
                on_step=False,
                on_epoch=True,
                sync_dist=True,
                reduce_fx="sum",
            )
            self.log(
                "lr",
                float(self.trainer.optimizers[0].param_groups[0]["lr"]),
                on_step=False,
                on_epoch=True,
                sync_dist=True,
            )

        def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
            value = compute_loss(run_model(**batch["inputs"]), batch, loss)
            self.log(
                "val_loss",
                value,
                on_step=False,
                on_epoch=True,
                batch_size=len(batch["target"]),
                sync_dist=True,
            )

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(
                self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
            )

        def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            checkpoint[RNG_KEY] = rng_states()
            if self.trainer.world_size > 1:  # every rank's own stream (a collective call)
                checkpoint[RNG_KEY]["ranks"] = gather_rank_rng(self.device)
            checkpoint[VERSION_KEY] = CHECKPOINT_VERSION

        def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            restore_rng_states(checkpoint[RNG_KEY])
            ranks = checkpoint[RNG_KEY].get("ranks")
            if ranks is not None and len(ranks["torch"]) == self.trainer.world_size:
                restore_rank_rng(ranks, self.global_rank, self.device)

    return System()


def _atomic_checkpoint_io() -> Any:
    """Lightning's checkpoint writer, through :func:`hepml.io.atomic_output`: a temporary beside
    the checkpoint, renamed when complete (Lightning's own writes a temporary in the system's
    temporary folder, which a SIGKILL leaves there, and copies it across file systems)."""
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(
            self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
        ) -> None:
            with atomic_output(path) as tmp:
                torch.save(checkpoint, tmp)

    return AtomicCheckpointIO()


RNG_KEY = "hepml_rng_states"
VERSION_KEY = "hepml_checkpoint_version"


def rng_states() -> dict[str, Any]:
    """Every random state a training step can draw from, as tensors and plain Python values
    (loadable with ``weights_only=True``)."""
    # numpy's global state: hepml draws only from Generators, but third-party code may not
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002
    version, py_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": int(version), "state": list(py_state), "gauss": gauss},
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    """Undo :func:`rng_states`. CUDA states are restored where as many GPUs are present
    (a GPU checkpoint resumed on a CPU has no CUDA stream to restore)."""
    torch.set_rng_state(states["torch"].cpu())
    cuda = states.get("cuda") or []
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
    n = states["numpy"]
    np.random.set_state(  # noqa: NPY002
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    py = states["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))


@dataclass
class FitResult:
    """What :func:`fit` did."""

    best_val_loss: float
    epochs: int
    resumed_from_epoch: int | None
    samples_per_s: float
    model_path: Path


def _fingerprint(
    model_name: str,
    hparams: dict[str, Any],
    cfg: TrainerConfig,
    seed: int,
    loss: str,
    n_train: int,
    n_val: int,
    data_digest: str,
    data_contract: str,
) -> dict[str, str]:
    """``{"settings": ..., "data": ...}``: hashes of what the run does and of what it learns from."""
    settings = json.dumps(
        {
            "version": CHECKPOINT_VERSION,
            "model": model_name,
            "hparams": hparams,
            "trainer": asdict(cfg),
            "seed": seed,
            "loss": loss,
            "n_train": n_train,
            "n_val": n_val,
        },
        sort_keys=True,
    )
    data = json.dumps({"tensors": data_digest, "contract": data_contract}, sort_keys=True)
    return {
        "settings": hashlib.sha256(settings.encode()).hexdigest(),
        "data": hashlib.sha256(data.encode()).hexdigest(),
    }


def _read_fingerprint(path: Path) -> dict[str, str] | None:
    try:
        fp = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return fp if isinstance(fp, dict) else None


@contextlib.contextmanager
def train_lock(out_dir: Path) -> Iterator[Path]:
    """Hold ``out_dir/train.lock`` for the duration; a second trainer on the same folder is a
    one-line :class:`HepmlError`. The kernel releases the lock when the holder dies."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "train.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise HepmlError(
                f"another trainer (pid {holder}) is writing to '{out_dir}' (lock '{path}'); wait for it to end or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock


def _checkpoint_epoch(last: Path) -> int:
    """The epoch stored in ``last`` (loaded onto the CPU); a one-line error if unreadable."""
    restart = f"delete '{last.parent}' to start this training afresh"
    try:
        ckpt = torch.load(last, map_location="cpu", weights_only=True)
        epoch = int(ckpt["epoch"])
        ckpt["state_dict"]
        ckpt[RNG_KEY]["torch"]
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0][:100] if str(exc).strip() else ""
        raise HepmlError(
            f"checkpoint '{last}' is unreadable (truncated or corrupt: {type(exc).__name__}{': ' + msg if msg else ''}); {restart}"
        ) from None
    return epoch


def build_model_seeded(model_name: str, hparams: dict[str, Any], seed: int) -> nn.Module:
    """The registered model, its initial weights drawn from a torch generator seeded by ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(model_name, hparams)


def fit(
    model: nn.Module,
    model_name: str,
    hparams: dict[str, Any],
    train: TensorData,
    val: TensorData,
    cfg: TrainerConfig,
    out_dir: Path,
    seed: int,
    loss: str = "bce",
    data_contract: str = "",
) -> FitResult:
    """Train ``model`` and write ``out_dir/model.pt`` with the best epoch's weights.

    Also writes ``out_dir/metrics.csv`` (one row per epoch: train_loss,
    val_loss, samples_per_s, lr) and ``out_dir/checkpoints/``. An interrupted
    run called again with the same arguments and data resumes from the last
    epoch and ends bit-identical to an uninterrupted one (on the CPU).
    ``data_contract`` names the version of the features' layout (part of the
    fingerprint, so a new layout never resumes an old run).
    """
    # Lightning's start-up chatter (accelerator list, tips) is not for our logs.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if len(train) == 0 or len(val) == 0:
        raise HepmlError(
            f"empty training ({len(train)}) or validation ({len(val)}) sample for {model_name}"
        )
    train.check_finite(f"training sample of {model_name}")
    val.check_finite(f"validation sample of {model_name}")
    _check_devices(cfg, len(train), len(val), model_name)
    out_dir = Path(out_dir)
    # DDP: ranks 1..W-1 run this too (started by srun or by Lightning rerunning the command);
    # rank 0 alone holds the lock and writes (see hepml.train.parallel)
    with train_lock(out_dir) if launch_rank() == 0 else contextlib.nullcontext(out_dir):
        return _fit_locked(
            model, model_name, hparams, train, val, cfg, out_dir, seed, loss, data_contract
        )


def _check_devices(cfg: TrainerConfig, n_train: int, n_val: int, model_name: str) -> None:
    """One-line errors, before any work, for device counts this run cannot honour."""
    w = cfg.devices
    if w > 1 and min(cfg.batch_size, n_train, n_val) < w:
        raise HepmlError(
            f"training.devices is {w}: {model_name} needs at least {w} samples in a batch "
            f"(training.batch_size {cfg.batch_size}), a training sample ({n_train}) and a "
            f"validation sample ({n_val}) to share among them"
        )
    if cfg.torch_device().type == "cuda" and w > torch.cuda.device_count():
        raise HepmlError(
            f"training.devices is {w} but {torch.cuda.device_count()} CUDA devices are visible"
        )
    mismatch = slurm_task_mismatch(w)
    if mismatch:
        raise HepmlError(mismatch)


def _fit_locked(
    model: nn.Module,
    model_name: str,
    hparams: dict[str, Any],
    train: TensorData,
    val: TensorData,
    cfg: TrainerConfig,
    out_dir: Path,
    seed: int,
    loss: str,
    data_contract: str,
) -> FitResult:
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    ckpt_dir = out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if launch_rank() == 0:  # a killed trainer's half-written files (this rank holds the lock)
        for folder in (out_dir, ckpt_dir):
            remove_stale_temporaries(folder)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = cfg.torch_device()
    # dropout and any other draw inside the loop; a resumed run restores the states instead
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    random.seed(seed)

    fp = _fingerprint(
        model_name,
        hparams,
        cfg,
        seed,
        loss,
        len(train),
        len(val),
        train.digest() + val.digest(),
        data_contract,
    )
    fp_file = ckpt_dir / "fingerprint.json"
    last = ckpt_dir / "last.ckpt"
    # the fingerprint before last.ckpt: a rank > 0 reading while rank 0 clears a stale run
    # sees either the old fingerprint (no match) or no last.ckpt, as rank 0 decided
    writer = launch_rank() == 0
    old = _read_fingerprint(fp_file)
    has_last = last.is_file()
    resume = has_last and old == fp
    if has_last and not resume and writer:
        why = (
            "its training data or data contract changed"
            if old is not None and old.get("settings") == fp["settings"]
            else "its model, settings or sample sizes changed"
            if old is not None
            else "it has no readable fingerprint"
        )
        print(
            f"hepml train: {model_name}: not resuming from '{last}' ({why}): starting afresh",
            file=sys.stderr,
        )
    if not resume and writer:
        for stale in [
            *ckpt_dir.glob("*.ckpt"),
            ckpt_dir / "fingerprint.txt",
            out_dir / "metrics.csv",
            out_dir / "model.pt",
        ]:
            stale.unlink(missing_ok=True)
        atomic_write_text(fp_file, json.dumps(fp, sort_keys=True) + "\n")
    resumed_epoch = None
    if resume:
        resumed_epoch = _checkpoint_epoch(last) + 1
        if writer:
            print(f"resuming {model_name} from {last} (epoch {resumed_epoch})", file=sys.stderr)

    previous = _read_metrics(out_dir / "metrics.csv") if resume else None
    # moved to this rank's device (and sharded) by the module's setup, once the ranks exist
    batches = (
        TensorBatches(train, cfg.batch_size, shuffle=True, seed=seed),
        TensorBatches(val, max(cfg.batch_size, 4096), shuffle=False),
    )
    system = _lightning_module(model, loss, cfg, batches)
    best_ckpt = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    with warnings.catch_warnings():
        for benign in _BENIGN_WARNINGS:
            warnings.filterwarnings("ignore", message=benign)
        trainer = L.Trainer(
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=cfg.devices,
            strategy=cfg.strategy,
            precision=cfg.lightning_precision(device),  # type: ignore[arg-type]
            max_epochs=cfg.max_epochs,
            gradient_clip_val=cfg.grad_clip if cfg.grad_clip > 0 else None,
            callbacks=[
                best_ckpt,
                EarlyStopping(monitor="val_loss", mode="min", patience=cfg.patience),
            ],
            logger=CSVLogger(save_dir=out_dir, name="", version=""),
            enable_progress_bar=sys.stderr.isatty(),
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=1,
            default_root_dir=out_dir,
            plugins=[_atomic_checkpoint_io(), *cluster_plugins(cfg.devices)],
        )
        trainer.fit(
            system,
            train_dataloaders=batches[0],
            val_dataloaders=batches[1],
            ckpt_path=str(last) if resume else None,
            weights_only=True,
        )
    if trainer.is_global_zero:
        _merge_metrics(out_dir / "metrics.csv", previous)

    best_path = Path(best_ckpt.best_model_path) if best_ckpt.best_model_path else last
    state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    best = (
        float(best_ckpt.best_model_score)
        if best_ckpt.best_model_score is not None
        else float("nan")
    )
    sps = _last_metric(out_dir / "metrics.csv", "samples_per_s")
    meta = {
        "best_val_loss": best,
        "epochs": int(trainer.current_epoch),
        "loss": loss,
        "seed": seed,
        "trainer": asdict(cfg),
        "fingerprint": fp,
        "data_contract": data_contract,
    }
    model_path = out_dir / "model.pt"
    if trainer.is_global_zero:
        save_model(model_path, model_name, hparams, model, meta)
    return FitResult(
        best_val_loss=best,
        epochs=int(trainer.current_epoch),
        resumed_from_epoch=resumed_epoch,
        samples_per_s=sps,
        model_path=model_path,
    )


# Lightning's notices that say nothing about this run (we resume on purpose, feed
# pre-batched tensors rather than a DataLoader with workers, and run inside SLURM
# jobs as one process, not through srun).
_BENIGN_WARNINGS = (
    ".*exists and is not empty.*",
    ".*does not have many workers.*",
    ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*",
    ".*litlogger.*",
    ".*The `srun` command is available on your system but is not used.*",
)


def _read_metrics(csv_path: Path) -> Any:
    import pandas as pd

    if not csv_path.is_file():
        return None
    try:
        df = pd.read_csv(csv_path)
    except Exception:  # a metrics file of a killed run: the checkpoint is what counts
        return None
    return df if "epoch" in df else None


def _merge_metrics(csv_path: Path, previous: Any) -> None:
    """One row per epoch (Lightning writes train and validation rows apart), earlier runs kept."""
    import pandas as pd

    frames = [f for f in (previous, _read_metrics(csv_path)) if f is not None and len(f)]
    if not frames:
        return
    df = pd.concat(frames, ignore_index=True)
    df = df.groupby("epoch", as_index=False).agg("last").drop(columns=["step"], errors="ignore")
    cols = (
        ["epoch"]
        + [c for c in ("train_loss", "val_loss", "samples_per_s", "lr") if c in df]
        + [c for c in df if c not in ("epoch", "train_loss", "val_loss", "samples_per_s", "lr")]
    )
    with atomic_output(csv_path) as tmp:
        df[cols].to_csv(tmp, index=False)


def _last_metric(csv_path: Path, column: str) -> float:
    import pandas as pd

    if not csv_path.is_file():
        return float("nan")
    df = pd.read_csv(csv_path)
    if column not in df:
        return float("nan")
    values = df[column].dropna()
    return float(values.iloc[-1]) if len(values) else float("nan")


# --------------------------------------------------------------------------- inference and model files
def predict(model: nn.Module, data: TensorData, batch_size: int = 4096) -> np.ndarray:
    """Logits of ``model`` on ``data`` (eval mode, no grad) as float32 numpy."""
    device = next(model.parameters()).device
    model.eval()
    outs = []
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            idx = torch.arange(start, min(start + batch_size, len(data)), device=data.target.device)
            inputs = {k: v.index_select(0, idx).to(device) for k, v in data.inputs.items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(**inputs)
            outs.append(logits.float().cpu())
    if not outs:
        return np.zeros((0,), dtype=np.float32)
    if outs[0].dim() == 2 and len({o.shape[1] for o in outs}) > 1:
        width = max(o.shape[1] for o in outs)
        outs = [F.pad(o, (0, width - o.shape[1]), value=float("-inf")) for o in outs]
    return torch.cat(outs).numpy().astype(np.float32, copy=False)


def save_model(
    path: Path,
    model_name: str,
    hparams: dict[str, Any],
    model: nn.Module,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write weights, registry name, hyper-parameters and metadata atomically."""
    payload = {
        "model_name": model_name,
        "hparams": json.loads(json.dumps(hparams)),
        "meta": json.loads(json.dumps(meta or {})),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model` (safe load: ``weights_only=True``).

    Returns ``(model in eval mode, {"model_name", "hparams", "meta"})``.
    """
    path = check_input_file(path, "model file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        name, hparams = payload["model_name"], payload["hparams"]
    except Exception as exc:
        raise HepmlError(f"'{path}' is not a hepml model file ({type(exc).__name__})") from None
    try:
        contract = contract_sizes(name)
    except KeyError as exc:
        raise HepmlError(f"'{path}': {exc.args[0]}") from None
    for key, size in contract.items():
        if key in hparams and hparams[key] != size:
            raise HepmlError(
                f"'{path}': model '{name}' has {key}={hparams[key]!r} but the data contract has {size}; retrain it"
            )
    try:
        model = build_model(name, hparams)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise HepmlError(
            f"'{path}': cannot rebuild model '{name}' ({str(exc).splitlines()[0][:120]})"
        ) from None
    model.to(device).eval()
    return model, {"model_name": name, "hparams": hparams, "meta": payload.get("meta", {})}
