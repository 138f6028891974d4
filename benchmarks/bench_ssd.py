"""d2lssd against torchvision's own SSD where both do the same work, measured in one run.

    python benchmarks/bench_ssd.py [--repeat 9] [--threads N] [--busy SECONDS] [--only post,loss,nms]

Inputs are SSD300's (torchvision ``ssd300_vgg16``, 21 classes): its 8732
default boxes (torchvision's ``DefaultBoxGenerator`` on SSD300's feature
maps, normalized for d2lssd) and head outputs like an untrained network's
(logits with std 4, offsets with std 3.6: most anchors score above 0.01 in
every class) or a trained one's (30 confident anchors per image).

* post-processing: ``SSD.postprocess_detections`` (score 0.01, top 400 per
  class, NMS 0.45, 200 per image) vs :func:`d2lssd.ssd_postprocess` with the
  same settings (the same detections, asserted here, ties aside), both
  backends; d2l's argmax semantics (:func:`d2lssd.multibox_detection`) beside it;
* targets + loss: torchvision's matcher (per image) + ``SSD.compute_loss``
  vs :func:`d2lssd.multibox_target` + :func:`d2lssd.multibox_loss` (checked,
  and the unchecked twins the training loop runs), equal values asserted;
* ``batched_nms``: 5,000 to 70,000 clustered boxes in 1 to 160 groups vs
  ``torchvision.ops.batched_nms`` and vs ``torchvision.ops.nms`` on the same
  boxes (no groups: a lower bound on the work).

Each row's timings are medians of interleaved calls (ours, theirs, ours,
...), so load changes hit both; the ratio is theirs / ours (> 1: d2lssd is
faster). ``--busy S`` starts a CPU-bound 2-thread PyTorch process (it ends
by itself after S seconds) and measures everything again beside it.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torchvision.ops as ops
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(__file__))
from common import busy_process, clustered_boxes, interleaved_medians  # noqa: E402

import d2lssd  # noqa: E402

MATCHING = sys.modules["d2lssd.matching"]
LOSSES = sys.modules["d2lssd.losses"]


def ssd300():
    """torchvision's SSD300 (untrained, 21 classes) and its 8732 anchors in pixels (300 x 300)."""
    from torchvision.models.detection import ssd300_vgg16
    from torchvision.models.detection.image_list import ImageList

    model = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21).eval()
    feats = [torch.zeros(1, 1, s, s) for s in (38, 19, 10, 5, 3, 1)]
    anchors = model.anchor_generator(ImageList(torch.zeros(1, 3, 300, 300), [(300, 300)]), feats)[0]
    return model, anchors


def head_outputs(batch, num_anchors, trained, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, num_anchors, 21, generator=g) * 4
    reg = torch.randn(batch, num_anchors, 4, generator=g) * (0.5 if trained else 3.6)
    if trained:
        logits[..., 0] += 12  # background everywhere ...
        for b in range(batch):  # ... but 30 confident anchors per image
            idx = torch.randperm(num_anchors, generator=g)[:30]
            logits[b, idx, 0] -= 24
    return logits, reg


def ground_truth(batch, seed=0):
    """1 to 5 objects per image: torchvision's target dicts (pixels, labels 1..20) and d2lssd's (B, 5, 5)."""
    g = torch.Generator().manual_seed(seed)
    targets, labels = [], torch.full((batch, 5, 5), -1.0)
    for b in range(batch):
        n = int(torch.randint(1, 6, (1,), generator=g))
        c = torch.rand(n, 2, generator=g) * 0.6 + 0.2
        wh = torch.rand(n, 2, generator=g) * 0.3 + 0.05
        box = torch.cat((c - wh / 2, c + wh / 2), 1)
        cls = torch.randint(1, 21, (n,), generator=g)
        targets.append({"boxes": box * 300, "labels": cls})
        labels[b, :n, 0], labels[b, :n, 1:] = cls - 1.0, box
    return targets, labels


def _canonical(rows):
    """Detection rows sorted by (score, class, xmin, ymin): the same set gives the same tensor."""
    import numpy as np

    r = rows.numpy()
    return torch.from_numpy(r[np.lexsort((r[:, 3].round(4), r[:, 2].round(4), r[:, 0], r[:, 1]))])


def post_rows(model, anchors, repeat):
    rows = []
    anc = (anchors / 300)[None]
    for batch in (1, 8):
        for trained in (False, True):
            logits, reg = head_outputs(batch, anchors.shape[0], trained, seed=batch)
            probs = F.softmax(logits, -1).permute(0, 2, 1)
            head = {"cls_logits": logits, "bbox_regression": reg}

            def tv():
                return model.postprocess_detections(head, [anchors] * batch, [(300, 300)] * batch)

            ref, ours = tv(), d2lssd.ssd_postprocess(probs, reg, anc)
            for r, o in zip(ref, ours):  # the same detections, in an order that ignores ties
                o = o[o[:, 0] >= 0]
                theirs = torch.cat(((r["labels"] - 1)[:, None].float(), r["scores"][:, None], r["boxes"] / 300), 1)
                assert len(o) == len(theirs)
                assert torch.allclose(_canonical(o), _canonical(theirs), atol=1e-5)
            m = interleaved_medians({
                "tv": tv,
                "auto": lambda: d2lssd.ssd_postprocess(probs, reg, anc),
                "ours": lambda: d2lssd.ssd_postprocess(probs, reg, anc, backend="d2lssd"),
                "d2l": lambda: d2lssd.multibox_detection(probs, reg.reshape(batch, -1), anc, 0.45, 0.01, 200),
            }, repeat)
            what = f"post-processing, batch {batch}, {'trained-like' if trained else 'untrained'}"
            rows.append((what + " (ssd_postprocess)", m["auto"], m["tv"]))
            rows.append((what + " (same, backend='d2lssd')", m["ours"], m["tv"]))
            rows.append((what + " (d2l semantics: multibox_detection)", m["d2l"], m["tv"]))
    return rows


def loss_rows(model, anchors, repeat):
    from torchvision.ops import boxes as box_ops

    rows = []
    anc = (anchors / 300)[None]
    for batch in (8, 32):
        targets, labels = ground_truth(batch, seed=batch)
        logits, reg = head_outputs(batch, anchors.shape[0], trained=False, seed=batch)
        head = {"cls_logits": logits, "bbox_regression": reg}

        def tv():
            matched = [model.proposal_matcher(box_ops.box_iou(t["boxes"], anchors)) for t in targets]
            loss = model.compute_loss(targets, head, [anchors] * batch, matched)
            return loss["bbox_regression"] + loss["classification"]

        def checked():
            bl, bm, cl = d2lssd.multibox_target(anc, labels)
            return d2lssd.multibox_loss(logits, cl, reg, bl, bm, reduction="mean")

        def unchecked():
            bl, bm, cl = MATCHING._multibox_target(anc, labels)
            return LOSSES._multibox_loss(logits, cl, reg, bl, bm, reduction="mean")

        want = tv()
        assert torch.allclose(checked(), want, rtol=1e-5) and torch.allclose(unchecked(), want, rtol=1e-5)
        m = interleaved_medians({"tv": tv, "checked": checked, "unchecked": unchecked}, repeat)
        rows.append((f"targets + loss, batch {batch} (checked)", m["checked"], m["tv"]))
        rows.append((f"targets + loss, batch {batch} (unchecked, the training loop's)", m["unchecked"], m["tv"]))
    return rows


def nms_rows(repeat):
    rows = []
    for n, groups in ((5_000, 1), (5_000, 160), (20_000, 20), (70_000, 1), (70_000, 160)):
        b, s = clustered_boxes(n, seed=groups)
        idx = torch.randint(0, groups, (n,), generator=torch.Generator().manual_seed(1))
        ours, ref = d2lssd.batched_nms(b, s, idx, 0.5), ops.batched_nms(b, s, idx, 0.5)
        assert set(ours.tolist()) == set(ref.tolist())  # same boxes; the order of equal scores may differ
        m = interleaved_medians({
            "auto": lambda: d2lssd.batched_nms(b, s, idx, 0.5),
            "ours": lambda: d2lssd.batched_nms(b, s, idx, 0.5, backend="d2lssd"),
            "tv": lambda: ops.batched_nms(b, s, idx, 0.5),
            "tv_nms": lambda: ops.nms(b, s, 0.5),
        }, repeat)
        what = f"batched_nms, {n} boxes in {groups} groups"
        rows.append((what + " vs tv batched_nms", m["auto"], m["tv"]))
        rows.append((what + " (backend='d2lssd') vs tv batched_nms", m["ours"], m["tv"]))
        rows.append((what + " vs tv nms, no groups", m["auto"], m["tv_nms"]))
        rows.append((what + " (backend='d2lssd') vs tv nms", m["ours"], m["tv_nms"]))
    return rows


def measure(parts, repeat):
    rows = []
    if "post" in parts or "loss" in parts:
        model, anchors = ssd300()
        if "post" in parts:
            rows += post_rows(model, anchors, repeat)
        if "loss" in parts:
            rows += loss_rows(model, anchors, repeat)
    if "nms" in parts:
        rows += nms_rows(repeat)
    return rows


def print_rows(rows, title):
    print(title)
    print(f"{'operation':78s} {'d2lssd ms':>10s} {'tv ms':>9s} {'tv/ours':>8s}")
    for name, ours, theirs in rows:
        print(f"{name:78s} {ours:10.2f} {theirs:9.2f} {theirs / ours:8.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--busy", type=float, default=0.0,
                   help="also measure beside a CPU-bound 2-thread process that lives this many seconds")
    p.add_argument("--only", default="post,loss,nms", help="comma-separated parts: post, loss, nms")
    args, _ = p.parse_known_args(argv)  # run_all.py passes the other benchmarks' options too
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = set(args.only.split(","))
    head = (f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
            f"median of {args.repeat} interleaved calls; tv/ours > 1: d2lssd is faster")
    rows = measure(parts, args.repeat)
    print_rows(rows, "idle (other jobs may share the machine): " + head)
    if args.busy > 0:
        proc = busy_process(args.busy)
        try:
            busy = measure(parts, args.repeat)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        print()
        print_rows(busy, f"busy (a CPU-bound 2-thread process beside it): " + head)
        return rows, busy
    return rows, None


if __name__ == "__main__":
    main()
