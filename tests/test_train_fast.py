"""predict / evaluate_ap with the paper's inference, and the training loop's unchecked, sync-free path."""

import math
import sys

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


TRAIN = sys.modules["d2lssd.engine.batch_loss"]  # the loop's matching and checks live there


def _banana_batches(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        X = torch.rand(n, 3, SIZE, SIZE, generator=g)
        c = torch.rand(n, 1, 2, generator=g) * 0.4 + 0.3
        Y = torch.cat((torch.zeros(n, 1, 1), c - 0.15, c + 0.15), dim=-1)
        out.append((X, Y))
    return out


def _spy(monkeypatch, name):
    calls = []
    real = getattr(TRAIN, name)

    def spy(*args, **kwargs):
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(TRAIN, name, spy)
    return calls


@pytest.mark.parametrize("loss_fn", [d2lssd.ssd_loss, d2lssd.MultiBoxLoss(normalize="image")])
def test_the_loop_checks_the_first_batch_and_each_new_shape_then_runs_unchecked(monkeypatch, loss_fn):
    checked, unchecked = _spy(monkeypatch, "multibox_target"), _spy(monkeypatch, "_multibox_target")
    fast = []
    if isinstance(loss_fn, d2lssd.MultiBoxLoss):
        real = d2lssd.MultiBoxLoss.unchecked
        monkeypatch.setattr(d2lssd.MultiBoxLoss, "unchecked",
                            lambda self, *a: fast.append(1) or real(self, *a))
    torch.manual_seed(0)
    net = TinySSD(num_classes=1)
    # batches of 4, 4, 4, then 2 (a new shape: checked again), then 2 (unchecked)
    data = _banana_batches([4, 4, 4, 2, 2])
    h = d2lssd.train_ssd(net, data, num_epochs=1, device="cpu", progress=False, plot=None, loss_fn=loss_fn)
    assert h.last["train_images"] == 16 and math.isfinite(h.last["train_loss"])
    # 2 checked steps (the first batch, the first of size 2) and 3 unchecked ones
    assert checked == ["multibox_target"] * 2
    assert unchecked == ["_multibox_target"] * 3
    if fast:
        assert len(fast) == 3


def test_the_unchecked_loop_gives_the_checked_loops_result(monkeypatch):
    data = _banana_batches([4, 4, 4])

    def run():
        torch.manual_seed(0)
        net = TinySSD(num_classes=1)
        h = d2lssd.train_ssd(net, data, num_epochs=1, device="cpu", progress=False, plot=None,
                             loss_fn=d2lssd.MultiBoxLoss())
        return h.last["train_loss"], net.state_dict()

    fast_loss, fast_state = run()
    monkeypatch.setattr(TRAIN._CheckOnce, "__init__",
                        lambda self, fn: (setattr(self, "loss_fn", fn), setattr(self, "fast_loss", None),
                                          setattr(self, "seen", None)) and None)
    slow_loss, slow_state = run()  # every batch through the checked functions
    assert fast_loss == pytest.approx(slow_loss, rel=1e-6)
    for k in fast_state:
        torch.testing.assert_close(fast_state[k], slow_state[k])


def test_bad_labels_in_a_later_batch_still_raise():
    data = _banana_batches([4, 4])
    data[1][1][2, 0, 1] = 0.9  # xmin > xmax in the second batch, which runs unchecked
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="labels has a degenerate box"):
        d2lssd.train_ssd(TinySSD(num_classes=1), data, num_epochs=1, device="cpu", progress=False, plot=None)
