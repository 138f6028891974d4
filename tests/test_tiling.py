"""Tiled inference (SAHI): the windows, the merge, and tiled_detect on a stub and on a real TinySSD."""

from __future__ import annotations

import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms.v2 import functional as TF

from d2lssd import Detector, PostProcess, TinySSD, box_iou
from d2lssd.photos import as_uint8_image
from d2lssd.tiling import merge_detections, tile_windows, tiled_detect


def sahi_slice_bboxes(image_height, image_width, slice_height, slice_width, overlap_height_ratio,
                      overlap_width_ratio):
    """SAHI's ``sahi.slicing.get_slice_bboxes`` (v0.11, the loop as published), the reference for the windows."""
    slice_bboxes = []
    y_max = y_min = 0
    y_overlap = int(overlap_height_ratio * slice_height)
    x_overlap = int(overlap_width_ratio * slice_width)
    while y_max < image_height:
        x_min = x_max = 0
        y_max = y_min + slice_height
        while x_max < image_width:
            x_max = x_min + slice_width
            if y_max > image_height or x_max > image_width:
                xmax = min(image_width, x_max)
                ymax = min(image_height, y_max)
                xmin = max(0, xmax - slice_width)
                ymin = max(0, ymax - slice_height)
                slice_bboxes.append([xmin, ymin, xmax, ymax])
            else:
                slice_bboxes.append([x_min, y_min, x_max, y_max])
            x_min = x_max - x_overlap
        y_min = y_max - y_overlap
    return slice_bboxes


# --------------------------------------------------------------------------- the windows


@settings(max_examples=100, deadline=None)
@given(h=st.integers(1, 200), w=st.integers(1, 200), th=st.integers(2, 120), tw=st.integers(2, 120),
       overlap=st.floats(0.0, 0.95))
def test_windows_cover_every_pixel_respect_the_overlap_and_stay_inside(h, w, th, tw, overlap):
    win = tile_windows(h, w, (th, tw), overlap)
    assert win.dtype == torch.int64 and win.shape[1] == 4
    sh, sw = min(th, h), min(tw, w)
    assert ((win[:, 2] - win[:, 0]) == sw).all() and ((win[:, 3] - win[:, 1]) == sh).all()  # one size
    assert (win[:, :2] >= 0).all() and (win[:, 2] <= w).all() and (win[:, 3] <= h).all()  # inside
    covered = torch.zeros((h, w), dtype=torch.int32)
    for x0, y0, x1, y1 in win.tolist():
        covered[y0:y1, x0:x1] += 1
    assert (covered >= 1).all()  # every pixel
    for starts, s, length in ((win[:, 0].unique(), sw, w), (win[:, 1].unique(), sh, h)):
        gaps = starts.diff()
        assert (gaps >= 1).all()  # no window twice
        assert (s - gaps >= int(overlap * s)).all()  # neighbours share at least floor(overlap * s) pixels
        assert (gaps[:-1] == s - int(overlap * s)).all()  # the regular step, all but the last
        assert starts[0] == 0 and starts[-1] + s == length  # flush with both borders
    assert len(win) == len(win[:, 0].unique()) * len(win[:, 1].unique())  # a grid, row-major
    assert win[:, 1].diff().ge(0).all()


@settings(max_examples=100, deadline=None)
@given(h=st.integers(1, 400), w=st.integers(1, 400), tile=st.integers(4, 150), overlap=st.floats(0.0, 0.9))
def test_windows_equal_sahis_slices(h, w, tile, overlap):
    assert tile_windows(h, w, tile, overlap).tolist() == sahi_slice_bboxes(h, w, tile, tile, overlap, overlap)


def test_windows_known_values_and_one_window_when_the_tile_covers_the_image():
    assert tile_windows(100, 250, 100, 0.2).tolist() == [[0, 0, 100, 100], [80, 0, 180, 100], [150, 0, 250, 100]]
    assert tile_windows(100, 250, 250, 0.2).tolist() == [[0, 0, 250, 100]]  # tile >= image: the image
    assert tile_windows(100, 250, (100, 1000), 0.0).tolist() == [[0, 0, 250, 100]]
    assert tile_windows(1000, 1000, 256, 0.2).shape == (25, 4)  # step 205: starts 0, 205, 410, 615, 744
    assert tile_windows(2, 3, 1, 0.5).tolist() == [[x, y, x + 1, y + 1] for y in range(2) for x in range(3)]


@pytest.mark.parametrize("kwargs, name", [
    (dict(tile=0), "tile"), (dict(tile=-5), "tile"), (dict(tile=1.5), "tile"), (dict(tile=True), "tile"),
    (dict(tile=(0, 10)), "tile"), (dict(tile=(10,)), "tile"),
    (dict(tile=10, overlap=1.0), "overlap"), (dict(tile=10, overlap=-0.1), "overlap"),
    (dict(tile=10, overlap=True), "overlap"), (dict(tile=10, overlap="0.2"), "overlap"),
    (dict(tile=10, max_windows=5), "tile"),  # 100 x 100 in 10-pixel tiles: 144 windows
])
def test_bad_arguments_raise_value_errors_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tile_windows(100, 100, **kwargs)
    det = BrightSquareDetector()
    image = torch.zeros((3, 100, 100), dtype=torch.uint8)
    if "max_windows" in kwargs:
        kwargs = {"tile": kwargs["tile"], "max_tiles": kwargs["max_windows"]}
    with pytest.raises(ValueError, match=name):
        tiled_detect(det, image, **kwargs)
    assert not det.calls  # refused before any detection


def test_bad_image_sizes_are_refused():
    with pytest.raises(ValueError, match="height"):
        tile_windows(0, 10, 5)
    with pytest.raises(ValueError, match="width"):
        tile_windows(10, 2.5, 5)


# --------------------------------------------------------------------------- the merge


def _random_detections(n, classes, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand((n, 2), generator=g) * 80
    wh = torch.rand((n, 2), generator=g) * 30 + 1
    scores = torch.randperm(n, generator=g).float() / n + 0.01  # distinct: no ties to order
    cls = torch.randint(0, classes, (n,), generator=g).float()
    return torch.cat((cls[:, None], scores[:, None], xy, xy + wh), dim=1)


@pytest.mark.parametrize("seed", range(5))
def test_merge_is_torchvisions_batched_nms_then_top_k(seed):
    d = _random_detections(300, 4, seed)
    keep = torchvision.ops.batched_nms(d[:, 2:], d[:, 1], d[:, 0].long(), 0.45)
    assert torch.equal(merge_detections(d, 0.45), d[keep])
    assert torch.equal(merge_detections(d, 0.45, top_k=7), d[keep[:7]])
    agnostic = torchvision.ops.nms(d[:, 2:], d[:, 1], 0.45)
    assert torch.equal(merge_detections(d, 0.45, class_agnostic=True), d[agnostic])


def test_merge_of_nothing_and_bad_inputs():
    assert merge_detections(torch.zeros((0, 6)), 0.5).shape == (0, 6)
    with pytest.raises(ValueError, match="detections"):
        merge_detections(torch.zeros((3, 5)), 0.5)
    with pytest.raises(ValueError, match="nms_threshold"):
        merge_detections(torch.zeros((0, 6)), 1.5)
    with pytest.raises(ValueError, match="top_k"):
        merge_detections(torch.zeros((0, 6)), 0.5, top_k=0)


# --------------------------------------------------------------------------- tiled_detect on a stub


class BrightSquareDetector:
    """A stand-in for :class:`d2lssd.Detector` that sees what a detector of input size ``side`` can see.

    ``detect`` resizes each image to ``side x side`` as the detector does
    (bilinear, antialiased), and where the mean brightness there exceeds
    128 reports one box of class 0: the bounding box of those pixels, scaled
    back to the image's pixels, with the peak brightness / 255 as its score.
    An object that shrinks below about a pixel at that size is averaged with
    its dark surroundings and missed, as an SSD misses it.
    """

    def __init__(self, side: int = 64):
        self.side = side
        self.postprocess = PostProcess(nms_threshold=0.45, top_k=100)
        self.calls = []  # per call: (sizes of the images, batch_size)

    def detect(self, images, batch_size=8, **postprocess):
        single = not isinstance(images, (list, tuple))
        items = [images] if single else list(images)
        self.calls.append(([tuple(as_uint8_image(t).shape[-2:]) for t in items], batch_size))
        out = []
        for item in items:
            t = as_uint8_image(item)
            h, w = t.shape[-2:]
            small = TF.resize(t, [self.side, self.side], antialias=True).float().mean(0)
            mask = small > 128
            if not mask.any():
                out.append(torch.zeros((0, 6)))
                continue
            ys, xs = mask.nonzero(as_tuple=True)
            box = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
            box *= torch.tensor([w / self.side, h / self.side] * 2)
            out.append(torch.cat((torch.tensor([0.0, float(small.max()) / 255]), box))[None])
        return out[0] if single else out


def _photo_with_square(size=640, x=300, y=300, side=5):
    image = torch.zeros((3, size, size), dtype=torch.uint8)
    image[:, y:y + side, x:x + side] = 255
    return image, torch.tensor([[x, y, x + side, y + side]], dtype=torch.float32)


def test_a_small_object_missed_at_full_size_is_found_once_by_tiling():
    image, truth = _photo_with_square()  # 5 x 5 pixels: half a pixel at 64 x 64
    det = BrightSquareDetector(side=64)
    assert det.detect(image).shape == (0, 6)  # the whole photo resized: missed
    win = tile_windows(640, 640, 128, 0.25)
    holding = [(x0 <= 300 and y0 <= 300 and x1 >= 305 and y1 >= 305) for x0, y0, x1, y1 in win.tolist()]
    assert sum(holding) >= 2  # the square lies in the overlap of several tiles ...
    raw = det.detect([image[:, y0:y1, x0:x1] for x0, y0, x1, y1 in win.tolist()])
    assert sum(len(d) for d in raw) == sum(holding)  # ... each of which finds it
    found = tiled_detect(det, image, 128, 0.25)
    assert found.shape == (1, 6)  # merged into one detection, not one per tile
    assert box_iou(found[:, 2:], truth).item() > 0.6 and found[0, 0] == 0  # where the square is, in photo pixels
    found2 = tiled_detect(det, [image, image.flip(-1)], 128, 0.25)  # a list: one tensor per image
    assert len(found2) == 2 and torch.equal(found2[0], found)
    assert box_iou(found2[1][:, 2:], torch.tensor([[335.0, 300, 340, 305]])).item() > 0.6


class WholeTileDetector(BrightSquareDetector):
    """Reports, for every image, one class-0 box covering all of it (scores fall with each call and image)."""

    def detect(self, images, batch_size=8, **postprocess):
        items = list(images) if isinstance(images, (list, tuple)) else [images]
        self.calls.append(([tuple(t.shape[-2:]) for t in items], batch_size))
        out = [torch.tensor([[0.0, 0.9 - 0.001 * len(self.calls) - 0.0001 * k, 0, 0, t.shape[-1], t.shape[-2]]])
               for k, t in enumerate(items)]
        return out if isinstance(images, (list, tuple)) else out[0]


def test_boxes_are_shifted_into_the_photos_pixels_and_the_full_pass_is_added():
    image = torch.zeros((3, 300, 500), dtype=torch.uint8)
    win = tile_windows(300, 500, 200, 0.1)
    det = WholeTileDetector()
    out = tiled_detect(det, image, 200, 0.1, full_image=False, nms_threshold=1.0, batch_size=3)
    assert torch.equal(out[:, 2:], win.float())  # each tile's whole-tile box lands on its window
    assert det.calls == [([(200, 200)] * len(win), 3)]  # the tiles in one call, the batch size passed on
    det = WholeTileDetector()
    out = tiled_detect(det, image, 200, 0.1, full_image=True, nms_threshold=1.0)
    assert det.calls == [([(200, 200)] * len(win) + [(300, 500)], 8)]  # the tiles and the photo, one call
    assert out.shape == (len(win) + 1, 6) and [0.0, 0.0, 500.0, 300.0] in out[:, 2:].tolist()
    assert out[:, 1].diff().le(0).all()  # by descending score


def test_the_detectors_post_processing_settings_apply_to_the_merge():
    image = torch.zeros((3, 300, 500), dtype=torch.uint8)
    det = WholeTileDetector()
    assert len(tiled_detect(det, image, 200, 0.1, nms_threshold=1.0, top_k=2)) == 2
    # default NMS 0.45: neighbouring tiles overlap by 20 of 200 pixels, IoU 0.05: nothing is suppressed
    assert len(tiled_detect(det, image, 200, 0.1, full_image=False)) == len(tile_windows(300, 500, 200, 0.1))
    # 50 % overlap: IoU of neighbours 1/3, suppressed at 0.3 but not at 0.45
    n = len(tile_windows(300, 500, 200, 0.5))
    assert len(tiled_detect(det, image, 200, 0.5, full_image=False, nms_threshold=0.3)) < n
    assert len(tiled_detect(det, image, 200, 0.5, full_image=False)) == n


# --------------------------------------------------------------------------- a real detector


@pytest.fixture(scope="module")
def tiny_detector():
    torch.manual_seed(0)
    return Detector(TinySSD(num_classes=2), class_names=["a", "b"], input_size=64,
                    postprocess=PostProcess(score_threshold=0.2, top_k=50)).eval()


def test_a_tile_covering_the_image_gives_detects_own_result(tiny_detector):
    g = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 256, (3, 90, 120), dtype=torch.uint8, generator=g) for _ in range(2)]
    # one image per forward pass, as tiled_detect runs each image's tiles (a batch of two differs in the
    # last float bits: 1.5e-5 pixels)
    expected = [tiny_detector.detect(im) for im in images]
    assert sum(len(d) for d in expected) > 0  # something to compare
    for tile, full in ((120, True), (500, True), ((90, 120), False)):
        got = tiled_detect(tiny_detector, images, tile, 0.2, full_image=full)
        assert all(torch.equal(a, b) for a, b in zip(got, expected))
    one = tiled_detect(tiny_detector, images[0], 200)
    assert torch.equal(one, expected[0])  # one image in, one tensor out, as detect


def test_tiled_detections_of_a_real_detector_are_merged_and_inside_the_photo(tiny_detector):
    g = torch.Generator().manual_seed(2)
    image = torch.randint(0, 256, (3, 150, 230), dtype=torch.uint8, generator=g)
    out = tiled_detect(tiny_detector, image, 64, 0.25, score_threshold=0.05, batch_size=4)
    assert out.dtype == torch.float32 and out.shape[1] == 6 and 0 < len(out) <= 50  # the detector's top_k
    assert (out[:, 2:4] >= 0).all() and (out[:, 4] <= 230).all() and (out[:, 5] <= 150).all()
    assert out[:, 1].diff().le(0).all() and (out[:, 1] > 0.05).all()
    for c in out[:, 0].unique():
        b = out[out[:, 0] == c, 2:]
        iou = box_iou(b, b) - torch.eye(len(b))
        assert (iou <= 0.45 + 1e-6).all()  # no two boxes of a class above the NMS threshold


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_tiled_detect_runs_where_the_detector_is(tiny_detector):
    g = torch.Generator().manual_seed(3)
    image = torch.randint(0, 256, (3, 150, 230), dtype=torch.uint8, generator=g)
    cpu = tiled_detect(tiny_detector, image, 64, 0.25, score_threshold=0.05)
    gpu_det = Detector(tiny_detector.net, class_names=["a", "b"], input_size=64,
                       postprocess=tiny_detector.postprocess)
    gpu_det.net.to("cuda")
    try:
        gpu = tiled_detect(gpu_det, image.cuda(), 64, 0.25, score_threshold=0.05)
    finally:
        tiny_detector.net.to("cpu")
    assert gpu.device.type == "cpu" and gpu.shape == cpu.shape
    assert torch.allclose(gpu[:, 1:], cpu[:, 1:], atol=1e-3) and torch.equal(gpu[:, 0], cpu[:, 0])


# --------------------------------------------------------------------------- d2lssd predict / evaluate --tile


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A random-weight TinySSD (64-pixel input) saved as a checkpoint, and a generated COCO set of 3 images."""
    from d2lssd.data.multiclass import MULTICLASS_CATEGORIES, generate_multiclass_coco

    tmp = tmp_path_factory.mktemp("tiling")
    root = generate_multiclass_coco(tmp / "data", num_train=1, num_val=3, seed=3)
    cats = sorted(MULTICLASS_CATEGORIES, key=lambda c: c["id"])
    torch.manual_seed(0)
    det = Detector(TinySSD(num_classes=len(cats)), class_names=[c["name"] for c in cats],
                   category_ids=[c["id"] for c in cats], input_size=64, postprocess=PostProcess(score_threshold=0.2))
    return root, det.save(tmp / "tiny.pt")


def test_predict_with_a_tile_covering_the_photo_writes_what_predict_writes(tiny_checkpoint, tmp_path, capsys):
    import json

    from d2lssd.cli import main

    root, ckpt = tiny_checkpoint
    photos = [str(p) for p in sorted((root / "images").glob("val_*.jpg"))[:2]]  # at most 384 x 320
    common = [*photos, "--checkpoint", str(ckpt), "--device", "cpu"]
    assert main(["predict", *common, "--out", str(tmp_path / "plain")]) == 0
    assert main(["predict", *common, "--out", str(tmp_path / "whole"), "--tile", "400"]) == 0
    assert main(["predict", *common, "--out", str(tmp_path / "tiled"), "--tile", "96", "--tile-overlap", "0.25",
                 "--no-full-image", "--score-threshold", "0.3"]) == 0
    assert "tiled inference: 96x96-pixel tiles, overlap 0.25, tiles only" in capsys.readouterr().out
    plain, whole, tiled = (json.loads((tmp_path / d / "detections.json").read_text())
                           for d in ("plain", "whole", "tiled"))
    assert plain and whole == plain  # one tile covers each photo: the plain detector's result
    assert tiled and all(r["score"] > 0.3 for r in tiled)
    sizes = {i: as_uint8_image(p).shape[-2:] for i, p in enumerate(photos, start=1)}
    for r in tiled:  # COCO [x, y, w, h] inside the photo, in its pixels
        x, y, w, h = r["bbox"]
        H, W = sizes[r["image_id"]]
        assert x >= 0 and y >= 0 and x + w <= W + 0.01 and y + h <= H + 0.01


def test_evaluate_with_tiles_reports_the_same_keys_and_the_plain_ap_for_one_tile(tiny_checkpoint, tmp_path):
    import json

    from d2lssd.cli import main

    root, ckpt = tiny_checkpoint
    common = ["evaluate", "--coco", str(root / "val.json"), "--images", str(root / "images"), "--checkpoint",
              str(ckpt), "--device", "cpu"]
    assert main([*common, "--json", str(tmp_path / "plain.json")]) == 0
    assert main([*common, "--json", str(tmp_path / "whole.json"), "--tile", "400"]) == 0
    assert main([*common, "--json", str(tmp_path / "tiled.json"), "--tile", "128"]) == 0
    plain, whole, tiled = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "whole", "tiled"))
    assert set(tiled) == set(plain) and tiled["num_images"] == plain["num_images"] == 3
    for k in ("AP50", "AP", "AP75"):  # one tile per image: the plain AP (batches of 1 vs 3: last float bits)
        assert whole[k] == pytest.approx(plain[k], abs=1e-4)
        assert 0.0 <= tiled[k] <= 1.0


def test_tile_options_are_checked(tiny_checkpoint, tmp_path, capsys):
    from d2lssd.cli import main

    root, ckpt = tiny_checkpoint
    photo = str(sorted((root / "images").glob("val_*.jpg"))[0])
    base = ["predict", photo, "--checkpoint", str(ckpt), "--out", str(tmp_path), "--device", "cpu"]
    for bad in (["--tile", "0"], ["--tile", "64", "--tile-overlap", "1"], ["--tile", "64", "--tile-overlap", "-0.1"]):
        with pytest.raises(SystemExit) as e:
            main(base + bad)
        assert e.value.code == 2 and "--tile" in capsys.readouterr().err
    assert main(base + ["--tile-overlap", "0.3"]) == 1
    assert "need --tile" in capsys.readouterr().err
    assert main(["evaluate", "--coco", str(root / "val.json"), "--images", str(root / "images"), "--checkpoint",
                 str(ckpt), "--out", str(tmp_path / "x"), "--tile", "128"]) == 1
    assert "--out does not take --tile" in capsys.readouterr().err
