"""The loaders of a training run: one seeded, sharded training loader and a validation loader.

Source: torchvision ``references/detection/train.py`` (a ``DistributedSampler``
under ``torchrun``, ``set_epoch`` every epoch, which :func:`d2lssd.engine.fit` calls).
"""

from __future__ import annotations

import torch

from ..data.collate import collate_ssd

__all__ = ["detection_loaders"]


def detection_loaders(train, val, batch_size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1,
                      workers: int = 0, drop_single_last: bool = True):
    """``(train_iter, val_iter)`` for SSD training: batches ``(images (B, 3, H, W), labels (B, G, 5))``.

    The training loader uses a ``DistributedSampler(num_replicas=world_size,
    rank=rank, shuffle=True, seed=seed)`` also with one process, so the
    global order of the images is the same for any number of processes:
    rank ``r`` takes every ``world_size``-th index of one seeded permutation,
    and epoch ``e`` the permutation of ``seed + e`` (after ``set_epoch(e)``).

    Args:
        train: a dataset of ``(image, target)`` after an SSD transform (float
            images of one size, pixel ``target["boxes"]``, ``target["labels"]``),
            e.g. :class:`d2lssd.data.CocoDataset` or :class:`d2lssd.PennFudanDataset`.
        val: the same for validation, or ``None``.
        batch_size: images per batch and process (>= 1).
        seed, rank, world_size: the sampler's (``rank < world_size``).
        workers: data-loader processes (>= 0).
        drop_single_last: drop a last training batch of a single image
            (BatchNorm in training mode cannot normalize a 1x1 feature map
            over one value).

    Returns:
        ``(train_iter, val_iter)``: ``DataLoader``\\ s collating with
        :func:`d2lssd.data.collate_ssd` (labels normalized, padded with
        class -1); ``val_iter`` is ``None`` without ``val``, else unshuffled
        and unsharded (rank 0 validates alone).

    Raises:
        ValueError: ``batch_size < 1``, ``workers < 0`` or a bad rank (from
        the sampler).
    """
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if isinstance(workers, bool) or int(workers) != workers or workers < 0:
        raise ValueError(f"workers must be an integer >= 0, got {workers!r}")
    sampler = torch.utils.data.DistributedSampler(train, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    drop_last = drop_single_last and len(sampler) % batch_size == 1 and len(sampler) > 1
    train_iter = torch.utils.data.DataLoader(train, batch_size, sampler=sampler, drop_last=drop_last,
                                             num_workers=workers, collate_fn=collate_ssd)
    val_iter = (torch.utils.data.DataLoader(val, batch_size, shuffle=False, num_workers=workers,
                                            collate_fn=collate_ssd) if val is not None else None)
    return train_iter, val_iter
