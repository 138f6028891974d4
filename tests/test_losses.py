import math

import pytest
import torch
from torch import nn

import d2lssd
from d2lssd.losses import calc_loss, ssd_loss


def d2l_calc_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks):
    """d2l.ai §14.7.3.2's calc_loss, as printed in the book (reference)."""
    cls_loss = nn.CrossEntropyLoss(reduction="none")
    bbox_loss = nn.L1Loss(reduction="none")
    batch_size, num_classes = cls_preds.shape[0], cls_preds.shape[2]
    cls = cls_loss(cls_preds.reshape(-1, num_classes),
                   cls_labels.reshape(-1)).reshape(batch_size, -1).mean(dim=1)
    bbox = bbox_loss(bbox_preds * bbox_masks, bbox_labels * bbox_masks).mean(dim=1)
    return cls + bbox


def random_inputs(b=3, a=50, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    cls_preds = torch.randn(b, a, c, generator=g)
    cls_labels = torch.randint(0, c, (b, a), generator=g)
    bbox_preds = torch.randn(b, a * 4, generator=g)
    bbox_labels = torch.randn(b, a * 4, generator=g)
    bbox_masks = (cls_labels > 0).float().repeat_interleave(4, dim=1)
    return cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks


@pytest.mark.parametrize("seed", range(3))
def test_equals_d2l_calc_loss(seed):
    args = random_inputs(seed=seed)
    ours = ssd_loss(*args)
    assert ours.shape == (3,)
    torch.testing.assert_close(ours, d2l_calc_loss(*args))
    torch.testing.assert_close(calc_loss(*args), ours)
    assert d2lssd.losses.calc_loss is calc_loss


def test_known_value():
    # Uniform logits over 2 classes: log 2 nats per anchor. One positive anchor
    # whose 4 offsets are all off by 1: 4 / (4 * 2 anchors) = 0.5.
    cls_preds = torch.zeros(1, 2, 2)
    cls_labels = torch.tensor([[1, 0]])
    bbox_preds = torch.zeros(1, 8)
    bbox_labels = torch.tensor([[1.0] * 4 + [7.0] * 4])  # masked-out entries must not count
    bbox_masks = torch.tensor([[1.0] * 4 + [0.0] * 4])
    loss = ssd_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
    assert loss.item() == pytest.approx(math.log(2) + 0.5)


def test_reductions_and_box_layout():
    args = random_inputs()
    per_image = ssd_loss(*args)
    torch.testing.assert_close(ssd_loss(*args, reduction="mean"), per_image.mean())
    torch.testing.assert_close(ssd_loss(*args, reduction="sum"), per_image.sum())
    cp, cl, bp, bl, bm = args
    torch.testing.assert_close(ssd_loss(cp, cl, bp.reshape(3, -1, 4), bl, bm), per_image)


def test_masked_entries_do_not_matter_and_gradients_flow_only_to_positives():
    cp, cl, bp, bl, bm = random_inputs()
    bp = bp.clone().requires_grad_(True)
    loss = ssd_loss(cp, cl, bp, bl, bm).sum()
    loss.backward()
    assert torch.all(bp.grad[bm == 0] == 0) and torch.all(bp.grad[bm == 1] != 0)
    noisy = bp.detach() + 100 * (1 - bm)
    torch.testing.assert_close(ssd_loss(cp, cl, noisy, bl, bm).sum(), loss.detach())


def test_half_precision_predictions_are_computed_in_float32():
    cp, cl, bp, bl, bm = random_inputs()
    loss = ssd_loss(cp.half(), cl, bp.half(), bl, bm)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, ssd_loss(cp.half().float(), cl, bp.half().float(), bl, bm))


def test_image_without_objects_has_only_the_class_term():
    cp, cl, bp, bl, bm = random_inputs(b=1)
    cl, bm = torch.zeros_like(cl), torch.zeros_like(bm)
    expect = nn.functional.cross_entropy(cp[0], cl[0])
    torch.testing.assert_close(ssd_loss(cp, cl, bp, bl, bm), expect[None])


@pytest.mark.parametrize("change, match", [
    (lambda a: (a[0][..., 0], *a[1:]), "cls_preds"),
    (lambda a: (a[0], a[1].float(), *a[2:]), "cls_labels"),
    (lambda a: (a[0], a[1][:, :-1], *a[2:]), "cls_labels"),
    (lambda a: (a[0], a[1] + 5, *a[2:]), r"cls_labels must be in \[0, 2\]"),
    (lambda a: (a[0], a[1] - 1, *a[2:]), "cls_labels must be in"),
    (lambda a: (*a[:2], a[2][:, :-4], *a[3:]), "bbox_preds"),
    (lambda a: (*a[:3], a[3][:1], a[4]), "bbox_labels"),
    (lambda a: (*a[:4], a[4].long()), "bbox_masks"),
])
def test_bad_shapes_and_labels_raise(change, match):
    with pytest.raises(ValueError, match=match):
        ssd_loss(*change(random_inputs()))


def test_bad_reduction_raises():
    with pytest.raises(ValueError, match="reduction"):
        ssd_loss(*random_inputs(), reduction="avg")
