"""The training engine: the pieces every d2lssd trainer shares.

One implementation of each thing a training run needs, used by
:func:`d2lssd.train_ssd`, the banana recipes (:mod:`d2lssd.recipes`), the
Penn-Fudan project (:mod:`d2lssd.pennfudan`) and ``d2lssd train``:

* :mod:`~d2lssd.engine.schedule`: the optimizer and the per-step learning
  rate (linear warm-up, then a cosine down to ``lr * 1e-4``);
* :mod:`~d2lssd.engine.cache`: the run cache (a digest of the settings and of
  the package's code names a checkpoint, so a chapter executed twice trains
  once);
* :mod:`~d2lssd.engine.distributed`: joining and leaving a ``torchrun``
  process group.

Source: torchvision ``references/detection`` (``utils.py``,
``engine.py``): small functions, a loop that knows nothing about the data or
the model.
"""

from .cache import cache_path, code_fingerprint, run_digest
from .config import TrainConfig
from .distributed import DistInfo, dist_info, distributed_context
from .schedule import lr_factor, make_optimizer

__all__ = ["cache_path", "code_fingerprint", "run_digest", "DistInfo", "dist_info", "distributed_context",
           "lr_factor", "make_optimizer", "TrainConfig"]
