"""The rows of bench_ssd.py that an older d2lssd can run too (its public API only), to compare commits.

    git archive <commit> d2lssd | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python benchmarks/bench_before_after.py    # before
    PYTHONPATH=.        python benchmarks/bench_before_after.py    # after

Prints tv/ours ratios (> 1: d2lssd faster) measured against torchvision in the
same run, so two runs on a noisy machine compare by their ratios.
"""

import os
import sys

import torch
import torchvision.ops as ops
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(__file__))
from bench_ssd import ground_truth, head_outputs, ssd300  # noqa: E402
from common import clustered_boxes, interleaved_medians  # noqa: E402

import d2lssd  # noqa: E402


def main(repeat=7):
    from torchvision.ops import boxes as box_ops

    print("d2lssd from", os.path.dirname(d2lssd.__file__))
    model, anchors = ssd300()
    anc = (anchors / 300)[None]
    rows = []
    for batch, trained in ((8, False), (8, True)):
        logits, reg = head_outputs(batch, anchors.shape[0], trained, seed=batch)
        probs = F.softmax(logits, -1).permute(0, 2, 1)
        head = {"cls_logits": logits, "bbox_regression": reg}
        m = interleaved_medians({
            "tv": lambda: model.postprocess_detections(head, [anchors] * batch, [(300, 300)] * batch),
            "ours": lambda: d2lssd.multibox_detection(probs, reg.reshape(batch, -1), anc, 0.45, 0.01, 200)}, repeat)
        rows.append((f"multibox_detection vs postprocess_detections, batch {batch}, "
                     f"{'trained-like' if trained else 'untrained'}", m["ours"], m["tv"]))
    for batch in (8, 32):
        targets, labels = ground_truth(batch, seed=batch)
        logits, reg = head_outputs(batch, anchors.shape[0], False, seed=batch)
        head = {"cls_logits": logits, "bbox_regression": reg}

        def tv():
            matched = [model.proposal_matcher(box_ops.box_iou(t["boxes"], anchors)) for t in targets]
            loss = model.compute_loss(targets, head, [anchors] * batch, matched)
            return loss["bbox_regression"] + loss["classification"]

        def ours():
            bl, bm, cl = d2lssd.multibox_target(anc, labels)
            return d2lssd.multibox_loss(logits, cl, reg, bl, bm, reduction="mean")

        m = interleaved_medians({"tv": tv, "ours": ours}, repeat)
        rows.append((f"multibox_target + multibox_loss vs matcher + compute_loss, batch {batch}", m["ours"], m["tv"]))
    for n, groups in ((5_000, 1), (20_000, 20), (70_000, 160)):
        b, s = clustered_boxes(n, seed=groups)
        idx = torch.randint(0, groups, (n,), generator=torch.Generator().manual_seed(1))
        m = interleaved_medians({"tv": lambda: ops.batched_nms(b, s, idx, 0.5),
                                 "ours": lambda: d2lssd.batched_nms(b, s, idx, 0.5)}, repeat)
        rows.append((f"batched_nms, {n} boxes in {groups} groups", m["ours"], m["tv"]))
    print(f"{'operation':84s} {'d2lssd ms':>10s} {'tv ms':>9s} {'tv/ours':>8s}")
    for name, o, t in rows:
        print(f"{name:84s} {o:10.2f} {t:9.2f} {t / o:8.2f}")


if __name__ == "__main__":
    main()
