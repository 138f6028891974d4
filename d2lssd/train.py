"""Training and prediction for SSD models: the loop of d2l's TinySSD chapter, made honest.

What :func:`train_ssd` adds to d2l.ai §14.7.3.3:

* metrics that say what they average over (:mod:`d2lssd.metrics`): class
  error on positive anchors *and* on all anchors, box MAE on positive anchors,
  for the training set and (without gradients) a validation set;
* throughput as images per *whole-epoch* wall time (data loading included,
  with ``torch.cuda.synchronize()`` at both ends on CUDA), not the last batch;
* a NaN/inf loss stops training with :class:`FloatingPointError` naming the
  epoch and batch, *before* the optimizer step, and the model's buffers
  (BatchNorm running statistics, updated by that forward pass) are restored:
  the model is left exactly as it was before the bad batch;
* checkpoints (model, optimizer, epoch, history) written atomically after
  every epoch and resumable;
* a tqdm progress bar, a live plot in notebooks and text lines elsewhere;
* optional mixed precision (float16 autocast + gradient scaling) on CUDA,
  ``channels_last`` memory format (about 1.35x faster for TinySSD on a
  2-core AVX2 CPU) and a learning-rate scheduler stepped after every batch.

Sources: d2l.ai §14.7.3 "Training" (``train`` loop, SGD with lr 0.2 and
weight decay 5e-4) and §14.7.4 "Prediction" (``predict``); PyTorch AMP recipe
(``torch.autocast``, ``torch.amp.GradScaler``).
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from ._io import atomic_write
from .device import try_gpu
from .losses import ssd_loss
from .matching import _multibox_target, check_labels, multibox_target
from .metrics import Accumulator, _bbox_abs_counts, _class_error_counts
from .nms import multibox_detection, ssd_postprocess

__all__ = ["History", "train_ssd", "evaluate_ssd", "evaluate_ap", "predict", "save_checkpoint", "load_checkpoint",
           "read_checkpoint"]

CHECKPOINT_FORMAT = "d2lssd-checkpoint-v1"

_METRICS = ("loss", "class_error_pos", "class_error_all", "bbox_mae_pos")


class History:
    """Per-epoch training record: a list of dicts, one per epoch, plus metadata.

    Each record has the keys

    * ``epoch`` (1-based), ``lr`` (learning rate of the first parameter group);
    * ``train_loss``: mean per-image loss (see :func:`d2lssd.ssd_loss`);
      ``train_class_error_pos``, ``train_class_error_all``: fractions in
      [0, 1]; ``train_bbox_mae_pos``: offset units; all accumulated over the
      whole epoch (sums divided once, not an average of batch averages) while
      the weights change;
    * ``val_loss``, ``val_class_error_pos``, ``val_class_error_all``,
      ``val_bbox_mae_pos``: the same on the validation set after the epoch
      (NaN without one);
    * ``train_images``: images trained on; ``epoch_time_s``: wall time of the
      training pass in seconds; ``throughput``: ``train_images /
      epoch_time_s`` (images/s); ``val_time_s``.

    ``history["train_loss"]`` gives the list over epochs (NaN where a record
    lacks the key); ``len(history)`` the number of epochs; ``history.last``
    the latest record; ``history.meta`` a dict (device, amp, optimizer).
    :meth:`to_dict` / :meth:`from_dict` give plain Python data (what the
    checkpoints store).

    Source: ours (d2l's ``Animator`` keeps the same numbers only in a plot).
    """

    def __init__(self, records: list[dict] | None = None, meta: dict | None = None):
        self.records = [dict(r) for r in (records or [])]
        self.meta = dict(meta or {})

    def append(self, record: dict) -> None:
        self.records.append(dict(record))

    def __getitem__(self, key: str) -> list:
        return [r.get(key, math.nan) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)

    @property
    def last(self) -> dict:
        return dict(self.records[-1]) if self.records else {}

    def to_dict(self) -> dict:
        return {"records": [dict(r) for r in self.records], "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(d.get("records", []), d.get("meta", {}))

    def __eq__(self, other) -> bool:
        return isinstance(other, History) and _nan_eq(self.to_dict(), other.to_dict())

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, keys={self.keys()})"


def _nan_eq(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_nan_eq(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_nan_eq(x, y) for x, y in zip(a, b))
    return a == b


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path, net: nn.Module, optimizer: torch.optim.Optimizer | None, epoch: int,
                    history: History | None = None, **extra) -> None:
    """Write a checkpoint atomically: to a temporary file in the same folder, then ``os.replace``.

    An interrupted or failing write (full disk, Ctrl-C, an exception in
    ``torch.save``) leaves the previous checkpoint at ``path`` intact and
    removes the temporary file.

    Args:
        path: file to write (its folder is created if missing).
        net: the model; its ``state_dict()`` is saved.
        optimizer: its ``state_dict()`` is saved (or None).
        epoch: number of completed epochs.
        history: :class:`History` (stored as plain Python data).
        **extra: more picklable entries (e.g. ``scaler`` state).

    The file loads with ``torch.load(path, weights_only=True)``.

    Source: ours; the write-then-rename pattern is the POSIX way to replace a
    file atomically (``os.replace``).
    """
    path = Path(path)
    state = {
        "format": CHECKPOINT_FORMAT,
        "epoch": int(epoch),
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "history": (history or History()).to_dict(),
        **extra,
    }
    atomic_write(path, lambda f: torch.save(state, f))


def read_checkpoint(path, map_location="cpu") -> dict:
    """The dict a :func:`save_checkpoint` file holds, read safely (``torch.load(weights_only=True)``).

    Args:
        path: the checkpoint file.
        map_location: as in ``torch.load`` (default the CPU).

    Returns:
        the checkpoint dict: ``format``, ``model`` (state dict), ``optimizer``,
        ``epoch``, ``history`` and the extra entries given to :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file cannot be read (truncated, foreign) or is not a
            d2lssd checkpoint; the message is one line.

    Source: ours (PyTorch "Saving and loading a general checkpoint" recipe).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated or foreign file
        raise ValueError(f"cannot read checkpoint {path}: {str(e).splitlines()[0] if str(e) else e!r}") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a d2lssd checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def load_checkpoint(path, net: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    map_location=None) -> tuple[int, History, dict]:
    """Load a checkpoint written by :func:`save_checkpoint` into ``net`` (and ``optimizer``).

    Args:
        path: the checkpoint file.
        net: model with the same architecture; loaded in place (strict).
        optimizer: optimizer over ``net``'s parameters, loaded in place if given.
        map_location: as in ``torch.load`` (e.g. the training device).

    Returns:
        ``(epoch, history, state)``: completed epochs, the :class:`History`,
        and the whole loaded dict (for extra entries).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a d2lssd checkpoint or cannot be read.
        RuntimeError: the state dict does not fit ``net`` (from PyTorch).

    Source: ours (PyTorch "Saving and loading a general checkpoint" recipe).
    """
    state = read_checkpoint(path, map_location)
    net.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    return int(state["epoch"]), History.from_dict(state.get("history") or {}), state


# --------------------------------------------------------------------------- display


def _in_notebook() -> bool:
    """True inside a Jupyter/Colab kernel (not a terminal IPython, not plain Python)."""
    ipython = sys.modules.get("IPython")  # not imported: certainly not in IPython
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    if shell is None:
        return False
    if "IPKernelApp" in getattr(shell, "config", {}):
        return True
    return type(shell).__name__ == "ZMQInteractiveShell"


def _fmt(x: float, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.2f}%" if pct else f"{x:.4g}"


def _epoch_line(r: dict, num_epochs: int, device) -> str:
    line = (f"epoch {r['epoch']}/{num_epochs}: train loss {_fmt(r['train_loss'])}, "
            f"class err pos {_fmt(r['train_class_error_pos'], True)} "
            f"(all {_fmt(r['train_class_error_all'], True)}), "
            f"bbox MAE pos {_fmt(r['train_bbox_mae_pos'])}")
    if not math.isnan(r.get("val_loss", math.nan)):
        line += (f" | val loss {_fmt(r['val_loss'])}, class err pos {_fmt(r['val_class_error_pos'], True)} "
                 f"(all {_fmt(r['val_class_error_all'], True)}), bbox MAE pos {_fmt(r['val_bbox_mae_pos'])}")
    for key in ("val_AP50", "val_AP"):
        if key in r:
            line += f", {key[4:]} {_fmt(r[key])}"
    line += f" | {r['throughput']:.1f} img/s on {device}"
    return line


class _LivePlot:
    """Loss / class error / box MAE curves in a notebook, redrawn in place after each epoch."""

    def __init__(self):
        from IPython.display import display
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(11, 3.2), layout="constrained")
        self.axes = self.fig.subplots(1, 3)
        self.handle = display(self.fig, display_id=True)  # None outside IPython

    def update(self, history: History, num_epochs: int) -> None:
        ep = history["epoch"]
        panels = [
            ("loss (per image)", [("train_loss", "train", "-"), ("val_loss", "val", "-")]),
            ("class error", [("train_class_error_pos", "train, positives", "-"),
                             ("val_class_error_pos", "val, positives", "-"),
                             ("train_class_error_all", "train, all anchors", ":"),
                             ("val_class_error_all", "val, all anchors", ":")]),
            ("bbox MAE, positives (offset units)", [("train_bbox_mae_pos", "train", "-"),
                                                     ("val_bbox_mae_pos", "val", "-")]),
        ]
        for ax, (title, curves) in zip(self.axes, panels):
            ax.clear()
            for key, label, style in curves:
                ys = history[key]
                if not all(math.isnan(y) for y in ys):
                    ax.plot(ep, ys, style, marker=".", label=label)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.set_xlim(0.5, max(num_epochs, 1) + 0.5)
            ax.grid(True, alpha=0.3)
            if ax.lines:
                ax.legend(fontsize="small")
        if self.handle is not None:
            self.handle.update(self.fig)


# --------------------------------------------------------------------------- training


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(batch, b: int):
    try:
        X, Y = batch
    except (TypeError, ValueError):
        raise ValueError(f"batch {b} must be a pair (images, labels), got {type(batch).__name__}") from None
    if not isinstance(X, torch.Tensor) or X.dim() != 4:
        raise ValueError(f"batch {b}: images must be a tensor (B, C, H, W), got "
                         f"{tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__}")
    return X, Y


def _stats(loss_per_image, cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks) -> torch.Tensor:
    """One tensor with the 8 sums of a batch (one device-to-host copy for all)."""
    e_pos, n_pos, e_all, n_all = _class_error_counts(cls_preds, cls_labels)
    err, n_mask, _ = _bbox_abs_counts(bbox_preds, bbox_labels, bbox_masks)
    n = torch.tensor(float(loss_per_image.shape[0]), device=loss_per_image.device)
    return torch.stack([loss_per_image.detach().sum().float(), n, e_pos.float(), n_pos.float(),
                        e_all.float(), n_all.float(), err.float(), n_mask.float()])


def _summary(acc: Accumulator) -> dict:
    return {"loss": acc.ratio(0, 1), "class_error_pos": acc.ratio(2, 3),
            "class_error_all": acc.ratio(4, 5), "bbox_mae_pos": acc.ratio(6, 7), "images": int(acc[1])}


def _is_channels_last(net: nn.Module) -> bool:
    """True if the model's first 4-D weight is stored channels last (``net.to(memory_format=...)``)."""
    for p in net.parameters():
        if p.dim() == 4:
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False


def _to_input(X: torch.Tensor, device, channels_last: bool) -> torch.Tensor:
    X = X.to(device, non_blocking=True)
    return X.contiguous(memory_format=torch.channels_last) if channels_last else X


class _CheckOnce:
    """Targets and loss: checked on the first batch and whenever shapes change, unchecked otherwise.

    The public :func:`d2lssd.multibox_target` and losses validate their
    inputs, and each check that reads a value (NaN, label range, degenerate
    boxes) is a host sync on a GPU: about ten per step. The model's anchors
    and output shapes do not change from batch to batch, so after a batch
    has passed the checks, batches of the same shapes, dtypes and device run
    the unchecked twins (``_multibox_target`` and ``loss_fn.unchecked``,
    which :func:`d2lssd.ssd_loss` and :class:`d2lssd.MultiBoxLoss` have; a
    ``loss_fn`` without one is always called as it is). What still changes,
    the labels, is checked on the host before it moves to the device
    (:func:`d2lssd.matching.check_labels`, no device sync), and a NaN in the
    model's outputs shows up in the loss, which the loop checks.
    """

    def __init__(self, loss_fn: Callable):
        self.loss_fn = loss_fn
        self.fast_loss = getattr(loss_fn, "unchecked", None)
        self.seen = None

    def __call__(self, anchors, Y, cls_preds, bbox_preds, iou_threshold):
        key = tuple((tuple(t.shape), t.dtype, t.device) for t in (anchors, Y, cls_preds, bbox_preds))
        if self.fast_loss is None or key != self.seen:
            bbox_labels, bbox_masks, cls_labels = multibox_target(anchors, Y, iou_threshold)
            l = self.loss_fn(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
            self.seen = key  # only once the checks have passed
        else:
            anc = anchors if anchors.dim() == 3 else anchors[None]
            bbox_labels, bbox_masks, cls_labels = _multibox_target(anc, Y, iou_threshold)
            l = self.fast_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
        return l, bbox_labels, bbox_masks, cls_labels


def _forward_loss(net, X, Y, device, use_amp, loss_fn, iou_threshold, channels_last=False, checker=None):
    if checker is not None and isinstance(Y, torch.Tensor) and Y.device.type == "cpu":
        check_labels(Y.float())  # on the host, before the copy: no device sync
    X, Y = _to_input(X, device, channels_last), Y.to(device, non_blocking=True)
    with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
        anchors, cls_preds, bbox_preds = net(X)
    cls_preds, bbox_preds = cls_preds.float(), bbox_preds.float().reshape(X.shape[0], -1)
    if checker is None:
        bbox_labels, bbox_masks, cls_labels = multibox_target(anchors, Y.float(), iou_threshold)
        l = loss_fn(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
    else:
        l, bbox_labels, bbox_masks, cls_labels = checker(anchors, Y.float(), cls_preds, bbox_preds, iou_threshold)
    return l, _stats(l, cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)


def evaluate_ssd(net: nn.Module, data_iter: Iterable, device=None, amp: bool = False,
                 loss_fn: Callable = ssd_loss, iou_threshold: float = 0.5) -> dict:
    """Loss and honest metrics of ``net`` on a data set, in eval mode and without gradients.

    Args:
        net: model returning ``(anchors, cls_preds, bbox_preds)`` like :class:`~d2lssd.models.TinySSD`.
        data_iter: iterable of ``(images (B, 3, H, W), labels (B, G, 5))``
            (labels normalized, padding class -1). Empty batches are skipped.
        device: default: the device of ``net``'s parameters.
        amp: float16 autocast (CUDA only; ignored elsewhere).
        loss_fn, iou_threshold: as in :func:`train_ssd`.

    Images are passed channels last when ``net``'s weights are (see
    ``channels_last`` in :func:`train_ssd`).

    Returns:
        dict with ``loss`` (mean per-image loss), ``class_error_pos``,
        ``class_error_all`` (fractions), ``bbox_mae_pos`` (offset units),
        ``images`` (count) and ``time_s``; NaN for a metric whose
        denominator is 0 (e.g. no images).

    Source: ours; d2l.ai §14.7.3 for the quantities.
    """
    device = torch.device(device) if device is not None else _net_device(net)
    use_amp = bool(amp) and device.type == "cuda"
    was_training = net.training
    channels_last = _is_channels_last(net)
    net.eval()
    acc = Accumulator(8)
    checker = _CheckOnce(loss_fn)
    _sync(device)
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            for b, batch in enumerate(data_iter):
                X, Y = _batch(batch, b)
                if X.shape[0] == 0:
                    continue
                _, stats = _forward_loss(net, X, Y, device, use_amp, loss_fn, iou_threshold, channels_last,
                                         checker)
                acc.add(*stats.tolist())
    finally:
        net.train(was_training)
    _sync(device)
    return {**_summary(acc), "time_s": time.perf_counter() - t0}


def _net_device(net: nn.Module) -> torch.device:
    p = next(iter(net.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _unwrap(net: nn.Module) -> nn.Module:
    """The model inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper (else ``net``)."""
    if isinstance(net, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        return net.module
    return net


def _len(it) -> int | None:
    try:
        return len(it)
    except TypeError:
        return None


def train_ssd(net: nn.Module, train_iter: Iterable, val_iter: Iterable | None = None, num_epochs: int = 20,
              optimizer: torch.optim.Optimizer | None = None, lr: float = 0.2, weight_decay: float = 5e-4,
              device=None, amp: bool = False, checkpoint_path=None, resume: bool = False,
              progress: bool = True, plot="auto", loss_fn: Callable = ssd_loss,
              iou_threshold: float = 0.5, lr_scheduler=None, channels_last: bool = False,
              epoch_callback: Callable | None = None, best_checkpoint_path=None, best_metric: str = "val_AP50",
              checkpoint_extra: dict | None = None, distributed: bool | None = None) -> History:
    """Train an SSD model: d2l's TinySSD loop with honest metrics, checkpoints and a live plot.

    Each step: forward, :func:`d2lssd.multibox_target` on the model's anchors,
    ``loss_fn`` per image, mean over the batch, backward, optimizer step.
    The first batch (and any batch whose shapes differ from the last checked
    one) runs the checked public functions; the others run their unchecked
    twins, with the labels still checked on the host (see ``_CheckOnce``).

    Args:
        net: model mapping images ``(B, 3, H, W)`` to ``(anchors (1, A, 4),
            cls_preds (B, A, q + 1), bbox_preds (B, A * 4))``, e.g.
            :class:`~d2lssd.models.TinySSD`. Moved to ``device``.
        train_iter: re-iterable (e.g. a ``DataLoader``) of ``(images, labels)``:
            images float ``(B, 3, H, W)``, labels float ``(B, G, 5)`` rows
            ``(class, xmin, ymin, xmax, ymax)`` normalized, padding class -1.
            An image without objects (only padding) is fine: all its anchors
            are background.
        val_iter: like ``train_iter``; evaluated after every epoch with
            :func:`evaluate_ssd` (eval mode, no gradients). Optional.
        num_epochs: total number of epochs (when resuming, including those
            already done); default 20 as d2l.
        optimizer: default ``SGD(net.parameters(), lr, weight_decay=weight_decay)``
            (d2l: lr 0.2, weight decay 5e-4); ``lr``/``weight_decay`` are
            ignored when an optimizer is given.
        device: default :func:`d2lssd.try_gpu`.
        amp: mixed precision (float16 autocast + ``GradScaler``); CUDA only:
            on another device a ``RuntimeWarning`` is issued and float32 is
            used (``history.meta["amp"]`` records what ran).
        checkpoint_path: if given, a checkpoint (model, optimizer, epoch,
            history) is written atomically there after every epoch (see
            :func:`save_checkpoint`); an existing file is overwritten unless
            ``resume``.
        resume: continue from ``checkpoint_path`` if that file exists (model,
            optimizer and history are restored, training goes on from the
            saved epoch up to ``num_epochs``; the data order is not restored);
            if it does not exist, train from scratch.
        progress: show a tqdm progress bar (``tqdm.auto``) per epoch.
        plot: ``"auto"`` (live plot in a notebook kernel, else text),
            ``"notebook"`` (matplotlib figure updated in place after each
            epoch), ``"text"`` (one printed line per epoch), or ``None`` /
            ``False`` (nothing).
        loss_fn: ``loss_fn(cls_preds, cls_labels, bbox_preds, bbox_labels,
            bbox_masks)`` -> per-image losses ``(B,)``; default :func:`d2lssd.ssd_loss`.
        iou_threshold: matching threshold of :func:`d2lssd.multibox_target`.
        lr_scheduler: optional ``torch.optim.lr_scheduler`` over ``optimizer``,
            stepped after **every optimizer step** (so warm-up and decay are
            counted in steps); saved in and restored from the checkpoint.
        channels_last: store the model's weights and pass the images in the
            ``channels_last`` memory format (faster convolutions on CPUs with
            oneDNN and on CUDA with mixed precision; same results up to
            float rounding). The model is left in that format. A model wrapped
            in ``DistributedDataParallel`` must be converted before wrapping.
        epoch_callback: optional ``epoch_callback(model, record, history)``
            called after each epoch's validation (on rank 0 only when
            distributed), with the unwrapped model, the epoch's record (a dict,
            see :class:`History`) and the history so far (without this
            epoch); a returned dict is merged into the record before it is
            stored, checkpointed and printed (e.g. ``{"val_AP50": 0.8}``).
        best_checkpoint_path: if given, a checkpoint is also written
            (atomically) there whenever the record's ``best_metric`` is finite
            and higher than in every earlier epoch of the history (resumed
            epochs included): the best model so far.
        best_metric: the record key maximised for ``best_checkpoint_path``
            (default ``"val_AP50"``, as set by an ``epoch_callback``).
        checkpoint_extra: more picklable entries stored in every checkpoint
            (e.g. the model's configuration), see :func:`save_checkpoint`.
        distributed: ``None`` (default): distributed when a
            ``torch.distributed`` process group is initialized (e.g. under
            ``torchrun``). Then ``net`` may be a
            ``DistributedDataParallel`` model; each step's loss and metric
            sums are added over all processes (``all_reduce``), so records,
            throughput (images/s of all processes together) and the NaN check
            are global; validation, ``epoch_callback``, checkpoints,
            printing, plots and the progress bar run on rank 0 only (other
            ranks return a history without validation entries). Every rank
            loads ``checkpoint_path`` when resuming. In every mode, when
            ``train_iter.sampler`` has ``set_epoch`` (a
            ``DistributedSampler``), it is called with the 0-based epoch
            before each epoch, so each epoch gets a new, reproducible order.

    Returns:
        :class:`History` with one record per epoch (see there for keys and
        units), including the resumed epochs.

    Raises:
        FloatingPointError: the loss of a batch is NaN or infinite; the
            message names the epoch (1-based) and batch (0-based). Raised
            before the optimizer step, with the model's buffers restored, so
            the model equals its state before that batch.
        ValueError: a batch that is not ``(images, labels)``, bad labels (from
            :func:`d2lssd.multibox_target`), an epoch without any image,
            ``resume`` without ``checkpoint_path``, an unknown ``plot``,
            ``distributed=True`` without an initialized process group.

    Warns:
        RuntimeWarning: an empty batch (``B = 0``) is skipped with a warning;
            ``amp=True`` off CUDA.

    Source: d2l.ai §14.7.3.3 (loop, optimizer and defaults); timing,
    metrics, checks and checkpoints are ours.
    """
    if plot is False or plot is None:
        mode = None
    elif plot == "auto":
        mode = "notebook" if _in_notebook() else "text"
    elif plot in ("notebook", "text"):
        mode = plot
    else:
        raise ValueError(f"plot must be 'auto', 'notebook', 'text', None or False, got {plot!r}")
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a checkpoint_path")
    if int(num_epochs) != num_epochs or num_epochs < 0:
        raise ValueError(f"num_epochs must be a non-negative integer, got {num_epochs}")
    num_epochs = int(num_epochs)
    device = torch.device(device) if device is not None else try_gpu()
    import torch.distributed as dist

    if distributed is None:
        distributed = dist.is_available() and dist.is_initialized()
    elif distributed and not (dist.is_available() and dist.is_initialized()):
        raise ValueError("distributed=True needs an initialized torch.distributed process group")
    is_main = (not distributed) or dist.get_rank() == 0
    model = _unwrap(net)
    if not is_main:
        mode, progress, val_iter, epoch_callback = None, False, None, None
    use_amp = bool(amp)
    if use_amp and device.type != "cuda":
        warnings.warn(f"amp=True needs CUDA; training in float32 on {device}", RuntimeWarning, stacklevel=2)
        use_amp = False

    net.to(device)
    if channels_last and not _is_channels_last(model):
        model.to(memory_format=torch.channels_last)
    channels_last = _is_channels_last(model)
    if optimizer is None:
        optimizer = torch.optim.SGD(net.parameters(), lr=lr, weight_decay=weight_decay)
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    history = History(meta={"device": str(device), "amp": use_amp, "optimizer": type(optimizer).__name__,
                            "loss_fn": getattr(loss_fn, "__name__", repr(loss_fn)),
                            "channels_last": channels_last})
    if distributed:
        history.meta["world_size"] = dist.get_world_size()
    start_epoch = 0
    if resume and Path(checkpoint_path).is_file():
        start_epoch, history, state = load_checkpoint(checkpoint_path, model, optimizer, map_location=device)
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if lr_scheduler is not None and state.get("lr_scheduler"):
            lr_scheduler.load_state_dict(state["lr_scheduler"])
        history.meta.update(device=str(device), amp=use_amp)

    from tqdm.auto import tqdm

    plotter = _LivePlot() if mode == "notebook" and start_epoch < num_epochs else None
    if plotter is not None and len(history):
        plotter.update(history, num_epochs)
    buffers = [b for b in model.buffers()]
    sampler = getattr(train_iter, "sampler", None)
    if start_epoch >= num_epochs and mode is not None:
        # the checkpoint's file name only: the caller knows the folder, and a printed page should not show it
        where = f"checkpoint {Path(checkpoint_path).name} already holds" if start_epoch else "num_epochs is"
        print(f"{where} {start_epoch} epochs (num_epochs={num_epochs}): nothing to train", flush=True)

    checker = _CheckOnce(loss_fn)  # checks the first batch and each change of shapes, see _CheckOnce
    for epoch in range(start_epoch, num_epochs):
        net.train()
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        acc = Accumulator(8)
        # The bar is updated by hand, not by wrapping train_iter: a wrapped bar closes itself when the
        # iterator ends and, on a fast epoch (under tqdm's mininterval), never draws its final count.
        bar = tqdm(total=_len(train_iter), desc=f"epoch {epoch + 1}/{num_epochs}",
                   unit="batch", leave=False, disable=not progress)
        _sync(device)
        t0 = time.perf_counter()
        for b, batch in enumerate(train_iter):
            X, Y = _batch(batch, b)
            if X.shape[0] == 0:
                warnings.warn(f"epoch {epoch + 1}, batch {b} is empty (B = 0): skipped", RuntimeWarning,
                              stacklevel=2)
                bar.update(1)
                continue
            saved = [t.detach().clone() for t in buffers]  # BatchNorm statistics, restored on a bad loss
            l, stats = _forward_loss(net, X, Y, device, use_amp, loss_fn, iou_threshold, channels_last, checker)
            if distributed:
                dist.all_reduce(stats)  # sums over all processes: global metrics and NaN check
            # The sync that reads the metrics and checks the loss; the matching's rounds,
            # its positives and the hard-negative top-k size add a few small ones.
            values = stats.tolist()
            if not math.isfinite(values[0]):
                with torch.no_grad():
                    for t, s in zip(buffers, saved):
                        t.copy_(s)
                bar.close()
                raise FloatingPointError(
                    f"the loss is {values[0] / max(values[1], 1):g} at epoch {epoch + 1}, batch {b} "
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
            acc.add(*values)
            if progress:
                bar.set_postfix(loss=f"{acc.ratio(0, 1):.4g}",
                                cls_err_pos=_fmt(acc.ratio(2, 3), True), refresh=False)
                bar.update(1)
        _sync(device)
        train_time = time.perf_counter() - t0
        bar.refresh()  # the epoch's last count and mean loss are drawn however fast the epoch was
        bar.close()
        train = _summary(acc)
        if train["images"] == 0:
            raise ValueError(f"train_iter gave no images in epoch {epoch + 1}")
        val = (evaluate_ssd(model, val_iter, device, use_amp, loss_fn, iou_threshold) if val_iter is not None
               else dict.fromkeys(_METRICS + ("time_s",), math.nan))
        record = {"epoch": epoch + 1, "lr": float(optimizer.param_groups[0]["lr"])}
        record.update({f"train_{k}": train[k] for k in _METRICS})
        record.update({f"val_{k}": val[k] for k in _METRICS})
        record.update(train_images=train["images"], epoch_time_s=train_time,
                      throughput=train["images"] / train_time, val_time_s=val["time_s"])
        if epoch_callback is not None:
            record.update(epoch_callback(model, dict(record), history) or {})
        previous = [v for v in history[best_metric] if isinstance(v, (int, float)) and math.isfinite(v)]
        history.append(record)
        if is_main and (checkpoint_path is not None or best_checkpoint_path is not None):
            extra = dict(checkpoint_extra or {})
            if scaler is not None:
                extra["scaler"] = scaler.state_dict()
            if lr_scheduler is not None:
                extra["lr_scheduler"] = lr_scheduler.state_dict()
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, model, optimizer, epoch + 1, history, **extra)
            value = record.get(best_metric, math.nan)
            if (best_checkpoint_path is not None and isinstance(value, (int, float)) and math.isfinite(value)
                    and (not previous or value > max(previous))):
                save_checkpoint(best_checkpoint_path, model, optimizer, epoch + 1, history, **extra)
        if mode == "text":
            print(_epoch_line(record, num_epochs, device), flush=True)
        elif plotter is not None:
            plotter.update(history, num_epochs)
    if mode == "notebook" and len(history):
        print(_epoch_line(history.last, num_epochs, device), flush=True)
    return history


# --------------------------------------------------------------------------- prediction


@torch.no_grad()
def predict(net: nn.Module, images: torch.Tensor, device=None, nms_threshold: float = 0.5,
            score_threshold: float = 0.5, top_k: int | None = None, class_agnostic: bool = False,
            semantics: str = "d2l"):
    """Detections for a batch of images: forward in eval mode, softmax, decode, NMS.

    Args:
        net: model returning ``(anchors, cls_preds, bbox_preds)``; its
            train/eval mode is restored afterwards.
        images: float ``(B, 3, H, W)`` or a single image ``(3, H, W)``,
            preprocessed as for training.
        device: where to run; default the device of ``net``'s parameters
            (``net`` is moved there if another device is given).
        nms_threshold: IoU above which a lower-scoring box of the same class
            is suppressed (see :func:`d2lssd.multibox_detection`).
        score_threshold: minimum class probability of a detection.
        top_k: at most this many candidate rows per image (default all).
        class_agnostic: NMS across classes, as d2l (default per class).
        semantics: ``"d2l"`` (default): :func:`d2lssd.multibox_detection`,
            one class per anchor (its most likely); ``"paper"``: the SSD
            paper's and torchvision's inference, :func:`d2lssd.ssd_postprocess`
            (every class above ``score_threshold`` per anchor, boxes clipped
            to the image, 400 candidates per class, at most ``top_k``
            detections per image, 200 when ``top_k`` is None;
            ``class_agnostic`` must be False). With one class the two keep
            nearly the same boxes.

    Returns:
        for a batch, a list of ``B`` float CPU tensors ``(K_i, 6)``, rows
        ``(class, score, xmin, ymin, xmax, ymax)``: class ``0 .. q - 1``
        (background excluded), score = softmax probability, box in normalized
        corner format (not clipped to the image), sorted by descending score;
        for a single image, one such tensor. ``K_i`` may be 0.

    Raises:
        ValueError: ``images`` not a float ``(B, 3, H, W)`` / ``(3, H, W)``
            tensor, thresholds outside [0, 1], an unknown ``semantics``.

    Source: d2l.ai §14.7.4 ``predict`` (which keeps rows with class != -1 of
    the first image); thresholding by score and batching are ours.
    """
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4) or not images.is_floating_point():
        raise ValueError("images must be a float tensor (B, 3, H, W) or (3, H, W), got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    if semantics not in ("d2l", "paper") or (semantics == "paper" and class_agnostic):
        raise ValueError(f"semantics must be 'd2l' or 'paper' (the latter with class_agnostic=False), "
                         f"got {semantics!r} with class_agnostic={class_agnostic}")
    single = images.dim() == 3
    X = images[None] if single else images
    if X.shape[0] == 0:
        return []
    if device is None:
        device = _net_device(net)
    else:
        device = torch.device(device)
        net.to(device)
    was_training = net.training
    net.eval()
    try:
        anchors, cls_preds, bbox_preds = net(_to_input(X, device, _is_channels_last(net)))
    finally:
        net.train(was_training)
    cls_probs = F.softmax(cls_preds.float(), dim=2).permute(0, 2, 1)
    if semantics == "paper":
        out = ssd_postprocess(cls_probs, bbox_preds.float().reshape(X.shape[0], -1), anchors,
                              nms_threshold=nms_threshold, score_threshold=score_threshold,
                              detections_per_img=200 if top_k is None else top_k)
    else:
        out = multibox_detection(cls_probs, bbox_preds.float().reshape(X.shape[0], -1), anchors,
                                 nms_threshold=nms_threshold, pos_threshold=score_threshold, top_k=top_k,
                                 class_agnostic=class_agnostic)
    dets = [o[o[:, 0] >= 0].cpu() for o in out]
    return dets[0] if single else dets


def evaluate_ap(net: nn.Module, data_iter: Iterable, device=None, score_threshold: float = 0.01,
                top_k: int = 200, semantics: str = "d2l") -> dict:
    """AP50 and COCO AP@[.5:.95] of ``net`` on a data set (101-point interpolation, as COCO).

    Runs :func:`predict` on every batch (eval mode, ``score_threshold`` 0.01
    and ``top_k`` 200 by default, as COCO evaluations do: AP needs the
    low-scoring detections too) and :func:`d2lssd.mean_average_precision` on
    all of them.

    Args:
        net: model returning ``(anchors, cls_preds, bbox_preds)``.
        data_iter: iterable of ``(images (B, 3, H, W), labels (B, G, 5))``,
            labels normalized with padding class -1.
        device: as in :func:`predict`.
        score_threshold, top_k, semantics: passed to :func:`predict`
            (``semantics="paper"``: the SSD paper's inference; the default,
            d2l's, keeps the chapters' recorded numbers).

    Returns:
        the dict of :func:`d2lssd.mean_average_precision` (``AP50``, ``AP75``,
        ``AP``, precision-recall arrays, counts), plus ``detections`` and
        ``targets`` (lists of per-image tensors) for further plots.

    Source: ours (COCO's protocol through pycocotools).
    """
    from .metrics import mean_average_precision

    dets, targets = [], []
    for X, Y in data_iter:
        dets += predict(net, X, device=device, score_threshold=score_threshold, top_k=top_k,
                        semantics=semantics)
        targets += list(Y)
    result = mean_average_precision(dets, targets)
    result.update(detections=dets, targets=targets)
    return result


#: TinySSD training schedules on the banana data. ``"full"`` is d2l.ai §14.7.3's
#: (about 2-3 s per step of 32 on a 2-core CPU is far too slow for it, a GPU takes
#: minutes); ``"cpu"`` is the short schedule of the TinySSD chapter and CI: 40
#: steps, about 3 minutes on 2 idle cores.
TINYSSD_SCHEDULES = {
    "full": dict(num_epochs=20, num_train=1000, batch_size=32, lr=0.2, weight_decay=5e-4),
    "cpu": dict(num_epochs=4, num_train=320, batch_size=32, lr=0.2, weight_decay=5e-4),
}


def pick_schedule(device) -> str:
    """Name of the TinySSD schedule to run on ``device``: ``"full"`` on CUDA, else ``"cpu"``.

    The environment variable ``D2LSSD_SCHEDULE`` (a key of
    :data:`TINYSSD_SCHEDULES`) overrides the choice.

    Raises:
        ValueError: ``D2LSSD_SCHEDULE`` names no schedule.
    """
    forced = os.environ.get("D2LSSD_SCHEDULE")
    if forced:
        if forced not in TINYSSD_SCHEDULES:
            raise ValueError(f"D2LSSD_SCHEDULE must be one of {sorted(TINYSSD_SCHEDULES)}, got {forced!r}")
        return forced
    return "full" if torch.device(device).type == "cuda" else "cpu"
