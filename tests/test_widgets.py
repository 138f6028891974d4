"""Widget callbacks, tested without a browser; explorers rebuilt by setting slider values."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision.ops  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import d2lssd  # noqa: E402
from d2lssd.widgets import (STATIC_ENV, StaticExplorer, anchor_explorer,  # noqa: E402
                            detections_like_boxes, draw_anchors, draw_iou, draw_nms, iou_explorer,
                            nms_explorer, static_explorer)

IMAGE = np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8)  # H=60, W=90


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


@pytest.fixture(autouse=True)
def close_all():
    yield
    plt.close("all")


def solid_and_dashed(ax):
    rects = [p for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()]
    solid = [r for r in rects if r.get_linestyle() in ("-", "solid")]
    dashed = [r for r in rects if r.get_linestyle() in ("--", "dashed")]
    return solid, dashed


# ---------------------------------------------------------------- anchors

def test_draw_anchors_default_pixel_and_count(ax):
    boxes = draw_anchors(ax, IMAGE, 4, 0.5, 1.0, extra_sizes=(0.25, 0.1), extra_ratios=(2, 0.5))
    assert boxes.shape == (3 + 3 - 1, 4)
    centres = d2lssd.box_corner_to_center(boxes)
    # default pixel: the centre one, (2, 2) of a 4x4 map
    torch.testing.assert_close(centres[:, 0], torch.full((5,), 2.5 / 4 * 90), rtol=0, atol=1e-4)
    torch.testing.assert_close(centres[:, 1], torch.full((5,), 2.5 / 4 * 60), rtol=0, atol=1e-4)
    # size 0.5, ratio 1: half the image height and width (d2l sizes are fractions of the height,
    # and a 4x4 map on a 90x60 image stretches it with the image)
    torch.testing.assert_close(centres[0, 2:], torch.tensor([45.0, 30.0]), rtol=1e-5, atol=1e-4)
    assert [t.get_text() for t in ax.texts][:2] == ["s=0.5, r=1", "s=0.25, r=1"]
    assert ax.get_xlim() == (0, 90) and ax.get_ylim() == (60, 0)


def test_draw_anchors_pixel_and_errors(ax):
    boxes = draw_anchors(ax, IMAGE, (3, 5), 0.3, 2.0, i=0, j=4)
    c = d2lssd.box_corner_to_center(boxes)[0]
    torch.testing.assert_close(c[:2], torch.tensor([4.5 / 5 * 90, 0.5 / 3 * 60]), rtol=0, atol=1e-4)
    with pytest.raises(ValueError):
        draw_anchors(ax, IMAGE, 4, -0.1, 1.0)
    with pytest.raises(ValueError):
        draw_anchors(ax, IMAGE, 4, 0.5, 1.0, i=4, j=0)
    with pytest.raises(ValueError):
        draw_anchors(ax, IMAGE, 0, 0.5, 1.0)


def test_anchor_explorer_reruns_on_slider_change():
    w = anchor_explorer(IMAGE, fmap_size=4)
    assert isinstance(w, ipywidgets.VBox)
    size, ratio, i, j, out = w.children
    assert isinstance(out, ipywidgets.Image) and bytes(out.value).startswith(b"\x89PNG")
    assert (size.min, size.max) == (0.05, 1.0) and isinstance(ratio, ipywidgets.FloatLogSlider)
    assert ratio.min == -2 and ratio.max == 2 and ratio.base == 2  # 0.25 to 4
    assert (i.max, j.max) == (3, 3)
    first = w.result
    assert first.shape == (1, 4)
    size.value = 0.3
    torch.testing.assert_close(w.result[0, 3] - w.result[0, 1], torch.tensor(0.3 * 60),
                               rtol=1e-5, atol=1e-4)
    ratio.value = 4.0  # twice as wide, half as high as ratio 1
    torch.testing.assert_close(w.result[0, 2] - w.result[0, 0], torch.tensor(0.3 * 2 * 90),
                               rtol=1e-5, atol=1e-4)
    i.value, j.value = 0, 1
    c = d2lssd.box_corner_to_center(w.result)[0, :2]
    torch.testing.assert_close(c, torch.tensor([1.5 / 4 * 90, 0.5 / 4 * 60]), rtol=0, atol=1e-4)
    assert plt.get_fignums() == []  # drawn off-screen: no pyplot figure left open


# ---------------------------------------------------------------- IoU

PAIRS = [
    ([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]),          # 1/7
    ([10.0, 20.0, 50.0, 60.0], [10.0, 20.0, 50.0, 60.0]),   # identical: 1
    ([0.0, 0.0, 10.0, 10.0], [2.0, 3.0, 5.0, 9.0]),         # nested
    ([100.0, 30.0, 300.0, 200.0], [150.0, 0.0, 250.0, 400.0]),
    ([0.1, 0.08, 0.52, 0.92], [0.55, 0.2, 0.9, 0.88]),      # d2l's dog and cat (disjoint)
]


@pytest.mark.parametrize("box1, box2", PAIRS)
def test_draw_iou_matches_torchvision(ax, box1, box2):
    iou = draw_iou(ax, box1, box2)
    ref = torchvision.ops.box_iou(torch.tensor([box1], dtype=torch.float64),
                                  torch.tensor([box2], dtype=torch.float64))[0, 0].item()
    assert isinstance(iou, float) and iou == pytest.approx(ref, abs=1e-12)
    assert ax.get_title() == f"IoU = {iou:.3f}"
    assert draw_iou(ax, torch.tensor(box2), torch.tensor(box1)) == pytest.approx(iou)  # symmetric


def test_draw_iou_disjoint_and_touching_are_zero(ax):
    assert draw_iou(ax, [0, 0, 1, 1], [2, 2, 3, 3]) == 0.0
    assert draw_iou(ax, [0, 0, 1, 1], [1, 0, 2, 1]) == 0.0  # shared edge
    filled = [p for p in ax.patches if p.get_fill()]
    assert filled == []  # no intersection to shade


def test_draw_iou_shades_the_intersection(ax):
    draw_iou(ax, [0, 0, 4, 4], [2, 1, 6, 3])
    (inter,) = [p for p in ax.patches if p.get_fill()]
    assert inter.get_xy() == (2.0, 1.0) and inter.get_width() == 2.0 and inter.get_height() == 2.0
    assert ax.yaxis_inverted()  # image convention, y down


@pytest.mark.parametrize("bad", [[0, 0, 1], [1, 1, 0, 0], [0, float("nan"), 1, 1]])
def test_draw_iou_rejects_bad_boxes(ax, bad):
    with pytest.raises(ValueError):
        draw_iou(ax, [0, 0, 1, 1], bad)


def test_iou_explorer_reruns_on_slider_change():
    w = iou_explorer()
    dx, dy, scale, out = w.children
    assert isinstance(out, ipywidgets.Image)
    a = torch.tensor([[30.0, 30.0, 70.0, 70.0]], dtype=torch.float64)

    def expected():
        cx, cy, s = 50 + dx.value, 50 + dy.value, 40 * scale.value
        b = torch.tensor([[cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2]], dtype=torch.float64)
        return torchvision.ops.box_iou(a, b)[0, 0].item()

    assert w.result == pytest.approx(expected())
    dx.value, dy.value = 0.0, 0.0
    assert w.result == pytest.approx(1.0)
    scale.value = 0.5
    assert w.result == pytest.approx(0.25)  # nested box with a quarter of the area
    dx.value = 60.0
    assert w.result == 0.0
    assert plt.get_fignums() == []


# ---------------------------------------------------------------- NMS

GT = torch.tensor([[20.0, 10.0, 60.0, 50.0], [50.0, 20.0, 85.0, 58.0], [2.0, 30.0, 20.0, 55.0]])


def test_detections_like_boxes_is_deterministic_and_well_formed():
    boxes, scores, obj = detections_like_boxes(GT, n_per_object=7, seed=3, jitter=0.1)
    assert boxes.shape == (21, 4) and boxes.dtype == torch.float32
    assert scores.shape == (21,) and scores.dtype == torch.float32
    assert obj.tolist() == [0] * 7 + [1] * 7 + [2] * 7 and obj.dtype == torch.int64
    assert ((scores > 0) & (scores < 1)).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    # a box is drawn around its own object: it overlaps it more than any other one
    iou = d2lssd.box_iou(boxes, GT)
    assert (iou.argmax(dim=1) == obj).all() and (iou[torch.arange(21), obj] > 0.5).all()
    again = detections_like_boxes(GT, n_per_object=7, seed=3, jitter=0.1)
    for x, y in zip((boxes, scores, obj), again):
        assert torch.equal(x, y)
    other = detections_like_boxes(GT, n_per_object=7, seed=4, jitter=0.1)
    assert not torch.equal(boxes, other[0])


def test_detections_like_boxes_zero_jitter_and_clipping():
    boxes, scores, _ = detections_like_boxes(GT.tolist(), n_per_object=2, seed=0, jitter=0.0)
    torch.testing.assert_close(boxes, GT.repeat_interleave(2, dim=0))
    boxes, _, _ = detections_like_boxes(GT, 50, seed=1, jitter=0.5, image_size=(90, 60))
    assert (boxes >= 0).all() and (boxes[:, 0::2] <= 90).all() and (boxes[:, 1::2] <= 60).all()


@pytest.mark.parametrize("kwargs", [dict(gt_pixels=torch.zeros(2, 3)),
                                    dict(gt_pixels=torch.tensor([[0.0, 0.0, 0.0, 5.0]])),
                                    dict(n_per_object=0), dict(jitter=-0.1),
                                    dict(jitter=float("nan"))])
def test_detections_like_boxes_rejects_bad_input(kwargs):
    args = dict(gt_pixels=GT, n_per_object=3, seed=0, jitter=0.1) | kwargs
    with pytest.raises(ValueError):
        detections_like_boxes(**args)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_draw_nms_keeps_torchvision_indices(ax, threshold):
    boxes, scores, _ = detections_like_boxes(GT, n_per_object=8, seed=0, jitter=0.15)
    keep = draw_nms(ax, IMAGE, boxes, scores, threshold)
    ref = torchvision.ops.nms(boxes, scores, threshold)
    assert torch.equal(keep, ref)
    solid, dashed = solid_and_dashed(ax)
    assert len(solid) == len(ref) and len(dashed) == len(boxes) - len(ref)
    # kept boxes are drawn where they are, labelled with their score
    for rect, k in zip(solid, ref.tolist()):
        assert rect.get_xy() == pytest.approx(tuple(boxes[k, :2].tolist()))
    assert [t.get_text() for t in ax.texts] == [f"{float(scores[k]):.2f}" for k in ref]
    assert ax.get_title().endswith(f"kept {len(ref)} of {len(boxes)}")


def test_draw_nms_d2l_example(ax):
    # d2l.ai §14.4.4: dog boxes 0-2 and a cat box 3; at 0.5 boxes 0 and 3 survive.
    boxes = torch.tensor([[0.1, 0.08, 0.52, 0.92], [0.08, 0.2, 0.56, 0.95],
                          [0.15, 0.3, 0.62, 0.91], [0.55, 0.2, 0.9, 0.88]]) * torch.tensor(
        [90.0, 60.0, 90.0, 60.0])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.9])
    keep = draw_nms(ax, None, boxes, scores, 0.5, labels=["dog", "dog", "dog", "cat"])
    assert keep.tolist() == [0, 3]
    assert [t.get_text() for t in ax.texts] == ["dog=0.90", "cat=0.90"]
    with pytest.raises(ValueError):
        draw_nms(ax, None, boxes, scores, 0.5, labels=["dog"])
    with pytest.raises(ValueError):
        draw_nms(ax, None, boxes, scores, 1.5)


def test_nms_explorer_reruns_on_slider_change():
    boxes, scores, _ = detections_like_boxes(GT, n_per_object=8, seed=0, jitter=0.15)
    w = nms_explorer(IMAGE, boxes, scores)
    threshold, out = w.children
    assert isinstance(out, ipywidgets.Image) and (threshold.min, threshold.max) == (0.0, 1.0)
    assert torch.equal(w.result, torchvision.ops.nms(boxes, scores, 0.5))
    for t in (0.0, 0.2, 0.9, 1.0):
        threshold.value = t
        assert torch.equal(w.result, torchvision.ops.nms(boxes, scores, t))
    assert len(w.result) == len(boxes)  # threshold 1 suppresses nothing (no duplicate boxes)
    assert plt.get_fignums() == []


def test_image_updates_when_a_slider_moves():
    w = nms_explorer(None, GT, torch.tensor([0.9, 0.8, 0.7]))
    threshold, image = w.children
    before = image.value
    threshold.value = 0.0
    assert bytes(image.value) != bytes(before) and bytes(image.value).startswith(b"\x89PNG")


# ---------------------------------------------------------------- static explorers

def _frame_bytes(uri):
    import base64

    head, data = uri.split(",", 1)
    assert head in ("data:image/png;base64", "data:image/jpeg;base64")
    return base64.b64decode(data)


def test_static_explorer_grid_order_html_and_results():
    calls = []

    def draw(ax, a, b):
        calls.append((a, b))
        ax.plot([0, 1], [a, b])
        return a * 10 + b

    e = static_explorer(draw, (2, 2), {"a": [1, 2], "b": [0, 5, 7]}, initial={"b": 6},
                        labels={"a": "alpha"}, title="demo")
    assert isinstance(e, StaticExplorer)
    assert calls == [(1, 0), (1, 5), (1, 7), (2, 0), (2, 5), (2, 7)]  # last control fastest
    assert e.results == [10, 15, 17, 20, 25, 27]
    assert e.combos[e.initial] == {"a": 1, "b": 5}  # middle of [1, 2] is 1; 6 -> nearest 5
    assert len(set(e.frames)) == 6 and all(_frame_bytes(f).startswith(b"\x89PNG") for f in e.frames)
    html = e._repr_html_()
    assert html.count('type="range"') == 2 and 'class="d2lssd-explorer"' in html
    assert "alpha" in html and "demo" in html and e.frames[e.initial] in html
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    assert plt.get_fignums() == []


@pytest.mark.parametrize("kwargs, match", [
    (dict(controls={}), "at least one control"),
    (dict(controls={"a": []}), "no values"),
    (dict(controls={"a": list(range(30)), "b": list(range(30))}), "max_frames"),
    (dict(controls={"a": [1]}, initial={"z": 1}), "unknown controls"),
    (dict(controls={"a": [1]}, fmt="gif"), "fmt"),
])
def test_static_explorer_rejects_bad_grids(kwargs, match):
    with pytest.raises(ValueError, match=match):
        static_explorer(lambda ax, **v: None, (2, 2), **kwargs)


def test_static_versions_of_the_explorers(monkeypatch):
    boxes, scores, _ = detections_like_boxes(GT, n_per_object=4, seed=0, jitter=0.15)
    e = nms_explorer(IMAGE, boxes, scores, static=True)
    assert e.names == ["iou_threshold"] and len(e.frames) == 21
    for combo, keep in zip(e.combos, e.results):
        assert torch.equal(keep, torchvision.ops.nms(boxes, scores, combo["iou_threshold"]))
    assert e.combos[e.initial] == {"iou_threshold": 0.5}
    assert _frame_bytes(e.frames[0])[:2] == b"\xff\xd8"  # a JPEG: there is a photo under the boxes
    # the environment variable the book build sets picks the static version
    monkeypatch.setenv(STATIC_ENV, "1")
    assert isinstance(nms_explorer(None, boxes, scores), StaticExplorer)
    assert isinstance(nms_explorer(None, boxes, scores, static=False), ipywidgets.VBox)
    monkeypatch.delenv(STATIC_ENV)
    assert isinstance(nms_explorer(None, boxes, scores), ipywidgets.VBox)


def test_static_iou_and_anchor_explorers_cover_their_grids():
    e = iou_explorer(static=True)
    assert e.names == ["dx", "dy", "scale"] and len(e.frames) == 9 * 9 * 4
    start = e.combos[e.initial]
    assert (start["dx"], start["dy"], start["scale"]) == (10.0, 10.0, 1.0)
    assert e.results[e.initial] == pytest.approx(900 / 2300)  # 30x30 overlap of two 40x40 boxes
    a = anchor_explorer(IMAGE, fmap_size=(2, 3), static=True)
    assert a.names == ["size", "ratio", "i", "j"] and len(a.frames) == 3 * 3 * 2 * 3
    assert all(r.shape == (1, 4) for r in a.results)


def test_draw_nms_without_text(ax):
    boxes, scores, _ = detections_like_boxes(GT, n_per_object=5, seed=0, jitter=0.15)
    keep = draw_nms(ax, IMAGE, boxes, scores, 0.7, show_scores=False)
    assert len(ax.texts) == 0 and len(solid_and_dashed(ax)[0]) == len(keep)
