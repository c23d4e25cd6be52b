"""Data-parallel training (DDP) for :mod:`hepml.train.system`: ranks, batch shares, losses, RNG.

The batch size and learning rate of the config are global, whatever the number of
processes W (``training.devices``). Every rank draws the same seeded permutation
per epoch (:class:`hepml.train.system.TensorBatches`); each batch of
``batch_size`` samples is split into W near-equal parts and rank r takes part r
(:func:`rank_part`). Rank r's loss is its part's sum of (weighted) per-element
losses divided by the whole batch's sum of weights, times W
(:func:`whole_batch_loss`): DDP averages the W gradients, so the step is the
gradient of the whole batch's loss, as on one device (the plain mean, the
per-sample weights and the per-element masks alike), whatever the parts' sizes.

Who writes what: rank 0 alone holds ``train.lock``, clears a stale run, writes the
fingerprint, ``metrics.csv``, the checkpoints (Lightning) and ``model.pt``; the
other ranks only read. Each checkpoint holds every rank's torch (and CUDA) RNG
state, so a resumed DDP run draws what an uninterrupted one would.
"""

from __future__ import annotations

import os
from typing import Any

import torch


def launch_rank() -> int:
    """This process's global rank as its launcher set it, before Lightning starts (0 when
    alone): torchrun's ``RANK``, Lightning's own launcher's ``LOCAL_RANK`` (it starts ranks
    1..W-1 on this node by rerunning the command), srun's ``SLURM_PROCID``."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        value = os.environ.get(key, "")
        if value.isdigit():
            return int(value)
    return 0


def cluster_plugins(devices: int) -> list[Any]:
    """Lightning's cluster environment for this process.

    Under SLURM with one task per device (``srun``, ``--ntasks-per-node`` = devices)
    Lightning's :class:`SLURMEnvironment` reads the ranks from SLURM; its auto-requeue
    (a SIGUSR1 handler that writes ``hpc_ckpt_*.ckpt`` and requeues) is switched off:
    a preempted job resumes from ``checkpoints/last.ckpt`` like any other rerun, and an
    hpc checkpoint would bypass the fingerprint. A SLURM job of one task asking for
    several devices gets Lightning's own launcher (it starts the other ranks itself).
    """
    from lightning.pytorch.plugins.environments import LightningEnvironment, SLURMEnvironment

    if not SLURMEnvironment.detect():
        return []
    if devices > 1 and int(os.environ.get("SLURM_NTASKS", "1")) == 1:
        return [LightningEnvironment()]
    return [SLURMEnvironment(auto_requeue=False)]


def slurm_task_mismatch(devices: int) -> str | None:
    """A one-line reason when SLURM started several tasks per node but not ``devices`` of them."""
    per_node = os.environ.get("SLURM_NTASKS_PER_NODE", "")
    ntasks = int(os.environ.get("SLURM_NTASKS", "1") or 1)
    if "SLURM_JOB_ID" not in os.environ or ntasks <= 1:
        return None
    if not per_node.isdigit():
        return f"SLURM started {ntasks} tasks without --ntasks-per-node; Lightning needs --ntasks-per-node={devices} (training.devices)"
    if int(per_node) != devices:
        return f"training.devices is {devices} but SLURM started {per_node} tasks per node (--ntasks-per-node); make them equal"
    return None


def rank_part(idx: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s part of one batch's sample indices: W near-equal contiguous parts
    (sizes differ by at most one)."""
    return idx.tensor_split(world_size)[rank]


def whole_batch_loss(total: torch.Tensor, norm: torch.Tensor, world_size: int) -> torch.Tensor:
    """``total * W / Σ_ranks norm``: this rank's share of the whole batch's loss, scaled so that
    DDP's average of the W gradients is the whole batch's gradient (one all-reduce of a scalar,
    without Lightning's barrier)."""
    import torch.distributed as dist

    whole = norm.detach().clone().float()
    dist.all_reduce(whole, op=dist.ReduceOp.SUM)
    return total * world_size / whole.clamp_min(1e-12)


def gather_rank_rng(device: torch.device) -> dict[str, torch.Tensor]:
    """Every rank's torch CPU RNG state (and its own CUDA device's), stacked in rank order:
    ``{"torch": (W, S) uint8, "cuda": (W, S') uint8}`` on the CPU. Collective: every rank calls it."""
    import torch.distributed as dist

    mine = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        mine["cuda"] = torch.cuda.get_rng_state(device)
    out = {}
    for key, state in mine.items():
        state = state.to(device)
        parts = [torch.empty_like(state) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, state)
        out[key] = torch.stack(parts).cpu()
    return out


def restore_rank_rng(ranks: dict[str, torch.Tensor], rank: int, device: torch.device) -> None:
    """Undo :func:`gather_rank_rng` for this rank."""
    torch.set_rng_state(ranks["torch"][rank].cpu().clone())
    if device.type == "cuda" and "cuda" in ranks:
        torch.cuda.set_rng_state(ranks["cuda"][rank].cpu().clone(), device)
