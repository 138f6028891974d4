"""The Penn-Fudan trainer, inference, evaluation and command line (d2lssd.pennfudan, d2lssd.pennfudan_cli).

Kept fast for a 2-core CI machine: a 6-image generated data set, 257x257
inputs (the model's smallest), one optimizer step per epoch, a random
backbone (no download).
"""

import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

import d2lssd
import d2lssd.export
import d2lssd.pennfudan_cli
from d2lssd import pennfudan as pf

ROOT = Path(__file__).resolve().parents[1]

TINY = ["--val-split", "2", "--num-train", "2", "--num-val", "1", "--batch-size", "2", "--size", "257",
        "--no-pretrained", "--device", "cpu", "--no-progress", "--seed", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return d2lssd.generate_pennfudan(tmp_path_factory.mktemp("pf") / "PennFudanPed", 6, seed=0)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """One epoch (one step of 2 images), then resumed for a second epoch."""
    out = tmp_path_factory.mktemp("run")
    ckpt = out / "run.pt"
    assert pf.main(["train", "--data", str(data), "--epochs", "1", "--checkpoint", str(ckpt), *TINY]) == 0
    first = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert pf.main(["train", "--data", str(data), "--epochs", "2", "--checkpoint", str(ckpt), "--resume",
                    *TINY]) == 0
    return ckpt, first


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


# --------------------------------------------------------------------------- argument errors


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        pf.main(["train", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--device", "--epochs", "--batch-size", "--workers", "--data", "--source", "--checkpoint",
                "--resume", "--seed", "--schedule", "--no-progress", "--bn", "--val-split"):
        assert opt in text, opt
    for cmd, opts in (("evaluate", ("--checkpoint", "--json", "--data")),
                      ("predict", ("--checkpoint", "--out", "--score-threshold", "--top-k", "images"))):
        with pytest.raises(SystemExit):
            pf.main([cmd, "--help"])
        text = capsys.readouterr().out
        assert all(o in text for o in opts), cmd


@pytest.mark.parametrize("argv", [
    [],                                            # no command
    ["fly"],                                       # unknown command
    ["train", "--epochs", "-1"],                   # negative
    ["train", "--batch-size", "zero"],             # not an integer
    ["train", "--schedule", "weekly"],             # unknown choice
    ["train", "--device", "tpu9"],                 # unknown device
    ["predict", "--checkpoint", "x.pt"],           # no image
    ["predict", "a.png", "--checkpoint", "x.pt", "--score-threshold", "2"],
])
def test_bad_arguments_give_one_line_and_exit_code_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        pf.main(argv)
    assert e.value.code == 2
    assert "error:" in _one_line_error(capsys)


def test_missing_files_give_one_line_and_exit_code_1(tmp_path, capsys, data):
    assert pf.main(["evaluate", "--checkpoint", str(tmp_path / "none.pt")]) == 1
    assert "no checkpoint at" in _one_line_error(capsys)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert pf.main(["evaluate", "--checkpoint", str(bad)]) == 1
    assert "cannot read checkpoint" in _one_line_error(capsys)
    assert pf.main(["predict", str(tmp_path / "nope.png"), "--checkpoint", str(bad)]) == 1
    assert "no image file" in _one_line_error(capsys)
    assert pf.main(["train", "--resume", *TINY]) == 1
    assert "--resume needs --checkpoint" in _one_line_error(capsys)
    assert pf.main(["train", "--data", str(data), "--source", "real", *TINY]) == 1
    assert "holds generated data" in _one_line_error(capsys)
    assert pf.main(["train", "--data", str(data), *TINY, "--batch-size", "1", "--epochs", "0"]) == 1
    assert "needs --bn frozen" in _one_line_error(capsys)


def test_module_entry_point_runs_as_a_process():
    r = subprocess.run([sys.executable, "-m", "d2lssd.pennfudan", "evaluate"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "d2lssd-pennfudan evaluate: error: the following arguments are required: --checkpoint (see --help)"]
    # the console script names the command line's main, which d2lssd.pennfudan.main still is
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["d2lssd-pennfudan"].partition(":")
    assert getattr(importlib.import_module(module), attr) is pf.main is d2lssd.pennfudan_cli.main


def test_moved_names_are_still_reachable_where_they_were():
    assert pf.build_parser is d2lssd.pennfudan_cli.build_parser
    assert pf.scale_boxes_to_pixels is d2lssd.boxes.scale_boxes_to_pixels is d2lssd.scale_boxes_to_pixels
    assert pf.draw_detections is d2lssd.photos.draw_detections
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pf.nope


def test_config_rejects_bad_values():
    assert pf.make_config("cpu")["size"] == 300
    assert pf.make_config("full")["epochs"] > pf.make_config("cpu")["epochs"]
    for bad in (dict(size=200), dict(bn="sync"), dict(lr=-1.0), dict(batch_size=0), dict(colour="red")):
        with pytest.raises(ValueError):
            pf.make_config("cpu", **bad)
    with pytest.raises(ValueError, match="schedule"):
        pf.make_config("weekly")


# --------------------------------------------------------------------------- scale-back


def test_scale_boxes_to_pixels_known_value():
    d = torch.tensor([[0.0, 0.9, 0.1, 0.2, 0.5, 1.0], [0.0, 0.6, -0.1, 0.5, 1.2, 0.75]])
    out = pf.scale_boxes_to_pixels(d, width=400, height=300)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.9, 40.0, 60.0, 200.0, 300.0],
                                                  [0.0, 0.6, 0.0, 150.0, 400.0, 225.0]]))
    unclipped = pf.scale_boxes_to_pixels(d, 400, 300, clip=False)
    assert unclipped[1, 2] == pytest.approx(-40.0) and unclipped[1, 4] == pytest.approx(480.0)
    with pytest.raises(ValueError):
        pf.scale_boxes_to_pixels(d[:, :5], 400, 300)
    with pytest.raises(ValueError):
        pf.scale_boxes_to_pixels(d, 0, 300)


# --------------------------------------------------------------------------- train, resume, evaluate, predict


def test_train_writes_checkpoints_and_resumes(trained, capsys):
    ckpt, first = trained
    last = torch.load(ckpt, map_location="cpu", weights_only=True)
    best = torch.load(pf.best_path(ckpt), map_location="cpu", weights_only=True)
    assert first["epoch"] == 1 and last["epoch"] == 2 and best["epoch"] in (1, 2)
    recs = last["history"]["records"]
    assert [r["epoch"] for r in recs] == [1, 2]
    assert recs[0] == first["history"]["records"][0]  # the resumed run kept the first epoch
    assert all(0.0 <= r["val_AP50"] <= 1.0 and 0.0 <= r["val_AP"] <= r["val_AP50"] for r in recs)
    best_ap = max(r["val_AP50"] for r in recs)
    assert best["history"]["records"][-1]["val_AP50"] == best_ap
    assert last["pennfudan_config"]["size"] == 257 and last["data_kind"] == "generated"
    assert not torch.equal(first["model"]["cls_heads.0.weight"], last["model"]["cls_heads.0.weight"])
    assert last["lr_scheduler"]["last_epoch"] == 2  # one step per epoch, schedule resumed
    assert list(ckpt.parent.glob(".*tmp")) == []  # atomic writes left no temporary file


def test_train_prints_data_and_device(data, tmp_path, capsys):
    assert pf.main(["train", "--data", str(data), "--epochs", "0", *TINY]) == 0
    out = capsys.readouterr().out
    assert "data: generated" in out and "device: cpu" in out


def test_evaluate_reports_ap_and_pr_curve(trained, data, tmp_path, capsys):
    ckpt, _ = trained
    js = tmp_path / "eval.json"
    assert pf.main(["evaluate", "--checkpoint", str(ckpt), "--data", str(data), "--val-split", "2",
                    "--json", str(js), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "data: generated" in out and "AP50" in out and "COCO AP" in out
    r = json.loads(js.read_text())
    assert r["num_images"] == 2 and r["num_targets"] >= 2 and r["data"] == "generated"
    assert 0.0 <= r["AP"] <= r["AP50"] <= 1.0
    assert len(r["recall"]) == len(r["pr_curve"]) == 101


def test_predict_writes_images_and_json_in_original_pixels(trained, tmp_path, capsys):
    ckpt, _ = trained
    from PIL import Image

    img = tmp_path / "street.png"
    Image.fromarray(torch.randint(0, 256, (310, 450, 3), dtype=torch.uint8).numpy()).save(img)
    out = tmp_path / "preds"
    assert pf.main(["predict", str(img), "--checkpoint", str(ckpt), "--out", str(out), "--device", "cpu",
                    "--score-threshold", "0", "--top-k", "5"]) == 0
    r = json.loads((out / "detections.json").read_text())
    (rec,) = r["images"]
    assert (rec["width"], rec["height"]) == (450, 310)
    assert len(rec["detections"]) == 5  # top-k of the (untrained) model's low-scoring boxes
    for d in rec["detections"]:
        x0, y0, x1, y1 = d["box_pixels"]
        assert 0 <= x0 <= x1 <= 450 and 0 <= y0 <= y1 <= 310
    # the same detections by hand: resize to 257, predict (normalized), times the original size
    from d2lssd.transforms import SSDEvalTransform

    net, cfg = pf.load_model(ckpt, "cpu")
    with Image.open(img) as im:
        x = torch.from_numpy(__import__("numpy").asarray(im.convert("RGB")).copy()).permute(2, 0, 1)
    norm = d2lssd.predict(net, SSDEvalTransform(257)(x).as_subclass(torch.Tensor)[None], nms_threshold=0.45,
                          score_threshold=0.0, semantics="paper")[0][:5]
    expected = torch.minimum(norm[:, 2:].clamp(min=0) * torch.tensor([450.0, 310, 450, 310]),
                             torch.tensor([450.0, 310, 450, 310]))
    got = torch.tensor([d["box_pixels"] for d in rec["detections"]])
    torch.testing.assert_close(got, expected, atol=0.01, rtol=0)
    assert (got[:, 2] > 257).any() or (got[:, 0] > 0).any()  # scaled, not normalized
    with Image.open(out / "street.boxes.png") as im:
        assert im.size == (450, 310)


def test_cached_checkpoint_names_the_run_by_its_settings(data, tmp_path):
    cfg = pf.make_config("cpu", data=str(data), pretrained=False)
    path = pf.cached_checkpoint(cfg, "cpu", tmp_path)
    assert path.parent == tmp_path and path.name.startswith("pennfudan-cpu-") and path.suffix == ".pt"
    assert pf.cached_checkpoint(dict(cfg), "cpu", tmp_path) == path
    assert pf.cached_checkpoint(dict(cfg, workers=2), "cpu", tmp_path) == path  # workers do not change weights
    assert pf.cached_checkpoint(dict(cfg, epochs=cfg["epochs"] + 1), "cpu", tmp_path) != path
    assert pf.cached_checkpoint(dict(cfg, seed=1), "cpu", tmp_path) != path
    assert pf.cached_checkpoint(cfg, "meta", tmp_path) != path  # another device type
    assert pf.best_path(path).name == path.stem + ".best.pt"


def test_pennfudan_checkpoint_end_to_end(trained, tmp_path):
    """The Penn-Fudan trainer's checkpoint is a detector: load, detect, export, onnxruntime on real photos = detect."""
    pytest.importorskip("onnxruntime")
    from d2lssd.export import check_export, export_onnx

    ckpt, _ = trained
    det = d2lssd.load_detector(pf.best_path(ckpt), "cpu")
    assert det.model == "resnet34" and det.class_names == ["pedestrian"] and det.pixel_scale == 255.0
    assert det.input_size == (257, 257) and det.postprocess.top_k == 20 and det.postprocess.semantics == "paper"
    net, cfg = pf.load_model(pf.best_path(ckpt), "cpu")
    photos = d2lssd.export.check_photos()
    for a, b in zip(pf.detect(net, photos, cfg), det.detect(photos)):
        torch.testing.assert_close(a, b)
    # One step from a random backbone saturates the softmax (every score 1.0), and a tie of hundreds of scores
    # has no order to compare; shrinking the class head keeps the checkpoint's spec, backbone and boxes.
    with torch.no_grad():
        for head in det.net.cls_heads:
            head.weight.mul_(1e-3)
            head.bias.mul_(1e-3)
    path = export_onnx(det, tmp_path / "pf.onnx", check=False)
    r = check_export(path, det, score_thresholds=[0.3])
    assert r["ok"] and r["detections"] > 0, r["summary"]
