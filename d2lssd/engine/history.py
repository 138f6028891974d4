"""The record of a training run: one dict per epoch, plus metadata.

Source: ours (d2l's ``Animator`` keeps the same numbers only in a plot).
"""

from __future__ import annotations

import math
import warnings

__all__ = ["History", "METRICS", "DEPRECATED_KEYS", "epoch_record"]

#: The quantities measured on the training and the validation set, in the order of the records' keys
#: (named as the functions of :mod:`d2lssd.metrics` that compute them).
METRICS = ("loss", "class_error_positive", "class_error_all", "bbox_mae_positive")

#: Keys of releases before 0.2 (``*_class_error_pos``, ``*_bbox_mae_pos``), still accepted with a
#: ``DeprecationWarning`` by ``history[key]`` and converted by :meth:`History.from_dict`.
DEPRECATED_KEYS = {f"{split}_{old}": f"{split}_{new}" for split in ("train", "val")
                   for old, new in (("class_error_pos", "class_error_positive"), ("bbox_mae_pos", "bbox_mae_positive"))}


class History:
    """Per-epoch training record: a list of dicts, one per epoch, plus metadata.

    Each record has the keys

    * ``epoch`` (1-based), ``lr`` (learning rate of the first parameter group);
    * ``train_loss``: mean per-image loss (see :func:`d2lssd.ssd_loss`);
      ``train_class_error_positive``, ``train_class_error_all``: fractions in
      [0, 1]; ``train_bbox_mae_positive``: offset units; all accumulated over the
      whole epoch (sums divided once, not an average of batch averages) while
      the weights change;
    * ``val_loss``, ``val_class_error_positive``, ``val_class_error_all``,
      ``val_bbox_mae_positive``: the same on the validation set after the epoch
      (NaN without one);
    * ``train_images``: images trained on; ``epoch_time_s``: wall time of the
      training pass in seconds; ``throughput``: ``train_images /
      epoch_time_s`` (images/s); ``val_time_s``.

    ``history["train_loss"]`` gives the list over epochs (NaN where a record
    lacks the key; the old names ``train_class_error_pos`` ... of
    :data:`DEPRECATED_KEYS` still work, with a ``DeprecationWarning``); ``len(history)`` the number of epochs; ``history.last``
    the latest record; ``history.meta`` a dict (device, amp, optimizer).
    :meth:`to_dict` / :meth:`from_dict` give plain Python data (what the
    checkpoints store). Two histories are equal when their records and meta
    are, NaN counting as equal to NaN.

    Source: ours (d2l's ``Animator`` keeps the same numbers only in a plot).
    """

    def __init__(self, records: list[dict] | None = None, meta: dict | None = None):
        self.records = [dict(r) for r in (records or [])]
        self.meta = dict(meta or {})

    def append(self, record: dict) -> None:
        self.records.append(dict(record))

    def __getitem__(self, key: str) -> list:
        if key in DEPRECATED_KEYS:
            warnings.warn(f"History key {key!r} is deprecated; use {DEPRECATED_KEYS[key]!r}", DeprecationWarning,
                          stacklevel=2)
            key = DEPRECATED_KEYS[key]
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
        """The history of :meth:`to_dict`'s data; records with :data:`DEPRECATED_KEYS` get the new names."""
        records = [{DEPRECATED_KEYS.get(k, k): v for k, v in r.items()} for r in d.get("records", [])]
        return cls(records, d.get("meta", {}))

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


def epoch_record(epoch: int, lr: float, train: dict, val: dict | None = None) -> dict:
    """One :class:`History` record from an epoch's training and validation summaries.

    Args:
        epoch: the epoch, 1-based.
        lr: the learning rate after the epoch (first parameter group).
        train: what :func:`d2lssd.engine.train_one_epoch` returns: the
            :data:`METRICS`, ``images`` (int) and ``time_s`` (float, > 0).
        val: what :func:`d2lssd.engine.evaluate` returns (the :data:`METRICS`
            and ``time_s``), or None without validation (its entries are NaN).

    Returns:
        a dict with the keys listed in :class:`History`, in that order.

    Source: ours.
    """
    if val is None:
        val = dict.fromkeys(METRICS + ("time_s",), math.nan)
    record = {"epoch": int(epoch), "lr": float(lr)}
    record.update({f"train_{k}": train[k] for k in METRICS})
    record.update({f"val_{k}": val[k] for k in METRICS})
    record.update(train_images=train["images"], epoch_time_s=train["time_s"],
                  throughput=train["images"] / train["time_s"], val_time_s=val["time_s"])
    return record
