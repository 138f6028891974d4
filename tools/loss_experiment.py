"""Compare the losses chapters' recipes on TinySSD and the banana data; record the results as JSON.

    python tools/loss_experiment.py                         # d2l, ssd, focal; 'cpu' schedule; seed 0
    python tools/loss_experiment.py --recipes ssd --seeds 0 1 2
    python tools/loss_experiment.py --schedule full --out notebooks/results/loss_experiment_full.json

Every run trains a fresh TinySSD with :func:`d2lssd.train_recipe` (seeded:
model initialisation and data order) and reports, on the validation set,
AP50 and COCO AP@[.5:.95] (101-point), the class error and the box MAE on the
positive anchors, and the training time. Uses the real banana data when it can
be downloaded, else the generated data (``D2LSSD_OFFLINE=1`` forces it); the
JSON says which, with the date, device, command and versions. The focal chapter
reads the JSON (``notebooks/results/loss_experiment.json``) and labels it as a
recorded run. ``--append`` adds runs to an existing file (one recipe or seed at
a time on a slow machine).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import sys

import torch

import d2lssd
from d2lssd._io import atomic_write
from d2lssd.presets import PRESETS, preset_settings
from d2lssd.recipes import RECIPE_NAMES

DEFAULT_OUT = os.path.join(os.path.dirname(__file__), os.pardir, "notebooks", "results", "loss_experiment.json")


def run_one(recipe: str, schedule: str, seed: int, data, device) -> dict:
    out = d2lssd.train_recipe(recipe, schedule, seed=seed, data=data, device=device, cache=False, plot="text")
    last = out["history"].last
    return dict(recipe=recipe, seed=seed, AP50=out["ap"]["AP50"], AP=out["ap"]["AP"], AP75=out["ap"]["AP75"],
                val_class_error_positive=last["val_class_error_positive"], val_bbox_mae_positive=last["val_bbox_mae_positive"],
                train_seconds=out["train_seconds"],
                images_per_second=statistics.median(out["history"]["throughput"]),
                history=out["history"].records)


def _data_label(source) -> str:
    """Which data, without the machine's paths: 'real d2l banana data' or 'generated banana data (...)'."""
    if source.kind == "real":
        return "real d2l banana data"
    marker = os.path.join(source.root, "GENERATED.txt")
    fields = {}
    if os.path.isfile(marker):
        with open(marker) as f:
            fields = dict(line.split(": ", 1) for line in f.read().splitlines() if ": " in line)
    keys = ("generator_version", "seed", "num_train", "num_val")
    return "generated banana data (" + ", ".join(f"{k} {fields[k]}" for k in keys if k in fields) + ")"


def summarise(runs: list[dict]) -> dict:
    """Mean and spread (min, max, population std) of AP50 and AP per recipe."""
    table = {}
    for recipe in dict.fromkeys(r["recipe"] for r in runs):
        rs = [r for r in runs if r["recipe"] == recipe]
        row = {"seeds": [r["seed"] for r in rs]}
        for key in ("AP50", "AP", "val_class_error_positive", "val_bbox_mae_positive", "train_seconds"):
            vals = [r[key] for r in rs]
            row[key] = dict(mean=statistics.fmean(vals), min=min(vals), max=max(vals),
                            std=statistics.pstdev(vals))
        table[recipe] = row
    return table


def write_json(path: str, obj) -> None:
    """Write ``obj`` as JSON atomically (temporary file in the same folder, then rename)."""
    text = (json.dumps(obj, indent=1) + "\n").encode()
    atomic_write(path, lambda f: f.write(text))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipes", nargs="+", choices=sorted(RECIPE_NAMES), default=["d2l", "ssd", "focal"])
    p.add_argument("--schedule", choices=sorted(PRESETS["bananas-ssd"].schedules), default="cpu")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--out", default=DEFAULT_OUT, help="JSON file to write (default: %(default)s)")
    p.add_argument("--append", action="store_true", help="add the runs to those already in --out")
    p.add_argument("--note", default=None,
                   help="one line on the conditions of the run (e.g. other work on the machine), kept in the JSON")
    args = p.parse_args(argv)
    device = d2lssd.try_gpu()
    data = d2lssd.load_data_bananas(preset_settings("bananas-ssd", args.schedule)["batch_size"], seed=0)
    print("device:", d2lssd.describe_device(device), "| torch threads:", torch.get_num_threads(), flush=True)
    previous, commands, notes = [], [], []
    this_command = shlex.join(["python", "tools/loss_experiment.py", *(sys.argv[1:] if argv is None else argv)])
    if args.append and os.path.isfile(args.out):
        with open(args.out) as f:
            old = json.load(f)
        previous, commands, notes = old["runs"], [old["command"]], list(old.get("notes", []))
    if args.note:
        notes.append(args.note)
    runs = list(previous)
    for seed in args.seeds:
        for recipe in args.recipes:
            print(f"--- recipe {recipe}, schedule {args.schedule}, seed {seed}", flush=True)
            run = run_one(recipe, args.schedule, seed, data, device)
            runs.append(run)
            print(json.dumps({k: v for k, v in run.items() if k != "history"}), flush=True)
            result = dict(
                date=datetime.date.today().isoformat(), device=d2lssd.describe_device(device),
                cpu=platform.processor() or platform.machine(), torch_threads=torch.get_num_threads(),
                torch=torch.__version__, d2lssd=d2lssd.__version__,
                data=_data_label(data[0].data_source), schedule=args.schedule,
                schedule_config=PRESETS["bananas-ssd"].schedules[args.schedule],
                recipes={k: preset_settings(p, args.schedule) for k, p in RECIPE_NAMES.items()},
                command=" && ".join(commands + [this_command]), notes=notes,
                summary=summarise(runs), runs=runs)
            write_json(args.out, result)  # after every run: an interrupted experiment keeps what it had
    print(json.dumps(summarise(runs), indent=1))


if __name__ == "__main__":
    main()
