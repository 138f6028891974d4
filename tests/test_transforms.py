"""SSD augmentation: bounded on adversarial boxes, boxes inside, masks and boxes together, fallbacks.

Bounds are checked by counting (window trials, pipeline passes), never by
timing. Images are small synthetic ones; masks are rectangles or L shapes
so that the right answer is known.
"""

import pytest
import torch
from torchvision import tv_tensors
from torchvision.ops import box_iou, masks_to_boxes

from d2lssd.transforms import RandomObjectCrop, SSDEvalTransform, SSDTrainTransform, tighten_boxes_to_masks


def sample(h, w, boxes, l_shape=False, dtype=torch.uint8):
    """Image (random colours), boxes in pixels, masks filling each box (or an L in it), labels = ids."""
    g = torch.Generator().manual_seed(h * 1000 + w)
    image = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8).to(dtype)
    b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    masks = torch.zeros((len(b), h, w), dtype=torch.uint8)
    for k, (x1, y1, x2, y2) in enumerate(b.int().tolist()):
        masks[k, y1:y2, x1:x2] = 1
        if l_shape and x2 - x1 > 2 and y2 - y1 > 2:  # an L: the upper right quarter is empty
            masks[k, y1:(y1 + y2) // 2, (x1 + x2) // 2:x2] = 0
    target = {"boxes": tv_tensors.BoundingBoxes(b, format="XYXY", canvas_size=(h, w)),
              "masks": tv_tensors.Mask(masks), "labels": torch.arange(len(b)), "name": "x"}
    return tv_tensors.Image(image), target


def mask_boxes(masks):
    m = masks.as_subclass(torch.Tensor).bool()
    return masks_to_boxes(m) + torch.tensor([0.0, 0.0, 1.0, 1.0])


def plain(t):
    return t.as_subclass(torch.Tensor)


ADVERSARIAL = {
    "tiny boxes": (600, 600, [[10, 10, 11, 11], [300, 300, 302, 301], [598, 2, 599, 4]]),
    "one huge box": (300, 500, [[0, 0, 500, 300]]),
    "boxes at the border": (400, 600, [[0, 0, 8, 400], [592, 100, 600, 300], [200, 396, 400, 400]]),
    "thin tall pedestrians": (480, 640, [[100, 40, 112, 440], [300, 60, 340, 470]]),
}


# --- RandomObjectCrop --------------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_object_crop_is_bounded_and_keeps_boxes_inside(case):
    h, w, boxes = ADVERSARIAL[case]
    crop = RandomObjectCrop(max_trials=7)
    torch.manual_seed(0)
    for _ in range(40):
        image, target = crop(*sample(h, w, boxes))
        assert 1 <= crop.last_trials <= 7
        H, W = image.shape[-2:]
        b = plain(target["boxes"])
        assert tuple(target["boxes"].canvas_size) == (H, W) and target["masks"].shape[-2:] == (H, W)
        assert len(b) >= 1 and (b[:, :2] >= 0).all() and (b[:, 2] <= W).all() and (b[:, 3] <= H).all()
        assert len(b) == len(target["masks"]) == len(target["labels"])
    assert crop.stats["calls"] == 40 and crop.stats["trials"] <= 40 * 7
    assert crop.stats["cropped"] + crop.stats["gave_up"] == 40


def test_object_crop_gives_up_cleanly_when_no_window_can_work():
    # A 1-pixel box: any window around it is far below min_area: every trial fails.
    crop = RandomObjectCrop(max_trials=5, min_area=0.05)
    image, target = sample(600, 600, [[10, 10, 11, 11]])
    out_image, out_target = crop(image, target)
    assert crop.last_trials == 5 and crop.stats["gave_up"] == 1
    assert out_image is image and out_target is target  # unchanged


def test_object_crop_around_a_huge_box_succeeds_at_once():
    crop = RandomObjectCrop()
    torch.manual_seed(0)
    image, target = crop(*sample(300, 500, [[0, 0, 500, 300]]))
    assert crop.last_trials == 1 and crop.stats["cropped"] == 1
    assert image.shape[-2:] == (300, 500)  # the window is the whole image
    assert plain(target["boxes"]).tolist() == [[0, 0, 500, 300]]


def test_object_crop_keeps_exactly_the_objects_visible_enough_and_tightens_boxes_to_masks():
    h, w = 400, 600
    boxes = [[50, 50, 110, 350], [100, 60, 160, 360], [400, 40, 460, 330], [300, 200, 330, 390]]
    crop = RandomObjectCrop(keep_threshold=0.5, min_visibility=0.7)
    torch.manual_seed(1)
    seen_dropped = 0
    for _ in range(30):
        # Channel 0 holds the column (mod 256) and channel 1 the row, so the window can be read back.
        image, target = sample(h, w, boxes, l_shape=True, dtype=torch.int64)
        image[0] = torch.arange(w).expand(h, w)
        image[1] = torch.arange(h)[:, None].expand(h, w)
        full = target["masks"].as_subclass(torch.Tensor).clone()
        out, t = crop(image, target)
        left, top = int(out[0, 0, 0]), int(out[1, 0, 0])
        ch, cw = out.shape[-2:]
        inside = full[:, top:top + ch, left:left + cw].flatten(1).sum(1) / full.flatten(1).sum(1)
        kept = set(t["labels"].tolist())
        assert kept == {g for g in range(len(boxes)) if inside[g] >= 0.5}
        seen_dropped += len(boxes) - len(kept)
        # Boxes are the tight boxes of the (L-shaped) masks, not the cut boxes.
        assert torch.equal(plain(t["boxes"]), mask_boxes(t["masks"]))
    assert seen_dropped > 0


def test_tighten_boxes_to_masks_empties_boxes_without_pixels():
    _, target = sample(50, 50, [[0, 0, 20, 20], [30, 30, 40, 40]])
    target["masks"][1].zero_()
    out = tighten_boxes_to_masks(target)
    assert plain(out["boxes"]).tolist() == [[0, 0, 20, 20], [0, 0, 0, 0]]
    assert isinstance(out["boxes"], tv_tensors.BoundingBoxes)


def test_object_crop_rejects_bad_arguments():
    for kwargs in ({"context": (0.5, 2)}, {"aspect": (0, 1)}, {"min_area": 0.5, "max_area": 0.2},
                   {"min_visibility": 1.5}, {"max_trials": 0}, {"p": -0.1}):
        with pytest.raises(ValueError):
            RandomObjectCrop(**kwargs)


# --- SSDTrainTransform -------------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_train_transform_never_ends_without_boxes_and_is_bounded(case):
    h, w, boxes = ADVERSARIAL[case]
    tf = SSDTrainTransform(size=300, object_crop=RandomObjectCrop(max_trials=10))
    torch.manual_seed(0)
    n = 25
    for _ in range(n):
        image, target = tf(*sample(h, w, boxes))
        assert image.dtype == torch.float32 and image.shape == (3, 300, 300)
        assert 0 <= image.min() and image.max() <= 1
        b = plain(target["boxes"])
        assert len(b) >= 1 and len(b) == len(target["masks"]) == len(target["labels"])
        assert (b >= 0).all() and (b <= 300).all()
        assert ((b[:, 2:] - b[:, :2]) >= 1).all()  # SanitizeBoundingBoxes(min_size=1) or the fallback
    # At most three passes per call and max_trials windows per object crop.
    passes = n + tf.stats["fallback_no_crop"] + tf.stats["fallback_largest_box"]
    assert passes <= 3 * n
    assert tf.object_crop.stats["trials"] <= 10 * tf.object_crop.stats["calls"]
    assert tf.stats["object_crop"] + tf.stats["resized_crop"] + tf.stats["no_crop"] == n  # one crop pass per call


def test_the_largest_box_fallback_is_taken_when_every_box_is_too_small():
    # 1-pixel boxes in a 600x600 image shrink below 1 pixel at 300x300 on every path.
    tf = SSDTrainTransform(size=300)
    torch.manual_seed(0)
    image, target = tf(*sample(600, 600, [[10, 10, 11, 11], [300, 300, 302, 301]]))
    assert tf.stats["fallback_no_crop"] == 1 and tf.stats["fallback_largest_box"] == 1
    b = plain(target["boxes"])
    assert target["labels"].tolist() == [1]  # the larger of the two
    assert b.shape == (1, 4) and ((b[:, 2:] - b[:, :2]) >= 1).all() and (b >= 0).all() and (b <= 300).all()
    assert abs(float(b[0, 0] + b[0, 2]) / 2 - 150.5) <= 1  # still where it was, at half scale


def test_the_no_crop_fallback_is_taken_when_the_crop_loses_every_box():
    # Tiny random resized crops (1% of the image) usually miss the one box in the corner.
    tf = SSDTrainTransform(size=300, p_object_crop=0.0, p_resized_crop=1.0,
                           resized_crop_scale=(0.01, 0.01), p_zoom_out=0.0)
    torch.manual_seed(0)
    for _ in range(10):
        _, target = tf(*sample(600, 600, [[0, 0, 50, 50]]))
        assert len(target["boxes"]) == 1
    assert tf.stats["fallback_no_crop"] >= 5 and tf.stats["fallback_largest_box"] == 0


def test_boxes_and_masks_move_together_through_the_whole_pipeline():
    tf = SSDTrainTransform(size=300)
    torch.manual_seed(3)
    boxes = [[40, 30, 100, 330], [90, 50, 150, 360], [400, 20, 470, 300]]
    worst = 1.0
    for _ in range(30):
        _, target = tf(*sample(400, 600, boxes, l_shape=True))
        m = target["masks"].as_subclass(torch.Tensor)
        has = m.flatten(1).bool().any(1)
        b = plain(target["boxes"])[has]
        if len(b):
            iou = torch.diag(box_iou(mask_boxes(m[has]), b))
            worst = min(worst, float(iou.min()))
    assert worst >= 0.75  # equal up to nearest-neighbour resizing of the masks


def test_flip_mirrors_boxes_and_masks():
    tf = SSDTrainTransform(size=300, p_photometric=0, p_zoom_out=0, p_object_crop=0, p_resized_crop=0, p_flip=1.0)
    _, target = tf(*sample(300, 300, [[10, 20, 60, 200]]))
    assert plain(target["boxes"]).tolist() == [[240, 20, 290, 200]]
    assert torch.equal(mask_boxes(target["masks"]), plain(target["boxes"]))


def test_an_image_without_boxes_passes_through_without_fallbacks():
    tf = SSDTrainTransform()
    image, target = tf(*sample(200, 300, []))
    assert image.shape == (3, 300, 300) and len(target["boxes"]) == 0
    assert tf.stats["fallback_no_crop"] == 0 and tf.stats["fallback_largest_box"] == 0


def test_train_transform_rejects_bad_probabilities():
    with pytest.raises(ValueError):
        SSDTrainTransform(p_object_crop=0.8, p_resized_crop=0.5)
    with pytest.raises(ValueError):
        SSDTrainTransform(p_flip=2)
    with pytest.raises(ValueError):
        SSDTrainTransform(size=0)


# --- SSDEvalTransform --------------------------------------------------------------------------

def test_eval_transform_resizes_boxes_exactly_and_converts_to_float():
    image, target = sample(200, 400, [[40, 20, 200, 180]])
    out, t = SSDEvalTransform(300)(image, target)
    assert out.dtype == torch.float32 and out.shape == (3, 300, 300)
    assert torch.equal(plain(out), plain(SSDEvalTransform(300)(image)))  # image-only call, same pixels
    assert 0 <= out.min() and out.max() <= 1
    assert plain(t["boxes"]).tolist() == [[30, 30, 150, 270]]
    assert t["masks"].shape == (1, 300, 300) and t["masks"].dtype == torch.uint8
    only = SSDEvalTransform(300)(torch.zeros(3, 50, 60, dtype=torch.uint8))
    assert only.shape == (3, 300, 300) and only.dtype == torch.float32
