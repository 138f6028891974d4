import math

import pytest
import torch
from hypothesis import assume, given, settings

import d2lssd
from strategies import boxes, random_boxes


def test_offset_boxes_and_inverse_equal_d2l(d2l):
    anchors, target = random_boxes(100, 1), random_boxes(100, 2)
    off = d2lssd.offset_boxes(anchors, target)
    torch.testing.assert_close(off, d2l.offset_boxes(anchors, target))
    torch.testing.assert_close(d2lssd.offset_inverse(anchors, off), d2l.offset_inverse(anchors, off))


def test_known_offsets():
    anchor = torch.tensor([[0.0, 0.0, 0.2, 0.4]])  # centre (0.1, 0.2), size (0.2, 0.4)
    box = torch.tensor([[0.02, 0.04, 0.22, 0.84]])  # centre (0.12, 0.44), size (0.2, 0.8)
    off = d2lssd.offset_boxes(anchor, box, eps=0)
    torch.testing.assert_close(off, torch.tensor([[0.02 / 0.2 / 0.1, 0.24 / 0.4 / 0.1, 0.0,
                                                   math.log(2) / 0.2]]))


@settings(max_examples=200, deadline=None)
@given(boxes(min_n=1, min_size=1e-2), boxes(min_n=1, min_size=1e-2))
def test_decode_of_encode_is_identity(anchors, target):
    n = min(len(anchors), len(target))
    anchors, target = anchors[:n].double(), target[:n].double()
    ratio = d2lssd.box_corner_to_center(target)[:, 2:] / d2lssd.box_corner_to_center(anchors)[:, 2:]
    assume(bool((ratio < 1000 / 16).all()))  # beyond that, decoding is clamped on purpose
    back = d2lssd.offset_inverse(anchors, d2lssd.offset_boxes(anchors, target, eps=0))
    torch.testing.assert_close(back, target, atol=1e-9, rtol=1e-9)


def test_offsets_broadcast_over_a_batch():
    anchors = random_boxes(10, 3)[None]  # (1, A, 4)
    target = torch.stack([random_boxes(10, 4), random_boxes(10, 5)])  # (2, A, 4)
    off = d2lssd.offset_boxes(anchors, target)
    assert off.shape == (2, 10, 4)
    torch.testing.assert_close(off[1], d2lssd.offset_boxes(anchors[0], target[1]))


def test_decoding_is_clamped_so_it_cannot_overflow():
    anchors = random_boxes(3, 6)
    out = d2lssd.offset_inverse(anchors, torch.full((3, 4), 1e4))
    assert torch.isfinite(out).all()
    wh = d2lssd.box_corner_to_center(out)[:, 2:]
    anc_wh = d2lssd.box_corner_to_center(anchors)[:, 2:]
    torch.testing.assert_close(wh / anc_wh, torch.full((3, 2), 1000 / 16), rtol=1e-5, atol=0)


def test_custom_variances_scale_offsets():
    anchors, target = random_boxes(5, 1), random_boxes(5, 2)
    a = d2lssd.offset_boxes(anchors, target, variances=(0.1, 0.2))
    b = d2lssd.offset_boxes(anchors, target, variances=(1.0, 1.0))
    torch.testing.assert_close(a[:, :2] * 0.1, b[:, :2])
    torch.testing.assert_close(a[:, 2:] * 0.2, b[:, 2:])


def test_bad_input():
    anchors = random_boxes(2)
    with pytest.raises(ValueError, match="anchors must have positive width"):
        d2lssd.offset_boxes(torch.tensor([[0.1, 0.1, 0.1, 0.5]]), anchors[:1])
    with pytest.raises(ValueError, match="assigned_bb has a degenerate box"):
        d2lssd.offset_boxes(anchors, torch.tensor([[0.5, 0.5, 0.4, 0.6]] * 2))
    with pytest.raises(ValueError, match="offset_preds contains NaN"):
        d2lssd.offset_inverse(anchors, torch.full((2, 4), float("nan")))
    with pytest.raises(ValueError, match="offset_preds must have a last dimension of 4"):
        d2lssd.offset_inverse(anchors, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="variances"):
        d2lssd.offset_boxes(anchors, anchors, variances=(0.1, 0.0))
    with pytest.raises(ValueError, match="same device"):
        d2lssd.offset_inverse(anchors, torch.zeros(2, 4, device="meta"))


def test_integer_inputs_are_promoted(d2l):
    # d2l.ai §14.4.4 decodes int64 zero offsets; pixel anchors and boxes may be integers too.
    anchors = torch.tensor([[10, 20, 50, 60], [0, 0, 30, 90]])
    boxes = torch.tensor([[12, 18, 55, 61], [5, 5, 25, 80]])
    enc = d2lssd.offset_boxes(anchors, boxes)
    assert enc.dtype == torch.float32
    torch.testing.assert_close(enc, d2lssd.offset_boxes(anchors.float(), boxes.float()), rtol=0, atol=0)
    torch.testing.assert_close(enc, d2l.offset_boxes(anchors, boxes))
    dec = d2lssd.offset_inverse(anchors, torch.zeros(2, 4, dtype=torch.int64))
    assert dec.dtype == torch.float32 and torch.equal(dec, anchors.float())
    torch.testing.assert_close(d2lssd.offset_inverse(anchors, enc), boxes.float(), rtol=0, atol=1e-4)  # eps in the log
    with pytest.raises(ValueError, match="anchors must have positive width"):
        d2lssd.offset_boxes(torch.tensor([[1, 1, 1, 5]]), torch.tensor([[1, 1, 2, 5]]))  # zero-width anchor
    with pytest.raises(ValueError, match="offset_preds must be a floating-point or integer tensor"):
        d2lssd.offset_inverse(anchors, torch.zeros(2, 4, dtype=torch.bool))
