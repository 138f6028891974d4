"""Pascal VOC folders: 1-based inclusive corners, difficult objects, class names, image sets."""

import pytest
import torch

from d2lssd.data import VOCDataset, collate_ssd, read_voc_annotation, voc_class_names
from d2lssd.transforms import SSDEvalTransform

from _helpers import IMAGES, write_voc

def test_corners_become_zero_based_half_open(tmp_path):
    root = write_voc(tmp_path / "voc")
    ds = VOCDataset(root)
    assert ds.classes == ("cat", "dog", "person") and ds.names == ["000001", "000002", "000003"]
    _, t = ds[0]
    # (1, 1, W, H) in VOC is the whole image: (0, 0, W, H) here.
    assert t["boxes"].as_subclass(torch.Tensor).tolist() == [[0.0, 0.0, 60.0, 40.0]]
    assert t["labels"].tolist() == [1]
    # The difficult cat is kept apart, like a COCO crowd region.
    assert t["crowd_boxes"].as_subclass(torch.Tensor).tolist() == [[10.0, 4.0, 30.0, 20.0]]
    assert t["crowd_labels"].tolist() == [0]
    _, t = ds[1]
    # Fractional corners are read as they are; a one-pixel-wide box (xmin == xmax) has width 1.
    assert t["boxes"].as_subclass(torch.Tensor).tolist() == [[4.5, 9.0, 25.0, 69.5], [29.0, 29.0, 30.0, 45.0]]
    assert t["labels"].tolist() == [2, 0]
    # ... and the checker warns about it (less than 2 pixels wide), without refusing or dropping it.
    assert [(w.kind, w.image, w.annotation) for w in ds.report.warnings] == [("small_box", "000002", 2)]
    image, t = ds[2]
    assert tuple(image.shape) == (3, 32, 32) and len(t["boxes"]) == 0  # a negative, kept
    ds.transforms = SSDEvalTransform(size=64)
    _, labels = collate_ssd([ds[0], ds[2]])
    torch.testing.assert_close(labels[0], torch.tensor([[1.0, 0, 0, 1, 1]]))
    assert labels[1, 0, 0] == -1


def test_equals_torchvision_voc_detection_minus_one(tmp_path):
    """torchvision's VOCDetection on the devkit layout reads the same numbers; ours are shifted to 0-based."""
    from torchvision.datasets import VOCDetection, wrap_dataset_for_transforms_v2

    images = {k: (w, h, [o for o in objs if float(o[1]).is_integer()]) for k, (w, h, objs) in IMAGES.items()
              if objs}
    base = write_voc(tmp_path / "VOCdevkit" / "VOC2012", images, image_sets={"train": sorted(images)})
    ref = wrap_dataset_for_transforms_v2(VOCDetection(str(tmp_path), year="2012", image_set="train"))
    ours = VOCDataset(base, image_set="train", difficult="keep")
    assert len(ref) == len(ours) == 2
    for k in range(2):
        _, r = ref[k]
        _, t = ours[k]
        shift = torch.tensor([1.0, 1.0, 0.0, 0.0])
        torch.testing.assert_close(t["boxes"].as_subclass(torch.Tensor),
                                   r["boxes"].as_subclass(torch.Tensor).float() - shift)
        assert [ours.classes[i] for i in t["labels"].tolist()] == [o[0] for o in images[ours.names[k]][2]]


def test_difficult_options_and_classes(tmp_path):
    root = write_voc(tmp_path / "voc", image_sets={"val": ["000002", "000001"]})
    keep = VOCDataset(root, difficult="keep")
    assert keep[0][1]["labels"].tolist() == [1, 0] and len(keep[0][1]["crowd_boxes"]) == 0
    drop = VOCDataset(root, difficult="drop")
    assert drop[0][1]["labels"].tolist() == [1] and len(drop[0][1]["crowd_boxes"]) == 0
    given = VOCDataset(root, classes=["person", "dog", "cat", "bus"], image_set="val")
    assert given.names == ["000002", "000001"]  # the list's order
    assert given[0][1]["labels"].tolist() == [0, 2]
    with pytest.raises(ValueError, match="unknown_category"):
        VOCDataset(root, classes=["dog", "cat"])
    with pytest.raises(ValueError, match="difficult"):
        VOCDataset(root, difficult="maybe")
    with pytest.raises(ValueError, match="image_set 'test'"):
        VOCDataset(root, image_set="test")
    assert voc_class_names(root, "val") == ("cat", "dog", "person")


def test_without_filename_and_read_annotation(tmp_path):
    root = write_voc(tmp_path / "voc", write_filename=False)
    ann = read_voc_annotation(root / "Annotations" / "000002.xml")
    assert ann["filename"] is None and ann["size"] == (50, 70)
    assert ann["objects"][0] == {"name": "person", "box": (5.5, 10.0, 25.0, 69.5), "difficult": False}
    assert len(VOCDataset(root)) == 3  # the image is found as <name>.jpg
    (root / "Annotations" / "000003.xml").write_text("<annotation><size>")
    with pytest.raises(ValueError, match="bad_xml"):
        VOCDataset(root)
    ds = VOCDataset(root, errors="drop")
    assert ds.names == ["000001", "000002"] and ds.num_dropped == (0, 1)


def test_split_and_normalized_boxes(tmp_path):
    root = write_voc(tmp_path / "voc")
    ds = VOCDataset(root)
    train, val = ds.split(1, seed=0)
    assert sorted(train.names + val.names) == ds.names and len(val) == 1
    assert train.classes == ds.classes
    boxes = ds.normalized_boxes()  # difficult objects left out, like crowd regions
    torch.testing.assert_close(boxes[0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    torch.testing.assert_close(boxes[1], torch.tensor([4.5 / 50, 9 / 70, 25 / 50, 69.5 / 70]))
    assert len(boxes) == 3
