"""Input validation shared by the core modules.

Every public function of d2lssd checks its tensors with these helpers so that a
bad input fails with a ``ValueError`` that names the argument and says what was
expected, instead of producing a silently wrong answer.

Two kinds of helper: ``check_*`` only validate (a floating-point tensor is
required; :func:`check_dtype` only the kind of dtype, for the losses), while
``as_float*`` validate and *return* the tensor to compute with, an integer tensor promoted to the default float dtype
(``torch.get_default_dtype()``, float32 unless changed). The second kind is
what lets d2l's chapter code, which builds some inputs from Python integers
(``torch.tensor([0] * 16)`` is int64), run unchanged; torchvision's box
functions accept integer boxes too. :func:`float32_or_wider` is the dtype the
losses compute in (float16 predictions under mixed precision are upcast).
"""

from __future__ import annotations

import torch

__all__ = ["check_boxes", "check_same_device", "check_float", "check_dtype", "as_float", "as_float_boxes",
           "float32_or_wider"]


def _require_tensor(x, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")


def _check_no_nan(x: torch.Tensor, name: str) -> None:
    # A NaN makes the sum NaN, so a finite or infinite sum proves there is none: one
    # reduction and no bool temporary. A NaN sum (a NaN, or +inf and -inf) asks again.
    if x.numel() and torch.isnan(x.sum()) and torch.isnan(x).any():
        raise ValueError(f"{name} contains NaN")


def check_float(x, name: str) -> None:
    """Raise ``ValueError`` unless ``x`` is a floating-point tensor without NaN."""
    _require_tensor(x, name)
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    _check_no_nan(x, name)


def check_dtype(x, name: str, floating: bool = True) -> None:
    """Raise ValueError unless ``x`` is a tensor of floating (or, with ``floating=False``, integer) dtype."""
    _require_tensor(x, name)
    if floating and not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if not floating and (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool):
        raise ValueError(f"{name} must be an integer tensor, got dtype {x.dtype}")


def float32_or_wider(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or in its own dtype if that is wider (float64): what the losses compute in."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def as_float(x, name: str) -> torch.Tensor:
    """``x`` as a floating-point tensor: integer tensors are promoted, floats returned as they are.

    Args:
        x: a tensor of a floating-point dtype (returned unchanged, no copy) or
            of an integer dtype (``uint8``, ``int8`` ... ``int64``; converted
            to ``torch.get_default_dtype()``, exact for magnitudes up to
            ``2**24`` in float32).
        name: the argument's name, for the error message.

    Returns:
        The floating-point tensor, on ``x``'s device.

    Raises:
        ValueError: ``x`` is not a tensor, is ``bool`` or complex, or contains NaN.
    """
    _require_tensor(x, name)
    if not x.is_floating_point():
        if x.dtype == torch.bool or x.is_complex():
            raise ValueError(f"{name} must be a floating-point or integer tensor, got dtype {x.dtype}")
        return x.to(torch.get_default_dtype())  # integers: no NaN to look for
    _check_no_nan(x, name)
    return x


def _check_box_layout(boxes: torch.Tensor, name: str, min_dim: int, max_dim: int | None,
                      check_order: bool) -> None:
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


def check_boxes(boxes, name: str, *, min_dim: int = 2, max_dim: int | None = None,
                check_order: bool = True) -> None:
    """Validate a tensor of corner-format boxes ``(..., 4)``.

    Raises ``ValueError`` naming ``name`` if ``boxes`` is not a float tensor,
    has fewer than ``min_dim`` (or more than ``max_dim``) dimensions, a last
    dimension other than 4, contains NaN, or (with ``check_order``) has a box
    with ``xmax < xmin`` or ``ymax < ymin``. Zero-area boxes are allowed.
    """
    check_float(boxes, name)
    _check_box_layout(boxes, name, min_dim, max_dim, check_order)


def as_float_boxes(boxes, name: str, *, min_dim: int = 2, max_dim: int | None = None,
                   check_order: bool = True) -> torch.Tensor:
    """:func:`check_boxes` for float *or integer* boxes; returns the boxes to compute with.

    Integer boxes (pixel coordinates, say) are promoted by :func:`as_float`;
    floating-point boxes are returned unchanged. Raises what
    :func:`check_boxes` raises, and for ``bool`` or complex tensors.
    """
    boxes = as_float(boxes, name)
    _check_box_layout(boxes, name, min_dim, max_dim, check_order)
    return boxes


def check_same_device(**tensors: torch.Tensor) -> None:
    """Raise ``ValueError`` if the given tensors are not all on one device."""
    devices = {name: t.device for name, t in tensors.items() if isinstance(t, torch.Tensor)}
    if len(set(devices.values())) > 1:
        desc = ", ".join(f"{n} on {d}" for n, d in devices.items())
        raise ValueError(f"tensors must be on the same device, got {desc}")
