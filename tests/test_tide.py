"""TIDE-style error breakdown (d2lssd.tide) on hand-made cases whose answers are known."""

import math

import pytest
import torch

from d2lssd.tide import KINDS, classify_errors, error_breakdown

A = [0.1, 0.1, 0.5, 0.5]
B = [0.5, 0.5, 0.9, 0.9]


def _gts():
    # Two images, one object each: class 0 in image 0, class 1 in image 1.
    return [torch.tensor([[0.0, *A]]), torch.tensor([[1.0, *B]])]


def _only(res, kind):
    """Only ``kind`` gains AP; every other kind gains exactly nothing."""
    assert res.dAP[kind] > 0.05, res.dAP
    for k in KINDS:
        if k != kind:
            assert res.dAP[k] == pytest.approx(0.0, abs=1e-9), (k, res.dAP)


def test_perfect_detector_gains_nothing():
    dets = [torch.tensor([[0.0, 0.9, *A]]), torch.tensor([[1.0, 0.8, *B]])]
    res = error_breakdown(dets, _gts())
    assert res.AP50 == pytest.approx(1.0)
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in res.dAP.values())
    assert res.counts == {"tp": 2, **{k: 0 for k in KINDS}}


def test_one_duplicate_only_duplicate_gains():
    # Image 0: the true positive and a second copy that outranks image 1's true positive.
    dets = [torch.tensor([[0.0, 0.9, *A], [0.0, 0.8, 0.11, 0.1, 0.5, 0.5]]),
            torch.tensor([[0.0, 0.7, 0.1, 0.1, 0.5, 0.5]])]
    gts = [torch.tensor([[0.0, *A]]), torch.tensor([[0.0, *A]])]
    res = error_breakdown(dets, gts)
    assert res.counts["duplicate"] == 1 and res.counts["tp"] == 2
    _only(res, "duplicate")
    assert res.AP50 + res.dAP["duplicate"] == pytest.approx(1.0)


def test_wrong_class_is_a_classification_error():
    dets = [torch.tensor([[1.0, 0.9, *A]]), torch.tensor([[1.0, 0.8, *B]])]
    res = error_breakdown(dets, _gts(), classes=["banana", "person"])
    assert res.counts["classification"] == 1 and res.counts["missed"] == 0
    _only(res, "classification")
    assert res.AP50 + res.dAP["classification"] == pytest.approx(1.0)
    assert res.per_class["person"]["classification"] == 1


def test_poor_box_is_a_localization_error():
    shifted = [0.25, 0.1, 0.65, 0.5]  # IoU 0.6/1.4 = 0.43 with A
    assert 0.1 < float(__import__("d2lssd").box_iou(torch.tensor([shifted]), torch.tensor([A]))) < 0.5
    dets = [torch.tensor([[0.0, 0.9, *shifted]]), torch.tensor([[1.0, 0.8, *B]])]
    res = error_breakdown(dets, _gts())
    assert res.counts["localization"] == 1 and res.counts["missed"] == 0
    _only(res, "localization")
    assert res.AP50 + res.dAP["localization"] == pytest.approx(1.0)


def test_wrong_class_and_poor_box_is_both():
    shifted = [0.25, 0.1, 0.65, 0.5]
    # The "both" detection outranks image 1's true positive; image 0's object is then missed.
    dets = [torch.tensor([[1.0, 0.9, *shifted]]), torch.tensor([[1.0, 0.8, *B]])]
    res = error_breakdown(dets, _gts())
    assert res.counts["both"] == 1 and res.counts["missed"] == 1
    assert res.dAP["both"] > 0.05 and res.dAP["missed"] > 0.05
    for k in ("classification", "localization", "duplicate", "background"):
        assert res.dAP[k] == pytest.approx(0.0, abs=1e-9)


def test_far_away_box_is_background():
    dets = [torch.tensor([[0.0, 0.95, 0.8, 0.0, 0.95, 0.1], [0.0, 0.9, *A]]),
            torch.tensor([[0.0, 0.85, 0.0, 0.8, 0.1, 0.95]]), ]
    gts = [torch.tensor([[0.0, *A]]), torch.zeros(0, 5)]
    res = error_breakdown(dets, gts)
    assert res.counts["background"] == 2
    _only(res, "background")
    assert res.AP50 + res.dAP["background"] == pytest.approx(1.0)


def test_undetected_object_is_missed():
    dets = [torch.tensor([[0.0, 0.9, *A]]), torch.zeros(0, 6)]
    res = error_breakdown(dets, _gts())
    assert res.counts["missed"] == 1
    _only(res, "missed")
    assert res.AP50 == pytest.approx(0.5) and res.dAP["missed"] == pytest.approx(0.5)


def test_padding_and_order():
    dets = torch.tensor([[[0.0, 0.2, *A], [0.0, 0.9, *A], [-1.0, 0, 0, 0, 0, 0]]])
    gts = torch.tensor([[[0.0, *A], [-1.0, 0, 0, 0, 0]]])
    (im,) = classify_errors(dets, gts)
    assert im["detections"][:, 1].tolist() == pytest.approx([0.9, 0.2])  # sorted by score
    assert im["kind"] == ["tp", "duplicate"] and im["missed"].tolist() == [False]


def test_no_ground_truth_is_nan_and_bad_input_raises():
    res = error_breakdown([torch.tensor([[0.0, 0.9, *A]])], [torch.zeros(0, 5)])
    assert math.isnan(res.AP50)
    with pytest.raises(ValueError, match="targets"):
        error_breakdown([torch.zeros(0, 6)], [torch.zeros(0, 5), torch.zeros(0, 5)])
    with pytest.raises(ValueError, match="bg_iou"):
        classify_errors([torch.zeros(0, 6)], [torch.zeros(0, 5)], fg_iou=0.3, bg_iou=0.5)
    with pytest.raises(ValueError, match="NaN"):
        classify_errors([torch.tensor([[0.0, math.nan, *A]])], [torch.zeros(0, 5)])
