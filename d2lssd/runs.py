"""The run folder: what a training run leaves to look at, like Ultralytics' ``runs/train/NAME``.

``d2lssd train --checkpoint runs/mine.pt`` writes, besides the checkpoints,
the folder ``runs/mine/`` (:func:`run_folder`):

* ``config.json``: the run's :class:`~d2lssd.engine.TrainConfig`, the data it
  used and its classes (written at the start);
* ``results.csv``: one row per epoch, rewritten after each: epoch, learning
  rate, the training and validation losses and their terms' errors, AP50, AP,
  AP50 per class, time;
* ``labels.png``: boxes per class, and every training box's width and height
  with the detector's anchors over them (at the start);
* at the end, from the best checkpoint on the validation data:
  ``results.png`` (loss, AP and learning-rate curves), ``pr_curves.png``
  (precision-recall per class at IoU 0.5), ``confusion_matrix.png`` (with a
  background row and column, :func:`d2lssd.metrics.confusion_matrix`),
  ``val_predictions.png`` (validation images: ground truth beside
  predictions), ``worst.png`` (the images with the most misses and false
  detections) and ``tide.txt`` (TIDE's error breakdown, :mod:`d2lssd.tide`);
* ``tensorboard/``: the per-epoch scalars, when ``tensorboard`` is installed.

Every file is written atomically. Figures use ``matplotlib.figure.Figure``
(no pyplot state: safe in a notebook and in a headless process).

Source: ours; the files follow Ultralytics' ``runs/train`` folder
(``results.csv``, ``results.png``, ``PR_curve.png``, ``confusion_matrix.png``,
``labels.jpg``, ``val_batch*_pred.jpg``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import torch

from ._io import atomic_write
from .detector import Detector, evaluate_detector
from .metrics import confusion_matrix

__all__ = ["run_folder", "check_run_folder", "RunFolder", "RESULT_COLUMNS", "RUN_FILES"]

#: The columns of ``results.csv`` before the per-class AP50 columns (``val_AP50_<class>``).
RESULT_COLUMNS = ("epoch", "lr", "train_loss", "train_class_error_positive", "train_bbox_mae_positive", "val_loss",
                  "val_class_error_positive", "val_bbox_mae_positive", "val_AP50", "val_AP", "epoch_time_s",
                  "val_time_s")


def run_folder(checkpoint) -> Path:
    """The run folder of a checkpoint path: ``runs/mine.pt`` -> ``runs/mine`` (the suffix dropped)."""
    path = Path(checkpoint)
    return path.with_suffix("") if path.suffix else path.with_name(path.name + ".run")


#: What a run folder holds (:class:`RunFolder`); anything else in it was not written by a run.
RUN_FILES = ("config.json", "results.csv", "labels.png", "results.png", "pr_curves.png", "confusion_matrix.png",
             "val_predictions.png", "worst.png", "tide.txt", "tensorboard")


def check_run_folder(folder) -> None:
    """Refuse a run folder that holds what no run wrote (a data folder named like the checkpoint).

    ``d2lssd train --checkpoint data/photos.pt`` would otherwise write its
    plots into ``data/photos/`` among the user's files. A folder of an earlier
    run (only :data:`RUN_FILES`, and temporary files of interrupted atomic
    writes) is fine: a resumed run rewrites it.

    Args:
        folder: the run folder (:func:`run_folder`); it need not exist.

    Raises:
        ValueError: ``folder`` is a file, or holds other files or folders (the first few named).

    Source: ours (Ultralytics avoids the clash by numbering ``runs/train/NAME2``; we refuse and say why).
    """
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ValueError(f"the run folder {folder} is a file; choose another --checkpoint name (or --no-report)")
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in RUN_FILES and not p.name.endswith(".tmp"))
    if foreign:
        raise ValueError(f"the run folder {folder} (the checkpoint's name without its suffix) holds files no run "
                         f"wrote ({', '.join(foreign[:4])}{', ...' if len(foreign) > 4 else ''}); choose another "
                         "--checkpoint name, or --no-report to write no folder")


def _save_figure(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    data = buf.getvalue()
    atomic_write(path, lambda f: f.write(data))


def _figure(*size):
    from matplotlib.figure import Figure

    return Figure(figsize=size)


class RunFolder:
    """Writes one run's folder (module docstring); call :meth:`start`, :meth:`epoch` per epoch, :meth:`finish`.

    Args:
        folder: the run folder (created).
        classes: class names in label order.
        tensorboard: log the epochs to ``tensorboard/`` when the package is installed.
        check: refuse a folder that holds what no run wrote (:func:`check_run_folder`; the trainer's).

    Raises:
        OSError: the folder cannot be created. ValueError: see ``check``.
    """

    def __init__(self, folder, classes, tensorboard: bool = True, check: bool = False):
        self.folder = Path(folder)
        if check:
            check_run_folder(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.classes = list(classes)
        self._tb = None
        if not tensorboard:
            return
        try:  # TensorBoard when it is installed (torch's writer needs the tensorboard package)
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.folder / "tensorboard"))
        except (ImportError, ModuleNotFoundError):
            self._tb = None

    @property
    def has_tensorboard(self) -> bool:
        """True when the per-epoch scalars also go to ``tensorboard/``."""
        return self._tb is not None

    # ------------------------------------------------------------------ start

    def start(self, config: dict, data_description: str, train, detector: Detector) -> None:
        """``config.json`` and ``labels.png`` (from the training set ``train``'s annotations, no image read)."""
        text = json.dumps({"config": config, "data": data_description, "classes": self.classes},
                          indent=1).encode()
        atomic_write(self.folder / "config.json", lambda f: f.write(text))
        rows = _label_rows(train)
        if rows is not None:
            self._labels_plot(rows, detector)

    def _labels_plot(self, rows: torch.Tensor, detector: Detector) -> None:
        rows = rows[rows[:, 0] >= 0]
        fig = _figure(10, 3.6)
        ax1, ax2 = fig.subplots(1, 2)
        counts = torch.bincount(rows[:, 0].long(), minlength=len(self.classes))[:len(self.classes)]
        ax1.bar(range(len(self.classes)), counts.tolist(), color="tab:blue")
        ax1.set_xticks(range(len(self.classes)), self.classes, rotation=45, ha="right", fontsize=8)
        ax1.set_title(f"training boxes per class ({len(rows)} in all)")
        wh = (rows[:, 3:5] - rows[:, 1:3]).clamp(min=0)
        ax2.scatter(wh[:, 0], wh[:, 1], s=4, alpha=0.4, label="training boxes")
        anchors = _anchor_sizes(detector)
        if anchors is not None:
            ax2.scatter(anchors[:, 0], anchors[:, 1], s=28, marker="x", color="tab:red", label="anchors")
        ax2.set_xlabel("width (share of the image)")
        ax2.set_ylabel("height (share of the image)")
        ax2.set_xlim(0, 1)
        ax2.set_ylim(0, 1)
        ax2.set_title("box sizes and the anchors' sizes")
        ax2.legend(fontsize=8)
        _save_figure(fig, self.folder / "labels.png")

    # ------------------------------------------------------------------ epochs

    def epoch(self, history) -> None:
        """Rewrite ``results.csv`` from ``history`` (and log the last record to TensorBoard)."""
        per_class = [f"val_AP50_{c}" for c in self.classes]
        columns = list(RESULT_COLUMNS) + per_class
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        for r in history.records:
            writer.writerow([_cell(r.get(c)) for c in columns])
        data = out.getvalue().encode()
        atomic_write(self.folder / "results.csv", lambda f: f.write(data))
        if self._tb is not None and history.records:
            r = history.records[-1]
            for key, value in r.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                        and key != "epoch":
                    self._tb.add_scalar(key.replace("val_", "val/").replace("train_", "train/"), value, r["epoch"])
            self._tb.flush()

    # ------------------------------------------------------------------ end

    def finish(self, history, detector: Detector, val_loader, num_shown: int = 8) -> dict:
        """The end-of-run figures from ``detector`` (the best weights) on ``val_loader``; returns the evaluation.

        ``val_loader``: batches ``(images, labels)`` in the detector's input
        convention (``None``: only ``results.png``).
        """
        self._results_plot(history)
        if self._tb is not None:
            self._tb.close()
        if val_loader is None:
            return {}
        return self.analyse(detector, val_loader, num_shown)

    def analyse(self, detector: Detector, loader, num_shown: int = 8) -> dict:
        """``pr_curves.png``, ``confusion_matrix.png``, ``tide.txt``, ``val_predictions.png`` and
        ``worst.png`` (the images with the most misses and false detections) of ``detector`` on ``loader``.

        Returns :func:`d2lssd.detector.evaluate_detector`'s result plus
        ``"confusion_matrix"``, ``"tide"`` and ``"errors_per_image"`` (int
        ``(N,)``: misses + false detections + confusions at the detector's score threshold).
        """
        from .tide import error_breakdown

        val_loader = loader
        result = evaluate_detector(detector, val_loader)
        self._pr_plot(result)
        score = detector.postprocess.score_threshold
        matrix = confusion_matrix(result["detections"], result["targets"], len(self.classes),
                                  score_threshold=score)
        self._confusion_plot(matrix, score)
        tide = error_breakdown(result["detections"], result["targets"], classes=self.classes)
        text = (f"TIDE error breakdown on the validation images (best checkpoint; AP50 {tide.AP50:.4f})\n"
                + tide.table() + "\n").encode()
        atomic_write(self.folder / "tide.txt", lambda f: f.write(text))
        q = len(self.classes)
        errors = []
        for d, t in zip(result["detections"], result["targets"]):
            m = confusion_matrix([d], [t], q, score_threshold=score)
            errors.append(int(m.sum() - m.diagonal()[:q].sum()))
        errors = torch.tensor(errors, dtype=torch.int64)
        self._mosaic(detector, val_loader, list(range(num_shown)), "val_predictions.png")
        worst = [int(i) for i in errors.argsort(descending=True, stable=True)[:num_shown // 2] if errors[i] > 0]
        if worst:
            self._mosaic(detector, val_loader, worst, "worst.png",
                         titles=[f"{int(errors[i])} errors" for i in worst])
        result.update(confusion_matrix=matrix, tide=tide, errors_per_image=errors)
        return result

    def _results_plot(self, history) -> None:
        fig = _figure(13, 3.4)
        axes = fig.subplots(1, 3)
        ep = history["epoch"]
        axes[0].plot(ep, history["train_loss"], ".-", label="train")
        axes[0].plot(ep, history["val_loss"], ".-", label="validation")
        axes[0].set_title("loss")
        axes[1].plot(ep, history["val_AP50"], ".-", label="AP50")
        axes[1].plot(ep, history["val_AP"], ".-", label="AP@[.5:.95]")
        axes[1].set_title("validation AP (COCO, 101-point)")
        axes[2].plot(ep, history["lr"], ".-", label="learning rate")
        axes[2].set_title("learning rate (end of epoch)")
        for ax in axes:
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        _save_figure(fig, self.folder / "results.png")

    def _pr_plot(self, result: dict) -> None:
        fig = _figure(5, 4)
        ax = fig.subplots()
        prec, recall = result["precision"], result["recall"]
        for k, c in enumerate(result["classes"]):  # precision's classes: those in the data or detections
            if prec.dim() == 3 and (prec[0, k] >= 0).all():
                name = self.classes[c]
                ap = result["per_class"].get(name, float("nan"))
                ax.plot(recall, prec[0, k], label=f"{name} (AP50 {ap:.3f})")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.set_title(f"precision-recall at IoU 0.5 (AP50 {float(result['AP50']):.3f})")
        ax.legend(fontsize=8)
        _save_figure(fig, self.folder / "pr_curves.png")

    def _confusion_plot(self, matrix: torch.Tensor, score: float) -> None:
        names = self.classes + ["background"]
        n = len(names)
        fig = _figure(1.2 + 0.55 * n, 1.0 + 0.5 * n)
        ax = fig.subplots()
        ax.imshow(matrix.numpy(), cmap="Blues")
        for i in range(n):
            for j in range(n):
                v = int(matrix[i, j])
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                            color="white" if v > matrix.max() / 2 else "black")
        ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n), names, fontsize=8)
        ax.set_xlabel("true class")
        ax.set_ylabel("predicted class")
        ax.set_title(f"confusion matrix (score >= {score:g}, IoU >= 0.5)", fontsize=9)
        _save_figure(fig, self.folder / "confusion_matrix.png")

    def _mosaic(self, detector: Detector, val_loader, indices, name: str, titles=None) -> None:
        """Images ``indices`` of the loader, ground truth (top row) beside predictions (bottom row), as ``name``."""
        want, images, labels, seen = set(indices), {}, {}, 0
        for X, Y, *_ in val_loader:
            for j in range(len(X)):
                if seen + j in want:
                    images[seen + j], labels[seen + j] = X[j], Y[j]
            seen += len(X)
            if len(images) == len(want):
                break
        order = [i for i in indices if i in images]
        if not order:
            return
        X = torch.stack([images[i] for i in order])
        Y = [labels[i] for i in order]
        dets = detector.predict(X)
        k = len(X)
        fig = _figure(2.2 * k, 4.6)
        axes = fig.subplots(2, k, squeeze=False)
        for i in range(k):
            # the input convention: pixel_scale 1 feeds [0, 255], 255 feeds [0, 1]
            img = (X[i] * (detector.pixel_scale / 255.0)).clamp(0, 1).permute(1, 2, 0).float().numpy()
            h, w = img.shape[:2]
            for row, (boxes, color, texts) in enumerate((
                    (Y[i][Y[i][:, 0] >= 0][:, 1:], "lime", [self.classes[int(c)] for c in Y[i][Y[i][:, 0] >= 0][:, 0]]),
                    (dets[i][:, 2:], "red", [f"{self.classes[int(c)]} {s:.2f}" for c, s in dets[i][:, :2].tolist()]))):
                ax = axes[row, i]
                ax.imshow(img)
                for b, t in zip(boxes.tolist(), texts):
                    x0, y0, x1, y1 = b[0] * w, b[1] * h, b[2] * w, b[3] * h
                    ax.add_patch(_rect(x0, y0, x1, y1, color))
                    ax.text(x0, y0, t, fontsize=6, color="black", backgroundcolor=color)
                ax.axis("off")
            top = titles[i] if titles else ""
            axes[0, i].set_title(f"ground truth {top}" if i == 0 else top, fontsize=8)
            axes[1, i].set_title("predictions" if i == 0 else "", fontsize=8)
        _save_figure(fig, self.folder / name)


def _label_rows(train) -> torch.Tensor | None:
    """The training set's labels, float ``(G, 5)`` rows ``(class, xmin, ymin, xmax, ymax)`` normalized,
    read from its annotations without opening an image; ``None`` when it has no such record."""
    base = getattr(train, "dataset", train)  # a Subset: its data set's
    if isinstance(getattr(base, "labels", None), torch.Tensor) and base.labels.shape[-1] == 5:
        return base.labels.reshape(-1, 5).float()  # the banana data: d2l's rows
    records = getattr(base, "records", None)
    if records and all(hasattr(r, "boxes") and hasattr(r, "width") for r in records[:1]):
        rows = [torch.cat((torch.zeros(len(r.boxes), 1), r.boxes / torch.tensor([r.width, r.height] * 2)), 1)
                for r in records]  # Penn-Fudan: one class
        return torch.cat(rows) if rows else None
    labelled = getattr(base, "normalized_labels", None)
    return labelled() if callable(labelled) else None


def _rect(x0, y0, x1, y1, color):
    from matplotlib.patches import Rectangle

    return Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=1.2)


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


@torch.no_grad()
def _anchor_sizes(detector: Detector) -> torch.Tensor | None:
    """The distinct ``(width, height)`` of the detector's anchors (normalized), from one forward pass."""
    net = detector.net
    h, w = detector.input_size
    was = net.training
    try:
        net.eval()
        p = next(net.parameters())
        anchors = net(torch.zeros((1, 3, h, w), device=p.device, dtype=p.dtype))[0].reshape(-1, 4).float().cpu()
    except (RuntimeError, ValueError, TypeError):  # a network that cannot run here: the plot has no anchors
        return None
    finally:
        net.train(was)
    wh = (anchors[:, 2:] - anchors[:, :2]).round(decimals=4)
    return torch.unique(wh, dim=0)
