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
* ``option``: the option's name when it is not the field's (``fit_anchors``
  is turned off by ``--default-anchors``);
* ``metavar``: argparse's ``metavar``;
* ``off``: for a ``bool`` that is ``True`` by default, what its option does
  (the help of ``--no-augment`` is "no augmentation, only the resize
  (default: the SSD augmentation ...)").

A ``bool`` field that is ``False`` by default is turned on by ``--name``
(``store_true``); one that is ``True`` by default is turned off by
``--no-name`` (``store_false``).

Source: ours (``dataclasses``, ``typing.get_type_hints``, ``argparse``); the
option set follows torchvision's ``references/detection/train.py``
(``get_args_parser``) and what the Penn-Fudan command offered.
"""

from __future__ import annotations

import argparse
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
    """A field's metadata: its help text and the optional ``type``, ``option``, ``metavar``, ``off``."""
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

    checkpoint: str = field(metadata=_opt("where to write the checkpoint (the best by validation AP50: "
                                          "NAME.best.pt next to it)", metavar="PATH"))
    resume: bool = field(default=False, metadata=_opt("continue from --checkpoint if it exists"))
    model: str = field(default="tinyssd", metadata=_opt(
        "the SSD: a name of the model registry (d2lssd.models.registry: tinyssd, resnet34, and any "
        "registered since)", type=_registered_model, metavar="NAME"))
    size: int | None = field(default=None, metadata=_opt(
        "square input side in pixels (default: the registry's, 256 for tinyssd, 300 for resnet34)",
        type=positive_int, metavar="PX"))
    pretrained: bool = field(default=False, metadata=_opt("resnet34: start from ImageNet weights"))
    epochs: int = field(default=20, metadata=_opt("epochs", type=positive_int))
    batch_size: int = field(default=8, metadata=_opt("images per batch (per process under torchrun)",
                                                     type=positive_int))
    lr: float = field(default=1e-3, metadata=_opt("AdamW peak learning rate", type=_positive_float))
    weight_decay: float = field(default=1e-4, metadata=_opt("AdamW weight decay", type=_nonneg_float))
    warmup: float = field(default=0.05, metadata=_opt("share of the steps with a linear warm-up", type=_warmup_share))
    fit_anchors: bool = field(default=True, metadata=_opt(
        "anchors fitted to the training boxes, coverage before and after printed", option="--default-anchors",
        off="keep the model's own anchors"))
    augment: bool = field(default=True, metadata=_opt(
        "the SSD augmentation of the training images: photometric distortion, zoom out, IoU crop, flip",
        off="no augmentation, only the resize"))
    drop_bad: bool = field(default=False, metadata=_opt(DROP_BAD_HELP))
    val_split: int | None = field(default=None, metadata=_opt(
        "without --val-coco/--val-voc: hold out N training images (seeded) for validation", type=positive_int,
        metavar="N"))
    device: str | None = field(default=None, metadata=_opt(
        "cpu, cuda, cuda:1 ... (default: a GPU if there is one)", type=_device))
    workers: int = field(default=0, metadata=_opt("data-loader processes", type=nonneg_int))
    seed: int = field(default=0, metadata=_opt("seed of the weights, the split and the order"))
    progress: bool = field(default=True, metadata=_opt("a progress bar per epoch", off="no progress bar"))

    def __post_init__(self):
        validate_config(self)

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
    if base is bool:
        on = f.default is True
        name = f.metadata.get("option", ("--no-" if on else "--") + f.name.replace("_", "-"))
        kwargs["action"] = "store_false" if on else "store_true"
        text = f"{f.metadata.get('off', 'turn off')} (default: {text})" if on else text
    else:
        name = f.metadata.get("option", "--" + f.name.replace("_", "-"))
        if _required(f):
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


def add_config_arguments(parser: argparse.ArgumentParser, config_cls=TrainConfig) -> None:
    """Add one option per field of ``config_cls`` to ``parser`` (see the module docstring).

    Args:
        parser: the command's parser (e.g. ``d2lssd train``'s).
        config_cls: a config dataclass whose fields all have ``help`` metadata
            (default :class:`TrainConfig`).

    Each option stores into ``dest=<field name>``; its default is the field's,
    a field without default is a required option.

    Raises:
        TypeError: a field without help text or of a type with no option.
    """
    hints = get_type_hints(config_cls)
    for f in fields(config_cls):
        name, kwargs = _argument(f, hints[f.name])
        parser.add_argument(name, **kwargs)


def config_from_args(args: argparse.Namespace, config_cls=TrainConfig):
    """The ``config_cls`` (default :class:`TrainConfig`) of the options :func:`add_config_arguments` added.

    Args:
        args: the parsed options; other attributes (the data options, the
            command's name) are ignored.

    Raises:
        ValueError: what the config's validation raises.
    """
    return config_cls(**{f.name: getattr(args, f.name) for f in fields(config_cls)})
