"""Post-processing: non-maximum suppression and turning SSD outputs into detections.

The module holds everything between the network's outputs and a list of
detections: :func:`nms` and :func:`batched_nms`, d2l's inference
(:func:`multibox_detection`, one class per anchor) and the SSD paper's
(:func:`ssd_postprocess`, per-class candidates). :class:`d2lssd.PostProcess`
chooses between them for a detector.

Semantics are torchvision's: boxes are visited in order of descending score
(ties: lower index first); a box is suppressed when its IoU with an already
kept box is strictly greater than ``iou_threshold``; the kept indices come out
sorted by descending score. Integer boxes, scores and class probabilities are
accepted and promoted to the default float dtype (``torch.get_default_dtype()``);
float inputs are used as they are.

Greedy NMS is sequential by nature. We make it vectorised and loop-free over
boxes and over groups by processing the sorted boxes in rounds (like
torchvision's CUDA kernel, which works on 64-box blocks): in each round, the
first 64 still-alive boxes of *every* group (image, class) form that group's
block; all blocks are resolved among themselves at once, exactly, by a
fixed-point iteration on their small suppression matrices, and each block's
kept boxes then remove, in one IoU pass, every later box of their group that
they suppress. The Python loop runs once per round (about "most boxes kept in
one group / 64" times), never once per box, nor once per block of each group.

Which code runs the greedy pass is a choice (``backend=``): ours, the one the
NMS chapter teaches, or ``torchvision.ops.nms``'s C++/CUDA kernel (the
default for several groups and on CUDA), fed with our order so that both
give identical results; the tests assert it on both paths.

Sources: d2l.ai §14.4.4 (``nms``, ``multibox_detection``);
``torchvision.ops.nms`` / ``batched_nms`` (semantics we test against);
Liu et al. 2016 §3 (per-class NMS, top-k per image).
"""

from __future__ import annotations

import contextlib
import functools

import torch

from ._checks import as_float, as_float_boxes, check_same_device
from .boxes import _box_iou, _upcast
from .offsets import _decode

__all__ = ["nms", "batched_nms", "multibox_detection", "ssd_postprocess"]

_BLOCK = 64  # boxes resolved together; torchvision's CUDA kernel uses 64-box blocks too
_TILE = 1 << 17  # pairs per IoU tile: temporaries stay in cache (much faster on CPU)


def _threshold_above(t: float, dtype: torch.dtype) -> float:
    """Smallest value ``u`` of ``dtype`` with ``u > t``, so ``iou >= u`` equals ``iou > t``
    evaluated in double precision, exactly as torchvision's kernels compare."""
    if dtype == torch.float64:
        return float(torch.nextafter(torch.tensor(t, dtype=dtype), torch.tensor(2.0, dtype=dtype)))
    tt = torch.tensor(t, dtype=torch.float32)
    if float(tt) <= t:
        tt = torch.nextafter(tt, torch.tensor(2.0))
    return float(tt)


def _pair_iou(ca: torch.Tensor, aa: torch.Tensor, cb: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """IoU of broadcast pairs, a new float tensor; ``ca``/``cb`` are ``(4, ...)``
    coordinates (xmin, ymin, xmax, ymax rows) and ``aa``/``ab`` the areas. The
    arithmetic is torchvision's, step for step, so comparisons with it agree
    exactly. Two zero-area boxes give NaN, which compares False (IoU 0)."""
    inter = torch.minimum(ca[2], cb[2]).sub_(torch.maximum(ca[0], cb[0])).clamp_(min=0)
    inter.mul_(torch.minimum(ca[3], cb[3]).sub_(torch.maximum(ca[1], cb[1])).clamp_(min=0))
    return inter.div_((aa + ab).sub_(inter))


def _pair_over(ca: torch.Tensor, aa: torch.Tensor, cb: torch.Tensor, ab: torch.Tensor,
               u: float) -> torch.Tensor:
    """Bool "IoU >= u" of broadcast pairs (arguments as :func:`_pair_iou`)."""
    return _pair_iou(ca, aa, cb, ab) >= u


def _resolve_blocks(over: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Greedy keep-masks of ``G`` blocks at once, boxes of each block in score order.

    ``over`` is bool ``(G, S, S)``, "IoU > t" (only ``j < i`` entries are used),
    ``valid`` bool ``(G, S)`` (padding slots are False; ``None``: no padding,
    all True). ``keep[g, i]`` must
    equal ``valid[g, i]`` and "no kept ``j < i`` with ``over[g, j, i]``".
    Starting from "keep all", one Jacobi sweep (one batched matrix product)
    fixes at least one more leading entry of every block, so the sweeps end at
    the greedy answer (the unique fixed point) after at most ``S`` of them,
    as many as the longest suppression chain of any block (2 to 6 on SSD300
    outputs). Greedy NMS is sequential by nature (the lexicographically first
    maximal independent set is P-complete), so no scheme removes this
    dependence altogether; the block size bounds it, and all blocks of a
    round share the same sweeps.
    """
    if valid is None:
        sup = torch.triu(over, diagonal=1)
        keep = torch.ones(over.shape[:2], dtype=torch.bool, device=over.device)
    else:
        sup = torch.triu(over & valid[:, :, None] & valid[:, None, :], diagonal=1)
        keep = valid.clone()
    if not bool(sup.any()):
        return keep
    sup_f = sup.to(torch.float32)
    for _ in range(over.shape[1] + 1):  # bounded: converges in at most S sweeps
        new = torch.bmm(keep.to(torch.float32)[:, None, :], sup_f)[:, 0] == 0
        if valid is not None:
            new &= valid
        if torch.equal(new, keep):
            break
        keep = new
    return keep


def _nms_sorted_one_group(coords: torch.Tensor, areas: torch.Tensor, u: float) -> torch.Tensor:
    """:func:`_nms_sorted` for one group: the same rounds without the bookkeeping of groups.

    The survivors are kept compacted, their coordinates and areas in one
    ``(5, n)`` tensor (so the block is its first ``_BLOCK`` columns and one
    ``index_select`` a round drops the suppressed ones), and the rest is
    compared with the block's kept boxes in a ``(kept, rest)`` layout: the IoU
    tile is thresholded in place (1.0 / 0.0) and reduced with ``amax`` over
    the kept boxes, which on the CPU costs a fraction of building a bool tile
    and reducing it with ``any`` along its short rows (TinySSD's 5,151
    proposals: 2.2 instead of 3.8 ms on one thread).
    """
    box = torch.cat((coords, areas[None]))  # (5, n): xmin, ymin, xmax, ymax, area of the survivors
    pos = torch.arange(box.shape[1], device=box.device)  # their positions in the sorted boxes
    kept = []
    for _ in range(box.shape[1]):  # bounded: every round keeps at least one box
        blk = box[:, :_BLOCK]
        over = _pair_over(blk[:4, :, None], blk[4, :, None], blk[:4, None, :], blk[4, None, :], u)
        keep = _resolve_blocks(over[None], None)[0]
        kept.append(pos[:_BLOCK][keep])
        if box.shape[1] <= _BLOCK:
            break
        kb = blk[:, keep, None]  # (5, k, 1)
        rest, pos = box[:, _BLOCK:, None].transpose(1, 2), pos[_BLOCK:]  # (5, 1, r)
        step = max(1, _TILE // kb.shape[1])
        hit = torch.cat([_pair_iou(kb[:4], kb[4], rest[:4, :, t:t + step], rest[4, :, t:t + step])
                         .ge_(u).amax(dim=0)  # (kept, r) -> (r,): 1.0 where some kept box suppresses
                         for t in range(0, rest.shape[2], step)])
        live = (hit == 0).nonzero()[:, 0]
        box, pos = rest[:, 0].index_select(1, live), pos.index_select(0, live)
        if not pos.numel():
            break
    return torch.cat(kept)


def _nms_sorted(boxes: torch.Tensor, u: float, groups: torch.Tensor | None) -> torch.Tensor:
    """Positions of the boxes kept by greedy NMS; ``boxes`` sorted by descending score
    (with ``groups``: sorted by group, and by descending score within a group).

    All groups advance together, a round at a time: each group's first
    ``_BLOCK`` surviving boxes form its block; all blocks are resolved exactly
    among themselves (:func:`_resolve_blocks`), then every block's kept boxes
    remove the later boxes of their own group that they suppress. So the
    Python loop runs once per round (about "most boxes kept in any group /
    ``_BLOCK``" rounds), not once per block of every group, and each kept box
    is compared only with the boxes still alive after it in its own group, as
    in torchvision's CPU kernel.
    """
    n = boxes.shape[0]
    b = _upcast(boxes)
    coords = b.t().contiguous()  # (4, N)
    areas = (coords[2] - coords[0]) * (coords[3] - coords[1])
    device = boxes.device
    if groups is None:
        return _nms_sorted_one_group(coords, areas, u)
    alive = torch.arange(n, device=device)
    gid = torch.unique_consecutive(groups, return_inverse=True)[1]  # groups sorted: relabel 0 .. G-1
    kept = []
    for _ in range(n):  # bounded: every round keeps at least one box of each group alive
        if not alive.numel():
            break
        # Rank of each alive box within its group (alive stays sorted by group).
        _, inv, cnt = torch.unique_consecutive(gid[alive], return_inverse=True, return_counts=True)
        g = cnt.shape[0]
        rank = torch.arange(alive.shape[0], device=device) - (torch.cumsum(cnt, 0) - cnt)[inv]
        in_blk = rank < _BLOCK
        s = min(_BLOCK, int(cnt.max()))
        slots = torch.full((g, s), -1, dtype=torch.long, device=device)
        slots[inv[in_blk], rank[in_blk]] = alive[in_blk]
        valid = slots >= 0
        sl = slots.clamp(min=0)
        cb, ab = coords[:, sl], areas[sl]  # (4, G, S), (G, S)
        over = _pair_over(cb[:, :, :, None], ab[:, :, None], cb[:, :, None, :], ab[:, None, :], u)
        keep = _resolve_blocks(over, valid)
        kept.append(slots[keep])
        rest, rest_g = alive[~in_blk], inv[~in_blk]
        if not rest.numel():
            break
        # Each group's kept boxes, moved to the front of its row: the rest is
        # compared with at most "most kept in a block" boxes, not _BLOCK.
        k = int(keep.sum(dim=1).max())
        front = torch.sort(keep.to(torch.uint8), dim=1, descending=True, stable=True).indices[:, :k]
        ks, kv = sl.gather(1, front), keep.gather(1, front)  # (G, k)
        kc, ka = coords[:, ks], areas[ks]  # (4, G, k), (G, k)
        step = max(1, _TILE // max(1, k))
        gone = []
        for t in range(0, rest.shape[0], step):
            r, rg = rest[t:t + step], rest_g[t:t + step]
            o = _pair_over(coords[:, r, None], areas[r, None], kc[:, rg], ka[rg], u)
            gone.append((o & kv[rg]).any(dim=1))
        alive = rest[~torch.cat(gone)]
    return torch.cat(kept) if kept else alive


def _check_nms_inputs(boxes, scores, iou_threshold):
    """Validate; return ``(boxes, scores)`` with integer tensors promoted to floats."""
    check_same_device(boxes=boxes, scores=scores)
    boxes = as_float_boxes(boxes, "boxes", min_dim=2, max_dim=2)
    scores = as_float(scores, "scores")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have shape (N,) = ({boxes.shape[0]},), got {tuple(scores.shape)}")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    return boxes, scores


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device):
    """Run the enclosed tensor operations on one CPU thread (a no-op on other devices).

    NMS is a loop of many small operations. With PyTorch's default of one
    OpenMP thread per core, each of them ends in a barrier that waits for all
    threads; when another process keeps a core busy, a descheduled thread
    holds every barrier up for a scheduler time slice, and the loop slows
    down 10-100x (measured: 5,000 boxes, 6 ms idle, 500 ms beside one busy
    process on 2 cores). On one thread the same loop costs the same idle and
    barely notices the other process. ``torch.set_num_threads`` is
    process-wide: other Python threads running PyTorch meanwhile get one
    thread too, until the block ends.
    """
    n = torch.get_num_threads()
    if device.type != "cpu" or n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _on_one_cpu_thread(fn):
    """Decorator: run ``fn`` (checks included) inside :func:`_one_cpu_thread` for its first tensor's device."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        first = args[0] if args else next(iter(kwargs.values()), None)
        device = first.device if isinstance(first, torch.Tensor) else torch.device("cpu")
        with _one_cpu_thread(device):
            return fn(*args, **kwargs)
    return wrapper


def _upcast_dtype(t: torch.Tensor) -> torch.dtype:
    return _upcast(t[:0]).dtype


_BACKENDS = ("auto", "d2lssd", "torchvision")


def _check_backend(backend) -> None:
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")


def _use_torchvision(backend: str, boxes: torch.Tensor, one_group: bool = False) -> bool:
    """Whether ``backend`` resolves to torchvision's kernel for these boxes.

    ``"auto"``: torchvision's kernel for float32/float64 boxes on CUDA, and
    on the CPU when there are several groups; ours for one group on the CPU,
    where its rounds measured faster (5,000 clustered boxes: 3.5 against 5.0
    ms; 20,000 scattered ones, few suppressed: 0.8x torchvision's time).
    """
    if backend == "d2lssd":
        return False
    if backend == "torchvision":
        return True
    if boxes.dtype not in (torch.float32, torch.float64) or boxes.device.type not in ("cpu", "cuda"):
        return False
    return boxes.device.type == "cuda" or not one_group


def _tv_nms_sorted(boxes: torch.Tensor, groups: torch.Tensor | None, iou_threshold: float) -> torch.Tensor:
    """:func:`_nms_sorted` computed by ``torchvision.ops.nms``, one call per group.

    The boxes are already in our order (group, then descending score, ties by
    lower index), so torchvision gets the scores ``0, -1, -2, ...``: distinct,
    in that same order, whatever its own sort does with ties. Groups are
    contiguous slices, so no per-group mask over all boxes is built (what
    makes ``torchvision.ops.batched_nms`` slow with many groups).
    """
    import torchvision.ops

    n = boxes.shape[0]
    rank = -torch.arange(n, dtype=torch.float64 if n > 2 ** 24 else boxes.dtype, device=boxes.device)
    if groups is None:
        return torchvision.ops.nms(boxes, rank, iou_threshold)
    counts = torch.unique_consecutive(groups, return_counts=True)[1].tolist()
    kept, start = [], 0
    for c in counts:
        kept.append(torchvision.ops.nms(boxes[start:start + c], rank[start:start + c], iou_threshold) + start)
        start += c
    return torch.cat(kept)


def _nms(boxes, scores, iou_threshold, groups=None, backend="auto"):
    """:func:`nms` / :func:`batched_nms` without checks (on one CPU thread)."""
    with _one_cpu_thread(boxes.device):
        return _nms_one_thread(boxes, scores, iou_threshold, groups, backend)


def _nms_in_score_order(boxes, iou_threshold, groups, backend):
    """Positions of the kept boxes, for ``boxes`` ``(N, 4)`` already in NMS order:
    by descending score, equal scores by lower index (within each group; the
    groups, ``(N,)`` or ``None``, may come in any order). Without groups, or
    with one, the positions come out ascending (by descending score); with
    several, grouped."""
    if groups is not None and groups.numel() and bool(groups.min() == groups.max()):
        groups = None  # one group (one image, one class): plain NMS gives the same result
    by_group = None
    if groups is not None:
        # Group by group (then score): a group's boxes are contiguous, so each
        # block is compared only with the boxes of its own groups.
        by_group = torch.sort(groups, stable=True).indices
        boxes, groups = boxes[by_group], groups[by_group]
    if not boxes.shape[0]:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    if _use_torchvision(backend, boxes, groups is None):
        kept = _tv_nms_sorted(boxes, groups, float(iou_threshold))
    else:
        kept = _nms_sorted(boxes, _threshold_above(float(iou_threshold), _upcast_dtype(boxes)), groups)
    return kept if by_group is None else by_group[kept]


def _nms_one_thread(boxes, scores, iou_threshold, groups, backend):
    order = torch.sort(scores, descending=True, stable=True).indices
    kept = order[_nms_in_score_order(boxes[order], iou_threshold,
                                     None if groups is None else groups[order], backend)]
    if groups is not None and kept.numel() > 1 and bool(groups.min() != groups.max()):
        # Back to one list by descending score, equal scores by lower index.
        kept = kept.sort().values
        kept = kept[torch.sort(scores[kept], descending=True, stable=True).indices]
    return kept


@_on_one_cpu_thread
def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, *,
        backend: str = "auto") -> torch.Tensor:
    """Greedy non-maximum suppression.

    Args:
        boxes: tensor ``(N, 4)``, corner format, any unit (N may be 0);
            floating-point, or integer (promoted to the default float dtype;
            ``torchvision.ops.nms`` takes floats only).
        scores: tensor ``(N,)``, same device; floating-point or integer
            (promoted likewise).
        iou_threshold: in [0, 1]; a box is discarded when its IoU with a
            higher-scoring kept box is strictly greater than this.
        backend: who computes the greedy pass (the checks and the order are
            ours either way, and so are the results: the tests assert both
            backends equal): ``"d2lssd"``, this module's blocked algorithm
            (the one the NMS chapter teaches; any float dtype, any device);
            ``"torchvision"``, ``torchvision.ops.nms``'s C++/CUDA kernel
            (float32/float64 on CPU or CUDA); ``"auto"`` (default),
            torchvision's on CUDA and for several groups, ours for one group
            on the CPU (measured faster there) and for other dtypes.

    Returns:
        int64 tensor ``(K,)`` of indices into ``boxes`` of the kept boxes,
        sorted by descending score (equal scores: lower index first, where
        d2l's unstable ``argsort`` leaves the order of ties unspecified).

    Raises:
        ValueError: wrong shapes, input neither float nor integer, NaN,
            degenerate boxes, different devices, a threshold outside [0, 1]
            or an unknown ``backend``.

    Source: d2l.ai §14.4.4 ``nms`` (same name and arguments);
    ``torchvision.ops.nms`` (same results; tested).
    """
    _check_backend(backend)
    boxes, scores = _check_nms_inputs(boxes, scores, iou_threshold)
    return _nms(boxes, scores, iou_threshold, backend=backend)


@_on_one_cpu_thread
def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                iou_threshold: float, *, backend: str = "auto") -> torch.Tensor:
    """Non-maximum suppression done independently within each group (class, image, ...).

    Boxes with different ``idxs`` never suppress each other. Unlike the usual
    trick of shifting each group's coordinates far apart, groups are compared
    directly, so no precision is lost however many groups there are.

    Args:
        boxes: tensor ``(N, 4)``, corner format; floating-point, or integer
            (promoted to the default float dtype).
        scores: tensor ``(N,)``, floating-point or integer (promoted likewise).
        idxs: integer tensor ``(N,)``, the group of each box.
        iou_threshold, backend: as in :func:`nms` (with ``"torchvision"``,
            one ``torchvision.ops.nms`` call per group, on contiguous slices).

    Returns:
        int64 tensor ``(K,)`` of kept indices sorted by descending score
        (equal scores: lower index first; ``torchvision.ops.batched_nms``
        leaves the order of equal scores unspecified).

    Raises:
        ValueError: as :func:`nms`, or ``idxs`` not an integer ``(N,)`` tensor.

    Source: ``torchvision.ops.batched_nms`` (same arguments and results; tested).
    """
    _check_backend(backend)
    boxes, scores = _check_nms_inputs(boxes, scores, iou_threshold)
    if (not isinstance(idxs, torch.Tensor) or idxs.shape != scores.shape
            or idxs.is_floating_point() or idxs.is_complex()):
        raise ValueError(f"idxs must be an integer tensor of shape ({scores.shape[0]},)")
    check_same_device(boxes=boxes, idxs=idxs)
    return _nms(boxes, scores, iou_threshold, idxs, backend)


def _check_detection_inputs(cls_probs, offset_preds, anchors):
    """Validate the SSD outputs of :func:`multibox_detection` / :func:`ssd_postprocess`;
    return ``(cls_probs, offset_preds, anchors (1, A, 4))`` as floats."""
    check_same_device(cls_probs=cls_probs, offset_preds=offset_preds, anchors=anchors)
    cls_probs = as_float(cls_probs, "cls_probs")
    if cls_probs.dim() != 3 or cls_probs.shape[1] < 2:
        raise ValueError("cls_probs must have shape (B, q + 1, A) with q >= 1, got "
                         f"{tuple(cls_probs.shape)}")
    B, _, A = cls_probs.shape
    offset_preds = as_float(offset_preds, "offset_preds")
    if offset_preds.shape not in ((B, A * 4), (B, A, 4)):
        raise ValueError(f"offset_preds must have shape (B, A*4) = ({B}, {A * 4}) or (B, A, 4), got "
                         f"{tuple(offset_preds.shape)}")
    anchors = as_float_boxes(anchors, "anchors", min_dim=2, max_dim=3)
    anc = anchors if anchors.dim() == 3 else anchors[None]
    if anc.shape[0] != 1 or anc.shape[1] != A:
        raise ValueError(f"anchors must have shape (1, A, 4) with A = {A} (from cls_probs), got "
                         f"{tuple(anchors.shape)}")
    return cls_probs, offset_preds, anc


@_on_one_cpu_thread
def multibox_detection(cls_probs: torch.Tensor, offset_preds: torch.Tensor, anchors: torch.Tensor,
                       nms_threshold: float = 0.5, pos_threshold: float = 0.009999999,
                       top_k: int | None = None, class_agnostic: bool = False, *,
                       backend: str = "auto") -> torch.Tensor:
    """Detections from SSD outputs: decode, score threshold, NMS, top-k, for a batch.

    Each anchor proposes one detection: its most likely non-background class
    and that probability as the score, and its decoded box. Proposals scoring
    below ``pos_threshold`` are dropped, NMS runs per image and per class, and
    each image's detections are sorted by descending score.

    Args:
        cls_probs: ``(B, q + 1, A)`` class probabilities (softmax over
            dim 1), class 0 background; d2l's layout.
        offset_preds: ``(B, A * 4)`` (d2l's layout) or ``(B, A, 4)``
            predicted offsets (see :func:`~d2lssd.offsets.offset_inverse`).
        anchors: ``(1, A, 4)`` (or ``(A, 4)``), corner format, normalized.
            The three are floating-point tensors, or integer ones, which are
            promoted to the default float dtype (d2l's NMS section passes
            int64 zero offsets, ``torch.tensor([0] * anchors.numel())``).
        nms_threshold: IoU above which a lower-scoring box is suppressed.
        pos_threshold: minimum score of a detection.
        top_k: keep at most this many rows per image (default: all ``A``).
        class_agnostic: if True, boxes of different classes suppress each
            other, as in d2l; default False: per-class NMS, as in the SSD paper
            and torchvision.
        backend: who runs the NMS, as in :func:`nms` (same results).

    Returns:
        float tensor ``(B, K, 6)`` (float32 for float32 or integer inputs)
        with ``K = min(A, top_k)``; rows
        ``(class, score, xmin, ymin, xmax, ymax)`` with normalized corner
        boxes (not clipped). Each image's kept detections come first, by
        descending score; the remaining rows have class ``-1`` and hold the
        other proposals (suppressed or below threshold) by descending score.

        Differences from d2l: per-class NMS by default; removed rows keep
        their score (d2l shows ``1 - score`` for those below the threshold)
        and are sorted by score rather than by anchor index; ``top_k``.
        With ``class_agnostic=True`` the rows with class >= 0 equal d2l's.

    Raises:
        ValueError: wrong shapes, dtypes other than float or integer, NaN,
            degenerate anchors, mismatched devices or anchor counts,
            thresholds outside [0, 1], ``top_k < 1`` or an unknown ``backend``.

    Source: d2l.ai §14.4.4 ``multibox_detection`` (same name and first five
    arguments); Liu et al. 2016 §3 "Inference".
    """
    _check_backend(backend)
    cls_probs, offset_preds, anc = _check_detection_inputs(cls_probs, offset_preds, anchors)
    B, _, A = cls_probs.shape
    for name, v in (("nms_threshold", nms_threshold), ("pos_threshold", pos_threshold)):
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    if top_k is not None and int(top_k) < 1:
        raise ValueError(f"top_k must be a positive integer or None, got {top_k}")
    K = A if top_k is None else min(A, int(top_k))
    device = cls_probs.device

    # One thread (the decorator): many small ops, see _one_cpu_thread.
    conf, class_id = cls_probs[:, 1:, :].max(dim=1)  # (B, A)
    boxes = _decode(anc, offset_preds.reshape(B, A, 4).to(anc.dtype))  # (B, A, 4)
    # One sort serves NMS and the output: each image's anchors by descending
    # score, equal scores by lower index, which is NMS's order within a group.
    sorted_conf, order = torch.sort(conf, dim=1, descending=True, stable=True)  # (B, A)
    cand_b, cand_r = (sorted_conf >= pos_threshold).nonzero(as_tuple=True)  # by image, then rank
    cand_a = order[cand_b, cand_r]
    groups = cand_b if class_agnostic else cand_b * (cls_probs.shape[1] - 1) + class_id[cand_b, cand_a]
    kept = _nms_in_score_order(boxes[cand_b, cand_a], nms_threshold, groups, backend)
    is_kept = torch.zeros((B, A), dtype=torch.bool, device=device)  # by rank, as ``order``
    is_kept[cand_b[kept], cand_r[kept]] = True
    # Kept rows first, then the rest, each by descending score: stable-sort the
    # score order by "kept" (adding an offset to kept scores instead would
    # lose the order of scores closer than float32 resolution near 2).
    by_kept = torch.sort(is_kept.to(torch.uint8), dim=1, descending=True, stable=True).indices
    order = order.gather(1, by_kept)[:, :K]
    first = torch.arange(order.shape[1], device=device) < is_kept.sum(dim=1, keepdim=True)  # kept rows
    cls_out = torch.where(first, class_id.gather(1, order), -1)
    return torch.cat((cls_out[..., None].to(boxes.dtype), conf.gather(1, order)[..., None],
                      boxes.gather(1, order[..., None].expand(-1, -1, 4))), dim=-1)


@_on_one_cpu_thread
def ssd_postprocess(cls_probs: torch.Tensor, offset_preds: torch.Tensor, anchors: torch.Tensor,
                    nms_threshold: float = 0.45, score_threshold: float = 0.01,
                    topk_candidates: int = 400, detections_per_img: int = 200, clip: bool = True, *,
                    backend: str = "auto") -> torch.Tensor:
    """The SSD paper's (and torchvision's) inference: per-class scores, top-k, per-class NMS, a cap.

    Unlike :func:`multibox_detection` (d2l's semantics: each anchor proposes
    one box, for its most likely class), every anchor proposes a box for
    *every* class whose probability is above ``score_threshold``; for each
    image and class, the ``topk_candidates`` best of them go to NMS (per
    image and class), and each image keeps its ``detections_per_img`` best
    survivors. Vectorised over the batch: one top-k, one batched NMS.

    Args:
        cls_probs: ``(B, q + 1, A)`` class probabilities (softmax over dim 1),
            class 0 background; d2l's layout, as :func:`multibox_detection`.
        offset_preds: ``(B, A * 4)`` or ``(B, A, 4)`` predicted offsets.
        anchors: ``(1, A, 4)`` or ``(A, 4)``, corner format, normalized.
            The three are floating-point (or integer, promoted) tensors on one device.
        nms_threshold: IoU above which a lower-scoring box of the same image
            and class is suppressed (paper, torchvision: 0.45).
        score_threshold: a class score must be strictly greater than this
            (torchvision's rule; 0.01 in the paper and torchvision).
        topk_candidates: per image and class, at most this many boxes enter
            NMS (torchvision: 400), >= 1.
        detections_per_img: per image, at most this many detections are
            kept (paper, torchvision: 200), >= 1.
        clip: clip the decoded boxes to the image, ``[0, 1]`` (torchvision
            clips before NMS; default True).
        backend: who runs the NMS, as in :func:`nms` (same results).

    Returns:
        float tensor ``(B, detections_per_img, 6)``, rows
        ``(class, score, xmin, ymin, xmax, ymax)``: class ``0 .. q - 1``
        (background excluded; torchvision's labels are these plus 1), the
        class probability, the normalized corner box. Each image's detections
        come first, by descending score; the remaining rows are padding,
        class ``-1`` and zeros.

    Raises:
        ValueError: what :func:`multibox_detection` raises for the tensors
            and thresholds, ``topk_candidates`` or ``detections_per_img``
            below 1, an unknown ``backend``.

    Source: Liu et al. 2016 §3 "Inference" (0.01, 0.45, 200 per image);
    torchvision ``SSD.postprocess_detections`` (the top-400 per class; same
    detections, tested, ties in score aside).
    """
    _check_backend(backend)
    cls_probs, offset_preds, anc = _check_detection_inputs(cls_probs, offset_preds, anchors)
    for name, v in (("nms_threshold", nms_threshold), ("score_threshold", score_threshold)):
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    for name, v in (("topk_candidates", topk_candidates), ("detections_per_img", detections_per_img)):
        if int(v) != v or int(v) < 1:
            raise ValueError(f"{name} must be a positive integer, got {v}")
    B, C, A = cls_probs.shape
    q, K = C - 1, int(detections_per_img)
    with _one_cpu_thread(cls_probs.device):  # many small ops: see _one_cpu_thread
        boxes = _decode(anc, offset_preds.reshape(B, A, 4).to(anc.dtype))  # (B, A, 4)
        if clip:
            boxes = boxes.clamp(0.0, 1.0)
        top, anchor = cls_probs[:, 1:, :].topk(min(int(topk_candidates), A), dim=2)  # (B, q, k), by score
        cb, cc, cj = (top > score_threshold).nonzero(as_tuple=True)
        ca = anchor[cb, cc, cj]
        scores = top[cb, cc, cj]
        kept = _nms(boxes[cb, ca], scores, nms_threshold, cb * q + cc, backend)  # by descending score
        kept = kept[torch.sort(cb[kept], stable=True).indices]  # by image, then descending score
        kb = cb[kept]
        counts = torch.bincount(kb, minlength=B)
        rank = torch.arange(kb.shape[0], device=kb.device) - (torch.cumsum(counts, 0) - counts)[kb]
        sel = rank < K
        kept, kb, rank = kept[sel], kb[sel], rank[sel]
        out = torch.zeros((B, K, 6), dtype=boxes.dtype, device=boxes.device)
        out[..., 0] = -1
        out[kb, rank, 0] = cc[kept].to(boxes.dtype)
        out[kb, rank, 1] = scores[kept].to(boxes.dtype)
        out[kb, rank, 2:] = boxes[cb[kept], ca[kept]]
        return out
