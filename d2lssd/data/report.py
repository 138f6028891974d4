"""What every data checker shares: a problem, a report of problems, and the check of one image file.

:class:`Problem` and :class:`DataReport` are the linter-style result of
:func:`d2lssd.data.check.check_coco` and :func:`d2lssd.data.voc.check_voc`
(every fault at once, one line each); :func:`check_image_file` is the one
check of an image file both formats run (missing, unreadable, declared size
against the file). The format checkers import this module and not each other.

Source: ours (the idea of a linter that reports everything at once, GUIDE section 7).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["OUTSIDE_TOLERANCE", "Problem", "DataReport", "is_number", "is_int_id", "check_image_file"]

#: Tolerance of the "outside the image" check, in pixels.
OUTSIDE_TOLERANCE = 1.0


@dataclass(frozen=True)
class Problem:
    """One fault of a data set.

    Attributes:
        kind: one of the kinds of the module docstring (e.g. ``"bad_box"``).
        message: what is wrong, with the offending values.
        source: the file the fault is in (annotation JSON or VOC XML), as shown.
        image: the image's id (COCO) or name (VOC), or ``None``.
        image_file: the image's file name as declared, or ``None``.
        annotation: the annotation's id (COCO) or 1-based object number (VOC), or ``None``.
        fatal: cannot be dropped (see the module docstring).
        drops: ``"annotation"``, ``"image"`` or ``None``: what ``errors="drop"`` removes.
    """

    kind: str
    message: str
    source: str = ""
    image: object = None
    image_file: str | None = None
    annotation: object = None
    fatal: bool = False
    drops: str | None = None

    def line(self) -> str:
        """The report line: ``source: image ID 'FILE', annotation ID: kind: message``."""
        where = []
        if self.image is not None or self.image_file is not None:
            img = "image"
            if self.image is not None:
                img += f" {self.image}"
            if self.image_file is not None:
                img += f" {self.image_file!r}"
            where.append(img)
        if self.annotation is not None:
            where.append(f"annotation {self.annotation}")
        head = f"{self.source}: " if self.source else ""
        return f"{head}{', '.join(where) + ': ' if where else ''}{self.kind}: {self.message}"

    def __str__(self) -> str:
        return self.line()


@dataclass
class DataReport:
    """The result of a check: every problem found, and what dropping them would remove.

    Attributes:
        source: the checked file or folder, as shown.
        format: ``"coco"`` or ``"voc"``.
        problems: list of :class:`Problem` in the order found.
        num_images, num_annotations: entries in the data (as declared, before any drop).
        bad_images: ids (COCO) or names (VOC) of the images that ``errors="drop"`` removes.
        bad_annotations: the annotations that ``errors="drop"`` removes: COCO: positions in
            ``data["annotations"]`` (a duplicate id cannot name one of its copies); VOC:
            ``(image name, 1-based object number)``. Annotations of dropped images are not listed.
        data: the parsed COCO dict (``None`` for VOC or unreadable JSON); the readers reuse it.
    """

    source: str
    format: str
    problems: list = field(default_factory=list)
    num_images: int = 0
    num_annotations: int = 0
    bad_images: set = field(default_factory=set)
    bad_annotations: set = field(default_factory=set)
    data: dict | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """``True`` when no problem was found."""
        return not self.problems

    @property
    def fatal(self) -> list:
        """The problems that cannot be dropped."""
        return [p for p in self.problems if p.fatal]

    def lines(self) -> list[str]:
        """One line per problem (:meth:`Problem.line`)."""
        return [p.line() for p in self.problems]

    def counts(self) -> Counter:
        """Number of problems of each kind."""
        return Counter(p.kind for p in self.problems)

    def summary(self) -> str:
        """One line: the number of problems by kind, or that the data set is clean."""
        what = f"{self.source} ({self.format}, {self.num_images} images, {self.num_annotations} annotations)"
        if self.ok:
            return f"{what}: no problems found"
        by_kind = ", ".join(f"{n} {k}" for k, n in sorted(self.counts().items()))
        return f"{what}: {len(self.problems)} problem(s): {by_kind}"

    def drop_summary(self) -> str:
        """One line saying what ``errors="drop"`` leaves out."""
        return (f"{self.source}: dropped {len(self.bad_annotations)} annotation(s) and "
                f"{len(self.bad_images)} image(s) (with their annotations) because of "
                f"{len(self.problems)} problem(s); run `d2lssd check-data` for the list")

    def raise_if_problems(self, errors: str = "raise", max_lines: int = 10) -> None:
        """Refuse the data set, as the readers do.

        Args:
            errors: ``"raise"``: raise if there is any problem; ``"drop"``:
                raise only for fatal problems (the caller then drops
                :attr:`bad_images` and :attr:`bad_annotations`).
            max_lines: report lines quoted in the message.

        Raises:
            ValueError: with the summary, the first ``max_lines`` lines and
                how to see them all or drop them.
        """
        if errors not in ("raise", "drop"):
            raise ValueError(f"errors must be 'raise' or 'drop', got {errors!r}")
        bad = self.problems if errors == "raise" else self.fatal
        if not bad:
            return
        shown = [p.line() for p in bad[:max_lines]]
        more = f"\n  ... and {len(bad) - max_lines} more" if len(bad) > max_lines else ""
        hint = ("fix the data, or pass errors='drop' (command line: --drop-bad) to leave the bad "
                "annotations and images out" if errors == "raise" and not self.fatal else
                "these problems cannot be dropped; fix the data")
        raise ValueError(f"{self.summary()}; {hint}:\n  " + "\n  ".join(shown) + more)

    def _add(self, problem: Problem) -> None:
        self.problems.append(problem)


# --------------------------------------------------------------------------- helpers


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_int_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _image_size(path: Path, verify: bool):
    """``(width, height), None`` of an image file, or ``None, reason``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            size = im.size
            if verify:
                im.verify()  # reads the file's structure (PNG CRCs, JPEG markers) without decoding
        return size, None
    except FileNotFoundError:
        return None, "missing"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")


def _swapped_hint(real, declared) -> str:
    """A hint when width and height are exchanged: the usual sign of an EXIF-rotated photo."""
    if tuple(real) == (declared[1], declared[0]):
        return (" (width and height exchanged: the photo probably has an EXIF orientation tag that the "
                "labelling tool applied and the file's pixels do not)")
    return ""


def check_image_file(path: Path, declared, verify: bool, add, said: str) -> bool:
    """Check one image file of a data set; report its problems with ``add(kind, message)``.

    Args:
        path: the image file.
        declared: ``(width, height)`` the annotations declare, or ``None``
            (not known or itself invalid: no size comparison).
        verify: open the file (unreadable files, size mismatch); else only
            check that it exists.
        add: called as ``add(kind, message)`` for each problem found
            (``missing_file``, ``unreadable_file``, ``size_mismatch``).
        said: how the message names the declared size (``"declared"`` for
            COCO, ``"<size> says"`` for VOC).

    Returns:
        True when a problem was found (the image is bad).
    """
    if not path.is_file():
        add("missing_file", f"no file {path}")
        return True
    if not verify:
        return False
    real, why = _image_size(path, verify=True)
    if real is None:
        add("unreadable_file", f"{path} cannot be read as an image ({why})")
        return True
    if declared is not None and tuple(real) != tuple(declared):
        add("size_mismatch", f"{said} {declared[0]}x{declared[1]} (width x height), the file is "
                             f"{real[0]}x{real[1]}{_swapped_hint(real, declared)}")
        return True
    return False
