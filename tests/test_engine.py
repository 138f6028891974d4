"""The engine's pieces: the schedule, the run cache, torchrun's environment, and the training loop's parts
(step, epoch, evaluation, fit, checkpoints, display) on TinySSD at 64x64 (milliseconds a step)."""

from __future__ import annotations

import ast
import copy
import math
import os
import sys
from pathlib import Path

import pytest
import torch

import d2lssd
import d2lssd.engine as engine
from d2lssd.engine import (CHECKPOINT_FORMAT, Checkpoints, History, Progress, SSDBatchLoss, cache_path,
                           code_fingerprint, dist_info, distributed_context, evaluate, fit, load_checkpoint, lr_factor,
                           make_optimizer, process_group_role, read_checkpoint, resume_training, run_digest,
                           train_one_epoch, train_step, unwrap_model)
from d2lssd.engine.history import METRICS
from d2lssd.engine.progress import plot_mode
from d2lssd.engine.schedule import FINAL_FACTOR, WARMUP_START
from d2lssd.losses import ssd_loss
from d2lssd.matching import multibox_target

from _helpers import batches, lr_trace, new_net, synthetic


def test_lr_factor_known_values():
    assert lr_factor(0, 100) == 1.0
    assert lr_factor(50, 100) == pytest.approx(FINAL_FACTOR + (1 - FINAL_FACTOR) * 0.5)
    assert lr_factor(100, 100) == pytest.approx(FINAL_FACTOR) and lr_factor(500, 100) == pytest.approx(FINAL_FACTOR)
    # warm-up: 10 of 100 steps, linear from 1/25 to 1, then the cosine over the 90 others
    assert lr_factor(0, 100, 0.1) == pytest.approx(WARMUP_START)
    assert lr_factor(5, 100, 0.1) == pytest.approx(WARMUP_START + (1 - WARMUP_START) / 2)
    assert lr_factor(10, 100, 0.1) == 1.0
    assert lr_factor(55, 100, 0.1) == pytest.approx(FINAL_FACTOR + (1 - FINAL_FACTOR) * 0.5)


@pytest.mark.parametrize("bad", [dict(total_steps=0), dict(step=-1), dict(warmup=1.0), dict(warmup=-0.1)])
def test_lr_factor_rejects_bad_arguments(bad):
    args = dict(step=0, total_steps=10, warmup=0.0) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        lr_factor(**args)


def test_without_warmup_the_schedule_equals_torch_cosine_annealing():
    ours = make_optimizer(torch.nn.Linear(2, 2), "adamw", 1e-3, 0.0, total_steps=100)
    ref_opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=1e-3, weight_decay=0.0)
    ref = (ref_opt, torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=100, eta_min=1e-3 * FINAL_FACTOR))
    a, b = lr_trace(*ours, 100), lr_trace(*ref, 100)
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-15


def test_make_optimizer_kinds_and_errors():
    net = torch.nn.Linear(2, 2)
    opt, sched = make_optimizer(net, "sgd", 0.2, 5e-4)
    assert sched is None and isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.0
    opt, _ = make_optimizer(net, "momentum", 0.01, 0.0, total_steps=5)
    assert opt.param_groups[0]["momentum"] == 0.9
    opt, _ = make_optimizer(net, "adamw", 1e-3, 1e-4, total_steps=5)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 1e-4
    for kwargs, word in [(dict(optimizer="lion"), "optimizer"), (dict(lr=0.0), "lr"), (dict(lr=math.nan), "lr"),
                         (dict(weight_decay=-1.0), "weight_decay"), (dict(total_steps=0), "total_steps")]:
        with pytest.raises(ValueError, match=word):
            make_optimizer(net, **(dict(total_steps=5) | kwargs))


def test_a_resumed_scheduler_continues_at_its_step():
    net = torch.nn.Linear(2, 2)
    opt, sched = make_optimizer(net, "adamw", 1e-3, total_steps=20, warmup=0.2)
    lr_trace(opt, sched, 7)
    opt2, sched2 = make_optimizer(net, "adamw", 1e-3, total_steps=20, warmup=0.2)
    opt2.load_state_dict(opt.state_dict())  # what a checkpoint restores: the optimizer, then the step
    sched2.load_state_dict(sched.state_dict())
    rest, resumed = lr_trace(opt, sched, 13), lr_trace(opt2, sched2, 13)
    assert resumed == rest and resumed[0] == pytest.approx(1e-3 * lr_factor(7, 20, 0.2))
    assert rest[-1] == pytest.approx(1e-3 * lr_factor(19, 20, 0.2))


def test_run_digest_and_cache_path(tmp_path):
    s = dict(epochs=2, data="generated", device="cpu")
    d = run_digest(s, code="0" * 12)
    assert len(d) == 16 and d == run_digest(dict(reversed(list(s.items()))), code="0" * 12)  # order-free
    assert run_digest(dict(s, epochs=3), code="0" * 12) != d and run_digest(s, code="1" * 12) != d
    p = cache_path("tinyssd-focal", s, tmp_path, code="0" * 12)
    assert p == tmp_path / f"tinyssd-focal-{d}.pt"
    assert cache_path("x", s, tmp_path).name.startswith("x-")  # the real fingerprint by default
    with pytest.raises(ValueError, match="prefix"):
        cache_path("../escape", s, tmp_path)
    assert len(code_fingerprint()) == 12


def test_dist_info_reads_torchrun_variables(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    alone = dist_info("cpu")
    assert (alone.rank, alone.world_size, alone.distributed, alone.is_main) == (0, 1, False, True)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = dist_info("cpu")
    assert (info.rank, info.world_size, info.local_rank, info.distributed, info.is_main) == (1, 2, 1, True, False)
    assert info.device == torch.device("cpu")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK"):
        dist_info("cpu")
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match="integers"):
        dist_info("cpu")


def test_distributed_context_alone_starts_no_group(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    with distributed_context("cpu") as info:
        assert not info.distributed and not torch.distributed.is_initialized()


# --------------------------------------------------------------------------- the loop's pieces


class _Recording(SSDBatchLoss):
    """SSDBatchLoss that keeps every batch's stats (to add them up by hand)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stats = []

    def __call__(self, net, X, Y):
        l, s = super().__call__(net, X, Y)
        self.stats.append(s.tolist())
        return l, s


class _Bar:
    """What train_one_epoch does to a tqdm bar, recorded."""

    def __init__(self):
        self.n, self.postfix, self.events = 0, None, []

    def update(self, k):
        self.n += k

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        assert ordered_dict is None and refresh is False  # drawn lazily, by update / the final refresh
        self.postfix = kwargs

    def refresh(self):
        self.events.append(("refresh", self.n))

    def close(self):
        self.events.append("close")


def _ssd_loss(**kw):
    return SSDBatchLoss(ssd_loss, 0.5, torch.device("cpu"), **kw)


def _states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_train_step_equals_a_hand_written_d2l_step():
    X, Y = synthetic(4)
    hand, ours = new_net(), new_net()
    opt_hand = torch.optim.SGD(hand.parameters(), lr=0.2, weight_decay=5e-4)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.2, weight_decay=5e-4)
    hand.train()
    anchors, cls_preds, bbox_preds = hand(X)
    bbox_labels, bbox_masks, cls_labels = multibox_target(anchors, Y, 0.5)
    l = ssd_loss(cls_preds, cls_labels, bbox_preds, bbox_labels, bbox_masks)
    opt_hand.zero_grad()
    l.mean().backward()
    opt_hand.step()

    values = train_step(ours.train(), X, Y, _ssd_loss(), opt_ours)
    assert _states_equal(hand, ours)  # weights and BatchNorm statistics, to the bit
    assert not _states_equal(ours, new_net())  # and it did step
    assert len(values) == SSDBatchLoss.num_stats and values[1] == 4
    assert values[0] == pytest.approx(l.sum().item(), rel=1e-6)


def test_train_step_nan_guard_restores_buffers_and_steps_nothing():
    X, Y = synthetic(4)
    X[2, 1, 3, 3] = math.nan
    net = new_net().train()
    before = copy.deepcopy(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    with pytest.raises(FloatingPointError, match=r"epoch 3, batch 7 .*4 images\); stopped before the optimizer"):
        train_step(net, X, Y, _ssd_loss(), opt, lr_scheduler=sched, epoch=2, batch=7)
    assert _states_equal(net, before)  # the forward pass changed the running statistics; they are back
    assert all(p.grad is None for p in net.parameters())  # no zero_grad, no backward
    assert sched.last_epoch == 0 and opt.param_groups[0]["lr"] == 0.1


def test_train_one_epoch_sums_the_steps_and_drives_the_bar_by_hand():
    X, Y = synthetic(8)
    data = [(X[:3], Y[:3]), (X[3:3], Y[3:3]), (X[3:6], Y[3:6]), (X[6:], Y[6:])]  # 3, empty, 3, 2 images
    net = new_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.2, weight_decay=5e-4)
    rec, bar = _Recording(ssd_loss, 0.5, torch.device("cpu")), _Bar()
    with pytest.warns(RuntimeWarning, match="epoch 5, batch 1 is empty"):
        out = train_one_epoch(net, data, rec, opt, 4, bar=bar)
    sums = [sum(s[i] for s in rec.stats) for i in range(8)]
    assert len(rec.stats) == 3 and out["images"] == 8 == sums[1]
    # sums divided once over the epoch, not a mean of the batch means
    assert out["loss"] == pytest.approx(sums[0] / sums[1])
    assert out["class_error_positive"] == pytest.approx(sums[2] / sums[3])
    assert out["class_error_all"] == pytest.approx(sums[4] / sums[5])
    assert out["bbox_mae_positive"] == pytest.approx(sums[6] / sums[7])
    assert out["time_s"] > 0
    assert bar.n == 4 and bar.events == [("refresh", 4), "close"]  # the empty batch counts; one final refresh
    assert bar.postfix == {"loss": f"{out['loss']:.4g}", "cls_err_pos": f"{100 * out['class_error_positive']:.2f}%"}
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="no images in epoch 1"):
        train_one_epoch(net, data[1:2], rec, opt, 0)


def test_fit_records_what_train_one_epoch_and_evaluate_measure(tmp_path):
    data = batches(*synthetic(8), size=3)

    def opt_of(net):
        return torch.optim.SGD(net.parameters(), lr=0.2, weight_decay=5e-4)

    by_hand = new_net()
    train = train_one_epoch(by_hand, data, _ssd_loss(), opt_of(by_hand), 0)
    val = evaluate(by_hand, data, _ssd_loss())
    assert by_hand.training  # evaluate restores the mode

    net, seen = new_net(), []

    def validate(model):
        seen.append(model)
        return evaluate(model, data, _ssd_loss())

    ck = Checkpoints(tmp_path / "last.pt")
    h = fit(torch.nn.DataParallel(net), opt_of(net), data, _ssd_loss(), 1, validate=validate, checkpoints=ck)
    assert seen == [net]  # validation sees the unwrapped model
    assert _states_equal(net, by_hand)
    r = h.last
    assert r["epoch"] == 1 and r["lr"] == 0.2 and r["train_images"] == 8
    for k in METRICS:
        assert r[f"train_{k}"] == train[k] and r[f"val_{k}"] == val[k], k
    assert r["throughput"] == pytest.approx(8 / r["epoch_time_s"])
    epoch, h2, state = load_checkpoint(tmp_path / "last.pt", new_net(seed=4))
    assert epoch == 1 and h2 == h and "scaler" not in state and "lr_scheduler" not in state


def test_checkpoints_keep_the_best_write_atomically_and_resume(tmp_path, monkeypatch):
    X, Y = synthetic(4)
    net = new_net()
    opt, sched = make_optimizer(net, "momentum", 0.1, total_steps=10)
    train_step(net, X, Y, _ssd_loss(), opt, lr_scheduler=sched)  # momentum buffers and a scheduler step
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    ck = Checkpoints(last, best, "val_AP50", extra={"note": "hello"})
    h, best_epochs = History(), []
    for epoch, ap in enumerate([0.3, 0.2, math.nan, 0.5], 1):
        previous = ck.best_so_far(h)
        h.append({"epoch": epoch, "val_AP50": ap})
        ck.save(net, opt, epoch, h, previous, lr_scheduler=sched)
        best_epochs.append(read_checkpoint(best)["epoch"])
    assert best_epochs == [1, 1, 1, 4]  # lower and NaN values never replace the best
    state = read_checkpoint(last)
    assert state["format"] == CHECKPOINT_FORMAT and state["epoch"] == 4 and state["note"] == "hello"
    assert "lr_scheduler" in state and "scaler" not in state

    net2 = new_net(seed=3)
    opt2, sched2 = make_optimizer(net2, "momentum", 0.1, total_steps=10)
    epoch, h2 = resume_training(last, net2, opt2, lr_scheduler=sched2)
    assert epoch == 4 and h2 == h and _states_equal(net, net2)
    assert sched2.last_epoch == sched.last_epoch == 1 and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    m1, m2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert m1.keys() == m2.keys() and all(torch.equal(m1[k]["momentum_buffer"], m2[k]["momentum_buffer"]) for k in m1)

    old = last.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    h.append({"epoch": 5, "val_AP50": 0.9})
    with pytest.raises(OSError, match="disk full"):
        ck.save(net, opt, 5, h, [0.3, 0.2, 0.5])
    monkeypatch.undo()
    assert last.read_bytes() == old and sorted(os.listdir(tmp_path)) == ["best.pt", "last.pt"]
    Checkpoints().save(net, opt, 1, h, [])  # no paths: nothing written
    assert sorted(os.listdir(tmp_path)) == ["best.pt", "last.pt"]


def test_progress_lines_and_modes(capsys, monkeypatch):
    record = {"epoch": 1, "train_loss": 2.0, "train_class_error_positive": 0.5, "train_class_error_all": 0.01,
              "train_bbox_mae_positive": 0.25, "val_loss": math.nan, "throughput": 12.34}
    p = Progress("text", False, 3, "cpu")
    p.start(History(), 0)
    assert p.epoch_bar(0, [1, 2]) is None and p.plotter is None
    p.epoch_end(record, History([record]))
    p.start(History([record] * 3), 3, "/a/folder/run.pt")
    p.finish(History([record]))  # text mode: nothing more at the end
    assert capsys.readouterr().out.splitlines() == [
        "epoch 1/3: train loss 2, class err pos 50.00% (all 1.00%), bbox MAE pos 0.25 | 12.3 img/s on cpu",
        "checkpoint run.pt already holds 3 epochs (num_epochs=3): nothing to train"]
    Progress(None, False, 3, "cpu").start(History(), 5)
    assert capsys.readouterr().out == ""
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert [plot_mode(x) for x in ("auto", "text", "notebook", None, False)] == ["text", "text", "notebook", None, None]
    with pytest.raises(ValueError, match="plot must be"):
        plot_mode("browser")


def test_unwrap_model_and_process_group_role():
    net = torch.nn.Linear(2, 2)
    assert unwrap_model(net) is net and unwrap_model(torch.nn.DataParallel(net)) is net
    assert process_group_role(None) == (False, True) and process_group_role(False) == (False, True)
    with pytest.raises(ValueError, match="process group"):
        process_group_role(True)


def test_train_py_defines_the_chapters_names_and_re_exports_nothing():
    import d2lssd.train as train

    assert set(train.__all__) == {"train_ssd", "evaluate_ssd", "evaluate_ap", "predict"}
    assert all(getattr(train, n).__module__ == "d2lssd.train" for n in train.__all__)
    # the checkpoint names live in the engine only (issue 21 item 7); d2lssd.* still names them
    assert not any(hasattr(train, n) for n in ("save_checkpoint", "load_checkpoint", "read_checkpoint",
                                               "CHECKPOINT_FORMAT", "_unwrap", "_LivePlot", "_CheckOnce"))
    assert (d2lssd.History, d2lssd.save_checkpoint, d2lssd.load_checkpoint) == (
        History, engine.save_checkpoint, engine.load_checkpoint)


def _imported_modules(node: ast.AST, package: str = "d2lssd.engine") -> list[str]:
    """The absolute names an import statement may load (``from .. import train`` -> ``d2lssd``, ``d2lssd.train``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        parts = package.split(".")
        base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
        mod = ".".join(x for x in (base, node.module or "") if x)
        return [mod] + [f"{mod}.{a.name}" for a in node.names]
    return []


def test_the_engine_imports_neither_train_nor_matplotlib_at_module_level():
    assert _imported_modules(ast.parse("from .. import train").body[0]) == ["d2lssd", "d2lssd.train"]
    assert _imported_modules(ast.parse("from ..train import x").body[0])[0] == "d2lssd.train"
    for path in sorted(Path(engine.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        top = set(tree.body)
        for node in ast.walk(tree):
            names = _imported_modules(node)
            assert not any(n == "d2lssd.train" or n.startswith("d2lssd.train.") for n in names), \
                f"{path.name}:{node.lineno} imports d2lssd.train"
            if node in top:  # module level: no plotting library
                assert not any(n.split(".")[0] in ("matplotlib", "IPython", "tqdm") for n in names), \
                    f"{path.name}:{node.lineno}"


def test_history_old_metric_names_still_read_with_a_warning():
    from d2lssd.engine.history import DEPRECATED_KEYS

    h = History([{"epoch": 1, "train_class_error_positive": 0.25, "val_bbox_mae_positive": 0.5}])
    with pytest.warns(DeprecationWarning, match="train_class_error_positive"):
        assert h["train_class_error_pos"] == [0.25]
    with pytest.warns(DeprecationWarning):
        assert h["val_bbox_mae_pos"] == [0.5]
    # a checkpoint written before the rename reads back under the new names
    old = History.from_dict({"records": [{"epoch": 1, "train_class_error_pos": 0.1, "val_bbox_mae_pos": 0.2}]})
    assert old.records == [{"epoch": 1, "train_class_error_positive": 0.1, "val_bbox_mae_positive": 0.2}]
    assert set(DEPRECATED_KEYS.values()) == {f"{s}_{m}" for s in ("train", "val")
                                             for m in ("class_error_positive", "bbox_mae_positive")}


class _Boxes(torch.utils.data.Dataset):
    """n images of 8x8 whose one box encodes the index (x0 = i / 100 of the width)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        box = torch.tensor([[i * 8 / 100, 0.0, i * 8 / 100 + 1, 4.0]])
        return torch.zeros(3, 8, 8), {"boxes": box, "labels": torch.tensor([0])}


def _order(loader):
    return [round(float(x) * 100) for _, Y in loader for x in Y[:, 0, 1]]


def test_detection_loaders_shard_one_seeded_order():
    one, _ = engine.detection_loaders(_Boxes(10), None, 2, seed=3)
    shards = [engine.detection_loaders(_Boxes(10), None, 1, seed=3, rank=r, world_size=2)[0] for r in (0, 1)]
    whole = _order(one)
    assert sorted(whole) == list(range(10)) and whole != list(range(10))  # a permutation, shuffled
    # rank r takes every world_size-th index of the same permutation
    assert _order(shards[0]) == whole[0::2] and _order(shards[1]) == whole[1::2]
    for loader in [one] + shards:
        loader.sampler.set_epoch(1)
    assert sorted(_order(one)) == list(range(10)) and _order(one) != whole  # another epoch, another order


def test_detection_loaders_drop_a_single_image_last_batch_and_check_arguments():
    train, val = engine.detection_loaders(_Boxes(5), _Boxes(3), 2)
    assert [len(Y) for _, Y in train] == [2, 2] and [len(Y) for _, Y in val] == [2, 1]
    kept, _ = engine.detection_loaders(_Boxes(5), None, 2, drop_single_last=False)
    assert [len(Y) for _, Y in kept] == [2, 2, 1]
    with pytest.raises(ValueError, match="batch_size"):
        engine.detection_loaders(_Boxes(5), None, 0)
    with pytest.raises(ValueError, match="workers"):
        engine.detection_loaders(_Boxes(5), None, 2, workers=-1)
