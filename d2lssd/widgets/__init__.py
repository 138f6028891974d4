"""Explorers for the chapters: anchors, IoU, NMS and losses with knobs to turn.

Three modules, one job each:

* :mod:`d2lssd.widgets.static`: the machinery. A drawing callback
  ``draw(ax, **values)`` becomes live ipywidgets sliders (Jupyter, Colab) or a
  :class:`StaticExplorer` whose frames are drawn in advance and swapped by
  inline JavaScript (the built book, :data:`STATIC_ENV`); no chapter idea in it.
* :mod:`d2lssd.widgets.explorers`: the chapters' explorers, each a plain
  ``draw_*(ax, ...)`` function that the tests call without a browser, and an
  ``*_explorer(...)`` that hands it to the machinery.
* :mod:`d2lssd.widgets.detections`: :func:`detections_like_boxes`, the fake
  detector output the NMS chapter runs NMS on (no plotting).

Importing this package imports matplotlib (through :mod:`d2lssd.plotting`);
``import d2lssd`` does not import it until an explorer is first used.
"""

from .detections import detections_like_boxes
from .explorers import (anchor_explorer, draw_anchors, draw_iou, draw_losses, draw_nms, iou_explorer,
                        loss_explorer, nms_explorer)
from .static import STATIC_ENV, StaticExplorer, StaticExplorerRow, static_explorer

__all__ = ["draw_anchors", "anchor_explorer", "draw_iou", "iou_explorer", "draw_nms",
           "nms_explorer", "detections_like_boxes", "draw_losses", "loss_explorer",
           "static_explorer", "StaticExplorer", "StaticExplorerRow", "STATIC_ENV"]
