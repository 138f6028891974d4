"""ONNX export (d2lssd.export, `d2lssd export`): onnxruntime gives predict's detections.

One small model is exported once (an untrained, seeded TinySSD with two
classes, so per-class NMS is exercised: at about 1/3 probability per class
every anchor proposes a box) through the command line, and run with
onnxruntime on generated banana validation images, batch 1 and batch 4,
against :func:`d2lssd.predict` (through :func:`d2lssd.export.reference_detections`,
the one place naming the reference).
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
from d2lssd import cli  # noqa: E402
from d2lssd import export as E  # noqa: E402

TOP_K = 50
CLASSES = ["banana", "apple"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    net = d2lssd.TinySSD(num_classes=2).eval()
    ckpt = tmp / "tiny.pt"
    d2lssd.save_checkpoint(ckpt, net, None, 0)
    out = tmp / "sub" / "tiny.onnx"
    rc = cli.main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--classes", ",".join(CLASSES),
                   "--top-k", str(TOP_K), "--no-check"])
    assert rc == 0 and out.is_file()
    return net, out


@pytest.fixture(scope="module")
def val_images(tmp_path_factory):
    root = d2lssd.generate_bananas(tmp_path_factory.mktemp("bananas") / "banana-detection", 1, 4, seed=3)
    images, _ = d2lssd.read_data_bananas(False, root)
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 256, 256)
    return images


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("score_threshold, iou_threshold", [(0.3, 0.5), (0.36, 0.2)])
def test_onnxruntime_equals_predict(exported, val_images, batch, score_threshold, iou_threshold):
    net, path = exported
    x = val_images[:batch]
    got = E.onnx_detect(path, x, score_threshold, iou_threshold)
    expected = E.reference_detections(net, x, 1.0, score_threshold, iou_threshold, TOP_K)
    r = E.compare_detections(expected, got, atol=1e-4)
    assert r["ok"], r["summary"]
    assert r["detections"] > 0
    assert {int(c) for e in expected for c in e[:, 0]} == {0, 1}  # both classes detected
    assert all(len(e) <= TOP_K for e in expected)


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
    _, path = exported
    x = val_images[:1]
    loose = E.onnx_detect(path, x, 0.3, 0.5)[0]
    cut = float(loose[9, 1])  # the 10th best score
    strict = E.onnx_detect(path, x, cut, 0.5)[0]
    assert 10 <= len(strict) < len(loose) and (strict[:, 1] >= cut).all()
    fewer = E.onnx_detect(path, x, 0.3, 0.1)[0]
    assert len(fewer) < len(loose)


def test_metadata(exported):
    _, path = exported
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta["class_names"]) == CLASSES
    assert json.loads(meta["input_size"]) == [256, 256]
    assert json.loads(meta["top_k"]) == TOP_K and json.loads(meta["pixel_scale"]) == 1.0
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


def test_compare_detections_finds_differences():
    a = [np.array([[0, 0.9, 0.1, 0.1, 0.5, 0.5], [1, 0.8, 0.2, 0.2, 0.6, 0.6]], np.float32)]
    assert E.compare_detections(a, [a[0][::-1].copy()])["ok"]  # order aside
    moved = a[0].copy()
    moved[1, 3] += 1e-3
    assert not E.compare_detections(a, [moved])["ok"]
    other = a[0].copy()
    other[0, 0] = 1
    assert not E.compare_detections(a, [other])["ok"]
    assert not E.compare_detections(a, [a[0][:1]])["ok"]
    assert not E.compare_detections(a, a + a)["ok"]


def test_graph_arguments_checked():
    net = d2lssd.TinySSD(num_classes=1)
    with pytest.raises(ValueError, match="input_size"):
        E.DetectionGraph(net, (0, 256))
    with pytest.raises(ValueError, match="pixel_scale"):
        E.DetectionGraph(net, 256, pixel_scale=2)
    with pytest.raises(ValueError, match="top_k"):
        E.DetectionGraph(net, 256, top_k=0)


def test_moved_names_are_still_reachable_from_d2lssd_export():
    import d2lssd.commands.export
    import d2lssd.live

    assert E.live_detector is d2lssd.live.live_detector and E.LiveDetector is d2lssd.live.LiveDetector
    assert E.add_arguments is d2lssd.commands.export.add_arguments and E.run is d2lssd.commands.export.run
    assert cli.COMMANDS["export"][0] == "d2lssd.commands.export"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        E.nope


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["export", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("d2lssd export: error: no checkpoint at") and err.count("\n") == 1
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": 1}, foreign)
    assert cli.main(["export", "--checkpoint", str(foreign), "--out", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert "not a d2lssd checkpoint" in err and err.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()


def test_live_detector_page(val_images):
    """The HTML carries the model (gzip, base64), the images and predict's detections in pixels."""
    import base64
    import gzip
    import re

    torch.manual_seed(0)
    net = d2lssd.TinySSD(num_classes=1).eval()
    live = E.live_detector(net, val_images[:2], score_threshold=0.5, iou_threshold=0.5, top_k=10,
                           extra_settings=[(0.55, 0.3)])
    assert live.check["ok"] and live.check["detections"] > 0, live.check["summary"]
    model_b64 = re.search(r'class="d2lssd-live-model">([^<]+)<', live.html).group(1)
    sess = ort.InferenceSession(gzip.decompress(base64.b64decode(model_b64)), providers=["CPUExecutionProvider"])
    data = json.loads(re.search(r'class="d2lssd-live-data">([^<]+)<', live.html).group(1).replace("<\\/", "</"))
    assert len(data["images"]) == 2 and data["input_size"] == [256, 256] and data["class_names"] == ["banana"]
    for setting in data["expected"]:
        ref = E.reference_detections(net, val_images[:1], 1.0, setting["score_threshold"],
                                     setting["iou_threshold"], 10)[0]
        rows = np.array(setting["detections"], dtype=np.float64).reshape(-1, 6)
        assert np.allclose(rows[:, 2:], ref[:, 2:] * 256, atol=1e-3) and np.allclose(rows[:, 1], ref[:, 1], atol=1e-4)
        got = E.onnx_detect(sess, val_images[:1], setting["score_threshold"], setting["iou_threshold"])
        assert E.compare_detections([ref], got)["ok"]
    with pytest.raises(ValueError, match="multiples of 0.05"):
        E.live_detector(net, val_images[:1], score_threshold=0.33)
    with pytest.raises(ValueError, match="uint8"):
        E.live_detector(net, val_images[:1].float())
