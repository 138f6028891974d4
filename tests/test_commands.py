"""``d2lssd train | evaluate | predict`` end to end on a tiny generated two-class COCO set."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from d2lssd.cli import main
from d2lssd import load_detector
from d2lssd.data.multiclass import generate_multiclass_coco


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = generate_multiclass_coco(tmp_path_factory.mktemp("coco") / "data", num_train=12, num_val=6, seed=3)
    ckpt = root.parent / "run.pt"
    assert main(["train", "--coco", str(root / "train.json"), "--images", str(root / "images"), "--val-coco",
                 str(root / "val.json"), "--val-images", str(root / "images"), "--checkpoint", str(ckpt), "--epochs", "1",
                 "--batch-size", "4", "--device", "cpu", "--no-progress", "--size", "128"]) == 0
    return root, ckpt


def test_train_writes_checkpoints_with_the_detector_spec(trained, capsys):
    root, ckpt = trained
    assert ckpt.is_file() and ckpt.with_name("run.best.pt").is_file()
    det = load_detector(ckpt, "cpu")
    cats = {c["id"]: c["name"] for c in json.loads((root / "train.json").read_text())["categories"]}
    assert det.class_names == [cats[k] for k in sorted(cats)] and det.category_ids == sorted(cats)
    assert det.model == "tinyssd" and det.input_size == (128, 128) and det.num_classes == 2
    assert det.pixel_scale == 1.0  # the registry's input convention for TinySSD: pixels in [0, 255], as d2l
    fitted = det.spec["model_kwargs"]["sizes"]
    assert fitted != [list(s) for s in type(det.net).SIZES]  # the fitted anchors are used, not the defaults


def test_train_stores_its_config_and_resumes(trained, tmp_path, capsys):
    import shutil

    from d2lssd.engine import TrainConfig
    from d2lssd.engine import read_checkpoint

    root, ckpt = trained
    stored = TrainConfig.from_dict(read_checkpoint(ckpt)["config"])
    assert stored == TrainConfig(checkpoint=str(ckpt), epochs=1, batch_size=4, device="cpu", progress=False, size=128)
    again = tmp_path / "again.pt"
    shutil.copy(ckpt, again)
    capsys.readouterr()
    assert main(["train", "--coco", str(root / "train.json"), "--images", str(root / "images"), "--val-coco",
                 str(root / "val.json"), "--val-images", str(root / "images"), "--checkpoint", str(again), "--epochs",
                 "2", "--batch-size", "4", "--device", "cpu", "--no-progress", "--size", "128", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and "epoch 1/2" not in out  # the first epoch came from the checkpoint
    state = read_checkpoint(again)
    assert state["epoch"] == 2 and [r["epoch"] for r in state["history"]["records"]] == [1, 2]
    assert TrainConfig.from_dict(state["config"]) == dataclasses.replace(stored, checkpoint=str(again), epochs=2,
                                                                         resume=True)


def test_evaluate_writes_the_ap_json(trained, tmp_path):
    root, ckpt = trained
    out = tmp_path / "ap.json"
    assert main(["evaluate", "--coco", str(root / "val.json"), "--images", str(root / "images"), "--checkpoint",
                 str(ckpt), "--json", str(out), "--device", "cpu"]) == 0
    r = json.loads(out.read_text())
    assert set(r) == {"AP50", "AP", "AP75", "per_class", "per_class_table", "num_images", "empty_images",
                      "false_positives_on_empty_images"} and r["num_images"] == 6
    assert all(0.0 <= r[k] <= 1.0 for k in ("AP50", "AP", "AP75"))
    assert set(r["per_class"]) <= {"banana", "person"}


def test_predict_writes_images_and_results_that_pycocotools_loads(trained, tmp_path):
    from pycocotools.coco import COCO

    root, ckpt = trained
    photos = sorted((root / "images").glob("val_*.jpg"))[:2]
    out = tmp_path / "preds"
    assert main(["predict", *map(str, photos), "--checkpoint", str(ckpt), "--out", str(out), "--device", "cpu",
                 "--score-threshold", "0.0"]) == 0
    results = json.loads((out / "detections.json").read_text())
    assert results and {r["image_id"] for r in results} <= {1, 2}
    assert {r["category_id"] for r in results} <= {c["id"] for c in json.loads((root / "val.json").read_text())[
        "categories"]}
    images = json.loads((out / "images.json").read_text())
    assert images == {"1": str(photos[0]), "2": str(photos[1])}
    gt = COCO()
    gt.dataset = {"images": [{"id": i, "width": 1, "height": 1} for i in (1, 2)], "annotations": [],
                  "categories": json.loads((root / "val.json").read_text())["categories"]}
    gt.createIndex()
    loaded = gt.loadRes(results)
    assert len(loaded.getAnnIds()) == len(results)
    for p in photos:
        assert (out / f"{p.stem}.boxes.jpg").is_file()


def test_bad_inputs_give_one_line_errors(trained, tmp_path, capsys):
    root, ckpt = trained
    assert main(["train", "--coco", str(root / "train.json"), "--checkpoint", str(tmp_path / "x.pt")]) == 1
    assert "--images" in capsys.readouterr().err
    assert main(["evaluate", "--voc", str(tmp_path / "nope"), "--checkpoint", str(ckpt)]) == 1
    assert "no folder" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.jpg"), "--checkpoint", str(ckpt), "--out", str(tmp_path)]) == 1
    assert "no image" in capsys.readouterr().err
    torch.save({"format": 1}, tmp_path / "foreign.pt")
    assert main(["predict", str(tmp_path / "missing.jpg"), "--checkpoint", str(tmp_path / "foreign.pt"), "--out",
                 str(tmp_path)]) == 1
    assert "is not a d2lssd checkpoint" in capsys.readouterr().err
    from d2lssd.engine.checkpoint import CHECKPOINT_FORMAT

    photo = sorted((root / "images").glob("val_*.jpg"))[0]
    torch.save({"format": CHECKPOINT_FORMAT, "model": {}, "detector": None}, tmp_path / "other.pt")  # weights only
    assert main(["predict", str(photo), "--checkpoint", str(tmp_path / "other.pt"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "without a detector spec" in err and "Detector(net" in err and len(err.strip().splitlines()) == 1


def test_train_and_evaluate_on_a_voc_folder(tmp_path):
    from _helpers import write_voc

    big = {f"{i:06d}": (96, 80, [("dog", 10 + i, 8, 60 + i, 70, 0), ("cat", 40, 30, 90, 78, 0)]) for i in range(6)}
    root = write_voc(tmp_path / "VOC", big)
    ckpt = tmp_path / "voc.pt"
    assert main(["train", "--voc", str(root), "--checkpoint", str(ckpt), "--epochs", "1", "--batch-size", "3",
                 "--device", "cpu", "--no-progress", "--size", "128", "--val-split", "2"]) == 0
    det = load_detector(ckpt, "cpu")
    assert det.class_names == ["cat", "dog"] and det.category_ids is None
    out = tmp_path / "ap.json"
    assert main(["evaluate", "--voc", str(root), "--checkpoint", str(ckpt), "--json", str(out), "--device", "cpu"]) == 0
    assert json.loads(out.read_text())["num_images"] == 6


def test_train_under_torchrun_with_two_gloo_processes(trained, tmp_path):
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    root, _ = trained
    ckpt = tmp_path / "ddp.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1", D2LSSD_OFFLINE="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={port}", "-m", "d2lssd",
           "train", "--coco", str(root / "train.json"), "--images", str(root / "images"), "--val-split", "4",
           "--checkpoint", str(ckpt), "--epochs", "1", "--batch-size", "2", "--device", "cpu", "--no-progress",
           "--size", "128"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("processes: 2") == 1 and done.stdout.count("epoch 1/1") == 1  # rank 0 alone prints
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["history"]["records"][0]["train_images"] == 8 and state["history"]["meta"]["world_size"] == 2


def test_train_checkpoint_end_to_end(trained, tmp_path):
    """d2lssd train's checkpoint: load, detect, export, onnxruntime on real photos (not the input size) = detect."""
    pytest.importorskip("onnxruntime")
    from d2lssd.export import check_export

    _, ckpt = trained
    out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    det = load_detector(ckpt, "cpu")
    r = check_export(out, det, score_thresholds=[0.05, 0.3])
    assert r["ok"] and r["detections"] > 0, r["summary"]
    assert r["max_box_diff"] < 1.0 and r["max_score_diff"] < 1e-3


def test_train_on_a_yolo_yaml_validates_on_its_val_split_and_evaluates(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    root = tmp_path / "yolo"
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(root / "images" / split / f"{i}.png")
            (root / "labels" / split / f"{i}.txt").write_text(f"0 0.4 0.5 0.5 0.6\n1 0.7 {0.3 + i / 50} 0.3 0.3\n")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: {0: dog, 1: cat}\n")
    ckpt = tmp_path / "dogs-cats.pt"   # not yolo.pt: its run folder would be the data folder yolo/ (refused)
    assert main(["train", "--yolo", str(root / "data.yaml"), "--checkpoint", str(ckpt), "--epochs", "1",
                 "--batch-size", "3", "--device", "cpu", "--no-progress", "--size", "128"]) == 0
    assert "6 training images, 2 validation" in capsys.readouterr().out  # the YAML's val split, no --val-*
    assert ckpt.with_name("dogs-cats.best.pt").is_file()  # written only when validating
    det = load_detector(ckpt, "cpu")
    assert det.class_names == ["dog", "cat"] and det.category_ids is None
    out = tmp_path / "ap.json"
    assert main(["evaluate", "--yolo", str(root), "--yolo-split", "val", "--checkpoint", str(ckpt), "--json", str(out),
                 "--device", "cpu"]) == 0
    assert json.loads(out.read_text())["num_images"] == 2
