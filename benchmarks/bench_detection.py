"""multibox_detection on one TinySSD image (5444 anchors, one class) against d2l's, in one run.

    python benchmarks/bench_detection.py [--repeat 41] [--rounds 3]
    git show <commit>:d2lssd/postprocess.py > /tmp/nms_before.py
    python benchmarks/bench_detection.py --before /tmp/nms_before.py

The inputs are bench_core's: an untrained-like single-class TinySSD output at
256x256 (every anchor above d2l's 0.009999999 threshold), d2l's defaults
(``nms_threshold=0.5``). Each round times d2lssd's ``multibox_detection``
and d2l 1.0.3's one after the other, a block of ``--repeat`` calls each after
a warm-up (the first one changes from round to round), and prints the median
ms of each and how many times faster d2lssd is; a change of load on the
machine shows as rounds that disagree. Blocks, not alternate calls: d2lssd
runs on one CPU thread and gives PyTorch back its threads on return, and a
d2l call right after that measured about 15% slower (the threads wake up
again), which would flatter the ratio. ``--before FILE`` adds an older
``d2lssd/postprocess.py``, loaded as a module of this checkout's package (so it uses
today's ``_checks``, ``boxes`` and ``offsets``), to the same rotation, and the
run checks that both versions give bit-identical outputs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_core import untrained_outputs  # noqa: E402
from common import median_ms, tinyssd_anchors  # noqa: E402

import d2lssd  # noqa: E402


def load_nms_module(path: str):
    """A ``postprocess.py`` (``nms.py`` before) of another commit, as the module ``d2lssd._nms_before``."""
    spec = importlib.util.spec_from_file_location("d2lssd._nms_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=41, help="calls of each function per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--before", metavar="NMS_PY", help="an older d2lssd/postprocess.py to time beside today's")
    args = p.parse_args(argv)
    from d2l import torch as d2l  # test-only dependency: pip install --no-deps d2l==1.0.3

    anchors = tinyssd_anchors()
    cls, off = untrained_outputs(anchors.shape[1])
    fns = {"d2lssd": lambda: d2lssd.multibox_detection(cls, off, anchors),
           "d2l": lambda: d2l.multibox_detection(cls, off, anchors)}
    if args.before:
        before = load_nms_module(args.before)
        assert torch.equal(before.multibox_detection(cls, off, anchors), fns["d2lssd"]()), "outputs differ"
        fns = {"before": lambda: before.multibox_detection(cls, off, anchors), **fns}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{anchors.shape[1]} anchors; median of {args.repeat} per round")
    results = []
    for r in range(args.rounds):
        names = list(fns)[r % len(fns):] + list(fns)[:r % len(fns)]
        m = {k: median_ms(fns[k], repeat=args.repeat, warmup=3) for k in names}
        m = {k: m[k] for k in fns}
        line = "  ".join(f"{k} {v:6.2f} ms" for k, v in m.items())
        ratios = "  ".join(f"d2l/{k} {m['d2l'] / m[k]:5.2f}x" for k in m if k != "d2l")
        print(f"round {r + 1}: {line}  |  {ratios}")
        results.append(m)
    return results


if __name__ == "__main__":
    main()
