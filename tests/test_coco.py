"""COCO files: our writer -> pycocotools -> our reader, equality with torchvision's reader, results and AP."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from d2lssd.data import (CocoDataset, coco_annotation, coco_results, collate_detection, collate_ssd,
                         evaluate_coco, write_coco, write_coco_results)
from d2lssd.transforms import SSDEvalTransform, SSDTrainTransform

CATEGORIES = [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}, {"id": 12, "name": "bird"}]
# (image id, file, width, height, [(category id, pixel box xyxy, iscrowd)])
IMAGES = [
    (10, "a.png", 64, 48, [(3, (4, 6, 30, 40), 0), (7, (32, 0, 64, 20), 0), (12, (1, 30, 11, 47), 1)]),
    (11, "b.png", 40, 56, []),  # no objects: a negative
    (15, "c.png", 50, 50, [(12, (10.5, 10.25, 20.5, 40), 0)]),
]


def _write_set(tmp_path, images=IMAGES, categories=CATEGORIES):
    img_dir = tmp_path / "images"
    img_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    imgs, anns = [], []
    for iid, name, w, h, objs in images:
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(img_dir / name)
        imgs.append({"id": iid, "file_name": name, "width": w, "height": h})
        for cat, box, crowd in objs:
            anns.append(coco_annotation(len(anns) + 100, iid, cat, box, crowd))
    path = write_coco(tmp_path / "ann.json", imgs, anns, categories)
    return path, img_dir


def test_round_trip_writer_pycocotools_reader(tmp_path):
    from pycocotools.coco import COCO

    path, img_dir = _write_set(tmp_path)
    coco = COCO(str(path))  # pycocotools reads our file
    assert sorted(coco.imgs) == [10, 11, 15]
    assert coco.anns[100]["bbox"] == [4.0, 6.0, 26.0, 34.0] and coco.anns[100]["area"] == 26.0 * 34.0
    assert coco.anns[102]["iscrowd"] == 1
    ds = CocoDataset(path, img_dir)
    # Labels follow increasing category id: 3 dog -> 0, 7 cat -> 1, 12 bird -> 2.
    assert ds.classes == ("dog", "cat", "bird") and ds.category_ids == (3, 7, 12)
    assert ds.image_ids == [10, 11, 15] and len(ds) == 3 and ds.num_classes == 3
    image, t = ds[0]
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 48, 64)
    torch.testing.assert_close(t["boxes"].as_subclass(torch.Tensor),
                               torch.tensor([[4.0, 6, 30, 40], [32, 0, 64, 20]]))
    assert t["labels"].tolist() == [0, 1]
    torch.testing.assert_close(t["crowd_boxes"].as_subclass(torch.Tensor), torch.tensor([[1.0, 30, 11, 47]]))
    assert t["crowd_labels"].tolist() == [2] and t["image_id"] == 10 and t["orig_size"] == (48, 64)
    # The negative image stays, with no boxes.
    _, t1 = ds[1]
    assert t1["boxes"].shape == (0, 4) and t1["labels"].shape == (0,)
    # Batched rows, normalized, padded with -1 (through the eval transform: normalized boxes do not change).
    ds.transforms = SSDEvalTransform(size=32)
    images, labels, info = collate_detection([ds[i] for i in range(3)])
    assert images.shape == (3, 3, 32, 32) and labels.shape == (3, 2, 5)
    expect0 = torch.tensor([[0, 4 / 64, 6 / 48, 30 / 64, 40 / 48], [1, 32 / 64, 0, 1, 20 / 48]])
    torch.testing.assert_close(labels[0], expect0, atol=1e-6, rtol=0)
    assert labels[1, :, 0].tolist() == [-1, -1]
    torch.testing.assert_close(labels[2, 0], torch.tensor([2, 10.5 / 50, 10.25 / 50, 20.5 / 50, 40 / 50]),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(info["crowd"][0], torch.tensor([[2, 1 / 64, 30 / 48, 11 / 64, 47 / 48]]),
                               atol=1e-6, rtol=0)
    assert info["crowd"][1:, :, 0].eq(-1).all()
    assert info["image_id"].tolist() == [10, 11, 15]
    assert info["orig_size"].tolist() == [[48, 64], [56, 40], [50, 50]]
    # collate_ssd gives the same two tensors.
    i2, l2 = collate_ssd([ds[i] for i in range(3)])
    assert torch.equal(i2, images) and torch.equal(l2, labels)


def test_equals_torchvision_coco_detection_wrapped_for_v2(tmp_path):
    from torchvision.datasets import CocoDetection, wrap_dataset_for_transforms_v2
    from torchvision.transforms.v2 import functional as F

    path, img_dir = _write_set(tmp_path)
    ref = wrap_dataset_for_transforms_v2(CocoDetection(str(img_dir), str(path)),
                                         target_keys={"image_id", "boxes", "labels", "iscrowd"})
    ours = CocoDataset(path, img_dir)
    assert len(ref) == len(ours)
    for k in range(len(ref)):
        pil, r = ref[k]
        image, t = ours[k]
        assert torch.equal(image.as_subclass(torch.Tensor), F.pil_to_tensor(pil))
        assert t["image_id"] == r["image_id"]
        if "boxes" not in r:  # torchvision's wrapper gives only the id for an image without annotations
            assert len(t["boxes"]) == 0 and len(t["crowd_boxes"]) == 0
            continue
        crowd = torch.tensor(r["iscrowd"], dtype=torch.bool)
        rb = r["boxes"].as_subclass(torch.Tensor)
        assert torch.equal(t["boxes"].as_subclass(torch.Tensor), rb[~crowd])
        assert torch.equal(t["crowd_boxes"].as_subclass(torch.Tensor), rb[crowd])
        assert ours.category_of_label(t["labels"]) == r["labels"][~crowd].tolist()
        assert ours.category_of_label(t["crowd_labels"]) == r["labels"][crowd].tolist()


def test_train_transform_keeps_crowd_apart(tmp_path):
    path, img_dir = _write_set(tmp_path)
    torch.manual_seed(0)
    ds = CocoDataset(path, img_dir, transforms=SSDTrainTransform(size=64, p_zoom_out=0.0))
    for _ in range(5):
        image, t = ds[0]
        assert image.dtype == torch.float32 and tuple(image.shape) == (3, 64, 64)
        assert set(t["labels"].tolist()) <= {0, 1}  # the crowd bird (label 2) never becomes an object
        assert set(t["crowd_labels"].tolist()) <= {2}
        assert len(t["boxes"]) == len(t["labels"]) and len(t["crowd_boxes"]) == len(t["crowd_labels"])
    image, t = ds[1]  # a negative stays a negative
    assert len(t["boxes"]) == 0


def test_classes_from_a_training_set_and_subsets(tmp_path):
    path, img_dir = _write_set(tmp_path)
    ds = CocoDataset(path, img_dir, classes=["bird", "cat", "dog", "horse"])
    assert ds.category_ids == (12, 7, 3, None)
    assert ds[0][1]["labels"].tolist() == [2, 1] and ds[0][1]["crowd_labels"].tolist() == [0]
    with pytest.raises(ValueError, match="not among classes"):
        CocoDataset(path, img_dir, classes=["cat", "dog"])
    sub = CocoDataset(path, img_dir, image_ids=[15])
    assert len(sub) == 1 and sub[0][1]["image_id"] == 15
    with pytest.raises(ValueError, match="image_ids"):
        CocoDataset(path, img_dir, image_ids=[99])
    with pytest.raises(ValueError, match="label 3"):
        ds.category_of_label([3])


def test_refuses_bad_data_or_drops_with_a_count(tmp_path, capsys):
    images = IMAGES + [(16, "d.png", 30, 30, [(3, (5, 5, 25, 25), 0)])]
    path, img_dir = _write_set(tmp_path, images)
    data = json.loads(path.read_text())
    data["annotations"][0]["bbox"][2] = 0.0  # zero width
    data["annotations"].append(coco_annotation(500, 10, 99, (1, 1, 5, 5)))  # unknown category
    (img_dir / "d.png").unlink()  # a missing file
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="3 problem"):
        CocoDataset(path, img_dir)
    ds = CocoDataset(path, img_dir, errors="drop")
    assert "dropped 2 annotation(s) and 1 image(s)" in capsys.readouterr().out
    assert ds.num_dropped == (2, 1) and ds.image_ids == [10, 11, 15]
    assert ds[0][1]["labels"].tolist() == [1]  # the dog with zero width is gone, the cat stays
    assert path.read_text() == json.dumps(data)  # nothing on disk changed


def test_fatal_problems_are_refused_even_with_drop(tmp_path):
    path, img_dir = _write_set(tmp_path, categories=CATEGORIES + [{"id": 7, "name": "other"}])
    with pytest.raises(ValueError, match="cannot be dropped"):
        CocoDataset(path, img_dir, errors="drop")
    with pytest.raises(FileNotFoundError):
        CocoDataset(tmp_path / "nope.json", img_dir)


def test_results_accepted_by_loadres_and_crowd_aware_ap(tmp_path):
    from pycocotools.coco import COCO

    path, img_dir = _write_set(tmp_path)
    ds = CocoDataset(path, img_dir)
    sizes = [(48, 64), (56, 40), (50, 50)]
    # Perfect detections (normalized rows class, score, box) plus one on the crowd region.
    dets = [torch.tensor([[0, 0.9, 4 / 64, 6 / 48, 30 / 64, 40 / 48], [1, 0.8, 0.5, 0, 1, 20 / 48],
                          [2, 0.95, 1 / 64, 30 / 48, 11 / 64, 47 / 48], [-1, 0.5, 0, 0, 1, 1]]),
            torch.zeros((0, 6)),
            torch.tensor([[2, 0.7, 10.5 / 50, 10.25 / 50, 20.5 / 50, 40 / 50]])]
    results = coco_results(dets, ds.image_ids, sizes, ds.category_ids)
    assert len(results) == 4 and {r["category_id"] for r in results} == {3, 7, 12}
    assert results[0] == {"image_id": 10, "category_id": 3, "bbox": [4.0, 6.0, 26.0, 34.0], "score": 0.9}
    out = write_coco_results(tmp_path / "res.json", results)
    coco = COCO(str(path))
    dt = coco.loadRes(str(out))  # pycocotools accepts the file
    assert len(dt.anns) == 4
    ev = evaluate_coco(ds, results)
    # The detection on the crowd region is neither a true nor a false positive: AP stays 1.
    assert ev["AP"] == pytest.approx(1.0) and ev["AP50"] == pytest.approx(1.0)
    assert ev["per_class"] == {"dog": pytest.approx(1.0), "cat": pytest.approx(1.0), "bird": pytest.approx(1.0)}
    assert ev["num_images"] == 3
    # The same detection counted against a class without crowd would be a false positive above the others.
    worse = results + [{"image_id": 15, "category_id": 3, "bbox": [0, 0, 5, 5], "score": 0.99}]
    assert evaluate_coco(ds, worse)["per_class"]["dog"] < 1.0
    assert evaluate_coco(ds, [])["AP50"] == 0.0
    with pytest.raises(ValueError, match="image ids"):
        evaluate_coco(ds, [{"image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 1.0}])


def test_writer_is_atomic_and_rejects_nan(tmp_path):
    path, img_dir = _write_set(tmp_path)
    before = path.read_bytes()
    bad = [coco_annotation(1, 10, 3, (0, 0, 5, 5))]
    bad[0]["bbox"][0] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        write_coco(path, [{"id": 10, "file_name": "a.png", "width": 64, "height": 48}], bad, CATEGORIES)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(ValueError, match="lacks"):
        write_coco(path, [{"id": 1}], [], CATEGORIES)
    with pytest.raises(ValueError, match="xmax >= xmin"):
        coco_annotation(1, 1, 1, (5, 0, 4, 3))


def test_seeded_split_shares_classes_and_covers_everything(tmp_path):
    images = [(i, f"{i}.png", 20 + i, 24, [(3 if i % 2 else 7, (1, 1, 10, 12), 0)]) for i in range(1, 11)]
    path, img_dir = _write_set(tmp_path, images)
    ds = CocoDataset(path, img_dir)
    train, val = ds.split(3, seed=5, val_transforms=SSDEvalTransform(32))
    assert len(train) == 7 and len(val) == 3
    assert sorted(train.image_ids + val.image_ids) == ds.image_ids and not set(train.image_ids) & set(val.image_ids)
    assert train.classes == val.classes == ds.classes and train.transforms is None
    image, t = val[0]
    assert tuple(image.shape) == (3, 32, 32) and t["image_id"] == val.image_ids[0]
    assert train[2][1]["image_id"] == train.image_ids[2]
    assert val.split(1, seed=0)[1].image_ids == CocoDataset(path, img_dir).split(3, seed=5)[1].split(1, seed=0)[1].image_ids
    assert ds.split(3, seed=5)[1].image_ids == val.image_ids  # the same seed, the same split
    assert len(val.normalized_boxes()) == 3
    with pytest.raises(ValueError, match="num_val"):
        ds.split(10)


def test_optional_fields_missing_as_labelling_tools_write_them(tmp_path):
    path, img_dir = _write_set(tmp_path)
    data = json.loads(path.read_text())
    for a in data["annotations"]:
        if not a["iscrowd"]:
            del a["iscrowd"], a["area"], a["segmentation"]
    data["images"].append("not an image entry")
    data["annotations"].append({"image_id": 10, "category_id": 3, "bbox": [1, 1, 2, 2]})  # no id
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="bad_entry"):
        CocoDataset(path, img_dir)
    ds = CocoDataset(path, img_dir, errors="drop")
    assert ds.num_dropped == (1, 0) and len(ds) == 3
    assert ds[0][1]["labels"].tolist() == [0, 1] and ds[0][1]["crowd_labels"].tolist() == [2]
    dets = [torch.tensor([[0, 0.9, 4 / 64, 6 / 48, 30 / 64, 40 / 48], [1, 0.8, 0.5, 0, 1, 20 / 48]]),
            torch.zeros((0, 6)), torch.tensor([[2, 0.7, 10.5 / 50, 10.25 / 50, 20.5 / 50, 40 / 50]])]
    res = coco_results(dets, ds.image_ids, [(48, 64), (56, 40), (50, 50)], ds.category_ids)
    assert evaluate_coco(ds, res)["AP"] == pytest.approx(1.0)
