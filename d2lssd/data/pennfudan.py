"""The Penn-Fudan pedestrian data set, real (downloaded at run time) or generated offline.

The real data (Wang, Shi, Song, Sheng, "Object Detection Combining Recognition
and Segmentation", ACCV 2007; https://www.cis.upenn.edu/~jshi/ped_html/) is a
zip of 170 street photos (96 from UPenn, 74 from Fudan) with 345 labelled
pedestrians::

    PennFudanPed/
        PNGImages/FudanPed00001.png ...   RGB photos, about 300 to 600 px per side
        PedMasks/FudanPed00001_mask.png   instance masks: 0 background, k = pedestrian k
        Annotation/FudanPed00001.txt      PASCAL-style text, one bounding box per pedestrian
        readme.txt

An annotation file looks like this (pixel coordinates start at (1, 1) and
both corners are inside the box)::

    Image size (X x Y x C) : 559 x 536 x 3
    Objects with ground truth : 2 { "PASpersonWalking" "PASpersonWalking" }
    Bounding box for object 1 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : (160, 182) - (302, 431)

Its readme forbids redistribution, so the data is only ever downloaded at
run time (:func:`download_pennfudan`). Where that is impossible,
:func:`generate_pennfudan` writes the identical layout offline: upright,
pedestrian-like figures on crops of photos shipped with scikit-image, with
instance masks and annotation files in the real format. The reader
(:func:`read_pennfudan`, :class:`PennFudanDataset`) cannot tell the two apart;
the marker file ``GENERATED.txt`` and the line :func:`load_data_pennfudan`
prints say which data a run used. The annotation format lives in
:mod:`d2lssd.data.pennfudan_format` and the generator in
:mod:`d2lssd.data.pennfudan_generator` (both named by ``d2lssd.data``).

Boxes in this module are in **pixels**, corner format (xmin, ymin, xmax,
ymax), half-open: a box covers columns ``xmin .. xmax - 1`` and rows
``ymin .. ymax - 1``, so a box of the whole image is ``(0, 0, W, H)`` (as the
banana data's boxes). :func:`d2lssd.data.collate_ssd` normalizes them for the model.

Source: the data set's readme and file formats; torchvision's "TorchVision
Object Detection Finetuning Tutorial" (``PennFudanDataset``: boxes from the
masks with ``masks_to_boxes``, a random 120/50 split, which is not seeded
there).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.utils.data

from ..boxes import box_iou
from . import download as _download
from .collate import collate_ssd
from .common import DataSource, obtain, shown
from .pennfudan_format import FOLDER as _FOLDER
from .pennfudan_format import NUM_REAL_IMAGES, parse_annotation
from .pennfudan_generator import generate_pennfudan

__all__ = [
    "PENNFUDAN_URL",
    "PENNFUDAN_MD5",
    "PENNFUDAN_CLASSES",
    "PennFudanRecord",
    "download_pennfudan",
    "read_pennfudan",
    "split_pennfudan",
    "PennFudanDataset",
    "obtain_pennfudan",
    "load_data_pennfudan",
]

#: The official archive (about 51 MiB, 53.7 MB).
PENNFUDAN_URL = "https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip"
#: MD5 of the official archive, as recorded by ContinualAI's avalanche
#: (``avalanche/benchmarks/datasets/penn_fudan/penn_fudan_data.py``). Its
#: SHA-1, which :func:`d2lssd.data.download.download` wants, is not published
#: anywhere we could find; see :func:`download_pennfudan`.
PENNFUDAN_MD5 = "5aaa3dee905cef73325923716e38fc6d"
#: Class names in label order: label 0 is a pedestrian (model class 1; 0 is background).
PENNFUDAN_CLASSES = ("pedestrian",)

_NUM_IMAGES, _NUM_VAL = NUM_REAL_IMAGES, 50

# --- downloading the real data ----------------------------------------------------------

def download_pennfudan(root: str | os.PathLike | None = None, timeout: float = 60.0,
                       url: str = PENNFUDAN_URL, md5: str = PENNFUDAN_MD5) -> Path:
    """Download and extract the official ``PennFudanPed.zip``; return its ``PennFudanPed`` folder.

    The archive is streamed into ``root`` atomically (a temporary file
    renamed into place only after its length and MD5 were verified, as
    :func:`d2lssd.data.download.download` with ``md5=``) and extracted
    with :func:`d2lssd.data.download.extract` (a member that would escape
    the folder rejects the whole archive; extraction into a temporary
    folder renamed into place; links are not created). A cached archive
    with the right MD5 is used without touching the network, and an
    already extracted folder is not extracted again.

    Args:
        root: folder for the archive and the data; default
            :func:`d2lssd.data.download.cache_dir` (``$D2LSSD_DATA`` or
            ``~/.cache/d2lssd``).
        timeout: seconds to wait for the connection and for each read.
        url, md5: the archive and its expected MD5 (defaults
            :data:`PENNFUDAN_URL`, :data:`PENNFUDAN_MD5`).

    Returns:
        ``Path`` of ``root/PennFudanPed`` (with ``PNGImages/`` and ``PedMasks/``).

    Raises:
        DownloadError: the network failed, the transfer was incomplete or
            the MD5 differs (nothing is left behind).
        ValueError: the archive holds an unsafe path, or no
            ``PennFudanPed/PNGImages`` and ``PedMasks``.
        zipfile.BadZipFile: the file is not a zip archive.

    Source: the database's page (the URL); the download and extraction
    machinery of :mod:`d2lssd.data.download`.
    """
    base = Path(root) if root is not None else _download.cache_dir()
    path = _download.download(url, cache_dir=base, timeout=timeout, md5=md5)
    _download.extract(path, base)
    data_dir = base / _FOLDER
    if not ((data_dir / "PNGImages").is_dir() and (data_dir / "PedMasks").is_dir()):
        raise ValueError(f"{path} did not contain {_FOLDER}/PNGImages and {_FOLDER}/PedMasks")
    return data_dir


# --- reading (the same code for real and generated data) ---------------------------------

@dataclass(frozen=True)
class PennFudanRecord:
    """One image of the data set, as found on disk.

    Attributes:
        name: file name stem, e.g. ``"FudanPed00001"``.
        image: path of the RGB PNG; mask: path of the instance-id PNG.
        annotation: path of the annotation text, or ``None`` if missing.
        width, height: image size in pixels.
        ids: instance ids present in the mask, ascending (background 0 excluded).
        boxes: float32 ``(G, 4)`` pixel boxes (half-open, corner format) of
            the masks, in the order of ``ids``.
    """

    name: str
    image: Path
    mask: Path
    annotation: Path | None
    width: int
    height: int
    ids: tuple[int, ...]
    boxes: torch.Tensor


def _mask_boxes(ids_img: torch.Tensor) -> tuple[tuple[int, ...], torch.Tensor, torch.Tensor]:
    """Instance ids, their boolean masks ``(G, H, W)`` and half-open pixel boxes ``(G, 4)``."""
    from torchvision.ops import masks_to_boxes

    counts = torch.bincount(ids_img.reshape(-1).long(), minlength=1)
    obj_ids = torch.nonzero(counts[1:]).reshape(-1).to(ids_img.dtype) + 1
    masks = ids_img[None] == obj_ids[:, None, None]
    boxes = masks_to_boxes(masks) if len(obj_ids) else torch.zeros((0, 4))
    boxes = boxes.float() + torch.tensor([0.0, 0.0, 1.0, 1.0])  # last pixel -> half-open
    return tuple(int(i) for i in obj_ids), masks, boxes


def _read_ids(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        if im.mode not in ("P", "L", "I", "I;16"):
            raise ValueError(f"{path}: an instance mask must be a palette or grey PNG of ids, "
                             f"got mode {im.mode}")
        arr = np.asarray(im)
    return torch.from_numpy(np.array(arr, dtype=np.uint8 if arr.dtype == np.uint8 else np.int64))


def read_pennfudan(root: str | os.PathLike, check_annotations: str = "warn",
                   min_iou: float = 0.5) -> list[PennFudanRecord]:
    """Read the file list of a Penn-Fudan folder, with boxes from the instance masks.

    Every ``PNGImages/<name>.png`` needs ``PedMasks/<name>_mask.png``; its
    boxes come from the masks (:func:`torchvision.ops.masks_to_boxes`, made
    half-open). Where ``Annotation/<name>.txt`` exists it is cross-checked:
    the same number of objects, and annotation box ``k`` (1-based, in the
    order of the file) against the box of the ``k``-th mask id with IoU >=
    ``min_iou``. Images are not decoded (only their size is read).

    Args:
        root: the ``PennFudanPed`` folder (real or from :func:`generate_pennfudan`).
        check_annotations: what a disagreement does: ``"warn"`` (one
            ``UserWarning`` listing the files; the mask boxes are used),
            ``"raise"`` (``ValueError``) or ``"ignore"``.
        min_iou: IoU an annotation box needs with its mask box.

    Returns:
        list of :class:`PennFudanRecord`, sorted by name.

    Raises:
        FileNotFoundError: no ``PNGImages`` folder or no image in it, or an
            image without its mask.
        ValueError: a mask that is not an id image or has another size than
            its image, a mask without any object, a bad ``check_annotations``,
            or (with ``"raise"``) a disagreeing annotation.
    """
    if check_annotations not in ("warn", "raise", "ignore"):
        raise ValueError(f"check_annotations must be 'warn', 'raise' or 'ignore', got {check_annotations!r}")
    root = Path(root)
    records, problems = [], []
    for img_path in _image_files(root):
        record = _read_record(root, img_path)
        if record.annotation is not None and check_annotations != "ignore":
            problems += _annotation_problems(record, min_iou)
        records.append(record)
    if problems:
        _report(problems, root, check_annotations)
    return records


def _image_files(root: Path) -> list[Path]:
    """The PNGs of ``root/PNGImages``, sorted; FileNotFoundError if there is no such folder or no PNG."""
    img_dir = root / "PNGImages"
    if not img_dir.is_dir():
        raise FileNotFoundError(f"{img_dir} not found: {root} is not a Penn-Fudan folder "
                                f"(expected PNGImages/, PedMasks/, Annotation/)")
    images = sorted(img_dir.glob("*.png"))
    if not images:
        raise FileNotFoundError(f"{img_dir} holds no PNG image")
    return images


def _read_record(root: Path, img_path: Path) -> PennFudanRecord:
    """One image's record: its size (the header only), its mask's ids and boxes, its annotation's path."""
    from PIL import Image

    name = img_path.stem
    mask_path = root / "PedMasks" / f"{name}_mask.png"
    if not mask_path.is_file():
        raise FileNotFoundError(f"{mask_path} not found (the mask of {img_path.name})")
    with Image.open(img_path) as im:
        width, height = im.size
    ids_img = _read_ids(mask_path)
    if tuple(ids_img.shape) != (height, width):
        raise ValueError(f"{mask_path} is {ids_img.shape[1]}x{ids_img.shape[0]}, its image "
                         f"is {width}x{height}")
    ids, _, boxes = _mask_boxes(ids_img)
    if not ids:
        raise ValueError(f"{mask_path} has no pedestrian (only id 0)")
    ann_path = root / "Annotation" / f"{name}.txt"
    return PennFudanRecord(name, img_path, mask_path, ann_path if ann_path.is_file() else None,
                           width, height, ids, boxes)


def _annotation_problems(record: PennFudanRecord, min_iou: float) -> list[str]:
    """How ``record``'s annotation file disagrees with its masks (size, count, IoU); empty if it agrees."""
    ann_path = record.annotation
    try:
        size, ann = parse_annotation(ann_path.read_text(encoding="utf-8", errors="replace"))
    except ValueError as e:
        return [f"{ann_path.name}: {e}"]
    width, height, ids = record.width, record.height, record.ids
    if size is not None and size != (width, height):
        return [f"{ann_path.name}: image size {size[0]}x{size[1]}, the PNG is {width}x{height}"]
    if len(ann) != len(ids):
        return [f"{ann_path.name}: {len(ann)} boxes, the mask has {len(ids)} objects"]
    iou = box_iou(ann, record.boxes).diagonal()  # annotation k against mask box k
    bad = [k + 1 for k in range(len(ids)) if iou[k] < min_iou]
    if bad:
        return [f"{ann_path.name}: objects {bad} have IoU {[round(float(iou[k - 1]), 2) for k in bad]} "
                f"< {min_iou} with their mask boxes"]
    return []


def _report(problems: list[str], root: Path, check_annotations: str) -> None:
    """The policy: one ValueError (``"raise"``) or one UserWarning at the caller of read_pennfudan."""
    msg = (f"{len(problems)} annotation file(s) in {root / 'Annotation'} disagree with the "
           f"masks (the mask boxes are used): " + "; ".join(problems))
    if check_annotations == "raise":
        raise ValueError(msg)
    warnings.warn(msg, UserWarning, stacklevel=3)


def split_pennfudan(names, num_val: int = _NUM_VAL, seed: int = 0) -> tuple[list[str], list[str]]:
    """A deterministic train/validation split of image names.

    The names are sorted, permuted with ``torch.randperm`` under a
    ``torch.Generator`` seeded with ``seed``; the last ``num_val`` of the
    permutation are validation, the rest training (torchvision's tutorial
    does the same with an unseeded permutation). For the real 170 images:
    120 / 50.

    Args:
        names: image names (e.g. ``[r.name for r in read_pennfudan(root)]``).
        num_val: validation images, ``0 <= num_val < len(names)``.
        seed: seed of the permutation.

    Returns:
        ``(train_names, val_names)``, each sorted; disjoint, together all names.

    Raises:
        ValueError: duplicate names or ``num_val`` out of range.
    """
    names = sorted(names)
    if len(set(names)) != len(names):
        raise ValueError("names must be unique")
    if isinstance(num_val, bool) or int(num_val) != num_val or not 0 <= num_val < len(names):
        raise ValueError(f"num_val must be an integer in [0, {len(names)}), got {num_val!r}")
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(len(names), generator=g).tolist()
    cut = len(names) - int(num_val)
    return sorted(names[i] for i in perm[:cut]), sorted(names[i] for i in perm[cut:])


class PennFudanDataset(torch.utils.data.Dataset):
    """Penn-Fudan images with boxes and instance masks, as ``torchvision.tv_tensors``.

    ``dataset[i]`` is ``(image, target)`` before ``transforms``:

    * ``image``: ``tv_tensors.Image`` uint8 ``(3, H, W)``, RGB;
    * ``target["boxes"]``: ``tv_tensors.BoundingBoxes`` float32 ``(G, 4)``,
      format XYXY, in pixels (half-open: ``xmax`` is one past the last
      column), ``canvas_size=(H, W)``;
    * ``target["masks"]``: ``tv_tensors.Mask`` uint8 ``(G, H, W)`` of 0/1,
      mask ``g`` belonging to box ``g``;
    * ``target["labels"]``: int64 ``(G,)``, all 0 (pedestrian; label
      convention of :func:`d2lssd.multibox_target`, the model's class 1);
    * ``target["image_id"]``: int, the index in this dataset; ``target["name"]``: str.

    ``transforms(image, target) -> (image, target)`` is applied last, e.g.
    :class:`d2lssd.transforms.SSDTrainTransform` or
    :class:`d2lssd.transforms.SSDEvalTransform`; any
    ``torchvision.transforms.v2`` transform works since boxes and masks are
    tv_tensors.

    Args:
        root: the ``PennFudanPed`` folder (real or generated).
        split: ``"train"``, ``"val"`` or ``"all"`` (see :func:`split_pennfudan`).
        transforms: optional callable ``(image, target) -> (image, target)``.
        num_val, seed: of the split.
        check_annotations: see :func:`read_pennfudan`.

    Attributes:
        root, split, records (list of :class:`PennFudanRecord`), names,
        data_source (a :class:`DataSource` when made by
        :func:`load_data_pennfudan`, else ``None``).

    Raises:
        ValueError: an unknown ``split``; what :func:`read_pennfudan` and
            :func:`split_pennfudan` raise.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train",
                 transforms: Callable | None = None, num_val: int = _NUM_VAL, seed: int = 0,
                 check_annotations: str = "warn"):
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
        self.root = Path(root)
        self.split = split
        self.transforms = transforms
        records = read_pennfudan(self.root, check_annotations=check_annotations)
        if split != "all":
            train, val = split_pennfudan([r.name for r in records], num_val, seed)
            keep = set(train if split == "train" else val)
            records = [r for r in records if r.name in keep]
        self.records = records
        self.names = [r.name for r in records]
        self.data_source = None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int):
        from PIL import Image
        from torchvision import tv_tensors

        rec = self.records[idx]
        with Image.open(rec.image) as im:
            arr = np.asarray(im.convert("RGB"))
        image = tv_tensors.Image(torch.from_numpy(arr.copy()).permute(2, 0, 1))
        ids, masks, boxes = _mask_boxes(_read_ids(rec.mask))
        h, w = arr.shape[:2]
        target = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w)),
            "masks": tv_tensors.Mask(masks.to(torch.uint8)),
            "labels": torch.zeros(len(ids), dtype=torch.int64),
            "image_id": int(idx),
            "name": rec.name,
        }
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


# --- obtaining and loading -----------------------------------------------------------------

def _generated(base: Path, seed: int, why: str) -> DataSource:
    root = generate_pennfudan(base / f"PennFudanPed-generated-seed{seed}", _NUM_IMAGES, seed)
    return DataSource("generated", root, f"generated offline Penn-Fudan look-alike data (seed {seed}) "
                                         f"at {shown(root)} — {why}")


def obtain_pennfudan(root: str | os.PathLike | None = None, source: str = "auto",
                     seed: int = 0) -> DataSource:
    """Find, download or generate the Penn-Fudan data; say which (does not print).

    Args:
        root: folder for the download and the data; default
            :func:`d2lssd.data.download.cache_dir`. The real data goes to
            ``root/PennFudanPed``, generated data (170 images) to
            ``root/PennFudanPed-generated-seed<seed>`` (generated once, then reused).
        source: ``"auto"``: the real data (downloaded unless
            ``D2LSSD_OFFLINE=1``), generated data if that fails; ``"real"``:
            the real data or an error; ``"generated"``: no network.
        seed: seed of the generated data.

    Returns:
        :class:`DataSource` ``(kind, root, description)``: ``kind`` is
        ``"real"`` or ``"generated"``, ``description`` one line naming the
        data, its folder and, for generated data, why it was used.

    Raises:
        ValueError: an unknown ``source``.
        RuntimeError: ``source="real"`` with ``D2LSSD_OFFLINE=1``.
        DownloadError, OSError, zipfile.BadZipFile: ``source="real"`` and
            the download or extraction failed.
    """
    base = Path(root) if root is not None else _download.cache_dir()

    def real() -> DataSource:
        data_dir = download_pennfudan(base)
        return DataSource("real", data_dir, f"real Penn-Fudan data from {shown(data_dir)} (downloaded "
                                            f"from {PENNFUDAN_URL}, MD5 verified)")

    return obtain(source, real, lambda why: _generated(base, seed, why))


def load_data_pennfudan(batch_size: int, root: str | os.PathLike | None = None, source: str = "auto",
                        num_workers: int = 0, seed: int = 0, size: int = 300, augment: bool = True,
                        num_val: int = _NUM_VAL):
    """Data loaders for Penn-Fudan (real or generated), ready for :func:`d2lssd.train_ssd`.

    Prints one line saying which data is used (see :func:`obtain_pennfudan`).

    Args:
        batch_size: examples per batch.
        root, source: see :func:`obtain_pennfudan`.
        num_workers: worker processes of each ``DataLoader``.
        seed: seeds the split, the training loader's shuffling and the
            generated data. The augmentation draws from torch's global
            generator (seed it with ``torch.manual_seed`` for a repeatable run).
        size: side of the square images the model sees (300 for the ResNet-34 SSD).
        augment: training images go through
            :class:`d2lssd.transforms.SSDTrainTransform` (else the eval transform).
        num_val: validation images of the split (50: 120 / 50 for 170 images).

    Returns:
        ``(train_iter, val_iter)``: ``DataLoader`` s over
        :class:`PennFudanDataset` with :func:`collate_ssd`; batches are
        ``(images float32 (B, 3, size, size) in [0, 1], labels float32
        (B, G, 5))``. Loaders and datasets have a ``data_source`` attribute.

    Raises:
        What :func:`obtain_pennfudan` and :class:`PennFudanDataset` raise.
    """
    from ..transforms import SSDEvalTransform, SSDTrainTransform

    data_source = obtain_pennfudan(root, source, seed)
    print(data_source.description, flush=True)
    train_tf = SSDTrainTransform(size=size) if augment else SSDEvalTransform(size=size)
    train = PennFudanDataset(data_source.root, "train", train_tf, num_val=num_val, seed=seed)
    val = PennFudanDataset(data_source.root, "val", SSDEvalTransform(size=size), num_val=num_val, seed=seed)
    g = torch.Generator().manual_seed(seed)
    train_iter = torch.utils.data.DataLoader(train, batch_size, shuffle=True, num_workers=num_workers,
                                             generator=g, collate_fn=collate_ssd)
    val_iter = torch.utils.data.DataLoader(val, batch_size, shuffle=False, num_workers=num_workers,
                                           collate_fn=collate_ssd)
    for obj in (train, val, train_iter, val_iter):
        obj.data_source = data_source
    return train_iter, val_iter
