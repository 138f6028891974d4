"""A detector is one object: the network and everything needed to use it.

:class:`Detector` holds a trained SSD network together with what must travel
with its weights, always:

* the **model** (its name in :data:`d2lssd.models.registry.MODELS`, and the
  anchors per level it was built with);
* the **input size** ``(H, W)`` in pixels and the **input convention**:
  uint8 RGB, EXIF orientation applied (as labelling tools and browsers show
  a photo), resized to ``(H, W)`` (bilinear with antialiasing, aspect ratio
  not kept: :class:`d2lssd.transforms.SSDEvalTransform`'s resize), then
  ``x = uint8 / pixel_scale`` as float32 (``pixel_scale`` 1: [0, 255] as d2l's
  TinySSD; 255: [0, 1] as the ResNet-34 SSD);
* the **class names** and the data set's ids of those classes (COCO
  ``category_id``; ``None`` where the data had none);
* the **post-processing** (:class:`PostProcess`: the SSD paper's inference by
  default, d2l's where the d2l chapters teach it; thresholds, top-k).

``detector.detect(images)`` takes images of any size (paths, PIL images,
uint8 tensors) and returns detections in the pixels of those images.
:meth:`Detector.save` writes it as a checkpoint and :func:`load_detector`
reads any checkpoint of any trainer back (the one checkpoint format,
:mod:`d2lssd.engine.checkpoint`). The ONNX graph (:mod:`d2lssd.export`) is
built from a detector: same preprocessing, anchors and post-processing.

Source: torchvision's ``models/detection/ssd.py`` (an ``SSD`` module owns its
``GeneralizedRCNNTransform`` and ``postprocess_detections`` and returns
boxes in the pixels of the input images); Liu et al. 2016 §3 "Inference".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .boxes import scale_boxes_to_pixels
from .models.registry import INPUT_CONVENTION, PIXEL_SCALES, build_model, get_model, model_name_of
from .postprocess import multibox_detection, ssd_postprocess

__all__ = ["PostProcess", "Detector", "load_detector", "detector_spec", "evaluate_detector", "evaluation_of",
           "EVALUATION"]

#: The post-processing fields AP is measured with: the detector's, but scores down to 0.01 and 200
#: detections per image (AP needs the low-scoring detections; COCO's and the SSD paper's evaluations).
EVALUATION = {"score_threshold": 0.01, "top_k": 200}

_SEMANTICS = ("paper", "d2l")


def _unit(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")
    return float(v)


@dataclass(frozen=True)
class PostProcess:
    """The one post-processing: class scores and offsets of every anchor -> detections.

    Attributes:
        semantics: ``"paper"`` (default): the SSD paper's and torchvision's
            inference, :func:`d2lssd.ssd_postprocess`: every class whose
            probability is strictly above ``score_threshold`` proposes a box,
            boxes clipped to the image, ``candidates_per_class`` best per class
            go to per-class NMS, the ``top_k`` best survivors per image are
            kept. ``"d2l"``: d2l's :func:`d2lssd.multibox_detection`: each
            anchor proposes its most probable class, kept if its probability
            is at least ``score_threshold``; NMS per class (or across classes
            with ``class_agnostic``); ``top_k`` caps the candidates.
        score_threshold: in [0, 1] (0.5; evaluations use 0.01).
        nms_threshold: IoU above which the lower-scoring box is suppressed (0.45, the paper's).
        top_k: detections per image at most (200, the paper's); ``None``: 200
            for ``"paper"``, all candidates for ``"d2l"``.
        candidates_per_class: ``"paper"`` only (400, torchvision's).
        class_agnostic: ``"d2l"`` only: NMS across classes, as d2l.

    Calling it: ``postprocess(cls_preds, bbox_preds, anchors)`` with the
    network's outputs (logits ``(B, A, q + 1)``, offsets ``(B, A * 4)``,
    anchors ``(1, A, 4)`` normalized corners) returns a list of ``B`` float
    tensors ``(K_i, 6)``, rows ``(class, score, xmin, ymin, xmax, ymax)``
    (class ``0 .. q - 1``, boxes normalized corners), by descending score, on
    the outputs' device.

    Raises:
        ValueError: on construction, a value outside the ranges above or an
            unknown ``semantics``; the message names the field.

    Source: Liu et al. 2016 §3 "Inference"; d2l.ai §14.4.4 for ``"d2l"``.
    """

    semantics: str = "paper"
    score_threshold: float = 0.5
    nms_threshold: float = 0.45
    top_k: int | None = 200
    candidates_per_class: int = 400
    class_agnostic: bool = False

    def __post_init__(self):
        if self.semantics not in _SEMANTICS:
            raise ValueError(f"semantics must be one of {', '.join(_SEMANTICS)}, got {self.semantics!r}")
        object.__setattr__(self, "score_threshold", _unit("score_threshold", self.score_threshold))
        object.__setattr__(self, "nms_threshold", _unit("nms_threshold", self.nms_threshold))
        for name in ("top_k", "candidates_per_class"):
            v = getattr(self, name)
            if v is None and name == "top_k":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.class_agnostic, bool):
            raise ValueError(f"class_agnostic must be True or False, got {self.class_agnostic!r}")
        if self.class_agnostic and self.semantics == "paper":
            raise ValueError("class_agnostic=True needs semantics='d2l' (the paper's NMS is per class)")

    @property
    def detections_per_image(self) -> int | None:
        """At most this many detections per image (``None``: no cap, d2l's default)."""
        if self.top_k is None:
            return 200 if self.semantics == "paper" else None
        return self.top_k

    def replace(self, **changes) -> "PostProcess":
        """A copy with some fields changed (checked again); ``None`` values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        """Plain data (stored in checkpoints and the ONNX metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PostProcess":
        """The settings :meth:`to_dict` wrote (unknown keys refused: ``ValueError``)."""
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown post-processing settings {unknown}")
        return cls(**d)

    def __call__(self, cls_preds: torch.Tensor, bbox_preds: torch.Tensor, anchors: torch.Tensor) -> list:
        B = cls_preds.shape[0]
        probs = F.softmax(cls_preds.float(), dim=2).permute(0, 2, 1)
        offsets = bbox_preds.float().reshape(B, -1)
        if self.semantics == "paper":
            out = ssd_postprocess(probs, offsets, anchors, nms_threshold=self.nms_threshold,
                                  score_threshold=self.score_threshold, topk_candidates=self.candidates_per_class,
                                  detections_per_img=self.detections_per_image)
        else:
            out = multibox_detection(probs, offsets, anchors, nms_threshold=self.nms_threshold,
                                     pos_threshold=self.score_threshold, top_k=self.top_k,
                                     class_agnostic=self.class_agnostic)
        return [o[o[:, 0] >= 0] for o in out]


@torch.no_grad()
def run_postprocessed(net: nn.Module, x: torch.Tensor, post: PostProcess, device=None) -> list:
    """The network in eval mode on a preprocessed batch, then ``post``: the one inference path.

    Args:
        net: returns ``(anchors, cls_preds, bbox_preds)``; its train/eval mode is restored.
        x: float ``(B, 3, H, W)`` in the network's input convention (checked by the callers).
        post: the :class:`PostProcess`.
        device: where to run (``net`` is moved there); default the device of ``net``'s parameters.

    Returns:
        a list of ``B`` float32 CPU tensors ``(K_i, 6)`` (``(class, score,
        xmin, ymin, xmax, ymax)``, normalized corners); ``[]`` for ``B = 0``.

    Used by :meth:`Detector.predict` and :func:`d2lssd.predict`. Source: ours.
    """
    from .engine.batch_loss import is_channels_last, net_device, to_input

    if x.shape[0] == 0:
        return []
    if device is None:
        device = net_device(net)
    else:
        device = torch.device(device)
        net.to(device)
    was_training = net.training
    net.eval()
    try:
        anchors, cls_preds, bbox_preds = net(to_input(x, device, is_channels_last(net)))
    finally:
        net.train(was_training)
    return [d.cpu() for d in post(cls_preds, bbox_preds, anchors)]


def _size2(input_size, name: str = "input_size") -> tuple[int, int]:
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        input_size = (input_size, input_size)
    try:
        h, w = (int(v) for v in input_size)
        ok = all(not isinstance(v, bool) and int(v) == v for v in input_size) and h > 0 and w > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a positive integer or (H, W), got {input_size!r}")
    return h, w


def _as_image(image) -> torch.Tensor:
    from .photos import as_uint8_image

    return as_uint8_image(image)


class Detector(nn.Module):
    """A trained SSD with its input convention, anchors, classes and post-processing.

    Args:
        net: the network, mapping float images ``(B, 3, H, W)`` (the input
            convention) to ``(anchors (1, A, 4), cls_preds (B, A, q + 1),
            bbox_preds (B, A * 4))``; an instance of a registered model
            (:data:`d2lssd.models.registry.MODELS`).
        model: its registry name (default: found from ``net``'s class).
        class_names: ``q`` non-empty names in class order (default ``class0 ...``).
        category_ids: the data set's id of each class (COCO ``category_id``)
            or ``None`` (default: none).
        input_size: ``(H, W)`` or one side in pixels (default the registry's).
        pixel_scale: 1 (the network takes [0, 255]) or 255 ([0, 1]); default
            the registry's. Every trainer of this package feeds the registry's.
        postprocess: a :class:`PostProcess` (default the paper's inference,
            score 0.5, NMS 0.45, 200 per image) or a dict of its fields.

    Attributes: ``net``, ``model``, ``class_names``, ``category_ids``,
    ``input_size``, ``pixel_scale``, ``postprocess`` and :attr:`spec`.

    ``forward(x)`` is ``net(x)`` on images already preprocessed (see
    :meth:`preprocess`).

    Raises:
        ValueError: an unregistered model, a ``class_names`` of the wrong
            length, a bad size or pixel scale, an input size below the
            model's ``MIN_SIZE``.

    Source: torchvision's ``SSD`` (a detection model that owns its transform
    and post-processing).
    """

    def __init__(self, net: nn.Module, *, model: str | None = None, class_names: Sequence[str] | None = None,
                 category_ids: Sequence[int | None] | None = None, input_size=None, pixel_scale: float | None = None,
                 postprocess: PostProcess | dict | None = None):
        super().__init__()
        name = model_name_of(net) if model is None else model
        entry = get_model(name)
        if not isinstance(net, entry.model_class):
            raise ValueError(f"net is a {type(net).__name__}, but model {name!r} is a {entry.model_class.__name__}")
        q = int(net.num_classes)
        names = [f"class{i}" for i in range(q)] if class_names is None else list(class_names)
        if len(names) != q or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError(f"class_names must be {q} non-empty strings (the model has {q} classes), got {names!r}")
        ids = None if category_ids is None else list(category_ids)
        if ids is not None and (len(ids) != q or not all(i is None or (isinstance(i, int) and not isinstance(i, bool))
                                                          for i in ids)):
            raise ValueError(f"category_ids must be {q} integers (or None), got {ids!r}")
        if ids is not None and all(i is None for i in ids):
            ids = None
        h, w = _size2(entry.input_size if input_size is None else input_size)
        min_size = getattr(net, "MIN_SIZE", 1)
        if min(h, w) < min_size:
            raise ValueError(f"input_size {(h, w)} is below {type(net).__name__}'s minimum {min_size}")
        scale = entry.pixel_scale if pixel_scale is None else pixel_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or float(scale) not in PIXEL_SCALES:
            raise ValueError(f"pixel_scale must be 1 (pixels in [0, 255]) or 255 (in [0, 1]), got {scale!r}")
        if postprocess is None:
            postprocess = PostProcess()
        elif isinstance(postprocess, dict):
            postprocess = PostProcess.from_dict(postprocess)
        elif not isinstance(postprocess, PostProcess):
            raise ValueError(f"postprocess must be a PostProcess or a dict, got {type(postprocess).__name__}")
        self.net = net
        self.model = name
        self.class_names = names
        self.category_ids = ids
        self.input_size = (h, w)
        self.pixel_scale = float(scale)
        self.postprocess = postprocess

    # ------------------------------------------------------------------ the spec

    @property
    def num_classes(self) -> int:
        """Object classes ``q`` (background excluded)."""
        return int(self.net.num_classes)

    @property
    def spec(self) -> dict:
        """Everything but the weights, as plain data (stored as a checkpoint's ``"detector"``).

        Keys: ``model``, ``num_classes``, ``model_kwargs`` (``sizes``,
        ``ratios``: anchors per level), ``class_names``, ``category_ids``,
        ``input_size`` ``[H, W]``, ``input`` (``pixel_scale`` and
        :data:`d2lssd.models.registry.INPUT_CONVENTION`), ``postprocess`` (:meth:`PostProcess.to_dict`).
        """
        sizes = getattr(self.net, "sizes", None)
        ratios = getattr(self.net, "ratios", None)
        return {
            "model": self.model, "num_classes": self.num_classes,
            "model_kwargs": {"sizes": [list(map(float, s)) for s in sizes] if sizes is not None else None,
                             "ratios": [list(map(float, r)) for r in ratios] if ratios is not None else None},
            "class_names": list(self.class_names), "category_ids": self.category_ids,
            "input_size": list(self.input_size),
            "input": {"pixel_scale": self.pixel_scale, **INPUT_CONVENTION},
            "postprocess": self.postprocess.to_dict(),
        }

    @classmethod
    def from_spec(cls, spec: dict, state_dict: dict | None = None) -> "Detector":
        """Rebuild a detector from :attr:`spec` (random weights, or ``state_dict`` loaded strictly).

        Raises:
            ValueError: a spec that is not a dict of the keys above, an
                unknown model, an input convention this version does not
                know; RuntimeError: weights that do not fit (from PyTorch).
        """
        if not isinstance(spec, dict):
            raise ValueError(f"a detector spec must be a dict, got {type(spec).__name__}")
        missing = sorted({"model", "num_classes", "class_names", "input_size", "input", "postprocess"} - set(spec))
        if missing:
            raise ValueError(f"the detector spec lacks {missing}")
        conv = dict(spec["input"])
        scale = conv.pop("pixel_scale", None)
        if conv != INPUT_CONVENTION:
            raise ValueError(f"unknown input convention {conv}; this version knows {INPUT_CONVENTION}")
        kwargs = dict(spec.get("model_kwargs") or {})
        net = build_model(spec["model"], int(spec["num_classes"]), sizes=kwargs.get("sizes"),
                          ratios=kwargs.get("ratios"))
        if state_dict is not None:
            net.load_state_dict(state_dict)
        return cls(net, model=spec["model"], class_names=spec["class_names"], category_ids=spec.get("category_ids"),
                   input_size=spec["input_size"], pixel_scale=scale, postprocess=spec["postprocess"])

    def with_postprocess(self, **changes) -> "Detector":
        """The same detector (same network object) with some post-processing settings changed."""
        return Detector(self.net, model=self.model, class_names=self.class_names, category_ids=self.category_ids,
                        input_size=self.input_size, pixel_scale=self.pixel_scale,
                        postprocess=self.postprocess.replace(**changes))

    def save(self, path) -> Path:
        """Write the detector as a checkpoint (atomically; no optimizer, epoch 0); returns ``Path(path)``."""
        from .engine.checkpoint import save_checkpoint

        save_checkpoint(path, self.net, None, 0, None, detector=self.spec)
        return Path(path)

    # ------------------------------------------------------------------ using it

    def forward(self, x: torch.Tensor):
        return self.net(x)

    def preprocess(self, images) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Images as the network takes them: EXIF applied, resized, scaled.

        Args:
            images: a list of image paths, PIL images or uint8 tensors ``(3,
                H, W)`` (float tensors are taken as [0, 1]), any sizes; or a
                uint8 tensor ``(B, 3, H, W)``.

        Returns:
            ``(x, sizes)``: float32 ``(B, 3, H, W)`` on the CPU at
            :attr:`input_size`, ``uint8 / pixel_scale``; and the ``(height,
            width)`` of each original image in pixels.

        Raises:
            FileNotFoundError: a path with no file. ValueError: an image that
            cannot be read.
        """
        from torchvision.transforms.v2 import functional as TF

        if isinstance(images, torch.Tensor) and images.dim() == 4:
            images = list(images)
        elif not isinstance(images, (list, tuple)):
            images = [images]
        tensors = [_as_image(im) for im in images]
        sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in tensors]
        if not tensors:
            return torch.zeros((0, 3, *self.input_size)), sizes
        x = torch.stack([TF.resize(t, list(self.input_size), antialias=True) for t in tensors])
        return self.scale_pixels(x), sizes

    def scale_pixels(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 images at the input size -> float32 network input (``uint8 / pixel_scale``, as training did)."""
        from torchvision.transforms.v2 import functional as TF

        if self.pixel_scale == 255.0:
            return TF.to_dtype(x_uint8, torch.float32, scale=True)
        return x_uint8.to(torch.float32)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, **postprocess) -> list:
        """Detections on images already preprocessed: network, then :attr:`postprocess`.

        Args:
            x: float ``(B, 3, H, W)`` (:meth:`preprocess`'s output, or a
                loader's batch made with the same convention).
            **postprocess: :class:`PostProcess` fields to change for this call.

        Returns:
            a list of ``B`` float32 CPU tensors ``(K_i, 6)``: ``(class, score,
            xmin, ymin, xmax, ymax)``, boxes normalized corners, by descending score.

        Raises:
            ValueError: ``x`` not a float ``(B, 3, H, W)`` tensor.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
            raise ValueError("x must be a float tensor (B, 3, H, W), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        post = self.postprocess.replace(**postprocess) if postprocess else self.postprocess
        return run_postprocessed(self.net, x, post)

    def detect(self, images, batch_size: int = 8, **postprocess):
        """Detections on images of any size, boxes in the pixels of each image (clipped to it).

        Args:
            images: one image (a path, a PIL image, a tensor ``(3, H, W)``)
                or a list of them (sizes may differ), or a uint8 batch ``(B, 3, H, W)``.
            batch_size: images per forward pass (>= 1).
            **postprocess: :class:`PostProcess` fields to change for this
                call (e.g. ``score_threshold=0.3``).

        Returns:
            for a list or batch, a list of float32 CPU tensors ``(K_i, 6)``,
            rows ``(class, score, xmin, ymin, xmax, ymax)``, boxes in pixels of
            image ``i``, by descending score; for one image, one such tensor.

        Raises:
            FileNotFoundError, ValueError: an image that cannot be read, a bad
            ``batch_size`` or post-processing setting.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        single = not isinstance(images, (list, tuple)) and not (isinstance(images, torch.Tensor) and images.dim() == 4)
        items = [images] if single else list(images)
        out = []
        for i in range(0, len(items), batch_size):
            x, sizes = self.preprocess(items[i:i + batch_size])
            for d, (h, w) in zip(self.predict(x, **postprocess), sizes):
                out.append(scale_boxes_to_pixels(d, w, h))
        return out[0] if single else out

    def __repr__(self) -> str:
        return (f"Detector(model={self.model!r}, classes={self.class_names}, input_size={self.input_size}, "
                f"pixel_scale={self.pixel_scale:g}, postprocess={self.postprocess})")


def detector_spec(net: nn.Module, **kwargs) -> dict:
    """The spec of ``Detector(net, **kwargs)``: what a trainer stores next to ``net``'s weights.

    Raises:
        ValueError: what :class:`Detector` raises (e.g. an unregistered model).
    """
    return Detector(net, **kwargs).spec


def load_detector(checkpoint, device=None) -> Detector:
    """The detector stored in any checkpoint of this package, in eval mode.

    Every trainer (``d2lssd.train_ssd`` and so ``train_recipe``, the
    Penn-Fudan project, ``d2lssd train``) and :meth:`Detector.save` write the
    one checkpoint format (:mod:`d2lssd.engine.checkpoint`), whose
    ``"detector"`` entry is :attr:`Detector.spec`. Files of the earlier
    format are converted as :func:`d2lssd.engine.checkpoint.read_checkpoint`
    documents (the one place that does).

    Args:
        checkpoint: path of the file.
        device: where to put the network (default :func:`d2lssd.try_gpu`).

    Returns:
        a :class:`Detector` with the trained weights, in eval mode.

    Raises:
        FileNotFoundError: no file. ValueError: not a d2lssd checkpoint, or
        one that holds weights without a detector (the message says what to do).
    """
    from .device import try_gpu
    from .engine.checkpoint import read_checkpoint

    path = Path(checkpoint)
    state = read_checkpoint(path)
    spec = state.get("detector")
    if not isinstance(spec, dict):
        raise ValueError(f"{path} holds weights without a detector spec (a model d2lssd does not know, or an "
                         "old train_ssd checkpoint): build the model, load the weights with "
                         "d2lssd.load_checkpoint(path, net), then d2lssd.Detector(net, class_names=...).save(path)")
    try:
        det = Detector.from_spec(spec, state["model"])
    except RuntimeError as e:
        raise ValueError(f"{path}: the weights do not fit the detector spec: {str(e).splitlines()[0]}") from e
    return det.to(torch.device(device) if device is not None else try_gpu()).eval()


def evaluate_detector(detector: Detector, data, batch_size: int = 8) -> dict:
    """COCO AP (AP50, AP75, AP@[.5:.95], per class) of a detector on a data set or loader: the one evaluation.

    The detections are :meth:`Detector.predict`'s with the detector's
    post-processing and :data:`EVALUATION` (scores down to 0.01, 200 per
    image); AP is :func:`d2lssd.mean_average_precision` (COCO's 101-point
    interpolation, equal to pycocotools' on the same detections, averaged over
    the classes with ground truth) on normalized boxes. ``d2lssd evaluate``,
    the trainer's validation after every epoch and
    :func:`d2lssd.pennfudan.evaluate` all call it.

    Args:
        detector: a :class:`Detector`.
        data: a ``DataLoader`` of ``(images, labels)`` batches (float images in
            the detector's input convention and size, labels ``(B, G, 5)``
            normalized, padding class -1), or a dataset of ``(image, target)``
            samples after the detector's eval transform (collated with
            :func:`d2lssd.data.collate_ssd`).
        batch_size: images per forward pass for a dataset (>= 1).

    Returns:
        what :func:`d2lssd.mean_average_precision` returns, plus
        ``"per_class"`` ``{class name: AP50}`` for the classes with ground
        truth, ``"per_class_table"`` ``{class name: {"AP50", "AP75", "AP",
        "boxes", "detections"}}`` (the APs NaN for a class without ground
        truth; ``detections`` at the detector's own score threshold),
        ``"num_images"``, ``"detections"`` and ``"targets"`` (per image).

    Raises:
        ValueError: a bad ``batch_size``; what :meth:`Detector.predict` and
        the collate function raise (images of different sizes, bad labels).

    Source: ours; COCO's evaluation protocol (``maxDets`` 100; we keep 200 as the SSD paper's evaluation).
    """
    if isinstance(data, torch.utils.data.DataLoader):
        loader = data
    else:
        from .data.collate import collate_ssd

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        loader = torch.utils.data.DataLoader(data, batch_size, collate_fn=collate_ssd)
    dets, targets = [], []
    for batch in loader:
        X, Y = batch[0], batch[1]
        dets += detector.predict(X, **EVALUATION)
        targets += list(Y)
    return evaluation_of(dets, targets, detector.class_names)


def evaluation_of(detections: list, targets: list, class_names: Sequence[str]) -> dict:
    """:func:`evaluate_detector`'s result from detections already made (e.g. by :func:`d2lssd.tiling.tiled_detect`).

    Args:
        detections: per image, float ``(K_i, 6)`` rows ``(class, score, xmin,
            ymin, xmax, ymax)``, boxes normalized corners (scores down to
            :data:`EVALUATION`'s 0.01 for an honest AP).
        targets: per image, float ``(G_i, 5)`` rows ``(class, xmin, ymin, xmax,
            ymax)`` normalized, padding class -1.
        class_names: the ``q`` class names.

    Returns:
        what :func:`evaluate_detector` returns (the same keys).

    Raises:
        ValueError: what :func:`d2lssd.mean_average_precision` raises.
    """
    from .metrics import mean_average_precision

    result = mean_average_precision(detections, targets)
    result["per_class"] = {class_names[int(c)]: float(ap) for c, ap in result["AP50_per_class"].items()
                           if not math.isnan(ap)}
    result.update(num_images=len(detections), detections=detections, targets=targets)
    result["per_class_table"] = _per_class_table(result, class_names)
    return result


def _per_class_table(result: dict, names) -> dict:
    """AP50, AP75 and AP@[.5:.95] per class from ``result["precision"]`` ``(T, K, R)`` (K: ``result["classes"]``)."""
    prec, ious = result["precision"], list(result["iou_thresholds"])
    boxes = torch.zeros(len(names), dtype=torch.int64)
    for t in result["targets"]:
        t = t[t[:, 0] >= 0]
        boxes += torch.bincount(t[:, 0].long(), minlength=len(names))[:len(names)]
    table = {}
    for c, name in enumerate(names):
        row = {"AP50": math.nan, "AP75": math.nan, "AP": math.nan, "boxes": int(boxes[c])}
        if c in result["classes"] and prec.dim() == 3:
            p = prec[:, result["classes"].index(c)]
            if (p > -1).all():
                row["AP"] = float(p.mean())
                for key, iou in (("AP50", 0.5), ("AP75", 0.75)):
                    hit = [i for i, u in enumerate(ious) if abs(u - iou) < 1e-9]
                    if hit:
                        row[key] = float(p[hit[0]].mean())
        table[name] = row
    return table
