"""The ResNet-34 SSD: 7760 anchors in TinySSD's order, heads aligned with them, weights recorded.

One randomly initialized model (``pretrained=False``) serves most tests; the
ImageNet-weights path is tested with the loader replaced (no network here).
"""

import urllib.error
import warnings

import pytest
import torch

from d2lssd import multibox_prior, multibox_target, ssd_loss
from d2lssd.models import (PENNFUDAN_RATIOS, PENNFUDAN_SIZES, SSD_RESNET34_RATIOS, SSD_RESNET34_SIZES,
                           SSDBase, SSDResNet34, TinySSD)
from d2lssd.models import ssd_resnet

MAPS = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return SSDResNet34(num_classes=1, pretrained=False).eval()


@pytest.fixture(scope="module")
def out(net):
    torch.manual_seed(1)
    X = torch.rand(2, 3, 300, 300)
    with torch.no_grad():
        return X, net(X)


def test_300x300_gives_six_maps_and_7760_anchors(net, out):
    X, (anchors, cls_preds, bbox_preds) = out
    assert net.feature_map_sizes == MAPS
    assert 4 * sum(h * w for h, w in MAPS) == 7760
    assert anchors.shape == (1, 7760, 4) and anchors.dtype == torch.float32
    assert cls_preds.shape == (2, 7760, 2) and bbox_preds.shape == (2, 7760 * 4)
    assert net.num_anchors == [4] * 6
    with torch.no_grad():
        assert net(X[:1])[0] is anchors  # cached per input size


def test_anchors_are_multibox_prior_per_level_in_row_major_order(out):
    anchors = out[1][0]
    expected = torch.cat([multibox_prior(torch.zeros(1, 1, h, w), s, r)
                          for (h, w), s, r in zip(MAPS, PENNFUDAN_SIZES, PENNFUDAN_RATIOS)], dim=1)
    assert torch.equal(anchors, expected)
    # Anchor k of cell (i, j) of level l sits at offset_l + (i * w + j) * 4 + k, centred on that cell.
    offset = 4 * 38 * 38
    h = w = 19
    for i, j in [(0, 0), (0, 18), (7, 3), (18, 18)]:
        cell = anchors[0, offset + (i * w + j) * 4: offset + (i * w + j) * 4 + 4]
        centres = (cell[:, :2] + cell[:, 2:]) / 2
        torch.testing.assert_close(centres, torch.tensor([[(j + 0.5) / w, (i + 0.5) / h]] * 4))
    # All anchors favour tall boxes: higher than wide.
    wh = anchors[0, :, 2:] - anchors[0, :, :2]
    assert (wh[:, 1] > wh[:, 0]).all()


def test_head_outputs_sit_at_the_row_of_their_anchor():
    torch.manual_seed(0)
    net = SSDResNet34(num_classes=2, pretrained=False).eval()
    # Zero weights and a bias that encodes (level, anchor k, class c) / (level, k, offset m).
    with torch.no_grad():
        for lvl, (ch, bh) in enumerate(zip(net.cls_heads, net.bbox_heads)):
            ch.weight.zero_()
            bh.weight.zero_()
            ch.bias.copy_(torch.tensor([100 * lvl + 10 * k + c for k in range(4) for c in range(3)],
                                       dtype=torch.float32))
            bh.bias.copy_(torch.tensor([100 * lvl + 10 * k + m for k in range(4) for m in range(4)],
                                       dtype=torch.float32))
        _, cls_preds, bbox_preds = net(torch.rand(1, 3, 300, 300))
    rows = torch.cat([torch.full((h * w * 4,), lvl) for lvl, (h, w) in enumerate(MAPS)])
    k = torch.arange(7760) % 4  # all anchors of a cell together
    expected_cls = 100 * rows[:, None] + 10 * k[:, None] + torch.arange(3)
    assert torch.equal(cls_preds[0], expected_cls.float())
    expected_box = 100 * rows[:, None] + 10 * k[:, None] + torch.arange(4)
    assert torch.equal(bbox_preds[0].reshape(7760, 4), expected_box.float())


def test_channels_last_gives_the_same_outputs(net, out):
    X, (anchors, cls_preds, bbox_preds) = out
    torch.manual_seed(0)
    cl = SSDResNet34(num_classes=1, pretrained=False).eval()
    cl.load_state_dict(net.state_dict())
    cl = cl.to(memory_format=torch.channels_last)
    with torch.no_grad():
        a, c, b = cl(X.contiguous(memory_format=torch.channels_last))
    assert torch.equal(a, anchors)
    # Same up to float32 rounding (another convolution algorithm): relative to the output scale.
    for got, want in ((c, cls_preds), (b, bbox_preds)):
        assert float((got - want).abs().max()) <= 1e-4 * float(want.abs().max())


def test_one_training_step_with_multibox_target_and_ssd_loss():
    torch.manual_seed(0)
    net = SSDResNet34(num_classes=1, pretrained=False).train()
    X = torch.rand(2, 3, 300, 300)
    labels = torch.tensor([[[0, 0.1, 0.2, 0.3, 0.9], [-1, 0, 0, 0, 0]],
                           [[0, 0.5, 0.1, 0.62, 0.5], [0, 0.7, 0.3, 0.8, 0.95]]])
    anchors, cls_preds, bbox_preds = net(X)
    bbox_labels, bbox_masks, cls_labels = multibox_target(anchors, labels)
    assert (cls_labels == 1).sum() >= 3  # every pedestrian has a positive anchor
    loss = ssd_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks).mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert net.stem[0].weight.grad is not None and net.stem[0].weight.grad.abs().sum() > 0


def test_pretrained_weights_are_loaded_and_recorded(monkeypatch):
    from torchvision.models import resnet34

    def fake_imagenet():
        m = resnet34(weights=None)
        with torch.no_grad():
            m.conv1.weight.fill_(0.125)
        return m

    monkeypatch.setattr(ssd_resnet, "_load_imagenet_resnet34", fake_imagenet)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = SSDResNet34(pretrained=True)
    assert net.weights == "IMAGENET1K_V1" and "ImageNet" in net.weights_note
    assert (net.stem[0].weight == 0.125).all()


def test_random_init_with_a_clear_warning_when_the_weights_cannot_be_loaded(monkeypatch):
    def offline():
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(ssd_resnet, "_load_imagenet_resnet34", offline)
    with pytest.warns(UserWarning, match="could not be loaded.*randomly initialized"):
        net = SSDResNet34(pretrained=True)
    assert net.weights == "random" and "URLError" in net.weights_note
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pretrained=False: no warning at all
        assert SSDResNet34(pretrained=False).weights == "random"


def test_offline_switch_skips_the_network_when_the_weights_are_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("D2LSSD_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(RuntimeError, match="not in torch.s hub cache"):
        ssd_resnet._load_imagenet_resnet34()


def test_bad_inputs_and_arguments_raise(net):
    with pytest.raises(ValueError, match="too small"):
        net(torch.rand(1, 3, 256, 256))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.rand(3, 300, 300))
    with pytest.raises(ValueError):
        SSDResNet34(num_classes=0, pretrained=False)
    with pytest.raises(ValueError):
        SSDResNet34(pretrained=False, sizes=[[0.1]] * 5)


def test_state_dict_names_and_shapes_are_those_of_recorded_checkpoints(net):
    # Digest taken before the models shared d2lssd.models.base.SSDBase (see test_tinyssd.py).
    import hashlib

    lines = [f"{k} {tuple(v.shape)} {v.dtype}" for k, v in net.state_dict().items()]
    assert (len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]) == (294, "7bbd6a3fcc7b96ed")


def test_default_anchors_and_their_old_names():
    assert SSDResNet34.SIZES is SSD_RESNET34_SIZES is PENNFUDAN_SIZES
    assert SSDResNet34.RATIOS is SSD_RESNET34_RATIOS is PENNFUDAN_RATIOS
    assert issubclass(SSDResNet34, SSDBase) and issubclass(TinySSD, SSDBase)  # one skeleton
