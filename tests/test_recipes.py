"""Training recipes of the losses chapters: optimizer and schedule, and the trained-model cache."""

import pytest
import torch

import d2lssd
from d2lssd.recipes import LOSS_SCHEDULES, RECIPES, code_fingerprint, make_optimizer, train_recipe

from test_train import synthetic


class Loader(torch.utils.data.DataLoader):
    pass


def tiny_data():
    X, Y = synthetic(n=8)
    ds = torch.utils.data.TensorDataset(X * 255, Y)
    return Loader(ds, batch_size=4), Loader(ds, batch_size=8)


TINY = dict(num_epochs=2, num_train=8, batch_size=4)


def test_recipes_and_schedules_are_what_the_chapters_say():
    assert set(RECIPES) == {"d2l", "ssd", "focal"} and set(LOSS_SCHEDULES) == {"full", "cpu", "short"}
    # d2l §14.7.3: SGD lr 0.2, weight decay 5e-4, batch 32
    assert RECIPES["d2l"] == dict(loss=None, optimizer="sgd", lr=0.2, weight_decay=5e-4, batch_size=32)
    assert RECIPES["ssd"]["loss"]["cls_loss"] == "hard_negative" and RECIPES["focal"]["loss"]["cls_loss"] == "focal"
    assert LOSS_SCHEDULES["full"] == dict(num_epochs=20, num_train=1000, batch_size=32)
    assert LOSS_SCHEDULES["cpu"] == dict(num_epochs=4, num_train=1000, batch_size=8)


def lr_curve(recipe, steps=100):
    net = torch.nn.Linear(2, 2)
    opt, sched = make_optimizer(recipe, net, total_steps=steps)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


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


def test_code_fingerprint_is_stable_and_short():
    assert code_fingerprint() == code_fingerprint() and len(code_fingerprint()) == 12
    with pytest.raises(KeyError):
        train_recipe("nope", TINY, data=tiny_data(), device="cpu", cache=False)
    assert d2lssd.train_recipe is train_recipe


def test_a_recipes_own_batch_size_replaces_the_schedules(tmp_path):
    out = train_recipe(dict(RECIPES["ssd"], batch_size=8), TINY, data=tiny_data(), device="cpu", cache=False,
                       plot=None)
    assert out["schedule"]["batch_size"] == 8 and TINY["batch_size"] == 4  # the schedule itself is untouched
    assert train_recipe("ssd", TINY, data=tiny_data(), device="cpu", cache=False,
                        plot=None)["schedule"]["batch_size"] == 4
