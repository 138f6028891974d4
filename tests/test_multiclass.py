"""Nothing assumes one class: targets, loss, per-class NMS and AP on 2-3 classes; the generated 2-class data."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

import d2lssd
from d2lssd.data import CocoDataset, collate_ssd, generate_multiclass_coco
from d2lssd.transforms import SSDEvalTransform


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return generate_multiclass_coco(tmp_path_factory.mktemp("mc") / "data", num_train=24, num_val=6, seed=1)


# --------------------------------------------------------------------------- the generated data


def test_generated_data_is_deterministic_two_class_with_negatives(generated, tmp_path):
    again = generate_multiclass_coco(tmp_path / "again", num_train=24, num_val=6, seed=1)
    for name in ("train.json", "val.json"):
        assert (generated / name).read_bytes() == (again / name).read_bytes()
    files = sorted(p.name for p in (generated / "images").iterdir())
    assert len(files) == 30 and files == sorted(p.name for p in (again / "images").iterdir())
    assert all((generated / "images" / f).read_bytes() == (again / "images" / f).read_bytes() for f in files)
    other = generate_multiclass_coco(tmp_path / "other", num_train=24, num_val=6, seed=2)
    assert (other / "train.json").read_bytes() != (generated / "train.json").read_bytes()

    data = json.loads((generated / "train.json").read_text())
    assert [c["id"] for c in data["categories"]] == [2, 5]  # non-contiguous on purpose
    with_objects = {a["image_id"] for a in data["annotations"]}
    assert {a["category_id"] for a in data["annotations"]} == {2, 5}
    assert 0 < len(data["images"]) - len(with_objects) < len(data["images"]) / 2  # some negatives
    sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        W, H = sizes[a["image_id"]]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= W and y + h <= H
    ds = CocoDataset(generated / "train.json", generated / "images")
    assert ds.classes == ("banana", "person") and ds.category_ids == (2, 5) and ds.report.ok
    # Generated once, then reused; other settings in the same folder are refused.
    assert generate_multiclass_coco(generated, num_train=24, num_val=6, seed=1) == generated
    with pytest.raises(FileExistsError):
        generate_multiclass_coco(generated, num_train=10, num_val=6, seed=1)


def test_pipeline_gives_every_object_a_positive_of_its_class(generated):
    ds = CocoDataset(generated / "train.json", generated / "images", transforms=SSDEvalTransform(256))
    images, labels = collate_ssd([ds[i] for i in range(len(ds))])
    net = d2lssd.TinySSD(num_classes=ds.num_classes).eval()
    with torch.no_grad():
        anchors, cls_preds, bbox_preds = net(images)
    assert cls_preds.shape[-1] == 3
    offsets, mask, cls_labels = d2lssd.multibox_target(anchors, labels)
    assert set(cls_labels.unique().tolist()) == {0, 1, 2}
    iou = d2lssd.box_iou(labels[..., 1:], anchors[0].expand(len(labels), -1, -1))  # (B, G, A)
    for b in range(len(labels)):
        for g in range(labels.shape[1]):
            c = int(labels[b, g, 0])
            if c < 0:
                continue
            best = int(iou[b, g].argmax())  # every ground truth keeps its best anchor, with its class
            assert cls_labels[b, best] == c + 1
    loss = d2lssd.multibox_loss(cls_preds, cls_labels, bbox_preds, offsets, mask)
    assert loss.shape == (len(labels),) and torch.isfinite(loss).all()


# --------------------------------------------------------------------------- targets and loss


def test_multibox_target_three_classes():
    gt = torch.tensor([[0.1, 0.1, 0.3, 0.4], [0.5, 0.5, 0.9, 0.8], [0.05, 0.6, 0.4, 0.95]])
    far = torch.tensor([[0.0, 0.0, 0.02, 0.02], [0.97, 0.0, 1.0, 0.03]])
    anchors = torch.cat((gt, far))[None]
    labels = torch.tensor([[[2, *gt[0]], [0, *gt[1]], [-1, 0, 0, 0, 0], [1, *gt[2]]],
                           [[1, *gt[1]], [-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]]])
    offsets, mask, cls = d2lssd.multibox_target(anchors, labels)
    assert cls.tolist() == [[3, 1, 2, 0, 0], [0, 2, 0, 0, 0]]
    assert mask.reshape(2, 5, 4)[:, :, 0].tolist() == [[1, 1, 1, 0, 0], [0, 1, 0, 0, 0]]
    assert torch.allclose(offsets, torch.zeros_like(offsets), atol=1e-5)  # exact anchors: zero offsets


def _hand_hard_negative_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks, ratio=3, min_neg=3):
    """The SSD loss written out image by image with Python loops (an independent reference)."""
    B, A, _ = cls_preds.shape
    total, n_pos = [], 0
    for b in range(B):
        ce = [float(F.cross_entropy(cls_preds[b, a][None], cls_labels[b, a][None])) for a in range(A)]
        pos = [a for a in range(A) if cls_labels[b, a] > 0]
        neg = sorted((a for a in range(A) if cls_labels[b, a] == 0), key=lambda a: (-ce[a], a))
        k = max(int(math.floor(ratio * len(pos))), min_neg)
        conf = sum(ce[a] for a in pos) + sum(ce[a] for a in neg[:k])
        d = ((bbox_preds[b] - bbox_labels[b]) * bbox_masks[b]).abs()
        loc = float(torch.where(d < 1, 0.5 * d ** 2, d - 0.5).sum())
        total.append(conf + loc)
        n_pos += len(pos)
    return torch.tensor(total) * B / max(n_pos, 1)


def test_multibox_loss_three_classes_matches_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    B, A, q = 3, 40, 3
    cls_preds = torch.randn(B, A, q + 1, generator=g)
    cls_labels = torch.zeros(B, A, dtype=torch.long)
    cls_labels[0, :5] = torch.tensor([1, 2, 3, 3, 1])
    cls_labels[1, 10:12] = torch.tensor([2, 3])  # image 2 has no object
    bbox_preds = torch.randn(B, A * 4, generator=g)
    bbox_masks = (cls_labels > 0).float().repeat_interleave(4, dim=1)
    bbox_labels = torch.randn(B, A * 4, generator=g) * bbox_masks
    ours = d2lssd.multibox_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
    ref = _hand_hard_negative_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    # Renaming the foreground classes (permuting logits and labels alike) changes nothing.
    perm = torch.tensor([0, 3, 1, 2])
    inv = torch.argsort(perm)
    renamed = d2lssd.multibox_loss(cls_preds[..., perm], inv[cls_labels], bbox_preds, bbox_labels, bbox_masks)
    torch.testing.assert_close(renamed, ours)


# --------------------------------------------------------------------------- NMS


def test_batched_nms_three_classes_equals_torchvision():
    import torchvision

    g = torch.Generator().manual_seed(3)
    n = 300
    xy = torch.rand(n, 2, generator=g) * 0.8
    wh = 0.05 + torch.rand(n, 2, generator=g) * 0.2
    boxes = torch.cat((xy, xy + wh), dim=1)
    scores = torch.rand(n, generator=g)
    idxs = torch.randint(0, 3, (n,), generator=g)
    for t in (0.3, 0.5, 0.7):
        assert torch.equal(d2lssd.batched_nms(boxes, scores, idxs, t),
                           torchvision.ops.batched_nms(boxes, scores, idxs, t))


def test_multibox_detection_is_per_class():
    anchors = torch.tensor([[[0.1, 0.1, 0.5, 0.5], [0.1, 0.1, 0.5, 0.52], [0.12, 0.1, 0.5, 0.5]]])
    # Anchor 0: class 1 (0.8); anchor 1: class 2 (0.7), overlapping anchor 0; anchor 2: class 1 (0.6).
    probs = torch.tensor([[[0.1, 0.2, 0.3], [0.8, 0.1, 0.6], [0.1, 0.7, 0.1]]])  # (B, q + 1, A), q = 2
    out = d2lssd.multibox_detection(probs, torch.zeros(1, 12), anchors, nms_threshold=0.5)
    kept = out[0][out[0, :, 0] >= 0]
    assert kept[:, 0].tolist() == [0, 1] and kept[:, 1].tolist() == pytest.approx([0.8, 0.7])
    agnostic = d2lssd.multibox_detection(probs, torch.zeros(1, 12), anchors, nms_threshold=0.5,
                                         class_agnostic=True)
    assert (agnostic[0, :, 0] >= 0).sum() == 1


# --------------------------------------------------------------------------- AP


def _random_detections(seed=0, n_images=12):
    g = torch.Generator().manual_seed(seed)
    dets, gts = [], []
    for i in range(n_images):
        k = int(torch.randint(0, 4, (1,), generator=g))
        xy = torch.rand(k, 2, generator=g) * 0.6
        wh = 0.1 + torch.rand(k, 2, generator=g) * 0.3
        cls = torch.randint(0, 2, (k,), generator=g).float()  # ground truth of classes 0 and 1 only
        boxes = torch.cat((xy, xy + wh), dim=1)
        gts.append(torch.cat((cls[:, None], boxes), dim=1))
        jitter = boxes + 0.04 * torch.randn(k, 4, generator=g)
        jitter = torch.cat((jitter[:, :2], torch.maximum(jitter[:, 2:], jitter[:, :2] + 0.01)), dim=1)
        det_cls = torch.where(torch.rand(k, generator=g) < 0.15, 1 - cls, cls)  # some confusions
        m = int(torch.randint(0, 3, (1,), generator=g))  # false positives, class 2 has no ground truth
        fxy = torch.rand(m, 2, generator=g) * 0.7
        fp = torch.cat((fxy, fxy + 0.1 + 0.2 * torch.rand(m, 2, generator=g)), dim=1)
        rows = torch.cat((torch.cat((det_cls[:, None], torch.rand(k, 1, generator=g), jitter), dim=1),
                          torch.cat((torch.randint(0, 3, (m, 1), generator=g).float(),
                                     torch.rand(m, 1, generator=g) * 0.5, fp), dim=1)))
        dets.append(rows)
    return dets, gts


def _pycocotools_ap(dets, gts):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": i + 1, "width": 1, "height": 1, "file_name": f"{i}.jpg"} for i in range(len(gts))]
    anns = []
    for i, g in enumerate(gts):
        for r in g.tolist():
            w, h = r[3] - r[1], r[4] - r[2]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(r[0]) + 1, "iscrowd": 0,
                         "bbox": [r[1], r[2], w, h], "area": w * h})
    results = [{"image_id": i + 1, "category_id": int(r[0]) + 1, "score": float(r[1]),
                "bbox": [float(r[2]), float(r[3]), float(r[4] - r[2]), float(r[5] - r[3])]}
               for i, d in enumerate(dets) for r in d]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns,
                      "categories": [{"id": c + 1, "name": str(c)} for c in range(3)]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][0, :, :, 0, -1]  # IoU 0.5, (R, K)
    per_class = {k: float(prec[:, k][prec[:, k] > -1].mean()) if (prec[:, k] > -1).any() else math.nan
                 for k in range(3)}
    return float(ev.stats[0]), float(ev.stats[1]), per_class


def test_mean_average_precision_per_class_equals_pycocotools():
    dets, gts = _random_detections()
    assert {int(c) for g in gts for c in g[:, 0]} == {0, 1}
    assert 2 in {int(c) for d in dets for c in d[:, 0]}  # a class with detections but no ground truth
    ours = d2lssd.mean_average_precision(dets, gts)
    ap, ap50, per_class = _pycocotools_ap(dets, gts)
    assert ours["AP"] == pytest.approx(ap, abs=1e-6)
    assert ours["AP50"] == pytest.approx(ap50, abs=1e-6)
    for c in (0, 1):
        assert ours["AP50_per_class"][c] == pytest.approx(per_class[c], abs=1e-6)
    # Averaged over the classes with ground truth only (class 2 would pull it down).
    assert ours["AP50"] == pytest.approx((per_class[0] + per_class[1]) / 2, abs=1e-6)
    assert math.isnan(ours["AP50_per_class"][2])
    assert 0.2 < ours["AP50"] < 1.0  # the test data is neither trivial nor hopeless


def test_predict_and_evaluate_ap_with_two_classes(generated):
    ds = CocoDataset(generated / "val.json", generated / "images", transforms=SSDEvalTransform(128))
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate_ssd)
    torch.manual_seed(0)
    net = d2lssd.TinySSD(num_classes=2)
    res = d2lssd.evaluate_ap(net, loader, score_threshold=0.0, top_k=50)
    assert res["num_images"] == len(ds)
    assert {0, 1} <= set(res["classes"]) <= {0, 1}  # both classes predicted and evaluated, nothing else
    assert all(0 <= d[:, 0].min() and d[:, 0].max() <= 1 for d in res["detections"] if len(d))
