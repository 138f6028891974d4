import pytest
import torch
from torch import nn

import d2lssd
from d2lssd.models import TinySSD, concat_preds, down_sample_blk, flatten_pred, get_blk
from d2lssd.models import base as base_module


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return TinySSD(num_classes=1).eval()


def level_maps(h, w):
    """Feature-map sizes of TinySSD's five levels for an h x w input."""
    sizes = [(h // 8, w // 8)]
    for _ in range(3):
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    return sizes + [(1, 1)]


def test_output_shapes_256_has_5444_anchors(net):
    anchors, cls_preds, bbox_preds = net(torch.zeros(2, 3, 256, 256))
    assert anchors.shape == (1, 5444, 4) and anchors.dtype == torch.float32
    assert cls_preds.shape == (2, 5444, 2)
    assert bbox_preds.shape == (2, 5444 * 4)


@pytest.mark.parametrize("h, w", [(64, 64), (96, 128)])
def test_output_shapes_other_sizes(net, h, w):
    a = 4 * sum(fh * fw for fh, fw in level_maps(h, w))
    anchors, cls_preds, bbox_preds = net(torch.zeros(1, 3, h, w))
    assert anchors.shape == (1, a, 4) and cls_preds.shape == (1, a, 2) and bbox_preds.shape == (1, 4 * a)
    assert {(64, 64): 344, (96, 128): 1020}[(h, w)] == a


def test_num_classes_three():
    anchors, cls_preds, bbox_preds = TinySSD(num_classes=3)(torch.zeros(2, 3, 64, 64))
    assert cls_preds.shape == (2, 344, 4) and bbox_preds.shape == (2, 344 * 4)


def test_custom_sizes_and_ratios_change_anchors_per_pixel():
    net = TinySSD(1, sizes=[[0.2, 0.3, 0.4]] * 5, ratios=[1, 2, 0.5, 3])
    assert net.num_anchors == [6] * 5
    anchors, cls_preds, _ = net(torch.zeros(1, 3, 64, 64))
    assert anchors.shape[1] == cls_preds.shape[1] == 6 * 86


def test_blocks_halve_and_base_net_channels():
    x = torch.zeros(2, 3, 64, 64)
    assert down_sample_blk(3, 10)(torch.zeros(2, 3, 20, 20)).shape == (2, 10, 10, 10)
    assert get_blk(0)(x).shape == (2, 64, 8, 8)
    assert isinstance(get_blk(4), nn.AdaptiveMaxPool2d)
    with pytest.raises(ValueError):
        get_blk(5)


def test_anchor_cache_returns_the_same_tensor_and_equals_multibox_prior_per_level(net):
    a1, _, _ = net(torch.zeros(1, 3, 256, 256))
    a2, _, _ = net(torch.rand(3, 3, 256, 256))
    assert a1 is a2
    expect = torch.cat([d2lssd.multibox_prior(torch.zeros(1, 1, fh, fw), s, r)
                        for (fh, fw), s, r in zip(level_maps(256, 256), TinySSD.SIZES, TinySSD.RATIOS)], dim=1)
    assert torch.equal(a1, expect)
    a3, _, _ = net(torch.zeros(1, 3, 64, 64))
    assert a3 is not a1 and a3.shape == (1, 344, 4)
    assert net(torch.zeros(1, 3, 64, 64))[0] is a3
    net.clear_anchor_cache()
    a4 = net(torch.zeros(1, 3, 64, 64))[0]
    assert a4 is not a3 and torch.equal(a4, a3)


def test_anchors_are_computed_once_per_input_size(monkeypatch):
    calls = []
    real = base_module.multibox_prior

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(base_module, "multibox_prior", counting)  # the anchors of every SSD model
    net = TinySSD(1)
    for _ in range(3):
        net(torch.zeros(1, 3, 64, 64))
    assert len(calls) == 5  # one per level, first call only
    net(torch.zeros(1, 3, 128, 64))
    assert len(calls) == 10


def test_head_predictions_sit_at_the_row_of_their_anchor():
    # Capture every head's raw output and check, index by index, that the
    # prediction for anchor k at pixel (i, j) of level l is at the row where
    # multibox_prior puts that anchor: offset_l + (i * w + j) * a + k.
    torch.manual_seed(1)
    q = 2
    net = TinySSD(num_classes=q).eval()
    raw = {}
    for l in range(5):
        getattr(net, f"cls_{l}").register_forward_hook(lambda m, i, o, l=l: raw.__setitem__(("cls", l), o))
        getattr(net, f"bbox_{l}").register_forward_hook(lambda m, i, o, l=l: raw.__setitem__(("bbox", l), o))
    X = torch.rand(2, 3, 128, 96)
    anchors, cls_preds, bbox_preds = net(X)
    bbox_preds = bbox_preds.reshape(2, -1, 4)
    offset = 0
    for l, (fh, fw) in enumerate(level_maps(128, 96)):
        a = net.num_anchors[l]
        c, b = raw[("cls", l)], raw[("bbox", l)]
        assert c.shape == (2, a * (q + 1), fh, fw) and b.shape == (2, a * 4, fh, fw)
        # The same layout derived another way: split channels first, then move them last.
        n = fh * fw * a
        by_split = c.reshape(2, a, q + 1, fh, fw).permute(0, 3, 4, 1, 2).reshape(2, n, q + 1)
        assert torch.equal(cls_preds[:, offset:offset + n], by_split)
        sizes, ratios = net.sizes[l], net.ratios[l]
        wh = [(s, ratios[0]) for s in sizes] + [(sizes[0], r) for r in ratios[1:]]
        for i in range(fh):
            for j in range(fw):
                for k in range(a):
                    row = offset + (i * fw + j) * a + k
                    assert torch.equal(cls_preds[:, row], c[:, k * (q + 1):(k + 1) * (q + 1), i, j])
                    assert torch.equal(bbox_preds[:, row], b[:, 4 * k:4 * k + 4, i, j])
                    # ... and the anchor at that row is anchor k of pixel (i, j).
                    x0, y0, x1, y1 = anchors[0, row].tolist()
                    assert (x0 + x1) / 2 == pytest.approx((j + 0.5) / fw, abs=1e-6)
                    assert (y0 + y1) / 2 == pytest.approx((i + 0.5) / fh, abs=1e-6)
                    s, r = wh[k]
                    assert y1 - y0 == pytest.approx(s / r ** 0.5, abs=1e-6)
                    assert x1 - x0 == pytest.approx(s * r ** 0.5 * fh / fw, abs=1e-6)
        offset += n
    assert offset == anchors.shape[1] == cls_preds.shape[1]


class D2LTinySSD(nn.Module):
    """d2l.ai §14.7.1.6's TinySSD, as printed in the book (reference)."""

    def __init__(self, d2l, num_classes):
        super().__init__()
        self.d2l = d2l
        self.num_classes = num_classes
        self.sizes, self.ratios = TinySSD.SIZES, TinySSD.RATIOS
        idx_to_in_channels = [64, 128, 128, 128, 128]
        for i in range(5):
            setattr(self, f"blk_{i}", get_blk(i))
            setattr(self, f"cls_{i}", nn.Conv2d(idx_to_in_channels[i], 4 * (num_classes + 1), 3, padding=1))
            setattr(self, f"bbox_{i}", nn.Conv2d(idx_to_in_channels[i], 16, 3, padding=1))

    def forward(self, X):
        anchors, cls_preds, bbox_preds = [None] * 5, [None] * 5, [None] * 5
        for i in range(5):
            X = getattr(self, f"blk_{i}")(X)
            anchors[i] = self.d2l.multibox_prior(X, sizes=self.sizes[i], ratios=self.ratios[i])
            cls_preds[i] = getattr(self, f"cls_{i}")(X)
            bbox_preds[i] = getattr(self, f"bbox_{i}")(X)
        anchors = torch.cat(anchors, dim=1)
        cls_preds = concat_preds(cls_preds)
        cls_preds = cls_preds.reshape(cls_preds.shape[0], -1, self.num_classes + 1)
        return anchors, cls_preds, concat_preds(bbox_preds)


def test_equals_d2l_tinyssd_with_the_same_weights(d2l):
    torch.manual_seed(2)
    ours = TinySSD(num_classes=2).eval()
    ref = D2LTinySSD(d2l, num_classes=2).eval()
    assert set(ours.state_dict()) == set(ref.state_dict())
    ref.load_state_dict(ours.state_dict())
    X = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        for a, b in zip(ours(X), ref(X)):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_flatten_pred_is_channels_last():
    p = torch.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2)
    assert flatten_pred(p)[0, :6].tolist() == [0.0, 4.0, 8.0, 1.0, 5.0, 9.0]
    with pytest.raises(ValueError):
        flatten_pred(torch.zeros(2, 3))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_classes"):
        TinySSD(0)
    with pytest.raises(ValueError, match="sizes"):
        TinySSD(1, sizes=[[0.2]] * 4)
    net = TinySSD(1)
    with pytest.raises(ValueError, match="too small"):
        net(torch.zeros(1, 3, 63, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match="num_classes"):
        TinySSD(True)


def _state_signature(net):
    """Number of state-dict entries and a digest of their names, shapes and dtypes."""
    import hashlib

    lines = [f"{k} {tuple(v.shape)} {v.dtype}" for k, v in net.state_dict().items()]
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def test_state_dict_names_and_shapes_are_those_of_recorded_checkpoints():
    # Digests taken before the models shared d2lssd.models.base.SSDBase: checkpoints saved
    # then (the chapters' cache, recorded runs) still load with strict=True.
    assert _state_signature(TinySSD(num_classes=1)) == (104, "34e04f125da442b4")
    assert _state_signature(TinySSD(num_classes=3)) == (104, "1918499518d5e4fb")


def test_a_new_model_needs_only_its_feature_maps():
    class TwoLevels(base_module.SSDBase):
        NUM_LEVELS, MIN_SIZE = 2, 8
        SIZES, RATIOS = [[0.3], [0.6, 0.8]], [1.0, 2.0]  # ratios: one flat list for both levels

        def __init__(self, num_classes):
            super().__init__(num_classes)
            self.down = nn.Conv2d(3, 4, 3, stride=2, padding=1)
            self.cls, self.bbox = self.make_heads([3, 4])

        def feature_maps(self, X):
            return [X, self.down(X)]

        def heads(self):
            return self.cls, self.bbox

    net = TwoLevels(2)
    assert net.num_anchors == [2, 3] and isinstance(TinySSD(1), base_module.SSDBase)
    anchors, cls_preds, bbox_preds = net(torch.zeros(1, 3, 8, 8))
    expect = torch.cat([d2lssd.multibox_prior(torch.zeros(1, 1, 8, 8), [0.3], [1.0, 2.0]),
                        d2lssd.multibox_prior(torch.zeros(1, 1, 4, 4), [0.6, 0.8], [1.0, 2.0])], dim=1)
    assert torch.equal(anchors, expect) and net.feature_map_sizes == [(8, 8), (4, 4)]
    assert cls_preds.shape == (1, 2 * 64 + 3 * 16, 3) and bbox_preds.shape == (1, 4 * (2 * 64 + 3 * 16))
    with pytest.raises(ValueError, match="too small for TwoLevels: H and W must be >= 8"):
        net(torch.zeros(1, 3, 7, 8))
