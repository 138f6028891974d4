"""ONNX export (d2lssd.export, `d2lssd export`): the graph is the detector's, checked on real photos.

One small detector is exported through the command line for each
post-processing (an untrained, seeded TinySSD with two classes, so per-class
NMS is exercised: at about 1/3 probability per class every anchor proposes a
box) and run with onnxruntime on generated banana validation images, batch 1
and batch 4, against the detector's own pipeline
(:func:`d2lssd.export.reference_detections`, the one place naming it). The
export check runs real photos through the consumer's path and must fail for a
graph with the wrong input convention or post-processing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

import d2lssd  # noqa: E402
import d2lssd.live  # noqa: E402
from d2lssd import cli  # noqa: E402
from d2lssd import export as E  # noqa: E402

TOP_K = 50
CLASSES = ["banana", "apple"]


def _detector(semantics="paper", **kw):
    torch.manual_seed(0)
    return d2lssd.Detector(d2lssd.TinySSD(num_classes=2).eval(), class_names=CLASSES,
                           postprocess=d2lssd.PostProcess(semantics=semantics), **kw)


@pytest.fixture(scope="module", params=["paper", "d2l"])
def exported(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    det = _detector(request.param)
    ckpt = det.save(tmp / "tiny.pt")
    out = tmp / "sub" / "tiny.onnx"
    assert cli.main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--top-k", str(TOP_K)]) == 0
    assert out.is_file()
    return det, out


@pytest.fixture(scope="module")
def val_images(tmp_path_factory):
    root = d2lssd.generate_bananas(tmp_path_factory.mktemp("bananas") / "banana-detection", 1, 4, seed=3)
    images, _ = d2lssd.read_data_bananas(False, root)
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 256, 256)
    return images


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("score_threshold, iou_threshold", [(0.3, 0.5), (0.36, 0.2)])
def test_onnxruntime_equals_the_detector(exported, val_images, batch, score_threshold, iou_threshold):
    det, path = exported
    x = val_images[:batch]
    got = E.onnx_detect(path, x, score_threshold, iou_threshold)
    expected = E.reference_detections(det, x, score_threshold, iou_threshold, TOP_K)
    r = E.compare_detections(expected, got, atol=1e-4)
    assert r["ok"], r["summary"]
    assert r["detections"] > 0
    assert {int(c) for e in expected for c in e[:, 0]} == {0, 1}  # both classes detected
    assert all(len(e) <= TOP_K for e in expected)


def test_each_post_processing_keeps_its_own_rules(exported, val_images):
    """Paper: boxes clipped to the image, scores strictly above the threshold; d2l: one class per box."""
    det, path = exported
    (rows,) = E.onnx_detect(path, val_images[:1], 0.3, 0.99)
    boxes = {tuple(np.round(r[2:], 5)) for r in rows}
    if det.postprocess.semantics == "paper":
        assert (rows[:, 2:] >= 0).all() and (rows[:, 2:] <= 1).all()  # clipped to the image
    else:
        assert len(boxes) == len(rows) and (rows[:, 2:] < 0).any()  # not clipped, one class per anchor


def test_padding_rows_and_fewer_than_k(exported, val_images):
    """A strict NMS leaves fewer than K detections; the rest is padding (class -1, score 0, box 0)."""
    _, path = exported
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    boxes, scores, classes, num = sess.run(None, {"images": val_images.numpy(),
                                                  "score_threshold": np.array(0.36, np.float32),
                                                  "iou_threshold": np.array(0.05, np.float32)})
    assert boxes.shape == (4, TOP_K, 4) and scores.shape == classes.shape == (4, TOP_K) and num.shape == (4,)
    assert (num < TOP_K).any() and (num > 0).all()
    for b, n in enumerate(num):
        assert (classes[b, n:] == -1).all() and (scores[b, n:] == 0).all() and (boxes[b, n:] == 0).all()
        assert (classes[b, :n] >= 0).all() and (np.diff(scores[b, :n]) <= 0).all()


def test_thresholds_are_inputs(exported, val_images):
    det, path = exported
    x = val_images[:1]
    loose = E.onnx_detect(path, x, 0.3, 0.5)[0]
    cut = float(loose[9, 1])  # the 10th best score
    strict = E.onnx_detect(path, x, cut, 0.5)[0]
    if det.postprocess.semantics == "paper":  # torchvision's rule: strictly above
        assert 9 <= len(strict) < len(loose) and (strict[:, 1] > cut).all()
    else:  # d2l's: at least
        assert 10 <= len(strict) < len(loose) and (strict[:, 1] >= cut).all()
    fewer = E.onnx_detect(path, x, 0.3, 0.1)[0]
    assert len(fewer) < len(loose)


def test_metadata_carries_the_detector(exported):
    det, path = exported
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta["class_names"]) == CLASSES
    assert json.loads(meta["input_size"]) == [256, 256]
    assert json.loads(meta["top_k"]) == TOP_K and json.loads(meta["pixel_scale"]) == 1.0
    assert json.loads(meta["detector"]) == det.spec and meta["architecture"] == "tinyssd"
    assert json.loads(meta["score_threshold"]) == 0.5 and json.loads(meta["iou_threshold"]) == 0.45
    assert meta["exif_orientation"] == "applied" and "antialias" in meta["resize"]
    assert [i.name for i in sess.get_inputs()] == list(E.INPUT_NAMES)
    assert [o.name for o in sess.get_outputs()] == list(E.OUTPUT_NAMES)
    assert sess.get_inputs()[0].type == "tensor(uint8)"
    assert sess.get_inputs()[0].shape[1:] == [3, 256, 256] and not isinstance(sess.get_inputs()[0].shape[0], int)


def test_nms_is_an_operator_and_anchors_constant(exported):
    import onnx

    _, path = exported
    m = onnx.load(str(path))
    ops = {n.op_type for n in m.graph.node}
    assert "NonMaxSuppression" in ops and "TopK" in ops
    sizes = [tuple(i.dims) for i in m.graph.initializer]
    assert (5444, 4) in sizes  # the anchors, centre form, a constant


def test_check_export_passes_on_real_photos(exported):
    det, path = exported
    r = E.check_export(path, det)
    assert r["ok"], r["summary"]
    assert r["images"] == 2 * len(d2lssd.PHOTOS) and r["detections"] > 0
    assert r["max_box_diff"] < 1.0 and r["max_score_diff"] < 1e-3


def test_check_export_fails_for_a_wrong_input_convention(tmp_path):
    """The bug this check exists for: a graph that scales the pixels otherwise than the detector."""
    right = _detector()
    wrong = d2lssd.Detector(right.net, class_names=CLASSES, pixel_scale=255)  # [0, 1] for a 0..255 network
    path = E.export_onnx(wrong, tmp_path / "wrong.onnx", check=False)
    r = E.check_export(path, right)
    assert not r["ok"] and r["matched"] < r["detections"] / 2, r["summary"]


def _shy_detector():
    """A detector confident about nothing: every class probability far under 0.05 (background wins)."""
    det = _detector()
    with torch.no_grad():
        for i in range(5):
            getattr(det.net, f"cls_{i}").bias[0::3] += 6.0   # (q + 1) = 3 logits per anchor, background first
    return det


def test_revealing_threshold_leaves_detections_away_from_every_score():
    det = _shy_detector()
    photos = E.check_photos()
    best = max(float(d[:, 1].max()) for d in det.detect(photos, score_threshold=0.0, top_k=TOP_K))
    assert best < 0.05   # the two fixed thresholds see nothing
    t = E.revealing_threshold(det, photos, iou_threshold=0.45, top_k=TOP_K, gap=1e-4)
    assert 0 < t < best
    scores = torch.cat([d[:, 1] for d in det.detect(photos, score_threshold=0.0, top_k=TOP_K)])
    assert (scores > t).sum() >= 1 and (scores - t).abs().min() >= 5e-5 - 1e-9


def test_check_export_fails_for_a_wrong_input_convention_of_a_shy_detector(tmp_path):
    """Found on the deployment chapter's banana detector: on photos of cats it scores under 0.05 everywhere,
    so at the detector's thresholds both sides were empty and a wrong input scale passed."""
    right = _shy_detector()
    wrong = d2lssd.Detector(right.net, class_names=CLASSES, pixel_scale=255)
    path = E.export_onnx(wrong, tmp_path / "wrong.onnx", check=False)
    r = E.check_export(path, right)
    assert not r["ok"] and r["detections"] > 0, r["summary"]
    assert E.check_export(E.export_onnx(right, tmp_path / "right.onnx", check=False), right)["ok"]


def test_check_export_fails_for_another_post_processing(tmp_path):
    right = _detector("paper")
    path = E.export_onnx(right.with_postprocess(semantics="d2l"), tmp_path / "d2l.onnx", check=False)
    r = E.check_export(path, right, score_thresholds=[0.05])
    assert not r["ok"] and r["unmatched_expected"] > 0, r["summary"]


def test_export_raises_when_its_own_check_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(E, "check_export", lambda *a, **k: {"ok": False, "summary": "0/3 detections matched"})
    with pytest.raises(ValueError, match="differs from the detector: 0/3"):
        E.export_onnx(_detector(), tmp_path / "m.onnx")


def test_compare_detections_finds_differences():
    a = [np.array([[0, 0.9, 0.1, 0.1, 0.5, 0.5], [1, 0.8, 0.2, 0.2, 0.6, 0.6]], np.float32)]
    assert E.compare_detections(a, [a[0][::-1].copy()])["ok"]  # order aside
    moved = a[0].copy()
    moved[1, 3] += 1e-3
    assert not E.compare_detections(a, [moved])["ok"]
    assert E.compare_detections(a, [moved], box_atol=2e-3)["ok"]  # boxes have their own tolerance
    other = a[0].copy()
    other[0, 0] = 1
    assert not E.compare_detections(a, [other])["ok"]
    assert not E.compare_detections(a, [a[0][:1]])["ok"]
    assert not E.compare_detections(a, a + a)["ok"]


def test_graph_arguments_checked():
    with pytest.raises(ValueError, match="d2lssd.Detector"):
        E.DetectionGraph(d2lssd.TinySSD(num_classes=1))
    with pytest.raises(ValueError, match="top_k"):
        E.DetectionGraph(_detector(), top_k=0)
    with pytest.raises(ValueError, match="not a registered model"):
        E.as_detector(torch.nn.Linear(2, 2))


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli.COMMANDS["export"][0] == "d2lssd.commands.export"
    assert cli.main(["export", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("d2lssd export: error: no checkpoint at") and err.count("\n") == 1
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": 1}, foreign)
    assert cli.main(["export", "--checkpoint", str(foreign), "--out", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert "not a d2lssd checkpoint" in err and err.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()


def test_train_ssd_checkpoint_end_to_end(tmp_path, val_images):
    """The chapters' trainer: train, save, load, detect, export, onnxruntime on a real photo = detect."""
    from _helpers import batches, new_net, quiet, synthetic

    X, Y = synthetic(8)
    d2lssd.train_ssd(new_net(), batches(X * 255, Y), num_epochs=1, checkpoint_path=tmp_path / "c.pt",
                     **quiet())  # 0..255: TinySSD's input convention in the registry
    det = d2lssd.load_detector(tmp_path / "c.pt", "cpu")
    assert det.model == "tinyssd" and det.pixel_scale == 1.0 and det.input_size == (256, 256)
    path = E.export_onnx(det, tmp_path / "c.onnx", check=False)
    photo = d2lssd.export.check_photos()[1]  # chelsea, 451 x 300: not the input size
    for st in (det.postprocess.score_threshold, 0.05):
        ref = det.detect(photo, score_threshold=st)
        got = E.consumer_detect(path, [photo], st)[0]
        r = E.compare_detections([ref.numpy()], [got], atol=1e-3, box_atol=1.0)
        assert r["ok"], r["summary"]
    assert r["detections"] > 0


def test_live_detector_page(val_images):
    """The HTML carries the model (gzip, base64), the images and the detector's detections in pixels."""
    import base64
    import gzip
    import re

    torch.manual_seed(0)
    det = d2lssd.Detector(d2lssd.TinySSD(num_classes=1).eval(), class_names=["banana"])
    live = d2lssd.live.live_detector(det, val_images[:2], score_threshold=0.5, iou_threshold=0.5, top_k=10,
                                     extra_settings=[(0.55, 0.3)])
    assert live.check["ok"] and live.check["detections"] > 0, live.check["summary"]
    model_b64 = re.search(r'class="d2lssd-live-model">([^<]+)<', live.html).group(1)
    sess = ort.InferenceSession(gzip.decompress(base64.b64decode(model_b64)), providers=["CPUExecutionProvider"])
    data = json.loads(re.search(r'class="d2lssd-live-data">([^<]+)<', live.html).group(1).replace("<\\/", "</"))
    assert len(data["images"]) == 2 and data["input_size"] == [256, 256] and data["class_names"] == ["banana"]
    for setting in data["expected"]:
        ref = E.reference_detections(det, val_images[:1], setting["score_threshold"], setting["iou_threshold"], 10)[0]
        rows = np.array(setting["detections"], dtype=np.float64).reshape(-1, 6)
        assert np.allclose(rows[:, 2:], ref[:, 2:] * 256, atol=1e-3) and np.allclose(rows[:, 1], ref[:, 1], atol=1e-4)
        got = E.onnx_detect(sess, val_images[:1], setting["score_threshold"], setting["iou_threshold"])
        assert E.compare_detections([ref], got)["ok"]
    with pytest.raises(ValueError, match="multiples of 0.05"):
        d2lssd.live.live_detector(det, val_images[:1], score_threshold=0.33)
    with pytest.raises(ValueError, match="uint8"):
        d2lssd.live.live_detector(det, val_images[:1].float())
