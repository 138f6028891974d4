"""The model registry: one table from a model's name to how it is built and what input it takes.

Every place that picks a model by name reads this table: ``d2lssd train
--model`` (its choices), anchor fitting (:func:`d2lssd.fit_anchors` with a
name), the detector (:class:`d2lssd.Detector`: input size and input
convention of a model it wraps), checkpoints (a detector's spec names its
model here, and :func:`d2lssd.load_detector` rebuilds it from here) and the
ONNX export (which takes the detector). Adding a backbone is one module with
an :class:`~d2lssd.models.SSDBase` subclass plus one :func:`register_model`
call (the README, "Adding a model", lists the steps).

An entry's **input convention** is what the network expects of an image:
``uint8 RGB (3, H, W)``, resized to ``input_size`` (bilinear with
antialiasing, aspect ratio not kept, as :class:`d2lssd.transforms.SSDEvalTransform`),
then ``x = uint8 / pixel_scale`` as float32. TinySSD follows d2l (pixels in
[0, 255], ``pixel_scale`` 1); the ResNet-34 SSD takes [0, 1] (``pixel_scale``
255) and normalizes to ImageNet statistics inside the network. Every trainer
feeds images this way, and the detector and the ONNX graph preprocess this
way, so the two can no longer disagree.

Source: the shape of torchvision's ``references/detection`` (``--model``
picks a builder by name) and detectron2's model registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from .scratch import ScratchSSD, TinySSDNormHeads, TinySSDStride4
from .ssd_resnet import SSDResNet34
from .tinyssd import TinySSD

__all__ = ["ModelEntry", "MODELS", "PIXEL_SCALES", "INPUT_CONVENTION", "register_model", "get_model", "model_name_of", "build_model"]

#: The pixel scales a convention may have: 1 (network input in [0, 255]) or 255 (in [0, 1]).
PIXEL_SCALES = (1.0, 255.0)
#: The parts of the input convention that are the same for every model (stored in every detector spec).
INPUT_CONVENTION = {"channels": "RGB", "exif_orientation": "applied",
                    "resize": "bilinear with antialiasing to (H, W), aspect ratio not kept"}


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its builder and its defaults.

    Attributes:
        name: the registry key (``--model NAME``), lower case.
        model_class: the ``nn.Module`` class the builder returns (a subclass
            of :class:`~d2lssd.models.SSDBase`: it has ``num_classes``,
            ``sizes``, ``ratios`` and ``MIN_SIZE``).
        build: ``build(num_classes, sizes=None, ratios=None, pretrained=False)``
            -> a fresh model (``sizes`` / ``ratios``: anchors per level,
            ``None`` for the model's own).
        input_size: default square input side in pixels.
        pixel_scale: the input convention (see the module docstring): 1 or 255.
        pretrained: whether ``pretrained=True`` means anything (ImageNet weights).
        description: one line for ``--help``.
    """

    name: str
    model_class: type
    build: Callable[..., nn.Module] = field(repr=False)
    input_size: int
    pixel_scale: float
    pretrained: bool = False
    description: str = ""


#: name -> :class:`ModelEntry`; filled by :func:`register_model` (TinySSD and the ResNet-34 SSD below).
MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, model_class: type, build: Callable[..., nn.Module] | None = None, *,
                   input_size: int, pixel_scale: float, pretrained: bool = False, description: str = "",
                   replace: bool = False) -> ModelEntry:
    """Add a model to :data:`MODELS` (``--model`` choices, detectors, checkpoints, export).

    Args:
        name: the key, lower-case letters, digits, ``-`` or ``_``.
        model_class: the class of the models ``build`` returns (an SSD
            model with ``num_classes``, ``sizes``, ``ratios``).
        build: ``build(num_classes, sizes=None, ratios=None, pretrained=False)``;
            default ``model_class(num_classes, sizes=sizes, ratios=ratios)``
            (``pretrained`` must then be False).
        input_size: default square input side in pixels (>= the model's ``MIN_SIZE``).
        pixel_scale: 1 (the network takes pixels in [0, 255]) or 255 (in [0, 1]).
        pretrained: ``build`` understands ``pretrained=True``.
        description: one line for ``--help``.
        replace: allow replacing an existing entry (tests, notebooks re-run).

    Returns:
        the new :class:`ModelEntry`.

    Raises:
        ValueError: a bad name, an existing name without ``replace``, a
            ``pixel_scale`` other than 1 or 255, a non-positive input size, a
            class already registered under another name.

    Source: ours (detectron2's ``Registry`` and torchvision's model builders, in small).
    """
    if not isinstance(name, str) or not name or name != name.lower() or not all(
            c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"name must be a lower-case word (letters, digits, - or _), got {name!r}")
    if name in MODELS and not replace:
        raise ValueError(f"a model named {name!r} is already registered (replace=True to change it)")
    if not isinstance(model_class, type) or not issubclass(model_class, nn.Module):
        raise ValueError(f"model_class must be an nn.Module subclass, got {model_class!r}")
    others = [e.name for e in MODELS.values() if e.model_class is model_class and e.name != name]
    if others:
        raise ValueError(f"{model_class.__name__} is already registered as {others[0]!r}")
    if float(pixel_scale) not in PIXEL_SCALES:
        raise ValueError(f"pixel_scale must be 1 (pixels in [0, 255]) or 255 (in [0, 1]), got {pixel_scale!r}")
    if isinstance(input_size, bool) or int(input_size) != input_size or input_size < 1:
        raise ValueError(f"input_size must be a positive integer, got {input_size!r}")
    if build is None:
        def build(num_classes, sizes=None, ratios=None, pretrained=False, _cls=model_class):
            if pretrained:
                raise ValueError(f"{name}: no pretrained weights")
            return _cls(num_classes, sizes=sizes, ratios=ratios)
    entry = ModelEntry(name, model_class, build, int(input_size), float(pixel_scale), bool(pretrained),
                       description)
    MODELS[name] = entry
    return entry


def get_model(name: str) -> ModelEntry:
    """The entry registered as ``name``.

    Raises:
        ValueError: no such model; the message lists the registered names.
    """
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(sorted(MODELS))}, got {name!r}")
    return MODELS[name]


def model_name_of(net: nn.Module) -> str:
    """The registry name of ``net``'s class (exact class first, then its base classes).

    Raises:
        ValueError: a model whose class is not registered (register it with
            :func:`register_model`, or give the name).
    """
    for cls in type(net).__mro__:
        for entry in MODELS.values():
            if entry.model_class is cls:
                return entry.name
    raise ValueError(f"{type(net).__name__} is not a registered model (d2lssd.models.register_model); "
                     f"registered: {', '.join(sorted(MODELS))}")


def build_model(name: str, num_classes: int, sizes=None, ratios=None, pretrained: bool = False) -> nn.Module:
    """A fresh model of the registered ``name`` with ``num_classes`` object classes.

    Args:
        name: a key of :data:`MODELS`.
        num_classes: object classes ``q`` (background added by the model).
        sizes, ratios: anchors per level (``None``: the model's own).
        pretrained: ImageNet weights where the entry has them.

    Raises:
        ValueError: an unknown name, ``pretrained`` for a model without
            weights, and what the model's constructor raises.
    """
    entry = get_model(name)
    if pretrained and not entry.pretrained:
        raise ValueError(f"{name} has no pretrained weights (only {', '.join(n for n, e in MODELS.items() if e.pretrained)})")
    return entry.build(num_classes, sizes=sizes, ratios=ratios, pretrained=pretrained)


def _build_resnet34(num_classes, sizes=None, ratios=None, pretrained=False):
    return SSDResNet34(num_classes, pretrained=pretrained, sizes=sizes, ratios=ratios)


register_model("tinyssd", TinySSD, input_size=256, pixel_scale=1.0,
               description="d2l's TinySSD (5 levels, 256 px, pixels in [0, 255] as d2l)")
register_model("resnet34", SSDResNet34, _build_resnet34, input_size=300, pixel_scale=255.0, pretrained=True,
               description="SSD on a ResNet-34 backbone (6 levels, 300 px, pixels in [0, 1])")
register_model("tinyssd-bn", TinySSDNormHeads, input_size=256, pixel_scale=1.0,
               description="TinySSD with normalized heads (conv-BN-ReLU before each predictor; ScratchDet)")
register_model("tinyssd-s4", TinySSDStride4, input_size=256, pixel_scale=1.0,
               description="TinySSD with a sixth, stride-4 first level for small objects")
register_model("scratchssd", ScratchSSD, input_size=256, pixel_scale=1.0,
               description="TinySSD with normalized heads and a stride-4 first level (the scratch preset's)")
