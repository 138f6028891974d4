"""One optimizer and one learning-rate schedule for every trainer of the package.

The schedule is a pure function of the optimizer step: a linear warm-up from
``lr / 25`` over a share ``warmup`` of the steps, then half a cosine from
``lr`` down to ``lr * 1e-4`` (a one-cycle schedule without momentum
cycling, as fastai and torchvision's detection references use). With
``warmup=0`` it is the closed form of
``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total_steps,
eta_min=lr * 1e-4)``. A checkpoint stores only the step, so a run resumed
with more epochs continues along the stretched schedule.

Source: Loshchilov & Hutter, "SGDR" (ICLR 2017) for the cosine; Goyal et
al., "Accurate, Large Minibatch SGD" (2017) for the linear warm-up;
``torch.optim.lr_scheduler.LambdaLR`` runs it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["lr_factor", "make_optimizer", "OPTIMIZERS", "WARMUP_START", "FINAL_FACTOR"]

#: The optimizers :func:`make_optimizer` builds.
OPTIMIZERS = ("sgd", "momentum", "adamw")
#: The warm-up starts at ``lr * WARMUP_START``.
WARMUP_START = 1 / 25
#: The cosine ends at ``lr * FINAL_FACTOR``.
FINAL_FACTOR = 1e-4


def lr_factor(step: int, total_steps: int, warmup: float = 0.0) -> float:
    """The learning-rate multiplier at optimizer step ``step`` (0-based) of ``total_steps``.

    Args:
        step: optimizer steps taken so far, >= 0 (steps past the end stay at
            the final factor).
        total_steps: steps of the whole run, >= 1.
        warmup: share of the steps, in [0, 1), with a linear warm-up from
            :data:`WARMUP_START` to 1; the rest follows half a cosine from 1
            to :data:`FINAL_FACTOR`.

    Returns:
        a float in ``[FINAL_FACTOR, 1]``.

    Raises:
        ValueError: ``total_steps < 1``, ``step < 0`` or ``warmup`` outside [0, 1).
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"warmup must be in [0, 1), got {warmup}")
    warm = int(warmup * total_steps)
    if step < warm:
        return WARMUP_START + (1 - WARMUP_START) * step / warm
    progress = min((step - warm) / max(total_steps - warm, 1), 1.0)
    return FINAL_FACTOR + (1 - FINAL_FACTOR) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(net: nn.Module, optimizer: str = "adamw", lr: float = 1e-3, weight_decay: float = 0.0,
                   total_steps: int | None = None, warmup: float = 0.0):
    """The optimizer and its per-step scheduler (call ``scheduler.step()`` after every ``optimizer.step()``).

    Args:
        net: the model whose parameters are optimized (a DDP wrapper is fine).
        optimizer: ``"sgd"`` (plain SGD, d2l's recipe), ``"momentum"`` (SGD
            with momentum 0.9, the SSD paper's) or ``"adamw"``.
        lr: the peak learning rate, > 0.
        weight_decay: >= 0 (decoupled for AdamW, L2 for SGD).
        total_steps: optimizer steps of the run for :func:`lr_factor`;
            ``None``: a constant learning rate (no scheduler).
        warmup: see :func:`lr_factor`.

    Returns:
        ``(optimizer, scheduler)``; ``scheduler`` is a
        ``torch.optim.lr_scheduler.LambdaLR`` of :func:`lr_factor`, or
        ``None`` when ``total_steps`` is ``None``.

    Raises:
        ValueError: an unknown optimizer, ``lr <= 0``, ``weight_decay < 0``,
            and what :func:`lr_factor` raises.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {optimizer!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if optimizer == "adamw":
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9 if optimizer == "momentum" else 0.0,
                              weight_decay=weight_decay)
    if total_steps is None:
        return opt, None
    total, share = int(total_steps), float(warmup)
    lr_factor(0, total, share)  # checks the arguments now rather than at the first step
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, total, share))
