"""Training recipes of the losses chapters: optimizer and schedule, and the trained-model cache."""

from pathlib import Path

import pytest
import torch

import d2lssd
from d2lssd.recipes import LOSS_SCHEDULES, RECIPES, code_fingerprint, make_optimizer, train_recipe

from _helpers import lr_trace, synthetic


class Loader(torch.utils.data.DataLoader):
    pass


def tiny_data():
    X, Y = synthetic(n=8)
    ds = torch.utils.data.TensorDataset(X * 255, Y)
    return Loader(ds, batch_size=4), Loader(ds, batch_size=8)


TINY = dict(num_epochs=2, num_train=8, batch_size=4)


def test_recipes_and_schedules_agree_with_d2l_and_with_what_their_comments_say():
    assert set(RECIPES) == {"d2l", "ssd", "focal"} and set(LOSS_SCHEDULES) == {"full", "cpu", "short"}
    # d2l's recipe is the TinySSD chapter's full d2l schedule (d2l §14.7.3), with d2l's loss
    d2l_schedule = d2lssd.TINYSSD_SCHEDULES["full"]
    assert RECIPES["d2l"]["loss"] is None and RECIPES["d2l"]["optimizer"] == "sgd"
    assert {k: RECIPES["d2l"][k] for k in ("lr", "weight_decay", "batch_size")} == {
        k: d2l_schedule[k] for k in ("lr", "weight_decay", "batch_size")}
    assert LOSS_SCHEDULES["full"] == {k: d2l_schedule[k] for k in ("num_epochs", "num_train", "batch_size")}
    # "cpu": 500 steps; "short": 2 epochs of 500 images in batches of 8 (LOSS_SCHEDULES' comment)
    cpu = LOSS_SCHEDULES["cpu"]
    assert cpu["num_epochs"] * cpu["num_train"] // cpu["batch_size"] == 500
    assert LOSS_SCHEDULES["short"] == dict(num_epochs=2, num_train=500, batch_size=8)
    # the paper's recipe mines hard negatives, the focal one does not; both are valid MultiBoxLoss options
    assert RECIPES["ssd"]["loss"]["cls_loss"] == "hard_negative" and RECIPES["focal"]["loss"]["cls_loss"] == "focal"
    for name in ("ssd", "focal"):
        assert isinstance(d2lssd.MultiBoxLoss(**RECIPES[name]["loss"]), d2lssd.MultiBoxLoss)


def lr_curve(recipe, steps=100):
    net = torch.nn.Linear(2, 2)
    return lr_trace(*make_optimizer(recipe, net, total_steps=steps), steps)


def test_adam_recipes_decay_along_a_cosine_and_warmup_gives_one_cycle():
    lrs = lr_curve(RECIPES["ssd"])
    peak = RECIPES["ssd"]["lr"]
    assert lrs[0] == peak and lrs[50] == pytest.approx(peak / 2, rel=1e-3) and lrs[-1] < peak / 1000
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    lrs = lr_curve(dict(RECIPES["ssd"], warmup=0.1))
    assert lrs[0] == pytest.approx(peak / 25) and max(lrs) == pytest.approx(peak, rel=1e-3)
    assert lrs.index(max(lrs)) in (9, 10) and lrs[-1] < peak / 100
    net = torch.nn.Linear(2, 2)
    opt, sched = make_optimizer(RECIPES["d2l"], net, total_steps=10)
    assert sched is None and isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["lr"] == 0.2
    with pytest.raises(ValueError, match="total_steps"):
        make_optimizer(RECIPES["ssd"], net, 0)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer(dict(RECIPES["ssd"], optimizer="lion"), net, 10)


def test_train_recipe_caches_the_trained_model_and_reuses_it(tmp_path, capsys):
    first = train_recipe("ssd", TINY, data=tiny_data(), device="cpu", cache_dir=tmp_path, plot=None)
    assert not first["cached"] and first["checkpoint"].is_file() and len(first["history"]) == 2
    assert 0.0 <= first["ap"]["AP50"] <= 1.0 and "detections" not in first["ap"]
    second = train_recipe("ssd", TINY, data=tiny_data(), device="cpu", cache_dir=tmp_path, plot=None)
    assert second["cached"] and "from the cache" in capsys.readouterr().out
    for p, q in zip(first["net"].state_dict().values(), second["net"].state_dict().values()):
        assert torch.equal(p, q)
    assert second["history"] == first["history"] and second["ap"]["AP50"] == first["ap"]["AP50"]
    other = train_recipe("ssd", TINY, seed=1, data=tiny_data(), device="cpu", cache_dir=tmp_path, plot=None)
    assert not other["cached"] and other["checkpoint"] != first["checkpoint"]


def test_train_recipe_without_cache_writes_nothing(tmp_path):
    out = train_recipe("focal", TINY, data=tiny_data(), device="cpu", cache=False, cache_dir=tmp_path, plot=None)
    assert out["checkpoint"] is None and not any(tmp_path.iterdir())
    assert out["history"].meta["loss_fn"].startswith("MultiBoxLoss(cls_loss='focal'")


def test_code_fingerprint_changes_with_any_source_file_and_with_torch(tmp_path, monkeypatch):
    import shutil

    import d2lssd.engine.cache as cache_module

    real = code_fingerprint()
    assert len(real) == 12 and all(c in "0123456789abcdef" for c in real)
    copy = tmp_path / "d2lssd"
    shutil.copytree(Path(d2lssd.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache_module, "_PACKAGE", copy)
    assert code_fingerprint() == real  # the same sources give the same key
    nms = copy / "nms.py"
    original = nms.read_bytes()
    nms.write_bytes(original + b"\n# a changed line\n")
    changed = code_fingerprint()
    assert changed != real  # a module the recipes do not import directly still counts
    nms.write_bytes(original)
    assert code_fingerprint() == real
    (copy / "data" / "new_module.py").write_text("x = 1\n")
    assert code_fingerprint() not in (real, changed)  # a new file, in a subpackage
    (copy / "data" / "new_module.py").unlink()
    (copy / "nms.py").rename(copy / "nms2.py")
    assert code_fingerprint() != real  # a renamed file
    (copy / "nms2.py").rename(copy / "nms.py")
    monkeypatch.setattr(cache_module.torch, "__version__", "0.0.0")
    assert code_fingerprint() != real  # another torch


def test_a_changed_fingerprint_retrains_instead_of_using_the_cache(tmp_path, monkeypatch):
    import d2lssd.recipes as recipes_module

    first = train_recipe("d2l", TINY, data=tiny_data(), device="cpu", cache_dir=tmp_path, plot=None)
    monkeypatch.setattr(recipes_module, "code_fingerprint", lambda: "0" * 12)
    second = train_recipe("d2l", TINY, data=tiny_data(), device="cpu", cache_dir=tmp_path, plot=None)
    assert not second["cached"] and second["checkpoint"] != first["checkpoint"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first["checkpoint"].name,
                                                                 second["checkpoint"].name])


def test_an_unknown_recipe_is_a_key_error():
    with pytest.raises(KeyError):
        train_recipe("nope", TINY, data=tiny_data(), device="cpu", cache=False)
    assert d2lssd.train_recipe is train_recipe


def test_a_recipes_own_batch_size_replaces_the_schedules(tmp_path):
    out = train_recipe(dict(RECIPES["ssd"], batch_size=8), TINY, data=tiny_data(), device="cpu", cache=False,
                       plot=None)
    assert out["schedule"]["batch_size"] == 8 and TINY["batch_size"] == 4  # the schedule itself is untouched
    assert train_recipe("ssd", TINY, data=tiny_data(), device="cpu", cache=False,
                        plot=None)["schedule"]["batch_size"] == 4
