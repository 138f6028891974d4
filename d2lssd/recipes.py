"""The loss chapters' training recipes on the banana data, with a cache: :func:`train_recipe`.

A *recipe* is what the losses chapters compare: a loss (:mod:`d2lssd.losses`),
an optimizer and a learning-rate schedule, on TinySSD and d2l's banana data.
The recipes are presets of the one trainer (:data:`d2lssd.presets.PRESETS`:
``bananas-d2l``, ``bananas-ssd``, ``bananas-focal``, each with the schedules
``full``, ``cpu`` and ``short``); ``d2lssd train --preset bananas-ssd`` runs
the same thing from the command line. Keeping them as data lets the chapters,
``tools/loss_experiment.py`` and the tests run exactly the same thing.

:func:`train_recipe` trains one recipe with :func:`d2lssd.trainer.train_detector`
and caches the result: it writes the checkpoint (model, optimizer, scheduler,
history) under the d2lssd cache folder in a file named after the recipe, the
settings, the data and a fingerprint of the package's code. Calling it again
with the same arguments in the same environment loads that checkpoint instead
of training again (the chapters are executed twice in CI: once by nbval, once
by the book build), and says so. Any change of the package's code changes the
fingerprint, so a stale result is never reused.

:func:`owndata_recipe` is the own-data chapter's run, a command line of
``d2lssd train`` on generated COCO data, named once so that the deployment
chapter exports the very checkpoint the own-data chapter trained.

Source: d2l.ai §14.7.3 (d2l's recipe); Liu et al. 2016 §2.2 and §3 (the SSD
loss; the paper trains with SGD and momentum, we use AdamW, see
:mod:`d2lssd.presets`); Lin et al. 2017 (focal loss).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .device import try_gpu
from .engine.cache import cache_path, code_fingerprint
from .presets import PRESETS, preset_config
from .train import evaluate_ap
from .trainer import TrainingData, train_detector

__all__ = ["RECIPE_NAMES", "owndata_recipe", "recipe_config", "train_recipe"]

#: The recipes of the losses chapters: name -> preset.
RECIPE_NAMES = {"d2l": "bananas-d2l", "ssd": "bananas-ssd", "focal": "bananas-focal"}

#: Fields that do not change the trained weights (left out of the cache key).
_NOT_THE_WEIGHTS = ("checkpoint", "resume", "workers", "progress", "device")


def recipe_config(recipe: str, schedule: str = "cpu", **overrides):
    """The :class:`~d2lssd.engine.TrainConfig` of a recipe (``"d2l"``, ``"ssd"``, ``"focal"``) and schedule.

    Args:
        recipe: a key of :data:`RECIPE_NAMES`, or a preset name.
        schedule: ``"full"``, ``"cpu"`` or ``"short"``.
        **overrides: fields laid over the preset's (e.g. ``epochs=1``).

    Raises:
        KeyError: an unknown recipe. ValueError: an unknown schedule or a bad field.
    """
    name = RECIPE_NAMES.get(recipe, recipe)
    if name not in PRESETS:
        raise KeyError(f"recipe must be one of {', '.join(RECIPE_NAMES)} (or a preset), got {recipe!r}")
    return preset_config(name, schedule, **overrides)


def train_recipe(recipe: str, schedule: str = "cpu", seed: int = 0, data=None, device=None, cache: bool = True,
                 cache_dir=None, plot="auto", progress: bool = False, **overrides) -> dict:
    """Train a fresh TinySSD with one recipe and schedule; return the model, history and AP.

    Args:
        recipe: ``"d2l"``, ``"ssd"`` or ``"focal"`` (:data:`RECIPE_NAMES`).
        schedule: ``"full"``, ``"cpu"`` or ``"short"``: how long it runs.
        seed: seeds the model's initialisation and the order of the training
            images.
        data: ``(train_iter, val_iter)`` from :func:`d2lssd.load_data_bananas`
            (their datasets are used; default: the preset's data, obtained
            and announced by the trainer). The first ``num_train`` training
            images are used, reshuffled every epoch.
        device: default :func:`d2lssd.try_gpu`.
        cache: reuse (and write) the checkpoint of an identical earlier run,
            see the module docstring. ``False`` always trains, writing
            nothing to the cache.
        cache_dir: folder of the cached runs; default ``<d2lssd cache>/runs``.
        plot, progress: passed to :func:`d2lssd.train_ssd`.
        **overrides: :class:`~d2lssd.engine.TrainConfig` fields laid over the
            recipe's (``epochs``, ``num_train``, ``batch_size`` ...).

    Returns:
        dict with ``net`` (trained, eval mode), ``detector`` (the same
        network as a :class:`d2lssd.Detector`: class ``banana``, the
        registry's 0..255 input, the paper's post-processing), ``history``
        (:class:`d2lssd.History`), ``ap`` (:func:`d2lssd.evaluate_ap` on the
        validation set, without the per-image lists), ``train_seconds``
        (training time of the run that produced the weights, from its history),
        ``cached`` (True if the weights were loaded), ``checkpoint`` (path or
        None), ``recipe``, ``schedule``, ``config`` (the
        :class:`~d2lssd.engine.TrainConfig`), ``seed``, ``data`` (the data
        source description) and ``device``.

    Raises:
        KeyError: an unknown recipe. ValueError: an unknown schedule, a bad
        field, and what :func:`d2lssd.trainer.train_detector` raises.
    """
    device = torch.device(device) if device is not None else try_gpu()
    config = recipe_config(recipe, schedule, **{"seed": seed, "device": str(device), "progress": progress,
                                                "report": False, **overrides})  # the chapters draw their own
    opened = None
    if data is not None:
        train_iter, val_iter = data
        source = getattr(train_iter, "data_source", None) or getattr(train_iter.dataset, "data_source", None)
        opened = TrainingData(train_iter.dataset, val_iter.dataset, ["banana"],
                              kind=getattr(source, "kind", "files"),
                              description=source.description if source is not None else "unknown data")
    checkpoint = None
    if cache:
        kind = opened.kind if opened is not None else config.source
        root = str(getattr(getattr(train_iter, "data_source", None), "root", "")) if data is not None else ""
        settings = dict(config={k: v for k, v in config.to_dict().items() if k not in _NOT_THE_WEIGHTS},
                        data=kind, root=root, device=device.type)
        checkpoint = cache_path(f"tinyssd-{recipe}", settings, cache_dir, code=code_fingerprint())
    cached = checkpoint is not None and checkpoint.is_file()
    if cached:
        print(f"recipe '{recipe}': loading the weights trained earlier with the same settings and code "
              f"from the cache ({checkpoint.name})", flush=True)
    config = config.replace(checkpoint=str(checkpoint) if checkpoint is not None else None, resume=cached)
    run = train_detector(config, opened, plot=plot if not cached else None, log=not cached)
    net = run.detector.net.eval()
    ap = evaluate_ap(net, _val_loader(run.data, config.batch_size), device=device)
    ap = {k: v for k, v in ap.items() if k not in ("detections", "targets")}
    return dict(net=net, detector=run.detector, history=run.history, ap=ap,
                train_seconds=float(sum(run.history["epoch_time_s"])), cached=cached, checkpoint=checkpoint,
                recipe=recipe, schedule=config.schedule, config=config, seed=seed,
                data=run.data.description, device=str(device))


def _val_loader(data: TrainingData, batch_size: int):
    from .data.collate import collate_ssd

    return torch.utils.data.DataLoader(data.val, batch_size, shuffle=False, collate_fn=collate_ssd)


def owndata_recipe(schedule: str = "cpu", device=None, folder="runs", model: str | None = None) -> dict:
    """The own-data chapter's training run: its data, its ``d2lssd train`` command and its cached checkpoint.

    Generates (once; nothing is written when it is there) the two-class COCO
    data of :func:`d2lssd.generate_multiclass_coco` (200 training and 50
    validation JPEG photos, seed 0) in ``folder/owndata`` and names the
    checkpoint ``folder/owndata-SCHEDULE-DIGEST.pt`` by a digest of the
    options, the data's stamp, the device type and the package's code
    (:func:`d2lssd.engine.cache_path`). Nothing is trained here: run
    ``d2lssd`` with ``argv`` (with ``--resume``, a finished run only loads).
    The own-data chapter and the deployment chapter both call it, so they
    share one run.

    Args:
        schedule: ``"full"`` (60 epochs with SSD's augmentation, for a GPU) or
            ``"cpu"`` (10 epochs without augmentation); see
            :func:`d2lssd.pick_schedule`.
        device: the device the run trains on (only its type enters the
            digest); default :func:`d2lssd.try_gpu`.
        folder: where the data folder and the checkpoint go (the chapters use
            ``runs`` beside the notebook).
        model: the model registry's name (``--model``); ``None`` or the
            default of ``d2lssd train`` is the chapter's run, another is the
            same run with that model (the scratch chapter's comparison),
            under its own checkpoint name.

    Returns:
        dict with ``data`` (Path of the COCO folder: ``train.json``,
        ``val.json``, ``images/``), ``model`` (str, the registry's name), ``epochs`` (int), ``augment`` (bool),
        ``options`` (the training options, a list of str), ``checkpoint``
        (Path; the best epoch's is :func:`d2lssd.engine.best_path` of it) and
        ``argv`` (list of str: ``train --coco ... --checkpoint ... --resume
        --no-progress``, for ``python -m d2lssd``).

    Raises:
        ValueError: a schedule other than ``"full"`` and ``"cpu"``; a model not in the registry.

    Source: ours; the settings are the own-data chapter's (its "Training from the command line" section).
    """
    from .data.multiclass import generate_multiclass_coco
    from .engine.config import TrainConfig
    from .models.registry import get_model

    if schedule not in ("full", "cpu"):
        raise ValueError(f"schedule must be 'full' or 'cpu', got {schedule!r}")
    default = TrainConfig.__dataclass_fields__["model"].default
    model = default if model is None else get_model(model).name
    device = torch.device(device) if device is not None else try_gpu()
    root = Path(folder) / "owndata"
    generate_multiclass_coco(root, num_train=200, num_val=50, seed=0)
    epochs, augment = {"full": (60, True), "cpu": (10, False)}[schedule]
    options = ["--epochs", epochs, "--batch-size", 8, "--lr", 2e-3, "--seed", 0] + ([] if augment else ["--no-augment"])
    if model != default:  # the default model's run keeps its name (and its cache) from before the option existed
        options += ["--model", model]
    checkpoint = cache_path(f"owndata-{schedule}" + ("" if model == default else f"-{model}"), dict(
        options=options, data=(root / "GENERATED.txt").read_text(), device=device.type), cache_dir=folder)
    argv = ["train", "--coco", root / "train.json", "--images", root / "images", "--val-coco", root / "val.json",
            "--val-images", root / "images", *options, "--checkpoint", checkpoint, "--resume", "--no-progress"]
    return dict(data=root, model=model, epochs=epochs, augment=augment, options=[str(o) for o in options],
                checkpoint=checkpoint, argv=[str(a) for a in argv])
