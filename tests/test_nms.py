
import pytest
import torch
import torchvision.ops as ops
from hypothesis import given, settings
from hypothesis import strategies as st

import d2lssd
from strategies import boxes, clustered, random_boxes

THRESHOLDS = [0.0, 0.3, 0.45, 0.5, 0.7, 1.0]
import d2lssd.postprocess as NMS_MODULE  # the post-processing module; d2lssd.nms is the function
REAL_USE_TORCHVISION = NMS_MODULE._use_torchvision


@pytest.fixture(autouse=True, params=["d2lssd", "torchvision"])
def nms_backend(request, monkeypatch):
    """Every test of this file runs twice: with ``backend="auto"`` resolving to
    our blocked algorithm, and to torchvision's kernel (equality on both paths)."""
    real = NMS_MODULE._use_torchvision

    def forced(backend, boxes, one_group=False):
        return request.param == "torchvision" if backend == "auto" else real(backend, boxes, one_group)

    monkeypatch.setattr(NMS_MODULE, "_use_torchvision", forced)
    return request.param


def test_explicit_backends_agree_and_bad_backend_is_rejected():
    b, s = clustered(3000, 30, seed=7)
    idx = torch.randint(0, 12, (3000,), generator=torch.Generator().manual_seed(3))
    for t in (0.3, 0.45, 0.7):
        ours = d2lssd.batched_nms(b, s, idx, t, backend="d2lssd")
        assert torch.equal(ours, d2lssd.batched_nms(b, s, idx, t, backend="torchvision"))
        assert torch.equal(d2lssd.nms(b, s, t, backend="d2lssd"), d2lssd.nms(b, s, t, backend="torchvision"))
    with pytest.raises(ValueError, match="backend must be one of"):
        d2lssd.nms(b, s, 0.5, backend="cuda")
    with pytest.raises(ValueError, match="backend must be one of"):
        d2lssd.batched_nms(b, s, idx, 0.5, backend=None)


def test_backend_auto_picks_torchvision_for_groups_in_float32_and_float64_and_ours_otherwise():
    box = torch.zeros(1, 4)
    assert REAL_USE_TORCHVISION("auto", box) and REAL_USE_TORCHVISION("auto", box.double())
    assert not REAL_USE_TORCHVISION("auto", box, one_group=True)  # one group on the CPU: ours
    assert not REAL_USE_TORCHVISION("auto", box.half())
    assert not REAL_USE_TORCHVISION("d2lssd", box) and REAL_USE_TORCHVISION("torchvision", box.half())


def test_float16_boxes_equal_float32_boxes_on_our_backend():
    b, s = clustered(500, 10, seed=4, quantize=16)  # exactly representable in float16
    assert torch.equal(d2lssd.nms(b.half(), s, 0.5, backend="d2lssd"), d2lssd.nms(b, s, 0.5, backend="d2lssd"))


@pytest.mark.parametrize("t", THRESHOLDS)
@pytest.mark.parametrize("n, seed", [(1, 0), (10, 1), (300, 2), (3000, 3)])
def test_nms_equals_torchvision_on_random_boxes(n, seed, t):
    b, s = random_boxes(n, seed), torch.rand(n, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(d2lssd.nms(b, s, t), ops.nms(b, s, t))


@pytest.mark.parametrize("t", THRESHOLDS + [0.25, 1 / 3])
@pytest.mark.parametrize("quantize", [None, 8, 16])
def test_nms_equals_torchvision_on_clustered_boxes_with_ties(t, quantize):
    # Quantized coordinates and scores: duplicate boxes, equal scores and IoUs
    # that land exactly on simple thresholds such as 0.5 and 0.25.
    for seed in range(3):
        b, s = clustered(2000, 15, seed=seed, quantize=quantize)
        assert torch.equal(d2lssd.nms(b, s, t), ops.nms(b, s, t)), seed


def test_nms_iou_exactly_at_threshold_is_kept():
    b = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 2.0]])  # IoU exactly 0.5
    s = torch.tensor([0.9, 0.8])
    assert d2lssd.nms(b, s, 0.5).tolist() == [0, 1] == ops.nms(b, s, 0.5).tolist()
    assert d2lssd.nms(b, s, 0.49).tolist() == [0] == ops.nms(b, s, 0.49).tolist()


def test_nms_ties_keep_the_lower_index_first():
    b = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 3 + [[2.0, 2.0, 3.0, 3.0]])
    s = torch.tensor([0.5, 0.5, 0.5, 0.5])
    assert d2lssd.nms(b, s, 0.5).tolist() == [0, 3] == ops.nms(b, s, 0.5).tolist()


def test_nms_equals_d2l(d2l):
    b, s = clustered(500, 8, seed=5)
    assert d2lssd.nms(b, s, 0.5).tolist() == d2l.nms(b, s, 0.5).tolist()


@pytest.mark.parametrize("num_groups", [1, 3, 50])
def test_batched_nms_equals_torchvision(num_groups):
    b, s = clustered(3000, 20, seed=num_groups)
    idx = torch.randint(0, num_groups, (3000,), generator=torch.Generator().manual_seed(1))
    for t in (0.3, 0.5, 0.7):
        assert torch.equal(d2lssd.batched_nms(b, s, idx, t), ops.batched_nms(b, s, idx, t))


@pytest.mark.parametrize("sizes", [[64, 1, 130, 63], [1, 64], [200]])
def test_batched_nms_blocks_at_group_boundaries_and_ties_equal_torchvision(sizes):
    # Group sizes at and around the 64-box block: blocks inside one group take
    # the path without a group mask; blocks that span groups take the masked one.
    # Scores are rounded so many ties cross group boundaries.
    n = sum(sizes)
    b, s = clustered(n, 6, seed=len(sizes))
    s = (s * 8).round() / 8
    idx = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(2))
    b, s, idx = b[perm], s[perm], idx[perm]
    for t in (0.3, 0.5):
        assert torch.equal(d2lssd.batched_nms(b, s, idx, t), ops.batched_nms(b, s, idx, t))


def test_batched_nms_keeps_precision_with_many_groups():
    # Nearly identical boxes in different groups must never interact, however many groups.
    b = torch.tensor([[0.1, 0.1, 0.4, 0.4]] * 5000) + torch.rand(5000, 1) * 1e-4
    s = torch.rand(5000)
    idx = torch.arange(5000)
    assert d2lssd.batched_nms(b, s, idx, 0.5).numel() == 5000


def test_empty_input():
    out = d2lssd.nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert out.dtype == torch.int64 and out.numel() == 0


@settings(max_examples=150, deadline=None)
@given(boxes(max_n=40), st.floats(0, 1), st.integers(0, 1000))
def test_nms_properties(b, t, seed):
    s = torch.rand(len(b), generator=torch.Generator().manual_seed(seed))
    keep = d2lssd.nms(b, s, t)
    assert len(set(keep.tolist())) == len(keep)  # a subset, no repeats
    assert (s[keep][:-1] >= s[keep][1:]).all()  # sorted by score
    # Compare in float64: the threshold is a Python float (double), as in
    # torchvision's kernels; float32(t) can round up to the IoU itself.
    iou = d2lssd.box_iou(b[keep], b[keep]).double()
    assert not torch.triu(iou > t, diagonal=1).any()  # no kept pair above the threshold
    # maximal: every removed box overlaps a kept box with a score at least as high
    removed = torch.ones(len(b), dtype=torch.bool)
    removed[keep] = False
    if removed.any():
        over = d2lssd.box_iou(b[removed], b[keep]).double() > t
        assert over.any(dim=1).all()
    assert torch.equal(keep, ops.nms(b, s, t))


@pytest.mark.parametrize("args, match", [
    ((torch.zeros(3, 4), torch.zeros(2), 0.5), r"scores must have shape"),
    ((torch.zeros(3, 4), torch.zeros(3), 1.5), "iou_threshold"),
    ((torch.tensor([[0.5, 0.5, 0.1, 0.9]]), torch.zeros(1), 0.5), "boxes has a degenerate box"),
    ((torch.zeros(2, 4), torch.tensor([0.5, float("nan")]), 0.5), "scores contains NaN"),
    ((torch.zeros(2, 2, 4), torch.zeros(2), 0.5), "boxes must have 2 dimensions"),
    ((torch.zeros(2, 4), torch.zeros(2, device="meta"), 0.5), "same device"),
])
def test_nms_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        d2lssd.nms(*args)


def test_batched_nms_rejects_float_idxs():
    with pytest.raises(ValueError, match="idxs"):
        d2lssd.batched_nms(torch.zeros(2, 4), torch.zeros(2), torch.zeros(2), 0.5)


# --- multibox_detection ----------------------------------------------------------------

# d2l.ai §14.4.4's worked example: four anchors around a dog, one cat anchor.
ANCHORS = torch.tensor([[0.1, 0.08, 0.52, 0.92], [0.08, 0.2, 0.56, 0.95],
                        [0.15, 0.3, 0.62, 0.91], [0.55, 0.2, 0.9, 0.88]])
CLS_PROBS = torch.tensor([[0.0] * 4, [0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.9]])


@pytest.mark.parametrize("agnostic", [True, False])
def test_multibox_detection_worked_example(d2l, agnostic):
    out = d2lssd.multibox_detection(CLS_PROBS[None], torch.zeros(1, 16), ANCHORS[None],
                                    nms_threshold=0.5, class_agnostic=agnostic)
    assert out.shape == (1, 4, 6)
    torch.testing.assert_close(out[0, :2], torch.tensor([[0, 0.9, 0.1, 0.08, 0.52, 0.92],
                                                         [1, 0.9, 0.55, 0.2, 0.9, 0.88]]))
    assert out[0, 2:, 0].tolist() == [-1, -1]
    ref = d2l.multibox_detection(CLS_PROBS[None], torch.zeros(1, 16), ANCHORS[None], 0.5)
    torch.testing.assert_close(out[0, :2], ref[0, :2])


def _random_outputs(b, q, a, seed):
    g = torch.Generator().manual_seed(seed)
    anchors = random_boxes(a, seed, min_size=0.05, max_size=0.5)[None]
    cls = torch.softmax(torch.randn(b, q + 1, a, generator=g) * 3, dim=1)
    off = torch.randn(b, a * 4, generator=g) * 0.3
    return cls, off, anchors


@pytest.mark.parametrize("q", [1, 3])
def test_multibox_detection_kept_rows_equal_d2l(d2l, q):
    cls, off, anchors = _random_outputs(3, q, 400, seed=q)
    ours = d2lssd.multibox_detection(cls, off, anchors, 0.5, 0.05, class_agnostic=True)
    ref = d2l.multibox_detection(cls, off, anchors, 0.5, 0.05)
    for i in range(3):
        a, r = ours[i][ours[i, :, 0] >= 0], ref[i][ref[i, :, 0] >= 0]
        torch.testing.assert_close(a, r)


def test_multibox_detection_per_class_equals_batched_nms_per_image():
    cls, off, anchors = _random_outputs(2, 3, 500, seed=11)
    out = d2lssd.multibox_detection(cls, off, anchors, 0.45, 0.1)
    boxes = d2lssd.offset_inverse(anchors, off.reshape(2, -1, 4))
    for i in range(2):
        conf, cid = cls[i, 1:].max(dim=0)
        sel = (conf >= 0.1).nonzero().flatten()
        keep = sel[ops.batched_nms(boxes[i, sel], conf[sel], cid[sel], 0.45)]
        expect = torch.cat((cid[keep, None].float(), conf[keep, None], boxes[i, keep]), dim=1)
        got = out[i][out[i, :, 0] >= 0]
        torch.testing.assert_close(got, expect)


def test_multibox_detection_top_k_and_layouts():
    cls, off, anchors = _random_outputs(2, 2, 300, seed=3)
    full = d2lssd.multibox_detection(cls, off, anchors)
    top = d2lssd.multibox_detection(cls, off.reshape(2, -1, 4), anchors[0], top_k=7)
    assert full.shape == (2, 300, 6) and top.shape == (2, 7, 6)
    torch.testing.assert_close(top, full[:, :7])
    kept = full[..., 0] >= 0
    # kept rows first, each image sorted by score
    for i in range(2):
        n = int(kept[i].sum())
        assert kept[i, :n].all() and not kept[i, n:].any()
        assert (full[i, :n, 1][:-1] >= full[i, :n, 1][1:]).all()


def test_multibox_detection_batch_equals_single_images():
    cls, off, anchors = _random_outputs(3, 2, 200, seed=4)
    batch = d2lssd.multibox_detection(cls, off, anchors)
    for i in range(3):
        torch.testing.assert_close(batch[i:i + 1],
                                   d2lssd.multibox_detection(cls[i:i + 1], off[i:i + 1], anchors))


def test_multibox_detection_rejects_bad_input():
    cls, off, anchors = _random_outputs(1, 2, 10, seed=0)
    with pytest.raises(ValueError, match="cls_probs must have shape"):
        d2lssd.multibox_detection(cls[0], off, anchors)
    with pytest.raises(ValueError, match="offset_preds must have shape"):
        d2lssd.multibox_detection(cls, off[:, :-4], anchors)
    with pytest.raises(ValueError, match="anchors must have shape"):
        d2lssd.multibox_detection(cls, off, anchors[:, :5])
    with pytest.raises(ValueError, match="cls_probs contains NaN"):
        d2lssd.multibox_detection(cls * float("nan"), off, anchors)
    with pytest.raises(ValueError, match="top_k"):
        d2lssd.multibox_detection(cls, off, anchors, top_k=0)
    with pytest.raises(ValueError, match="same device"):
        d2lssd.multibox_detection(cls, off.to("meta"), anchors)


def test_multibox_detection_orders_nearly_equal_scores():
    # Scores 6e-8 apart must still come out in descending order.
    anchors = torch.tensor([[[0.0, 0.0, 0.1, 0.1], [0.5, 0.5, 0.6, 0.6]]])
    p = torch.tensor([0.51, 0.51000005])
    cls = torch.stack((1 - p, p))[None]
    out = d2lssd.multibox_detection(cls, torch.zeros(1, 8), anchors)
    assert out[0, :, 1].tolist() == sorted(p.tolist(), reverse=True)


def _detections_by_hand(cls, off, anchors, nms_threshold, pos_threshold, class_agnostic, nms_fn):
    """multibox_detection's documented output built row by row: per image, the candidates
    through ``nms_fn(boxes, scores, groups)``, then kept rows and the rest, each by
    descending score, equal scores by lower anchor index."""
    B, _, A = cls.shape
    conf, cid = cls[:, 1:].max(dim=1)
    boxes = d2lssd.offset_inverse(anchors, off.reshape(B, A, 4))
    out = []
    for i in range(B):
        sel = (conf[i] >= pos_threshold).nonzero().flatten()
        groups = torch.zeros_like(cid[i, sel]) if class_agnostic else cid[i, sel]
        kept = torch.zeros(A, dtype=torch.bool)
        kept[sel[nms_fn(boxes[i, sel], conf[i, sel], groups, nms_threshold)]] = True
        rows = sorted(range(A), key=lambda a: (not kept[a], -conf[i, a].item(), a))
        cls_out = torch.where(kept, cid[i], -1)[rows]
        out.append(torch.cat((cls_out[:, None].float(), conf[i, rows, None], boxes[i, rows]), dim=1))
    return torch.stack(out)


@pytest.mark.parametrize("agnostic", [False, True])
def test_multibox_detection_on_tinyssd_sized_outputs_equals_the_rows_built_by_hand(agnostic):
    # One image, one class, 5444 anchors (TinySSD at 256x256), every anchor a candidate:
    # the one-group NMS path over several tiles and rounds, bit for bit (torch.equal).
    cls, off, anchors = _random_outputs(1, 1, 5444, seed=21)
    rank = torch.randperm(5444, generator=torch.Generator().manual_seed(21))
    conf = 0.01 + 0.98 * (rank + 0.5) / 5444  # distinct (no ties: torchvision's order is ours), >= 0.01
    cls = torch.stack((1 - conf, conf))[None]
    assert torch.unique(conf).numel() == conf.numel()
    out = d2lssd.multibox_detection(cls, off, anchors, class_agnostic=agnostic)
    want = _detections_by_hand(cls, off, anchors, 0.5, 0.009999999, agnostic,
                               lambda b, s, g, t: ops.batched_nms(b, s, g, t))
    assert int((out[0, :, 0] >= 0).sum()) > 3 * 64  # several rounds of 64-box blocks
    assert torch.equal(out, want)


@pytest.mark.parametrize("b, q", [(1, 1), (3, 1), (2, 3)])
def test_multibox_detection_with_tied_scores_equals_the_rows_built_by_hand(b, q):
    # Scores rounded to 1/20: many ties, which NMS and the rows take by lower anchor index.
    cls, off, anchors = _random_outputs(b, q, 700, seed=5 + q)
    cls = (cls * 20).round() / 20
    for agnostic in (False, True):
        out = d2lssd.multibox_detection(cls, off, anchors, 0.45, 0.05, class_agnostic=agnostic)
        want = _detections_by_hand(cls, off, anchors, 0.45, 0.05, agnostic,
                                   lambda bx, s, g, t: d2lssd.batched_nms(bx, s, g, t, backend="d2lssd"))
        assert torch.equal(out, want)


# --- integer input: promoted to the default float dtype ------------------------------------

def _integer_boxes(n, seed, high=300):
    g = torch.Generator().manual_seed(seed)
    xy = torch.randint(0, high, (n, 2), generator=g)
    return torch.cat((xy, xy + torch.randint(1, 60, (n, 2), generator=g)), dim=1)


@pytest.mark.parametrize("seed", range(3))
def test_integer_boxes_and_scores_equal_torchvision_on_floats(seed):
    # torchvision.ops.nms takes float boxes only: ours on integers equals it on their float values.
    b = _integer_boxes(400, seed)
    s = torch.rand(400, generator=torch.Generator().manual_seed(seed + 10))
    for t in (0.3, 0.5):
        assert torch.equal(d2lssd.nms(b, s, t), ops.nms(b.float(), s, t))
        assert torch.equal(d2lssd.nms(b.int(), s, t), ops.nms(b.float(), s, t))
    int_scores = torch.randint(0, 50, (400,), generator=torch.Generator().manual_seed(seed))  # many ties
    assert torch.equal(d2lssd.nms(b, int_scores, 0.5), ops.nms(b.float(), int_scores.float(), 0.5))
    idx = torch.randint(0, 4, (400,), generator=torch.Generator().manual_seed(seed + 20))
    assert torch.equal(d2lssd.batched_nms(b, s, idx, 0.5), ops.batched_nms(b.float(), s, idx, 0.5))


def test_batched_nms_and_nms_on_empty_integer_input():
    boxes, idxs = torch.empty((0, 4), dtype=torch.int64), torch.empty((0,), dtype=torch.int64)
    for scores in (torch.empty((0,)), torch.empty((0,), dtype=torch.int64)):
        out = d2lssd.batched_nms(boxes, scores, idxs, 0.5)
        want = ops.batched_nms(boxes, scores.float(), idxs, 0.5)  # torchvision accepts this one
        assert out.dtype == want.dtype == torch.int64 and out.shape == want.shape == (0,)
        assert d2lssd.nms(boxes, scores, 0.5).shape == (0,)


def test_integer_input_keeps_the_other_checks():
    with pytest.raises(ValueError, match="boxes has a degenerate box"):
        d2lssd.nms(torch.tensor([[5, 0, 4, 1]]), torch.tensor([1]), 0.5)
    with pytest.raises(ValueError, match="scores must have shape"):
        d2lssd.nms(torch.zeros(3, 4, dtype=torch.int64), torch.zeros(2, dtype=torch.int64), 0.5)
    with pytest.raises(ValueError, match="boxes must have 2 dimensions"):
        d2lssd.batched_nms(torch.zeros(1, 3, 4, dtype=torch.int64), torch.zeros(1), torch.zeros(1, dtype=torch.int64), 0.5)
    with pytest.raises(ValueError, match="scores must be a floating-point or integer tensor"):
        d2lssd.nms(torch.zeros(2, 4), torch.zeros(2, dtype=torch.bool), 0.5)


def test_multibox_detection_takes_d2ls_int64_offsets(d2l):
    offset_preds = torch.tensor([0] * ANCHORS.numel())  # int64, as d2l.ai §14.4.4 builds it
    args = (CLS_PROBS[None], offset_preds[None], ANCHORS[None])
    out = d2lssd.multibox_detection(*args, nms_threshold=0.5)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, d2l.multibox_detection(*args, nms_threshold=0.5))
    torch.testing.assert_close(out, d2lssd.multibox_detection(CLS_PROBS[None], offset_preds[None].float(),
                                                              ANCHORS[None]))
    with pytest.raises(ValueError, match="offset_preds must have shape"):
        d2lssd.multibox_detection(CLS_PROBS[None], offset_preds[None, :-1], ANCHORS[None])
    with pytest.raises(ValueError, match="anchors has a degenerate box"):
        d2lssd.multibox_detection(CLS_PROBS[None], offset_preds[None], torch.tensor([[[5, 0, 4, 1]] * 4]))
