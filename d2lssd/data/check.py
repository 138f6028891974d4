"""A linter for detection data sets (COCO JSON or Pascal VOC folders), and ``d2lssd check-data``.

A labelling tool's export is the usual source of NaN losses and crashes in
detection training: boxes of zero or negative size, boxes far outside the
image, annotations pointing at images or categories that do not exist,
images that are missing or cannot be read, duplicate ids, and images whose
declared size is not the size of the file (so every normalized box is
wrong). :func:`check_coco` and :func:`d2lssd.data.voc.check_voc` find *all* of them in one
pass and return a :class:`DataReport`: one :class:`Problem` per fault, each
naming the image and the annotation. Nothing on disk is ever modified.

The readers (:class:`d2lssd.data.CocoDataset`, :class:`d2lssd.data.VOCDataset`)
run the same checks when they open a data set and then either refuse it
(``errors="raise"``, the default: a ``ValueError`` with the count and the
first lines of the report) or, when asked explicitly (``errors="drop"``),
leave out the bad annotations and images and print how many
(:meth:`DataReport.drop_summary`).

Problem kinds (:attr:`Problem.kind`):

=====================  ==========================================================  ==========
kind                   what                                                        dropped
=====================  ==========================================================  ==========
``bad_json``           the annotation file is not JSON / not a COCO dict            fatal
``bad_xml``            a VOC annotation file cannot be parsed                      image
``bad_entry``          an entry lacks a field or has one of the wrong type         its entry
``duplicate_id``       an image, annotation or category id (or VOC image) twice    see below
``bad_category``       a category without a name, or a name used twice             fatal
``missing_file``       the image file does not exist                               image
``unreadable_file``    the image file cannot be opened as an image                 image
``bad_image_size``     a declared width or height <= 0 or missing                  image
``size_mismatch``      the declared size differs from the file's                   image
``unknown_image``      an annotation's ``image_id`` is not an image                annotation
``unknown_category``   an annotation's ``category_id`` (VOC: class name) unknown   annotation
``bad_box``            a box not of 4 finite numbers, or width or height <= 0      annotation
``outside``            a box outside the image by more than one pixel              annotation
=====================  ==========================================================  ==========

A duplicate annotation id drops the later annotations; a duplicate image id
drops every image with that id and their annotations (which image an
annotation belongs to is ambiguous); a duplicate category id is fatal.
"Fatal" problems cannot be dropped: the data set is refused whatever
``errors`` says.

Source: the COCO data format (https://cocodataset.org/#format-data); the
Pascal VOC development kit's annotation guidelines (1-based pixel corners);
the idea of a linter that reports everything at once, from issue 14 and the
GUIDE (section 7).
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Problem", "DataReport", "check_coco", "check_dataset", "read_coco_json", "add_arguments", "run"]

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


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int_id(v) -> bool:
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


def read_coco_json(path) -> dict:
    """Read a COCO annotation file (``json.load``) and check that it is a COCO detection dict.

    Args:
        path: the JSON file.

    Returns:
        The dict, with lists ``"images"``, ``"annotations"`` and ``"categories"``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not JSON, or not a dict with those three lists.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    _check_coco_layout(data, str(path))
    return data


def _check_coco_layout(data, source: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a COCO file holds a JSON object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{source}: a COCO detection file needs a list {key!r}"
                             + ("" if key in data else " (missing)"))


# --------------------------------------------------------------------------- COCO


def check_coco(annotations, images, verify_images: bool = True) -> DataReport:
    """Check a COCO detection data set: every problem, one :class:`Problem` each.

    Args:
        annotations: path of the COCO JSON file, or the parsed dict (then
            shown as ``"<dict>"`` in the report).
        images: the folder that ``file_name`` of each image is relative to.
        verify_images: also check that each file is a readable image with the
            declared size (opens every file's header; default ``True``).
            ``False`` only checks that the files exist.

    Returns:
        A :class:`DataReport` (``format="coco"``; ``data`` holds the parsed
        dict unless it could not be read). A file that is not JSON or not a
        COCO dict gives one fatal ``bad_json`` problem.

    Checks: entries are dicts with the fields COCO requires (image ``id``,
    ``file_name``, ``width``, ``height``; annotation ``id``, ``image_id``,
    ``category_id``, ``bbox``; category ``id``, ``name``); ids are unique;
    every annotation's image and category exist; ``bbox = [x, y, w, h]`` (pixels
    from the top-left corner) is 4 finite numbers with ``w > 0`` and ``h > 0``
    and lies inside ``[-1, width + 1] x [-1, height + 1]``; ``iscrowd`` is 0 or 1;
    each image file exists, can be read and has the declared width and height.

    Raises:
        ValueError: ``images`` is not a folder.

    Source: the COCO format (https://cocodataset.org/#format-data).
    """
    root = Path(images)
    if not root.is_dir():
        raise ValueError(f"images must be the folder of the image files, {root} is not a folder")
    if isinstance(annotations, dict):
        source, data = "<dict>", annotations
    else:
        source = str(annotations)
        data = None
    report = DataReport(source, "coco")
    try:
        if data is None:
            data = read_coco_json(annotations)
        else:
            _check_coco_layout(data, source)
    except FileNotFoundError:
        raise
    except ValueError as e:
        report._add(Problem("bad_json", str(e).split(": ", 1)[-1], source, fatal=True))
        return report
    report.data = data
    report.num_images = len(data["images"])
    report.num_annotations = len(data["annotations"])
    categories = _coco_categories(data["categories"], report)
    sizes = _coco_images(data["images"], root, verify_images, report)
    _coco_annotations(data["annotations"], sizes, categories, report)
    return report


def _coco_categories(entries, report: DataReport) -> set:
    seen_ids, seen_names, ok = Counter(), {}, set()
    for k, c in enumerate(entries):
        if not isinstance(c, dict) or not _is_int_id(c.get("id")):
            report._add(Problem("bad_entry", f"categories[{k}] needs an integer 'id', got "
                                f"{c.get('id') if isinstance(c, dict) else c!r}", report.source, fatal=True))
            continue
        cid = c["id"]
        seen_ids[cid] += 1
        if seen_ids[cid] == 2:
            report._add(Problem("duplicate_id", f"category id {cid} is used by more than one category",
                                report.source, fatal=True))
        name = c.get("name")
        if not isinstance(name, str) or not name:
            report._add(Problem("bad_category", f"category {cid} has no name", report.source, fatal=True))
        elif name in seen_names and seen_names[name] != cid:
            report._add(Problem("bad_category", f"category name {name!r} is used by ids "
                                f"{seen_names[name]} and {cid}", report.source, fatal=True))
        else:
            seen_names[name] = cid
        ok.add(cid)
    return ok


def _coco_images(entries, root: Path, verify: bool, report: DataReport) -> dict:
    """Check the image entries; returns ``{image id: (width, height) or None}`` of the known ids."""
    src = report.source
    counts = Counter(e.get("id") for e in entries if isinstance(e, dict) and _is_int_id(e.get("id")))
    sizes: dict = {}
    reported_dup = set()
    for k, e in enumerate(entries):
        if not isinstance(e, dict) or not _is_int_id(e.get("id")):
            report._add(Problem("bad_entry", f"images[{k}] needs an integer 'id', got "
                                f"{e.get('id') if isinstance(e, dict) else e!r}", src, drops="image"))
            continue
        iid = e["id"]
        fname = e.get("file_name")
        fshown = fname if isinstance(fname, str) else None
        if counts[iid] > 1:
            sizes[iid] = None
            report.bad_images.add(iid)
            if iid not in reported_dup:
                reported_dup.add(iid)
                names = [x.get("file_name") for x in entries if isinstance(x, dict) and x.get("id") == iid]
                report._add(Problem("duplicate_id", f"image id {iid} is used by {counts[iid]} images "
                                    f"{names}", src, iid, fshown, drops="image"))
            continue
        w, h = e.get("width"), e.get("height")
        bad = False
        if not isinstance(fname, str) or not fname:
            report._add(Problem("bad_entry", f"no 'file_name' (got {fname!r})", src, iid, drops="image"))
            bad = True
        if not (_is_number(w) and _is_number(h)) or w <= 0 or h <= 0:
            report._add(Problem("bad_image_size", f"declared width and height must be positive numbers, "
                                f"got width={w!r}, height={h!r}", src, iid, fshown, drops="image"))
            bad = True
        if isinstance(fname, str) and fname:
            add = (lambda kind, msg: report._add(Problem(kind, msg, src, iid, fshown, drops="image")))
            bad |= check_image_file(root / fname, None if bad else (w, h), verify, add, "declared")
        if bad:
            report.bad_images.add(iid)
        valid_size = _is_number(w) and _is_number(h) and w > 0 and h > 0
        sizes[iid] = (fshown, (w, h) if valid_size else None)
    return sizes


def _coco_annotations(entries, sizes: dict, categories: set, report: DataReport) -> None:
    src = report.source
    counts = Counter(a.get("id") for a in entries if isinstance(a, dict) and _is_int_id(a.get("id")))
    seen = Counter()
    for k, a in enumerate(entries):
        if not isinstance(a, dict) or not _is_int_id(a.get("id")):
            report._add(Problem("bad_entry", f"annotations[{k}] needs an integer 'id', got "
                                f"{a.get('id') if isinstance(a, dict) else a!r}", src, drops="annotation"))
            report.bad_annotations.add(k)
            continue
        aid = a["id"]
        iid = a.get("image_id")
        info = sizes.get(iid) if _is_int_id(iid) else None
        fname = info[0] if info else None
        shown_image = iid if _is_int_id(iid) else None

        def add(kind, msg, drops="annotation"):
            report._add(Problem(kind, msg, src, shown_image, fname, aid, drops=drops))
            if drops == "annotation":
                report.bad_annotations.add(k)

        seen[aid] += 1
        if counts[aid] > 1 and seen[aid] > 1:
            report._add(Problem("duplicate_id", f"annotation id {aid} is used again (copy {seen[aid]}, "
                                f"annotations[{k}]; the first one is kept)", src, shown_image, fname, aid,
                                drops="annotation"))
            report.bad_annotations.add(k)  # by position: its id does not tell it from the first
        if not _is_int_id(iid) or iid not in sizes:
            add("unknown_image", f"image_id {iid!r} is not the id of any image")
        cid = a.get("category_id")
        if not _is_int_id(cid) or cid not in categories:
            add("unknown_category", f"category_id {cid!r} is not the id of any category")
        crowd = a.get("iscrowd", 0)
        if crowd not in (0, 1) or isinstance(crowd, bool):
            add("bad_entry", f"iscrowd must be 0 or 1, got {crowd!r}")
        bbox = a.get("bbox")
        if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            add("bad_box", f"bbox must be [x, y, width, height], 4 finite numbers, got {bbox!r}")
            continue
        x, y, w, h = bbox
        if w <= 0 or h <= 0:
            add("bad_box", f"box width and height must be > 0, got width={w}, height={h} "
                           f"(bbox {list(bbox)})")
            continue
        if info and info[1] is not None:
            W, H = info[1]
            t = OUTSIDE_TOLERANCE
            if x < -t or y < -t or x + w > W + t or y + h > H + t:
                add("outside", f"box [x={x}, y={y}, x+w={x + w}, y+h={y + h}] reaches outside the "
                               f"{W}x{H} image by more than {t:g} pixel")
            elif min(x + w, W) <= max(x, 0) or min(y + h, H) <= max(y, 0):
                add("outside", f"box [x={x}, y={y}, x+w={x + w}, y+h={y + h}] has no part inside the "
                               f"{W}x{H} image")


def check_dataset(coco=None, images=None, voc=None, image_set: str | None = None,
                  verify_images: bool = True) -> DataReport:
    """Check a COCO data set (``coco`` + ``images``) or a VOC folder (``voc``): one entry point.

    Args:
        coco: COCO annotation file (or dict); needs ``images``.
        images: image folder of the COCO file.
        voc: a VOC folder (see :func:`d2lssd.data.voc.check_voc`); ``image_set`` picks a list.
        verify_images: see :func:`check_coco`.

    Returns:
        The :class:`DataReport`.

    Raises:
        ValueError: neither or both of ``coco`` and ``voc``, or ``coco`` without ``images``.
        FileNotFoundError: the COCO file does not exist.
    """
    if (coco is None) == (voc is None):
        raise ValueError("give either coco= (with images=) or voc=")
    if coco is not None:
        if images is None:
            raise ValueError("coco= needs images=, the folder of the image files")
        return check_coco(coco, images, verify_images)
    from .voc import check_voc

    return check_voc(voc, image_set, verify_images=verify_images)


# --------------------------------------------------------------------------- command line


def add_arguments(parser) -> None:
    """Options of ``d2lssd check-data`` (see :mod:`d2lssd.cli`)."""
    parser.add_argument("--coco", metavar="FILE", help="COCO detection annotation file (JSON)")
    parser.add_argument("--images", metavar="DIR", help="folder the COCO file's image file names are "
                        "relative to (required with --coco)")
    parser.add_argument("--voc", metavar="DIR", help="Pascal VOC folder with Annotations/ and JPEGImages/")
    parser.add_argument("--image-set", metavar="NAME", help="with --voc: check only the images listed in "
                        "ImageSets/Main/NAME.txt")
    parser.add_argument("--no-verify-images", action="store_true",
                        help="only check that image files exist (faster: does not open them)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary line")


def run(args) -> int:
    """``d2lssd check-data``: one line per problem on stdout, then a summary.

    Returns:
        0 when the data set has no problem, 1 otherwise (also for a bad file:
        ``main`` prints that one line).
    """
    if (args.coco is None) == (args.voc is None):
        raise ValueError("give --coco FILE --images DIR, or --voc DIR")
    if args.coco is not None and args.images is None:
        raise ValueError("--coco needs --images DIR, the folder of the image files")
    if args.voc is not None and not Path(args.voc).is_dir():
        raise FileNotFoundError(f"--voc: {args.voc} is not a folder")
    if args.images is not None and not Path(args.images).is_dir():
        raise FileNotFoundError(f"--images: {args.images} is not a folder")
    report = check_dataset(coco=args.coco, images=args.images, voc=args.voc, image_set=args.image_set,
                           verify_images=not args.no_verify_images)
    if not args.quiet:
        for line in report.lines():
            print(line)
    print(report.summary(), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1
