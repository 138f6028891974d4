"""Downloads are checksummed and atomic; archives are extracted safely.

No test touches the network: files are served from ``file://`` URLs, and
failures are simulated by replacing ``d2lssd.data.download._urlopen``.
"""

import hashlib
import io
import urllib.error
import zipfile
from pathlib import Path

import pytest

from d2lssd.data import download as dl


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@pytest.fixture
def served(tmp_path):
    """A 3 MiB file (several 1 MiB chunks) on a file:// URL: (url, bytes, sha1)."""
    data = bytes(range(256)) * (3 * 4096 + 17)
    src = tmp_path / "server" / "payload.bin"
    src.parent.mkdir()
    src.write_bytes(data)
    return src.as_uri(), data, _sha1(data)


def _no_network(*args, **kwargs):
    raise AssertionError("the network was used although the cached file is valid")


class _Response:
    """A response that yields ``chunks`` and then raises ``error`` (if any)."""

    def __init__(self, chunks, error=None, length=None):
        self.chunks, self.error = list(chunks), error
        self.headers = {"Content-Length": str(length)} if length is not None else {}

    def read(self, n=-1):
        if self.chunks:
            return self.chunks.pop(0)
        if self.error:
            raise self.error
        return b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_from_file_url_and_cache_hit(served, tmp_path, monkeypatch):
    url, data, sha1 = served
    cache = tmp_path / "cache"
    path = dl.download(url, sha1, cache_dir=cache)
    assert path == cache / "payload.bin" and path.read_bytes() == data
    assert sorted(p.name for p in cache.iterdir()) == ["payload.bin"]  # no temp left
    monkeypatch.setattr(dl, "_urlopen", _no_network)
    assert dl.download(url, sha1.upper(), cache_dir=cache) == path


def test_checksum_mismatch_raises_and_leaves_no_file(served, tmp_path):
    url, _, _ = served
    cache = tmp_path / "cache"
    with pytest.raises(dl.DownloadError, match="checksum mismatch"):
        dl.download(url, "0" * 40, cache_dir=cache)
    assert list(cache.iterdir()) == []


def test_checksum_mismatch_keeps_the_existing_cached_file(served, tmp_path):
    url, _, _ = served
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "payload.bin").write_bytes(b"older file")
    with pytest.raises(dl.DownloadError):
        dl.download(url, "0" * 40, cache_dir=cache)
    assert (cache / "payload.bin").read_bytes() == b"older file"
    assert [p.name for p in cache.iterdir()] == ["payload.bin"]


def test_truncated_cached_file_is_downloaded_again(served, tmp_path):
    url, data, sha1 = served
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "payload.bin").write_bytes(data[: len(data) // 2])  # an old partial download
    path = dl.download(url, sha1, cache_dir=cache)
    assert path.read_bytes() == data
    assert dl.sha1sum(path) == sha1


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    data = b"x" * 5000
    monkeypatch.setattr(dl, "_urlopen", lambda url, timeout: _Response(
        [data[:2000]], error=ConnectionResetError("connection reset by peer")))
    cache = tmp_path / "cache"
    with pytest.raises(dl.DownloadError, match="connection reset") as info:
        dl.download("http://example.invalid/f.zip", _sha1(data), cache_dir=cache)
    assert isinstance(info.value, OSError)
    assert isinstance(info.value.__cause__, ConnectionResetError)
    assert list(cache.iterdir()) == []


def test_short_transfer_is_detected_by_content_length(tmp_path, monkeypatch):
    data = b"y" * 100
    monkeypatch.setattr(dl, "_urlopen",
                        lambda url, timeout: _Response([data[:60]], length=len(data)))
    with pytest.raises(dl.DownloadError, match="incomplete download"):
        dl.download("http://example.invalid/f.bin", _sha1(data), cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_network_failure_is_a_download_error(tmp_path, monkeypatch):
    def fail(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(dl, "_urlopen", fail)
    with pytest.raises(dl.DownloadError, match="could not download .*Name or service"):
        dl.download("banana-detection", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_timeout_is_passed_to_the_opener(tmp_path, monkeypatch):
    seen = {}

    def opener(url, timeout):
        seen.update(url=url, timeout=timeout)
        return _Response([b"abc"])

    monkeypatch.setattr(dl, "_urlopen", opener)
    dl.download("http://example.invalid/a/b.txt?x=1", _sha1(b"abc"), cache_dir=tmp_path,
                timeout=7.5)
    assert seen == {"url": "http://example.invalid/a/b.txt?x=1", "timeout": 7.5}
    assert (tmp_path / "b.txt").read_bytes() == b"abc"


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="neither a URL nor a name"):
        dl.download("no-such-data-set", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="SHA-1 checksum is required"):
        dl.download("http://example.invalid/f.zip", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="40 hex digits"):
        dl.download("http://example.invalid/f.zip", "abc", cache_dir=tmp_path)


def test_data_hub_has_d2ls_banana_entry():
    url, sha1 = dl.DATA_HUB["banana-detection"]
    assert url == "http://d2l-data.s3-accelerate.amazonaws.com/banana-detection.zip"
    assert sha1 == "5de26c8fce5ccdea9f91267273464dc968d20d72"


def test_cache_dir_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("D2LSSD_DATA", str(tmp_path / "d"))
    assert dl.cache_dir() == tmp_path / "d"
    monkeypatch.delenv("D2LSSD_DATA")
    assert dl.cache_dir() == Path.home() / ".cache" / "d2lssd"


# --- extraction --------------------------------------------------------------------------

def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_extract_is_idempotent_and_leaves_no_temp(tmp_path):
    z = _zip(tmp_path / "toy.zip", {"toy/a.txt": "A", "toy/sub/b.txt": "B"})
    out = tmp_path / "out"
    assert dl.extract(z, out) == out
    assert (out / "toy" / "a.txt").read_text() == "A"
    assert (out / "toy" / "sub" / "b.txt").read_text() == "B"
    (out / "toy" / "a.txt").write_text("edited")  # a second call extracts nothing
    dl.extract(z, out)
    assert (out / "toy" / "a.txt").read_text() == "edited"
    assert [p.name for p in out.iterdir()] == ["toy"]


@pytest.mark.parametrize("evil", ["../evil.txt", "toy/../../evil.txt", "/tmp/evil.txt",
                                  "..\\evil.txt", "C:/evil.txt"])
def test_extract_rejects_zip_slip(tmp_path, evil):
    z = _zip(tmp_path / "evil.zip", {"toy/ok.txt": "fine", evil: "pwned"})
    out = tmp_path / "a" / "out"
    with pytest.raises(ValueError, match="unsafe path in archive"):
        dl.extract(z, out)
    assert not out.exists()  # nothing at all was written
    assert not (tmp_path / "a" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_extract_corrupt_zip_raises(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(zipfile.BadZipFile):
        dl.extract(bad, tmp_path / "out")


def test_download_extract_with_a_hub_entry(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("toy-data/x.csv", "a,b\n1,2\n")
    src = tmp_path / "server" / "toy-data.zip"
    src.parent.mkdir()
    src.write_bytes(buf.getvalue())
    monkeypatch.setitem(dl.DATA_HUB, "toy-data", (src.as_uri(), _sha1(buf.getvalue())))
    cache = tmp_path / "cache"
    data_dir = dl.download_extract("toy-data", cache_dir=cache)
    assert data_dir == cache / "toy-data"
    assert (data_dir / "x.csv").read_text() == "a,b\n1,2\n"
    monkeypatch.setattr(dl, "_urlopen", _no_network)  # second call: all cached
    assert dl.download_extract("toy-data", cache_dir=cache) == data_dir
    with pytest.raises(ValueError, match="did not contain the folder 'other'"):
        dl.download_extract("toy-data", folder="other", cache_dir=cache)


def test_download_verifies_an_md5_instead_of_a_sha1(tmp_path):
    src = tmp_path / "src" / "data.zip"
    src.parent.mkdir()
    src.write_bytes(b"pedestrians" * 1000)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    path = dl.download(src.as_uri(), md5=md5, cache_dir=tmp_path / "cache")
    assert path.read_bytes() == src.read_bytes()
    with pytest.raises(dl.DownloadError, match="expected MD5"):
        dl.download(src.as_uri(), md5="0" * 32, cache_dir=tmp_path / "other")
    assert list((tmp_path / "other").iterdir()) == []  # nothing left behind
    with pytest.raises(ValueError, match="md5 must be 32 hex digits"):
        dl.download(src.as_uri(), md5=md5[:-1], cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="not both"):
        dl.download(src.as_uri(), sha1=dl.sha1sum(src), md5=md5, cache_dir=tmp_path / "cache")
