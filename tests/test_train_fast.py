"""predict / evaluate_ap with the paper's inference, and the training loop's unchecked, sync-free path."""

import pytest
import torch
from torch.nn import functional as F

import d2lssd
from d2lssd.models import TinySSD
from d2lssd.train import evaluate_ap, predict

SIZE = 64


def _images(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, SIZE, SIZE, generator=g)


def _net(seed=0):
    torch.manual_seed(seed)
    return TinySSD(num_classes=2).eval()


def test_predict_paper_semantics_is_ssd_postprocess_on_the_models_outputs():
    net, X = _net(), _images()
    with torch.no_grad():
        anchors, cls_preds, bbox_preds = net(X)
    probs = F.softmax(cls_preds, dim=2).permute(0, 2, 1)
    want = d2lssd.ssd_postprocess(probs, bbox_preds.reshape(4, -1), anchors, 0.45, 0.2, detections_per_img=50)
    got = predict(net, X, nms_threshold=0.45, score_threshold=0.2, top_k=50, semantics="paper")
    assert len(got) == 4
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w[w[:, 0] >= 0])
        assert len(g) > 0 and set(g[:, 0].tolist()) <= {0.0, 1.0}
    assert all(len(g) <= 50 for g in got)  # top_k is the per-image cap
    with pytest.raises(ValueError, match="semantics"):
        predict(net, X, semantics="torchvision")
    with pytest.raises(ValueError, match="semantics"):
        predict(net, X, semantics="paper", class_agnostic=True)


def test_evaluate_ap_passes_the_semantics_on():
    net, X = _net(1), _images(4, 1)
    Y = torch.tensor([[[0, 0.1, 0.1, 0.5, 0.5]], [[1, 0.2, 0.2, 0.9, 0.8]]] * 2)
    paper = evaluate_ap(net, [(X, Y)], score_threshold=0.01, top_k=20, semantics="paper")
    assert paper["detections"] == [] or all(len(d) <= 20 for d in paper["detections"])
    expect = predict(net, X, score_threshold=0.01, top_k=20, semantics="paper")
    for a, b in zip(paper["detections"], expect):
        torch.testing.assert_close(a, b)
