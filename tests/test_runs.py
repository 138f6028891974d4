"""The run folder (d2lssd.runs), the confusion matrix, early stopping and the time budget of the one trainer."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from d2lssd.cli import main
from d2lssd.data.multiclass import generate_multiclass_coco
from d2lssd.engine import read_checkpoint
from d2lssd.metrics import confusion_matrix
from d2lssd.runs import RESULT_COLUMNS, check_run_folder, run_folder


def test_confusion_matrix_counts_matches_confusions_false_positives_and_misses():
    gt = [torch.tensor([[0, 0.0, 0.0, 0.4, 0.4], [1, 0.5, 0.5, 0.9, 0.9], [0, 0.6, 0.0, 0.9, 0.3],
                        [-1, 0, 0, 0, 0]])]
    det = [torch.tensor([
        [0, 0.9, 0.0, 0.0, 0.4, 0.4],    # right class, right place        -> M[0, 0]
        [0, 0.8, 0.5, 0.5, 0.9, 0.9],    # a person called banana           -> M[0, 1]
        [1, 0.7, 0.0, 0.0, 0.4, 0.41],   # a duplicate of the first box: its GT is taken -> background M[1, 2]
        [1, 0.1, 0.6, 0.0, 0.9, 0.3],    # below the score threshold: not counted
    ])]
    m = confusion_matrix(det, gt, 2, score_threshold=0.25)
    assert m.tolist() == [[1, 1, 0],
                          [0, 0, 1],
                          [1, 0, 0]]  # the third ground truth (class 0) is missed
    # every ground truth is counted once (columns), every kept detection once (rows)
    assert m[:, :2].sum(0).tolist() == [2, 1] and m[:2].sum(1).tolist() == [2, 1]
    assert confusion_matrix([torch.zeros((0, 6))], [torch.zeros((0, 5))], 3).sum() == 0
    with pytest.raises(ValueError, match="one entry per image"):
        confusion_matrix(det, [], 2)
    with pytest.raises(ValueError, match="classes must be in 0 .. 0"):
        confusion_matrix(det, gt, 1)
    with pytest.raises(ValueError, match="score_threshold"):
        confusion_matrix(det, gt, 2, score_threshold=2)


def test_the_readers_labels_are_their_samples_labels(data):
    from d2lssd.data import CocoDataset, collate_ssd
    from d2lssd.transforms import SSDEvalTransform

    ds = CocoDataset(data / "train.json", data / "images", transforms=SSDEvalTransform(128, 1.0))
    _, labels = collate_ssd([ds[i] for i in range(len(ds))])
    rows = labels.reshape(-1, 5)
    rows = rows[rows[:, 0] >= 0]
    got = ds.normalized_labels()
    assert got.shape == rows.shape
    key = lambda t: sorted(map(tuple, t.round(decimals=3).tolist()))
    assert key(got) == key(rows)


def test_run_folder_is_the_checkpoint_without_its_suffix(tmp_path):
    assert run_folder(tmp_path / "runs" / "mine.pt") == tmp_path / "runs" / "mine"
    assert run_folder(tmp_path / "mine") == tmp_path / "mine.run"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate_multiclass_coco(tmp_path_factory.mktemp("coco") / "data", num_train=12, num_val=6, seed=3)


def _train(data, ckpt, *more):
    return main(["train", "--coco", str(data / "train.json"), "--images", str(data / "images"), "--val-coco",
                 str(data / "val.json"), "--val-images", str(data / "images"), "--checkpoint", str(ckpt),
                 "--batch-size", "4", "--device", "cpu", "--no-progress", "--size", "128", *more])


def test_a_run_leaves_a_folder_with_results_plots_and_tide(data, tmp_path, capsys):
    ckpt = tmp_path / "runs" / "mine.pt"
    assert _train(data, ckpt, "--epochs", "2") == 0
    folder = tmp_path / "runs" / "mine"
    names = sorted(p.name for p in folder.iterdir())
    assert [n for n in names if n != "worst.png"] == sorted([
        "config.json", "results.csv", "labels.png", "results.png", "pr_curves.png", "confusion_matrix.png",
        "val_predictions.png", "tide.txt"])
    config = json.loads((folder / "config.json").read_text())
    assert config["config"]["epochs"] == 2 and config["classes"] == ["banana", "person"]
    rows = list(csv.DictReader((folder / "results.csv").read_text().splitlines()))
    history = read_checkpoint(ckpt)["history"]["records"]
    assert [int(r["epoch"]) for r in rows] == [1, 2] == [r["epoch"] for r in history]
    assert list(rows[0]) == list(RESULT_COLUMNS) + ["val_AP50_banana", "val_AP50_person"]
    for row, rec in zip(rows, history):
        assert float(row["val_AP50"]) == pytest.approx(rec["val_AP50"], rel=1e-5)
        assert float(row["train_loss"]) == pytest.approx(rec["train_loss"], rel=1e-5)
    assert "TIDE" in (folder / "tide.txt").read_text() and "background" in (folder / "tide.txt").read_text()
    for png in folder.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_no_report_writes_only_the_checkpoints(data, tmp_path):
    ckpt = tmp_path / "quiet.pt"
    assert _train(data, ckpt, "--epochs", "1", "--no-report") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quiet.best.pt", "quiet.pt"]


def test_a_run_folder_that_holds_other_files_is_refused_before_training(data, tmp_path, capsys):
    """--checkpoint photos.pt beside a data folder photos/ would write the plots among the user's files."""
    photos = tmp_path / "photos"
    (photos / "images").mkdir(parents=True)
    (photos / "labels.json").write_text("{}")
    assert _train(data, tmp_path / "photos.pt", "--epochs", "1") == 1
    err = capsys.readouterr().err
    assert f"the run folder {photos} (the checkpoint's name without its suffix) holds files no run wrote " \
           "(images, labels.json); choose another --checkpoint name, or --no-report" in err, err
    assert sorted(p.name for p in photos.iterdir()) == ["images", "labels.json"]
    assert not (tmp_path / "photos.pt").exists()
    assert _train(data, tmp_path / "photos.pt", "--epochs", "1", "--no-report") == 0   # no folder, no refusal
    assert sorted(p.name for p in photos.iterdir()) == ["images", "labels.json"]
    # An earlier run's folder is not foreign: a run with --resume rewrites it.
    mine = tmp_path / "mine.pt"
    assert _train(data, mine, "--epochs", "1") == 0
    assert _train(data, mine, "--epochs", "2", "--resume") == 0
    check_run_folder(run_folder(mine))
    with pytest.raises(ValueError, match="is a file"):
        (tmp_path / "x").write_text("")
        check_run_folder(tmp_path / "x")


def test_a_time_budget_stops_after_the_first_epoch(data, tmp_path, capsys):
    ckpt = tmp_path / "budget.pt"
    assert _train(data, ckpt, "--epochs", "5", "--time-budget", "1e-6", "--no-report") == 0
    state = read_checkpoint(ckpt)
    assert state["epoch"] == 1 and "time budget" in state["history"]["meta"]["stopped"]
    assert "time budget of 1e-06 minutes reached after epoch 1" in capsys.readouterr().out


def test_patience_stops_only_when_the_ap50_has_not_improved(data, tmp_path, capsys):
    ckpt = tmp_path / "patient.pt"
    assert _train(data, ckpt, "--epochs", "4", "--patience", "1", "--no-report") == 0
    state = read_checkpoint(ckpt)
    aps = [r["val_AP50"] for r in state["history"]["records"]]
    stopped = state["history"]["meta"].get("stopped")
    if stopped:  # the last epoch was no better than the best before it, and it stopped at once
        assert len(aps) < 4 and max(aps[:-1]) >= aps[-1] and "early stopping" in stopped
        assert aps.index(max(aps)) == len(aps) - 2
    else:  # it ran to the end: every epoch improved on the one before
        assert len(aps) == 4 and all(b > a for a, b in zip(aps, aps[1:]))


def test_evaluate_explains_per_class_empty_images_tide_and_worst(data, tmp_path, capsys):
    ckpt = tmp_path / "ev.pt"
    assert _train(data, ckpt, "--epochs", "1", "--no-report") == 0
    capsys.readouterr()
    out, js = tmp_path / "explained", tmp_path / "ev.json"
    assert main(["evaluate", "--coco", str(data / "val.json"), "--images", str(data / "images"), "--checkpoint",
                 str(ckpt), "--device", "cpu", "--out", str(out), "--json", str(js)]) == 0
    text = capsys.readouterr().out
    r = json.loads(js.read_text())
    table = r["per_class_table"]
    assert list(table) == ["banana", "person"]
    val = json.loads((data / "val.json").read_text())
    names = {c["id"]: c["name"] for c in val["categories"]}
    for name in table:  # the boxes of each class are the file's
        assert table[name]["boxes"] == sum(1 for a in val["annotations"] if names[a["category_id"]] == name)
    # AP50 is the mean of the per-class AP50 over the classes with ground truth
    with_gt = [row["AP50"] for row in table.values() if row["boxes"]]
    assert r["AP50"] == pytest.approx(sum(with_gt) / len(with_gt), abs=1e-6)
    with_images = {a["image_id"] for a in val["annotations"]}
    assert r["empty_images"] == sum(1 for im in val["images"] if im["id"] not in with_images)
    assert "TIDE error breakdown" in text and "images without objects" in text
    assert {"pr_curves.png", "confusion_matrix.png", "tide.txt", "val_predictions.png"} <= {
        p.name for p in out.iterdir()}
