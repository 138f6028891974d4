"""What the banana and Penn-Fudan data sets share: the data source, the fallback, the generated folder.

Each data set of the course exists twice: the real one, downloaded and
checksum-verified, and a look-alike that an offline generator writes in the
same layout. This module holds the pieces both data sets use, written once:

* :class:`DataSource` and :func:`obtain`: which data a loader holds, and the
  policy that picks it (``source="auto"``: download the real data unless
  ``D2LSSD_OFFLINE=1``, fall back to generated data with the reason;
  ``"real"``: the real data or an error; ``"generated"``: no network);
* :func:`check_generator_args`, :func:`cached_generated` and
  :func:`write_generated`: a generated set's folder, marked by a
  ``GENERATED.txt`` recording the generator's arguments, written into a
  temporary folder and swapped into place atomically, reused when the
  arguments match, replaced when they do not, and never written over a
  folder without the marker (the real data);
* :func:`backgrounds`: the scikit-image sample photos the generators paint on;
* :func:`shown` and :func:`why_not_downloaded`: the printed line's path and
  reason, free of build-machine paths.

Internal to :mod:`d2lssd.data` (the names are public here so that both data
modules can import them; :class:`DataSource` is also exported by
``d2lssd.data`` and ``d2lssd``).

Source: ours.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import zipfile
from collections import namedtuple
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["DataSource", "SOURCES", "MARKER", "BACKGROUNDS", "obtain", "offline", "shown",
           "why_not_downloaded", "read_marker", "check_generator_args", "cached_generated",
           "write_generated", "backgrounds", "random_crop"]

#: Which data a loader holds. ``kind`` is ``"real"`` or ``"generated"``,
#: ``root`` the data folder, ``description`` the line that was printed.
DataSource = namedtuple("DataSource", ["kind", "root", "description"])

#: The values of the ``source`` argument of the loaders.
SOURCES = ("auto", "real", "generated")

#: The file that marks a folder as generated (and records how).
MARKER = "GENERATED.txt"


# --- which data: real, or generated with the reason ----------------------------------------

def offline() -> bool:
    """True when the environment variable ``D2LSSD_OFFLINE`` is ``1``, ``true`` or ``yes``."""
    return os.environ.get("D2LSSD_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def shown(path) -> str:
    """``path`` for the printed line: the home folder as ``~``, so pages name no build machine's paths."""
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if home not in ("", "/") and text.startswith(home) else text


def why_not_downloaded(e: BaseException) -> str:
    """A short, path-free reason, e.g. ``URLError: Name or service not known``."""
    cause = e.__cause__ if e.__cause__ is not None else e
    reason = getattr(cause, "reason", cause)  # URLError wraps the socket error
    text = getattr(reason, "strerror", None) or (reason if isinstance(reason, str) else "")
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def obtain(source: str, real: Callable[[], DataSource], generated: Callable[[str], DataSource]
           ) -> DataSource:
    """Pick the real or the generated data by ``source`` and the environment.

    Args:
        source: ``"auto"``, ``"real"`` or ``"generated"`` (see the module docstring).
        real: downloads (or finds) the real data and returns its
            :class:`DataSource`; may raise ``OSError``, ``ValueError`` or
            ``zipfile.BadZipFile``.
        generated: ``generated(why)`` generates (or reuses) the look-alike
            and returns its :class:`DataSource`, ``why`` being the reason
            the real data is not used.

    Returns:
        the :class:`DataSource` of the data to use.

    Raises:
        ValueError: an unknown ``source``.
        RuntimeError: ``source="real"`` with ``D2LSSD_OFFLINE=1``.
        OSError, ValueError, zipfile.BadZipFile: ``source="real"`` and
            ``real()`` failed (with ``"auto"`` the failure is the reason
            handed to ``generated``).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if source == "generated":
        return generated("asked for with source='generated'")
    if offline():
        if source == "real":
            raise RuntimeError("source='real' but D2LSSD_OFFLINE=1 forbids downloading; "
                               "unset it or use source='auto' or 'generated'")
        return generated("D2LSSD_OFFLINE=1 is set, so the real data was not downloaded")
    try:
        return real()
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        if source == "real":
            raise
        return generated(f"the real data could not be downloaded ({why_not_downloaded(e)})")


# --- a generated set's folder -----------------------------------------------------------------

def check_generator_args(*args: tuple[str, object, int]) -> None:
    """Each ``(name, value, lowest)`` must be an integer (not a bool) ``>= lowest``; else ValueError."""
    for name, v, lo in args:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


def read_marker(root: Path) -> dict[str, str] | None:
    """The ``key: value`` lines of ``root/GENERATED.txt`` as a dict, or None if it cannot be read."""
    try:
        text = (Path(root) / MARKER).read_text(encoding="utf-8")
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _same(marker: dict[str, str] | None, fields: dict[str, str]) -> bool:
    return bool(marker) and all(marker.get(k) == v for k, v in fields.items())


def cached_generated(root: Path, fields: dict[str, str], what: str) -> bool:
    """Whether ``root`` already holds the set that ``fields`` describes.

    Returns False when ``root`` does not exist or holds an outdated
    generated set (other arguments or generator version: it will be
    replaced). Raises ``FileExistsError`` when ``root`` exists without a
    marker (the real data, or anything else): it is never overwritten.
    ``what`` names the data set in that message.
    """
    if not root.exists():
        return False
    marker = read_marker(root)
    if marker is None:
        raise FileExistsError(f"{root} exists and is not a generated {what} data set "
                              f"(no {MARKER}); refusing to overwrite it")
    return _same(marker, fields)


def write_generated(root: Path, fields: dict[str, str], fill: Callable[[Path], None], title: str,
                    note: str) -> Path:
    """Write a generated set atomically: ``fill(tmp)``, the marker, then rename ``tmp`` to ``root``.

    ``fill`` writes the data into an empty temporary folder next to
    ``root``; the marker ``GENERATED.txt`` gets the lines ``title``, then
    ``key: value`` for each of ``fields``, then ``note``. An outdated set at
    ``root`` is moved aside and deleted just before the rename; if another
    process renamed the same set into place meanwhile, theirs is kept. An
    interrupted run leaves no half-written ``root`` (and no temporary
    folder, unless the process is killed).

    Returns:
        ``root``.

    Raises:
        what ``fill`` raises; ``OSError`` if the rename fails and ``root``
        does not hold the same set.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.tmp-"))
    try:
        fill(tmp)
        text = title + "\n" + "".join(f"{k}: {v}\n" for k, v in fields.items()) + note + "\n"
        (tmp / MARKER).write_text(text, encoding="utf-8")
        if root.exists():  # an outdated generated set: swap it out, then delete it
            old = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.old-"))
            os.replace(root, old / root.name)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, root)
        except OSError:
            # Another process generated the same set meanwhile: keep theirs.
            if not _same(read_marker(root), fields):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


# --- what the generators paint on ---------------------------------------------------------------

# Photos and textures that ship inside the scikit-image wheel (no download):
# astronaut, rocket, hubble_deep_field, immunohistochemistry: NASA / public
# domain; coffee, chelsea, camera, brick, grass, gravel: CC0; coins, moon,
# page, text, clock: public domain (see skimage/data/README.txt).
BACKGROUNDS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass",
               "gravel", "coins", "moon", "clock", "page", "text", "hubble_deep_field",
               "immunohistochemistry")


@functools.lru_cache(maxsize=1)
def backgrounds() -> tuple[np.ndarray, ...]:
    """The :data:`BACKGROUNDS` images as uint8 RGB arrays (grey ones stacked to RGB).

    An image missing from the installed scikit-image is skipped.

    Raises:
        RuntimeError: none of them could be loaded.
    """
    import skimage.data  # imported here: scikit-image is slow to import

    out = []
    for name in BACKGROUNDS:
        try:
            img = np.asarray(getattr(skimage.data, name)())
        except Exception:  # an image missing from this skimage build: skip it
            continue
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        out.append(np.ascontiguousarray(img[..., :3].astype(np.uint8)))
    if not out:
        raise RuntimeError("no background image of skimage.data could be loaded")
    return tuple(out)


def random_crop(rng: np.random.Generator, img: np.ndarray, crop_h: int, crop_w: int, width: int,
                height: int) -> np.ndarray:
    """A ``crop_h x crop_w`` crop of ``img`` at a random place, mirrored with probability 1/2, resized.

    Draws from ``rng``, in this order: the top row, the left column, the
    mirror coin (the generators' files depend on the order).

    Args:
        rng: the generator.
        img: uint8 array ``(H, W, 3)`` with ``crop_h <= H`` and ``crop_w <= W``.
        crop_h, crop_w: the crop's size in pixels.
        width, height: the output size in pixels (bilinear resize, PIL).

    Returns:
        float32 array ``(height, width, 3)`` in [0, 255].
    """
    from PIL import Image

    h, w = img.shape[:2]
    y0 = int(rng.integers(0, h - crop_h + 1))
    x0 = int(rng.integers(0, w - crop_w + 1))
    crop = img[y0:y0 + crop_h, x0:x0 + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    pil = Image.fromarray(np.ascontiguousarray(crop)).resize((width, height), Image.BILINEAR)
    return np.asarray(pil, dtype=np.float32)
