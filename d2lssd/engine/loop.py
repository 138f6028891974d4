"""The training loop in small pieces: one step, one epoch, an evaluation pass, and ``fit`` over the epochs.

The loop knows nothing about the data set or the model. A step asks a
``batch_loss`` (:class:`~d2lssd.engine.SSDBatchLoss`) for the per-image
losses and a tensor of sums, checks the loss, steps the optimizer (and the
scaler and scheduler); an epoch sums the steps' tensors in an
:class:`~d2lssd.metrics.Accumulator` and turns them into metrics with
``batch_loss.summary``; :func:`fit` adds validation, a :class:`History`
record, checkpoints and the display.

Source: torchvision ``references/detection/engine.py`` (``train_one_epoch``,
``evaluate``) and ``train.py`` (the epoch loop, checkpoints every epoch);
d2l.ai §14.7.3.3 (the TinySSD loop: forward, targets, loss, mean, backward,
step).
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from typing import Callable, Iterable

import torch
import torch.distributed as dist
from torch import nn

from ..metrics import Accumulator
from .batch_loss import split_batch
from .checkpoint import Checkpoints
from .distributed import unwrap_model
from .history import History, epoch_record
from .progress import Progress

__all__ = ["Timer", "train_step", "train_one_epoch", "evaluate", "fit"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class Timer:
    """Wall time of a ``with`` block in seconds (``seconds``), with ``torch.cuda.synchronize`` at both ends on CUDA.

    Timing a whole epoch this way counts data loading and every batch; on an
    exception the block is not timed (``seconds`` stays NaN).

    Source: ours (d2l's throughput timed only the last batch).
    """

    def __init__(self, device: torch.device):
        self.device, self.seconds = torch.device(device), math.nan

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self) -> "Timer":
        self._sync()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self._sync()
            self.seconds = time.perf_counter() - self._t0


def _warn_from_caller(message: str) -> None:
    """A ``RuntimeWarning`` attributed to the first caller outside the d2lssd package.

    So a notebook's warning names the cell that called ``train_ssd``, however
    deep in the engine it was issued (Python 3.12's ``skip_file_prefixes``).
    """
    level, frame = 2, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)


def train_step(net: nn.Module, X: torch.Tensor, Y: torch.Tensor, batch_loss: Callable,
               optimizer: torch.optim.Optimizer, scaler=None, lr_scheduler=None, distributed: bool = False,
               epoch: int = 0, batch: int = 0) -> list[float]:
    """One optimizer step on one batch, guarded against a NaN or infinite loss.

    Forward and loss (``batch_loss(net, X, Y)``), the sums added over all
    processes when ``distributed`` (``all_reduce``, so the check is global),
    the NaN guard, then ``zero_grad``, backward of the mean per-image loss,
    the optimizer step (through ``scaler`` when given) and one
    ``lr_scheduler.step()``.

    Args:
        net: the model in training mode (a DDP wrapper is fine).
        X: images, float ``(B, 3, H, W)`` with ``B >= 1``.
        Y: labels, float ``(B, G, 5)`` (whatever ``batch_loss`` takes).
        batch_loss: ``batch_loss(net, X, Y) -> (losses (B,), stats)``, with
            ``stats`` a float tensor whose first two entries are the sum of
            the losses and the number of images (:class:`~d2lssd.engine.SSDBatchLoss`).
        optimizer: stepped once.
        scaler: a ``torch.amp.GradScaler`` (mixed precision) or None.
        lr_scheduler: stepped after the optimizer step, or None.
        distributed: sum ``stats`` over the process group.
        epoch, batch: 0-based; named (as epoch + 1, batch) in the error.

    Returns:
        ``stats`` as a list of floats (summed over processes when distributed).

    Raises:
        FloatingPointError: the loss is NaN or infinite. Raised before
            ``zero_grad`` and the step, with the model's buffers (BatchNorm
            running statistics, which the forward pass updated) restored: the
            model is exactly as it was before the batch.

    Source: d2l.ai §14.7.3.3 (the step); the guard is ours; torchvision
    ``references/detection/engine.py`` stops on a non-finite loss too, without restoring.
    """
    buffers = list(net.buffers())
    saved = [t.detach().clone() for t in buffers]  # BatchNorm statistics, restored on a bad loss
    l, stats = batch_loss(net, X, Y)
    if distributed:
        dist.all_reduce(stats)  # sums over all processes: global metrics and NaN check
    # The sync that reads the metrics and checks the loss; the matching's rounds,
    # its positives and the hard-negative top-k size add a few small ones.
    values = stats.tolist()
    if not math.isfinite(values[0]):
        with torch.no_grad():
            for t, s in zip(buffers, saved):
                t.copy_(s)
        raise FloatingPointError(
            f"the loss is {values[0] / max(values[1], 1):g} at epoch {epoch + 1}, batch {batch} "
            f"(epochs count from 1, batches from 0; {int(values[1])} images); stopped before "
            f"the optimizer step, the model "
            f"is unchanged by this batch. Look for NaN/inf in the images, a too-large learning "
            f"rate (lr={optimizer.param_groups[0]['lr']}), or try amp=False.")
    optimizer.zero_grad(set_to_none=True)
    loss = l.mean()
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    if lr_scheduler is not None:
        lr_scheduler.step()
    return values


def train_one_epoch(net: nn.Module, batches: Iterable, batch_loss, optimizer: torch.optim.Optimizer, epoch: int,
                    scaler=None, lr_scheduler=None, distributed: bool = False, bar=None) -> dict:
    """One pass over ``batches`` in training mode: a :func:`train_step` per batch, its sums accumulated.

    Args:
        net: the model (set to training mode here).
        batches: iterable of ``(images (B, 3, H, W), labels)``; an empty
            batch (``B = 0``) is skipped with a warning.
        batch_loss: as in :func:`train_step`, with ``num_stats`` (the length
            of its stats), ``device`` (timed there), ``summary(acc)`` and
            ``postfix(acc)`` (:class:`~d2lssd.engine.SSDBatchLoss`).
        optimizer, scaler, lr_scheduler, distributed: as in :func:`train_step`.
        epoch: 0-based, for the messages.
        bar: a tqdm bar (from :meth:`Progress.epoch_bar`) or None. It is
            updated by hand after each batch (running loss as postfix, drawn
            lazily) and refreshed once at the end, so its final count shows
            however fast the epoch was; then closed.

    Returns:
        ``batch_loss.summary`` of the epoch's sums (for SSD: ``loss``,
        ``class_error_positive``, ``class_error_all``, ``bbox_mae_positive``,
        ``images``) and ``time_s``, the wall time of the whole pass (data
        loading included, synchronized on CUDA).

    Raises:
        FloatingPointError: from :func:`train_step` (the bar is closed first).
        ValueError: a batch that is not ``(images, labels)``, bad labels, or
            an epoch without any image.

    Warns:
        RuntimeWarning: an empty batch.

    Source: torchvision ``references/detection/engine.py`` ``train_one_epoch``.
    """
    net.train()
    acc = Accumulator(batch_loss.num_stats)
    with Timer(batch_loss.device) as timer:
        for b, batch in enumerate(batches):
            X, Y = split_batch(batch, b)
            if X.shape[0] == 0:
                _warn_from_caller(f"epoch {epoch + 1}, batch {b} is empty (B = 0): skipped")
                if bar is not None:
                    bar.update(1)
                continue
            try:
                values = train_step(net, X, Y, batch_loss, optimizer, scaler, lr_scheduler, distributed, epoch, b)
            except FloatingPointError:
                if bar is not None:
                    bar.close()
                raise
            acc.add(*values)
            if bar is not None:
                bar.set_postfix(**batch_loss.postfix(acc), refresh=False)
                bar.update(1)
    if bar is not None:
        bar.refresh()  # the epoch's last count and mean loss are drawn however fast the epoch was
        bar.close()
    summary = {**batch_loss.summary(acc), "time_s": timer.seconds}
    if summary["images"] == 0:
        raise ValueError(f"train_iter gave no images in epoch {epoch + 1}")
    return summary


def evaluate(net: nn.Module, batches: Iterable, batch_loss) -> dict:
    """The loss and metrics of ``net`` on ``batches``, in eval mode and without gradients.

    Args:
        net: the model; its train/eval mode is restored afterwards (also on an error).
        batches: iterable of ``(images (B, 3, H, W), labels)``; empty batches are skipped.
        batch_loss: as in :func:`train_one_epoch`.

    Returns:
        ``batch_loss.summary`` of the sums (NaN for a metric whose count is
        0, e.g. no images) and ``time_s`` (wall time, synchronized on CUDA).

    Raises:
        ValueError: a batch that is not ``(images, labels)``, bad labels.

    Source: torchvision ``references/detection/engine.py`` ``evaluate``
    (there COCO AP; the AP here is :func:`d2lssd.evaluate_ap`).
    """
    was_training = net.training
    net.eval()
    acc = Accumulator(batch_loss.num_stats)
    with Timer(batch_loss.device) as timer:
        try:
            with torch.no_grad():
                for b, batch in enumerate(batches):
                    X, Y = split_batch(batch, b)
                    if X.shape[0] == 0:
                        continue
                    _, stats = batch_loss(net, X, Y)
                    acc.add(*stats.tolist())
        finally:
            net.train(was_training)
    return {**batch_loss.summary(acc), "time_s": timer.seconds}


def _agreed_stop(reason: str | None, distributed: bool) -> str | None:
    """``reason``, or under DDP rank 0's: every process gets the same answer (``broadcast_object_list``)."""
    if not distributed:
        return reason
    import torch.distributed as dist

    box = [reason]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def fit(net: nn.Module, optimizer: torch.optim.Optimizer, train_iter: Iterable, batch_loss, num_epochs: int, *,
        start_epoch: int = 0, history: History | None = None, validate: Callable | None = None, scaler=None,
        lr_scheduler=None, checkpoints: Checkpoints | None = None, epoch_callback: Callable | None = None,
        progress: Progress | None = None, distributed: bool = False, stop: Callable | None = None) -> History:
    """Train from epoch ``start_epoch`` to ``num_epochs``: epochs, validation, records, checkpoints, display.

    Each epoch: ``train_iter.sampler.set_epoch(epoch)`` when it has one (a
    ``DistributedSampler``: a new, reproducible order per epoch),
    :func:`train_one_epoch`, ``validate(model)``, the :class:`History`
    record (:func:`~d2lssd.engine.history.epoch_record`), merged with what
    ``epoch_callback(model, record, history)`` returns, appended, then
    ``checkpoints.save`` and ``progress.epoch_end``.

    Args:
        net: the model (a DDP wrapper is fine; ``model`` below is the unwrapped one).
        optimizer, batch_loss, scaler, lr_scheduler, distributed: see :func:`train_one_epoch`.
        train_iter: re-iterable of ``(images, labels)`` batches.
        num_epochs: the run's total epochs (resumed ones included).
        start_epoch: epochs already done (resumed from a checkpoint).
        history: their records (default an empty :class:`History`); appended to in place.
        validate: ``validate(model) -> dict`` of ``METRICS`` and ``time_s``
            (e.g. :func:`evaluate`), or None (NaN validation entries).
        checkpoints: where to write after each epoch (None: nowhere, as on
            ranks other than 0).
        epoch_callback: optional; a returned dict is merged into the record.
        progress: the display (default: none).
        stop: optional ``stop(history) -> str | None``, asked after every epoch:
            a reason ends the run there (early stopping, a time budget) and
            is kept as ``history.meta["stopped"]``. Under DDP rank 0's answer
            is broadcast, so that every process stops at the same epoch.

    Returns:
        ``history``, one record per epoch.

    Raises:
        what :func:`train_one_epoch`, ``validate``, ``epoch_callback`` and
        :meth:`Checkpoints.save` raise.

    Source: torchvision ``references/detection/train.py`` (the epoch loop of
    ``main``); d2l.ai §14.7.3.3.
    """
    history = history if history is not None else History()
    progress = progress if progress is not None else Progress(None, False, num_epochs, batch_loss.device)
    model = unwrap_model(net)
    progress.start(history, start_epoch, checkpoints.path if checkpoints is not None else None)
    sampler = getattr(train_iter, "sampler", None)
    for epoch in range(start_epoch, num_epochs):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        train = train_one_epoch(net, train_iter, batch_loss, optimizer, epoch, scaler, lr_scheduler, distributed,
                                bar=progress.epoch_bar(epoch, train_iter))
        val = validate(model) if validate is not None else None
        record = epoch_record(epoch + 1, optimizer.param_groups[0]["lr"], train, val)
        if epoch_callback is not None:
            record.update(epoch_callback(model, dict(record), history) or {})
        previous = checkpoints.best_so_far(history) if checkpoints is not None else []
        history.append(record)
        reason = _agreed_stop(stop(history) if stop is not None else None, distributed)
        if reason:
            history.meta["stopped"] = reason  # before the save: the checkpoint says why the run ended
        if checkpoints is not None:
            checkpoints.save(model, optimizer, epoch + 1, history, previous, scaler, lr_scheduler)
        progress.epoch_end(record, history)
        if reason:
            break
    progress.finish(history)
    return history
