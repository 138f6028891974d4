"""The TinySSD variants for training from scratch and small objects (d2lssd.models.scratch)."""

import pytest
import torch
from torch import nn

import d2lssd
from d2lssd import Detector, load_detector
from d2lssd.anchor_fit import level_shapes
from d2lssd.models import (MODELS, ScratchSSD, ScratchTinySSD, TinySSDNormHeads, TinySSDStride4, build_model,
                           model_name_of)

VARIANTS = {"tinyssd-bn": TinySSDNormHeads, "tinyssd-s4": TinySSDStride4, "scratchssd": ScratchSSD}


@pytest.mark.parametrize("name, cls", VARIANTS.items())
def test_registered_with_d2ls_input_convention(name, cls):
    entry = MODELS[name]
    assert entry.model_class is cls and entry.input_size == 256 and entry.pixel_scale == 1.0
    net = build_model(name, 3)
    assert type(net) is cls and model_name_of(net) == name


@pytest.mark.parametrize("name, levels, anchors", [("tinyssd-bn", 5, 5444), ("tinyssd-s4", 6, 21828),
                                                   ("scratchssd", 6, 21828)])
def test_levels_and_anchor_counts(name, levels, anchors):
    torch.manual_seed(0)
    net = build_model(name, 2).eval()
    a, c, b = net(torch.rand(2, 3, 256, 256) * 255)
    assert a.shape == (1, anchors, 4) and c.shape == (2, anchors, 3) and b.shape == (2, anchors * 4)
    assert net.NUM_LEVELS == levels == len(net.feature_map_sizes)
    assert net.feature_map_sizes[-5:] == [(32, 32), (16, 16), (8, 8), (4, 4), (1, 1)]


def test_the_stride4_level_comes_first_and_keeps_tinyssds_anchors_after_it():
    """Level 0 is H/4 x W/4 (also for a non-square input); the five levels after it are TinySSD's, anchor for anchor."""
    s4, tiny = build_model("tinyssd-s4", 1), d2lssd.TinySSD(1)
    assert level_shapes(s4, (192, 320)) == [(48, 80)] + level_shapes(tiny, (192, 320))
    x = torch.zeros(1, 3, 256, 256)
    a4, a = s4(x)[0], tiny(x)[0]
    assert s4.sizes[0] == [0.1, 0.141] and s4.sizes[1:] == tiny.sizes
    torch.testing.assert_close(a4[0, 64 * 64 * 4:], a[0])
    # the first level's anchors: centres every 4 pixels, the smallest square 0.1 of the side
    first = a4[0, :4]
    torch.testing.assert_close((first[0, :2] + first[0, 2:]) / 2, torch.tensor([2 / 256, 2 / 256]))
    torch.testing.assert_close(first[0, 2:] - first[0, :2], torch.tensor([0.1, 0.1]))


def test_without_switches_it_is_tinyssd_layer_for_layer():
    """ScratchTinySSD with both switches off computes exactly TinySSD (same blocks, bare predictors)."""
    torch.manual_seed(0)
    tiny, plain = d2lssd.TinySSD(2).eval(), ScratchTinySSD(2).eval()
    for i in range(5):
        plain.blocks[i].load_state_dict(getattr(tiny, f"blk_{i}").state_dict())
        plain.cls_heads[i].load_state_dict(getattr(tiny, f"cls_{i}").state_dict())
        plain.bbox_heads[i].load_state_dict(getattr(tiny, f"bbox_{i}").state_dict())
    x = torch.rand(2, 3, 128, 192) * 255
    for u, v in zip(tiny(x), plain(x)):
        torch.testing.assert_close(u, v)


def test_normalized_heads_are_conv_bn_relu_then_the_predictor():
    net = build_model("tinyssd-bn", 4)
    for head, out in [(net.cls_heads[1], 4 * 5), (net.bbox_heads[1], 4 * 4)]:
        conv, bn, relu, pred = head
        assert isinstance(bn, nn.BatchNorm2d) and conv.bias is None and isinstance(relu, nn.ReLU)
        assert (conv.in_channels, conv.out_channels, pred.in_channels, pred.out_channels) == (128, 128, 128, out)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in build_model("tinyssd-s4", 4).cls_heads.modules())


def test_a_scratch_detector_saves_loads_and_predicts_the_same(tmp_path):
    torch.manual_seed(0)
    net = build_model("scratchssd", 2, sizes=[[0.05, 0.08]] * 6, ratios=[[1, 2, 0.5]] * 6)
    net.train()(torch.rand(4, 3, 128, 128) * 255)  # move the BatchNorm statistics off their defaults
    det = Detector(net.eval(), class_names=["cell", "platelet"], input_size=128)
    back = load_detector(det.save(tmp_path / "s.pt"), "cpu")
    assert back.spec == det.spec and type(back.net) is ScratchSSD and back.net.sizes == net.sizes
    x = torch.randint(0, 256, (2, 3, 128, 128), dtype=torch.uint8)
    for a, b in zip(det.predict(det.scale_pixels(x)), back.predict(back.scale_pixels(x))):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", VARIANTS)
def test_too_small_inputs_and_bad_classes_are_refused_by_name(name):
    with pytest.raises(ValueError, match="num_classes"):
        build_model(name, 0)
    with pytest.raises(ValueError, match="too small"):
        build_model(name, 1)(torch.zeros(1, 3, 32, 256))


def test_a_scratch_detector_exports_to_onnx_equal_to_detect_on_real_photos(tmp_path):
    """The stride-4 level and the normalized heads go through the one export path; checked on real photos."""
    pytest.importorskip("onnxruntime")
    from d2lssd import export as E

    torch.manual_seed(0)
    net = build_model("scratchssd", 2)
    net.train()(torch.rand(4, 3, 256, 256) * 255)
    det = Detector(net.eval(), class_names=["a", "b"])
    r = E.check_export(E.export_onnx(det, tmp_path / "s.onnx"), det)
    assert r["ok"] and r["detections"] > 0 and r["matched"] == r["detections"], r["summary"]
