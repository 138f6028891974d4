"""d2lssd.ssd_postprocess (the SSD paper's inference) against torchvision's SSD.postprocess_detections."""

import types

import pytest
import torch
import torchvision
from torch.nn import functional as F
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.ssd import SSD

import d2lssd
from strategies import random_boxes


def _torchvision_postprocess(logits, regression, anchors, score_thresh=0.01, nms_thresh=0.45,
                             topk=400, per_img=200):
    """torchvision's SSD.postprocess_detections on normalized anchors and a 1 x 1 "image"
    (so its pixel boxes are our normalized ones), without building a network."""
    fake = types.SimpleNamespace(box_coder=det_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)),
                                 score_thresh=score_thresh, nms_thresh=nms_thresh,
                                 topk_candidates=topk, detections_per_img=per_img)
    B = logits.shape[0]
    return SSD.postprocess_detections(fake, {"cls_logits": logits, "bbox_regression": regression},
                                      [anchors] * B, [(1, 1)] * B)


def _outputs(B, A, C, seed, confident=None):
    g = torch.Generator().manual_seed(seed)
    anchors = random_boxes(A, seed, min_size=0.05, max_size=0.5).clamp(0, 1)
    logits = torch.randn(B, A, C, generator=g)
    if confident:  # trained-like: background wins almost everywhere, a few confident anchors
        logits[..., 0] += 8
        for b in range(B):
            idx = torch.randperm(A, generator=g)[:confident]
            logits[b, idx, 0] -= 16
    regression = torch.randn(B, A, 4, generator=g) * 0.5
    return logits, regression, anchors


def _as_rows(det):
    """torchvision's dict as our rows (class from 0, score, box)."""
    return torch.cat(((det["labels"] - 1)[:, None].float(), det["scores"][:, None], det["boxes"]), dim=1)


@pytest.mark.parametrize("backend", ["d2lssd", "torchvision"])
@pytest.mark.parametrize("B, A, C, confident, topk, per_img", [
    (2, 1500, 21, None, 400, 200),  # untrained: every class above 0.01 almost everywhere
    (3, 1500, 21, 30, 400, 200),  # trained-like
    (2, 800, 4, None, 50, 30),  # top-k and cap both bind
    (1, 300, 2, None, 400, 200),  # one class, fewer candidates than the cap
])
def test_ssd_postprocess_equals_torchvision(backend, B, A, C, confident, topk, per_img):
    logits, regression, anchors = _outputs(B, A, C, seed=A + C, confident=confident)
    ref = _torchvision_postprocess(logits, regression, anchors, topk=topk, per_img=per_img)
    out = d2lssd.ssd_postprocess(F.softmax(logits, -1).permute(0, 2, 1), regression, anchors[None],
                                 topk_candidates=topk, detections_per_img=per_img, backend=backend)
    assert out.shape == (B, per_img, 6)
    for i in range(B):
        got, want = out[i][out[i, :, 0] >= 0], _as_rows(ref[i])
        assert len(got) == len(want) > 0
        # Random float scores: no ties, so the order is the same too.
        torch.testing.assert_close(got[:, :2], want[:, :2])
        torch.testing.assert_close(got[:, 2:], want[:, 2:], atol=1e-6, rtol=1e-5)
        assert (out[i, len(got):, 0] == -1).all() and (out[i, len(got):, 1:] == 0).all()


def test_ssd_postprocess_matches_multibox_detection_with_one_class():
    # One class: "argmax over classes" is that class, so both semantics keep the same
    # boxes when neither top-k nor the cap binds and the thresholds agree (> vs >=
    # only differs for a score exactly at the threshold).
    logits, regression, anchors = _outputs(2, 600, 2, seed=5)
    probs = F.softmax(logits, -1).permute(0, 2, 1)
    paper = d2lssd.ssd_postprocess(probs, regression, anchors[None], 0.45, 0.3, topk_candidates=600,
                                   detections_per_img=600, clip=False)
    d2l = d2lssd.multibox_detection(probs, regression, anchors[None], 0.45, 0.3)
    for i in range(2):
        a, b = paper[i][paper[i, :, 0] >= 0], d2l[i][d2l[i, :, 0] >= 0]
        torch.testing.assert_close(a, b)


def test_ssd_postprocess_on_an_image_with_no_detections_and_bad_input():
    probs = torch.zeros(2, 3, 10)
    probs[:, 0] = 1.0  # background everywhere
    anchors = random_boxes(10, 1)[None]
    out = d2lssd.ssd_postprocess(probs, torch.zeros(2, 40), anchors, detections_per_img=5)
    assert out.shape == (2, 5, 6) and (out[..., 0] == -1).all()
    for kw, match in (({"topk_candidates": 0}, "topk_candidates"), ({"detections_per_img": 1.5}, "detections_per_img"),
                      ({"score_threshold": 2.0}, "score_threshold"), ({"backend": "x"}, "backend")):
        with pytest.raises(ValueError, match=match):
            d2lssd.ssd_postprocess(probs, torch.zeros(2, 40), anchors, **kw)
    with pytest.raises(ValueError, match="offset_preds must have shape"):
        d2lssd.ssd_postprocess(probs, torch.zeros(2, 39), anchors)
