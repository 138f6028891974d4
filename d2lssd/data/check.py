"""A linter for detection data sets (COCO JSON or Pascal VOC folders), and ``d2lssd check-data``.

A labelling tool's export is the usual source of NaN losses and crashes in
detection training: boxes of zero or negative size, boxes far outside the
image, annotations pointing at images or categories that do not exist,
images that are missing or cannot be decoded (a JPEG cut short passes
PIL's ``verify()`` and fails in the first epoch: every image is decoded by
default), duplicate ids, and images whose declared size is not the size of
the file (so every normalized box is wrong). :func:`check_coco` and
:func:`d2lssd.data.voc.check_voc` find *all* of them in one pass and return
a :class:`DataReport`: one :class:`Problem` per fault, each naming the image
and the annotation; probable labelling mistakes that do not break training
are *warnings* (:attr:`DataReport.warnings`: class names differing only in
case or spaces, boxes under 2 pixels, duplicate boxes, photos stored turned
with an EXIF orientation tag; see :mod:`d2lssd.data.report`), and :attr:`DataReport.class_counts` holds the
boxes and images per class. Nothing on disk is ever modified.

``d2lssd check-data`` also warns when many objects are small at the
training input size (``--size``, default 256, ``d2lssd train``'s for
TinySSD): :func:`check_small_objects`, a ``small_objects`` warning that says
how many boxes, which classes and what to do.

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
``unreadable_file``    the image file cannot be opened or decoded (truncated)      image
``bad_image_size``     a declared width or height <= 0 or missing                  image
``size_mismatch``      the declared size differs from the file's upright size      image
                       (EXIF orientation applied, as labelling tools show it)
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
import sys
from collections import Counter
from pathlib import Path

from ..argtypes import positive_int
from .report import (OUTSIDE_TOLERANCE, SMALL_BOX, DataReport, Problem, check_image_file, count_classes,
                     is_int_id, is_number, similar_names, small_objects_warning)
from .voc import check_voc, read_voc_annotation, voc_image_names, voc_layout

__all__ = ["Problem", "DataReport", "check_coco", "check_dataset", "read_coco_json", "box_shapes",
           "check_small_objects", "add_arguments", "run"]

#: ``d2lssd check-data --size``'s default: ``d2lssd train``'s input size for its default model (TinySSD).
TRAIN_SIZE = 256

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
        verify_images: decode every image file completely (``PIL.Image.load``,
            as training does: a truncated or corrupt file is an
            ``unreadable_file`` problem; default ``True``). ``False`` reads
            only each file's header (fast: existence, format and size are
            still checked, a file cut short after its header passes).

    Returns:
        A :class:`DataReport` (``format="coco"``; ``data`` holds the parsed
        dict unless it could not be read). A file that is not JSON or not a
        COCO dict gives one fatal ``bad_json`` problem. Warnings
        (``similar_class``, ``small_box``, ``duplicate_box``, ``exif_rotated``) are in
        ``report.warnings``, boxes and images per category name in
        ``report.class_counts`` (categories in increasing id order).

    Checks: entries are dicts with the fields COCO requires (image ``id``,
    ``file_name``, ``width``, ``height``; annotation ``id``, ``image_id``,
    ``category_id``, ``bbox``; category ``id``, ``name``); ids are unique;
    every annotation's image and category exist; ``bbox = [x, y, w, h]`` (pixels
    from the top-left corner) is 4 finite numbers with ``w > 0`` and ``h > 0``
    and lies inside ``[-1, width + 1] x [-1, height + 1]``; ``iscrowd`` is 0 or 1;
    each image file exists, can be decoded and, shown upright (its EXIF
    orientation applied, as labelling tools show it and the readers read it),
    has the declared width and height; ``bbox`` is taken in that upright image.

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
    _coco_class_report(data, categories, report)
    return report


def _coco_categories(entries, report: DataReport) -> dict:
    """Check the categories; returns ``{category id: name or None}`` of the known ids (first entry's name)."""
    seen_ids, seen_names, ok = Counter(), {}, {}
    for k, c in enumerate(entries):
        if not isinstance(c, dict) or not is_int_id(c.get("id")):
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
            name = None
        elif name in seen_names and seen_names[name] != cid:
            report._add(Problem("bad_category", f"category name {name!r} is used by ids "
                                f"{seen_names[name]} and {cid}", report.source, fatal=True))
        else:
            seen_names[name] = cid
        ok.setdefault(cid, name)
    return ok


def _coco_images(entries, root: Path, verify: bool, report: DataReport) -> dict:
    """Check the image entries; returns ``{image id: (width, height) or None}`` of the known ids."""
    src = report.source
    counts = Counter(e.get("id") for e in entries if isinstance(e, dict) and is_int_id(e.get("id")))
    sizes: dict = {}
    reported_dup = set()
    for k, e in enumerate(entries):
        if not isinstance(e, dict) or not is_int_id(e.get("id")):
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
        if not (is_number(w) and is_number(h)) or w <= 0 or h <= 0:
            report._add(Problem("bad_image_size", f"declared width and height must be positive numbers, "
                                f"got width={w!r}, height={h!r}", src, iid, fshown, drops="image"))
            bad = True
        if isinstance(fname, str) and fname:
            add = (lambda kind, msg: report._add(Problem(kind, msg, src, iid, fshown, drops="image")))
            warn = (lambda kind, msg: report._add(Problem(kind, msg, src, iid, fshown, severity="warning")))
            bad |= check_image_file(root / fname, None if bad else (w, h), verify, add, "declared",
                                    None if bad else warn)
        if bad:
            report.bad_images.add(iid)
        valid_size = is_number(w) and is_number(h) and w > 0 and h > 0
        sizes[iid] = (fshown, (w, h) if valid_size else None)
    return sizes


def _coco_annotations(entries, sizes: dict, categories: set, report: DataReport) -> None:
    src = report.source
    counts = Counter(a.get("id") for a in entries if isinstance(a, dict) and is_int_id(a.get("id")))
    seen = Counter()
    first_of_box: dict = {}  # (image id, category id, bbox) -> id of the first annotation with it
    for k, a in enumerate(entries):
        if not isinstance(a, dict) or not is_int_id(a.get("id")):
            report._add(Problem("bad_entry", f"annotations[{k}] needs an integer 'id', got "
                                f"{a.get('id') if isinstance(a, dict) else a!r}", src, drops="annotation"))
            report.bad_annotations.add(k)
            continue
        aid = a["id"]
        iid = a.get("image_id")
        info = sizes.get(iid) if is_int_id(iid) else None
        fname = info[0] if info else None
        shown_image = iid if is_int_id(iid) else None

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
        if not is_int_id(iid) or iid not in sizes:
            add("unknown_image", f"image_id {iid!r} is not the id of any image")
        cid = a.get("category_id")
        if not is_int_id(cid) or cid not in categories:
            add("unknown_category", f"category_id {cid!r} is not the id of any category")
        crowd = a.get("iscrowd", 0)
        if crowd not in (0, 1) or isinstance(crowd, bool):
            add("bad_entry", f"iscrowd must be 0 or 1, got {crowd!r}")
        bbox = a.get("bbox")
        if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(is_number(v) for v in bbox)):
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
        if k not in report.bad_annotations:
            _coco_box_warnings(a, fname, shown_image, first_of_box, report)


def _coco_box_warnings(a: dict, fname, shown_image, first_of_box: dict, report: DataReport) -> None:
    """``small_box`` and ``duplicate_box`` warnings of annotation ``a``, which has no problem."""
    x, y, w, h = a["bbox"]

    def warn(kind, msg):
        report._add(Problem(kind, msg, report.source, shown_image, fname, a["id"], severity="warning"))

    if w < SMALL_BOX or h < SMALL_BOX:
        warn("small_box", f"box {w:g}x{h:g} pixels (width x height, bbox {list(a['bbox'])}) is less than "
                          f"{SMALL_BOX:g} pixels wide or high: a stray click of the labelling tool?")
    key = (a["image_id"], a["category_id"], tuple(float(v) for v in a["bbox"]))
    if key in first_of_box:
        warn("duplicate_box", f"the same category {a['category_id']} and bbox {list(a['bbox'])} as "
                              f"annotation {first_of_box[key]} of this image: the object is labelled twice")
    else:
        first_of_box[key] = a["id"]


def _coco_class_report(data: dict, categories: dict, report: DataReport) -> None:
    """``similar_class`` warnings and :attr:`DataReport.class_counts` (over what ``errors="drop"`` keeps)."""
    named = {cid: n for cid, n in sorted(categories.items()) if n is not None}
    pairs = ((a["image_id"], named[a["category_id"]]) for k, a in enumerate(data["annotations"])
             if k not in report.bad_annotations and a["image_id"] not in report.bad_images
             and a["category_id"] in named)  # an annotation without a problem has int ids
    report.class_counts = count_classes(named.values(), pairs)
    for group in similar_names(named.values()):
        shown = ", ".join(f"{n!r} (id {cid}, {report.class_counts[n][0]} boxes)" for n in group
                          for cid in named if named[cid] == n)
        report._add(Problem("similar_class", f"category names {shown} differ only in case or surrounding "
                            f"spaces: they are different classes to the model; rename them to one name "
                            f"if they are one class", report.source, severity="warning"))


def check_dataset(coco=None, images=None, voc=None, image_set: str | None = None,
                  verify_images: bool = True) -> DataReport:
    """Check a COCO data set (``coco`` + ``images``) or a VOC folder (``voc``): one entry point.

    Args:
        coco: COCO annotation file (or dict); needs ``images``.
        images: image folder of the COCO file.
        voc: a VOC folder (see :func:`d2lssd.data.voc.check_voc`); ``image_set`` picks a list.
        verify_images: decode every image (default); ``False``: read only the
            headers (fast; see :func:`check_coco`).

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
    return check_voc(voc, image_set, verify_images=verify_images)


# --------------------------------------------------------------------------- small objects


def box_shapes(report: DataReport, image_set: str | None = None) -> list[tuple[str, float, float]]:
    """``(class name, w / W, h / H)`` of each box a checked COCO or VOC data set keeps.

    The boxes are those ``errors="drop"`` keeps (no problem, image without a
    problem), crowd regions (COCO ``iscrowd=1``) and VOC ``difficult``
    objects left out (they are not objects to find); ``w x h`` is the box in
    pixels (VOC's inclusive corners: ``xmax - xmin + 1``), ``W x H`` its
    image's declared size.

    Args:
        report: what :func:`check_coco` (``report.data``) or
            :func:`d2lssd.data.voc.check_voc` (``report.source``, the folder) returned.
        image_set: for VOC, the image set that was checked (default every XML file).

    Returns:
        a list of ``(str, float, float)``, in the data's order.

    Raises:
        ValueError: a report of another format, or with fatal problems (unreadable JSON, bad categories).
    """
    if report.fatal:
        raise ValueError(f"{report.source} has fatal problems (e.g. {report.fatal[0].kind}): fix them first")
    if report.format == "coco":
        names = {c["id"]: c.get("name") for c in report.data["categories"]
                 if isinstance(c, dict) and is_int_id(c.get("id"))}
        sizes = {e["id"]: (e.get("width"), e.get("height")) for e in report.data["images"]
                 if isinstance(e, dict) and is_int_id(e.get("id")) and e["id"] not in report.bad_images}
        out = []
        for k, a in enumerate(report.data["annotations"]):
            if k in report.bad_annotations or a.get("iscrowd", 0) == 1 or a.get("image_id") not in sizes:
                continue
            W, H = sizes[a["image_id"]]
            _, _, w, h = a["bbox"]
            out.append((names[a["category_id"]], w / W, h / H))
        return out
    if report.format == "voc":
        root = report.source
        ann_dir, _ = voc_layout(root)
        out = []
        for name in voc_image_names(root, image_set):
            if name in report.bad_images:
                continue
            ann = read_voc_annotation(ann_dir / f"{name}.xml")
            W, H = ann["size"]
            for k, obj in enumerate(ann["objects"], start=1):
                if (name, k) in report.bad_annotations or obj["difficult"]:
                    continue
                x1, y1, x2, y2 = obj["box"]
                out.append((obj["name"], (x2 - x1 + 1) / W, (y2 - y1 + 1) / H))
        return out
    raise ValueError(f"box_shapes reads COCO and VOC reports, got format {report.format!r}")


def check_small_objects(report: DataReport, size: int = TRAIN_SIZE, image_set: str | None = None) -> Problem | None:
    """Add the ``small_objects`` warning to ``report`` when many boxes are small at the training size.

    A box is small when its shorter side, once its image is resized to
    ``size x size`` as training does, is under
    :data:`d2lssd.data.report.SMALL_AT_SIZE` (16) pixels; the warning comes
    when more than :data:`d2lssd.data.report.SMALL_SHARE` (10%) of the boxes
    (:func:`box_shapes`) are, and says how many, which classes and what to
    do (see :func:`d2lssd.data.report.small_objects_warning`).

    Args:
        report: a COCO or VOC report (:func:`check_dataset`).
        size: the training input side in pixels (``d2lssd train --size``; default 256).
        image_set: for VOC, the image set that was checked.

    Returns:
        the warning (also appended to ``report.warnings``) or ``None``.

    Raises:
        ValueError: a bad ``size``, a report :func:`box_shapes` cannot read.
    """
    warning = small_objects_warning(box_shapes(report, image_set), size, report.source)
    if warning is not None:
        report._add(warning)
    return warning


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
                        help="read only each image file's header (format, size) instead of decoding every "
                        "image: much faster, but a file cut short after its header passes and then fails "
                        "in training")
    parser.add_argument("--size", type=positive_int, default=TRAIN_SIZE, metavar="PIXELS",
                        help=f"the training input size (d2lssd train --size; default {TRAIN_SIZE}, TinySSD's): "
                        "warn when more than 10%% of the boxes are under 16 pixels on their shorter side at "
                        "that size (COCO and VOC)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary (the per-class counts "
                        "and the summary line), not one line per problem and warning")


def run(args) -> int:
    """``d2lssd check-data``: one line per problem, then per warning, on stdout; then a summary.

    The warnings include ``small_objects`` (:func:`check_small_objects` at ``--size``) unless the
    data set has a fatal problem.

    The summary is the per-class table (class, boxes, images: see
    :attr:`DataReport.class_counts`) and one line of counts by kind
    (:meth:`DataReport.summary`); it goes to stdout when there is no
    problem, else to stderr.

    Returns:
        0 when the data set has no problem (warnings or not), 1 otherwise
        (also for a bad file: ``main`` prints that one line).
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
    if not report.fatal:
        check_small_objects(report, args.size, args.image_set)
    if not args.quiet:
        for line in report.lines() + report.warning_lines():
            print(line)
    out = sys.stdout if report.ok else sys.stderr
    for line in report.class_lines():
        print(line, file=out)
    print(report.summary(), file=out)
    return 0 if report.ok else 1
