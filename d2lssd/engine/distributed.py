"""Running alone or under ``torchrun``: this process's rank, its device, and the process group.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; with them a
trainer joins a process group (``nccl`` on CUDA, ``gloo`` on the CPU), puts
each process on ``cuda:LOCAL_RANK`` (or the CPU), and lets rank 0 alone
print, validate and write files. Without them everything is one process.

Source: torchvision ``references/detection/utils.py``
(``init_distributed_mode``, ``is_main_process``); PyTorch's DDP tutorial.
"""

from __future__ import annotations

import contextlib
import os
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistInfo", "dist_info", "distributed_context", "process_group_role", "unwrap_model"]


class DistInfo(NamedTuple):
    """Where this process stands: ``rank`` (0-based), ``world_size`` (processes), ``local_rank`` (on this
    machine), ``distributed`` (launched by ``torchrun``), ``device`` (its ``torch.device``)."""

    rank: int
    world_size: int
    local_rank: int
    distributed: bool
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0: the process that prints, validates and writes."""
        return self.rank == 0


def dist_info(device=None) -> DistInfo:
    """This process's rank and device, from torchrun's environment variables (one process without them).

    Args:
        device: the device asked for (default :func:`d2lssd.try_gpu`; under
            ``torchrun`` with CUDA, ``cuda:LOCAL_RANK``: one GPU per process,
            whatever was asked for).

    Raises:
        ValueError: ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` that are not
            integers, or a rank outside ``[0, WORLD_SIZE)``.
    """
    from ..device import try_gpu

    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    try:
        rank = int(os.environ["RANK"]) if distributed else 0
        world = int(os.environ["WORLD_SIZE"]) if distributed else 1
        local_rank = int(os.environ.get("LOCAL_RANK", 0)) if distributed else 0
    except ValueError as e:
        raise ValueError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them): {e}") from None
    if not 0 <= rank < world:
        raise ValueError(f"RANK must be in [0, WORLD_SIZE={world}), got {rank}")
    if device is None:
        device = torch.device("cuda", local_rank) if distributed and torch.cuda.is_available() else try_gpu()
    device = torch.device(device)
    if distributed and device.type == "cuda":
        device = torch.device("cuda", local_rank)
    return DistInfo(rank, world, local_rank, distributed, device)


@contextlib.contextmanager
def distributed_context(device=None):
    """Join torchrun's process group for the ``with`` block (if launched by torchrun) and leave it after.

    Yields the :class:`DistInfo` of this process. A group that is already
    initialised (by the caller) is used and left alone; one started here is
    destroyed at the end, also on an exception.

    Args:
        device: see :func:`dist_info`.
    """
    info = dist_info(device)
    started = False
    if info.distributed and not dist.is_initialized():
        if info.device.type == "cuda":
            torch.cuda.set_device(info.device)
        dist.init_process_group("nccl" if info.device.type == "cuda" else "gloo")
        started = True
    try:
        yield info
    finally:
        if started and dist.is_initialized():
            dist.destroy_process_group()


def process_group_role(distributed: bool | None = None) -> tuple[bool, bool]:
    """Whether a trainer runs distributed, and whether this process is the main one (rank 0).

    Args:
        distributed: ``None``: distributed when a ``torch.distributed``
            process group is initialized (e.g. under ``torchrun``, after
            :func:`distributed_context`); ``True``: one must be; ``False``:
            run alone even inside a group.

    Returns:
        ``(distributed, is_main)``; ``is_main`` is True when not distributed.

    Raises:
        ValueError: ``distributed=True`` without an initialized process group.

    Source: torchvision ``references/detection/utils.py`` (``is_dist_avail_and_initialized``,
    ``is_main_process``).
    """
    initialized = dist.is_available() and dist.is_initialized()
    if distributed is None:
        distributed = initialized
    elif distributed and not initialized:
        raise ValueError("distributed=True needs an initialized torch.distributed process group")
    return bool(distributed), (not distributed) or dist.get_rank() == 0


def unwrap_model(net: nn.Module) -> nn.Module:
    """The model inside a ``DistributedDataParallel`` or ``DataParallel`` wrapper; any other module itself.

    What a trainer saves, evaluates and hands to callbacks: the wrapper's
    ``state_dict`` keys carry a ``module.`` prefix that the bare model's
    lack, so checkpoints are written from (and loaded into) the unwrapped
    model. Nothing is copied: the returned module shares the parameters.

    Args:
        net: any ``nn.Module``.

    Returns:
        ``net.module`` for a DDP / DataParallel wrapper (one level), else ``net``.

    Source: torchvision ``references/detection/train.py`` (``model_without_ddp = model.module``).
    """
    if isinstance(net, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        return net.module
    return net
