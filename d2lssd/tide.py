"""Reading a detector's errors by kind: the error types of TIDE (Bolya et al., ECCV 2020).

A single AP number says *how much* a detector misses, not *why*. TIDE splits
the missing AP50 into six kinds of error and reports, for each, the AP50 the
detector would gain if that kind alone were fixed by an oracle (``dAP``).
With ``fg_iou`` = 0.5 (a true positive's IoU) and ``bg_iou`` = 0.1, every
detection that is not a true positive is, in this order:

* ``duplicate``: IoU >= ``fg_iou`` with a ground truth of its class that a
  higher-scoring detection already matched. Fix: drop it.
* ``classification``: IoU >= ``fg_iou`` with a ground truth of another class.
  Fix: give it that class (dropped if that ground truth is already detected).
* ``localization``: the right class, ``bg_iou`` <= IoU < ``fg_iou``.
  Fix: replace its box by the ground truth's (dropped if already detected).
* ``both``: another class and ``bg_iou`` <= IoU < ``fg_iou``. Fix: drop it.
* ``background``: IoU < ``bg_iou`` with every ground truth. Fix: drop it.

and every ground truth that no true positive matched and that no
classification or localization error points at is ``missed``; fix: remove
it from the evaluation (as TIDE does). Each fix is applied alone to the
detections, and AP50 is computed again with :func:`d2lssd.mean_average_precision`
(COCO's 101-point AP at IoU 0.5, averaged over classes with ground truth).
Because AP is not additive, the six ``dAP`` do not sum to ``1 - AP50``.

Matching is COCO's (and :func:`mean_average_precision`'s): per image and
class, detections by descending score, each taking the unmatched ground truth
of its class with the highest IoU >= ``fg_iou``; IoU is :func:`d2lssd.box_iou`.
Crowd regions are not handled (pass only ``iscrowd=0`` ground truth).

Source: D. Bolya, S. Foley, J. Hays, J. Hoffman, "TIDE: A General Toolbox for
Identifying Object Detection Errors", ECCV 2020 (§2, error definitions and
oracle fixes); written for d2lssd from the paper, not from the ``tidecv`` code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .boxes import box_iou

__all__ = ["KINDS", "ErrorBreakdown", "classify_errors", "error_breakdown"]

#: The error kinds, in TIDE's order.
KINDS = ("classification", "localization", "both", "duplicate", "background", "missed")


def _as_list(x, width: int, name: str) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        if x.dim() != 3 or x.shape[-1] != width:
            raise ValueError(f"{name}: expected (B, N, {width}) or a list of (N_i, {width}) tensors, "
                             f"got shape {tuple(x.shape)}")
        x = list(x)
    out = []
    for i, t in enumerate(x):
        t = torch.as_tensor(t, dtype=torch.float32).detach().cpu()
        if t.numel() == 0:
            t = t.reshape(0, width)
        if t.dim() != 2 or t.shape[1] != width:
            raise ValueError(f"{name}[{i}]: expected shape (N, {width}), got {tuple(t.shape)}")
        if torch.isnan(t).any():
            raise ValueError(f"{name}[{i}] contains NaN")
        out.append(t[t[:, 0] >= 0])  # class -1 rows are padding
    return out


def classify_errors(detections, targets, fg_iou: float = 0.5, bg_iou: float = 0.1) -> list[dict]:
    """The kind of every detection and which ground truths are missed, image by image.

    Args:
        detections: list of ``B`` float tensors ``(K_i, 6)`` rows ``(class, score,
            xmin, ymin, xmax, ymax)`` (as :func:`d2lssd.predict` returns), or
            ``(B, K, 6)``; rows of class -1 are ignored.
        targets: list of ``B`` float tensors ``(G_i, 5)`` rows ``(class, xmin,
            ymin, xmax, ymax)`` in the same unit, or ``(B, G, 5)`` padded with class -1.
        fg_iou: IoU of a true positive (0.5). bg_iou: below it a detection is background (0.1).

    Returns:
        ``B`` dicts with ``"detections"`` ``(K_i, 6)`` (padding removed, sorted by
        descending score), ``"targets"`` ``(G_i, 5)``, ``"kind"`` (list of
        ``K_i`` strings: ``"tp"`` or one of :data:`KINDS` but ``"missed"``),
        ``"target"`` (long ``(K_i,)``: the ground truth a true positive,
        classification or localization error points at, else -1) and
        ``"missed"`` (bool ``(G_i,)``).

    Raises:
        ValueError: different numbers of images, bad shapes, NaN, or
            thresholds not ``0 <= bg_iou <= fg_iou <= 1``.
    """
    if not 0.0 <= bg_iou <= fg_iou <= 1.0:
        raise ValueError(f"need 0 <= bg_iou <= fg_iou <= 1, got bg_iou={bg_iou}, fg_iou={fg_iou}")
    dets = _as_list(detections, 6, "detections")
    gts = _as_list(targets, 5, "targets")
    if len(dets) != len(gts):
        raise ValueError(f"detections has {len(dets)} images but targets has {len(gts)}")
    out = []
    for d, g in zip(dets, gts):
        d = d[torch.argsort(d[:, 1], descending=True, stable=True)]
        iou = box_iou(d[:, 2:], g[:, 1:]) if len(d) and len(g) else torch.zeros(len(d), len(g))
        same = d[:, :1] == g[:, 0][None]  # (K, G)
        matched = torch.zeros(len(g), dtype=torch.bool)
        kinds, target = [], torch.full((len(d),), -1, dtype=torch.long)
        for j in range(len(d)):  # per image: a few detections, sequential by definition
            free = same[j] & ~matched & (iou[j] >= fg_iou)
            if free.any():
                t = int(torch.where(free, iou[j], torch.tensor(-1.0)).argmax())
                matched[t] = True
                kinds.append("tp")
                target[j] = t
                continue
            s = torch.where(same[j], iou[j], torch.tensor(-1.0))
            o = torch.where(~same[j], iou[j], torch.tensor(-1.0))
            s_max = float(s.max()) if len(g) else -1.0
            o_max = float(o.max()) if len(g) else -1.0
            if s_max >= fg_iou:
                kinds.append("duplicate")
            elif o_max >= fg_iou:
                kinds.append("classification")
                target[j] = int(o.argmax())
            elif s_max >= bg_iou:
                kinds.append("localization")
                target[j] = int(s.argmax())
            elif o_max >= bg_iou:
                kinds.append("both")
            else:
                kinds.append("background")
        pointed = torch.zeros(len(g), dtype=torch.bool)
        for j, k in enumerate(kinds):
            if k in ("classification", "localization"):
                pointed[target[j]] = True
        out.append(dict(detections=d, targets=g, kind=kinds, target=target, missed=~matched & ~pointed))
    return out


def _fix(images: list[dict], kind: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Detections and targets with the errors of ``kind`` fixed by the oracle (module docstring)."""
    dets, gts = [], []
    for im in images:
        d, g = im["detections"].clone(), im["targets"]
        if kind == "missed":
            dets.append(d)
            gts.append(g[~im["missed"]])
            continue
        keep = torch.ones(len(d), dtype=torch.bool)
        used = {int(t) for t, k in zip(im["target"], im["kind"]) if k == "tp"}
        for j, k in enumerate(im["kind"]):
            if k != kind:
                continue
            t = int(im["target"][j])
            if kind in ("classification", "localization") and t not in used:
                if kind == "classification":
                    d[j, 0] = g[t, 0]
                else:
                    d[j, 2:] = g[t, 1:]
                used.add(t)
            else:
                keep[j] = False
        dets.append(d[keep])
        gts.append(g)
    return dets, gts


@dataclass
class ErrorBreakdown:
    """The result of :func:`error_breakdown`.

    Attributes:
        AP50: COCO AP at IoU 0.5 of the detections as they are.
        dAP: ``{kind: AP50 gained when that kind is fixed}`` for each of :data:`KINDS`.
        counts: ``{kind: number of detections (ground truths for "missed") of that kind}``,
            plus ``"tp"``.
        per_class: ``{class name: {kind: count}}``.
    """

    AP50: float
    dAP: dict
    counts: dict
    per_class: dict = field(default_factory=dict)

    def table(self) -> str:
        """A text table, one line per kind: count and dAP."""
        lines = [f"AP50 {self.AP50:.3f}   ({self.counts['tp']} true positives)",
                 f"{'error':<15}{'count':>7}{'dAP50':>9}"]
        lines += [f"{k:<15}{self.counts[k]:>7}{self.dAP[k]:>9.3f}" for k in KINDS]
        return "\n".join(lines)


def error_breakdown(detections, targets, classes=None, fg_iou: float = 0.5, bg_iou: float = 0.1
                    ) -> ErrorBreakdown:
    """TIDE's breakdown of the missing AP50 into six kinds of error (module docstring).

    Args:
        detections, targets, fg_iou, bg_iou: as :func:`classify_errors`
            (normalized corner boxes, classes ``0 .. q - 1``).
        classes: optional names, ``classes[c]`` of class ``c`` (for ``per_class``;
            default the class numbers).

    Returns:
        An :class:`ErrorBreakdown`. A perfect detector has AP50 1 and every
        ``dAP`` 0; with no ground truth at all, AP50 and every ``dAP`` are NaN.

    Raises:
        ValueError: as :func:`classify_errors`.

    Example:
        >>> gt = [torch.tensor([[0., .1, .1, .5, .5]])]
        >>> dup = [torch.tensor([[0., .9, .1, .1, .5, .5], [0., .8, .1, .1, .5, .5]])]
        >>> error_breakdown(dup, gt).counts["duplicate"]
        1
    """
    from .metrics import mean_average_precision

    images = classify_errors(detections, targets, fg_iou=fg_iou, bg_iou=bg_iou)
    dets = [im["detections"] for im in images]
    gts = [im["targets"] for im in images]

    def ap50(d, g):
        return float(mean_average_precision(d, g, iou_thresholds=[fg_iou])["AP50"])

    base = ap50(dets, gts)
    dap = {k: ap50(*_fix(images, k)) - base for k in KINDS}
    counts = {k: 0 for k in ("tp",) + KINDS}
    per_class: dict = {}

    def name(c):
        c = int(c)
        return classes[c] if classes is not None else c

    for im in images:
        for row, k in zip(im["detections"], im["kind"]):
            counts[k] += 1
            per_class.setdefault(name(row[0]), {kk: 0 for kk in ("tp",) + KINDS})[k] += 1
        for row in im["targets"][im["missed"]]:
            counts["missed"] += 1
            per_class.setdefault(name(row[0]), {kk: 0 for kk in ("tp",) + KINDS})["missed"] += 1
    return ErrorBreakdown(AP50=base, dAP=dap, counts=counts, per_class=per_class)
