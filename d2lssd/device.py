"""Picking the compute device: the one place where CUDA is chosen.

Nothing else in d2lssd or the chapters names a device; they call
:func:`try_gpu` (d2l's name) and move tensors with ``.to(device)``.
"""

from __future__ import annotations

import os

import torch

__all__ = ["try_gpu", "describe_device"]


def try_gpu(i: int = 0) -> torch.device:
    """Return ``cuda:i`` if that GPU exists, else the CPU.

    Setting the environment variable ``D2LSSD_DEVICE`` (e.g. ``cpu``) overrides
    the choice, so a GPU machine can reproduce a CPU run. Setting
    ``D2LSSD_REQUIRE_CUDA=1`` makes the absence of a GPU an error (used by the
    GPU CI workflow so it cannot silently pass on CPU).

    Args:
        i: index of the GPU to use.

    Returns:
        ``torch.device``.

    Raises:
        RuntimeError: ``D2LSSD_REQUIRE_CUDA=1`` but CUDA is not available.
        ValueError: ``i`` is negative.

    Source: d2l.ai §6.7 ``try_gpu`` (same name and behaviour plus the overrides).
    """
    if i < 0:
        raise ValueError(f"i must be a GPU index >= 0, got {i}")
    forced = os.environ.get("D2LSSD_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available() and torch.cuda.device_count() > i:
        return torch.device(f"cuda:{i}")
    if os.environ.get("D2LSSD_REQUIRE_CUDA") == "1":
        raise RuntimeError("D2LSSD_REQUIRE_CUDA=1 but no CUDA device is available")
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    """A one-line description of ``device`` for printing in chapters (e.g. the GPU name)."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads)"
