"""Sphinx extension of the d2lssd book (loaded by _config.yml, sphinx.local_extensions).

* Sets ``D2LSSD_STATIC_EXPLORERS=1`` in the build process before any chapter
  runs. The kernels that execute the chapters inherit it, so the explorers
  (``d2lssd.anchor_explorer`` and friends, called with ``static=None``)
  return their static HTML version: precomputed frames behind HTML sliders,
  which respond in the web page without a kernel and without network. In
  Jupyter and Colab the variable is unset and the same cells show ipywidgets.
* Adds ``book/_static/d2lssd.css`` (long code lines and outputs wrap instead
  of running past the right edge).
* The live detector (``d2lssd.live.live_detector``): vendors onnxruntime-web
  into ``book/_static/ort`` when missing and loads it, with
  ``book/_static/d2lssd-live.js``, only on pages that show a detector (see
  ``d2lssd_ort.py``).
"""

import os
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "_static"


def _add_static_path(app):
    app.config.html_static_path.append(str(STATIC))


def setup(app):
    os.environ["D2LSSD_STATIC_EXPLORERS"] = "1"
    app.connect("builder-inited", _add_static_path)
    app.add_css_file("d2lssd.css")
    import d2lssd_ort  # book/_ext is on sys.path (sphinx.local_extensions)

    d2lssd_ort.setup(app)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
