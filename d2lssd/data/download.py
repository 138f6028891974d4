"""Downloading and extracting data sets: checksummed, atomic, safe.

Every file is identified by a URL and the SHA-1 of its bytes. A cached file is
used only if its checksum matches; anything else in its place (a truncated
download, a corrupt file, another file of the same name) is detected and
replaced. A download is streamed into a temporary file next to its final
place, verified, and only then renamed into place with :func:`os.replace`, so
an interrupted or failed download never leaves a file that looks complete.
Archives are checked for members that would escape the target folder
("zip slip") and extracted into a temporary folder that is renamed into place.

Where files go: the folder named by the environment variable ``D2LSSD_DATA``,
else ``~/.cache/d2lssd`` (one cache per user, independent of the folder a
notebook runs in; d2l uses ``../data`` relative to the notebook instead).

Source: d2l.ai §"Utility Functions and Classes" (``DATA_HUB``, ``download``,
``download_extract``: same names, same hub entry for the banana data), made
safe against partial downloads, checksum mismatches and unsafe archives.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from .._io import atomic_write

__all__ = [
    "DATA_HUB",
    "DATA_URL",
    "DownloadError",
    "cache_dir",
    "sha1sum",
    "download",
    "extract",
    "download_extract",
]

#: Where d2l keeps its data sets.
DATA_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"

#: name -> (URL, SHA-1 of the file's bytes). Same entries as d2l's ``DATA_HUB``.
DATA_HUB: dict[str, tuple[str, str]] = {
    "banana-detection": (DATA_URL + "banana-detection.zip",
                         "5de26c8fce5ccdea9f91267273464dc968d20d72"),
}

_CHUNK = 1 << 20  # 1 MiB


class DownloadError(OSError):
    """A download failed: network error, incomplete transfer or checksum mismatch.

    A subclass of ``OSError``, so ``except OSError`` catches it too. When it is
    raised no partial file is left behind.
    """


def cache_dir() -> Path:
    """The folder where downloads and data sets are kept.

    Returns:
        ``Path(os.environ["D2LSSD_DATA"])`` if that variable is set and not
        empty, else ``~/.cache/d2lssd``. The folder is not created here.
    """
    env = os.environ.get("D2LSSD_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "d2lssd"


def sha1sum(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes as 40 lowercase hex digits (read in 1 MiB chunks).

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


_default_cache_dir = cache_dir  # `download` has an argument of the same name

# The one place that opens a URL; tests replace it to simulate the network.
_urlopen = urllib.request.urlopen


_NAMES = {"sha1": "SHA-1", "md5": "MD5"}


def _filehash(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _resolve(name_or_url: str, sha1: str | None, md5: str | None = None) -> tuple[str, str, str]:
    """``(url, algorithm, expected hex digest)``; ValueError on a missing or malformed checksum."""
    if sha1 and md5:
        raise ValueError("give one checksum, sha1 or md5, not both")
    if name_or_url in DATA_HUB:
        url, hub_sha1 = DATA_HUB[name_or_url]
        if not md5:
            sha1 = sha1 or hub_sha1
    elif "://" in name_or_url:
        url = name_or_url
    else:
        raise ValueError(f"{name_or_url!r} is neither a URL nor a name in DATA_HUB "
                         f"(known names: {sorted(DATA_HUB)})")
    if md5:
        algorithm, digest, digits = "md5", md5.lower(), 32
    elif sha1:
        algorithm, digest, digits = "sha1", sha1.lower(), 40
    else:
        raise ValueError(f"a SHA-1 checksum is required to download {url} (or md5=)")
    if len(digest) != digits or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{algorithm} must be {digits} hex digits, got {digest!r}")
    return url, algorithm, digest


def download(name_or_url: str, sha1: str | None = None,
             cache_dir: str | os.PathLike | None = None, timeout: float = 30.0, *,
             md5: str | None = None) -> Path:
    """Download a file once, verify its SHA-1, and return its local path.

    If ``cache_dir/<file name>`` exists and its SHA-1 equals ``sha1`` it is
    returned without touching the network. Otherwise the URL is streamed (1 MiB
    chunks, ``urllib``) into a temporary file in ``cache_dir``, the checksum and
    (if the server sent one) the Content-Length are verified, and the file is
    moved into place (:func:`d2lssd._io.atomic_write`: fsync, then
    :func:`os.replace`, atomic on one file system). A cached file with a
    wrong checksum (truncated, corrupt) is never returned: it is replaced by
    the fresh download.

    Args:
        name_or_url: a key of :data:`DATA_HUB` (e.g. ``"banana-detection"``) or
            a URL (``http``, ``https``, ``file``, anything ``urllib`` opens).
            The file name is the last component of the URL's path.
        sha1: expected SHA-1 (40 hex digits). Optional for a ``DATA_HUB``
            name (its entry's checksum is used), required for a URL.
        cache_dir: folder to keep the file in (created if needed); default
            :func:`cache_dir`.
        timeout: seconds to wait for the connection and for each read.
        md5: expected MD5 (32 hex digits) instead of ``sha1``, for files
            whose publisher gives only an MD5 (``PennFudanPed.zip``).

    Returns:
        ``Path`` of the verified file.

    Raises:
        ValueError: unknown name, missing or malformed ``sha1`` / ``md5``,
            both given, or a URL without a file name.
        DownloadError: the network failed (``URLError``, timeout, connection
            reset mid-stream), the transfer was shorter than announced, or the
            downloaded bytes do not have the expected SHA-1. The temporary file
            is removed, and an existing cached file is left as it was.

    Source: d2l.ai ``d2l.download`` (same cache check), plus streaming,
    verification after download and the atomic rename.
    """
    url, algorithm, digest = _resolve(name_or_url, sha1, md5)
    fname = PurePosixPath(urllib.parse.urlsplit(url).path).name
    if not fname:
        raise ValueError(f"cannot take a file name from the URL {url!r}")
    folder = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / fname
    if target.is_file() and _filehash(target, algorithm) == digest:
        return target


    def fetch(out) -> None:  # streams into atomic_write's temporary file; raising discards it
        h = hashlib.new(algorithm, usedforsecurity=False)
        received, expected = 0, None
        try:
            with _urlopen(url, timeout=timeout) as response:
                headers = getattr(response, "headers", None)
                expected = headers.get("Content-Length") if headers is not None else None
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
        except Exception as e:  # URLError, timeouts, resets, http.client errors
            raise DownloadError(f"could not download {url}: {type(e).__name__}: {e}") from e
        if expected is not None and expected.isdigit() and int(expected) != received:
            raise DownloadError(f"incomplete download of {url}: got {received} bytes, "
                                f"the server announced {expected}")
        got = h.hexdigest()
        if got != digest:
            raise DownloadError(f"checksum mismatch for {url}: expected {_NAMES[algorithm]} {digest}, "
                                f"got {got} ({received} bytes); the file was discarded")

    # fsynced, then renamed into place; mkstemp makes the file private, a cache file need not be
    return atomic_write(target, fetch, mode=0o644)


def _check_member(name: str) -> PurePosixPath:
    """The member's relative path, or ValueError if it could escape the target."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or (p.parts and ":" in p.parts[0]) or ".." in p.parts:
        raise ValueError(f"unsafe path in archive: {name!r} (absolute, drive letter or "
                         f"'..' escaping the target folder)")
    return p


def extract(zip_path: str | os.PathLike, target_dir: str | os.PathLike | None = None) -> Path:
    """Extract a zip archive safely, atomically and at most once.

    All members are checked first: an absolute path, a drive letter or a
    ``..`` component (a "zip slip" that would write outside ``target_dir``)
    rejects the whole archive before anything is written. The archive is
    extracted into a temporary folder inside ``target_dir`` and each of its
    top-level entries is then renamed into ``target_dir``. A top-level entry
    that already exists is kept as it is (so calling this twice is cheap and
    harmless; entries are only ever renamed in complete).

    Args:
        zip_path: the ``.zip`` file.
        target_dir: folder to extract into (created if needed); default the
            folder holding ``zip_path``.

    Returns:
        ``Path`` of ``target_dir``.

    Raises:
        ValueError: a member's path is unsafe (nothing is extracted).
        zipfile.BadZipFile: ``zip_path`` is not a valid zip file.
        OSError: reading or writing failed (the temporary folder is removed).

    Source: d2l.ai ``d2l.download_extract`` (``ZipFile.extractall`` into the
    download folder), made safe and atomic.
    """
    zip_path = Path(zip_path)
    target = Path(target_dir) if target_dir is not None else zip_path.parent
    with zipfile.ZipFile(zip_path) as zf:
        members = zf.infolist()
        tops = set()
        for m in members:
            p = _check_member(m.filename)
            if p.parts:
                tops.add(p.parts[0])
        target.mkdir(parents=True, exist_ok=True)
        if tops and all((target / t).exists() for t in tops):
            return target
        tmp = Path(tempfile.mkdtemp(dir=target, prefix=f".{zip_path.stem}.extract-"))
        try:
            zf.extractall(tmp)
            for t in sorted(tops):
                dest = target / t
                if dest.exists():
                    continue
                try:
                    os.rename(tmp / t, dest)
                except OSError:
                    if not dest.exists():  # not a concurrent extraction winning
                        raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def download_extract(name: str, folder: str | None = None,
                     cache_dir: str | os.PathLike | None = None,
                     timeout: float = 30.0) -> Path:
    """Download the zip ``name`` from :data:`DATA_HUB` and extract it next to itself.

    Args:
        name: a key of :data:`DATA_HUB`, e.g. ``"banana-detection"``.
        folder: the extracted folder to return; default the archive's file name
            without ``.zip`` (d2l's convention: ``banana-detection``).
        cache_dir, timeout: as for :func:`download`.

    Returns:
        ``Path`` of ``<cache_dir>/<folder>``.

    Raises:
        Everything :func:`download` and :func:`extract` raise; ``ValueError``
        if the archive is not a ``.zip`` or does not contain ``folder``.

    Source: d2l.ai ``d2l.download_extract`` (same name and return value).
    """
    path = download(name, cache_dir=cache_dir, timeout=timeout)
    if path.suffix != ".zip":
        raise ValueError(f"only .zip archives can be extracted, got {path.name}")
    base = extract(path, path.parent)
    data_dir = base / (folder or path.stem)
    if not data_dir.is_dir():
        raise ValueError(f"{path} did not contain the folder {data_dir.name!r}")
    return data_dir
