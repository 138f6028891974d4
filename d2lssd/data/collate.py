"""Batching detection samples for training: :func:`collate_ssd`.

Every data set of the package (COCO, VOC, Penn-Fudan, after an SSD
transform; the banana data as d2l serves it) gives ``(image, target)``
samples; :func:`collate_ssd` turns a list of them into the ``(images,
labels)`` batch :func:`d2lssd.train_ssd` and :func:`d2lssd.multibox_target`
take: normalized label rows padded with class -1 (GUIDE, "conventions").
:func:`d2lssd.data.collate_detection` adds what evaluation needs.

Source: ours; the padded label tensor is d2l.ai §14.6's (``BananasDataset``
batches ``(B, G, 5)``).
"""

from __future__ import annotations

import torch

from ..boxes import to_normalized

__all__ = ["collate_ssd"]


def collate_ssd(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``(image, target)`` samples into what :func:`d2lssd.train_ssd` expects.

    Args:
        batch: list of ``(image, target)`` with ``image`` a float tensor
            ``(3, H, W)`` (all the same size, e.g. 300x300 after
            :class:`d2lssd.transforms.SSDTrainTransform`) and ``target`` a
            dict with ``"boxes"`` (``BoundingBoxes`` XYXY in pixels, or a
            ``(G, 4)`` pixel tensor on the image's canvas) and ``"labels"``
            (int ``(G,)``, 0-based classes), or d2l's label rows: a float
            tensor ``(G, 5)`` of ``(class, xmin, ymin, xmax, ymax)`` already
            normalized (:class:`d2lssd.data.BananasDataset`'s samples).

    Returns:
        ``(images, labels)``: float32 ``(B, 3, H, W)`` and float32
        ``(B, G_max, 5)`` rows ``(class, xmin, ymin, xmax, ymax)``, boxes
        divided by the image width and height (normalized to [0, 1]),
        padded with rows of class -1 (and zero boxes). ``G_max`` is the most
        boxes of an image in the batch (0 if none has any).

    Raises:
        ValueError: an empty batch, images that are not float ``(3, H, W)``
            or differ in size, boxes not in XYXY, or boxes and labels of
            different lengths.
    """
    from torchvision import tv_tensors

    if len(batch) == 0:
        raise ValueError("cannot collate an empty batch")
    images, rows = [], []
    for k, (image, target) in enumerate(batch):
        if not (isinstance(image, torch.Tensor) and image.is_floating_point() and image.dim() == 3
                and image.shape[0] == 3):
            raise ValueError(f"sample {k}: the image must be a float tensor (3, H, W) (use an "
                             f"SSD transform), got {getattr(image, 'dtype', type(image))} "
                             f"{tuple(getattr(image, 'shape', ()))}")
        if images and image.shape != images[0].shape:
            raise ValueError(f"sample {k}: image size {tuple(image.shape)} differs from "
                             f"{tuple(images[0].shape)}; resize all images to one size")
        h, w = image.shape[-2:]
        if isinstance(target, torch.Tensor):  # d2l's normalized rows (class, xmin, ymin, xmax, ymax)
            if target.dim() != 2 or target.shape[-1] != 5:
                raise ValueError(f"sample {k}: label rows must be (G, 5), got {tuple(target.shape)}")
            rows.append(target.float())
            images.append(image.as_subclass(torch.Tensor).float())
            continue
        boxes, labels = target["boxes"], torch.as_tensor(target["labels"])
        if isinstance(boxes, tv_tensors.BoundingBoxes) and boxes.format != tv_tensors.BoundingBoxFormat.XYXY:
            raise ValueError(f"sample {k}: boxes must be in XYXY format, got {boxes.format}")
        boxes = torch.as_tensor(boxes).as_subclass(torch.Tensor).float().reshape(-1, 4)
        if len(boxes) != len(labels):
            raise ValueError(f"sample {k}: {len(boxes)} boxes but {len(labels)} labels")
        rows.append(torch.cat((labels.float().reshape(-1, 1), to_normalized(boxes, int(w), int(h))), dim=1))
        images.append(image.as_subclass(torch.Tensor).float())
    g_max = max(len(r) for r in rows)
    labels = torch.zeros((len(rows), g_max, 5), dtype=torch.float32)
    labels[:, :, 0] = -1
    for i, r in enumerate(rows):
        labels[i, :len(r)] = r
    return torch.stack(images), labels
