import math

import numpy as np
import pytest
import torch

import d2lssd
from d2lssd.metrics import (
    COCO_IOU_THRESHOLDS,
    Accumulator,
    bbox_mae_all,
    bbox_mae_positive,
    class_error_all,
    class_error_positive,
    mean_average_precision,
)

# --------------------------------------------------------------------------- anchor metrics


def tinyssd_anchors_256():
    sizes = [[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]]
    return torch.cat([d2lssd.multibox_prior(torch.zeros(1, 1, f, f), s, [1, 2, 0.5])
                      for f, s in zip([32, 16, 8, 4, 1], sizes)], dim=1)


@pytest.fixture(scope="module")
def banana_like_targets():
    """multibox_target for 4 images with one object each on TinySSD's 5444 anchors."""
    labels = torch.tensor([[[0, 0.1, 0.1, 0.3, 0.35]], [[0, 0.5, 0.4, 0.7, 0.6]],
                           [[0, 0.2, 0.6, 0.45, 0.9]], [[0, 0.6, 0.05, 0.8, 0.3]]])
    anchors = tinyssd_anchors_256()
    assert anchors.shape == (1, 5444, 4)
    return d2lssd.multibox_target(anchors, labels)


def test_all_background_predictor_looks_perfect_overall_but_misses_every_object(banana_like_targets):
    bbox_labels, bbox_masks, cls_labels = banana_like_targets
    cls_preds = torch.zeros(*cls_labels.shape, 2)
    cls_preds[..., 0] = 5.0  # always "background"
    n_pos = int((cls_labels > 0).sum())
    assert 4 <= n_pos < 200
    err_all = class_error_all(cls_preds, cls_labels)
    assert err_all == pytest.approx(n_pos / cls_labels.numel())
    assert err_all < 0.01  # d2l-style: "over 99% accurate"
    assert class_error_positive(cls_preds, cls_labels) == 1.0  # finds no object at all
    # A perfect classifier is perfect on both.
    perfect = torch.nn.functional.one_hot(cls_labels, 2).float()
    assert class_error_all(perfect, cls_labels) == 0.0 == class_error_positive(perfect, cls_labels)


def test_bbox_mae_positive_ignores_masked_out_entries(banana_like_targets):
    bbox_labels, bbox_masks, _ = banana_like_targets
    zeros = torch.zeros_like(bbox_labels)  # predicts "anchor = box" everywhere
    mae_pos = bbox_mae_positive(zeros, bbox_labels, bbox_masks)
    expect = (bbox_labels.abs() * bbox_masks).sum() / bbox_masks.sum()
    assert mae_pos == pytest.approx(float(expect))
    # d2l's version divides by all 4 * 5444 entries: ~700x smaller for the same boxes.
    mae_all = bbox_mae_all(zeros, bbox_labels, bbox_masks)
    assert mae_all == pytest.approx(mae_pos * float(bbox_masks.sum()) / bbox_masks.numel())
    assert mae_all < mae_pos / 100
    # Garbage on negative anchors changes nothing.
    noisy = zeros + 50 * (1 - bbox_masks)
    assert bbox_mae_positive(noisy, bbox_labels, bbox_masks) == pytest.approx(mae_pos)


def test_all_anchor_versions_equal_d2l_cls_eval_and_bbox_eval(banana_like_targets):
    bbox_labels, bbox_masks, cls_labels = banana_like_targets
    g = torch.Generator().manual_seed(0)
    cls_preds = torch.randn(*cls_labels.shape, 2, generator=g)
    bbox_preds = torch.randn(bbox_labels.shape, generator=g)
    # d2l.ai §14.7.3.2, as printed in the book:
    cls_eval = float((cls_preds.argmax(dim=-1).type(cls_labels.dtype) == cls_labels).sum())
    bbox_eval = float((torch.abs((bbox_labels - bbox_preds) * bbox_masks)).sum())
    assert class_error_all(cls_preds, cls_labels) == pytest.approx(1 - cls_eval / cls_labels.numel())
    assert bbox_mae_all(bbox_preds, bbox_labels, bbox_masks) == pytest.approx(bbox_eval / bbox_labels.numel())


def test_counts_accumulate_to_the_pooled_ratio():
    g = torch.Generator().manual_seed(1)
    preds = torch.randn(6, 30, 3, generator=g)
    labels = torch.randint(0, 3, (6, 30), generator=g)
    labels[:2] = 0  # a batch without positives
    acc = Accumulator(2)
    for i in range(0, 6, 2):
        acc.add(*class_error_positive(preds[i:i + 2], labels[i:i + 2], return_counts=True))
    assert acc.ratio(0, 1) == pytest.approx(class_error_positive(preds, labels))
    assert math.isnan(class_error_positive(preds[:2], labels[:2]))
    assert class_error_positive(preds[:2], labels[:2], return_counts=True) == (0.0, 0.0)


def test_accumulator_like_d2l():
    acc = Accumulator(3)
    acc.add(1, 2.5, torch.tensor(3))
    acc.add(1, 0.5, 0)
    assert (acc[0], acc[1], acc[2], len(acc)) == (2.0, 3.0, 3.0, 3)
    assert acc.ratio(1, 0) == 1.5
    acc.reset()
    assert acc.data == [0.0] * 3 and math.isnan(acc.ratio(0, 1))
    with pytest.raises(ValueError):
        acc.add(1, 2)


def test_metric_shape_errors():
    with pytest.raises(ValueError, match="cls_labels"):
        class_error_positive(torch.zeros(2, 5, 3), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="cls_preds"):
        class_error_all(torch.zeros(2, 5), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="same shape"):
        bbox_mae_positive(torch.zeros(2, 8), torch.zeros(2, 8), torch.zeros(2, 4))


# --------------------------------------------------------------------------- mAP

GT_ONE = torch.tensor([[[0, 0.1, 0.1, 0.4, 0.4], [-1, 0, 0, 0, 0]]])


def test_perfect_predictions_give_ap_one():
    # multibox_detection-style rows: padding rows with class -1 are dropped.
    dets = torch.tensor([[[0, 0.9, 0.1, 0.1, 0.4, 0.4], [-1, 0.3, 0.0, 0.0, 1.0, 1.0]]])
    r = mean_average_precision(dets, GT_ONE)
    assert r["AP50"] == pytest.approx(1.0) and r["AP"] == pytest.approx(1.0)
    assert r["num_detections"] == 1 and r["num_targets"] == 1 and r["num_images"] == 1
    assert r["iou_thresholds"] == COCO_IOU_THRESHOLDS and len(COCO_IOU_THRESHOLDS) == 10
    assert r["precision"].shape == (10, 1, 101) and r["recall"].shape == (101,)


def test_false_positive_with_higher_score_halves_ap():
    # FP (0.9) then TP (0.8): precision 1/2 at recall 1, so the interpolated
    # precision is 0.5 at all 101 recall points.
    dets = torch.tensor([[[0, 0.9, 0.6, 0.6, 0.9, 0.9], [0, 0.8, 0.1, 0.1, 0.4, 0.4]]])
    r = mean_average_precision(dets, GT_ONE)
    assert r["AP50"] == pytest.approx(0.5) and r["AP"] == pytest.approx(0.5)
    # The same false positive with a lower score costs nothing.
    dets[0, 0, 1] = 0.7
    assert mean_average_precision(dets, GT_ONE)["AP50"] == pytest.approx(1.0)


def test_known_value_with_two_objects():
    # TP 0.9, FP 0.8, TP 0.7 on two objects: precision 1 up to recall 0.5
    # (51 recall points), then 2/3 (50 points).
    gt = torch.tensor([[[0, 0.1, 0.1, 0.4, 0.4], [0, 0.5, 0.5, 0.9, 0.9]]])
    dets = torch.tensor([[[0, 0.9, 0.1, 0.1, 0.4, 0.4], [0, 0.8, 0.0, 0.6, 0.2, 0.9],
                          [0, 0.7, 0.5, 0.5, 0.9, 0.9]]])
    r = mean_average_precision(dets, gt)
    assert r["AP50"] == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-6)
    curve = r["precision"][0, 0]
    assert torch.all(curve[:51] == 1.0) and torch.allclose(curve[51:], torch.tensor(2 / 3))


def test_ap_over_iou_thresholds_and_ap75():
    # A box with IoU 0.72 with its object: a hit at thresholds 0.50..0.70
    # (5 of 10), a miss above: AP = 0.5, AP50 = 1, AP75 = 0.
    gt = torch.tensor([[[0, 0.0, 0.0, 0.5, 0.5]]])
    dets = torch.tensor([[[0, 0.9, 0.0, 0.0, 0.5, 0.5 * 0.72]]])
    r = mean_average_precision(dets, gt)
    assert (r["AP50"], r["AP"], r["AP75"]) == pytest.approx((1.0, 0.5, 0.0))
    r = mean_average_precision(dets, gt, iou_thresholds=[0.5, 0.8])
    assert (r["AP50"], r["AP"]) == pytest.approx((1.0, 0.5)) and math.isnan(r["AP75"])


def test_classes_are_macro_averaged_and_lists_are_accepted():
    # Class 0 perfect, class 1 with a higher-scoring false positive (AP 0.5).
    gts = [torch.tensor([[0, 0.1, 0.1, 0.4, 0.4], [1, 0.5, 0.5, 0.9, 0.9]]),
           torch.tensor([[-1.0, 0, 0, 0, 0]])]
    dets = [torch.tensor([[0, 0.9, 0.1, 0.1, 0.4, 0.4], [1, 0.7, 0.5, 0.5, 0.9, 0.9]]),
            torch.tensor([[1, 0.8, 0.1, 0.1, 0.3, 0.3]])]
    r = mean_average_precision(dets, gts)
    assert r["classes"] == [0, 1]
    assert r["AP50_per_class"] == pytest.approx({0: 1.0, 1: 0.5})
    assert r["AP50"] == pytest.approx(0.75) and r["num_images"] == 2


def test_no_detections_and_no_objects():
    assert mean_average_precision(torch.zeros(1, 0, 6), GT_ONE)["AP50"] == 0.0
    r = mean_average_precision(torch.tensor([[[0, 0.9, 0.1, 0.1, 0.4, 0.4]]]), torch.full((1, 1, 5), -1.0))
    assert math.isnan(r["AP"]) and math.isnan(r["AP50"])


def test_map_input_errors():
    with pytest.raises(ValueError, match="same images"):
        mean_average_precision(torch.zeros(2, 1, 6), GT_ONE)
    with pytest.raises(ValueError, match="detections"):
        mean_average_precision(torch.zeros(1, 1, 5), GT_ONE)
    with pytest.raises(ValueError, match="iou_thresholds"):
        mean_average_precision(torch.zeros(1, 0, 6), GT_ONE, iou_thresholds=[1.5])


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def reference_ap(dets, gts, t, num_classes):
    """COCO's AP at one IoU threshold, written from the definition (101-point
    interpolated precision, greedy matching by score to the best free object)."""
    aps = []
    for c in range(num_classes):
        scored, npos = [], 0
        for d, g in zip(dets, gts):
            g = [row[1:] for row in g.tolist() if row[0] == c]
            d = sorted((row for row in d.tolist() if row[0] == c), key=lambda r: -r[1])[:100]
            npos += len(g)
            taken = [False] * len(g)
            for row in d:
                best, bj = t, -1
                for j, box in enumerate(g):
                    iou = _iou(row[2:], box)
                    if not taken[j] and iou >= best:
                        best, bj = iou, j
                if bj >= 0:
                    taken[bj] = True
                scored.append((row[1], bj >= 0))
        if npos == 0:
            continue
        scored.sort(key=lambda s: -s[0])
        tp = np.cumsum([s[1] for s in scored])
        fp = np.cumsum([not s[1] for s in scored])
        recall = tp / npos
        precision = tp / np.maximum(tp + fp, 1e-12)
        points = []
        for r in np.linspace(0, 1, 101):
            p = precision[recall >= r - 1e-12] if len(scored) else []
            points.append(max(p) if len(p) else 0.0)
        aps.append(np.mean(points))
    return float(np.mean(aps))


@pytest.mark.parametrize("seed", range(3))
def test_map_equals_a_reference_written_from_the_definition(seed):
    g = torch.Generator().manual_seed(seed)
    dets, gts = [], []
    for _ in range(6):
        n = int(torch.randint(1, 5, (1,), generator=g))
        c = torch.rand(n, 2, generator=g) * 0.6 + 0.2
        wh = torch.rand(n, 2, generator=g) * 0.3 + 0.05
        cls = torch.randint(0, 2, (n, 1), generator=g).float()
        boxes = torch.cat((c - wh / 2, c + wh / 2), dim=1)
        gts.append(torch.cat((cls, boxes), dim=1))
        # Jittered copies of the objects (various IoUs, sometimes the wrong
        # class) plus random false positives, with distinct random scores.
        jit = boxes + torch.randn(n, 4, generator=g) * 0.03
        jit = torch.cat((jit[:, :2].minimum(jit[:, 2:]), jit[:, :2].maximum(jit[:, 2:])), dim=1)
        flip = (torch.rand(n, 1, generator=g) < 0.2).float()
        fp_c = torch.rand(3, 2, generator=g)
        fp = torch.cat((fp_c * 0.7, fp_c * 0.7 + 0.2), dim=1)
        d_cls = torch.cat((torch.abs(cls - flip), torch.randint(0, 2, (3, 1), generator=g).float()))
        d_box = torch.cat((jit, fp))
        scores = torch.rand(n + 3, 1, generator=g)
        dets.append(torch.cat((d_cls, scores, d_box), dim=1))
    r = mean_average_precision(dets, gts)
    assert r["AP50"] == pytest.approx(reference_ap(dets, gts, 0.5, 2), abs=1e-5)
    expect = np.mean([reference_ap(dets, gts, t, 2) for t in COCO_IOU_THRESHOLDS])
    assert r["AP"] == pytest.approx(expect, abs=1e-5)
    # The PR curve: interpolated precision never increases with recall.
    curve = r["precision"][0]
    assert torch.all(curve[:, 1:] <= curve[:, :-1] + 1e-7)


def test_cls_eval_and_bbox_eval_have_d2ls_values():
    # d2l.ai §14.7.3.2: cls_eval counts the anchors whose arg-max is the label (a float),
    # bbox_eval sums |(labels - preds) * masks|; the training loop divides by numel().
    cls_preds = torch.tensor([[[2.0, 1.0], [0.0, 3.0], [1.0, 0.5]],
                              [[0.1, 0.2], [5.0, -1.0], [0.0, 0.0]]])  # arg-max 0, 1, 0 / 1, 0, 0
    cls_labels = torch.tensor([[0, 1, 1], [0, 0, 0]])
    assert d2lssd.cls_eval(cls_preds, cls_labels) == 4.0
    assert isinstance(d2lssd.cls_eval(cls_preds, cls_labels), float)
    assert 1 - d2lssd.cls_eval(cls_preds, cls_labels) / cls_labels.numel() == \
        pytest.approx(class_error_all(cls_preds, cls_labels))
    bbox_preds = torch.tensor([[0.5, -1.0, 2.0, 0.0, 9.0, 9.0, 9.0, 9.0]], requires_grad=True)
    bbox_labels = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    bbox_masks = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    assert d2lssd.bbox_eval(bbox_preds, bbox_labels, bbox_masks) == 0.5 + 2.0 + 1.0 + 1.0  # masked: 9s ignored
    assert d2lssd.bbox_eval(bbox_preds, bbox_labels, bbox_masks) / 8 == \
        pytest.approx(bbox_mae_all(bbox_preds.detach(), bbox_labels, bbox_masks))
    with pytest.raises(ValueError, match="cls_labels"):
        d2lssd.cls_eval(cls_preds, cls_labels.float())
    with pytest.raises(ValueError, match="same shape"):
        d2lssd.bbox_eval(bbox_preds, bbox_labels, bbox_masks[:, :4])
