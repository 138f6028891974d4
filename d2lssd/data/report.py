"""What every data checker shares: a problem, a report of problems, and the check of one image file.

:class:`Problem` and :class:`DataReport` are the linter-style result of
:func:`d2lssd.data.check.check_coco` and :func:`d2lssd.data.voc.check_voc`
(every fault at once, one line each); :func:`check_image_file` is the one
check of an image file every format runs (missing, unreadable or not
decodable, declared size against the file's upright size: EXIF orientation
applied, see :mod:`d2lssd.data.images`). The format checkers import this
module and not each other.

Two severities (:attr:`Problem.severity`): a *problem* (``"problem"``)
breaks training or evaluation and makes the readers refuse the data set or
drop what it names; a *warning* (``"warning"``) is legal data that is
probably a labelling mistake, never refused or dropped:

=====================  ==========================================================
warning kind           what
=====================  ==========================================================
``similar_class``      class names that differ only in case or surrounding spaces
                       (``"Raccoon"`` and ``"raccoon"``: two classes to the model)
``small_box``          a box less than :data:`SMALL_BOX` pixels wide or high
``duplicate_box``      a box of the same class with the same coordinates as an
                       earlier one of the same image
``exif_rotated``       an image file whose pixels are stored turned or mirrored,
                       with an EXIF orientation tag other than 1 (a phone photo):
                       it is read upright, as labelling tools show it, and its
                       declared size and boxes are taken in the upright image
``small_objects``      more than :data:`SMALL_SHARE` of the boxes have a shorter
                       side under :data:`SMALL_AT_SIZE` pixels once the image is
                       resized to the training input size (one warning for the
                       data set, from :func:`small_objects_warning`; ``d2lssd
                       check-data --size``)
=====================  ==========================================================

Warnings are only given for annotations and images without a problem.

A PIL pitfall (GUIDE section 9): ``Image.verify()`` checks a file's structure
without decoding it, so a JPEG cut short passes it and fails at ``load()``
("image file is truncated") in the first epoch. :func:`check_image_file`
therefore decodes every file (``load()``) unless asked for the header only.

Source: ours (the idea of a linter that reports everything at once, GUIDE
section 7); PIL's ``Image.open`` (reads the header only) and ``Image.load``
(decodes).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .images import describe_orientation, exif_orientation, upright_size

__all__ = ["OUTSIDE_TOLERANCE", "SMALL_BOX", "SMALL_AT_SIZE", "SMALL_SHARE", "SMALL_CLASS_SHARE", "SMALL_CLASS_MIN",
           "Problem", "DataReport", "is_number",
           "is_int_id", "check_image_file", "image_read_errors", "similar_names", "count_classes",
           "small_objects_warning"]

#: Tolerance of the "outside the image" check, in pixels.
OUTSIDE_TOLERANCE = 1.0

#: A box narrower or lower than this many pixels gets a ``small_box`` warning.
SMALL_BOX = 2.0

#: A box whose shorter side is under this many pixels at the training input size counts as small: SSD's
#: first feature map of TinySSD has a stride of 8 pixels and its smallest default anchors are about 50 pixels
#: at 256 (0.2 of the image), so such objects are matched by few anchors and found badly.
SMALL_AT_SIZE = 16.0

#: ``small_objects`` warns when more than this share of the boxes is small (:data:`SMALL_AT_SIZE`).
SMALL_SHARE = 0.1

#: ... or when more than this share of one class's boxes is small (a class of at least
#: :data:`SMALL_CLASS_MIN` boxes): BCCD's platelets are 7% of its boxes but half of them are under 16 pixels
#: at 256, and they are the class a detector finds worst.
SMALL_CLASS_SHARE = 0.25
SMALL_CLASS_MIN = 10

SEVERITIES = ("problem", "warning")


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
        severity: ``"problem"`` (default) or ``"warning"`` (see the module
            docstring; a warning is never fatal and drops nothing).

    Raises:
        ValueError: an unknown ``severity``, or a warning that is fatal or drops something.
    """

    kind: str
    message: str
    source: str = ""
    image: object = None
    image_file: str | None = None
    annotation: object = None
    fatal: bool = False
    drops: str | None = None
    severity: str = "problem"

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        if self.severity == "warning" and (self.fatal or self.drops is not None):
            raise ValueError(f"a warning is never fatal and drops nothing, got fatal={self.fatal}, "
                             f"drops={self.drops!r}")

    def line(self) -> str:
        """The report line: ``source: image ID 'FILE', annotation ID: kind: message``.

        A warning's line says so: ``...: warning: kind: message``.
        """
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
        warn = "warning: " if self.severity == "warning" else ""
        return f"{head}{', '.join(where) + ': ' if where else ''}{warn}{self.kind}: {self.message}"

    def __str__(self) -> str:
        return self.line()


@dataclass
class DataReport:
    """The result of a check: every problem found, and what dropping them would remove.

    Attributes:
        source: the checked file or folder, as shown.
        format: ``"coco"`` or ``"voc"``.
        problems: list of :class:`Problem` (severity ``"problem"``) in the order found.
        warnings: list of :class:`Problem` of severity ``"warning"``, in the order found
            (they do not make the report fail: :attr:`ok` looks at ``problems`` only).
        num_images, num_annotations: entries in the data (as declared, before any drop).
        bad_images: ids (COCO) or names (VOC) of the images that ``errors="drop"`` removes.
        bad_annotations: the annotations that ``errors="drop"`` removes: COCO: positions in
            ``data["annotations"]`` (a duplicate id cannot name one of its copies); VOC:
            ``(image name, 1-based object number)``. Annotations of dropped images are not listed.
        data: the parsed COCO dict (``None`` for VOC or unreadable JSON); the readers reuse it.
        class_counts: dict class name -> ``(boxes, images)``: the number of
            annotations of that class and of images with at least one, counted
            over what ``errors="drop"`` keeps (crowd / difficult boxes
            included); in the data's class order (COCO: increasing category
            id; VOC: the ``classes`` given, else sorted), classes without any
            box included with ``(0, 0)``.
    """

    source: str
    format: str
    problems: list = field(default_factory=list)
    num_images: int = 0
    num_annotations: int = 0
    bad_images: set = field(default_factory=set)
    bad_annotations: set = field(default_factory=set)
    data: dict | None = field(default=None, repr=False)
    warnings: list = field(default_factory=list)
    class_counts: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """``True`` when no problem was found (warnings do not count)."""
        return not self.problems

    @property
    def fatal(self) -> list:
        """The problems that cannot be dropped."""
        return [p for p in self.problems if p.fatal]

    def lines(self) -> list[str]:
        """One line per problem (:meth:`Problem.line`); warnings are in :meth:`warning_lines`."""
        return [p.line() for p in self.problems]

    def warning_lines(self) -> list[str]:
        """One line per warning (:meth:`Problem.line`, which says ``warning:``)."""
        return [p.line() for p in self.warnings]

    def counts(self) -> Counter:
        """Number of problems of each kind."""
        return Counter(p.kind for p in self.problems)

    def warning_counts(self) -> Counter:
        """Number of warnings of each kind."""
        return Counter(p.kind for p in self.warnings)

    def summary(self) -> str:
        """One line: the number of problems (and warnings) by kind, or that the data set is clean.

        It ends with ``no problems found`` when there is no problem, warnings or not.
        """
        what = f"{self.source} ({self.format}, {self.num_images} images, {self.num_annotations} annotations)"
        warned = ""
        if self.warnings:
            by_kind = ", ".join(f"{n} {k}" for k, n in sorted(self.warning_counts().items()))
            warned = f"{len(self.warnings)} warning(s): {by_kind}"
        if self.ok:
            return f"{what}: {warned + '; ' if warned else ''}no problems found"
        by_kind = ", ".join(f"{n} {k}" for k, n in sorted(self.counts().items()))
        return f"{what}: {len(self.problems)} problem(s): {by_kind}{'; ' + warned if warned else ''}"

    def class_lines(self) -> list[str]:
        """The per-class counts (:attr:`class_counts`) as a small table: a header, one line per class.

        Empty when the data names no class. Class names are shown with
        ``repr`` so that surrounding spaces are visible.
        """
        if not self.class_counts:
            return []
        names = [repr(n) for n in self.class_counts]
        width = max(len("class"), *(len(n) for n in names))
        out = [f"{'class':<{width}}  {'boxes':>7}  {'images':>7}"]
        for shown, (boxes, images) in zip(names, self.class_counts.values()):
            out.append(f"{shown:<{width}}  {boxes:>7}  {images:>7}")
        return out

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
        (self.warnings if problem.severity == "warning" else self.problems).append(problem)


# --------------------------------------------------------------------------- helpers


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_int_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def image_read_errors() -> tuple:
    """The exceptions PIL raises for a file it cannot open or decode.

    ``OSError`` (a truncated file: "image file is truncated", "Truncated File
    Read"; ``PIL.UnidentifiedImageError`` is one; so is a file deleted
    meanwhile), ``SyntaxError`` and ``ValueError`` (broken structures some
    plugins report so), ``EOFError`` (a frame cut short) and
    ``PIL.Image.DecompressionBombError`` (an image of absurd size).
    """
    from PIL import Image

    return (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def _image_size(path: Path, decode: bool):
    """``(stored (width, height), EXIF orientation, None)`` of an image file, or ``(None, None, reason)``.

    ``decode``: decode every pixel (``Image.load``), else read the header
    only (the EXIF orientation too: see :func:`d2lssd.data.images.exif_orientation`).
    The size is the file's stored size; :func:`d2lssd.data.images.upright_size`
    turns it into the size the readers decode.
    """
    from PIL import Image

    def why(e, what):
        return f"{what} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ") + ")"

    try:
        im = Image.open(path)  # reads the header
    except FileNotFoundError:
        return None, None, "missing"
    except image_read_errors() as e:
        return None, None, why(e, "cannot be read as an image")
    with im:
        size = im.size
        if decode:
            try:
                im.load()  # decodes: a truncated JPEG fails here, not in Image.open / Image.verify
            except image_read_errors() as e:
                return None, None, why(e, "cannot be decoded: the file is truncated or corrupt")
        orientation = exif_orientation(im, decode=decode)
    return size, orientation, None


def _mismatch_message(declared, stored, orientation: int, said: str, name: str) -> str:
    """The ``size_mismatch`` message: the declared size against the upright one, and what it probably means."""
    upright = upright_size(stored, orientation)
    dw, dh = declared
    head = f"{said} {dw}x{dh} (width x height)"
    if orientation != 1:
        turned = f"EXIF orientation {orientation} ({describe_orientation(orientation)} to show)"
        if tuple(declared) == tuple(stored):
            return (f"{head}, the size of the pixels as stored; but the file has {turned}, so it is read "
                    f"upright as {upright[0]}x{upright[1]}, as labelling tools show it: the labels were "
                    "probably made on the unrotated pixels by a tool that ignores EXIF orientation, and the "
                    "boxes would land in the wrong place. If so, remove the orientation tag from the file "
                    f"(e.g. `exiftool -Orientation= {name}`) so that it is read as stored; if the boxes are "
                    f"upright after all, declare {upright[0]}x{upright[1]}")
        return (f"{head}, the file is {upright[0]}x{upright[1]} upright (stored {stored[0]}x{stored[1]} "
                f"with {turned})")
    msg = f"{head}, the file is {stored[0]}x{stored[1]}"
    if tuple(stored) == (dh, dw):
        msg += (" (width and height exchanged: the labelling tool probably showed the photo turned by an "
                "EXIF orientation tag that this file does not have, e.g. one stripped by a converter; the "
                "boxes fit the turned photo: use the image files the labels were made on)")
    return msg


def check_image_file(path: Path, declared, decode: bool, add, said: str, warn=None) -> bool:
    """Check one image file of a data set; report its problems with ``add(kind, message)``.

    Args:
        path: the image file.
        declared: ``(width, height)`` the annotations declare, or ``None``
            (not known or itself invalid: no size comparison).
        decode: decode the whole file (``PIL.Image.load``), as training will:
            a truncated or corrupt file is ``unreadable_file``. ``False``
            reads only the header (fast; a file cut short after its header
            passes).
        add: called as ``add(kind, message)`` for each problem found
            (``missing_file``, ``unreadable_file``, ``size_mismatch``).
        said: how the message names the declared size (``"declared"`` for
            COCO, ``"<size> says"`` for VOC).
        warn: called as ``warn("exif_rotated", message)`` when the file has
            an EXIF orientation other than 1 and no problem; ``None``: no warning.

    Returns:
        True when a problem was found (the image is bad).

    The size compared is the **upright** size, EXIF orientation applied
    (:func:`d2lssd.data.images.upright_size`): the size the readers decode
    and the size labelling tools show and export. A declared size that is
    the stored size of a photo turned a quarter by its EXIF tag is a
    ``size_mismatch`` whose message says so (the labels were probably made on
    the unrotated pixels); width and height exchanged in a file without the
    tag get a hint too. ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` (set by
    some code to read broken files) makes PIL accept truncated files, here too.
    """
    if not path.is_file():
        add("missing_file", f"no file {path}")
        return True
    stored, orientation, why = _image_size(path, decode)
    if stored is None:
        add("unreadable_file", f"{path} {why}")
        return True
    upright = upright_size(stored, orientation)
    if declared is not None and tuple(upright) != tuple(declared):
        add("size_mismatch", _mismatch_message(declared, stored, orientation, said, path.name))
        return True
    if orientation != 1 and warn is not None:
        warn("exif_rotated", f"pixels stored {stored[0]}x{stored[1]} with EXIF orientation {orientation} "
                             f"({describe_orientation(orientation)} to show); read upright, {upright[0]}x"
                             f"{upright[1]} (width x height), as labelling tools show it: boxes are taken "
                             "in the upright image")
    return False


def similar_names(names) -> list[list[str]]:
    """Groups of class names that differ only in case or surrounding spaces.

    Args:
        names: iterable of str (repeats are ignored).

    Returns:
        A list of groups, each a sorted list of at least two distinct names whose
        ``name.strip().casefold()`` is the same (``["Raccoon", "raccoon "]``);
        the groups sorted by their first name.
    """
    groups: dict = {}
    for n in names:
        groups.setdefault(n.strip().casefold(), set()).add(n)
    return [sorted(g) for g in sorted(groups.values(), key=min) if len(g) > 1]


def count_classes(order, pairs) -> dict:
    """Per-class ``(boxes, images)`` from ``(image key, class name)`` pairs, one per box.

    Args:
        order: class names to list first, in this order (also when without
            any box); names met in ``pairs`` but not in ``order`` follow, sorted.
        pairs: iterable of ``(image, name)``, one per annotation.

    Returns:
        dict name -> ``(number of boxes, number of distinct images)``.
    """
    boxes, images = Counter(), {}
    for image, name in pairs:
        boxes[name] += 1
        images.setdefault(name, set()).add(image)
    names = list(dict.fromkeys(order))
    listed = set(names)
    names += sorted(n for n in boxes if n not in listed)
    return {n: (boxes[n], len(images.get(n, ()))) for n in names}


def small_objects_warning(shapes, size: int = 256, source: str = "", min_side: float = SMALL_AT_SIZE,
                          share: float = SMALL_SHARE, class_share: float = SMALL_CLASS_SHARE) -> Problem | None:
    """The ``small_objects`` warning when many boxes are small at the training input size, else ``None``.

    Training resizes every image to ``size x size`` (aspect ratio not kept),
    so a box ``w x h`` pixels of a ``W x H`` image becomes ``w * size / W``
    by ``h * size / H``; it counts as small when the shorter of the two is
    under ``min_side`` pixels.

    Args:
        shapes: iterable of ``(class name, w / W, h / H)``: each box's width
            and height as fractions of its image's (floats in (0, 1]).
        size: the training input side in pixels (``d2lssd train --size``;
            256 for TinySSD), a positive integer.
        source: the data set, as the report shows it.
        min_side: pixels at ``size`` under which a box is small (16).
        share: warn when more than this fraction of the boxes is small (0.1).
        class_share: ... or when more than this fraction of one class's boxes
            is, for a class with at least :data:`SMALL_CLASS_MIN` (10) boxes
            (0.25): a rare class of small things is missed even when the data
            set as a whole is not small.

    Returns:
        a :class:`Problem` of severity ``"warning"``, kind ``"small_objects"``,
        whose message gives the count and share of small boxes, the classes
        with the most of them (``'name' k of n (p%)``: small boxes of the class
        out of its boxes; five at most) and what to do (a larger ``--size``, a
        model with a stride-4 first level, tiled inference with ``--tile``, the
        fitted anchors); ``None`` when neither share is exceeded (or no box).

    Raises:
        ValueError: ``size`` not a positive integer, ``min_side`` not
            positive or ``share`` / ``class_share`` outside [0, 1] (each names the argument).

    Source: ours (issue 24); the SSD paper's own analysis (Liu et al. 2016:
    "SSD is very sensitive to the bounding box size", much worse on small
    objects) and SAHI (Akyon et al. 2022).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer (pixels), got {size!r}")
    if not is_number(min_side) or min_side <= 0:
        raise ValueError(f"min_side must be a positive number of pixels, got {min_side!r}")
    if not is_number(share) or not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be a number in [0, 1], got {share!r}")
    if not is_number(class_share) or not 0.0 <= class_share <= 1.0:
        raise ValueError(f"class_share must be a number in [0, 1], got {class_share!r}")
    total, small = Counter(), Counter()
    for name, w, h in shapes:
        total[name] += 1
        if min(w, h) * size < min_side:
            small[name] += 1
    n, k = sum(total.values()), sum(small.values())
    small_class = [c for c in small if total[c] >= SMALL_CLASS_MIN and small[c] > class_share * total[c]]
    if n == 0 or (k <= share * n and not small_class):
        return None
    worst = sorted(small, key=lambda c: (c not in small_class, -small[c], c))
    shown = ", ".join(f"{c!r} {small[c]} of {total[c]} ({100 * small[c] / total[c]:.0f}%)" for c in worst[:5])
    more = f" and {len(worst) - 5} more classes" if len(worst) > 5 else ""
    return Problem("small_objects",
                   f"{k} of {n} boxes ({100 * k / n:.0f}%) are smaller than {min_side:g} pixels on their shorter "
                   f"side once the image is resized to the training size {size}x{size} ({shown}{more}): SSD "
                   f"finds such objects badly. Train at a larger size (d2lssd train --size {2 * size}) or with "
                   f"a stride-4 first level (--model tinyssd-s4; with --preset scratch, --model scratchssd), detect on "
                   f"tiles of the full photos (d2lssd predict / evaluate --tile PIXELS), and keep the anchors "
                   f"fitted to the data (d2lssd train does by default; not --default-anchors)",
                   source, severity="warning")
