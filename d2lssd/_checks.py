"""Input validation shared by the core modules.

Every public function of d2lssd checks its tensors with these helpers so that a
bad input fails with a ``ValueError`` that names the argument and says what was
expected, instead of producing a silently wrong answer.
"""

from __future__ import annotations

import torch

__all__ = ["check_boxes", "check_same_device", "check_float"]


def check_float(x, name: str) -> None:
    """Raise ``ValueError`` unless ``x`` is a floating-point tensor without NaN."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.numel() and torch.isnan(x).any():
        raise ValueError(f"{name} contains NaN")


def check_boxes(boxes, name: str, *, min_dim: int = 2, max_dim: int | None = None,
                check_order: bool = True) -> None:
    """Validate a tensor of corner-format boxes ``(..., 4)``.

    Raises ``ValueError`` naming ``name`` if ``boxes`` is not a float tensor,
    has fewer than ``min_dim`` (or more than ``max_dim``) dimensions, a last
    dimension other than 4, contains NaN, or (with ``check_order``) has a box
    with ``xmax < xmin`` or ``ymax < ymin``. Zero-area boxes are allowed.
    """
    check_float(boxes, name)
    if boxes.dim() < min_dim or (max_dim is not None and boxes.dim() > max_dim):
        want = f"{min_dim}" if max_dim == min_dim else (
            f"at least {min_dim}" if max_dim is None else f"{min_dim} to {max_dim}")
        raise ValueError(f"{name} must have {want} dimensions (..., 4), got shape "
                         f"{tuple(boxes.shape)}")
    if boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have a last dimension of 4 (xmin, ymin, xmax, ymax), "
                         f"got shape {tuple(boxes.shape)}")
    if check_order and boxes.numel():
        bad = (boxes[..., 2] < boxes[..., 0]) | (boxes[..., 3] < boxes[..., 1])
        if bad.any():
            first = bad.nonzero()[0].tolist()
            raise ValueError(f"{name} has a degenerate box (xmax < xmin or ymax < ymin) at "
                             f"index {first}: {boxes[tuple(first)].tolist()}")


def check_same_device(**tensors: torch.Tensor) -> None:
    """Raise ``ValueError`` if the given tensors are not all on one device."""
    devices = {name: t.device for name, t in tensors.items() if isinstance(t, torch.Tensor)}
    if len(set(devices.values())) > 1:
        desc = ", ".join(f"{n} on {d}" for n, d in devices.items())
        raise ValueError(f"tensors must be on the same device, got {desc}")
