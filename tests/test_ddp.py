"""DistributedDataParallel through torchrun equals one process with the same global batch and data order.

Two CPU processes (gloo backend, a free port on 127.0.0.1), each with a batch
of 1, against one process with a batch of 2: the same 4 generated images in
the same order (one seeded ``DistributedSampler`` permutation, rank ``r``
taking every second index), 2 SGD steps. What makes the two computations the
same function, and why:

* ``--bn frozen``: BatchNorm uses its running statistics, so a process's
  sub-batch does not change the normalization (SyncBatchNorm, the CUDA
  answer, has no CPU implementation);
* ``--loss-normalize image``: each image's loss is divided by its own
  positives, so the mean over 2 processes of the mean over 1 image is the
  mean over 2 images (with ``"batch"`` each process divides by its own
  sub-batch's positives, as torchvision's SSD does);
* ``--no-augment``: the images do not depend on a process's random stream.

Then DDP's gradient average equals the single process's gradient up to
float rounding of the summation order.
"""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import d2lssd

ROOT = Path(__file__).resolve().parents[1]

COMMON = ["train", "--preset", "pennfudan", "--schedule", "cpu", "--val-split", "2", "--num-train", "4", "--num-val", "1", "--epochs", "1", "--size", "257",
          "--no-pretrained", "--device", "cpu", "--no-progress", "--seed", "3", "--bn", "frozen",
          "--loss-normalize", "image", "--no-augment", "--optimizer", "sgd", "--lr", "1e-4"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                              "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def test_two_gloo_processes_match_one_process(tmp_path):
    data = d2lssd.generate_pennfudan(tmp_path / "PennFudanPed", 6, seed=0)
    single, ddp = tmp_path / "single.pt", tmp_path / "ddp.pt"
    r1 = subprocess.run([sys.executable, "-m", "d2lssd", *COMMON, "--data", str(data), "--batch-size",
                         "2", "--checkpoint", str(single)], cwd=ROOT, env=_env(2), capture_output=True, text=True,
                        timeout=300)
    assert r1.returncode == 0, r1.stderr[-2000:]
    r2 = subprocess.run([*_torchrun(), "--nproc_per_node=2", "--master_addr=127.0.0.1",
                         f"--master_port={_free_port()}", "-m", "d2lssd", *COMMON, "--data", str(data),
                         "--batch-size", "1", "--checkpoint", str(ddp)], cwd=ROOT, env=_env(1),
                        capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stderr[-3000:]
    # rank 0 alone logs: one "data:" line, and it says 2 processes
    assert r2.stdout.count("data: generated") == 1 and "processes: 2" in r2.stdout, r2.stdout
    assert "processes: 1" in r1.stdout

    a = torch.load(single, map_location="cpu", weights_only=True)
    b = torch.load(ddp, map_location="cpu", weights_only=True)
    assert a["history"]["records"][0]["train_images"] == b["history"]["records"][0]["train_images"] == 4
    assert a["history"]["meta"].get("world_size", 1) == 1 and b["history"]["meta"]["world_size"] == 2
    # the reduced loss of the DDP run is the single run's mean loss
    assert b["history"]["records"][0]["train_loss"] == pytest.approx(a["history"]["records"][0]["train_loss"],
                                                                      rel=1e-4)
    assert a["model"].keys() == b["model"].keys()  # saved unwrapped: no "module." prefix
    torch.manual_seed(3)
    init = d2lssd.SSDResNet34(pretrained=False).state_dict()
    moved = 0
    for k, w in a["model"].items():
        if not w.is_floating_point():
            continue
        torch.testing.assert_close(b["model"][k], w, atol=1e-5, rtol=1e-4, msg=lambda m: f"{k}: {m}")
        moved += int(not torch.equal(w, init[k]))
    assert moved > 50  # training changed the weights: the equality is not the trivial one
