"""The typed configuration of a training run: :class:`TrainConfig` and its command line.

One field per training option of ``d2lssd train``, each with a type, a
default and its help text (``field(metadata={"help": ...})``), so that the
options, their ``--help`` text, the checks of a value and the record stored
in a checkpoint come from one place::

    >>> cfg = TrainConfig(checkpoint="runs/mine.pt", epochs=30)
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> TrainConfig(checkpoint="runs/mine.pt", epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: epochs: expected an integer >= 1, got 0

:func:`add_config_arguments` derives the argparse options from the fields
(``batch_size`` -> ``--batch-size``; choices for a ``Literal``; a flag for a
``bool``); :func:`config_from_args` builds the config from the parsed
options. A field's ``metadata`` may hold, besides ``help``:

* ``type``: the argparse ``type=`` that parses and checks the option's text
  (:func:`d2lssd.argtypes.positive_int` ...); the same function checks a value
  given from Python (on its ``str``), so both reject the same values with the
  same words;
* ``option``: the option's name when it is not the field's;
* ``required``: the option is required on the command line although the
  field has a default (``checkpoint``: ``None`` from Python writes none);
* ``metavar``: argparse's ``metavar``;
* ``off``: for a ``bool``, what ``--no-name`` does (``--no-augment``: "no
  augmentation, only the resize");
* ``alias_off``: a second name for ``--no-name`` (``--default-anchors`` for
  ``--no-fit-anchors``).

A ``bool`` field has both ``--name`` and ``--no-name``
(``argparse.BooleanOptionalAction``), since a preset may have set either.

Source: ours (``dataclasses``, ``typing.get_type_hints``, ``argparse``); the
option set follows torchvision's ``references/detection/train.py``
(``get_args_parser``) and what the Penn-Fudan command offered.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from types import NoneType, UnionType
from typing import Any, Callable, Literal, Mapping, Union, get_args, get_origin, get_type_hints

import torch

from ..argtypes import nonneg_int, positive_int

__all__ = ["TrainConfig", "add_config_arguments", "config_from_args", "validate_config", "DROP_BAD_HELP"]

#: The help of ``--drop-bad`` (``d2lssd train``'s field, ``evaluate``'s data option).
DROP_BAD_HELP = ("leave out the annotations and images d2lssd check-data reports, and say how many (default: "
                 "refuse a data set with problems)")


def _float_type(expected: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    """An argparse ``type=``: a finite number for which ``ok`` holds, else ``ArgumentTypeError`` naming ``expected``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    parse.__name__ = f"number ({expected})"  # argparse names the type in some errors
    return parse


_positive_float = _float_type("a number > 0", lambda v: v > 0)
_nonneg_float = _float_type("a number >= 0", lambda v: v >= 0)
_warmup_share = _float_type("a number in [0, 1)", lambda v: 0 <= v < 1)
_unit_interval = _float_type("a number in [0, 1]", lambda v: 0 <= v <= 1)


def _device(text: str) -> str:
    """An argparse ``type=``: a name ``torch.device`` accepts (``cpu``, ``cuda``, ``cuda:1``, ``mps`` ...)."""
    try:
        torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"expected a torch device such as cpu, cuda or cuda:1, got {text!r}") from None
    return text


def _registered_model(text: str) -> str:
    """An argparse ``type=``: the name of a model in :data:`d2lssd.models.registry.MODELS`."""
    from ..models.registry import MODELS, get_model

    try:
        return get_model(text).name
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(sorted(MODELS))} (the model registry), "
                                         f"got {text!r}") from None


def _opt(text: str, **more) -> dict:
    """A field's metadata: its help text and the optional ``type``, ``option``, ``required``, ``metavar``,
    ``off``, ``alias_off``."""
    return {"help": text, **more}


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The training options of ``d2lssd train``, typed and checked.

    Every field has a default except ``checkpoint``; the help text of each is
    in its metadata (``d2lssd train --help`` shows them). The data set
    (``--coco`` / ``--voc`` / ``--val-*``) is not part of it: those options are
    shared with ``evaluate`` and ``check-data`` (:mod:`d2lssd.commands.common`).

    Raises:
        ValueError: on construction, a field of the wrong type or out of range;
            the message names the field and what was expected, e.g.
            ``"epochs: expected an integer >= 1, got 0"``.

    Source: ours; the option set follows torchvision's
    ``references/detection/train.py`` (``get_args_parser``).
    """

    # --- the run
    checkpoint: str | None = field(default=None, metadata=_opt(
        "where to write the checkpoint (the best by validation AP50: NAME.best.pt next to it)", metavar="PATH",
        required=True))
    resume: bool = field(default=False, metadata=_opt("continue from --checkpoint if it exists"))
    preset: str | None = field(default=None, metadata=_opt(
        "a named preset of d2lssd.presets (its data and settings; an option given here wins): "
        "pennfudan, bananas-d2l, bananas-ssd, bananas-focal, tinyssd, scratch", metavar="NAME"))
    schedule: str | None = field(default=None, metadata=_opt(
        "the preset's schedule: cpu (short, for a CPU and CI), full (a GPU's), short (default: full on CUDA, "
        "else cpu)", metavar="NAME"))
    # --- the model
    model: str = field(default="tinyssd", metadata=_opt(
        "the SSD: a name of the model registry (d2lssd.models.registry: tinyssd, resnet34, tinyssd-bn, "
        "tinyssd-s4, scratchssd, and any "
        "registered since)", type=_registered_model, metavar="NAME"))
    size: int | None = field(default=None, metadata=_opt(
        "square input side in pixels (default: the registry's, 256 for tinyssd, 300 for resnet34)",
        type=positive_int, metavar="PX"))
    pretrained: bool = field(default=False, metadata=_opt("resnet34: start from ImageNet weights"))
    fit_anchors: bool = field(default=True, metadata=_opt(
        "anchors fitted to the training boxes, coverage before and after printed", alias_off="--default-anchors",
        off="keep the model's own anchors"))
    bn: Literal["train", "frozen"] = field(default="train", metadata=_opt(
        "BatchNorm: train (batch statistics; SyncBatchNorm under DDP on CUDA) or frozen (running statistics, "
        "the same function for any number of processes)"))
    # --- the optimization
    epochs: int = field(default=20, metadata=_opt("epochs", type=positive_int))
    batch_size: int = field(default=8, metadata=_opt("images per batch (per process under torchrun)",
                                                     type=positive_int))
    optimizer: Literal["adamw", "momentum", "sgd"] = field(default="adamw", metadata=_opt(
        "adamw, momentum (SGD with momentum 0.9, the SSD paper's) or sgd (plain, d2l's)"))
    lr: float = field(default=1e-3, metadata=_opt("peak learning rate", type=_positive_float))
    weight_decay: float = field(default=1e-4, metadata=_opt("weight decay", type=_nonneg_float))
    lr_schedule: Literal["cosine", "constant"] = field(default="cosine", metadata=_opt(
        "cosine: linear warm-up (--warmup) then cosine decay per step; constant: d2l's fixed rate"))
    warmup: float = field(default=0.05, metadata=_opt("share of the steps with a linear warm-up", type=_warmup_share))
    loss: Literal["ssd", "focal", "d2l"] = field(default="ssd", metadata=_opt(
        "ssd: hard negative mining 3:1 + smooth L1 over the positives (the paper's); focal: focal loss + "
        "smooth L1; d2l: cross-entropy over all anchors + L1 (d2l's ssd_loss)"))
    loss_normalize: Literal["batch", "image"] = field(default="batch", metadata=_opt(
        "ssd and focal: divide by the positives of the batch (the paper) or of each image"))
    amp: Literal["auto", "on", "off"] = field(default="auto", metadata=_opt(
        "mixed precision: auto is on CUDA only"))
    channels_last: Literal["auto", "on", "off"] = field(default="auto", metadata=_opt(
        "channels_last memory format: auto is on CUDA only"))
    patience: int | None = field(default=None, metadata=_opt(
        "stop when the validation AP50 has not improved for N epochs (the best checkpoint is kept)",
        type=positive_int, metavar="N"))
    time_budget: float | None = field(default=None, metadata=_opt(
        "stop after the epoch that passes this many minutes of training", type=_positive_float, metavar="MIN"))
    # --- the data
    augment: bool = field(default=True, metadata=_opt(
        "the SSD augmentation of the training images: photometric distortion, zoom out, IoU crop, flip",
        off="no augmentation, only the resize"))
    drop_bad: bool = field(default=False, metadata=_opt(DROP_BAD_HELP))
    val_split: int | None = field(default=None, metadata=_opt(
        "without --val-coco/--val-voc: hold out N training images (seeded) for validation", type=positive_int,
        metavar="N"))
    num_train: int | None = field(default=None, metadata=_opt(
        "use only the first N training images (default: all)", type=positive_int, metavar="N"))
    num_val: int | None = field(default=None, metadata=_opt(
        "use only the first N validation images (default: all)", type=positive_int, metavar="N"))
    data: str | None = field(default=None, metadata=_opt(
        "a preset's data: its folder (default: the d2lssd cache folder)", metavar="DIR"))
    source: Literal["auto", "real", "generated"] = field(default="auto", metadata=_opt(
        "a preset's data: auto (the real data if it can be downloaded, else generated look-alike data), real, "
        "or generated (offline)"))
    workers: int = field(default=0, metadata=_opt("data-loader processes", type=nonneg_int))
    # --- the detector it makes (d2lssd.PostProcess of predict, detect and export)
    score_threshold: float = field(default=0.5, metadata=_opt(
        "the detector's score threshold for predict and export", type=_unit_interval))
    nms_threshold: float = field(default=0.45, metadata=_opt("the detector's NMS IoU threshold",
                                                             type=_unit_interval))
    top_k: int = field(default=200, metadata=_opt("the detector's detections per image at most",
                                                   type=positive_int))
    report: bool = field(default=True, metadata=_opt(
        "write the run folder next to the checkpoint (runs/NAME.pt -> runs/NAME/): config.json, results.csv, "
        "plots; TensorBoard logs when tensorboard is installed", off="only the checkpoints"))
    # --- where and how it runs
    device: str | None = field(default=None, metadata=_opt(
        "cpu, cuda, cuda:1 ... (default: a GPU if there is one)", type=_device))
    seed: int = field(default=0, metadata=_opt("seed of the weights, the split and the order"))
    progress: bool = field(default=True, metadata=_opt("a progress bar per epoch", off="no progress bar"))

    def __post_init__(self):
        validate_config(self)

    def replace(self, **changes) -> TrainConfig:
        """A copy with ``changes`` (checked like a new config; ``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON-able data (str, int, float, bool, None), e.g. for a checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """The config of a :meth:`to_dict` dict; a field it lacks takes its default.

        Raises:
            ValueError: a key that is not a field, a missing field without a
                default, or a value :func:`validate_config` rejects.
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {', '.join(unknown)}")
        missing = [name for name, f in known.items() if _required(f) and name not in data]
        if missing:
            raise ValueError(f"{cls.__name__}: missing {', '.join(missing)}")
        return cls(**data)


def _required(f) -> bool:
    """True for a dataclass field without a default."""
    return f.default is MISSING and f.default_factory is MISSING


def _split_optional(hint) -> tuple[Any, bool]:
    """``(T, True)`` for ``T | None`` (or ``Optional[T]``), else ``(hint, False)``."""
    if get_origin(hint) in (Union, UnionType):
        rest = [a for a in get_args(hint) if a is not NoneType]
        if len(rest) == 1 and len(get_args(hint)) == 2:
            return rest[0], True
    return hint, False


def _type_problem(hint, value) -> str | None:
    """What is wrong with the Python type of ``value`` for ``hint`` (``None``: nothing)."""
    base, optional = _split_optional(hint)
    if value is None:
        return None if optional else "expected a value, got None"
    if get_origin(base) is Literal:
        choices = get_args(base)
        return None if value in choices else f"expected one of {', '.join(map(str, choices))}, got {value!r}"
    if base is bool:
        return None if isinstance(value, bool) else f"expected True or False, got {value!r}"
    if base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"expected an integer, got {value!r}"
    if base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"expected a number, got {value!r}"
    if base is str:
        return None if isinstance(value, str) and value else f"expected a non-empty string, got {value!r}"
    raise TypeError(f"no check for the type {hint!r}")


def validate_config(config) -> None:
    """Check every field of a config dataclass (such as :class:`TrainConfig`) against its type and ``type``.

    The Python type comes from the annotation (``int``, ``float``, ``str``,
    ``bool``, a ``Literal``, each optionally ``| None``); a field whose metadata
    has an argparse ``type`` must also pass it (on ``str(value)``), the check
    the command line applies.

    Raises:
        ValueError: ``"NAME: expected ..., got ..."`` for the first bad field.
    """
    hints = get_type_hints(type(config))
    for f in fields(config):
        value = getattr(config, f.name)
        problem = _type_problem(hints[f.name], value)
        check = f.metadata.get("type")
        if problem is None and value is not None and check is not None:
            try:
                check(str(value))
            except argparse.ArgumentTypeError as e:
                problem = str(e)
        if problem is not None:
            raise ValueError(f"{f.name}: {problem}")


def _argument(f, hint) -> tuple[str, dict]:
    """The option name and the ``add_argument`` keywords of one field."""
    base, _ = _split_optional(hint)
    text = f.metadata.get("help")
    if not text:
        raise TypeError(f"field {f.name} has no help text (field(metadata={{'help': ...}}))")
    kwargs: dict[str, Any] = dict(dest=f.name)
    if base is bool:  # --name and --no-name (a preset may have set either); the help says the default
        name = "--" + f.name.replace("_", "-")
        kwargs["action"] = argparse.BooleanOptionalAction
        kwargs["default"] = f.default
        text = f"{text}; --no-{f.name.replace('_', '-')}: {f.metadata.get('off', 'no')} (default: {f.default})"
    else:
        name = f.metadata.get("option", "--" + f.name.replace("_", "-"))
        if _required(f) or f.metadata.get("required"):
            kwargs["required"] = True
        else:
            kwargs["default"] = f.default
            text = text if f.default is None else f"{text} (default: {f.default})"
        if get_origin(base) is Literal:
            kwargs["choices"] = list(get_args(base))
        else:
            kwargs["type"] = f.metadata.get("type", base)
        if "metavar" in f.metadata:
            kwargs["metavar"] = f.metadata["metavar"]
    kwargs["help"] = text.replace("%", "%%")  # argparse formats help with %
    return name, kwargs


def add_config_arguments(parser: argparse.ArgumentParser, config_cls=TrainConfig, given_only: bool = False) -> None:
    """Add one option per field of ``config_cls`` to ``parser`` (see the module docstring).

    Args:
        parser: the command's parser (e.g. ``d2lssd train``'s).
        config_cls: a config dataclass whose fields all have ``help`` metadata
            (default :class:`TrainConfig`).

        given_only: no defaults in the namespace (``argparse.SUPPRESS``): only
            the options given on the command line are attributes, so that
            :func:`config_from_args` can lay them over a preset's settings.
            The help still shows the field's default.

    Each option stores into ``dest=<field name>``; its default is the field's,
    a field without default is a required option.

    Raises:
        TypeError: a field without help text or of a type with no option.
    """
    hints = get_type_hints(config_cls)
    for f in fields(config_cls):
        name, kwargs = _argument(f, hints[f.name])
        if given_only and not kwargs.get("required"):
            kwargs["default"] = argparse.SUPPRESS
        parser.add_argument(name, **kwargs)
        if "alias_off" in f.metadata:  # e.g. --default-anchors for --no-fit-anchors
            parser.add_argument(f.metadata["alias_off"], dest=f.name, action="store_false",
                                default=argparse.SUPPRESS if given_only else f.default,
                                help=f"the same as --no-{f.name.replace('_', '-')}")


def config_from_args(args: argparse.Namespace, config_cls=TrainConfig, base: Mapping[str, Any] | None = None):
    """The ``config_cls`` (default :class:`TrainConfig`) of the options :func:`add_config_arguments` added.

    Args:
        args: the parsed options; other attributes (the data options, the
            command's name) are ignored.
        base: field values under the options (a preset's settings, see
            :func:`d2lssd.presets.preset_settings`): an option present in
            ``args`` wins, a field in neither takes its default.

    Raises:
        ValueError: what the config's validation raises.
    """
    given = {f.name: getattr(args, f.name) for f in fields(config_cls) if hasattr(args, f.name)}
    return config_cls(**{**(base or {}), **given})
