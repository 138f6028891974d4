"""The engine's shared pieces: the schedule, the run cache and torchrun's environment."""

from __future__ import annotations

import math

import pytest
import torch

from d2lssd.engine import (cache_path, code_fingerprint, dist_info, distributed_context, lr_factor, make_optimizer,
                           run_digest)
from d2lssd.engine.schedule import FINAL_FACTOR, WARMUP_START

from _helpers import lr_trace


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
