"""Export a trained SSD to ONNX with the whole inference in the graph, and check it against PyTorch.

The exported graph takes images and returns detections; nothing of d2lssd or
PyTorch is needed to run it (``onnxruntime`` alone, in Python or, as
``onnxruntime-web``, in a browser):

* **inputs** ``images``: uint8 ``(B, 3, H, W)`` RGB, EXIF orientation
  applied, already resized to the detector's input size ``H x W`` (bilinear,
  antialiased, aspect ratio not kept; fixed at export, recorded in the
  metadata), ``B`` dynamic; ``score_threshold``: float32 scalar;
  ``iou_threshold``: float32 scalar, the NMS threshold (a box is suppressed
  when its IoU with a higher-scoring kept box of the same class is strictly
  greater).
* **outputs** ``boxes``: float32 ``(B, K, 4)``, normalized corner format
  ``(xmin, ymin, xmax, ymax)`` of the input; ``scores``: float32 ``(B, K)``;
  ``classes``: int64 ``(B, K)``, ``0 .. q - 1`` (background excluded);
  ``num_detections``: int64 ``(B,)``. Row ``k < num_detections[b]`` of image
  ``b`` is a detection, by descending score; the other rows are padding
  (class -1, score 0, box 0). ``K = top_k`` is fixed at export.

The graph is built from a :class:`d2lssd.Detector`, so it cannot disagree
with it: inside, in order, the detector's input convention (uint8 to
float32, divided by its ``pixel_scale``), the network, softmax, decoding of
the offsets against the anchors (a constant ``(A, 4)`` tensor, centre form;
variances 0.1 and 0.2 and the log-size clamp of :func:`d2lssd.offset_inverse`)
and the detector's :class:`d2lssd.PostProcess`, with per-class non-maximum
suppression as the ONNX ``NonMaxSuppression`` operator:

* ``"paper"`` (the default, :func:`d2lssd.ssd_postprocess`): boxes clipped
  to [0, 1]; for every class the ``candidates_per_class`` most probable
  anchors whose probability is strictly above ``score_threshold`` go to NMS;
  the ``K`` best kept (class, anchor) pairs are returned.
* ``"d2l"`` (:func:`d2lssd.multibox_detection`): each anchor proposes its
  most probable class, kept when at least ``score_threshold``; NMS per class;
  the ``K`` best kept.

Classes an anchor does not propose get score -1 before the operator, whose
own score threshold is fixed at -0.5, so it sees exactly the proposals.
:func:`reference_detections` names the PyTorch pipeline on images at the
input size, :func:`consumer_detect` what a consumer of the file computes on
photos of any size, and :func:`check_export` compares the consumer's path on
real photos with :meth:`d2lssd.Detector.detect`.

The book's live detector, which embeds such a graph in a page, is
:mod:`d2lssd.live`; the ``d2lssd export`` command is :mod:`d2lssd.commands.export`.
The same graph as one offline web page of its own (``d2lssd export --html``)
is written by :mod:`d2lssd.webpage`.

Sources: the ONNX operator specification (``NonMaxSuppression``, opset 10+;
``TopK`` ties: lower index first); PyTorch's ``torch.onnx.export(...,
dynamo=True)`` with a ``custom_translation_table`` (onnxscript); Liu et al.
2016 §3 (inference: per-class NMS, top-k).
"""

from __future__ import annotations

import copy
import io
import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._io import atomic_write
from .boxes import _center_to_corner, _corner_to_center
from .offsets import BBOX_XFORM_CLIP

if TYPE_CHECKING:
    from .detector import Detector

__all__ = ["DetectionGraph", "as_detector", "export_onnx", "onnx_detect", "consumer_detect", "revealing_threshold", "reference_detections",
           "compare_detections", "check_export", "check_photos", "INPUT_NAMES", "OUTPUT_NAMES", "OPSET"]

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
    from .postprocess import nms

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

def as_detector(model) -> "Detector":
    """A :class:`d2lssd.Detector` from what a caller has: a detector, a checkpoint path, or a registered network.

    A bare network (e.g. a TinySSD fresh from ``train_ssd``) gets the
    registry's input size and input convention, classes ``class0 ...`` and
    the paper's post-processing (:func:`d2lssd.detector_spec`), which is what
    every trainer of the package stores for it.

    Raises:
        FileNotFoundError, ValueError: what :func:`d2lssd.load_detector` and
        :class:`d2lssd.Detector` raise (an unregistered network included).
    """
    from .detector import Detector, load_detector

    if isinstance(model, Detector):
        return model
    if isinstance(model, (str, Path)):
        return load_detector(model, device="cpu")
    if isinstance(model, nn.Module):
        return Detector(model)
    raise ValueError(f"model must be a Detector, a checkpoint path or a network, got {type(model).__name__}")


class DetectionGraph(nn.Module):
    """A detector's whole inference as one module: what :func:`export_onnx` exports.

    Args:
        detector: a :class:`d2lssd.Detector`; its network is copied (eval
            mode, float32, on the CPU); its input size, pixel scale and
            post-processing (semantics, candidates per class) are the graph's.
        top_k: rows ``K`` per image (``min(top_k, A * q)``); default the
            detector's detections per image (100 where it has no cap).

    ``forward(images, score_threshold, iou_threshold)``: see the module
    docstring for the inputs and outputs; runs eagerly too (NMS by
    :func:`d2lssd.nms`), which is how the graph is checked before export.

    Raises:
        ValueError: not a detector, ``top_k < 1``.
    """

    def __init__(self, detector, top_k: int | None = None):
        super().__init__()
        from .detector import Detector

        if not isinstance(detector, Detector):
            raise ValueError(f"detector must be a d2lssd.Detector, got {type(detector).__name__}")
        post = detector.postprocess
        if top_k is None:
            top_k = post.detections_per_image or 100
        if isinstance(top_k, bool) or int(top_k) != top_k or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        h, w = detector.input_size
        net = copy.deepcopy(detector.net).cpu().float().to(memory_format=torch.contiguous_format).eval()
        if hasattr(net, "clear_anchor_cache"):
            net.clear_anchor_cache()
        with torch.no_grad():
            anchors = net(torch.zeros(1, 3, h, w))[0]
        self.net = net
        self.input_size = (h, w)
        self.pixel_scale = detector.pixel_scale
        self.semantics = post.semantics
        self.num_classes = detector.num_classes
        self.num_anchors = int(anchors.shape[1])
        self.candidates = min(int(post.candidates_per_class), self.num_anchors)
        rows = self.num_anchors * (self.num_classes if self.semantics == "paper" else 1)
        self.top_k = min(int(top_k), rows)
        # the same float32 arithmetic as d2lssd.offsets._decode does on every call
        self.register_buffer("anchors_center", _corner_to_center(anchors[0].float()).contiguous())

    def _decode(self, bbox_preds: torch.Tensor, B: int) -> torch.Tensor:
        off = bbox_preds.float().reshape(B, self.num_anchors, 4)
        c = self.anchors_center
        xy = off[..., :2] * VARIANCES[0] * c[:, 2:] + c[:, :2]
        wh = torch.exp((off[..., 2:] * VARIANCES[1]).clamp(max=BBOX_XFORM_CLIP)) * c[:, 2:]
        return _center_to_corner(torch.cat((xy, wh), dim=-1))  # (B, A, 4)

    def forward(self, images: torch.Tensor, score_threshold: torch.Tensor, iou_threshold: torch.Tensor):
        x = images.to(torch.float32)
        if self.pixel_scale != 1.0:
            x = x * (1.0 / self.pixel_scale)  # torchvision's ToDtype(scale=True) multiplies the same way
        _, cls_preds, bbox_preds = self.net(x)
        B = x.shape[0]
        probs = F.softmax(cls_preds.float(), dim=2)[:, :, 1:]  # (B, A, q)
        boxes = self._decode(bbox_preds, B)
        if self.semantics == "paper":
            return self._paper(probs, boxes.clamp(0.0, 1.0), score_threshold, iou_threshold)
        return self._d2l(probs, boxes, score_threshold, iou_threshold)

    def _paper(self, probs, boxes, score_threshold, iou_threshold):
        """The SSD paper's inference (:func:`d2lssd.ssd_postprocess`): every class of every anchor proposes."""
        B, A, q = probs.shape
        scores = probs.transpose(1, 2)  # (B, q, A)
        top, idx = torch.topk(scores, self.candidates, dim=2)  # the best candidates of each class
        cand = torch.full_like(scores, _NOT_PROPOSED).scatter(2, idx, torch.where(top > score_threshold, top,
                                                                                   _NOT_PROPOSED))
        sel = torch.ops.d2lssd.onnx_nms(boxes, cand, self.top_k, iou_threshold)  # (S, 3): image, class, anchor
        kept = torch.zeros((B, q, A), dtype=torch.bool, device=probs.device)
        kept = kept.index_put((sel[:, 0], sel[:, 1], sel[:, 2]), torch.ones_like(sel[:, 0], dtype=torch.bool))
        flat = torch.where(kept, scores, _NOT_PROPOSED).reshape(B, q * A)
        best, pick = torch.topk(flat, self.top_k, dim=1)
        valid = best >= 0
        cls, anchor = pick // A, pick % A
        out_boxes = torch.where(valid[..., None], boxes.gather(1, anchor[..., None].expand(-1, -1, 4)), 0.0)
        return out_boxes, torch.where(valid, best, 0.0), torch.where(valid, cls, -1), valid.sum(dim=1)

    def _d2l(self, probs, boxes, score_threshold, iou_threshold):
        """d2l's inference (:func:`d2lssd.multibox_detection`): each anchor proposes its most probable class."""
        conf, cls = probs.max(dim=2)  # (B, A)
        proposed = torch.where(conf >= score_threshold, conf, _NOT_PROPOSED)
        classes = torch.arange(self.num_classes, device=probs.device)
        scores = torch.where(cls[:, None, :] == classes[None, :, None], proposed[:, None, :], _NOT_PROPOSED)
        sel = torch.ops.d2lssd.onnx_nms(boxes, scores, self.top_k, iou_threshold)  # (S, 3)
        B, A = conf.shape
        kept = torch.zeros((B, A), dtype=torch.bool, device=probs.device)
        kept = kept.index_put((sel[:, 0], sel[:, 2]), torch.ones_like(sel[:, 0], dtype=torch.bool))
        top, idx = torch.topk(torch.where(kept, conf, _NOT_PROPOSED), self.top_k, dim=1)
        valid = top >= 0
        out_boxes = torch.where(valid[..., None], boxes.gather(1, idx[..., None].expand(-1, -1, 4)), 0.0)
        out_classes = torch.where(valid, cls.gather(1, idx), -1)
        return out_boxes, torch.where(valid, top, 0.0), out_classes, valid.sum(dim=1)


# --------------------------------------------------------------------------- export

def export_onnx(model, path, *, top_k: int | None = None, check: bool = True) -> Path:
    """Write a detector as an ONNX file with preprocessing, decoding, NMS and top-k in the graph.

    Args:
        model: a :class:`d2lssd.Detector`, the path of any checkpoint of the
            package (:func:`d2lssd.load_detector`), or a registered network
            (:func:`as_detector`: the registry's defaults). The graph takes
            the detector's input size, input convention (pixel scale) and
            post-processing (semantics, candidates per class); its class
            names and thresholds go into the metadata.
        path: the ``.onnx`` file to write (atomically; its folder is created).
        top_k: detections per image at most (``K``, the outputs' second
            dimension); default the detector's (200 for the paper's
            post-processing, 100 for d2l's without a cap).
        check: run :func:`check_export` on the package's photos (raises if
            the file and :meth:`d2lssd.Detector.detect` differ); needs ``onnxruntime``.

    Returns:
        ``Path(path)``. The metadata (``metadata_props``) holds
        ``class_names`` (JSON list), ``category_ids``, ``input_size`` (JSON
        ``[H, W]``), ``input_format``, ``resize``, ``exif_orientation``,
        ``outputs``, ``pixel_scale``, ``top_k``, ``score_threshold``,
        ``iou_threshold``, ``architecture`` (the registry name),
        ``semantics``, ``detector`` (the whole :attr:`d2lssd.Detector.spec`
        as JSON) and ``producer`` (d2lssd's version).

    Raises:
        ValueError: bad arguments, or ``check`` finding a difference.
        FileNotFoundError: no checkpoint. ImportError: ``onnx``/``onnxscript``
        missing (``pip install "d2lssd[export]"``).

    Source: ``torch.onnx.export(..., dynamo=True)``; the graph's semantics are
    in the module docstring.
    """
    import onnx

    from . import __version__

    detector = as_detector(model)
    graph = DetectionGraph(detector, top_k)
    post = detector.postprocess
    h, w = graph.input_size
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
    spec = detector.spec
    meta = {
        "class_names": json.dumps(detector.class_names),
        "category_ids": json.dumps(detector.category_ids),
        "input_size": json.dumps([h, w]),
        "input_format": (f"images: uint8 (B, 3, {h}, {w}) RGB, EXIF orientation applied, resized to {w}x{h} "
                         "(bilinear, antialiased, aspect ratio not kept); score_threshold, iou_threshold: "
                         "float32 scalars"),
        "resize": spec["input"]["resize"],
        "exif_orientation": spec["input"]["exif_orientation"],
        "outputs": (f"boxes float32 (B, {graph.top_k}, 4) normalized (xmin, ymin, xmax, ymax); scores float32 "
                    f"(B, {graph.top_k}); classes int64 (B, {graph.top_k}), -1 = padding; num_detections "
                    "int64 (B,)"),
        "pixel_scale": json.dumps(graph.pixel_scale),
        "top_k": json.dumps(graph.top_k),
        "score_threshold": json.dumps(post.score_threshold),
        "iou_threshold": json.dumps(post.nms_threshold),
        "architecture": detector.model,
        "semantics": _SEMANTICS_TEXT[post.semantics],
        "detector": json.dumps(spec),
        "producer": f"d2lssd {__version__}",
    }
    onnx.helper.set_model_props(proto, meta)
    proto.doc_string = "SSD detector exported by d2lssd.export_onnx: " + meta["semantics"]
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    out = atomic_write(path, lambda f: f.write(data))
    if check:
        result = check_export(out, detector)
        if not result["ok"]:
            raise ValueError(f"the exported graph differs from the detector: {result['summary']}")
    return out


#: What each post-processing means, as written into the metadata.
_SEMANTICS_TEXT = {
    "paper": ("SSD paper (d2lssd.PostProcess(semantics='paper')): every class with probability > score_threshold "
              "proposes its anchor's box, boxes clipped to the image, the best candidates per class go to per-class "
              "NMS (IoU > iou_threshold suppresses), top_k best kept"),
    "d2l": ("d2l (d2lssd.PostProcess(semantics='d2l')): argmax class per anchor, score >= score_threshold, "
            "per-class NMS (IoU > iou_threshold suppresses), top_k best kept"),
}


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


def reference_detections(detector, images, score_threshold: float | None = None, iou_threshold: float | None = None,
                         top_k: int | None = None) -> list:
    """What the exported graph must return on images at the input size: the detector's own pipeline.

    This is the one place that names the PyTorch pipeline the export is
    checked against: :meth:`d2lssd.Detector.predict` (the network, then
    :class:`d2lssd.PostProcess`) on ``images`` scaled by
    :meth:`d2lssd.Detector.scale_pixels`.

    Args:
        detector: a :class:`d2lssd.Detector` (or what :func:`as_detector` takes).
        images: uint8 ``(B, 3, H, W)`` at the detector's input size (array or tensor).
        score_threshold, iou_threshold, top_k: as for the graph (default the detector's).

    Returns:
        list of ``B`` float32 numpy arrays ``(K_i, 6)`` like :func:`onnx_detect`.

    Raises:
        ValueError: images that are not uint8 ``(B, 3, H, W)`` at the input size.
    """
    detector = as_detector(detector)
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[2:]) != detector.input_size:
        raise ValueError(f"images must be uint8 (B, 3, {detector.input_size[0]}, {detector.input_size[1]}), "
                         f"got {x.dtype} {tuple(x.shape)}")
    dets = detector.predict(detector.scale_pixels(x), score_threshold=score_threshold, nms_threshold=iou_threshold,
                            top_k=top_k)
    return [d.numpy() for d in dets]


def compare_detections(expected: list, got: list, atol: float = 1e-4, box_atol: float | None = None) -> dict:
    """Compare two lists of per-image detections, tie order aside.

    Each expected detection is matched to an unused detection of the same
    image with the same class, score within ``atol`` and every box coordinate
    within ``box_atol`` (greedily, in the expected order); equal scores may
    come in either order.

    Args:
        expected, got: lists of arrays ``(K_i, 6)`` (class, score, box).
        atol: tolerance for scores (and for boxes when ``box_atol`` is None).
        box_atol: tolerance for box coordinates, in the boxes' unit (1 for a
            pixel when the boxes are in pixels).

    Returns:
        dict with ``images``, ``detections`` (expected, in all images),
        ``matched``, ``unmatched_expected``, ``unmatched_got``,
        ``max_score_diff``, ``max_box_diff`` (over matched pairs),
        ``ok`` (same counts and everything matched) and ``summary`` (one line).
    """
    import numpy as np

    box_atol = atol if box_atol is None else box_atol
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
                    & (np.abs(g[:, 2:] - row[2:]) <= box_atol).all(axis=1)).nonzero()[0]
            if len(cand):
                j = cand[np.argmin(np.abs(g[cand, 1] - row[1]))]
                used[j] = True
                matched += 1
                ds = max(ds, abs(g[j, 1] - row[1]))
                db = max(db, float(np.abs(g[j, 2:] - row[2:]).max()))
        extra += int((~used).sum())
    ok = matched == n and extra == 0
    tol = f"{atol:g}" if box_atol == atol else f"score {atol:g}, box {box_atol:g}"
    summary = (f"{matched}/{n} detections matched in {len(expected)} images ({extra} extra), "
               f"max |score diff| {ds:.2e}, max |box diff| {db:.2e} (tolerance {tol})")
    return dict(images=len(expected), detections=n, matched=matched, unmatched_expected=n - matched,
                unmatched_got=extra, max_score_diff=ds, max_box_diff=db, ok=ok, summary=summary)


def consumer_detect(onnx_path, images, score_threshold: float | None = None,
                    iou_threshold: float | None = None) -> list:
    """What a consumer of the file computes: decode, resize as the metadata says, onnxruntime, boxes in pixels.

    Uses only the file and its metadata (``input_size``, the defaults
    ``score_threshold`` / ``iou_threshold``): each image is read as uint8
    RGB with its EXIF orientation applied, resized to the input size with
    the metadata's rule (bilinear, antialiased, aspect ratio not kept:
    ``torchvision.transforms.v2.functional.resize``), run, and the
    normalized boxes are scaled to the image's pixels and clipped to it.

    Args:
        onnx_path: the exported file (or an ``onnxruntime.InferenceSession``).
        images: a list of paths, PIL images or uint8 tensors ``(3, H, W)``, any sizes.
        score_threshold, iou_threshold: default the metadata's.

    Returns:
        list of float32 numpy arrays ``(K_i, 6)``, rows ``(class, score,
        xmin, ymin, xmax, ymax)``, boxes in pixels of image ``i``.
    """
    import numpy as np
    import onnxruntime as ort
    from torchvision.transforms.v2 import functional as TF

    from .boxes import scale_boxes_to_pixels
    from .photos import as_uint8_image

    sess = onnx_path if isinstance(onnx_path, ort.InferenceSession) else ort.InferenceSession(
        str(onnx_path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    h, w = json.loads(meta["input_size"])
    st = float(json.loads(meta["score_threshold"])) if score_threshold is None else float(score_threshold)
    it = float(json.loads(meta["iou_threshold"])) if iou_threshold is None else float(iou_threshold)
    out = []
    for image in images:
        t = as_uint8_image(image)
        x = TF.resize(t, [h, w], antialias=True)[None]
        (d,) = onnx_detect(sess, x, st, it)
        out.append(scale_boxes_to_pixels(torch.from_numpy(d), t.shape[-1], t.shape[-2]).numpy().astype(np.float32))
    return out


def check_photos() -> list:
    """The images :func:`check_export` uses by default: the package's scikit-image photos, uint8 ``(3, H, W)``.

    Real photos of different sizes and aspect ratios (astronaut 512x512, chelsea 451x300, coffee 600x400).
    """
    from .photos import PHOTOS, load_photo

    return [torch.from_numpy(load_photo(name)).permute(2, 0, 1).contiguous() for name in sorted(PHOTOS)]


def revealing_threshold(detector, images, iou_threshold: float, top_k: int, per_image: int = 5,
                        gap: float = 2e-3) -> float | None:
    """A score threshold that leaves the detector some detections on ``images``, away from any score.

    Takes the detector's detections at threshold 0 (with ``iou_threshold``
    and ``top_k``), pools their scores, and returns the middle of the widest
    gap between consecutive scores among the best ``per_image * len(images)``
    (at least ``gap`` wide when one is), so no detection sits within
    ``gap / 2`` of it and a score tolerance cannot flip one across it
    (rounded to 4 significant digits, for a readable summary).

    Args:
        detector: a :class:`d2lssd.Detector`.
        images: what :meth:`~d2lssd.Detector.detect` takes.
        iou_threshold, top_k: the post-processing of the comparison.
        per_image: how many detections per image to look among, on average.
        gap: the width of gap to prefer (twice the score tolerance).

    Returns:
        The threshold (a float in (0, 1)), or None when the detector gives
        fewer than two detections with a score above 0.

    Source: ours (the export check of :func:`check_export`).
    """
    dets = detector.detect(images, score_threshold=0.0, nms_threshold=iou_threshold, top_k=top_k)
    scores = torch.cat([d[:, 1] for d in dets]).double().sort(descending=True).values
    scores = scores[scores > 0][: max(2, per_image * len(dets))]
    if len(scores) < 2:
        return None
    gaps = scores[:-1] - scores[1:]
    wide = (gaps >= gap).nonzero().flatten()
    i = int(wide[-1]) if len(wide) else int(gaps.argmax())   # the lowest wide gap: the most detections
    return float(f"{float((scores[i] + scores[i + 1]) / 2):.4g}")   # 4 digits: well inside the gap


def check_export(onnx_path, detector, images=None, score_thresholds: Sequence[float] | None = None,
                 iou_threshold: float | None = None, atol: float = 1e-3, box_atol: float = 1.0) -> dict:
    """The exported file as a consumer runs it, against the detector's own :meth:`~d2lssd.Detector.detect`.

    The consumer's path (:func:`consumer_detect`) uses the file and its
    metadata only: the image as uint8, resized as the metadata says, boxes
    scaled back to the image. The reference is ``detector.detect`` on the
    same images (its own preprocessing and post-processing). A graph with a
    wrong input scale, anchors, input size or post-processing gives other
    detections and fails.

    Args:
        onnx_path: the exported file.
        detector: the :class:`d2lssd.Detector` that was exported (or what
            :func:`as_detector` takes).
        images: paths, PIL images or uint8 tensors ``(3, H, W)`` of any size;
            default :func:`check_photos` (real photos).
        score_thresholds: checked one after the other; default the
            detector's, 0.05 (so that even a confident model leaves NMS
            something to do) and one under the detector's best scores on
            these images (:func:`revealing_threshold`), so that a model that
            is confident about nothing in them (a banana detector on a
            photo of a cat) is still compared on detections, not on two
            empty lists.
        iou_threshold: default the detector's.
        atol: score tolerance (1e-3). box_atol: box tolerance in pixels of the image (1).

    Returns:
        :func:`compare_detections`'s dict over all thresholds and images
        (``summary`` names the thresholds).
    """
    import onnxruntime as ort

    detector = as_detector(detector)
    images = check_photos() if images is None else list(images)
    post = detector.postprocess
    it = post.nms_threshold if iou_threshold is None else float(iou_threshold)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    k = int(json.loads(sess.get_modelmeta().custom_metadata_map["top_k"]))
    if score_thresholds is None:
        thresholds = [post.score_threshold, 0.05]
        low = revealing_threshold(detector, images, iou_threshold=it, top_k=k, gap=2 * atol)
        if low is not None and low < min(thresholds):
            thresholds.append(low)
    else:
        thresholds = list(score_thresholds)
    expected, got = [], []
    for st in thresholds:
        got += consumer_detect(sess, images, st, it)
        expected += [d.numpy() for d in detector.detect(images, score_threshold=st, nms_threshold=it, top_k=k)]
    r = compare_detections(expected, got, atol=atol, box_atol=box_atol)
    r["summary"] = f"score thresholds {thresholds}, IoU {it:g}: " + r["summary"]
    return r
