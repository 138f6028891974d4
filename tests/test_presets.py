"""Presets of the one trainer (d2lssd.presets) and the Penn-Fudan project as one of them (d2lssd.pennfudan).

Kept fast for a 2-core CI machine: a 6-image generated Penn-Fudan set, 257x257
inputs (the ResNet-34 SSD's smallest), one optimizer step per epoch, a random
backbone (no download).
"""

import json
from pathlib import Path

import pytest
import torch

import d2lssd
import d2lssd.export
from d2lssd import pennfudan as pf
from d2lssd.cli import main
from d2lssd.engine import best_path, read_checkpoint
from d2lssd.presets import PRESETS, pick_schedule, preset_config, preset_settings

TINY = ["--val-split", "2", "--num-train", "2", "--num-val", "1", "--batch-size", "2", "--size", "257",
        "--no-pretrained", "--device", "cpu", "--no-progress", "--seed", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return d2lssd.generate_pennfudan(tmp_path_factory.mktemp("pf") / "PennFudanPed", 6, seed=0)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """``d2lssd train --preset pennfudan``: one epoch (one step of 2 images), then resumed for a second."""
    ckpt = tmp_path_factory.mktemp("run") / "run.pt"
    common = ["train", "--preset", "pennfudan", "--schedule", "cpu", "--data", str(data), "--checkpoint", str(ckpt)]
    assert main([*common, "--epochs", "1", *TINY]) == 0
    first = read_checkpoint(ckpt)
    assert main([*common, "--epochs", "2", "--resume", *TINY]) == 0
    return ckpt, first


# --------------------------------------------------------------------------- the presets as data


def test_presets_say_what_their_comments_and_d2l_say():
    assert set(PRESETS) == {"pennfudan", "bananas-d2l", "bananas-ssd", "bananas-focal", "tinyssd", "scratch"}
    pf_cpu = preset_config("pennfudan", "cpu")
    assert (pf_cpu.model, pf_cpu.size, pf_cpu.epochs, pf_cpu.batch_size, pf_cpu.val_split) == ("resnet34", 300, 16, 8, 50)
    assert (pf_cpu.score_threshold, pf_cpu.nms_threshold, pf_cpu.top_k) == (0.5, 0.45, 20)
    assert preset_config("pennfudan", "full").epochs == 120
    # d2l.ai §14.7.3: SGD lr 0.2, weight decay 5e-4, batch 32, 20 epochs of the 1000 images, constant rate
    d2l = preset_config("tinyssd", "full")
    assert (d2l.optimizer, d2l.lr, d2l.weight_decay, d2l.batch_size, d2l.epochs, d2l.num_train, d2l.lr_schedule,
            d2l.loss) == ("sgd", 0.2, 5e-4, 32, 20, 1000, "constant", "d2l")
    # the TinySSD chapter's CPU schedule: 40 steps of 32 (4 epochs of 320 images)
    cpu = preset_config("tinyssd", "cpu")
    assert cpu.epochs * cpu.num_train // cpu.batch_size == 40
    assert preset_settings("bananas-d2l", "full") == {**preset_settings("tinyssd", "full"), "preset": "bananas-d2l"}
    # the loss recipes: d2l's keeps its batch of 32 in every schedule; "cpu" is 500 steps of 8, "short" 2x500 / 8
    for s in ("full", "cpu", "short"):
        assert preset_config("bananas-d2l", s).batch_size == 32
    ssd = preset_config("bananas-ssd", "cpu")
    assert ssd.epochs * ssd.num_train // ssd.batch_size == 500 and (ssd.loss, ssd.optimizer, ssd.warmup) == (
        "ssd", "adamw", 0.0)
    assert preset_config("bananas-focal", "short").loss == "focal"
    assert (preset_config("bananas-focal", "short").epochs, preset_config("bananas-focal", "short").num_train) == (2, 500)
    # scratch: the user's data, normalized heads (notebooks/scratch.md), fitted anchors, augmentation
    sc = preset_config("scratch", "cpu")
    assert PRESETS["scratch"].data is None and (sc.model, sc.fit_anchors, sc.augment, sc.epochs) == (
        "tinyssd-bn", True, True, 40)
    assert preset_config("scratch", "full").epochs == 120
    assert preset_config("scratch", "cpu", model="scratchssd").model == "scratchssd"   # the command line wins


def test_overrides_win_and_bad_names_are_refused(monkeypatch):
    assert preset_config("pennfudan", "cpu", epochs=3).epochs == 3
    with pytest.raises(ValueError, match="preset must be one of"):
        preset_config("nope", "cpu")
    with pytest.raises(ValueError, match="schedule of preset pennfudan must be one of cpu, full"):
        preset_config("pennfudan", "short")
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        preset_config("pennfudan", "cpu", epoch=3)
    with pytest.raises(ValueError, match="epochs: expected an integer >= 1"):
        preset_config("pennfudan", "cpu", epochs=0)
    monkeypatch.delenv("D2LSSD_SCHEDULE", raising=False)
    assert pick_schedule("cpu") == "cpu" and pick_schedule(torch.device("cuda", 0)) == "full"
    monkeypatch.setenv("D2LSSD_SCHEDULE", "short")
    assert pick_schedule("cpu", "bananas-ssd") == "short"
    with pytest.raises(ValueError, match="D2LSSD_SCHEDULE"):
        pick_schedule("cpu", "pennfudan")


def test_the_command_line_lays_given_options_over_the_preset(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("d2lssd.commands.train.train_detector", lambda config, data: seen.update(c=config, d=data))
    assert main(["train", "--preset", "pennfudan", "--schedule", "cpu", "--checkpoint", "x.pt", "--epochs", "3",
                 "--no-augment"]) == 0
    c = seen["c"]
    assert (c.epochs, c.augment, c.batch_size, c.model, c.preset) == (3, False, 8, "resnet34", "pennfudan")
    assert seen["d"] is None  # the preset's own data
    assert main(["train", "--voc", str(tmp_path), "--checkpoint", "x.pt"]) == 0
    assert (seen["c"].model, seen["c"].epochs, seen["c"].preset) == ("tinyssd", 20, None)  # the fields' defaults
    assert main(["train", "--preset", "pennfudan", "--schedule", "cpu", "--voc", str(tmp_path),
                 "--checkpoint", "x.pt"]) == 0
    assert seen["c"].val_split is None and callable(seen["d"])  # the settings on your data, not its split


@pytest.mark.parametrize("argv, words", [
    (["train", "--schedule", "cpu", "--checkpoint", "x.pt"], "--schedule needs --preset"),
    (["train", "--preset", "nope", "--checkpoint", "x.pt"], "--preset must be one of"),
    (["train", "--checkpoint", "x.pt"], "no data given"),
])
def test_bad_preset_options_give_one_line(argv, words, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err


# --------------------------------------------------------------------------- the Penn-Fudan run


def test_train_writes_checkpoints_and_resumes(trained, capsys):
    ckpt, first = trained
    last, best = read_checkpoint(ckpt), read_checkpoint(best_path(ckpt))
    assert first["epoch"] == 1 and last["epoch"] == 2 and best["epoch"] in (1, 2)
    recs = last["history"]["records"]
    assert [r["epoch"] for r in recs] == [1, 2]
    assert recs[0] == first["history"]["records"][0]  # the resumed run kept the first epoch
    assert all(0.0 <= r["val_AP50"] <= 1.0 and 0.0 <= r["val_AP"] <= r["val_AP50"] for r in recs)
    assert best["history"]["records"][-1]["val_AP50"] == max(r["val_AP50"] for r in recs)
    assert last["config"]["size"] == 257 and last["config"]["preset"] == "pennfudan" and last["data"] == "generated"
    assert last["detector"]["model"] == "resnet34" and last["detector"]["postprocess"]["top_k"] == 20
    assert not torch.equal(first["model"]["cls_heads.0.weight"], last["model"]["cls_heads.0.weight"])
    assert last["lr_scheduler"]["last_epoch"] == 2  # one step per epoch, schedule resumed
    assert list(ckpt.parent.glob(".*tmp")) == []  # atomic writes left no temporary file


def test_evaluate_without_data_uses_the_presets_validation_split(trained, tmp_path, capsys):
    ckpt, _ = trained
    js = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--json", str(js), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "the validation split of generated" in out and "AP50" in out
    r = json.loads(js.read_text())
    assert r["num_images"] == 2 and 0.0 <= r["AP"] <= r["AP50"] <= 1.0  # --val-split 2 of the run
    # the chapter's pennfudan.evaluate gives the same AP50 on the same split
    det = d2lssd.load_detector(ckpt, "cpu")
    config = d2lssd.engine.TrainConfig.from_dict(read_checkpoint(ckpt)["config"])
    res = pf.evaluate(det, config)
    assert res["AP50"] == pytest.approx(r["AP50"], abs=1e-6) and res["pr_curve"].shape == (101,)


def test_predict_boxes_are_detect_in_original_pixels(trained, tmp_path):
    from PIL import Image

    from d2lssd.transforms import SSDEvalTransform

    ckpt, _ = trained
    img = tmp_path / "street.png"
    Image.fromarray(torch.randint(0, 256, (310, 450, 3), dtype=torch.uint8).numpy()).save(img)
    det = d2lssd.load_detector(ckpt, "cpu").with_postprocess(score_threshold=0.0, top_k=5)
    (got,) = det.detect([img])
    assert len(got) == 5
    x = SSDEvalTransform(257)(d2lssd.photos.as_uint8_image(img)).as_subclass(torch.Tensor)[None]
    norm = d2lssd.predict(det.net, x, nms_threshold=0.45, score_threshold=0.0, semantics="paper")[0][:5]
    size = torch.tensor([450.0, 310, 450, 310])
    torch.testing.assert_close(got[:, 2:], torch.minimum(norm[:, 2:].clamp(min=0) * size, size), atol=0.01, rtol=0)
    out = tmp_path / "preds"
    assert main(["predict", str(img), "--checkpoint", str(ckpt), "--out", str(out), "--device", "cpu"]) == 0
    with Image.open(next(out.glob("street.boxes.*"))) as im:
        assert im.size == (450, 310)


def test_the_python_api_trains_the_same_run(data, tmp_path):
    config = pf.make_config("cpu", data=str(data), pretrained=False, size=257, val_split=2, num_train=2,
                            batch_size=2, epochs=1, device="cpu")
    run = pf.train(config, tmp_path / "api.pt", device="cpu", progress=False, log=False)
    assert isinstance(run.detector, d2lssd.Detector) and len(run.history) == 1 and run.data.kind == "generated"
    assert run.detector.class_names == ["pedestrian"] and not run.detector.net.training
    train_iter, val_iter, _ = pf.make_loaders(config)
    images, labels = next(iter(train_iter))
    assert images.shape == (2, 3, 257, 257) and 0 <= images.min() and images.max() <= 1  # resnet34: [0, 1]
    assert len(val_iter.dataset) == 2


def test_cached_checkpoint_names_the_run_by_its_settings(data, tmp_path):
    cfg = pf.make_config("cpu", data=str(data), pretrained=False)
    path = pf.cached_checkpoint(cfg, "cpu", tmp_path)
    assert path.parent == tmp_path and path.name.startswith("pennfudan-cpu-") and path.suffix == ".pt"
    assert pf.cached_checkpoint(cfg.replace(workers=2, progress=False), "cpu", tmp_path) == path
    assert pf.cached_checkpoint(cfg.replace(epochs=cfg.epochs + 1), "cpu", tmp_path) != path
    assert pf.cached_checkpoint(cfg.replace(seed=1), "cpu", tmp_path) != path
    assert pf.cached_checkpoint(cfg, "meta", tmp_path) != path  # another device type
    assert best_path(path).name == path.stem + ".best.pt"


def test_pennfudan_checkpoint_end_to_end(trained, tmp_path):
    """The preset's checkpoint is a detector: load, detect, export, onnxruntime on real photos = detect."""
    pytest.importorskip("onnxruntime")
    from d2lssd.export import check_export, export_onnx

    ckpt, _ = trained
    det = d2lssd.load_detector(best_path(ckpt), "cpu")
    assert det.model == "resnet34" and det.class_names == ["pedestrian"] and det.pixel_scale == 255.0
    assert det.input_size == (257, 257) and det.postprocess.top_k == 20 and det.postprocess.semantics == "paper"
    # One step from a random backbone saturates the softmax (every score 1.0), and a tie of hundreds of scores
    # has no order to compare; shrinking the class head keeps the checkpoint's spec, backbone and boxes.
    with torch.no_grad():
        for head in det.net.cls_heads:
            head.weight.mul_(1e-3)
            head.bias.mul_(1e-3)
    path = export_onnx(det, tmp_path / "pf.onnx", check=False)
    r = check_export(path, det, score_thresholds=[0.3])
    assert r["ok"] and r["detections"] > 0, r["summary"]


def test_the_old_command_and_module_entry_points_are_gone():
    import importlib.util
    import tomllib

    root = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"d2lssd": "d2lssd.cli:main"}
    assert importlib.util.find_spec("d2lssd.pennfudan_cli") is None
    assert not hasattr(pf, "main") and not hasattr(pf, "__getattr__")
