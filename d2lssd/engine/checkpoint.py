"""Checkpoints: written atomically, read safely, resumed with the optimizer, scaler and scheduler.

A checkpoint is a dict saved with ``torch.save`` that loads with
``torch.load(weights_only=True)``: ``format`` (:data:`CHECKPOINT_FORMAT`),
``epoch`` (completed epochs), ``model`` and ``optimizer`` (state dicts),
``history`` (:meth:`History.to_dict`), ``detector`` (the
:attr:`d2lssd.Detector.spec` of the model: everything but the weights that
is needed to use it, or ``None`` for a network that is not a detector) and
any extra entries (``scaler``, ``lr_scheduler``, a trainer's configuration).
This is the one checkpoint format: every trainer writes it and
:func:`d2lssd.load_detector` reads it.

Files of the earlier format (``d2lssd-checkpoint-v1``) are converted when read,
here and nowhere else (:func:`upgrade_v1`): the detector spec is taken from
the entries its two writers stored (``d2lssd train``'s ``"detector"`` dict,
the Penn-Fudan trainer's ``"pennfudan_config"``); a v1 file of
``train_ssd`` holds weights only and reads with ``detector = None``.

Source: PyTorch's "Saving and loading a general checkpoint" recipe;
torchvision ``references/detection/train.py`` (``model_without_ddp``,
``lr_scheduler`` and ``scaler`` in the checkpoint, ``save_on_master``); the
write-then-rename pattern (``os.replace``) for atomic writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .._io import atomic_write
from .history import History

__all__ = ["CHECKPOINT_FORMAT", "best_path", "save_checkpoint", "read_checkpoint", "load_checkpoint",
           "resume_training", "Checkpoints", "upgrade_v1"]

#: The format written; :data:`OLD_FORMATS` are read and converted (:func:`upgrade_v1`).
CHECKPOINT_FORMAT = "d2lssd-checkpoint-v2"
OLD_FORMATS = ("d2lssd-checkpoint-v1",)


def save_checkpoint(path, net: nn.Module, optimizer: torch.optim.Optimizer | None, epoch: int,
                    history: History | None = None, detector: dict | None = None, **extra) -> None:
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
        detector: the :attr:`d2lssd.Detector.spec` of ``net`` (``None``: a
            network that is not a detector; :func:`d2lssd.load_detector`
            refuses such a file).
        **extra: more picklable entries (e.g. ``scaler`` state).

    The file loads with ``torch.load(path, weights_only=True)``.

    Raises:
        OSError: the folder cannot be created or the file written (the old
            file stays); whatever ``torch.save`` raises.

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
        "detector": detector,
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
        ``epoch``, ``history``, ``detector`` and the extra entries given to
        :func:`save_checkpoint`; a file of an earlier format comes converted
        (:func:`upgrade_v1`).

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
    if isinstance(state, dict) and state.get("format") in OLD_FORMATS:
        return upgrade_v1(state)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a d2lssd checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def upgrade_v1(state: dict) -> dict:
    """A ``d2lssd-checkpoint-v1`` dict in the current format: the one place that converts old checkpoints.

    v1 had no common detector entry; each writer stored its own:

    * ``d2lssd train``: ``"detector"`` = ``{"model", "classes",
      "category_ids", "size", "sizes", "ratios", "score_threshold",
      "nms_threshold"}``. That command fed images in [0, 1] to every model,
      so the spec gets ``pixel_scale`` 255 (TinySSD's registry convention is
      now d2l's [0, 255]: the spec keeps what the weights were trained on).
    * the Penn-Fudan trainer: ``"pennfudan_config"`` (``size``,
      ``num_classes``, ``score_threshold``, ``nms_threshold``, ``top_k``):
      a ``resnet34`` detector of class ``pedestrian``, [0, 1] input.
    * ``train_ssd`` (and ``train_recipe``): weights only, so ``"detector"``
      is ``None``; :func:`d2lssd.load_detector` then says how to attach one.

    Returns:
        a new dict with ``format`` :data:`CHECKPOINT_FORMAT` and ``detector``.

    Raises:
        ValueError: a v1 ``"detector"`` entry without its keys.

    Source: ours.
    """
    from ..models.registry import INPUT_CONVENTION

    out = dict(state, format=CHECKPOINT_FORMAT)
    old = state.get("detector")
    pf = state.get("pennfudan_config")

    def spec(model, classes, ids, size, sizes, ratios, score, nms, top_k):  # the v1 writers fed [0, 1]
        return {"model": model, "num_classes": len(classes), "model_kwargs": {"sizes": sizes, "ratios": ratios},
                "class_names": classes, "category_ids": ids, "input_size": [size, size],
                "input": {"pixel_scale": 255.0, **INPUT_CONVENTION},
                "postprocess": {"semantics": "paper", "score_threshold": float(score), "nms_threshold": float(nms),
                                "top_k": int(top_k), "candidates_per_class": 400, "class_agnostic": False}}

    if isinstance(old, dict):
        try:
            ids = old.get("category_ids")
            out["detector"] = spec(old["model"], list(old["classes"]), None if ids is None or all(
                i is None for i in ids) else list(ids), int(old["size"]), old.get("sizes"), old.get("ratios"),
                old.get("score_threshold", 0.5), old.get("nms_threshold", 0.45), 200)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"a v1 checkpoint of d2lssd train with an incomplete detector entry ({e!r})") from e
    elif isinstance(pf, dict):
        q = int(pf.get("num_classes", 1))
        out["detector"] = spec("resnet34", ["pedestrian"] if q == 1 else [f"class{i}" for i in range(q)], None,
                               int(pf.get("size", 300)), None, None, pf.get("score_threshold", 0.5),
                               pf.get("nms_threshold", 0.45), pf.get("top_k", 20))
    else:
        out["detector"] = None
    return out


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


def resume_training(path, net: nn.Module, optimizer: torch.optim.Optimizer, scaler=None, lr_scheduler=None,
                    map_location=None) -> tuple[int, History]:
    """Restore a run from its checkpoint: the model, the optimizer and, when given and saved, scaler and scheduler.

    Args:
        path: a checkpoint written by :class:`Checkpoints` (or :func:`save_checkpoint`).
        net: the (unwrapped) model, loaded in place.
        optimizer: loaded in place.
        scaler: a ``torch.amp.GradScaler``, loaded from the ``scaler`` entry if both exist.
        lr_scheduler: a ``torch.optim.lr_scheduler`` scheduler, loaded from the
            ``lr_scheduler`` entry if both exist (so it continues at its step).
        map_location: as in ``torch.load`` (the training device).

    Returns:
        ``(epoch, history)``: the completed epochs and their :class:`History`.

    Raises:
        what :func:`load_checkpoint` raises.

    Source: torchvision ``references/detection/train.py`` (``--resume``).
    """
    epoch, history, state = load_checkpoint(path, net, optimizer, map_location=map_location)
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    if lr_scheduler is not None and state.get("lr_scheduler"):
        lr_scheduler.load_state_dict(state["lr_scheduler"])
    return epoch, history


@dataclass
class Checkpoints:
    """Where a run writes its checkpoints after each epoch: the last one, and the best one so far.

    Attributes:
        path: the last epoch's checkpoint, overwritten after every epoch (None: not written).
        best_path: written whenever the epoch's ``best_metric`` is finite and
            higher than in every earlier record of the history (None: not written).
        best_metric: the record key maximised for ``best_path`` (e.g. ``"val_AP50"``).
        extra: more picklable entries stored in every checkpoint (e.g. the
            model's configuration); the scaler's and scheduler's states are added.

    Both files are written atomically (:func:`save_checkpoint`) and are
    resumed with :func:`resume_training`.

    Source: torchvision ``references/detection/train.py`` (``checkpoint.pth``
    and ``model_{epoch}.pth``); the best-by-metric copy is ours.
    """

    path: object = None
    best_path: object = None
    best_metric: str = "val_AP50"
    extra: dict | None = None

    def best_so_far(self, history: History) -> list[float]:
        """The finite values of ``best_metric`` in ``history`` (to compare the next epoch with)."""
        return [v for v in history[self.best_metric] if isinstance(v, (int, float)) and math.isfinite(v)]

    def save(self, net: nn.Module, optimizer, epoch: int, history: History, previous: list[float], scaler=None,
             lr_scheduler=None) -> None:
        """Write the checkpoints of epoch ``epoch``, whose record is ``history.last``.

        Args:
            net: the unwrapped model.
            optimizer: its optimizer.
            epoch: the completed epochs (1-based number of this one).
            history: the history, the epoch's record appended.
            previous: :meth:`best_so_far` of the history before that record.
            scaler, lr_scheduler: their states are stored when given.

        Raises:
            what :func:`save_checkpoint` raises.
        """
        if self.path is None and self.best_path is None:
            return
        extra = dict(self.extra or {})
        if scaler is not None:
            extra["scaler"] = scaler.state_dict()
        if lr_scheduler is not None:
            extra["lr_scheduler"] = lr_scheduler.state_dict()
        if self.path is not None:
            save_checkpoint(self.path, net, optimizer, epoch, history, **extra)
        value = history.last.get(self.best_metric, math.nan)
        if (self.best_path is not None and isinstance(value, (int, float)) and math.isfinite(value)
                and (not previous or value > max(previous))):
            save_checkpoint(self.best_path, net, optimizer, epoch, history, **extra)


def best_path(checkpoint) -> Path:
    """Where a run keeps its best checkpoint: ``run.pt`` -> ``run.best.pt`` (no suffix: ``.best.pt``).

    Pure path arithmetic (nothing is read or checked); used by ``d2lssd train`` and
    :func:`d2lssd.pennfudan.train`. Source: ours.
    """
    p = Path(checkpoint)
    return p.with_name(p.stem + ".best" + (p.suffix or ".pt"))
