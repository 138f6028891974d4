"""Training recipes of the losses chapters: optimizer and schedule, and the trained-model cache."""

from pathlib import Path

import pytest
import torch

import d2lssd
from d2lssd.engine import best_path
from d2lssd.engine.schedule import make_optimizer
from d2lssd.recipes import RECIPE_NAMES, code_fingerprint, recipe_config, train_recipe
from d2lssd.trainer import loss_function

from _helpers import lr_trace, synthetic


class Loader(torch.utils.data.DataLoader):
    pass


def tiny_data():
    X, Y = synthetic(n=8)
    ds = torch.utils.data.TensorDataset(X * 255, Y)
    return Loader(ds, batch_size=4), Loader(ds, batch_size=8)


TINY = dict(epochs=2, num_train=8, batch_size=4)


def test_recipes_are_the_banana_presets_with_their_losses():
    assert RECIPE_NAMES == {"d2l": "bananas-d2l", "ssd": "bananas-ssd", "focal": "bananas-focal"}
    assert loss_function(recipe_config("d2l")) is d2lssd.ssd_loss
    for name, cls_loss in (("ssd", "hard_negative"), ("focal", "focal")):
        fn = loss_function(recipe_config(name))
        assert isinstance(fn, d2lssd.MultiBoxLoss) and repr(fn).startswith(f"MultiBoxLoss(cls_loss='{cls_loss}'")
    with pytest.raises(KeyError):
        recipe_config("nope")


def lr_curve(config, steps=100):
    net = torch.nn.Linear(2, 2)
    total = None if config.lr_schedule == "constant" else steps
    return lr_trace(*make_optimizer(net, config.optimizer, config.lr, config.weight_decay, total_steps=total,
                                    warmup=config.warmup), steps)


def test_adam_recipes_decay_along_a_cosine_and_warmup_gives_one_cycle():
    ssd = recipe_config("ssd")
    lrs = lr_curve(ssd)
    peak = ssd.lr
    assert lrs[0] == peak and lrs[50] == pytest.approx(peak / 2, rel=1e-3) and lrs[-1] < peak / 1000
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    lrs = lr_curve(ssd.replace(warmup=0.1))
    assert lrs[0] == pytest.approx(peak / 25) and max(lrs) == pytest.approx(peak, rel=1e-3)
    assert lrs.index(max(lrs)) in (9, 10) and lrs[-1] < peak / 100
    d2l = recipe_config("d2l")
    opt, sched = make_optimizer(torch.nn.Linear(2, 2), d2l.optimizer, d2l.lr, d2l.weight_decay)
    assert sched is None and opt.param_groups[0]["lr"] == 0.2 and d2l.lr_schedule == "constant"  # d2l's constant rate


def test_train_recipe_caches_the_trained_model_and_reuses_it(tmp_path, capsys):
    first = train_recipe("ssd", data=tiny_data(), device="cpu", cache_dir=tmp_path, plot=None, **TINY)
    assert not first["cached"] and first["checkpoint"].is_file() and len(first["history"]) == 2
    assert 0.0 <= first["ap"]["AP50"] <= 1.0 and "detections" not in first["ap"]
    second = train_recipe("ssd", data=tiny_data(), device="cpu", cache_dir=tmp_path, plot=None, **TINY)
    assert second["cached"] and "from the cache" in capsys.readouterr().out
    for p, q in zip(first["net"].state_dict().values(), second["net"].state_dict().values()):
        assert torch.equal(p, q)
    assert second["history"] == first["history"] and second["ap"]["AP50"] == first["ap"]["AP50"]
    other = train_recipe("ssd", seed=1, data=tiny_data(), device="cpu", cache_dir=tmp_path, plot=None, **TINY)
    assert not other["cached"] and other["checkpoint"] != first["checkpoint"]


def test_train_recipe_without_cache_writes_nothing(tmp_path):
    out = train_recipe("focal", data=tiny_data(), device="cpu", cache=False, cache_dir=tmp_path, plot=None, **TINY)
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
    nms = copy / "postprocess.py"
    original = nms.read_bytes()
    nms.write_bytes(original + b"\n# a changed line\n")
    changed = code_fingerprint()
    assert changed != real  # a module the recipes do not import directly still counts
    nms.write_bytes(original)
    assert code_fingerprint() == real
    (copy / "data" / "new_module.py").write_text("x = 1\n")
    assert code_fingerprint() not in (real, changed)  # a new file, in a subpackage
    (copy / "data" / "new_module.py").unlink()
    (copy / "postprocess.py").rename(copy / "nms2.py")
    assert code_fingerprint() != real  # a renamed file
    (copy / "nms2.py").rename(copy / "postprocess.py")
    monkeypatch.setattr(cache_module.torch, "__version__", "0.0.0")
    assert code_fingerprint() != real  # another torch


def test_a_changed_fingerprint_retrains_instead_of_using_the_cache(tmp_path, monkeypatch):
    import d2lssd.recipes as recipes_module

    first = train_recipe("d2l", data=tiny_data(), device="cpu", cache_dir=tmp_path, plot=None, **TINY)
    monkeypatch.setattr(recipes_module, "code_fingerprint", lambda: "0" * 12)
    second = train_recipe("d2l", data=tiny_data(), device="cpu", cache_dir=tmp_path, plot=None, **TINY)
    assert not second["cached"] and second["checkpoint"] != first["checkpoint"]
    runs = (first["checkpoint"], second["checkpoint"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in runs] +
                                                                [best_path(p).name for p in runs])


def test_an_unknown_recipe_is_a_key_error():
    with pytest.raises(KeyError):
        train_recipe("nope", data=tiny_data(), device="cpu", cache=False, **TINY)
    assert d2lssd.train_recipe is train_recipe


def test_overrides_replace_the_schedules_settings(tmp_path):
    out = train_recipe("ssd", "short", data=tiny_data(), device="cpu", cache=False, plot=None, **TINY)
    assert out["config"].batch_size == 4 and out["config"].epochs == 2 and out["schedule"] == "short"
    assert len(out["history"]) == 2 and out["history"].last["train_images"] == 8


def test_owndata_recipe_names_one_run_that_the_train_command_accepts(tmp_path):
    """The own-data chapter's run: its argv parses as `d2lssd train`, its checkpoint depends on schedule and device."""
    from d2lssd.cli import build_parser
    from d2lssd.recipes import owndata_recipe

    cpu = owndata_recipe("cpu", "cpu", folder=tmp_path)
    assert cpu == owndata_recipe("cpu", "cpu", folder=tmp_path)   # the data is generated once, the name is stable
    assert (cpu["epochs"], cpu["augment"]) == (10, False) and "--no-augment" in cpu["options"]
    assert (tmp_path / "owndata" / "train.json").is_file() and cpu["data"] == tmp_path / "owndata"
    assert cpu["checkpoint"].parent == tmp_path and cpu["checkpoint"].name.startswith("owndata-cpu-")
    full = owndata_recipe("full", "cpu", folder=tmp_path)
    assert (full["epochs"], full["augment"]) == (60, True) and "--no-augment" not in full["options"]
    assert full["checkpoint"] != cpu["checkpoint"]
    assert owndata_recipe("cpu", "meta", folder=tmp_path)["checkpoint"] != cpu["checkpoint"]
    args = build_parser().parse_args(cpu["argv"])
    assert (args.epochs, args.batch_size, args.lr, args.seed, args.resume) == (10, 8, 2e-3, 0, True)
    assert args.checkpoint == str(cpu["checkpoint"]) and args.coco == str(tmp_path / "owndata" / "train.json")
    with pytest.raises(ValueError, match="schedule must be 'full' or 'cpu', got 'short'"):
        owndata_recipe("short", "cpu", folder=tmp_path)
    bn = owndata_recipe("cpu", "cpu", folder=tmp_path, model="tinyssd-bn")   # the scratch chapter's comparison
    assert bn["options"] == cpu["options"] + ["--model", "tinyssd-bn"] and bn["data"] == cpu["data"]
    assert bn["checkpoint"].name.startswith("owndata-cpu-tinyssd-bn-") and bn["checkpoint"] != cpu["checkpoint"]
    assert build_parser().parse_args(bn["argv"]).model == "tinyssd-bn"
    with pytest.raises(ValueError, match="model must be one of"):
        owndata_recipe("cpu", "cpu", folder=tmp_path, model="yolo")
