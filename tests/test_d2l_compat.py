"""d2l's chapter code with ``d2lssd.`` in front: the promise of the README and the notation page.

Each test makes the calls that d2l.ai's object-detection chapters make (d2l
1.0.3, PyTorch: §14.3 bounding boxes, §14.4 anchor boxes, §14.5 multiscale
detection, §14.6 the banana data set, §14.7 SSD) the way the chapters make them:
integer tensors built from Python ints, network outputs that require grad,
lists of tensors, default arguments and d2l's positional argument order. The
results are compared with the ``d2l`` package where it defines the function
(the functions its chapters mark ``#@save``), and otherwise with the chapter's formula or its
printed shapes, written out here. Where ``d2lssd`` differs on purpose (the
notation page's list of differences), the test checks the documented relation
instead of equality.

The calls are written from the chapters' documented usage, not copied from
them; the chapter's small examples (two ground truths and five anchors, four
anchors for NMS) are its data, reused so that the values can be checked.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import d2lssd  # noqa: E402
from d2lssd import models  # noqa: E402
from d2lssd.data import bananas as B  # noqa: E402
from d2lssd.data import download as dl  # noqa: E402


@pytest.fixture(scope="module")
def d2l():
    """d2l 1.0.3's PyTorch functions; the tests that compare with it are skipped without it."""
    return pytest.importorskip("d2l.torch")


@pytest.fixture
def axes():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


# The chapter's examples (§14.3, §14.4.3, §14.4.4): its data, in normalized coordinates.
DOG_BBOX, CAT_BBOX = [60.0, 45.0, 378.0, 516.0], [400.0, 112.0, 655.0, 493.0]
GROUND_TRUTH = torch.tensor([[0, 0.1, 0.08, 0.52, 0.92], [1, 0.55, 0.2, 0.9, 0.88]])
ANCHORS5 = torch.tensor([[0, 0.1, 0.2, 0.3], [0.15, 0.2, 0.4, 0.4], [0.63, 0.05, 0.88, 0.98],
                         [0.66, 0.45, 0.8, 0.8], [0.57, 0.3, 0.92, 0.9]])
NMS_ANCHORS = torch.tensor([[0.1, 0.08, 0.52, 0.92], [0.08, 0.2, 0.56, 0.95],
                            [0.15, 0.3, 0.62, 0.91], [0.55, 0.2, 0.9, 0.88]])
W, H = 728, 561  # the catdog image
BBOX_SCALE = torch.tensor((W, H, W, H))  # built from Python ints: int64, as in the chapter


def drawn(ax):
    """What ``show_bboxes`` put on ``ax``: rectangles and labels, in comparable form."""
    rects = [(r.get_xy(), r.get_width(), r.get_height(), r.get_edgecolor(), r.get_linewidth(), r.get_fill())
             for r in ax.patches if isinstance(r, Rectangle)]
    texts = [(t.get_text(), tuple(map(float, t.get_position())), t.get_color(),
              t.get_bbox_patch().get_facecolor()) for t in ax.texts]
    return rects, texts


def close_rects(a, b):
    assert len(a) == len(b)
    for (xy1, w1, h1, *rest1), (xy2, w2, h2, *rest2) in zip(a, b):
        np.testing.assert_allclose([*xy1, w1, h1], [*xy2, w2, h2], rtol=1e-6, atol=1e-4)
        assert rest1 == rest2


def show_both(d2l, call):
    """Run ``call(show_bboxes, ax)`` with d2lssd's and d2l's ``show_bboxes``; compare the drawings.

    Rectangles must be identical; labels have the same text, colours and anchor
    point (the rectangle's top-left corner); only their alignment differs (we
    draw them inside the box, d2l centres them on the corner: documented).
    """
    fig, (ours, theirs) = plt.subplots(1, 2)
    try:
        assert call(d2lssd.show_bboxes, ours) is None  # d2l returns None too: a cell prints nothing
        call(d2l.show_bboxes, theirs)
        (r1, t1), (r2, t2) = drawn(ours), drawn(theirs)
        close_rects(r1, r2)
        assert [t[0] for t in t1] == [t[0] for t in t2]
        for a, b in zip(t1, t2):
            np.testing.assert_allclose(a[1], b[1], rtol=1e-6, atol=1e-4)
            assert a[2:] == b[2:]
        assert [(t.get_va(), t.get_ha()) for t in ours.texts] == [("top", "left")] * len(t1)
        return r1, t1
    finally:
        plt.close(fig)


# --- §14.3 bounding boxes ---------------------------------------------------------------

def test_bbox_section_conversions_round_trip_and_equal_d2ls(d2l):
    boxes = torch.tensor((DOG_BBOX, CAT_BBOX))
    assert (d2lssd.box_center_to_corner(d2lssd.box_corner_to_center(boxes)) == boxes).all()
    torch.testing.assert_close(d2lssd.box_corner_to_center(boxes), d2l.box_corner_to_center(boxes))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8])
def test_integer_boxes_convert_like_d2l(d2l, dtype):
    # Pixel boxes typed as integers: d2l's arithmetic ((x1 + x2) / 2, cx - 0.5 * w) gives floats.
    corner = torch.tensor([[60, 45, 178, 216], [100, 112, 255, 193]], dtype=dtype)
    center = torch.tensor([[119, 130, 118, 171], [177, 152, 155, 81]], dtype=dtype)
    for ours, theirs, x in ((d2lssd.box_corner_to_center, d2l.box_corner_to_center, corner),
                            (d2lssd.box_center_to_corner, d2l.box_center_to_corner, center)):
        # (x.long() for d2l: its uint8 sums wrap around at 256; we promote before adding)
        got, want = ours(x), theirs(x.long())
        assert got.dtype == torch.get_default_dtype() == want.dtype
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    # the values are those of the float boxes
    torch.testing.assert_close(d2lssd.box_corner_to_center(corner), d2lssd.box_corner_to_center(corner.float()))


def test_bbox_to_rect_like_d2l(d2l):
    for bbox in (DOG_BBOX, torch.tensor(CAT_BBOX)):
        ours, theirs = d2lssd.bbox_to_rect(bbox, "blue"), d2l.bbox_to_rect(bbox, "blue")
        geometry = [*ours.get_xy(), ours.get_width(), ours.get_height()]
        assert geometry == [float(v) for v in (*theirs.get_xy(), theirs.get_width(), theirs.get_height())]
        assert geometry == [bbox[0], bbox[1], bbox[2] - bbox[0], bbox[3] - bbox[1]]
        assert ours.get_edgecolor() == theirs.get_edgecolor() == to_rgba("blue")
        assert (ours.get_fill(), ours.get_linewidth()) == (theirs.get_fill(), theirs.get_linewidth()) == (False, 2)


# --- §14.4 anchor boxes -----------------------------------------------------------------

def test_multibox_prior_as_the_anchor_section_calls_it(d2l):
    h, w = 56, 73  # a rectangular image (the chapter's is 561 x 728), smaller for speed
    X = torch.rand(size=(1, 3, h, w))
    Y = d2lssd.multibox_prior(X, sizes=[0.75, 0.5, 0.25], ratios=[1, 2, 0.5])
    assert Y.shape == (1, h * w * 5, 4)
    torch.testing.assert_close(Y, d2l.multibox_prior(X, sizes=[0.75, 0.5, 0.25], ratios=[1, 2, 0.5]))
    boxes = Y.reshape(h, w, 5, 4)
    torch.testing.assert_close(boxes[25, 25, 0, :], d2l.multibox_prior(X, [0.75, 0.5, 0.25], [1, 2, 0.5])
                               .reshape(h, w, 5, 4)[25, 25, 0, :])


def test_show_bboxes_calls_of_the_anchor_and_nms_sections(d2l):
    X = torch.rand(size=(1, 3, 28, 36))
    boxes = d2lssd.multibox_prior(X, sizes=[0.75, 0.5, 0.25], ratios=[1, 2, 0.5]).reshape(28, 36, 5, 4)
    labels5 = ["s=0.75, r=1", "s=0.5, r=1", "s=0.25, r=1", "s=0.75, r=2", "s=0.75, r=0.5"]
    rects, texts = show_both(d2l, lambda show, ax: show(ax, boxes[10, 10, :, :] * BBOX_SCALE, labels5))
    assert len(rects) == 5 and [t[0] for t in texts] == labels5
    assert [r[3] for r in rects] == [to_rgba(c) for c in "bgrmc"]  # d2l's default colours
    rects, texts = show_both(d2l, lambda show, ax: show(ax, GROUND_TRUTH[:, 1:] * BBOX_SCALE, ["dog", "cat"], "k"))
    assert [r[3] for r in rects] == [to_rgba("k")] * 2
    rects, _ = show_both(d2l, lambda show, ax: show(ax, ANCHORS5 * BBOX_SCALE, ["0", "1", "2", "3", "4"]))
    assert [*rects[0][0], rects[0][1], rects[0][2]] == pytest.approx([0.0, 0.1 * H, 0.2 * W, 0.2 * H])
    show_both(d2l, lambda show, ax: show(ax, NMS_ANCHORS * BBOX_SCALE, ["dog=0.9", "dog=0.8", "dog=0.7", "cat=0.9"]))


def test_box_iou_of_the_chapter_example_and_of_integer_pixel_boxes(d2l):
    torch.testing.assert_close(d2lssd.box_iou(ANCHORS5, GROUND_TRUTH[:, 1:]),
                               d2l.box_iou(ANCHORS5, GROUND_TRUTH[:, 1:]))
    px = (ANCHORS5 * BBOX_SCALE).round().long()
    gt = (GROUND_TRUTH[:, 1:] * BBOX_SCALE).round().long()
    got = d2lssd.box_iou(px, gt)
    assert got.dtype == torch.float32  # d2l's int / int division gives float32 too
    torch.testing.assert_close(got, d2l.box_iou(px, gt))


def test_labeling_calls_of_the_anchor_section(d2l):
    # assign_anchor_to_bbox(ground_truth, anchors, device) with d2l's positional device
    got = d2lssd.assign_anchor_to_bbox(GROUND_TRUTH[:, 1:], ANCHORS5, torch.device("cpu"))
    assert torch.equal(got, d2l.assign_anchor_to_bbox(GROUND_TRUTH[:, 1:], ANCHORS5, torch.device("cpu")))
    labels = d2lssd.multibox_target(ANCHORS5.unsqueeze(dim=0), GROUND_TRUTH.unsqueeze(dim=0))
    want = d2l.multibox_target(ANCHORS5.unsqueeze(dim=0), GROUND_TRUTH.unsqueeze(dim=0))
    assert torch.equal(labels[2], torch.tensor([[0, 1, 2, 0, 2]]))  # the chapter's printed classes
    assert torch.equal(labels[2], want[2])
    torch.testing.assert_close(labels[1], want[1])
    torch.testing.assert_close(labels[0], want[0])


def test_offset_functions_with_d2ls_arguments(d2l):
    assigned = torch.tensor([[0.1, 0.08, 0.52, 0.92]] * 5)
    torch.testing.assert_close(d2lssd.offset_boxes(ANCHORS5, assigned, 1e-6), d2l.offset_boxes(ANCHORS5, assigned))
    offsets = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(d2lssd.offset_inverse(ANCHORS5, offsets), d2l.offset_inverse(ANCHORS5, offsets))
    # integer inputs: the NMS section's int64 zero offsets, and pixel boxes
    zeros = torch.tensor([0] * NMS_ANCHORS.numel()).reshape(-1, 4)
    got = d2lssd.offset_inverse(NMS_ANCHORS, zeros)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, d2l.offset_inverse(NMS_ANCHORS, zeros))
    torch.testing.assert_close(got, NMS_ANCHORS)  # zero offsets decode to the anchors
    px_anchors = torch.tensor([[10, 20, 50, 60], [0, 0, 30, 90]])
    px_boxes = torch.tensor([[12, 18, 55, 61], [5, 5, 25, 80]])
    torch.testing.assert_close(d2lssd.offset_boxes(px_anchors, px_boxes), d2l.offset_boxes(px_anchors, px_boxes))
    torch.testing.assert_close(d2lssd.offset_inverse(px_anchors, torch.tensor([[1, 0, 0, -1], [0, 2, 1, 0]])),
                               d2l.offset_inverse(px_anchors, torch.tensor([[1, 0, 0, -1], [0, 2, 1, 0]])))


def test_nms_section_as_written(d2l, axes):
    offset_preds = torch.tensor([0] * NMS_ANCHORS.numel())  # int64, as in the chapter
    cls_probs = torch.tensor([[0] * 4,  # background
                              [0.9, 0.8, 0.7, 0.1],  # dog
                              [0.1, 0.2, 0.3, 0.9]])  # cat
    assert offset_preds.dtype == torch.int64
    output = d2lssd.multibox_detection(cls_probs.unsqueeze(dim=0), offset_preds.unsqueeze(dim=0),
                                       NMS_ANCHORS.unsqueeze(dim=0), nms_threshold=0.5)
    want = d2l.multibox_detection(cls_probs.unsqueeze(dim=0), offset_preds.unsqueeze(dim=0),
                                  NMS_ANCHORS.unsqueeze(dim=0), nms_threshold=0.5)
    torch.testing.assert_close(output, want)
    torch.testing.assert_close(output[0, :2], torch.tensor([[0, 0.9, 0.1, 0.08, 0.52, 0.92],
                                                            [1, 0.9, 0.55, 0.2, 0.9, 0.88]]))
    # the chapter's drawing loop
    for i in output[0].detach().numpy():
        if i[0] == -1:
            continue
        label = ("dog=", "cat=")[int(i[0])] + str(i[1])
        d2lssd.show_bboxes(axes, [torch.tensor(i[2:]) * BBOX_SCALE], label)
    assert [t.get_text() for t in axes.texts] == ["dog=0.9", "cat=0.9"]
    assert len(axes.patches) == 2


def test_nms_equals_d2ls_up_to_the_order_of_ties(d2l):
    # The chapter's boxes and dog scores: anchors 0 and 3 tie at 0.9. d2l's unstable argsort
    # may visit them in either order; ours keeps the lower index first (documented).
    scores = torch.tensor([0.9, 0.8, 0.7, 0.9])
    keep = d2lssd.nms(NMS_ANCHORS, scores, 0.5)
    assert keep.tolist() == [0, 3]
    assert sorted(d2l.nms(NMS_ANCHORS, scores, 0.5).tolist()) == [0, 3]
    # integer pixel boxes and integer scores, positionally
    px = (NMS_ANCHORS * BBOX_SCALE).round().long()
    assert d2lssd.nms(px, torch.tensor([9, 8, 7, 1]), 0.5).tolist() == d2l.nms(px, torch.tensor([9, 8, 7, 1]), 0.5).tolist()


def test_multibox_detection_on_random_outputs_that_require_grad(d2l):
    # As in the SSD section's predict: softmax of the network's logits and its raw offsets,
    # both requiring grad; d2l's defaults (nms_threshold=0.5, pos_threshold=0.009999999).
    g = torch.Generator().manual_seed(3)
    anchors = d2lssd.multibox_prior(torch.zeros(1, 3, 6, 6), [0.3, 0.5], [1, 2, 0.5])
    A = anchors.shape[1]
    logits = torch.randn(2, A, 3, generator=g).requires_grad_()
    offsets = (torch.randn(2, A * 4, generator=g) * 0.5).requires_grad_()
    cls_probs = F.softmax(logits, dim=2).permute(0, 2, 1)
    ours = d2lssd.multibox_detection(cls_probs, offsets, anchors, 0.5, 0.009999999, class_agnostic=True)
    theirs = d2l.multibox_detection(cls_probs, offsets, anchors)
    assert ours.shape == theirs.shape == (2, A, 6)
    for b in range(2):
        # rows that are detections (class >= 0) equal d2l's (notation page: class_agnostic=True)
        kept_ours, kept_theirs = ours[b][ours[b, :, 0] >= 0], theirs[b][theirs[b, :, 0] >= 0]
        assert len(kept_ours) > 1
        torch.testing.assert_close(kept_ours, kept_theirs.detach())
    # the same call without grad gives the same numbers
    torch.testing.assert_close(ours, d2lssd.multibox_detection(cls_probs.detach(), offsets.detach(), anchors,
                                                               class_agnostic=True))


# --- §14.5 multiscale object detection -----------------------------------------------------

@pytest.mark.parametrize("fmap_w, fmap_h, s", [(4, 4, [0.15]), (2, 2, [0.4]), (1, 1, [0.8])])
def test_display_anchors_of_the_multiscale_section(d2l, fmap_w, fmap_h, s):
    d2lssd.set_figsize()
    fmap = torch.zeros((1, 10, fmap_h, fmap_w))
    anchors = d2lssd.multibox_prior(fmap, sizes=s, ratios=[1, 2, 0.5])
    torch.testing.assert_close(anchors, d2l.multibox_prior(fmap, sizes=s, ratios=[1, 2, 0.5]))
    bbox_scale = torch.tensor((W, H, W, H))
    rects, _ = show_both(d2l, lambda show, ax: show(ax, anchors[0] * bbox_scale))
    assert len(rects) == fmap_h * fmap_w * 3


def test_set_figsize_sets_d2ls_default():
    plt.rcParams["figure.figsize"] = (1.0, 1.0)
    d2lssd.set_figsize()
    assert tuple(plt.rcParams["figure.figsize"]) == (3.5, 2.5)


# --- §14.6 the banana data set ----------------------------------------------------------------

@pytest.fixture
def small_default_bananas(tmp_path, monkeypatch):
    """The readers' default data in a temporary cache folder: no network, so generated
    data (seed 0), cut to 40 + 10 images for speed."""
    def fail(url, timeout):
        raise OSError("network disabled in the tests")

    monkeypatch.setattr(dl, "_urlopen", fail)
    monkeypatch.delenv("D2LSSD_OFFLINE", raising=False)
    monkeypatch.setenv("D2LSSD_DATA", str(tmp_path))
    real = B.generate_bananas
    monkeypatch.setattr(B, "generate_bananas", lambda root, num_train, num_val, seed: real(root, 40, 10, seed))
    return tmp_path / "banana-detection-generated-seed0"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision.io in d2l
def test_banana_section_as_written(d2l, small_default_bananas, monkeypatch, capsys):
    batch_size, edge_size = 32, 256
    train_iter, _ = d2lssd.load_data_bananas(batch_size)
    batch = next(iter(train_iter))
    assert batch[0].shape == (32, 3, 256, 256) and batch[1].shape == (32, 1, 5)
    # d2l's reader calls: read_data_bananas(is_train=True) and, inside its dataset, positionally
    images, labels = d2lssd.read_data_bananas(is_train=True)
    val_images, val_labels = d2lssd.read_data_bananas(False)
    assert capsys.readouterr().out.count(train_iter.data_source.description) == 3
    monkeypatch.setattr(d2l, "download_extract", lambda name, folder=None: str(small_default_bananas))
    want_images, want_labels = d2l.read_data_bananas(is_train=True)
    assert torch.equal(images, torch.stack(want_images))  # d2l returns a list of images
    torch.testing.assert_close(labels, want_labels.float())
    torch.testing.assert_close(val_labels, d2l.read_data_bananas(False)[1].float())
    dataset = d2lssd.BananasDataset(is_train=False)
    assert len(dataset) == 10 and torch.equal(dataset.features, val_images)
    x, y = dataset[0]
    d2l_x, d2l_y = d2l.BananasDataset(is_train=False)[0]
    assert torch.equal(x, d2l_x) and x.dtype == d2l_x.dtype == torch.float32
    torch.testing.assert_close(y, d2l_y.float())
    # the section's figure
    imgs = (batch[0][:10].permute(0, 2, 3, 1)) / 255
    assert imgs.shape == (10, 256, 256, 3)
    for label in batch[1][:10]:
        show_both(d2l, lambda show, ax: show(ax, [label[0][1:5] * edge_size], colors=["w"]))


# --- §14.7 single shot multibox detection -------------------------------------------------------

def forward(x, block):
    return block(x)


def test_ssd_building_blocks_have_the_printed_shapes():
    Y1 = forward(torch.zeros((2, 8, 20, 20)), models.cls_predictor(8, 5, 10))
    Y2 = forward(torch.zeros((2, 16, 10, 10)), models.cls_predictor(16, 3, 10))
    assert (Y1.shape, Y2.shape) == ((2, 55, 20, 20), (2, 33, 10, 10))
    assert models.concat_preds([Y1, Y2]).shape == (2, 25300)
    assert forward(torch.zeros((2, 3, 20, 20)), models.down_sample_blk(3, 10)).shape == (2, 10, 10, 10)
    assert forward(torch.zeros((2, 3, 256, 256)), models.base_net()).shape == (2, 64, 32, 32)
    assert forward(torch.zeros((2, 4, 8, 8)), models.bbox_predictor(4, 3)).shape == (2, 12, 8, 8)
    assert models.flatten_pred(Y1).shape == (2, 20 * 20 * 55)


def test_tinyssd_as_the_chapter_uses_it(d2l):
    # d2l's chapter reads module globals `sizes` and `ratios`; TinySSD takes them as
    # constructor arguments, defaulting to the chapter's values (documented).
    sizes = [[0.2, 0.272], [0.37, 0.447], [0.54, 0.619], [0.71, 0.79], [0.88, 0.961]]
    ratios = [[1, 2, 0.5]] * 5
    net = d2lssd.TinySSD(num_classes=1)
    X = torch.zeros((2, 3, 256, 256))
    anchors, cls_preds, bbox_preds = net(X)
    assert anchors.shape == (1, 5444, 4)
    assert cls_preds.shape == (2, 5444, 2) and bbox_preds.shape == (2, 21776)
    want = torch.cat([d2l.multibox_prior(torch.zeros(1, 1, f, f), s, r)
                      for f, s, r in zip([32, 16, 8, 4, 1], sizes, ratios)], dim=1)
    torch.testing.assert_close(anchors, want)
    # blk_forward with d2l's positional arguments
    Y, anc, cls, bbox = models.blk_forward(torch.zeros((2, 3, 256, 256)), models.get_blk(0), sizes[0], ratios[0],
                                           net.cls_0, net.bbox_0)
    assert Y.shape == (2, 64, 32, 32) and anc.shape == (1, 4096, 4)
    assert cls.shape == (2, 8, 32, 32) and bbox.shape == (2, 16, 32, 32)


def chapter_calc_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks):
    """§14.7.3.2's loss, written from its definition: mean CE over anchors + mean masked L1."""
    batch_size, num_classes = cls_preds.shape[0], cls_preds.shape[2]
    cls = nn.CrossEntropyLoss(reduction="none")(cls_preds.reshape(-1, num_classes), cls_labels.reshape(-1))
    bbox = nn.L1Loss(reduction="none")(bbox_preds * bbox_masks, bbox_labels * bbox_masks)
    return cls.reshape(batch_size, -1).mean(dim=1) + bbox.mean(dim=1)


def test_training_step_and_metrics_of_the_ssd_section(d2l):
    torch.manual_seed(0)
    net = d2lssd.TinySSD(num_classes=1)
    trainer = torch.optim.SGD(net.parameters(), lr=0.2, weight_decay=5e-4)
    X = torch.rand(4, 3, 64, 64) * 255  # the smallest input TinySSD takes, for speed
    Y = torch.tensor([[[0, 0.1, 0.1, 0.4, 0.5]], [[0, 0.5, 0.4, 0.9, 0.8]],
                      [[0, 0.2, 0.3, 0.6, 0.7]], [[0, 0.3, 0.05, 0.7, 0.45]]])
    metric = d2lssd.Accumulator(4)
    net.train()
    trainer.zero_grad()
    anchors, cls_preds, bbox_preds = net(X)
    bbox_labels, bbox_masks, cls_labels = d2lssd.multibox_target(anchors, Y)
    l = d2lssd.calc_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
    torch.testing.assert_close(l, chapter_calc_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks))
    l.mean().backward()
    trainer.step()
    metric.add(d2lssd.cls_eval(cls_preds, cls_labels), cls_labels.numel(),
               d2lssd.bbox_eval(bbox_preds, bbox_labels, bbox_masks), bbox_labels.numel())
    cls_err, bbox_mae = 1 - metric[0] / metric[1], metric[2] / metric[3]
    # d2l's definitions: correct arg-max over all anchors; masked absolute error summed
    correct = float((cls_preds.argmax(dim=-1).type(cls_labels.dtype) == cls_labels).sum())
    abs_err = float((torch.abs((bbox_labels - bbox_preds.detach()) * bbox_masks)).sum())
    assert metric[0] == correct and isinstance(d2lssd.cls_eval(cls_preds, cls_labels), float)
    assert metric[2] == pytest.approx(abs_err, rel=1e-6) and abs_err > 0
    # ... which are our class_error_all and bbox_mae_all (the honest ones are separate)
    assert cls_err == pytest.approx(d2lssd.class_error_all(cls_preds, cls_labels))
    assert bbox_mae == pytest.approx(d2lssd.bbox_mae_all(bbox_preds.detach(), bbox_labels, bbox_masks))
    d2l_metric = d2l.Accumulator(4)
    d2l_metric.add(correct, cls_labels.numel(), abs_err, bbox_labels.numel())
    assert metric.data == pytest.approx(d2l_metric.data)


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")  # the chapter's float(row[1])
def test_predict_and_display_of_the_ssd_section(d2l):
    # d2l's chapter-local predict(X) and display(img, output, threshold), with d2lssd names.
    torch.manual_seed(1)
    net = d2lssd.TinySSD(num_classes=1)
    device = d2lssd.try_gpu()
    assert device == d2l.try_gpu()
    net = net.to(device)
    X = (torch.rand(1, 3, 64, 64) * 255).to(device)
    img = X.squeeze(0).permute(1, 2, 0).long()
    net.eval()
    anchors, cls_preds, bbox_preds = net(X.to(device))
    cls_probs = F.softmax(cls_preds, dim=2).permute(0, 2, 1)
    output = d2lssd.multibox_detection(cls_probs, bbox_preds, anchors)
    idx = [i for i, row in enumerate(output[0]) if row[0] != -1]
    output = output[0, idx]
    # one class: per-class NMS is d2l's class-agnostic NMS
    want = d2l.multibox_detection(cls_probs, bbox_preds, anchors)
    want = want[0, [i for i, row in enumerate(want[0]) if row[0] != -1]]
    torch.testing.assert_close(output.detach(), want.detach())
    assert len(output) > 0 and output.requires_grad

    def display(show, ax, img, output, threshold):
        for row in output:
            score = float(row[1])
            if score < threshold:
                continue
            h, w = img.shape[:2]
            bbox = [row[2:6] * torch.tensor((w, h, w, h), device=row.device)]  # requires grad
            show(ax, bbox, "%.2f" % score, "w")

    threshold = float(output[min(3, len(output) - 1), 1].detach())
    rects, texts = show_both(d2l, lambda show, ax: display(show, ax, img, output.cpu(), threshold))
    assert len(rects) == len(texts) == int((output[:, 1] >= threshold).sum()) >= 1
    assert all(t[2] == "k" for t in texts)  # black text on white label boxes, as d2l
