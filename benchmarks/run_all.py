"""Run every benchmark in this folder: ``python benchmarks/run_all.py [--device cuda] [--busy 600]``.

``bench_ssd`` (d2lssd against torchvision's SSD: post-processing, targets and
loss, batched NMS) runs on the CPU; ``--busy S`` adds its measurement beside
a CPU-bound competing process that ends by itself after S seconds.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import bench_core  # noqa: E402
import bench_ssd  # noqa: E402
import bench_train  # noqa: E402


def _without(argv, option):
    """argv minus ``option`` and its value (the other benchmarks do not take it)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == option:
            skip = True
        elif not a.startswith(option + "="):
            out.append(a)
    return out


if __name__ == "__main__":
    argv = sys.argv[1:]
    others = _without(_without(argv, "--busy"), "--only")
    bench_core.main(others)
    print()
    bench_ssd.main(_without(argv, "--device"))
    print()
    bench_train.main(others)
