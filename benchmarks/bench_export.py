"""Latency of the exported detector: PyTorch eager (Detector.predict) against onnxruntime, on the CPU.

    python benchmarks/bench_export.py [--checkpoint CKPT] [--model tinyssd|resnet34] [--batches 1 8]
                                      [--threads N] [--repeat 15] [--score-threshold 0.5]

Both sides run the whole inference on the same uint8 images (generated banana
validation images, seeded) at the model's input size: preprocessing, the network, softmax, decoding, score threshold,
per-class NMS and top-k (PyTorch: :meth:`d2lssd.Detector.predict` on
:meth:`~d2lssd.Detector.scale_pixels` of the images, the detector's
post-processing; onnxruntime: the file written by :func:`d2lssd.export_onnx`,
``CPUExecutionProvider``, default graph optimizations). Printed: warm medians
per image in milliseconds (2 warm-up runs, then ``--repeat`` timed ones) and
the ratio, measured in one run with the same number of threads for both
(``torch.set_num_threads`` and onnxruntime's ``intra_op_num_threads``).

Without ``--checkpoint`` the model is untrained (seeded); its scores hover
around 0.5, so NMS sees thousands of candidates: use a trained checkpoint
(e.g. the losses chapter's, in ``~/.cache/d2lssd/runs``) for a realistic
post-processing share. The detections of the two are checked equal first
(:func:`d2lssd.export.check_export`, on the package's photos).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import median_ms  # noqa: E402

import d2lssd  # noqa: E402
from d2lssd import export as E  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="a trained checkpoint (default: an untrained, seeded model)")
    p.add_argument("--model", choices=("tinyssd", "resnet34"), default="tinyssd",
                   help="architecture without --checkpoint (default tinyssd)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch sizes (default 1 8)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(),
                   help="threads for both runtimes (default torch's)")
    p.add_argument("--repeat", type=int, default=15, help="timed runs per measurement (default 15)")
    p.add_argument("--score-threshold", type=float, default=0.5)
    p.add_argument("--iou-threshold", type=float, default=0.5)
    a = p.parse_args(argv)

    import onnxruntime as ort

    torch.set_num_threads(a.threads)
    if a.checkpoint:
        det = d2lssd.load_detector(a.checkpoint, "cpu")
        what = f"checkpoint {Path(a.checkpoint).name}"
    else:
        torch.manual_seed(0)
        det = d2lssd.Detector(d2lssd.models.build_model(a.model, 1))
        what = f"untrained {type(det.net).__name__} (seed 0)"
    det = det.with_postprocess(score_threshold=a.score_threshold, nms_threshold=a.iou_threshold).cpu().eval()
    h, w = det.input_size
    with tempfile.TemporaryDirectory() as tmp:
        path = E.export_onnx(det, Path(tmp) / "model.onnx", top_k=100, check=False)
        size_mb = path.stat().st_size / 1e6
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = a.threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        print(f"{what}, input {h}x{w}, ONNX file {size_mb:.2f} MB; torch {torch.__version__}, onnxruntime "
              f"{ort.__version__}, {a.threads} threads; score threshold {a.score_threshold}, "
              f"IoU threshold {a.iou_threshold}; warm medians of {a.repeat} runs")
        # generated banana validation images (seeded, offline), resized to the input size if needed
        root = d2lssd.generate_bananas(Path(tmp) / "banana-detection", 1, max(a.batches), seed=5)
        x_all, _ = d2lssd.read_data_bananas(False, root)
        if tuple(x_all.shape[2:]) != (h, w):
            x_all = torch.nn.functional.interpolate(x_all.float(), size=(h, w), mode="bilinear",
                                                    antialias=True).round().clamp(0, 255).to(torch.uint8)
        check = E.check_export(path, det)
        print(f"equality first: {check['summary']}")
        print(f"{'batch':>5} {'PyTorch eager ms/img':>21} {'onnxruntime ms/img':>19} {'speed-up':>9} {'dets/img':>9}")
        for b in a.batches:
            x = x_all[:b]
            xf = det.scale_pixels(x)

            def eager():
                return det.predict(xf, top_k=100)

            feed = {"images": x.numpy(), "score_threshold": torch.tensor(a.score_threshold).numpy(),
                    "iou_threshold": torch.tensor(a.iou_threshold).numpy()}

            def onnx():
                return sess.run(None, feed)

            with torch.inference_mode():
                t_eager = median_ms(eager, repeat=a.repeat) / b
            t_ort = median_ms(onnx, repeat=a.repeat) / b
            dets = float(onnx()[3].mean())
            print(f"{b:5d} {t_eager:21.1f} {t_ort:19.1f} {t_eager / t_ort:8.2f}x {dets:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
