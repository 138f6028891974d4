"""Export a trained SSD to ONNX with the whole inference in the graph, and check it against PyTorch.

The exported graph takes images and returns detections; nothing of d2lssd or
PyTorch is needed to run it (``onnxruntime`` alone, in Python or, as
``onnxruntime-web``, in a browser):

* **inputs** ``images``: uint8 ``(B, 3, H, W)`` RGB, already resized to the
  model's input size ``H x W`` (fixed at export, recorded in the metadata;
  TinySSD 256 x 256, the Penn-Fudan ResNet-34 SSD 300 x 300), ``B`` dynamic;
  ``score_threshold``: float32 scalar, the minimum class probability of a
  detection; ``iou_threshold``: float32 scalar, the NMS threshold (a box is
  suppressed when its IoU with a higher-scoring kept box of the same class is
  strictly greater).
* **outputs** ``boxes``: float32 ``(B, K, 4)``, normalized corner format
  ``(xmin, ymin, xmax, ymax)`` in [0, 1] of the input (not clipped);
  ``scores``: float32 ``(B, K)``; ``classes``: int64 ``(B, K)``, ``0 .. q -
  1`` (background excluded, as :func:`d2lssd.predict`); ``num_detections``:
  int64 ``(B,)``. Row ``k < num_detections[b]`` of image ``b`` is a
  detection, by descending score (ties: lower anchor index first); the other
  rows are padding (class -1, score 0, box 0). ``K = top_k`` is fixed at export.

Inside the graph, in order: the preprocessing the model expects (uint8 to
float32, divided by 255 for the ResNet-34 SSD, whose normalization to
ImageNet statistics is part of the network; TinySSD takes pixels in
[0, 255]), the network, softmax, decoding of the offsets against the anchors
(a constant ``(A, 4)`` tensor, centre form; variances 0.1 and 0.2 and the log-size
clamp of :func:`d2lssd.offset_inverse`), the score threshold, per-class
non-maximum suppression (the ONNX ``NonMaxSuppression`` operator) and top-k.

What is fixed at export: the input size (so the anchors are constants), the
number of rows ``K`` (``top_k``, also the operator's ``max_output_boxes_per_class``);
what is a graph input: ``score_threshold`` and ``iou_threshold``.

Semantics matched: :func:`d2lssd.predict` with ``class_agnostic=False``, that
is :func:`d2lssd.multibox_detection` as it is in this version: each anchor
proposes one detection, its most probable non-background class with that
probability as the score; proposals with ``score >= score_threshold`` go
through NMS per image and class; the ``top_k`` best kept detections are
returned. (In the graph the other classes of an anchor get score -1 before
the operator, whose own score threshold is fixed at -0.5, so it sees exactly
these proposals; the operator's ``max_output_boxes_per_class = K`` loses
nothing, since at most ``K`` detections of an image are returned.) The one
place that states the reference is :func:`reference_detections`, and
:func:`compare_detections` the one that compares.

Next door: the book's live detector, which embeds such a graph in a page, is
:mod:`d2lssd.live`; the ``d2lssd export`` command is
:mod:`d2lssd.commands.export`. Their names (``live_detector``,
``LiveDetector``, ``add_arguments``, ``run``) are still reachable here.

Sources: the ONNX operator specification (``NonMaxSuppression``, opset 10+;
``TopK`` ties: lower index first); PyTorch's ``torch.onnx.export(...,
dynamo=True)`` with a ``custom_translation_table`` (onnxscript); Liu et al.
2016 §3 (inference: per-class NMS, top-k).
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import math
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._io import atomic_write
from .boxes import _center_to_corner, _corner_to_center
from .offsets import BBOX_XFORM_CLIP

__all__ = ["DetectionGraph", "export_onnx", "load_model_for_export", "onnx_detect", "reference_detections",
           "compare_detections", "check_export", "live_detector", "LiveDetector", "INPUT_NAMES", "OUTPUT_NAMES",
           "OPSET", "CHECK_SCORE_THRESHOLD", "add_arguments", "run"]

#: Names that moved out of this module and are still reachable here, loaded on first use
#: (PEP 562; they import this module, so a top-level import would be a cycle): the live
#: detector (:mod:`d2lssd.live`) and the ``d2lssd export`` command (:mod:`d2lssd.commands.export`).
_MOVED = {"LiveDetector": "live", "live_detector": "live", "add_arguments": "commands.export",
          "run": "commands.export"}

#: Names of the graph's inputs and outputs (see the module docstring).
INPUT_NAMES = ("images", "score_threshold", "iou_threshold")
OUTPUT_NAMES = ("boxes", "scores", "classes", "num_detections")
#: ONNX opset of the exported graph (onnxruntime >= 1.14 and onnxruntime-web run it).
OPSET = 18
#: Variances of :func:`d2lssd.offset_boxes` (centre, size), baked into the graph.
VARIANCES = (0.1, 0.2)
#: Score given to the classes an anchor does not propose; the operator's own threshold sits above it.
_NOT_PROPOSED = -1.0
_OPERATOR_SCORE_THRESHOLD = -0.5
#: Score threshold of the check that :func:`export_onnx` and ``d2lssd export`` run on random images.
CHECK_SCORE_THRESHOLD = 0.05


# --------------------------------------------------------------------------- NMS as an operator

@torch.library.custom_op("d2lssd::onnx_nms", mutates_args=())
def _onnx_nms(boxes: torch.Tensor, scores: torch.Tensor, max_per_class: int,
              iou_threshold: torch.Tensor) -> torch.Tensor:
    """Eager twin of ONNX ``NonMaxSuppression`` (boxes ``(B, N, 4)``, scores ``(B, C, N)``).

    Returns int64 ``(S, 3)`` rows ``(batch, class, box)``: per image and class,
    the boxes with score > -0.5 kept by greedy NMS (:func:`d2lssd.nms`,
    torchvision's semantics), by descending score, at most ``max_per_class``.
    In the exported graph the operator itself replaces this function.
    """
    from .nms import nms

    rows = []
    B, C, _ = scores.shape
    for b in range(B):
        for c in range(C):
            s = scores[b, c]
            idx = (s > _OPERATOR_SCORE_THRESHOLD).nonzero().flatten()
            keep = idx[nms(boxes[b, idx], s[idx], float(iou_threshold))[:max_per_class]]
            rows.append(torch.stack((torch.full_like(keep, b), torch.full_like(keep, c), keep), dim=1))
    return torch.cat(rows) if rows else boxes.new_zeros((0, 3), dtype=torch.int64)


@_onnx_nms.register_fake
def _(boxes, scores, max_per_class, iou_threshold):
    n = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((n, 3), dtype=torch.int64)


def _nms_to_onnx(boxes, scores, max_per_class: int, iou_threshold):
    """onnxscript translation of ``d2lssd::onnx_nms``: the ``NonMaxSuppression`` operator."""
    from onnxscript import opset18 as op

    return op.NonMaxSuppression(boxes, scores, op.Constant(value_ints=[max_per_class]),
                                op.Reshape(iou_threshold, op.Constant(value_ints=[1])),
                                op.Constant(value_floats=[_OPERATOR_SCORE_THRESHOLD]), center_point_box=0)


# --------------------------------------------------------------------------- the graph

class DetectionGraph(nn.Module):
    """A trained SSD plus its whole inference, as one module: what :func:`export_onnx` exports.

    Args:
        net: model mapping float images ``(B, 3, H, W)`` to ``(anchors (1, A,
            4), cls_preds (B, A, q + 1), bbox_preds (B, A * 4))``
            (:class:`~d2lssd.models.TinySSD`, :class:`~d2lssd.models.SSDResNet34`);
            copied, in eval mode, float32, on the CPU.
        input_size: ``(H, W)`` in pixels; the anchors of that size become a constant.
        pixel_scale: images are ``uint8 / pixel_scale`` before the network:
            1 for pixels in [0, 255] (TinySSD on the banana data), 255 for [0, 1]
            (the ResNet-34 SSD, as :class:`d2lssd.transforms.SSDEvalTransform`).
        top_k: rows ``K`` per image (``min(top_k, A)``).

    ``forward(images, score_threshold, iou_threshold)``: see the module
    docstring for the inputs and outputs; runs eagerly too (NMS by
    :func:`d2lssd.nms`), which is how the graph is checked before export.

    Raises:
        ValueError: ``input_size`` not two positive integers, ``pixel_scale``
            not 1 or 255, ``top_k < 1``, or a model without ``num_classes``.
    """

    def __init__(self, net: nn.Module, input_size: Sequence[int], pixel_scale: float = 1.0, top_k: int = 100):
        super().__init__()
        h, w = _check_size(input_size)
        if float(pixel_scale) not in (1.0, 255.0):
            raise ValueError(f"pixel_scale must be 1 (pixels in [0, 255]) or 255 (in [0, 1]), got {pixel_scale}")
        if isinstance(top_k, bool) or int(top_k) != top_k or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        if not isinstance(getattr(net, "num_classes", None), int):
            raise ValueError("net must have an integer num_classes (TinySSD, SSDResNet34)")
        net = copy.deepcopy(net).cpu().float().to(memory_format=torch.contiguous_format).eval()
        if hasattr(net, "clear_anchor_cache"):
            net.clear_anchor_cache()
        with torch.no_grad():
            anchors = net(torch.zeros(1, 3, h, w))[0]
        self.net = net
        self.input_size = (h, w)
        self.pixel_scale = float(pixel_scale)
        self.num_classes = net.num_classes
        self.num_anchors = int(anchors.shape[1])
        self.top_k = min(int(top_k), self.num_anchors)
        # the same float32 arithmetic as d2lssd.offsets._decode does on every call
        self.register_buffer("anchors_center", _corner_to_center(anchors[0].float()).contiguous())

    def forward(self, images: torch.Tensor, score_threshold: torch.Tensor, iou_threshold: torch.Tensor):
        x = images.to(torch.float32)
        if self.pixel_scale != 1.0:
            x = x * (1.0 / self.pixel_scale)  # torchvision's ToDtype(scale=True) multiplies the same way
        _, cls_preds, bbox_preds = self.net(x)
        B, A = x.shape[0], self.num_anchors
        conf, cls = F.softmax(cls_preds.float(), dim=2)[:, :, 1:].max(dim=2)  # (B, A)
        off = bbox_preds.float().reshape(B, A, 4)
        c = self.anchors_center
        xy = off[..., :2] * VARIANCES[0] * c[:, 2:] + c[:, :2]
        wh = torch.exp((off[..., 2:] * VARIANCES[1]).clamp(max=BBOX_XFORM_CLIP)) * c[:, 2:]
        boxes = _center_to_corner(torch.cat((xy, wh), dim=-1))  # (B, A, 4)
        proposed = torch.where(conf >= score_threshold, conf, _NOT_PROPOSED)
        classes = torch.arange(self.num_classes, device=x.device)
        scores = torch.where(cls[:, None, :] == classes[None, :, None], proposed[:, None, :], _NOT_PROPOSED)
        sel = torch.ops.d2lssd.onnx_nms(boxes, scores, self.top_k, iou_threshold)  # (S, 3)
        kept = torch.zeros((B, A), dtype=torch.bool, device=x.device)
        kept = kept.index_put((sel[:, 0], sel[:, 2]), torch.ones_like(sel[:, 0], dtype=torch.bool))
        top, idx = torch.topk(torch.where(kept, conf, _NOT_PROPOSED), self.top_k, dim=1)
        valid = top >= 0
        out_boxes = torch.where(valid[..., None], boxes.gather(1, idx[..., None].expand(-1, -1, 4)), 0.0)
        out_classes = torch.where(valid, cls.gather(1, idx), -1)
        return out_boxes, torch.where(valid, top, 0.0), out_classes, valid.sum(dim=1)


def _check_size(input_size) -> tuple[int, int]:
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        input_size = (input_size, input_size)
    try:
        h, w = (int(v) for v in input_size)
        ok = all(int(v) == v and not isinstance(v, bool) for v in input_size) and h > 0 and w > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"input_size must be a positive integer or (H, W), got {input_size!r}")
    return h, w


# --------------------------------------------------------------------------- checkpoints

#: What each architecture needs: default input size, pixel scale, class names, thresholds.
_ARCHS = {
    "TinySSD": dict(input_size=(256, 256), pixel_scale=1.0, class_names=["banana"], score_threshold=0.5,
                    iou_threshold=0.5),
    "SSDResNet34": dict(input_size=(300, 300), pixel_scale=255.0, class_names=["pedestrian"],
                        score_threshold=0.5, iou_threshold=0.45),
}


def _spec_of(net: nn.Module) -> dict:
    name = type(net).__name__
    if name not in _ARCHS:
        raise ValueError(f"cannot tell the input size and preprocessing of a {name}: pass input_size, "
                         "pixel_scale and class_names")
    spec = dict(_ARCHS[name], architecture=name)
    if net.num_classes != len(spec["class_names"]):
        spec["class_names"] = [f"class{i}" for i in range(net.num_classes)]
    return spec


def load_model_for_export(checkpoint, device="cpu") -> tuple[nn.Module, dict]:
    """The model in a checkpoint, and what export needs to know about it.

    Reads the checkpoints of :func:`d2lssd.save_checkpoint` / :func:`d2lssd.train_ssd`
    (and so :func:`d2lssd.train_recipe`'s cached runs), which hold a state
    dict only: the architecture is recognised from its keys (TinySSD's
    ``blk_0 ...``, the ResNet-34 SSD's ``stem ...``) and the number of classes
    from the class head; the default anchors are assumed (an anchor count that
    does not fit the heads is an error). Checkpoints of the Penn-Fudan trainer
    (:mod:`d2lssd.pennfudan`) and of ``d2lssd train`` (:mod:`d2lssd.commands`)
    are rebuilt with their stored configuration (input size, classes, anchors).

    Args:
        checkpoint: path of the checkpoint.
        device: where to load (default the CPU; export runs there).

    Returns:
        ``(net, spec)``: the model in eval mode and a dict with
        ``architecture``, ``input_size`` ``(H, W)``, ``pixel_scale``,
        ``class_names``, ``score_threshold`` and ``iou_threshold`` (the
        defaults recorded in the metadata).

    Raises:
        FileNotFoundError: no file. ValueError: not a d2lssd checkpoint, or
        an architecture this function does not know.
    """
    from .models import SSDResNet34, TinySSD
    from .train import load_checkpoint, read_checkpoint

    path = Path(checkpoint)
    state = read_checkpoint(path)
    if isinstance(state.get("detector"), dict):  # d2lssd train: the spec holds classes, size and anchors
        from .commands.common import load_detector

        net, detector = load_detector(path, device=device)
        spec = _spec_of(net)
        spec.update(input_size=(detector["size"], detector["size"]), class_names=list(detector["classes"]),
                    score_threshold=detector.get("score_threshold", 0.5),
                    iou_threshold=detector.get("nms_threshold", 0.45))
        return net, spec
    if "pennfudan_config" in state:
        from .pennfudan import load_model

        net, cfg = load_model(path, device=device)
        spec = _spec_of(net)
        spec.update(input_size=(cfg["size"], cfg["size"]), score_threshold=cfg["score_threshold"],
                    iou_threshold=cfg["nms_threshold"])
        return net, spec
    sd = state.get("model") or {}
    if any(k.startswith("blk_0.") for k in sd) and "cls_0.weight" in sd:
        a = sd["bbox_0.weight"].shape[0] // 4
        net = TinySSD(num_classes=sd["cls_0.weight"].shape[0] // a - 1)
    elif any(k.startswith("stem.") for k in sd) and "cls_heads.0.weight" in sd:
        a = sd["bbox_heads.0.weight"].shape[0] // 4
        net = SSDResNet34(num_classes=sd["cls_heads.0.weight"].shape[0] // a - 1, pretrained=False)
    else:
        raise ValueError(f"{path}: the state dict is neither a TinySSD nor an SSDResNet34")
    try:
        load_checkpoint(path, net, map_location="cpu")
    except RuntimeError as e:
        raise ValueError(f"{path}: the weights do not fit a {type(net).__name__} with the default anchors: "
                         f"{str(e).splitlines()[0]}") from e
    return net.to(device).eval(), _spec_of(net)


# --------------------------------------------------------------------------- export

def export_onnx(model, path, *, input_size=None, class_names: Sequence[str] | None = None,
                pixel_scale: float | None = None, top_k: int = 100, score_threshold: float | None = None,
                iou_threshold: float | None = None, check: bool = True) -> Path:
    """Write a trained SSD as an ONNX file with preprocessing, decoding, NMS and top-k in the graph.

    Args:
        model: a model (:class:`~d2lssd.models.TinySSD`,
            :class:`~d2lssd.models.SSDResNet34`, or any module with the same
            outputs and ``num_classes``) or the path of a checkpoint (see
            :func:`load_model_for_export`).
        path: the ``.onnx`` file to write (atomically; its folder is created).
        input_size: ``(H, W)`` or one side, in pixels; default the
            architecture's (TinySSD 256, the Penn-Fudan SSD 300 or its
            checkpoint's size).
        class_names: ``q`` names, in class order; default ``["banana"]`` for
            a one-class TinySSD, ``["pedestrian"]`` for the ResNet-34 SSD.
        pixel_scale: 1 (network takes pixels in [0, 255]) or 255 (in [0, 1]);
            default the architecture's.
        top_k: detections per image at most (``K``, the outputs' second
            dimension); default 100.
        score_threshold, iou_threshold: the defaults recorded in the
            metadata (the graph takes both as inputs); default 0.5 and 0.5
            (0.45 for the Penn-Fudan model).
        check: run the exported file with onnxruntime on 4 seeded random
            images (score threshold :data:`CHECK_SCORE_THRESHOLD`, so that
            even a trained model has candidates for NMS) and compare it with
            :func:`reference_detections` (raises if they differ); needs ``onnxruntime``.

    Returns:
        ``Path(path)``. The metadata (``metadata_props``) holds
        ``class_names`` (JSON list), ``input_size`` (JSON ``[H, W]``),
        ``input_format``, ``outputs``, ``pixel_scale``, ``top_k``,
        ``score_threshold``, ``iou_threshold``, ``architecture``,
        ``semantics`` and ``producer`` (d2lssd's version).

    Raises:
        ValueError: bad arguments (sizes, a ``class_names`` of the wrong
            length), or ``check`` finding a difference. FileNotFoundError: no
            checkpoint. ImportError: ``onnx``/``onnxscript`` missing (``pip
            install "d2lssd[export]"``).

    Source: ``torch.onnx.export(..., dynamo=True)``; the graph's semantics are
    in the module docstring.
    """
    import onnx

    from . import __version__

    if isinstance(model, (str, Path)):
        net, spec = load_model_for_export(model)
    else:
        net = model
        spec = _spec_of(net) if type(net).__name__ in _ARCHS else dict(
            architecture=type(net).__name__, input_size=None, pixel_scale=None,
            class_names=[f"class{i}" for i in range(getattr(net, "num_classes", 0))],
            score_threshold=0.5, iou_threshold=0.5)
    if input_size is None and spec["input_size"] is None:
        raise ValueError("input_size is needed for this model")
    size = _check_size(input_size if input_size is not None else spec["input_size"])
    scale = pixel_scale if pixel_scale is not None else spec["pixel_scale"]
    if scale is None:
        raise ValueError("pixel_scale is needed for this model")
    names = list(class_names) if class_names is not None else list(spec["class_names"])
    graph = DetectionGraph(net, size, scale, top_k)
    if len(names) != graph.num_classes or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"class_names must be {graph.num_classes} non-empty strings, got {names!r}")
    thresholds = {}
    for key, v in (("score_threshold", score_threshold), ("iou_threshold", iou_threshold)):
        v = spec[key] if v is None else v
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{key} must be in [0, 1], got {v}")
        thresholds[key] = float(v)

    h, w = size
    example = (torch.zeros((2, 3, h, w), dtype=torch.uint8), torch.tensor(0.5), torch.tensor(0.5))
    with warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph, example, dynamo=True, opset_version=OPSET, input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES), verbose=False,
            dynamic_shapes={"images": {0: torch.export.Dim("batch")}, "score_threshold": None,
                            "iou_threshold": None},
            custom_translation_table={torch.ops.d2lssd.onnx_nms.default: _nms_to_onnx})
    proto = program.model_proto
    meta = {
        "class_names": json.dumps(names),
        "input_size": json.dumps([h, w]),
        "input_format": (f"images: uint8 (B, 3, {h}, {w}) RGB, resized to {w}x{h}; score_threshold, "
                         "iou_threshold: float32 scalars"),
        "outputs": (f"boxes float32 (B, {graph.top_k}, 4) normalized (xmin, ymin, xmax, ymax); scores float32 "
                    f"(B, {graph.top_k}); classes int64 (B, {graph.top_k}), -1 = padding; num_detections "
                    "int64 (B,)"),
        "pixel_scale": json.dumps(graph.pixel_scale),
        "top_k": json.dumps(graph.top_k),
        "score_threshold": json.dumps(thresholds["score_threshold"]),
        "iou_threshold": json.dumps(thresholds["iou_threshold"]),
        "architecture": spec["architecture"],
        "semantics": ("d2lssd.predict(class_agnostic=False): argmax class per anchor, score >= "
                      "score_threshold, per-class NMS (IoU > iou_threshold suppresses), top_k best kept"),
        "producer": f"d2lssd {__version__}",
    }
    onnx.helper.set_model_props(proto, meta)
    proto.doc_string = "SSD detector exported by d2lssd.export_onnx: " + meta["semantics"]
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    out = atomic_write(path, lambda f: f.write(data))
    if check:
        result = check_export(out, net, num_images=4, score_threshold=CHECK_SCORE_THRESHOLD,
                              iou_threshold=thresholds["iou_threshold"])
        if not result["ok"]:
            raise ValueError(f"the exported graph differs from d2lssd.predict: {result['summary']}")
    return out


class _quiet:
    """Silence stdout and stderr while exporting (torch.onnx and onnxscript print their progress)."""

    def __enter__(self):
        import contextlib

        self._cms = [contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())]
        for cm in self._cms:
            cm.__enter__()

    def __exit__(self, *exc):
        for cm in reversed(self._cms):
            cm.__exit__(*exc)
        return False


# --------------------------------------------------------------------------- checking

def onnx_detect(model, images, score_threshold: float = 0.5, iou_threshold: float = 0.5) -> list:
    """Run an exported file with onnxruntime; detections in :func:`d2lssd.predict`'s row format.

    Args:
        model: path of the ``.onnx`` file or an ``onnxruntime.InferenceSession``.
        images: uint8 array or tensor ``(B, 3, H, W)`` at the model's input size.
        score_threshold, iou_threshold: the graph's inputs.

    Returns:
        list of ``B`` float32 numpy arrays ``(K_i, 6)``, rows ``(class, score,
        xmin, ymin, xmax, ymax)`` (normalized boxes), by descending score.
    """
    import numpy as np
    import onnxruntime as ort

    sess = model if isinstance(model, ort.InferenceSession) else ort.InferenceSession(
        str(model), providers=["CPUExecutionProvider"])
    x = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    boxes, scores, classes, num = sess.run(list(OUTPUT_NAMES), {
        "images": x.astype(np.uint8), "score_threshold": np.asarray(score_threshold, dtype=np.float32),
        "iou_threshold": np.asarray(iou_threshold, dtype=np.float32)})
    return [np.concatenate((classes[b, :n, None].astype(np.float32), scores[b, :n, None], boxes[b, :n]), axis=1)
            for b, n in enumerate(num.tolist())]


def reference_detections(net: nn.Module, images, pixel_scale: float = 1.0, score_threshold: float = 0.5,
                         iou_threshold: float = 0.5, top_k: int = 100) -> list:
    """What the exported graph must return: :func:`d2lssd.predict` on the same images.

    This is the one place that names the PyTorch pipeline the export is
    checked against (``predict`` with per-class NMS, ``class_agnostic=False``).

    Args:
        net: the model. images: uint8 ``(B, 3, H, W)`` (array or tensor).
        pixel_scale: the images are ``images.float() / pixel_scale`` for the network (1 or 255).
        score_threshold, iou_threshold, top_k: as for the graph.

    Returns:
        list of ``B`` float32 numpy arrays ``(K_i, 6)`` like :func:`onnx_detect`.
    """
    from .train import predict

    x = torch.as_tensor(images).to(torch.float32)
    if float(pixel_scale) != 1.0:
        x = x.mul_(1.0 / float(pixel_scale))
    dets = predict(net, x, nms_threshold=iou_threshold, score_threshold=score_threshold, top_k=top_k)
    return [d.numpy() for d in dets]


def compare_detections(expected: list, got: list, atol: float = 1e-4) -> dict:
    """Compare two lists of per-image detections, tie order aside.

    Each expected detection is matched to an unused detection of the same
    image with the same class, score within ``atol`` and every box coordinate
    within ``atol`` (greedily, in the expected order); equal scores may come
    in either order.

    Args:
        expected, got: lists of arrays ``(K_i, 6)`` (class, score, box).
        atol: tolerance for scores and coordinates.

    Returns:
        dict with ``images``, ``detections`` (expected, in all images),
        ``matched``, ``unmatched_expected``, ``unmatched_got``,
        ``max_score_diff``, ``max_box_diff`` (over matched pairs),
        ``ok`` (same counts and everything matched) and ``summary`` (one line).
    """
    import numpy as np

    if len(expected) != len(got):
        return dict(images=len(expected), detections=0, matched=0, unmatched_expected=0, unmatched_got=0,
                    max_score_diff=math.nan, max_box_diff=math.nan, ok=False,
                    summary=f"{len(expected)} images expected, {len(got)} got")
    n = matched = extra = 0
    ds = db = 0.0
    for e, g in zip(expected, got):
        e, g = np.asarray(e, dtype=np.float64).reshape(-1, 6), np.asarray(g, dtype=np.float64).reshape(-1, 6)
        used = np.zeros(len(g), dtype=bool)
        n += len(e)
        for row in e:
            cand = (~used & (g[:, 0] == row[0]) & (np.abs(g[:, 1] - row[1]) <= atol)
                    & (np.abs(g[:, 2:] - row[2:]) <= atol).all(axis=1)).nonzero()[0]
            if len(cand):
                j = cand[np.argmin(np.abs(g[cand, 1] - row[1]))]
                used[j] = True
                matched += 1
                ds = max(ds, abs(g[j, 1] - row[1]))
                db = max(db, float(np.abs(g[j, 2:] - row[2:]).max()))
        extra += int((~used).sum())
    ok = matched == n and extra == 0
    summary = (f"{matched}/{n} detections matched in {len(expected)} images ({extra} extra), "
               f"max |score diff| {ds:.2e}, max |box diff| {db:.2e} (tolerance {atol:g})")
    return dict(images=len(expected), detections=n, matched=matched, unmatched_expected=n - matched,
                unmatched_got=extra, max_score_diff=ds, max_box_diff=db, ok=ok, summary=summary)


def check_export(onnx_path, net: nn.Module, images=None, num_images: int = 4, score_threshold: float = 0.5,
                 iou_threshold: float = 0.5, atol: float = 1e-4, seed: int = 0) -> dict:
    """onnxruntime on the exported file against :func:`reference_detections` on the same images.

    Args:
        onnx_path: the exported file (its metadata gives the input size,
            ``pixel_scale`` and ``top_k``).
        net: the model that was exported.
        images: uint8 ``(B, 3, H, W)``; default ``num_images`` seeded random images.
        score_threshold, iou_threshold: used by both.
        atol: see :func:`compare_detections`.

    Returns:
        :func:`compare_detections`'s dict.
    """
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    h, w = json.loads(meta["input_size"])
    if images is None:
        g = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (num_images, 3, h, w), generator=g, dtype=torch.uint8)
    got = onnx_detect(sess, images, score_threshold, iou_threshold)
    expected = reference_detections(net, images, float(json.loads(meta["pixel_scale"])), score_threshold,
                                    iou_threshold, int(json.loads(meta["top_k"])))
    return compare_detections(expected, got, atol)


def __getattr__(name: str):
    """``d2lssd.export.live_detector`` and the other names of :data:`_MOVED`, from their new module."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"d2lssd.{_MOVED[name]}"), name)
    globals()[name] = value
    return value
