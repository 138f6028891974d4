r"""SSD training losses: d2l's loss, and the SSD paper's multibox loss with its parts.

Two families live here.

**d2l's loss** (:func:`ssd_loss`, :func:`calc_loss`), the loss of d2l's TinySSD
chapter, per image:

.. math::

    \ell = \underbrace{\frac{1}{A}\sum_{a=1}^{A} \mathrm{CE}(\hat p_a, c_a)}_{\text{class}}
         + \underbrace{\frac{1}{4A}\sum_{a=1}^{A}\sum_{m=1}^{4} M_{am}\,|\hat o_{am} - o_{am}|}_{\text{box}}

with ``A`` anchors, class targets ``c_a`` (0 = background), offset targets
``o`` and the 0/1 mask ``M`` that selects the positive anchors (all from
:func:`d2lssd.multibox_target`).

Units: the class term is in nats per anchor (cross-entropy with the natural
log, averaged over *all* anchors, background included); the box term is in
offset units (the variance-scaled offsets of :func:`d2lssd.offset_boxes`),
summed over the positive anchors' entries but divided by *all* ``4A``
entries, as d2l does. With a few positives among thousands of anchors the box
term is therefore small; the SSD paper instead divides both terms by the
number of positives (later chapter, with smooth L1 and hard negative mining).

**The SSD paper's multibox loss** (:func:`multibox_loss`, Liu et al. 2016,
§2.2 eq. 1):

.. math::

    L = \frac{1}{N}\Bigl(\sum_{a \in \mathrm{Pos} \cup \mathrm{Neg}} \mathrm{CE}(\hat p_a, c_a)
        + \alpha \sum_{a \in \mathrm{Pos}} \sum_{m=1}^{4} \mathrm{smooth}_{L1}(\hat o_{am} - o_{am})\Bigr)

with ``N`` the number of positive (matched) anchors, ``Pos`` the positives and
``Neg`` the hardest negatives found by :func:`hard_negative_mining` (at most 3
per positive). Its parts are separate functions so the chapters can plot and
test them: :func:`smooth_l1` (d2l's ``sigma`` and PyTorch's ``beta``) and
:func:`hard_negative_mining` here; :func:`focal_loss` (softmax form over
``q + 1`` classes) and :func:`sigmoid_focal_loss` (Lin et al. 2017, equal to
``torchvision.ops.sigmoid_focal_loss``) in :mod:`d2lssd.focal`, re-exported
here (``d2lssd.losses.focal_loss`` works as before). :class:`MultiBoxLoss` holds one
configuration of :func:`multibox_loss` and plugs into
:func:`d2lssd.train_ssd` as ``loss_fn``.

Every function here is vectorised over images and anchors (no Python loop),
runs on any device and computes in float32 or wider, also for float16 inputs.

Source: d2l.ai §14.7.3.2 "Defining Loss and Evaluation Functions"
(``calc_loss``) and §14.7.6 exercises (``smooth_l1``, ``focal_loss``);
Liu et al. 2016 §2.2 "Training objective" and "Hard negative mining";
Lin et al. 2017 "Focal Loss for Dense Object Detection" §3; Girshick 2015
(Fast R-CNN) eq. 3 for smooth L1.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ._checks import check_dtype, float32_or_wider
from .focal import _check_gamma_alpha, _focal_loss, focal_loss, sigmoid_focal_loss

__all__ = ["ssd_loss", "calc_loss", "smooth_l1", "focal_loss", "sigmoid_focal_loss", "hard_negative_mining",
           "multibox_loss", "MultiBoxLoss"]


def _check_loss_inputs(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks):
    """Validate shapes and dtypes; return ``bbox_preds`` as ``(B, A * 4)``."""
    for name, t in (("cls_preds", cls_preds), ("cls_labels", cls_labels), ("bbox_preds", bbox_preds),
                    ("bbox_labels", bbox_labels), ("bbox_masks", bbox_masks)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if cls_preds.dim() != 3 or not cls_preds.is_floating_point() or cls_preds.shape[2] < 2:
        raise ValueError("cls_preds must be float logits (B, A, q + 1) with q >= 1, got "
                         f"{cls_preds.dtype} {tuple(cls_preds.shape)}")
    B, A, C = cls_preds.shape
    if cls_labels.shape != (B, A) or cls_labels.is_floating_point() or cls_labels.dtype == torch.bool:
        raise ValueError(f"cls_labels must be an integer tensor (B, A) = ({B}, {A}), got "
                         f"{cls_labels.dtype} {tuple(cls_labels.shape)}")
    if bbox_preds.shape == (B, A, 4):
        bbox_preds = bbox_preds.reshape(B, A * 4)
    if bbox_preds.shape != (B, A * 4) or not bbox_preds.is_floating_point():
        raise ValueError(f"bbox_preds must be float (B, A * 4) = ({B}, {A * 4}) or (B, A, 4), got "
                         f"{bbox_preds.dtype} {tuple(bbox_preds.shape)}")
    for name, t in (("bbox_labels", bbox_labels), ("bbox_masks", bbox_masks)):
        if t.shape != (B, A * 4) or not t.is_floating_point():
            raise ValueError(f"{name} must be float (B, A * 4) = ({B}, {A * 4}), got "
                             f"{t.dtype} {tuple(t.shape)}")
    if cls_labels.numel():
        lo, hi = int(cls_labels.min()), int(cls_labels.max())
        if lo < 0 or hi >= C:
            raise ValueError(f"cls_labels must be in [0, {C - 1}] (0 = background, q + 1 = {C} "
                             f"classes from cls_preds), got values in [{lo}, {hi}]")
    return bbox_preds


def ssd_loss(cls_preds: torch.Tensor, cls_labels: torch.Tensor, bbox_preds: torch.Tensor,
             bbox_labels: torch.Tensor, bbox_masks: torch.Tensor, reduction: str = "none") -> torch.Tensor:
    """d2l's SSD loss: per-anchor cross-entropy averaged per image plus masked L1 on offsets.

    Args:
        cls_preds: float ``(B, A, q + 1)`` class logits (class 0 background),
            as returned by the model.
        cls_labels: integer ``(B, A)`` targets in ``0 .. q`` (from
            :func:`d2lssd.multibox_target`).
        bbox_preds: float ``(B, A * 4)`` (d2l's layout) or ``(B, A, 4)``
            predicted offsets.
        bbox_labels: float ``(B, A * 4)`` target offsets.
        bbox_masks: float ``(B, A * 4)``, 1 for the entries of positive
            anchors, 0 elsewhere.
        reduction: ``"none"`` (default, as d2l: one loss per image),
            ``"mean"`` or ``"sum"`` over the batch.

    Returns:
        float tensor ``(B,)`` for ``"none"``, else a scalar: class term (nats
        per anchor) plus box term (offset units per anchor entry), see the
        module docstring. Computed in float32 or wider even when the
        predictions are float16 (mixed precision).

    Raises:
        ValueError: shapes that do not match ``(B, A, q + 1)`` / ``(B, A)`` /
            ``(B, A * 4)``, float class labels, labels outside ``0 .. q``, or
            an unknown ``reduction``. (NaN predictions are not checked here;
            the training loop checks the loss.)

    Source: d2l.ai §14.7.3.2 ``calc_loss`` (same arguments and values).
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    bbox_preds = _check_loss_inputs(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
    return _ssd_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks, reduction)


def _ssd_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks, reduction="none"):
    """:func:`ssd_loss` without checks (``bbox_preds`` ``(B, A * 4)`` or ``(B, A, 4)``)."""
    B, A, C = cls_preds.shape
    bbox_preds = bbox_preds.reshape(B, A * 4)
    dtype = torch.promote_types(cls_preds.dtype, torch.float32)
    cls = F.cross_entropy(cls_preds.reshape(-1, C).to(dtype), cls_labels.reshape(-1).long(),
                          reduction="none").reshape(B, A).mean(dim=1)
    bbox = ((bbox_preds.to(dtype) - bbox_labels.to(dtype)) * bbox_masks.to(dtype)).abs().mean(dim=1)
    loss = cls + bbox
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def calc_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks):
    """d2l's name for :func:`ssd_loss` (per-image losses ``(B,)``).

    Source: d2l.ai §14.7.3.2 ``calc_loss``.
    """
    return ssd_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)


# --------------------------------------------------------------------------- the SSD paper's loss


def _beta_from(sigma, beta) -> float:
    if sigma is not None and beta is not None:
        raise ValueError("give either sigma (d2l's form) or beta (PyTorch's form), not both; "
                         "beta = 1 / sigma**2")
    if beta is None:
        sigma = 1.0 if sigma is None else float(sigma)
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        return 1.0 / sigma ** 2
    beta = float(beta)
    if not beta >= 0 or math.isinf(beta):
        raise ValueError(f"beta must be a finite number >= 0, got {beta}")
    return beta


def smooth_l1(x: torch.Tensor, sigma: float | None = None, *, beta: float | None = None) -> torch.Tensor:
    r"""Smooth L1 of every element of ``x``: quadratic near 0, linear (slope 1) beyond.

    Two parameterisations of the same function are in use:

    * d2l's ``sigma``: :math:`f(x) = (\sigma x)^2 / 2` if :math:`|x| < 1/\sigma^2`,
      else :math:`|x| - 0.5/\sigma^2`;
    * PyTorch's ``beta`` (``torch.nn.functional.smooth_l1_loss``):
      :math:`f(x) = 0.5 x^2 / \beta` if :math:`|x| < \beta`, else :math:`|x| - 0.5\beta`.

    They are equal for :math:`\beta = 1/\sigma^2`. ``beta = 0`` (or ``sigma``
    to infinity) is plain L1; a large ``beta`` (small ``sigma``) is a scaled
    L2 over a wider range. The SSD paper and torchvision use ``beta = 1``
    (``sigma = 1``), the default.

    Args:
        x: float tensor of any shape (differences, e.g. predicted minus target
            offsets, in offset units).
        sigma: d2l's parameter, > 0. Default (neither given): 1.
        beta: PyTorch's parameter, >= 0. Give ``sigma`` or ``beta``, not both.

    Returns:
        tensor of ``x``'s shape, float32 or wider, >= 0.

    Raises:
        ValueError: ``x`` not a float tensor; both ``sigma`` and ``beta``;
            ``sigma <= 0``; ``beta`` negative or infinite.

    Source: Girshick 2015 (Fast R-CNN) eq. 3; d2l.ai §14.7.6 exercise 1
    (``smooth_l1(data, scalar)``, ``scalar`` = sigma); PyTorch's
    ``smooth_l1_loss`` for ``beta``.
    """
    check_dtype(x, "x")
    beta = _beta_from(sigma, beta)
    x = float32_or_wider(x)
    ax = x.abs()
    if beta == 0:
        return ax
    return torch.where(ax < beta, 0.5 * x * x / beta, ax - 0.5 * beta)



def hard_negative_mining(conf_loss: torch.Tensor, cls_labels: torch.Tensor, neg_pos_ratio: float = 3.0,
                         min_negatives: int = 3) -> torch.Tensor:
    """The hardest background anchors of each image: at most ``neg_pos_ratio`` per positive.

    For every image, the negatives (anchors with label 0) are ranked by their
    classification loss, highest first, and the top
    ``k = max(floor(neg_pos_ratio * num_positives), min_negatives)`` are kept
    (all of them if the image has fewer negatives). Positives are masked out
    *before* ranking, so a positive is never counted as a negative. Ties are
    broken by anchor index (the lower index wins), so the result is
    deterministic. The ranking does not carry gradients.

    ``min_negatives`` keeps an image without objects (no positives) in the
    loss: with the paper's rule alone it would mine ``3 * 0 = 0`` negatives
    and contribute exactly zero, so a model would never be told that an empty
    image is empty. The default, 3, treats such an image like one with one
    positive.

    Args:
        conf_loss: float ``(B, A)``, the per-anchor classification loss (e.g.
            cross-entropy against ``cls_labels``); only its order matters.
        cls_labels: integer ``(B, A)``, 0 = background, > 0 = positive.
        neg_pos_ratio: negatives per positive, > 0 (SSD: 3).
        min_negatives: least number of negatives per image, >= 0.

    Returns:
        bool ``(B, A)``: True for the mined negatives. Never True where
        ``cls_labels > 0``.

    Raises:
        ValueError: shapes other than ``(B, A)`` and equal, non-float
            ``conf_loss``, non-integer labels, ``neg_pos_ratio <= 0``,
            ``min_negatives < 0`` or not an integer.

    Source: Liu et al. 2016 §2.2 "Hard negative mining" (3:1); the minimum
    is ours (with the paper's rule alone an image without objects gives a
    loss of exactly zero, as said above; tested in tests/test_multibox_loss.py).
    """
    check_dtype(conf_loss, "conf_loss")
    check_dtype(cls_labels, "cls_labels", floating=False)
    if conf_loss.dim() != 2 or cls_labels.shape != conf_loss.shape or cls_labels.dtype == torch.bool:
        raise ValueError(f"conf_loss and cls_labels must both be (B, A), cls_labels integer; got "
                         f"{tuple(conf_loss.shape)} and {cls_labels.dtype} {tuple(cls_labels.shape)}")
    _check_mining_options(neg_pos_ratio, min_negatives)
    return _hard_negative_mining(conf_loss, cls_labels, float(neg_pos_ratio), int(min_negatives))


def _check_mining_options(neg_pos_ratio, min_negatives) -> None:
    if not float(neg_pos_ratio) > 0 or math.isinf(float(neg_pos_ratio)):
        raise ValueError(f"neg_pos_ratio must be a finite number > 0, got {neg_pos_ratio}")
    if int(min_negatives) != min_negatives or min_negatives < 0:
        raise ValueError(f"min_negatives must be an integer >= 0, got {min_negatives}")


def _hard_negative_mining(conf_loss: torch.Tensor, cls_labels: torch.Tensor, neg_pos_ratio: float,
                          min_negatives: int) -> torch.Tensor:
    """:func:`hard_negative_mining` without checks and without sorting all anchors.

    Only the ``k``-th largest negative loss of each image is needed (one
    ``topk`` of the largest ``k`` in the batch, a few hundred of thousands of
    anchors): every negative above it is mined, and of those equal to it the
    ones with the lowest indices, as many as are still missing. That is what
    a stable sort by descending loss gives (torchvision sorts twice), at a
    fraction of the cost.
    """
    negative = cls_labels == 0
    B, A = conf_loss.shape
    num_neg = negative.sum(dim=1)
    num_pos = (cls_labels > 0).sum(dim=1)
    k = torch.clamp((num_pos.double() * neg_pos_ratio).floor().long(), min=min_negatives)
    k = torch.minimum(k, num_neg)  # (B,): never more than the image's negatives
    k_max = min(int(k.max()) if B else 0, A)  # one host sync: the size of the top-k
    if k_max == 0:
        return torch.zeros_like(negative)
    loss = conf_loss.detach()
    if loss.dtype in (torch.float16, torch.bfloat16, torch.float32):
        # One int64 key per anchor, unique and in the order of the stable sort:
        # the float32 bits made monotone (high half), then "A - 1 - index"
        # (low half: the lower index wins a tie). Non-negatives get the lowest key.
        bits = (loss.float() + 0.0).view(torch.int32).long()  # + 0.0: -0.0 becomes 0.0, a tie
        bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # negative floats: reverse their order
        key = (bits << 32) | (A - 1 - torch.arange(A, device=loss.device))
        key = key.masked_fill_(~negative, torch.iinfo(torch.int64).min)
        kth = key.topk(k_max, dim=1, sorted=True).values.gather(1, (k - 1).clamp(min=0)[:, None])
        return (key >= kth) & negative & (k[:, None] > 0)
    score = loss.masked_fill(~negative, -math.inf)
    top = score.topk(k_max, dim=1, sorted=True).values  # (B, k_max), descending
    kth = top.gather(1, (k - 1).clamp(min=0)[:, None])  # (B, 1): the k-th largest negative loss
    above = score > kth
    tied = (score == kth) & negative
    # of the ties, the lowest indices: as many as "k minus the number above"
    missing = k[:, None] - (top > kth).sum(dim=1, keepdim=True)
    chosen = above | (tied & (torch.cumsum(tied, dim=1) <= missing))
    return chosen & negative & (k[:, None] > 0)


_CLS_LOSSES = ("hard_negative", "focal", "cross_entropy")
_BOX_LOSSES = ("smooth_l1", "l1")
_NORMALIZE = ("batch", "image")


def multibox_loss(cls_preds: torch.Tensor, cls_labels: torch.Tensor, bbox_preds: torch.Tensor,
                  bbox_labels: torch.Tensor, bbox_masks: torch.Tensor, *, cls_loss: str = "hard_negative",
                  box_loss: str = "smooth_l1", alpha: float = 1.0, beta: float = 1.0,
                  neg_pos_ratio: float = 3.0, min_negatives: int = 3, focal_gamma: float = 2.0,
                  focal_alpha: float | None = 0.25, normalize: str = "batch",
                  reduction: str = "none") -> torch.Tensor:
    r"""The SSD paper's multibox loss, :math:`(L_{conf} + \alpha L_{loc}) / N`, per image.

    Same arguments as :func:`ssd_loss` (d2l's loss), so it is a drop-in
    ``loss_fn`` for :func:`d2lssd.train_ssd` (through :class:`MultiBoxLoss`
    or ``functools.partial`` to fix the options).

    * Class term ``cls_loss``: ``"hard_negative"`` (the paper):
      cross-entropy summed over the positives and the negatives mined by
      :func:`hard_negative_mining`; ``"focal"``: :func:`focal_loss` summed
      over *all* anchors (RetinaNet's recipe: no mining); ``"cross_entropy"``:
      cross-entropy summed over all anchors (no mining, for comparison).
    * Box term ``box_loss``: ``"smooth_l1"`` (the paper, :func:`smooth_l1`
      with ``beta``) or ``"l1"`` (d2l's), summed over the positive anchors'
      offsets.
    * ``N`` is the number of positive anchors: over the whole batch for
      ``normalize="batch"`` (the paper, torchvision, ssd.pytorch: every
      positive of the batch weighs the same), or per image for ``"image"``.
      ``N = 0`` (a batch, or an image, without objects) divides by 1 instead,
      so the loss is the mined negatives' cross-entropy, never NaN.

    With ``normalize="batch"`` the per-image values are scaled by ``B / N``,
    so that their **mean over the batch** (what :func:`d2lssd.train_ssd`
    minimises) is the paper's :math:`(L_{conf} + \alpha L_{loc}) / N`.

    Args:
        cls_preds: float ``(B, A, q + 1)`` logits (class 0 background).
        cls_labels: integer ``(B, A)`` targets in ``0 .. q``.
        bbox_preds: float ``(B, A * 4)`` or ``(B, A, 4)`` offsets.
        bbox_labels, bbox_masks: float ``(B, A * 4)`` target offsets and
            positive mask (from :func:`d2lssd.multibox_target`).
        cls_loss, box_loss, normalize: see above.
        alpha: weight of the box term, >= 0 (paper: 1).
        beta: smooth L1's ``beta`` (= 1 / sigma^2; paper: 1).
        neg_pos_ratio, min_negatives: see :func:`hard_negative_mining`.
        focal_gamma, focal_alpha: see :func:`focal_loss` (defaults 2 and
            0.25, Lin et al.).
        reduction: ``"none"`` (default: ``(B,)``), ``"mean"`` or ``"sum"``.

    Returns:
        float tensor ``(B,)`` for ``"none"``, else a scalar; float32 or wider
        even for float16 predictions. Units: nats plus offset units, per
        positive anchor.

    Raises:
        ValueError: bad shapes, dtypes or label values (as :func:`ssd_loss`),
            an unknown ``cls_loss``, ``box_loss``, ``normalize`` or
            ``reduction``, a negative ``alpha`` or ``beta``, and what
            :func:`hard_negative_mining` and :func:`focal_loss` raise.

    Source: Liu et al. 2016 §2.2 eq. 1-2 (and "Hard negative mining");
    Lin et al. 2017 §3-4 for the focal variant; torchvision's
    ``SSD.compute_loss`` for normalising by the batch's positives.
    """
    for name, value, allowed in (("cls_loss", cls_loss, _CLS_LOSSES), ("box_loss", box_loss, _BOX_LOSSES),
                                 ("normalize", normalize, _NORMALIZE),
                                 ("reduction", reduction, ("none", "mean", "sum"))):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    if not float(alpha) >= 0 or math.isinf(float(alpha)):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    beta = _beta_from(None, beta)
    if cls_loss == "hard_negative":
        _check_mining_options(neg_pos_ratio, min_negatives)
    if cls_loss == "focal":
        _check_gamma_alpha(focal_gamma, focal_alpha)
    bbox_preds = _check_loss_inputs(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
    return _multibox_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks, cls_loss=cls_loss,
                          box_loss=box_loss, alpha=float(alpha), beta=beta, neg_pos_ratio=float(neg_pos_ratio),
                          min_negatives=int(min_negatives), focal_gamma=float(focal_gamma),
                          focal_alpha=focal_alpha, normalize=normalize, reduction=reduction)


def _multibox_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks, *, cls_loss="hard_negative",
                   box_loss="smooth_l1", alpha=1.0, beta=1.0, neg_pos_ratio=3.0, min_negatives=3,
                   focal_gamma=2.0, focal_alpha=0.25, normalize="batch", reduction="none"):
    """:func:`multibox_loss` without checks (options already validated).

    The one host sync left is the size of the hard-negative top-k.
    """
    B, A, C = cls_preds.shape
    bbox_preds = bbox_preds.reshape(B, A * 4)
    logits = float32_or_wider(cls_preds)
    labels = cls_labels.long()
    positive = labels > 0
    if cls_loss == "focal":
        conf = _focal_loss(logits, labels, float(focal_gamma), focal_alpha).sum(dim=1)
    else:
        ce = F.cross_entropy(logits.reshape(-1, C), labels.reshape(-1), reduction="none").reshape(B, A)
        if cls_loss == "hard_negative":
            keep = positive | _hard_negative_mining(ce, labels, float(neg_pos_ratio), int(min_negatives))
            ce = ce * keep
        conf = ce.sum(dim=1)
    dtype = logits.dtype
    diff = (bbox_preds.to(dtype) - bbox_labels.to(dtype)) * bbox_masks.to(dtype)
    if box_loss == "smooth_l1":  # one fused kernel: equal to smooth_l1(diff, beta=beta)
        loc = F.smooth_l1_loss(diff, torch.zeros((), dtype=dtype, device=diff.device).expand_as(diff),
                               reduction="none", beta=beta).sum(dim=1)
    else:
        loc = diff.abs().sum(dim=1)
    total = conf + float(alpha) * loc
    num_pos = positive.sum(dim=1).to(dtype)
    if normalize == "batch":
        loss = total * (B / num_pos.sum().clamp_min(1.0))
    else:
        loss = total / num_pos.clamp_min(1.0)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class MultiBoxLoss:
    """One configuration of :func:`multibox_loss`, to pass as ``loss_fn`` to :func:`d2lssd.train_ssd`.

    ``MultiBoxLoss(**options)(cls_preds, cls_labels, bbox_preds, bbox_labels,
    bbox_masks)`` equals ``multibox_loss(..., **options)``; the options are
    those of :func:`multibox_loss` (``cls_loss``, ``box_loss``, ``alpha``,
    ``beta``, ``neg_pos_ratio``, ``min_negatives``, ``focal_gamma``,
    ``focal_alpha``, ``normalize``, ``reduction``) and are checked when the
    object is made. ``repr`` names them, so a printed recipe says what ran.

    Raises:
        ValueError: an unknown option name or a bad value (as
            :func:`multibox_loss`).

    Source: ours (torchvision keeps the same settings on its ``SSD`` model).
    """

    def __init__(self, **options):
        import inspect

        allowed = [p.name for p in inspect.signature(multibox_loss).parameters.values()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"unknown MultiBoxLoss option(s) {unknown}; allowed: {allowed}")
        self.options = dict(options)
        # check the values once, on a tiny input
        multibox_loss(torch.zeros(1, 1, 2), torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 4),
                      torch.zeros(1, 4), torch.zeros(1, 4), **self.options)

    def __call__(self, cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks):
        return multibox_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks, **self.options)

    def unchecked(self, cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks):
        """The same loss without the input checks (and their host syncs); for the
        training loop, which checks the first batch and every change of shapes."""
        return _multibox_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks, **self.options)

    def __repr__(self) -> str:
        return "MultiBoxLoss(" + ", ".join(f"{k}={v!r}" for k, v in self.options.items()) + ")"


#: The unchecked twins the training loop uses after the first batch
#: (``loss_fn.unchecked``, see :func:`d2lssd.train_ssd`).
ssd_loss.unchecked = _ssd_loss
calc_loss.unchecked = _ssd_loss
