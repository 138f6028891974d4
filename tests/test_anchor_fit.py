"""Anchor coverage and anchors fitted to a data set's boxes."""

import pytest
import torch

import d2lssd
from d2lssd.anchor_fit import (anchor_coverage, anchors_for, best_anchor_iou, dataset_boxes, fit_anchors,
                               level_shapes)


def _random_boxes(n, seed=0, aspect=(0.5, 2.0), scale=(0.1, 0.6)):
    g = torch.Generator().manual_seed(seed)
    s = scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=g)
    a = torch.exp(torch.log(torch.tensor(aspect[0])) + torch.log(torch.tensor(aspect[1] / aspect[0]))
                  * torch.rand(n, generator=g))
    w, h = (s * a.sqrt()).clamp(max=0.95), (s / a.sqrt()).clamp(max=0.95)
    cx = w / 2 + (1 - w) * torch.rand(n, generator=g)
    cy = h / 2 + (1 - h) * torch.rand(n, generator=g)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=1)


def test_best_iou_and_coverage_equal_the_chapter_measure():
    net = d2lssd.TinySSD(num_classes=2).eval()
    with torch.no_grad():
        anchors = net(torch.zeros(1, 3, 256, 256))[0]
    gt = _random_boxes(300)
    by_hand = d2lssd.box_iou(gt, anchors[0]).max(dim=1).values  # notebooks/pennfudan.md's best_iou
    torch.testing.assert_close(best_anchor_iou(anchors, gt), by_hand)
    torch.testing.assert_close(best_anchor_iou(anchors, gt, chunk=7), by_hand)
    assert anchor_coverage(anchors, gt) == pytest.approx(float((by_hand >= 0.5).float().mean()))
    assert anchor_coverage(gt, gt) == 1.0
    assert anchor_coverage(torch.tensor([[0.0, 0, 0.1, 0.1]]), torch.tensor([[0.5, 0.5, 1, 1]])) == 0.0
    with pytest.raises(ValueError, match="iou_threshold"):
        anchor_coverage(gt, gt, 1.5)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        best_anchor_iou(anchors, gt[:, :3])


@pytest.mark.parametrize("size", [256, (256, 320), (320, 256)])
def test_layout_reproduces_tinyssd_anchors(size):
    net = d2lssd.TinySSD(num_classes=3)
    shapes = level_shapes(net, size)
    h, w = (size, size) if isinstance(size, int) else size
    with torch.no_grad():
        ref = net.eval()(torch.zeros(1, 3, h, w))[0]
    assert torch.equal(anchors_for(shapes, net.sizes, net.ratios), ref)
    if size == 256:
        assert shapes == [(32, 32), (16, 16), (8, 8), (4, 4), (1, 1)] and ref.shape[1] == 5444


def test_layout_reproduces_resnet34_anchors():
    net = d2lssd.SSDResNet34(num_classes=2, pretrained=False)
    assert net.training
    shapes = level_shapes(net, 300)
    assert net.training  # the mode is restored
    assert shapes == [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    with torch.no_grad():
        ref = net.eval()(torch.zeros(1, 3, 300, 300))[0]
    assert ref.shape[1] == 7760 and torch.equal(anchors_for(shapes, net.sizes, net.ratios), ref)


def test_fit_covers_tall_boxes_that_default_ratios_miss():
    gt = _random_boxes(400, seed=1, aspect=(0.2, 0.3), scale=(0.1, 0.3))  # tall and thin
    fit = fit_anchors(gt, "tinyssd", 256)  # d2l's ratios 1, 2, 0.5
    assert fit.coverage_before < 0.6 and fit.coverage_after > 0.95
    assert fit.source == "fitted" and fit.num_boxes == 400
    assert 0.2 <= fit.ratios[0][0] <= 0.3 and all(0.2 <= r <= 0.3 for r in fit.ratios[0])
    assert [len(s) for s in fit.sizes] == [2] * 5 and [len(r) for r in fit.ratios] == [3] * 5
    # Recomputed independently: a model built with the fitted anchors has that coverage.
    net = d2lssd.TinySSD(num_classes=1, **fit.model_kwargs()).eval()
    with torch.no_grad():
        anchors = net(torch.zeros(1, 3, 256, 256))[0]
    assert anchor_coverage(anchors, gt) == pytest.approx(fit.coverage_after)
    assert best_anchor_iou(anchors, gt).mean().item() == pytest.approx(fit.mean_iou_after, abs=1e-5)
    assert fit_anchors(gt, "tinyssd", 256) == fit  # deterministic
    assert "->" in fit.summary()


def test_fit_never_worse_than_the_model_and_takes_instances():
    gt = _random_boxes(200, seed=2)
    net = d2lssd.SSDResNet34(num_classes=1, pretrained=False)
    fit = fit_anchors(gt, net, 300, iterations=2)
    assert fit.coverage_after >= fit.coverage_before
    assert fit.mean_iou_after >= fit.mean_iou_before or fit.coverage_after > fit.coverage_before
    assert [len(s) for s in fit.sizes] == [len(s) for s in net.sizes]
    # Boxes the model's own anchors fit exactly cannot be improved: the model's anchors are kept.
    tiny = d2lssd.TinySSD(num_classes=1).eval()
    with torch.no_grad():
        anchors = tiny(torch.zeros(1, 3, 256, 256))[0][0]
    exact = anchors[(anchors >= 0).all(1) & (anchors <= 1).all(1)][::50]
    fit = fit_anchors(exact, tiny, 256)
    assert fit.coverage_before == 1.0 and fit.coverage_after == 1.0


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        fit_anchors(torch.zeros((0, 4)))
    with pytest.raises(ValueError, match="positive width"):
        fit_anchors(torch.tensor([[0.1, 0.1, 0.1, 0.3]]))
    with pytest.raises(ValueError, match="model must be"):
        fit_anchors(_random_boxes(5), "yolo")
    with pytest.raises(ValueError, match="too small"):
        fit_anchors(_random_boxes(5), "tinyssd", 32)


def test_dataset_boxes_without_reading_images(tmp_path):
    from test_coco import _write_set

    from d2lssd.data import CocoDataset

    path, img_dir = _write_set(tmp_path)
    ds = CocoDataset(path, img_dir)

    class Plain(torch.utils.data.Dataset):  # no normalized_boxes(): read sample by sample
        def __len__(self):
            return len(ds)

        def __getitem__(self, k):
            return ds[k]

    fast, slow = dataset_boxes(ds), dataset_boxes(Plain())
    assert fast.shape == (3, 4)  # the crowd region is left out
    torch.testing.assert_close(fast, slow)
