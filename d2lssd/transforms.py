"""SSD data augmentation with ``torchvision.transforms.v2`` and ``tv_tensors``.

A sample is ``(image, target)``: ``image`` a ``tv_tensors.Image`` (uint8
``(3, H, W)``), ``target`` a dict with ``"boxes"`` (``tv_tensors.BoundingBoxes``
XYXY in pixels), ``"masks"`` (``tv_tensors.Mask`` ``(G, H, W)``, optional),
``"labels"`` (int64 ``(G,)``) and any other entries, which are passed through
(as :class:`d2lssd.data.PennFudanDataset` returns). Because boxes and masks
are tv_tensors, every geometric step moves them with the image, and
``SanitizeBoundingBoxes`` drops a box together with its mask and label.

The training pipeline (:class:`SSDTrainTransform`) is the SSD paper's
augmentation as in torchvision's ``references/detection`` "ssd" preset,
with an object-centred crop suited to small, thin objects:

1. photometric distortion (brightness, contrast, saturation, hue, channel order);
2. zoom out: the image placed on a larger canvas filled with the mean colour;
3. one crop, chosen at random: :class:`RandomObjectCrop` (a window around a
   randomly chosen ground-truth box), a random resized crop, or none;
4. horizontal flip; 5. resize to ``size x size``; 6. ``SanitizeBoundingBoxes``;
7. conversion to float32 in [0, 1].

Nothing loops without a bound: :class:`RandomObjectCrop` tries at most
``max_trials`` windows and otherwise returns its input unchanged;
torchvision's ``RandomResizedCrop`` tries 10 windows and then takes a
centre crop. A training sample never ends without boxes: if the crop lost
every box the pipeline is run again without the crop, and if even that
loses them (boxes too small to survive the resize), the sample is the
resized image with its largest original box (:meth:`SSDTrainTransform.largest_box_sample`).
Counters in ``.stats`` record how often each path was taken.

Source: Liu et al. 2016 §3 "Data augmentation" (photometric distortions,
zoom out, sampled patches, flip); torchvision ``references/detection/presets.py``
("ssd" preset: ``RandomPhotometricDistort``, ``RandomZoomOut``,
``RandomIoUCrop``, ``RandomHorizontalFlip``, ``SanitizeBoundingBoxes``).
"""

from __future__ import annotations

import math
from collections import Counter

import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

__all__ = ["MEAN_RGB", "RandomObjectCrop", "SSDTrainTransform", "SSDEvalTransform",
           "tighten_boxes_to_masks"]

#: ImageNet mean colour as uint8 RGB: the fill of zoomed-out canvases.
MEAN_RGB = (124, 116, 104)


def _check_pixel_scale(pixel_scale) -> float:
    if isinstance(pixel_scale, bool) or not isinstance(pixel_scale, (int, float)) or float(pixel_scale) not in (1.0, 255.0):
        raise ValueError(f"pixel_scale must be 1 (keep 0..255) or 255 (to [0, 1]), got {pixel_scale!r}")
    return float(pixel_scale)


def _num_boxes(target: dict) -> int:
    return int(target["boxes"].shape[0])


def _select(target: dict, keep: torch.Tensor) -> dict:
    """``target`` with only the objects ``keep`` (bool or index tensor) in boxes, masks and labels."""
    out = dict(target)
    for key in ("boxes", "masks", "labels"):
        if key in out and isinstance(out[key], torch.Tensor):
            value = out[key]
            picked = value.as_subclass(torch.Tensor)[keep]
            out[key] = tv_tensors.wrap(picked, like=value) if isinstance(
                value, (tv_tensors.BoundingBoxes, tv_tensors.Mask)) else picked
    return out


def _visible_fraction(boxes: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Share of each box's area inside ``window``: boxes ``(G, 4)``, window ``(4,)`` (XYXY) -> ``(G,)``."""
    lt = torch.maximum(boxes[:, :2], window[:2])
    rb = torch.minimum(boxes[:, 2:], window[2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(dim=1)
    return torch.where(area > 0, inter / area.clamp(min=1e-12), torch.zeros_like(area))


def _mask_fraction(masks: torch.Tensor, left: int, top: int, w: int, h: int) -> torch.Tensor:
    """Share of each mask's pixels inside the window: masks ``(G, H, W)`` -> float ``(G,)`` (0 if empty)."""
    m = masks.as_subclass(torch.Tensor) != 0
    total = m.flatten(1).sum(1)
    inside = m[:, top:top + h, left:left + w].flatten(1).sum(1)
    return torch.where(total > 0, inside / total.clamp(min=1), torch.zeros_like(total, dtype=torch.float32))


def tighten_boxes_to_masks(target: dict) -> dict:
    """Shrink each box to the pixels of its mask, after a crop cut both.

    A crop keeps the part of a box inside the window, which can be much
    larger than the part of the object inside it (a window through a
    pedestrian's legs keeps a box of mostly background). With masks the
    box is recomputed as the tight half-open pixel box of the mask
    (``masks_to_boxes`` + 1 on the far corner), intersected with the old
    box; an object whose mask lost all its pixels gets an empty box, which
    ``SanitizeBoundingBoxes`` then removes with its mask and label.

    Args:
        target: dict with ``"boxes"`` (``BoundingBoxes`` XYXY, ``(G, 4)``)
            and optionally ``"masks"`` (``Mask`` ``(G, H, W)``). Without
            masks it is returned unchanged.

    Returns:
        A new dict (other entries shared) with the boxes tightened.
    """
    masks = target.get("masks")
    boxes = target["boxes"]
    if masks is None or len(boxes) == 0 or masks.shape[0] != boxes.shape[0]:
        return target
    m = masks.as_subclass(torch.Tensor) != 0
    rows, cols = m.any(dim=2), m.any(dim=1)  # (G, H), (G, W)
    nonempty = rows.any(dim=1)
    h, w = m.shape[-2:]
    ar_h = torch.arange(h, device=m.device)
    ar_w = torch.arange(w, device=m.device)
    big = torch.tensor(max(h, w) + 1, device=m.device)
    y1 = torch.where(rows, ar_h, big).amin(dim=1)
    y2 = torch.where(rows, ar_h, -1).amax(dim=1) + 1
    x1 = torch.where(cols, ar_w, big).amin(dim=1)
    x2 = torch.where(cols, ar_w, -1).amax(dim=1) + 1
    mb = torch.stack((x1, y1, x2, y2), dim=1).to(torch.float32)
    b = boxes.as_subclass(torch.Tensor).float()
    tight = torch.cat((torch.maximum(b[:, :2], mb[:, :2]), torch.minimum(b[:, 2:], mb[:, 2:])), dim=1)
    tight = torch.where(nonempty[:, None], tight, torch.zeros_like(tight))
    tight[:, 2:] = torch.maximum(tight[:, 2:], tight[:, :2])  # never inverted
    out = dict(target)
    out["boxes"] = tv_tensors.wrap(tight.to(boxes.dtype), like=boxes)
    return out


def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(()))


class RandomObjectCrop(nn.Module):
    """Crop a window around a randomly chosen ground-truth box (bounded retries).

    For each trial: pick the context ``c`` uniformly in ``context`` and the
    window's aspect ``a`` (width / height, pixels) log-uniformly in
    ``aspect``; the window is ``c`` times the target box in its limiting
    direction (height ``c * max(h_box, w_box / a)``, width ``a`` times
    that), clipped to the image. It is rejected if its aspect (after
    clipping) leaves ``aspect``, or its area leaves
    ``[min_area, max_area]`` of the image's. It is placed uniformly among the
    positions that contain the whole target (or anywhere if none does) and
    rejected if less than ``min_visibility`` of the target is inside.
    Other objects are kept if at least ``keep_threshold`` of them is inside
    the window, and dropped (with their masks and labels) otherwise; the
    target is always kept. "Of them" means of their mask pixels when the
    target has ``"masks"``, else of their box area. Boxes and masks are
    cropped with the image, then each box is shrunk to its mask's pixels
    (:func:`tighten_boxes_to_masks`).

    After ``max_trials`` rejected windows the sample is returned unchanged
    (the clean fallback). Samples without boxes are returned unchanged.

    Args:
        context: range of the context multiplier ``c`` (>= 1: the window is
            at least as large as the target).
        aspect: range of the window's width / height.
        min_area, max_area: bounds of the window's area as a share of the image's.
        min_visibility: share of the target (mask pixels, else box area) that must be inside.
        keep_threshold: share of another object that must be inside to keep it.
        max_trials: windows tried before giving up (>= 1).
        p: probability of cropping at all.

    ``forward(image, target) -> (image, target)``; ``image`` any tv_tensor
    image ``(C, H, W)``; ``target`` as in the module docstring.

    Attributes:
        stats: ``Counter`` with ``calls``, ``trials`` (windows tried),
            ``cropped``, ``gave_up`` (``max_trials`` rejections), ``skipped``
            (by ``p`` or for lack of boxes). ``last_trials``: trials of the
            last call.

    Raises:
        ValueError: bounds out of range (at construction).

    Source: the object-centred crop of issue 10 (SSD's "sample a patch"
    step, Liu et al. 2016 §3, centred on an object instead of sampled
    blindly, so that thin pedestrians are not missed by IoU-constrained
    crops that may never succeed).
    """

    def __init__(self, context=(1.5, 4.0), aspect=(0.5, 2.0), min_area: float = 0.05,
                 max_area: float = 1.0, min_visibility: float = 0.7, keep_threshold: float = 0.5,
                 max_trials: int = 20, p: float = 1.0):
        super().__init__()
        if not (1.0 <= context[0] <= context[1]):
            raise ValueError(f"context must be (lo, hi) with 1 <= lo <= hi, got {context}")
        if not (0 < aspect[0] <= aspect[1]):
            raise ValueError(f"aspect must be (lo, hi) with 0 < lo <= hi, got {aspect}")
        if not (0 <= min_area <= max_area <= 1 and max_area > 0):
            raise ValueError(f"need 0 <= min_area <= max_area <= 1, got {min_area}, {max_area}")
        for name, v in (("min_visibility", min_visibility), ("keep_threshold", keep_threshold), ("p", p)):
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if isinstance(max_trials, bool) or int(max_trials) != max_trials or max_trials < 1:
            raise ValueError(f"max_trials must be a positive integer, got {max_trials!r}")
        self.context = (float(context[0]), float(context[1]))
        self.aspect = (float(aspect[0]), float(aspect[1]))
        self.min_area, self.max_area = float(min_area), float(max_area)
        self.min_visibility, self.keep_threshold = float(min_visibility), float(keep_threshold)
        self.max_trials, self.p = int(max_trials), float(p)
        self.stats: Counter = Counter()
        self.last_trials = 0

    def window(self, boxes: torch.Tensor, height: int, width: int, target_index: int,
               masks: torch.Tensor | None = None):
        """Search a window around box ``target_index``: ``(left, top, w, h) or None, trials``.

        Args:
            boxes: float ``(G, 4)`` pixel XYXY boxes; height, width: the image size.
            target_index: the box to centre on.
            masks: optional ``(G, H, W)`` instance masks: visibility is then
                the share of the target's mask pixels inside the window
                (else the share of its box area).

        Returns:
            ``(window, trials)``: ``window`` integer pixels ``(left, top,
            width, height)`` inside the image, or ``None`` after
            ``max_trials`` rejections; ``trials`` <= ``max_trials``.
        """
        x1, y1, x2, y2 = (float(v) for v in boxes[target_index])
        bw, bh = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
        image_area = float(height * width)
        log_a = (math.log(self.aspect[0]), math.log(self.aspect[1]))
        for trial in range(1, self.max_trials + 1):
            c = _uniform(*self.context)
            a = math.exp(_uniform(*log_a))
            ch = c * max(bh, bw / a)
            cw = min(float(width), a * ch)
            ch = min(float(height), ch)
            cw, ch = max(1, int(round(cw))), max(1, int(round(ch)))
            if not (self.aspect[0] <= cw / ch <= self.aspect[1]):
                continue
            if not (self.min_area <= cw * ch / image_area <= self.max_area):
                continue
            left = self._place(x1, x2, cw, width)
            top = self._place(y1, y2, ch, height)
            if masks is not None:
                vis = _mask_fraction(masks[target_index:target_index + 1], left, top, cw, ch)[0]
            else:
                win = torch.tensor([left, top, left + cw, top + ch], dtype=torch.float32)
                vis = _visible_fraction(boxes[target_index:target_index + 1].float(), win)[0]
            if vis < self.min_visibility:
                continue
            return (left, top, cw, ch), trial
        return None, self.max_trials

    @staticmethod
    def _place(lo_edge: float, hi_edge: float, size: int, limit: int) -> int:
        """A start in [0, limit - size], uniform among those containing [lo_edge, hi_edge] if any."""
        lo, hi = max(0.0, hi_edge - size), min(lo_edge, float(limit - size))
        if lo > hi:  # the object does not fit: anywhere in the image
            lo, hi = 0.0, float(limit - size)
        return int(min(limit - size, max(0, math.floor(_uniform(lo, hi)))))

    def forward(self, image, target: dict):
        self.stats["calls"] += 1
        self.last_trials = 0
        n = _num_boxes(target)
        if n == 0 or float(torch.rand(())) >= self.p:
            self.stats["skipped"] += 1
            return image, target
        height, width = F.get_size(image)
        boxes = target["boxes"].as_subclass(torch.Tensor).float()
        masks = target.get("masks")
        if masks is not None and masks.shape[0] != n:
            masks = None
        t = int(torch.randint(n, ()))
        win, trials = self.window(boxes, height, width, t, masks)
        self.last_trials = trials
        self.stats["trials"] += trials
        if win is None:
            self.stats["gave_up"] += 1
            return image, target
        left, top, cw, ch = win
        if masks is not None:
            keep = _mask_fraction(masks, left, top, cw, ch) >= self.keep_threshold
        else:
            w = torch.tensor([left, top, left + cw, top + ch], dtype=torch.float32)
            keep = _visible_fraction(boxes, w) >= self.keep_threshold
        keep[t] = True
        out = {k: (F.crop(v, top, left, ch, cw) if isinstance(v, (tv_tensors.BoundingBoxes, tv_tensors.Mask))
                   else v) for k, v in target.items()}
        self.stats["cropped"] += 1
        return F.crop(image, top, left, ch, cw), tighten_boxes_to_masks(_select(out, keep))

    def extra_repr(self) -> str:
        return (f"context={self.context}, aspect={self.aspect}, area=[{self.min_area}, {self.max_area}], "
                f"min_visibility={self.min_visibility}, keep_threshold={self.keep_threshold}, "
                f"max_trials={self.max_trials}, p={self.p}")


class SSDTrainTransform(nn.Module):
    """The SSD training augmentation; never returns a sample without boxes if it got one.

    ``forward(image, target) -> (image, target)``: ``image`` uint8
    ``tv_tensors.Image`` ``(3, H, W)`` in, float32 ``tv_tensors.Image``
    ``(3, size, size)`` = uint8 / ``pixel_scale`` out ([0, 1] by default); ``target["boxes"]`` XYXY pixels of the
    output image, inside it, each at least ``min_size`` px wide and high;
    ``target["masks"]`` (if given) and ``target["labels"]`` filtered with them.
    Other entries pass through.

    Steps (see the module docstring): ``RandomPhotometricDistort(p=p_photometric)``,
    ``RandomZoomOut(fill=MEAN_RGB, side_range=zoom_out, p=p_zoom_out)``; then with
    probability ``p_object_crop`` the :class:`RandomObjectCrop` ``object_crop``,
    else with probability ``p_resized_crop`` a ``RandomResizedCrop(size,
    resized_crop_scale, resized_crop_ratio)``, else no crop;
    ``RandomHorizontalFlip(p_flip)``, ``Resize((size, size))``,
    ``SanitizeBoundingBoxes(min_size)``, ``ToDtype(float32, scale=True)``
    (``pixel_scale`` 255, the default: [0, 1]; ``pixel_scale`` 1 keeps
    0..255, the input convention of TinySSD in the model registry,
    :mod:`d2lssd.models.registry`).

    Fallbacks, in order, when the output has no box but the input had one:
    the same steps without the crop (new random draws); then
    :meth:`largest_box_sample`. Each runs at most once: a call costs at most
    three passes and ``object_crop.max_trials`` window trials.

    Attributes:
        object_crop: the :class:`RandomObjectCrop`.
        stats: ``Counter`` with ``calls``, ``object_crop``,
            ``resized_crop``, ``no_crop`` (the crop chosen), ``fallback_no_crop``,
            ``fallback_largest_box`` (fallbacks taken). With ``DataLoader``
            workers each worker counts in its own copy.

    Raises:
        ValueError: probabilities outside [0, 1] or ``p_object_crop +
            p_resized_crop > 1``; ``size < 1``; ``pixel_scale`` not 1 or 255.

    Source: torchvision ``references/detection/presets.py`` ("ssd"); Liu et al. 2016 §3.
    """

    def __init__(self, size: int = 300, p_photometric: float = 0.5, zoom_out=(1.0, 4.0),
                 p_zoom_out: float = 0.5, p_object_crop: float = 0.5, p_resized_crop: float = 0.25,
                 resized_crop_scale=(0.3, 1.0), resized_crop_ratio=(0.5, 2.0), p_flip: float = 0.5,
                 object_crop: RandomObjectCrop | None = None, min_size: float = 1.0, pixel_scale: float = 255.0):
        super().__init__()
        for name, v in (("p_photometric", p_photometric), ("p_zoom_out", p_zoom_out),
                        ("p_object_crop", p_object_crop), ("p_resized_crop", p_resized_crop),
                        ("p_flip", p_flip)):
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if p_object_crop + p_resized_crop > 1:
            raise ValueError("p_object_crop + p_resized_crop must be <= 1")
        if isinstance(size, bool) or int(size) != size or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        self.size = int(size)
        self.p_object_crop, self.p_resized_crop = float(p_object_crop), float(p_resized_crop)
        self.min_size = float(min_size)
        self.photometric = v2.RandomPhotometricDistort(p=p_photometric)
        self.zoom_out = v2.RandomZoomOut(fill={tv_tensors.Image: MEAN_RGB, "others": 0},
                                         side_range=tuple(zoom_out), p=p_zoom_out)
        self.object_crop = object_crop if object_crop is not None else RandomObjectCrop()
        self.resized_crop = v2.RandomResizedCrop((self.size, self.size), scale=tuple(resized_crop_scale),
                                                 ratio=tuple(resized_crop_ratio), antialias=True)
        self.flip = v2.RandomHorizontalFlip(p_flip)
        self.resize = v2.Resize((self.size, self.size), antialias=True)
        self.sanitize = v2.SanitizeBoundingBoxes(min_size=self.min_size)
        self.pixel_scale = _check_pixel_scale(pixel_scale)
        self.to_float = v2.ToDtype(torch.float32, scale=self.pixel_scale == 255.0)
        self.stats: Counter = Counter()

    def _run(self, image, target, crop: bool):
        image, target = self.photometric(image, target)
        image, target = self.zoom_out(image, target)
        if crop:
            r = float(torch.rand(()))
            if r < self.p_object_crop:
                self.stats["object_crop"] += 1
                image, target = self.object_crop(image, target)
            elif r < self.p_object_crop + self.p_resized_crop:
                self.stats["resized_crop"] += 1
                image, target = self.resized_crop(image, target)
                target = tighten_boxes_to_masks(target)
            else:
                self.stats["no_crop"] += 1
        image, target = self.flip(image, target)
        image, target = self.resize(image, target)
        image, target = self.sanitize(image, target)
        return self.to_float(image, target)

    def forward(self, image, target: dict):
        self.stats["calls"] += 1
        had_boxes = _num_boxes(target) > 0
        out = self._run(image, target, crop=True)
        if not had_boxes or _num_boxes(out[1]) > 0:
            return out
        self.stats["fallback_no_crop"] += 1
        out = self._run(image, target, crop=False)
        if _num_boxes(out[1]) > 0:
            return out
        self.stats["fallback_largest_box"] += 1
        return self.largest_box_sample(image, target)

    def largest_box_sample(self, image, target: dict):
        """The last fallback: the image resized to ``size x size`` with only its largest box.

        The box (and its mask and label) with the largest area is kept and
        resized with the image; if it is then thinner or lower than
        ``min_size`` px it is widened about its centre to ``min_size`` (inside
        the image). No randomness. A target without boxes is returned resized
        and without boxes.

        Returns:
            ``(image float32 (3, size, size) in [0, 1], target)``.
        """
        boxes = target["boxes"].as_subclass(torch.Tensor).float()
        if len(boxes):
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            target = _select(target, torch.argmax(area).reshape(1))
        image, target = self.resize(image, target)
        if _num_boxes(target):
            b = target["boxes"].as_subclass(torch.Tensor).clone().float()
            s = float(self.size)
            m = min(self.min_size, s)
            for lo, hi in ((0, 2), (1, 3)):
                short = (b[:, hi] - b[:, lo]) < m
                c = ((b[:, lo] + b[:, hi]) / 2).clamp(m / 2, s - m / 2)
                b[:, lo] = torch.where(short, c - m / 2, b[:, lo])
                b[:, hi] = torch.where(short, c + m / 2, b[:, hi])
            target = dict(target)
            target["boxes"] = tv_tensors.wrap(b.clamp(0, s), like=target["boxes"])
        return self.to_float(image, target)


class SSDEvalTransform(nn.Module):
    """Evaluation preprocessing: resize to ``size x size`` and convert to float32 (uint8 / ``pixel_scale``).

    ``forward(image, target=None)``: ``image`` a uint8 ``tv_tensors.Image``
    (or tensor) ``(3, H, W)``; returns ``(image, target)`` with boxes and
    masks resized with the image, or just the image when ``target`` is
    ``None``. Boxes are not removed. ``pixel_scale`` 255 (default) gives
    [0, 1], 1 keeps 0..255 (a model's input convention,
    :mod:`d2lssd.models.registry`); the resize is the one
    :meth:`d2lssd.Detector.preprocess` does.

    Raises:
        ValueError: ``size < 1``, ``pixel_scale`` not 1 or 255.
    """

    def __init__(self, size: int = 300, pixel_scale: float = 255.0):
        super().__init__()
        if isinstance(size, bool) or int(size) != size or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        self.size = int(size)
        self.pixel_scale = _check_pixel_scale(pixel_scale)
        self.resize = v2.Resize((self.size, self.size), antialias=True)
        self.to_float = v2.ToDtype(torch.float32, scale=self.pixel_scale == 255.0)

    def forward(self, image, target: dict | None = None):
        if not isinstance(image, tv_tensors.Image):
            image = tv_tensors.Image(image)
        if target is None:
            return self.to_float(self.resize(image))
        image, target = self.resize(image, target)
        return self.to_float(image, target)
