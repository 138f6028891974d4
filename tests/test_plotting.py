"""Drawing helpers: the rectangles land at the right pixels, the anchors on the right pixel."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import d2lssd  # noqa: E402
from d2lssd.plotting import (bbox_to_rect, plot_iou_matrix, set_figsize,  # noqa: E402
                             show_anchors_of_pixel, show_bboxes, show_image)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def rects_of(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


@pytest.mark.parametrize("bbox", [[60.0, 45.0, 378.0, 516.0],
                                  torch.tensor([60.0, 45.0, 378.0, 516.0]),
                                  np.array([60, 45, 378, 516]), (60, 45, 378, 516)])
def test_bbox_to_rect_geometry(bbox):
    # d2l's dog box in the cat-and-dog photo
    rect = bbox_to_rect(bbox, "blue")
    assert rect.get_xy() == (60.0, 45.0)
    assert rect.get_width() == 318.0 and rect.get_height() == 471.0
    assert rect.get_fill() is False and rect.get_linewidth() == 2
    assert rect.get_edgecolor() == to_rgba("blue")


@pytest.mark.parametrize("bad", [[1.0, 2.0, 3.0], [[0.0, 0.0, 1.0, 1.0]],
                                 [0.0, float("nan"), 1.0, 1.0],
                                 "abcd"])
def test_bbox_to_rect_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        bbox_to_rect(bad, "r")


def test_show_bboxes_adds_one_rectangle_per_box(ax):
    show_image(np.zeros((100, 200, 3), dtype=np.uint8), ax=ax)
    boxes = torch.tensor([[10.0, 20.0, 50.0, 60.0], [0.0, 0.0, 200.0, 100.0], [5.5, 6.5, 7.5, 9.5],
                          [1.0, 2.0, 3.0, 4.0], [30.0, 30.0, 90.0, 80.0], [0.0, 0.0, 1.0, 1.0]])
    assert show_bboxes(ax, boxes, labels=["a", "b", "c"]) is None  # as d2l's: nothing to print
    rects = rects_of(ax)
    assert len(rects) == 6
    for rect, (x1, y1, x2, y2) in zip(rects, boxes.tolist()):
        assert rect.get_xy() == pytest.approx((x1, y1))
        assert rect.get_width() == pytest.approx(x2 - x1)
        assert rect.get_height() == pytest.approx(y2 - y1)
        # the rectangle's corners in display space are the box corners mapped by the data transform
        corners = rect.get_patch_transform().transform([(0, 0), (1, 1)])
        np.testing.assert_allclose(corners, [(x1, y1), (x2, y2)])
    # colours cycle b, g, r, m, c, b
    assert [r.get_edgecolor() for r in rects] == [to_rgba(c) for c in "bgrmcb"]
    # a shorter label list labels only the first boxes, at their top-left corners
    texts = ax.texts
    assert [t.get_text() for t in texts] == ["a", "b", "c"]
    assert [t.get_position() for t in texts] == [(10.0, 20.0), (0.0, 0.0), (5.5, 6.5)]


def test_show_bboxes_single_label_and_colour_and_empty(ax):
    show_bboxes(ax, [[1, 2, 3, 4], [5, 6, 7, 8]], labels="dog", colors="w")
    rects = rects_of(ax)
    assert [r.get_edgecolor() for r in rects] == [to_rgba("w")] * 2
    assert [t.get_text() for t in ax.texts] == ["dog"]
    assert ax.texts[0].get_color() == "k"  # black text on a white label box
    show_bboxes(ax, torch.zeros(0, 4))
    assert len(rects_of(ax)) == 2


def test_show_bboxes_and_bbox_to_rect_take_tensors_that_require_grad(ax):
    # d2l's SSD section draws network outputs as they are: a list of (4,) tensors
    # that require grad, scaled to pixels (d2l detaches them in d2l.numpy).
    w = torch.tensor([10.0, 20.0, 50.0, 60.0], requires_grad=True)
    row = w * 2
    show_bboxes(ax, [row, row + 1], "0.90", "w")
    show_bboxes(ax, torch.stack((row, row)))
    assert [r.get_xy() for r in rects_of(ax)] == [(20.0, 40.0), (21.0, 41.0), (20.0, 40.0), (20.0, 40.0)]
    assert [r.get_width() for r in rects_of(ax)] == [80.0] * 4
    assert [t.get_text() for t in ax.texts] == ["0.90"]
    rect = bbox_to_rect(row, "b")
    assert (rect.get_xy(), rect.get_width(), rect.get_height()) == ((20.0, 40.0), 80.0, 80.0)
    rect = bbox_to_rect(list(row), "b")  # four 0-d tensors that require grad
    assert (rect.get_xy(), rect.get_width(), rect.get_height()) == ((20.0, 40.0), 80.0, 80.0)
    assert row.requires_grad  # drawing did not change the caller's tensor


@pytest.mark.parametrize("bad", [torch.zeros(3, 5), torch.zeros(4), [[0, 0, 1, float("nan")]]])
def test_show_bboxes_rejects_bad_shapes(ax, bad):
    with pytest.raises(ValueError):
        show_bboxes(ax, bad)


@pytest.mark.parametrize("image", [
    np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8),
    torch.rand(3, 30, 40),            # CHW tensor
    torch.rand(30, 40, 3),            # HWC tensor
    torch.rand(1, 30, 40),            # one-channel CHW -> grey
    np.zeros((30, 40)),
])
def test_show_image_layouts(ax, image):
    assert show_image(image, ax=ax, title="t") is ax
    (im,) = ax.images
    assert im.get_array().shape[:2] == (30, 40)
    assert tuple(im.get_extent()) == (0, 40, 30, 0)  # pixel corners: box (0, 0, W, H) = image
    assert ax.get_title() == "t"


def test_show_image_chw_tensor_is_permuted(ax):
    t = torch.zeros(3, 5, 7)
    t[0] = 1.0  # red
    show_image(t, ax=ax)
    arr = np.asarray(ax.images[0].get_array())
    assert arr.shape == (5, 7, 3) and (arr[..., 0] == 1).all() and (arr[..., 1:] == 0).all()


def test_show_image_creates_axes_and_rejects_bad_shapes():
    ax = show_image(np.zeros((4, 5, 3), dtype=np.uint8))
    assert len(ax.images) == 1
    plt.close(ax.figure)
    for bad in (np.zeros((2, 3, 4, 5)), np.zeros((4, 5, 2)), np.zeros((0, 5, 3)),
                np.array([["a"]])):
        with pytest.raises(ValueError):
            show_image(bad)


@pytest.mark.parametrize("sizes, ratios", [([0.75, 0.5, 0.25], [1, 2, 0.5]), ([0.4], [1]),
                                           ([0.2, 0.3], [1, 3, 1 / 3, 0.5])])
@pytest.mark.parametrize("i, j", [(0, 0), (2, 3), (1, 2)])
def test_show_anchors_of_pixel_centres_and_count(ax, sizes, ratios, i, j):
    H, W = 60, 90                      # image
    h, w = 3, 4                        # feature map
    image = np.zeros((H, W, 3), dtype=np.uint8)
    anchors = d2lssd.multibox_prior(torch.zeros(1, 8, h, w), sizes, ratios)
    boxes = show_anchors_of_pixel(ax, image, anchors, h, w, i, j)
    a = len(sizes) + len(ratios) - 1
    assert boxes.shape == (a, 4) and boxes.dtype == torch.float32
    assert len(rects_of(ax)) == a
    centres = d2lssd.box_corner_to_center(boxes)[:, :2]
    expected = torch.tensor([(j + 0.5) / w * W, (i + 0.5) / h * H]).expand(a, 2)
    torch.testing.assert_close(centres, expected, rtol=0, atol=1e-4)
    # d2l's recipe: reshape (h, w, a, 4), index the pixel, scale by (W, H, W, H)
    scale = torch.tensor([W, H, W, H], dtype=torch.float32)
    torch.testing.assert_close(boxes, anchors.reshape(h, w, a, 4)[i, j] * scale)
    # heights are size * H for ratio 1 (sizes are fractions of the height)
    height = torch.tensor(sizes[0] / ratios[0] ** 0.5 * H)
    torch.testing.assert_close(boxes[0, 3] - boxes[0, 1], height,
                               rtol=1e-5, atol=1e-4)


def test_show_anchors_of_pixel_labels_and_errors(ax):
    image = torch.rand(3, 20, 20)
    anchors = d2lssd.multibox_prior(torch.zeros(1, 1, 2, 2), [0.5, 0.25], [1, 2])  # 3 per pixel
    show_anchors_of_pixel(ax, image, anchors[0], 2, 2, 1, 1, labels=["x", "y", "z"])
    assert [t.get_text() for t in ax.texts] == ["x", "y", "z"]
    with pytest.raises(ValueError, match="outside"):
        show_anchors_of_pixel(ax, image, anchors, 2, 2, 2, 0)
    with pytest.raises(ValueError, match="multiple"):
        show_anchors_of_pixel(ax, image, anchors, 3, 3, 0, 0)
    with pytest.raises(ValueError):
        show_anchors_of_pixel(ax, image, anchors[..., :3], 2, 2, 0, 0)
    with pytest.raises(ValueError):
        show_anchors_of_pixel(ax, image, torch.full_like(anchors, float("nan")), 2, 2, 0, 0)


def test_plot_iou_matrix_writes_every_value(ax):
    anchors = torch.tensor([[0.0, 0.1, 0.2, 0.3], [0.15, 0.2, 0.4, 0.4], [0.63, 0.05, 0.88, 0.98],
                            [0.66, 0.45, 0.8, 0.8], [0.57, 0.3, 0.92, 0.9]])
    gt = torch.tensor([[0.1, 0.08, 0.52, 0.92], [0.55, 0.2, 0.9, 0.88]])
    iou = d2lssd.box_iou(anchors, gt)
    im = plot_iou_matrix(ax, iou, [f"A{k}" for k in range(5)], ["dog", "cat"])
    np.testing.assert_allclose(np.asarray(im.get_array()), iou.numpy(), rtol=1e-6)
    assert im.get_clim() == (0.0, 1.0)
    texts = {t.get_position(): t.get_text() for t in ax.texts}
    assert len(texts) == 10
    for r in range(5):
        for c in range(2):
            assert texts[(c, r)] == f"{float(iou[r, c]):.2f}"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dog", "cat"]


def test_plot_iou_matrix_rejects_bad_input(ax):
    with pytest.raises(ValueError):
        plot_iou_matrix(ax, torch.zeros(3), None, None)
    with pytest.raises(ValueError):
        plot_iou_matrix(ax, torch.zeros(2, 2), ["a"], ["b", "c"])
    with pytest.raises(ValueError):
        plot_iou_matrix(ax, torch.tensor([[float("nan")]]), None, None)


def test_set_figsize():
    old = plt.rcParams["figure.figsize"]
    try:
        set_figsize((5, 2.5))
        assert tuple(plt.rcParams["figure.figsize"]) == (5.0, 2.5)
        with pytest.raises(ValueError):
            set_figsize((0, 1))
    finally:
        plt.rcParams["figure.figsize"] = old


def test_plotting_is_not_imported_by_the_core():
    import ast
    import pathlib

    pkg = pathlib.Path(d2lssd.__file__).parent
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(pkg)
        if rel.as_posix() == "plotting.py" or rel.parts[0] == "widgets":
            continue  # d2lssd/__init__.py is checked too: it loads them lazily, with no import statement
        tree = ast.parse(path.read_text())
        froms = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        names = {n.module or "" for n in froms}
        names |= {f"{n.module or ''}.{a.name}" for n in froms for a in n.names}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not any(m.rsplit(".", 1)[-1] in ("plotting", "widgets") for m in names), path
