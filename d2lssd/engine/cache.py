"""The run cache: a trained checkpoint named by a digest of everything that decides its weights.

A chapter is executed twice in CI (by ``pytest --nbval`` and by the book
build) and again by every reader: a run whose settings, data kind, device
type and package code are those of an earlier one finds that run's
checkpoint and trains nothing; any change to the package's sources or to
torch gives a new name (the old file stays, unused). An interrupted run
resumes from its last checkpoint.

Source: ours (the idea of jupyter-cache and of QuantEcon's cached lecture
builds, applied to weights).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch

__all__ = ["code_fingerprint", "run_digest", "cache_path"]

_PACKAGE = Path(__file__).resolve().parent.parent


def code_fingerprint(package_dir=None) -> str:
    """SHA-1 (12 hex digits) of the package's Python sources (names and bytes) and of ``torch.__version__``.

    Args:
        package_dir: the package folder (default: the installed ``d2lssd``).

    Returns:
        12 lowercase hex digits; any changed, added, removed or renamed
        ``.py`` file under the folder, or another torch, changes it.
    """
    root = Path(package_dir) if package_dir is not None else _PACKAGE
    h = hashlib.sha1()
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    h.update(torch.__version__.encode())
    return h.hexdigest()[:12]


def run_digest(settings: dict, code: str | None = None) -> str:
    """16 hex digits naming a run: SHA-1 of ``settings`` (JSON, keys sorted) and the code fingerprint.

    Args:
        settings: plain data (``str(value)`` is used for what JSON cannot
            hold, e.g. paths): the config, the data kind, the device type.
        code: the code fingerprint (default :func:`code_fingerprint`).

    Returns:
        16 lowercase hex digits.
    """
    key = json.dumps(dict(settings=settings, code=code if code is not None else code_fingerprint()),
                     sort_keys=True, default=str)
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def cache_path(prefix: str, settings: dict, cache_dir=None, code: str | None = None) -> Path:
    """``cache_dir / f"{prefix}-{run_digest(settings)}.pt"``: where a cached run keeps its checkpoint.

    Args:
        prefix: a readable start of the file name (letters, digits, ``-``,
            ``_``, ``.``), e.g. ``"tinyssd-focal"`` or ``"pennfudan-cpu"``.
        settings, code: see :func:`run_digest`.
        cache_dir: default ``<d2lssd cache>/runs`` (:func:`d2lssd.data.download.cache_dir`).

    Raises:
        ValueError: a ``prefix`` that is empty or not a plain file name.
    """
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", prefix):
        raise ValueError(f"prefix must be a plain file-name start (letters, digits, '-', '_', '.'), got {prefix!r}")
    if cache_dir is None:
        from ..data import download

        cache_dir = download.cache_dir() / "runs"
    return Path(cache_dir) / f"{prefix}-{run_digest(settings, code)}.pt"
