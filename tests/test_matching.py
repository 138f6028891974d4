import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import d2lssd
from strategies import random_boxes

# d2l.ai §14.4.3's worked example (dog and cat).
GROUND_TRUTH = torch.tensor([[0, 0.1, 0.08, 0.52, 0.92], [1, 0.55, 0.2, 0.9, 0.88]])
ANCHORS = torch.tensor([[0, 0.1, 0.2, 0.3], [0.15, 0.2, 0.4, 0.4], [0.63, 0.05, 0.88, 0.98],
                        [0.66, 0.45, 0.8, 0.8], [0.57, 0.3, 0.92, 0.9]])


def tinyssd_like_anchors():
    sizes = [[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]]
    return torch.cat([d2lssd.multibox_prior(torch.zeros(1, 1, f, f), s, [1, 2, 0.5])
                      for f, s in zip([8, 4, 2, 1, 1], sizes)], dim=1)


def random_labels(b, g, seed, num_classes=3):
    gen = torch.Generator().manual_seed(seed)
    c = torch.rand(b, g, 2, generator=gen) * 0.6 + 0.2
    wh = torch.rand(b, g, 2, generator=gen) * 0.35 + 0.03
    cls = torch.randint(0, num_classes, (b, g, 1), generator=gen).float()
    return torch.cat((cls, c - wh / 2, c + wh / 2), dim=-1)


def test_d2l_worked_example():
    offsets, mask, cls = d2lssd.multibox_target(ANCHORS[None], GROUND_TRUTH[None])
    assert cls.tolist() == [[0, 1, 2, 0, 2]]
    assert mask.tolist() == [[0.0] * 4 + [1.0] * 8 + [0.0] * 4 + [1.0] * 4]
    # The values printed in d2l.ai §14.4.3.
    expect = torch.tensor([[0, 0, 0, 0, 1.4, 10, 2.594, 7.1754, -1.2, 0.26882, 1.6824, -1.5655,
                            0, 0, 0, 0, -0.57143, -1.0, 4.1723e-06, 0.62582]])
    torch.testing.assert_close(offsets, expect, atol=1e-4, rtol=0)


@pytest.mark.parametrize("g, seed", [(1, 0), (2, 1), (4, 2), (8, 3), (12, 4)])
def test_multibox_target_equals_d2l_without_padding(d2l, g, seed):
    anchors = tinyssd_like_anchors()
    labels = random_labels(6, g, seed)
    ours = d2lssd.multibox_target(anchors, labels)
    ref = d2l.multibox_target(anchors, labels)
    assert torch.equal(ours[2], ref[2])
    assert torch.equal(ours[1], ref[1])
    torch.testing.assert_close(ours[0], ref[0], atol=1e-5, rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 10), st.integers(0, 10_000))
def test_assignment_equals_d2l_greedy_loop_on_conflicts(d2l, g, seed):
    # Few, large anchors and many ground truths: the forced matches conflict a lot.
    anchors = random_boxes(12, seed, min_size=0.2, max_size=0.6)
    gt = random_boxes(g, seed + 1, min_size=0.1, max_size=0.5)
    ours = d2lssd.assign_anchor_to_bbox(gt, anchors, None, 0.5)
    assert torch.equal(ours, d2l.assign_anchor_to_bbox(gt, anchors, "cpu", 0.5))


def test_two_ground_truths_with_the_same_best_anchor_both_keep_a_positive():
    anchors = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    # Both objects overlap anchor 0 most and no anchor reaches the threshold.
    gt = torch.tensor([[0.0, 0.0, 0.3, 0.3], [0.1, 0.1, 0.45, 0.45]])
    iou = d2lssd.box_iou(anchors, gt)
    assert iou.argmax(0).tolist() == [0, 0] and iou.max() < 0.5
    assigned = d2lssd.assign_anchor_to_bbox(gt, anchors)
    assert sorted(assigned.tolist()) == [0, 1]  # each ground truth owns one anchor


def test_padding_rows_never_produce_targets(d2l):
    labels = GROUND_TRUTH[None]
    padded = torch.cat((labels, torch.full((1, 2, 5), -1.0)), dim=1)
    ours = d2lssd.multibox_target(ANCHORS[None], padded)
    clean = d2lssd.multibox_target(ANCHORS[None], labels)
    for a, b in zip(ours, clean):
        assert torch.equal(a, b)
    # d2l's loop forces an anchor onto the padding row: a positive mask with
    # class 0 (background) and a huge offset target. We must not reproduce that.
    off, mask, cls = d2l.multibox_target(ANCHORS[None], padded)
    bogus = (mask.reshape(1, -1, 4)[..., 0] == 1) & (cls == 0)
    assert bogus.any() and off.abs().max() > 50


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 6), st.integers(0, 4), st.integers(0, 10_000))
def test_every_ground_truth_gets_a_positive_and_padding_never_matters(g, pad, seed):
    anchors = tinyssd_like_anchors()
    labels = random_labels(3, g, seed)
    gen = torch.Generator().manual_seed(seed)
    padded = torch.cat((labels, torch.full((3, pad, 5), -1.0)), dim=1)
    padded = padded[:, torch.randperm(g + pad, generator=gen)]  # padding anywhere
    off, mask, cls = d2lssd.multibox_target(anchors, padded)
    ref = d2lssd.multibox_target(anchors, labels)
    assert torch.equal(cls, ref[2]) and torch.equal(mask, ref[1])
    torch.testing.assert_close(off, ref[0])
    assigned = d2lssd.assign_anchor_to_bbox(padded[..., 1:], anchors, valid=padded[..., 0] >= 0)
    for b in range(3):
        owners = set(assigned[b][assigned[b] >= 0].tolist())
        real = set((padded[b, :, 0] >= 0).nonzero().flatten().tolist())
        assert owners == real  # every real object has a positive, padding has none


def test_batched_equals_per_image():
    anchors = tinyssd_like_anchors()
    labels = random_labels(4, 3, 9)
    batch = d2lssd.multibox_target(anchors, labels)
    for i in range(4):
        single = d2lssd.multibox_target(anchors, labels[i:i + 1])
        for a, b in zip(batch, single):
            assert torch.equal(a[i:i + 1], b)


def test_images_without_objects_are_all_background():
    anchors = tinyssd_like_anchors()
    for labels in (torch.zeros(2, 0, 5), torch.full((2, 3, 5), -1.0)):
        off, mask, cls = d2lssd.multibox_target(anchors, labels)
        assert off.shape == (2, anchors.shape[1] * 4) and cls.shape == (2, anchors.shape[1])
        assert not off.any() and not mask.any() and not cls.any()


def test_output_dtypes_and_shapes():
    anchors = tinyssd_like_anchors()
    off, mask, cls = d2lssd.multibox_target(anchors, random_labels(2, 2, 0))
    assert off.dtype == mask.dtype == torch.float32 and cls.dtype == torch.int64
    assert off.shape == mask.shape == (2, anchors.shape[1] * 4)


@pytest.mark.parametrize("labels, match", [
    (torch.zeros(2, 5), r"labels must have shape \(B, G, 5\)"),
    (torch.zeros(2, 1, 4), r"labels must have shape \(B, G, 5\)"),
    (torch.tensor([[[0, 0.1, float("nan"), 0.5, 0.5]]]), "labels contains NaN"),
    (torch.tensor([[[0, 0.6, 0.1, 0.5, 0.5]]]), "labels has a degenerate box"),
    (torch.zeros(1, 1, 5, dtype=torch.long), "labels must be a floating-point tensor"),
])
def test_multibox_target_rejects_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        d2lssd.multibox_target(ANCHORS[None], labels)


def test_multibox_target_rejects_bad_anchors_and_devices():
    with pytest.raises(ValueError, match="anchors must have shape"):
        d2lssd.multibox_target(torch.stack([ANCHORS, ANCHORS]), GROUND_TRUTH[None])
    with pytest.raises(ValueError, match="anchors must have a last dimension of 4"):
        d2lssd.multibox_target(torch.zeros(1, 5, 3), GROUND_TRUTH[None])
    with pytest.raises(ValueError, match="same device"):
        d2lssd.multibox_target(ANCHORS[None], GROUND_TRUTH[None].to("meta"))
    with pytest.raises(ValueError, match="iou_threshold"):
        d2lssd.multibox_target(ANCHORS[None], GROUND_TRUTH[None], iou_threshold=1.5)
