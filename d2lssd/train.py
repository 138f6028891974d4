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

:func:`train_ssd` is the chapters' entry point: it checks its arguments and
sets the run up (device, optimizer, scaler, resume), then calls
:func:`d2lssd.engine.fit`; the pieces of the loop (the step, one epoch, the
evaluation pass, checkpoints, the display) live in :mod:`d2lssd.engine`,
and the names that used to be defined here (:class:`History`, the
checkpoint functions) are re-exported.

Sources: d2l.ai §14.7.3 "Training" (``train`` loop, SGD with lr 0.2 and
weight decay 5e-4) and §14.7.4 "Prediction" (``predict``); PyTorch AMP recipe
(``torch.autocast``, ``torch.amp.GradScaler``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn

from .device import try_gpu
from .engine.batch_loss import SSDBatchLoss, is_channels_last, net_device
from .engine.checkpoint import Checkpoints, resume_training
from .engine.distributed import process_group_role, unwrap_model
from .engine.history import History
from .engine.loop import evaluate, fit
from .engine.progress import Progress, plot_mode
from .losses import ssd_loss
from .metrics import mean_average_precision
from .detector import PostProcess, detector_spec, run_postprocessed

__all__ = ["train_ssd", "evaluate_ssd", "evaluate_ap", "predict"]


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
        dict with ``loss`` (mean per-image loss), ``class_error_positive``,
        ``class_error_all`` (fractions), ``bbox_mae_positive`` (offset units),
        ``images`` (count) and ``time_s``; NaN for a metric whose
        denominator is 0 (e.g. no images).

    Source: ours; d2l.ai §14.7.3 for the quantities.
    """
    device = torch.device(device) if device is not None else net_device(net)
    use_amp = bool(amp) and device.type == "cuda"
    return evaluate(net, data_iter, SSDBatchLoss(loss_fn, iou_threshold, device, use_amp, is_channels_last(net)))


def train_ssd(net: nn.Module, train_iter: Iterable, val_iter: Iterable | None = None, num_epochs: int = 20,
              optimizer: torch.optim.Optimizer | None = None, lr: float = 0.2, weight_decay: float = 5e-4,
              device=None, amp: bool = False, checkpoint_path=None, resume: bool = False,
              progress: bool = True, plot="auto", loss_fn: Callable = ssd_loss,
              iou_threshold: float = 0.5, lr_scheduler=None, channels_last: bool = False,
              epoch_callback: Callable | None = None, best_checkpoint_path=None, best_metric: str = "val_AP50",
              checkpoint_extra: dict | None = None, distributed: bool | None = None,
              stop: Callable | None = None) -> History:
    """Train an SSD model: d2l's TinySSD loop with honest metrics, checkpoints and a live plot.

    Each step: forward, :func:`d2lssd.multibox_target` on the model's anchors,
    ``loss_fn`` per image, mean over the batch, backward, optimizer step.
    The first batch (and any batch whose shapes differ from the last checked
    one) runs the checked public functions; the others run their unchecked
    twins, with the labels still checked on the host (see :class:`d2lssd.engine.batch_loss.SSDBatchLoss`).

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
            Its ``"detector"`` is the :attr:`d2lssd.Detector.spec` stored
            with the weights (class names, input size and convention,
            post-processing); default: the model registry's defaults for a
            registered model (:func:`d2lssd.detector_spec`), so the file
            loads with :func:`d2lssd.load_detector`; ``None`` for other networks.
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
        stop: optional ``stop(history) -> str | None`` asked after every
            epoch (on every rank; rank 0's answer counts): a reason ends the
            run there, kept as ``history.meta["stopped"]`` (early stopping,
            a time budget: :func:`d2lssd.trainer.train_detector`).

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
    mode = plot_mode(plot)
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a checkpoint_path")
    if int(num_epochs) != num_epochs or num_epochs < 0:
        raise ValueError(f"num_epochs must be a non-negative integer, got {num_epochs}")
    num_epochs = int(num_epochs)
    device = torch.device(device) if device is not None else try_gpu()
    distributed, is_main = process_group_role(distributed)
    model = unwrap_model(net)
    if not is_main:
        mode, progress, val_iter, epoch_callback = None, False, None, None
    use_amp = bool(amp)
    if use_amp and device.type != "cuda":
        warnings.warn(f"amp=True needs CUDA; training in float32 on {device}", RuntimeWarning, stacklevel=2)
        use_amp = False

    net.to(device)
    if channels_last and not is_channels_last(model):
        model.to(memory_format=torch.channels_last)
    channels_last = is_channels_last(model)
    if optimizer is None:
        optimizer = torch.optim.SGD(net.parameters(), lr=lr, weight_decay=weight_decay)
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    history = History(meta={"device": str(device), "amp": use_amp, "optimizer": type(optimizer).__name__,
                            "loss_fn": getattr(loss_fn, "__name__", repr(loss_fn)),
                            "channels_last": channels_last})
    if distributed:
        history.meta["world_size"] = torch.distributed.get_world_size()
    start_epoch = 0
    if resume and Path(checkpoint_path).is_file():
        start_epoch, history = resume_training(checkpoint_path, model, optimizer, scaler, lr_scheduler,
                                               map_location=device)
        history.meta.update(device=str(device), amp=use_amp)

    def validate(m: nn.Module) -> dict:
        return evaluate_ssd(m, val_iter, device, use_amp, loss_fn, iou_threshold)

    batch_loss = SSDBatchLoss(loss_fn, iou_threshold, device, use_amp, channels_last)
    extra = dict(checkpoint_extra or {})
    if "detector" not in extra and (checkpoint_path is not None or best_checkpoint_path is not None):
        extra["detector"] = _default_spec(model)
    checkpoints = Checkpoints(checkpoint_path, best_checkpoint_path, best_metric, extra)
    return fit(net, optimizer, train_iter, batch_loss, num_epochs, start_epoch=start_epoch, history=history,
               validate=validate if val_iter is not None else None, scaler=scaler, lr_scheduler=lr_scheduler,
               checkpoints=checkpoints if is_main else None,  # rank 0 alone writes
               epoch_callback=epoch_callback, progress=Progress(mode, progress, num_epochs, device),
               distributed=distributed, stop=stop)


def _default_spec(net: nn.Module) -> dict | None:
    """The detector spec a ``train_ssd`` checkpoint gets when the caller gives none: the registry's defaults.

    A registered model (TinySSD, the ResNet-34 SSD, ...) gets its registry
    input size and input convention (the chapters feed it so), classes
    ``class0 ...`` and the paper's post-processing; any other network ``None``.
    """
    from .models.registry import MODELS

    if not any(isinstance(net, e.model_class) for e in MODELS.values()):
        return None
    return detector_spec(net)


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

    The post-processing is :class:`d2lssd.PostProcess`, the one every
    detector, command and export uses; :meth:`d2lssd.Detector.detect` adds
    the preprocessing and boxes in pixels.

    Source: d2l.ai §14.7.4 ``predict`` (which keeps rows with class != -1 of
    the first image); thresholding by score and batching are ours.
    """
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4) or not images.is_floating_point():
        raise ValueError("images must be a float tensor (B, 3, H, W) or (3, H, W), got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    post = PostProcess(semantics=semantics, score_threshold=score_threshold, nms_threshold=nms_threshold,
                       top_k=top_k, class_agnostic=class_agnostic)
    single = images.dim() == 3
    dets = run_postprocessed(net, images[None] if single else images, post, device)
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
    dets, targets = [], []
    for X, Y in data_iter:
        dets += predict(net, X, device=device, score_threshold=score_threshold, top_k=top_k,
                        semantics=semantics)
        targets += list(Y)
    result = mean_average_precision(dets, targets)
    result.update(detections=dets, targets=targets)
    return result
