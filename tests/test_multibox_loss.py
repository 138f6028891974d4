"""The SSD paper's loss and its parts: smooth L1, focal loss, hard negative mining, multibox_loss."""

import math

import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

import d2lssd
from d2lssd.losses import (MultiBoxLoss, focal_loss, hard_negative_mining, multibox_loss, sigmoid_focal_loss,
                           smooth_l1)


def d2l_smooth_l1(data, scalar):
    """d2l.ai §14.7.6's smooth L1 (element by element, with its sigma called ``scalar``)."""
    out = []
    for x in data.tolist():
        out.append((scalar * x) ** 2 / 2 if abs(x) < 1 / scalar ** 2 else abs(x) - 0.5 / scalar ** 2)
    return torch.tensor(out)


def random_batch(b=3, a=40, c=3, seed=0, pos_share=0.2):
    g = torch.Generator().manual_seed(seed)
    cls_preds = torch.randn(b, a, c, generator=g) * 2
    cls_labels = torch.where(torch.rand(b, a, generator=g) < pos_share,
                             torch.randint(1, c, (b, a), generator=g), torch.zeros(b, a, dtype=torch.long))
    bbox_preds = torch.randn(b, a * 4, generator=g)
    bbox_labels = torch.randn(b, a * 4, generator=g)
    bbox_masks = (cls_labels > 0).float().repeat_interleave(4, dim=1)
    return cls_preds, cls_labels, bbox_preds, bbox_labels * bbox_masks, bbox_masks


# --------------------------------------------------------------------------- smooth L1


@pytest.mark.parametrize("sigma", [10.0, 1.0, 0.5])
def test_smooth_l1_sigma_equals_d2l_and_torch_with_beta_one_over_sigma_squared(sigma):
    x = torch.linspace(-3, 3, 601)
    ours = smooth_l1(x, sigma)
    torch.testing.assert_close(ours, d2l_smooth_l1(x, sigma))
    torch.testing.assert_close(ours, F.smooth_l1_loss(x, torch.zeros_like(x), reduction="none",
                                                      beta=1 / sigma ** 2))
    torch.testing.assert_close(smooth_l1(x, beta=1 / sigma ** 2), ours)


@pytest.mark.parametrize("beta", [0.0, 0.11, 1.0, 3.0])
def test_smooth_l1_beta_equals_torch(beta):
    x = torch.randn(500, generator=torch.Generator().manual_seed(1)) * 4
    torch.testing.assert_close(smooth_l1(x, beta=beta),
                               F.smooth_l1_loss(x, torch.zeros_like(x), reduction="none", beta=beta))


def test_smooth_l1_known_values_and_default_is_beta_one():
    x = torch.tensor([0.0, 0.5, -0.5, 1.0, 2.0, -4.0])
    torch.testing.assert_close(smooth_l1(x), torch.tensor([0.0, 0.125, 0.125, 0.5, 1.5, 3.5]))
    assert smooth_l1(torch.tensor([0.005]), sigma=10).item() == pytest.approx(0.00125)
    assert smooth_l1(torch.tensor([1.0]), sigma=10).item() == pytest.approx(0.995)


def test_smooth_l1_bad_arguments():
    x = torch.ones(3)
    with pytest.raises(ValueError, match="sigma.*beta|not both"):
        smooth_l1(x, 1.0, beta=1.0)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        smooth_l1(x, 0.0)
    with pytest.raises(ValueError, match="beta must be"):
        smooth_l1(x, beta=-1.0)
    with pytest.raises(ValueError, match="x must be a floating-point"):
        smooth_l1(torch.ones(3, dtype=torch.long))


# --------------------------------------------------------------------------- focal loss


def test_focal_losses_live_in_focal_and_are_still_reachable_from_losses():
    import d2lssd.focal

    assert focal_loss is d2lssd.focal.focal_loss is d2lssd.focal_loss
    assert sigmoid_focal_loss is d2lssd.focal.sigmoid_focal_loss is d2lssd.sigmoid_focal_loss


def test_focal_with_gamma_zero_and_no_alpha_is_cross_entropy():
    cp, cl, *_ = random_batch()
    torch.testing.assert_close(focal_loss(cp, cl, gamma=0.0),
                               F.cross_entropy(cp.reshape(-1, 3), cl.reshape(-1), reduction="none").reshape(3, 40))


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 5.0])
def test_focal_equals_d2l_formula_on_the_true_class_probability(gamma):
    cp, cl, *_ = random_batch(seed=2)
    p_t = F.softmax(cp, dim=-1).gather(-1, cl[..., None])[..., 0]
    d2l = -(1 - p_t) ** gamma * torch.log(p_t)  # d2l §14.7.6: focal_loss(gamma, x) = -(1 - x)**gamma * log(x)
    torch.testing.assert_close(focal_loss(cp, cl, gamma=gamma), d2l)


def test_focal_known_value_and_alpha_weights_objects_and_background():
    # two classes, p_t = 0.9 for an object anchor, gamma 2: -(0.1)^2 ln 0.9
    logit = math.log(0.9 / 0.1)
    cp = torch.tensor([[[0.0, logit], [logit, 0.0]]])
    cl = torch.tensor([[1, 0]])
    expect = -(0.1 ** 2) * math.log(0.9)
    torch.testing.assert_close(focal_loss(cp, cl), torch.tensor([[expect, expect]]))
    torch.testing.assert_close(focal_loss(cp, cl, alpha=0.25), torch.tensor([[0.25 * expect, 0.75 * expect]]))


def test_focal_bad_arguments():
    cp, cl, *_ = random_batch()
    with pytest.raises(ValueError, match="gamma"):
        focal_loss(cp, cl, gamma=-1)
    with pytest.raises(ValueError, match="alpha"):
        focal_loss(cp, cl, alpha=1.5)
    with pytest.raises(ValueError, match="cls_labels must be in"):
        focal_loss(cp, cl + 3)
    with pytest.raises(ValueError, match="cls_labels must be an integer tensor of shape"):
        focal_loss(cp, cl[:, :-1])


@pytest.mark.parametrize("alpha", [0.25, 0.5, -1.0])
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 5.0])
def test_sigmoid_focal_equals_torchvision(alpha, gamma):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 4, generator=g) * 4
    t = (torch.rand(64, 4, generator=g) < 0.3).float()
    torch.testing.assert_close(sigmoid_focal_loss(x, t, alpha, gamma),
                               torchvision.ops.sigmoid_focal_loss(x, t, alpha, gamma, reduction="none"))


@pytest.mark.parametrize("kwargs", [{}, {"reduction": "none"}, {"reduction": "mean"}, {"reduction": "sum"},
                                    {"alpha": 0.5, "gamma": 1.0, "reduction": "sum"},
                                    {"alpha": -1, "gamma": 0.0, "reduction": "mean"}])
def test_sigmoid_focal_takes_torchvisions_keywords(kwargs):
    # Code written for torchvision.ops.sigmoid_focal_loss runs unchanged, with the same values.
    g = torch.Generator().manual_seed(4)
    inputs = torch.randn(32, 3, generator=g) * 3
    targets = (torch.rand(32, 3, generator=g) < 0.4).float()
    torch.testing.assert_close(sigmoid_focal_loss(inputs=inputs, targets=targets, **kwargs),
                               torchvision.ops.sigmoid_focal_loss(inputs=inputs, targets=targets, **kwargs))
    with pytest.raises(ValueError, match="reduction"):
        sigmoid_focal_loss(inputs, targets, reduction="batchmean")


def test_sigmoid_focal_alpha_none_is_torchvisions_minus_one_and_shapes_must_match():
    x, t = torch.randn(10), (torch.rand(10) > 0.5).float()
    torch.testing.assert_close(sigmoid_focal_loss(x, t, None), sigmoid_focal_loss(x, t, -1.0))
    with pytest.raises(ValueError, match="targets must have the shape"):
        sigmoid_focal_loss(x, t[:5])


# --------------------------------------------------------------------------- hard negative mining


def mining_reference(loss, labels, ratio, min_neg):
    """Per image, plainly: sort the negatives by loss (ties: lower index first), keep the top k."""
    out = torch.zeros_like(labels, dtype=torch.bool)
    for i in range(labels.shape[0]):
        negs = [a for a in range(labels.shape[1]) if labels[i, a] == 0]
        negs.sort(key=lambda a: (-loss[i, a].item(), a))
        k = max(int(math.floor(ratio * int((labels[i] > 0).sum()))), min_neg)
        for a in negs[:k]:
            out[i, a] = True
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), ratio=st.sampled_from([1.0, 2.5, 3.0, 7.0]),
       min_neg=st.integers(0, 5), ties=st.booleans())
def test_mining_equals_a_plain_per_image_reference(seed, ratio, min_neg, ties):
    g = torch.Generator().manual_seed(seed)
    labels = torch.where(torch.rand(4, 30, generator=g) < 0.15, 1, 0)
    labels[0] = 0  # an image without objects
    loss = torch.rand(4, 30, generator=g)
    if ties:
        loss = (loss * 3).round() / 3  # many equal losses
    mined = hard_negative_mining(loss, labels, ratio, min_neg)
    assert torch.equal(mined, mining_reference(loss, labels, ratio, min_neg))
    assert not (mined & (labels > 0)).any()


def test_mining_never_picks_a_positive_even_with_the_highest_loss():
    labels = torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0, 0, 0]])
    loss = torch.tensor([[9.0, 8.0, 0.1, 0.5, 0.2, 0.4, 0.3, 0.6, 0.0, 0.7]])
    mined = hard_negative_mining(loss, labels, 3)  # 2 positives -> the 6 hardest of the 8 negatives
    assert sorted(mined[0].nonzero()[:, 0].tolist()) == [3, 4, 5, 6, 7, 9]


def test_mining_ties_take_the_lower_index_and_empty_images_keep_min_negatives():
    labels = torch.zeros(2, 8, dtype=torch.long)
    labels[1, 5] = 1
    loss = torch.ones(2, 8)
    mined = hard_negative_mining(loss, labels, neg_pos_ratio=3, min_negatives=2)
    assert mined[0].nonzero()[:, 0].tolist() == [0, 1]  # no positives: min_negatives, lowest indices
    assert mined[1].nonzero()[:, 0].tolist() == [0, 1, 2]  # 3 per positive
    assert hard_negative_mining(loss, labels, 3, min_negatives=0)[0].sum() == 0


def test_mining_takes_all_negatives_when_there_are_fewer_than_k():
    labels = torch.tensor([[1, 1, 0, 0]])
    assert hard_negative_mining(torch.rand(1, 4), labels, 3).sum() == 2


def test_mining_bad_arguments():
    loss, labels = torch.rand(2, 5), torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="neg_pos_ratio"):
        hard_negative_mining(loss, labels, 0)
    with pytest.raises(ValueError, match="min_negatives"):
        hard_negative_mining(loss, labels, 3, -1)
    with pytest.raises(ValueError, match="conf_loss and cls_labels"):
        hard_negative_mining(loss, labels[:, :4])
    with pytest.raises(ValueError, match="cls_labels must be a floating|cls_labels"):
        hard_negative_mining(loss, labels.float())


# --------------------------------------------------------------------------- multibox_loss


def multibox_reference(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks, cls_loss, box_loss,
                       normalize, beta=1.0, ratio=3.0, min_neg=3, gamma=2.0, falpha=0.25):
    """The SSD paper's eq. 1, written image by image with the reference mining above."""
    B, A, C = cls_preds.shape
    ce = F.cross_entropy(cls_preds.reshape(-1, C), cls_labels.reshape(-1), reduction="none").reshape(B, A)
    mined = mining_reference(ce, cls_labels, ratio, min_neg)
    totals, npos = [], []
    for i in range(B):
        pos = cls_labels[i] > 0
        if cls_loss == "hard_negative":
            conf = ce[i][pos | mined[i]].sum()
        elif cls_loss == "cross_entropy":
            conf = ce[i].sum()
        else:
            p_t = F.softmax(cls_preds[i], -1).gather(-1, cls_labels[i][:, None])[:, 0]
            w = torch.where(pos, falpha, 1 - falpha)
            conf = (-w * (1 - p_t) ** gamma * torch.log(p_t)).sum()
        d = (bbox_preds[i] - bbox_labels[i]).reshape(A, 4)[pos]
        loc = F.smooth_l1_loss(d, torch.zeros_like(d), reduction="sum", beta=beta) if box_loss == "smooth_l1" \
            else d.abs().sum()
        totals.append(conf + loc)
        npos.append(int(pos.sum()))
    totals = torch.stack(totals)
    if normalize == "batch":
        return totals.sum() / max(sum(npos), 1)
    return (totals / torch.tensor(npos).clamp_min(1)).mean()


@pytest.mark.parametrize("cls_loss", ["hard_negative", "focal", "cross_entropy"])
@pytest.mark.parametrize("box_loss", ["smooth_l1", "l1"])
@pytest.mark.parametrize("normalize", ["batch", "image"])
def test_multibox_loss_equals_the_papers_formula(cls_loss, box_loss, normalize):
    args = random_batch(seed=4)
    ours = multibox_loss(*args, cls_loss=cls_loss, box_loss=box_loss, normalize=normalize)
    assert ours.shape == (3,)
    ref = multibox_reference(*args, cls_loss, box_loss, normalize)
    torch.testing.assert_close(ours.mean(), ref)
    torch.testing.assert_close(multibox_loss(*args, cls_loss=cls_loss, box_loss=box_loss, normalize=normalize,
                                             reduction="mean"), ref)


def test_multibox_loss_known_value():
    # one image, 4 anchors: one positive (logits uniform, box off by 0.5 in each of 4 offsets),
    # three negatives with uniform logits; 3 negatives per positive are mined.
    cp = torch.zeros(1, 4, 2)
    cl = torch.tensor([[1, 0, 0, 0]])
    bp = torch.zeros(1, 16)
    bl = torch.zeros(1, 16)
    bl[0, :4] = 0.5
    bm = torch.zeros(1, 16)
    bm[0, :4] = 1
    expect = 4 * math.log(2) + 4 * 0.125  # CE of 1 + 3 anchors, smooth L1 of 0.5 = 0.125 each; N = 1
    assert multibox_loss(cp, cl, bp, bl, bm).item() == pytest.approx(expect)
    assert multibox_loss(cp, cl, bp, bl, bm, alpha=0.0).item() == pytest.approx(4 * math.log(2))


def test_all_padding_batch_is_finite_and_not_zero():
    cp, cl, bp, bl, bm = random_batch()
    cl, bm, bl = torch.zeros_like(cl), torch.zeros_like(bm), torch.zeros_like(bl)
    loss = multibox_loss(cp, cl, bp, bl, bm, reduction="mean")
    ce = F.cross_entropy(cp.reshape(-1, 3), cl.reshape(-1), reduction="none").reshape(3, 40)
    # 3 hardest negatives per image (min_negatives); N = 0 is replaced by 1, so the batch loss
    # (the mean of the per-image values B * total_i / 1) is the sum of those cross-entropies
    expect = ce.topk(3, dim=1).values.sum()
    assert torch.isfinite(loss) and loss > 0
    torch.testing.assert_close(loss, expect)


def test_gradients_reach_positive_boxes_only_and_mined_anchors_only():
    cp, cl, bp, bl, bm = random_batch(b=1, a=30)
    cp, bp = cp.clone().requires_grad_(True), bp.clone().requires_grad_(True)
    multibox_loss(cp, cl, bp, bl, bm).sum().backward()
    assert torch.all(bp.grad[bm == 0] == 0) and (bp.grad[bm == 1] != 0).any()
    ce = F.cross_entropy(cp.detach()[0], cl[0], reduction="none")[None]
    used = (cl > 0) | hard_negative_mining(ce, cl)
    touched = (cp.grad.abs().sum(-1) > 0)
    assert torch.equal(touched, used)


@pytest.mark.parametrize("cls_loss", ["hard_negative", "focal"])
def test_gradcheck(cls_loss):
    torch.manual_seed(0)
    cp, cl, bp, bl, bm = random_batch(b=2, a=6, seed=5, pos_share=0.4)
    cp = cp.double().requires_grad_(True)
    # keep every offset difference away from smooth L1's kink at |d| = beta
    bp = (bl + torch.where(torch.rand_like(bl) < 0.5, 0.3, 2.0)).double().requires_grad_(True)
    f = lambda c, b: multibox_loss(c, cl, b, bl.double(), bm.double(), cls_loss=cls_loss)  # noqa: E731
    assert torch.autograd.gradcheck(f, (cp, bp))
    assert torch.autograd.gradcheck(lambda x: focal_loss(x, cl, gamma=2.0, alpha=0.25), (cp,))


@pytest.mark.parametrize("cls_loss", ["hard_negative", "focal", "cross_entropy"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_extreme_logits_give_finite_losses_and_gradients(cls_loss, dtype):
    cp, cl, bp, bl, bm = random_batch()
    big = 6e4 if dtype == torch.float16 else 1e6
    cp = (torch.sign(cp) * big).to(dtype).requires_grad_(True)
    bp = (bp * 1e3).to(dtype).requires_grad_(True)
    loss = multibox_loss(cp, cl, bp, bl, bm, cls_loss=cls_loss)
    assert loss.dtype == torch.float32 and torch.isfinite(loss).all()
    loss.sum().backward()
    assert torch.isfinite(cp.grad).all() and torch.isfinite(bp.grad).all()


def test_float16_autocast_predictions_are_computed_in_float32():
    cp, cl, bp, bl, bm = random_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = multibox_loss(cp.half(), cl, bp.half(), bl, bm)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, multibox_loss(cp.half().float(), cl, bp.half().float(), bl, bm))


@pytest.mark.parametrize("kwargs, match", [
    (dict(cls_loss="ohem"), "cls_loss must be one of"),
    (dict(box_loss="l2"), "box_loss must be one of"),
    (dict(normalize="anchors"), "normalize must be one of"),
    (dict(reduction="avg"), "reduction must be one of"),
    (dict(alpha=-1.0), "alpha must be"),
    (dict(beta=-0.5), "beta must be"),
    (dict(neg_pos_ratio=0), "neg_pos_ratio"),
    (dict(cls_loss="focal", focal_gamma=-2), "gamma"),
])
def test_multibox_loss_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        multibox_loss(*random_batch(), **kwargs)


@pytest.mark.parametrize("change, match", [
    (lambda a: (a[0], a[1] + 5, *a[2:]), r"cls_labels must be in \[0, 2\]"),
    (lambda a: (a[0], a[1][:, :-1], *a[2:]), "cls_labels"),
    (lambda a: (*a[:2], a[2][:, :-4], *a[3:]), "bbox_preds"),
    (lambda a: (a[0][..., 0], *a[1:]), "cls_preds"),
])
def test_multibox_loss_bad_inputs(change, match):
    with pytest.raises(ValueError, match=match):
        multibox_loss(*change(random_batch()))


def test_multibox_loss_class_wraps_options_and_rejects_unknown_ones():
    args = random_batch()
    fn = MultiBoxLoss(cls_loss="focal", beta=0.5)
    torch.testing.assert_close(fn(*args), multibox_loss(*args, cls_loss="focal", beta=0.5))
    assert repr(fn) == "MultiBoxLoss(cls_loss='focal', beta=0.5)"
    with pytest.raises(ValueError, match="unknown MultiBoxLoss option"):
        MultiBoxLoss(gamma=2)
    with pytest.raises(ValueError, match="cls_loss must be one of"):
        MultiBoxLoss(cls_loss="nope")
    assert d2lssd.MultiBoxLoss is MultiBoxLoss and d2lssd.multibox_loss is multibox_loss


def _mining_by_full_sort(conf_loss, cls_labels, ratio, min_neg):
    """The definition: rank the negatives by a stable descending sort, keep the first k."""
    negative = cls_labels == 0
    k = torch.clamp(((cls_labels > 0).sum(1).double() * ratio).floor().long(), min=min_neg)
    score = conf_loss.masked_fill(~negative, -math.inf)
    order = torch.sort(score, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1]).expand_as(order))
    return negative & (rank < k[:, None])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("levels", [None, 4])  # continuous losses, or a few values: many ties
def test_mining_by_topk_equals_the_full_stable_sort(seed, levels):
    g = torch.Generator().manual_seed(seed)
    B, A = 5, 700
    loss = torch.rand(B, A, generator=g) * 3
    if levels:
        loss = (loss * levels).floor()
    labels = (torch.rand(B, A, generator=g) < 0.02 * seed).long() * torch.randint(1, 4, (B, A), generator=g)
    labels[0] = 0  # an image without objects
    if seed % 2:
        labels[1, :-2] = 1  # fewer negatives than 3 per positive
    for ratio, min_neg in ((3.0, 3), (0.5, 0), (2.5, 10)):
        assert torch.equal(hard_negative_mining(loss, labels, ratio, min_neg),
                           _mining_by_full_sort(loss, labels, ratio, min_neg))
