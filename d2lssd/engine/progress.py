"""What a training run shows: a tqdm bar per epoch, a live plot in notebooks, a text line per epoch elsewhere.

Nothing here imports matplotlib, IPython or tqdm when the module is
imported: the live plot imports matplotlib's ``Figure`` (not pyplot) when it
is created, the bar imports ``tqdm.auto`` when an epoch starts.

Source: d2l.ai §3.6 ``Animator`` (a plot redrawn in place after each epoch);
torchvision ``references/detection/utils.py`` (``MetricLogger``: a line per
interval in a terminal).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

__all__ = ["in_notebook", "plot_mode", "fmt", "epoch_line", "LivePlot", "Progress"]


def in_notebook() -> bool:
    """True inside a Jupyter/Colab kernel (not a terminal IPython, not plain Python).

    Reads ``sys.modules``: IPython is never imported here (not imported
    means certainly not in IPython).

    Source: ours (the test ``tqdm.autonotebook`` uses, ``IPKernelApp`` in the shell's config).
    """
    ipython = sys.modules.get("IPython")  # not imported: certainly not in IPython
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    if shell is None:
        return False
    if "IPKernelApp" in getattr(shell, "config", {}):
        return True
    return type(shell).__name__ == "ZMQInteractiveShell"


def plot_mode(plot) -> str | None:
    """The display a ``plot`` argument asks for: ``"notebook"``, ``"text"`` or None (nothing).

    Args:
        plot: ``"auto"`` (``"notebook"`` in a notebook kernel, see
            :func:`in_notebook`, else ``"text"``), ``"notebook"``,
            ``"text"``, or ``None`` / ``False``.

    Raises:
        ValueError: any other value.

    Source: ours (the choice d2l makes by always plotting, made explicit).
    """
    if plot is False or plot is None:
        return None
    if plot == "auto":
        return "notebook" if in_notebook() else "text"
    if plot in ("notebook", "text"):
        return plot
    raise ValueError(f"plot must be 'auto', 'notebook', 'text', None or False, got {plot!r}")


def fmt(x: float, pct: bool = False) -> str:
    """``x`` with 4 significant digits (or as a percentage with 2 decimals); ``"n/a"`` for None or NaN. Source: ours."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.2f}%" if pct else f"{x:.4g}"


def epoch_line(r: dict, num_epochs: int, device) -> str:
    """The printed summary of one :class:`~d2lssd.engine.History` record (one line, no newline).

    ``epoch 3/20: train loss …, class err pos …% (all …%), bbox MAE pos …``,
    then ``| val loss …`` when the record has a finite ``val_loss``,
    ``, AP50 …, AP …`` when it has ``val_AP50`` / ``val_AP``, and
    ``| … img/s on DEVICE``.

    Raises:
        KeyError: a record without the train keys or ``throughput``.

    Source: ours (d2l prints the loss, class error, box MAE and images/s at the end of training).
    """
    line = (f"epoch {r['epoch']}/{num_epochs}: train loss {fmt(r['train_loss'])}, "
            f"class err pos {fmt(r['train_class_error_positive'], True)} "
            f"(all {fmt(r['train_class_error_all'], True)}), "
            f"bbox MAE pos {fmt(r['train_bbox_mae_positive'])}")
    if not math.isnan(r.get("val_loss", math.nan)):
        line += (f" | val loss {fmt(r['val_loss'])}, class err pos {fmt(r['val_class_error_positive'], True)} "
                 f"(all {fmt(r['val_class_error_all'], True)}), bbox MAE pos {fmt(r['val_bbox_mae_positive'])}")
    for key in ("val_AP50", "val_AP"):
        if key in r:
            line += f", {key[4:]} {fmt(r[key])}"
    line += f" | {r['throughput']:.1f} img/s on {device}"
    return line


class LivePlot:
    """Loss / class error / box MAE curves in a notebook, redrawn in place after each epoch.

    Three panels of a matplotlib ``Figure`` (not pyplot: nothing is shown
    twice, no global figure is left open), shown with
    ``IPython.display.display(..., display_id=True)`` and updated through
    that handle. ``axes`` are the three panels; a curve is drawn only when
    it has a non-NaN value.

    Raises:
        ImportError: without IPython or matplotlib.

    Source: d2l.ai §3.6 ``Animator`` (redrawn in place).
    """

    def __init__(self):
        from IPython.display import display
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(11, 3.2), layout="constrained")
        self.axes = self.fig.subplots(1, 3)
        self.handle = display(self.fig, display_id=True)  # None outside IPython

    def update(self, history, num_epochs: int) -> None:
        """Redraw the curves of ``history`` (a :class:`~d2lssd.engine.History`), x axis up to ``num_epochs``."""
        ep = history["epoch"]
        panels = [
            ("loss (per image)", [("train_loss", "train", "-"), ("val_loss", "val", "-")]),
            ("class error", [("train_class_error_positive", "train, positives", "-"),
                             ("val_class_error_positive", "val, positives", "-"),
                             ("train_class_error_all", "train, all anchors", ":"),
                             ("val_class_error_all", "val, all anchors", ":")]),
            ("bbox MAE, positives (offset units)", [("train_bbox_mae_positive", "train", "-"),
                                                     ("val_bbox_mae_positive", "val", "-")]),
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


def _len(it) -> int | None:
    try:
        return len(it)
    except TypeError:
        return None


class Progress:
    """The display of one run, as :func:`d2lssd.train_ssd` shows it.

    Args:
        mode: :func:`plot_mode`'s answer: ``"notebook"`` (a :class:`LivePlot`
            redrawn after each epoch, one :func:`epoch_line` at the end),
            ``"text"`` (one :func:`epoch_line` per epoch) or None (nothing).
        bar: a tqdm bar (``tqdm.auto``, to stderr) per epoch.
        num_epochs: the run's total epochs.
        device: named in the epoch lines.

    Source: ours (d2l's ``Animator``; torchvision's ``MetricLogger`` prints lines).
    """

    def __init__(self, mode: str | None, bar: bool, num_epochs: int, device):
        self.mode, self.show_bar, self.num_epochs, self.device = mode, bool(bar), num_epochs, device
        self.plotter = None

    def start(self, history, start_epoch: int, checkpoint_path=None) -> None:
        """Before the first epoch: open the live plot (with the resumed epochs) or say that nothing is left to train.

        Args:
            history: the :class:`~d2lssd.engine.History` so far (resumed epochs).
            start_epoch: epochs already done.
            checkpoint_path: the checkpoint they were read from (only its file
                name is printed: a printed page should not show the folder).
        """
        if self.mode == "notebook" and start_epoch < self.num_epochs:
            self.plotter = LivePlot()
            if len(history):
                self.plotter.update(history, self.num_epochs)
        if start_epoch >= self.num_epochs and self.mode is not None:
            if not start_epoch:
                where = "num_epochs is"
            elif checkpoint_path is not None:
                where = f"checkpoint {Path(checkpoint_path).name} already holds"
            else:
                where = "the history already holds"
            print(f"{where} {start_epoch} epochs (num_epochs={self.num_epochs}): nothing to train", flush=True)

    def epoch_bar(self, epoch: int, batches):
        """A tqdm bar for epoch ``epoch`` (0-based) over ``batches`` (its ``len`` is the total, if it has one).

        Returns None when the run shows no bar. The bar is updated by hand (see
        :func:`d2lssd.engine.train_one_epoch`), not by wrapping the iterable: a
        wrapped bar closes itself when the iterator ends and, on a fast epoch
        (under tqdm's ``mininterval``), never draws its final count.
        """
        if not self.show_bar:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=_len(batches), desc=f"epoch {epoch + 1}/{self.num_epochs}", unit="batch", leave=False)

    def epoch_end(self, record: dict, history) -> None:
        """After an epoch's record is stored: print its line (text) or redraw the plot (notebook)."""
        if self.mode == "text":
            print(epoch_line(record, self.num_epochs, self.device), flush=True)
        elif self.plotter is not None:
            self.plotter.update(history, self.num_epochs)

    def finish(self, history) -> None:
        """After the last epoch: in notebook mode, the last record's line below the plot."""
        if self.mode == "notebook" and len(history):
            print(epoch_line(history.last, self.num_epochs, self.device), flush=True)
