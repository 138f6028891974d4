"""Training recipes for TinySSD on the banana data: d2l's, the SSD paper's, and focal loss.

A *recipe* is what the losses chapters compare: a loss (:mod:`d2lssd.losses`),
an optimizer and a learning-rate schedule. A *schedule* is how long it runs:
epochs, training images and batch size. Keeping both here, as data, lets the
chapters, ``tools/loss_experiment.py`` and the tests run exactly the same thing.

:func:`train_recipe` trains one recipe and caches the result: it writes the
checkpoint (model, optimizer, scheduler, history) under the d2lssd cache folder
in a file named after the recipe, the schedule, the seed, the data and a
fingerprint of the package's code. Calling it again with the same arguments in
the same environment loads that checkpoint instead of training again (the
chapters are executed twice in CI: once by nbval, once by the book build), and
says so. Any change of the package's code changes the fingerprint, so a stale
result is never reused.

Source: d2l.ai §14.7.3 (d2l's recipe); Liu et al. 2016 §2.2 and §3 (the SSD
loss; the paper trains with SGD and momentum, we use Adam, see
:data:`RECIPES`); Lin et al. 2017 (focal loss); Smith and Topin 2017
(one-cycle learning-rate schedule; one implementation for every trainer in :mod:`d2lssd.engine`).
"""

from __future__ import annotations

import torch

from .data.bananas import load_data_bananas
from .detector import Detector
from .device import try_gpu
from .engine.cache import cache_path, code_fingerprint
from .engine.schedule import make_optimizer as engine_optimizer
from .losses import MultiBoxLoss, ssd_loss
from .models import TinySSD
from .train import evaluate_ap, train_ssd

__all__ = ["RECIPES", "LOSS_SCHEDULES", "make_optimizer", "train_recipe", "code_fingerprint"]

#: The recipes the losses chapters compare. ``loss``: options of
#: :class:`d2lssd.MultiBoxLoss`, or ``None`` for d2l's :func:`d2lssd.ssd_loss`;
#: ``optimizer``: ``"sgd"`` (d2l's: lr 0.2, weight decay 5e-4, no schedule) or
#: ``"adam"`` (AdamW at ``lr``, decayed to ``lr / 1e4`` along a cosine over the
#: run; with ``warmup`` > 0 a one-cycle schedule: linear warm-up over that share
#: of the steps from ``lr / 25``, then the cosine); ``batch_size`` (optional):
#: the recipe's own batch size, which replaces the schedule's (d2l's recipe
#: keeps d2l's 32, so that it runs as d2l wrote it). The Adam recipes and the
#: CPU batch size were chosen on a tuning set (generated bananas, seed 1, 200
#: images), not on the validation set: with lr 1e-3, 4 epochs of 1000 images,
#: tuning AP50 after epochs 1 / 2 / 3 / 4 was 0.26 / 0.88 / 0.96 / 0.96 at
#: batch 32, 0.69 / 0.95 / 0.98 / 0.99 at batch 16 and 0.90 / 0.97 / 1.00 /
#: 1.00 at batch 8 (COCO AP 0.46, 0.55, 0.66 after 4 epochs): at a fixed
#: number of images, four times more updates matter more than the noisier
#: gradients, and on a CPU a batch of 8 is not slower per image than a batch of
#: 32 (about 70 s against 90 s per epoch on 2 cores).
RECIPES = {
    # (a) d2l: cross-entropy over all anchors + L1 over all entries, SGD
    "d2l": dict(loss=None, optimizer="sgd", lr=0.2, weight_decay=5e-4, batch_size=32),
    # (b) the SSD paper: hard negative mining 3:1 + smooth L1, divided by N
    "ssd": dict(loss=dict(cls_loss="hard_negative", box_loss="smooth_l1"), optimizer="adam", lr=1e-3,
                weight_decay=0.0, warmup=0.0),
    # (c) focal loss over all anchors (gamma 2, alpha 0.25) + smooth L1, divided by N
    "focal": dict(loss=dict(cls_loss="focal", box_loss="smooth_l1"), optimizer="adam", lr=1e-3,
                  weight_decay=0.0, warmup=0.0),
}

#: How long a recipe runs (a recipe's own ``batch_size`` replaces the one here).
#: ``"full"``: d2l's budget (20 epochs of the 1000 images, batch 32; for a
#: GPU). ``"cpu"``: the losses chapter's budget on a CPU, 4 epochs of 1000
#: images in batches of 8 (500 steps, about 5 minutes on 2 cores).
#: ``"short"``: the focal chapter's three-recipe comparison on a CPU, 2 epochs
#: of 500 images each, batches of 8.
LOSS_SCHEDULES = {
    "full": dict(num_epochs=20, num_train=1000, batch_size=32),
    "cpu": dict(num_epochs=4, num_train=1000, batch_size=8),
    "short": dict(num_epochs=2, num_train=500, batch_size=8),
}


def make_optimizer(recipe: dict, net: torch.nn.Module, total_steps: int):
    """The optimizer and per-step learning-rate scheduler of a recipe (:func:`d2lssd.engine.make_optimizer`).

    Args:
        recipe: a value of :data:`RECIPES` (keys ``optimizer``, ``lr``,
            ``weight_decay``, and ``warmup`` for Adam).
        net: the model whose parameters are optimized.
        total_steps: optimizer steps of the whole run (for the schedule), >= 1.

    Returns:
        ``(optimizer, scheduler)``; ``scheduler`` is ``None`` for SGD (d2l's
        constant learning rate); for Adam (AdamW), stepped once per batch, the
        engine's schedule (:func:`d2lssd.engine.lr_factor`): without warm-up a
        cosine to ``lr / 1e4`` (equal to ``CosineAnnealingLR``), else a linear
        warm-up from ``lr / 25`` over that share of the steps, then the cosine.

    Raises:
        ValueError: an unknown optimizer or ``total_steps < 1``.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if recipe["optimizer"] == "sgd":
        return engine_optimizer(net, "sgd", recipe["lr"], recipe["weight_decay"])
    if recipe["optimizer"] == "adam":
        return engine_optimizer(net, "adamw", recipe["lr"], recipe["weight_decay"], total_steps=total_steps,
                                warmup=recipe.get("warmup", 0.0))
    raise ValueError(f"recipe optimizer must be 'sgd' or 'adam', got {recipe['optimizer']!r}")


def _loss_fn(recipe: dict):
    return ssd_loss if recipe["loss"] is None else MultiBoxLoss(**recipe["loss"])


def train_recipe(recipe: str | dict, schedule: str | dict = "cpu", seed: int = 0, data=None, device=None,
                 cache: bool = True, cache_dir=None, plot="auto", progress: bool = False) -> dict:
    """Train a fresh TinySSD with one recipe and schedule; return the model, history and AP.

    Args:
        recipe: a key of :data:`RECIPES` or such a dict.
        schedule: a key of :data:`LOSS_SCHEDULES` or such a dict
            (``num_epochs``, ``num_train``, ``batch_size``); the recipe's
            ``batch_size``, if it has one, replaces the schedule's.
        seed: seeds the model's initialisation and the order of the training
            images.
        data: ``(train_iter, val_iter)`` from :func:`d2lssd.load_data_bananas`
            (default: loaded with ``seed=0``, printing which data). The first
            ``num_train`` training images are used, reshuffled every epoch.
        device: default :func:`d2lssd.try_gpu`.
        cache: reuse (and write) the checkpoint of an identical earlier run,
            see the module docstring. ``False`` always trains, writing
            nothing to the cache.
        cache_dir: folder of the cached runs; default
            ``<d2lssd cache>/runs``.
        plot, progress: passed to :func:`d2lssd.train_ssd`.

    Returns:
        dict with ``net`` (trained, eval mode), ``detector`` (the same
        network as a :class:`d2lssd.Detector`: class ``banana``, the
        registry's 0..255 input, the paper's post-processing), ``history``
        (:class:`d2lssd.History`), ``ap`` (:func:`d2lssd.evaluate_ap` on the
        validation set, without the per-image lists), ``train_seconds``
        (training time of the run that produced the weights, from its history),
        ``cached`` (True if the weights were loaded), ``checkpoint`` (path or
        None), ``recipe``, ``schedule``, ``seed``, ``data`` (the data source
        description) and ``device``.

    Raises:
        KeyError: an unknown recipe or schedule name.
        ValueError: what :func:`make_optimizer` and :func:`d2lssd.train_ssd`
            raise.
    """
    name = recipe if isinstance(recipe, str) else "custom"
    rec = dict(RECIPES[recipe]) if isinstance(recipe, str) else dict(recipe)
    sch = dict(LOSS_SCHEDULES[schedule]) if isinstance(schedule, str) else dict(schedule)
    if "batch_size" in rec:
        sch["batch_size"] = rec["batch_size"]
    device = torch.device(device) if device is not None else try_gpu()
    train_iter, val_iter = data if data is not None else load_data_bananas(sch["batch_size"], seed=0)
    dataset = train_iter.dataset
    n = min(sch["num_train"], len(dataset))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(n)), batch_size=sch["batch_size"],
                                         shuffle=True, generator=torch.Generator().manual_seed(seed))
    source = getattr(train_iter, "data_source", None)
    data_desc = source.description if source is not None else "unknown data"
    torch.manual_seed(seed)
    net = TinySSD(num_classes=1)
    opt, sched = make_optimizer(rec, net, sch["num_epochs"] * len(loader))
    checkpoint = None
    if cache:
        settings = dict(recipe=rec, schedule=sch, seed=seed, n=n, data=getattr(source, "kind", None),
                        root=str(getattr(source, "root", "")), device=device.type)
        checkpoint = cache_path(f"tinyssd-{name}", settings, cache_dir, code=code_fingerprint())
    cached = checkpoint is not None and checkpoint.is_file()
    if cached:
        print(f"recipe '{name}': loading the weights trained earlier with the same settings and code "
              f"from the cache ({checkpoint.name})", flush=True)
    detector = Detector(net, class_names=["banana"])  # the banana data's one class; the registry's 0..255 input
    history = train_ssd(net, loader, val_iter, num_epochs=sch["num_epochs"], optimizer=opt, lr_scheduler=sched,
                        device=device, loss_fn=_loss_fn(rec), checkpoint_path=checkpoint, resume=cached,
                        plot=plot if not cached else None, progress=progress, channels_last=True,
                        checkpoint_extra={"detector": detector.spec})
    net.eval()
    ap = evaluate_ap(net, val_iter, device=device)
    ap = {k: v for k, v in ap.items() if k not in ("detections", "targets")}
    return dict(net=net, detector=detector, history=history, ap=ap, train_seconds=float(sum(history["epoch_time_s"])),
                cached=cached, checkpoint=checkpoint, recipe=name, schedule=sch, seed=seed, data=data_desc,
                device=str(device))
