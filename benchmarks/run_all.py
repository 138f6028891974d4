"""Run every benchmark in this folder: ``python benchmarks/run_all.py [--device cuda]``."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import bench_core  # noqa: E402
import bench_train  # noqa: E402

if __name__ == "__main__":
    bench_core.main(sys.argv[1:])
    print()
    bench_train.main(sys.argv[1:])
