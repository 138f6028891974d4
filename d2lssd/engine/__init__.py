"""The training engine: the pieces every d2lssd trainer shares.

One implementation of each thing a training run needs, used by
:func:`d2lssd.train_ssd`, the banana recipes (:mod:`d2lssd.recipes`), the
Penn-Fudan project (:mod:`d2lssd.pennfudan`) and ``d2lssd train``:

* :mod:`~d2lssd.engine.loop`: the training step (forward, loss, NaN guard,
  backward, step), one epoch, an evaluation pass and :func:`fit`, the epoch
  loop; it knows nothing about the data set or the model;
* :mod:`~d2lssd.engine.batch_loss`: what one SSD batch gives the loop (the
  per-image loss and the sums behind the metrics): the one SSD-aware piece;
* :mod:`~d2lssd.engine.history`: :class:`History`, the per-epoch record;
* :mod:`~d2lssd.engine.checkpoint`: atomic checkpoints, safe reading, resuming;
* :mod:`~d2lssd.engine.progress`: the tqdm bar, the notebook's live plot,
  the printed epoch lines (matplotlib is imported only by the live plot);
* :mod:`~d2lssd.engine.data`: the seeded, sharded training loader and the
  validation loader;
* :mod:`~d2lssd.engine.config`: :class:`TrainConfig`, the typed options of
  ``d2lssd train`` (checks, ``--help`` text, the checkpoint's record);
* :mod:`~d2lssd.engine.schedule`: the optimizer and the per-step learning
  rate (linear warm-up, then a cosine down to ``lr * 1e-4``);
* :mod:`~d2lssd.engine.cache`: the run cache (a digest of the settings and of
  the package's code names a checkpoint, so a chapter executed twice trains
  once);
* :mod:`~d2lssd.engine.distributed`: joining and leaving a ``torchrun``
  process group, the rank that writes, unwrapping DDP models.

Dependencies point one way: :mod:`d2lssd.train` imports the engine, the
engine never imports it.

Source: torchvision ``references/detection`` (``utils.py``,
``engine.py``): small functions, a loop that knows nothing about the data or
the model.
"""

from .batch_loss import SSDBatchLoss
from .cache import cache_path, code_fingerprint, run_digest
from .checkpoint import (CHECKPOINT_FORMAT, Checkpoints, best_path, load_checkpoint, read_checkpoint, resume_training,
                         save_checkpoint)
from .config import TrainConfig
from .data import detection_loaders
from .distributed import DistInfo, dist_info, distributed_context, process_group_role, unwrap_model
from .history import History
from .loop import evaluate, fit, train_one_epoch, train_step
from .progress import LivePlot, Progress
from .schedule import lr_factor, make_optimizer

__all__ = ["cache_path", "code_fingerprint", "run_digest", "DistInfo", "dist_info", "distributed_context",
           "process_group_role", "unwrap_model", "lr_factor", "make_optimizer", "History", "CHECKPOINT_FORMAT",
           "Checkpoints", "save_checkpoint", "read_checkpoint", "load_checkpoint", "resume_training",
           "SSDBatchLoss", "train_step", "train_one_epoch", "evaluate", "fit", "LivePlot", "Progress",
           "TrainConfig", "best_path", "detection_loaders"]
