"""Atomic file writes, shared by checkpoints, the Penn-Fudan trainer's outputs and the tools.

Source: ours; the write-then-rename pattern is the POSIX way to replace a file
atomically (``os.replace`` within one file system).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, BinaryIO


def atomic_write(path, write: Callable[[BinaryIO], object], mode: int | None = None) -> Path:
    """Write a file atomically: ``write(f)`` fills a temporary file in the same folder, then ``os.replace``.

    The data is flushed and fsynced before the rename. An interrupted or
    failing write (full disk, Ctrl-C, an exception in ``write``) leaves any
    previous file at ``path`` intact and removes the temporary file.

    Args:
        path: file to write; its folder is created if missing.
        write: called once with the temporary file, opened for binary writing.
        mode: permission bits given to the file before the rename (e.g.
            ``0o644`` for a shared cache); default None keeps the temporary
            file's (``tempfile.mkstemp``: readable by its owner only).

    Returns:
        ``Path(path)``.

    Raises:
        whatever ``write`` or the file system raises (after cleaning up).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
