"""Penn-Fudan data: the generator writes the real layout, the reader reads it, the split is seeded.

Small generated sets (6 images) keep this fast. No test touches the network:
``d2lssd.data.download._urlopen`` is replaced by a function that fails; the
download test serves a zip from a ``file://`` URL.
"""

import hashlib
import shutil
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes

from d2lssd import box_iou, multibox_prior, multibox_target
from d2lssd.data import collate_ssd
from d2lssd.data import download as dl
from d2lssd.data import pennfudan as P
from d2lssd.data import pennfudan_format as F
from d2lssd.data import pennfudan_generator as G
from d2lssd.models import PENNFUDAN_RATIOS, PENNFUDAN_SIZES
from d2lssd.transforms import SSDEvalTransform

N = 6
REAL_LINE = ('Bounding box for object 1 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : '
             '(160, 182) - (302, 431)')


@pytest.fixture(autouse=True)
def _offline(no_network):
    """Every test of this file runs with the network off (conftest.py's ``no_network``)."""


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    """A small generated set (seed 0); tests must not modify it."""
    return G.generate_pennfudan(tmp_path_factory.mktemp("g") / "PennFudanPed", N, seed=0)


@pytest.fixture(scope="module")
def rendered():
    """40 rendered images (not written), for statistics of the generator."""
    return [G._render_image(np.random.default_rng([7, i])) for i in range(40)]


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- annotation format ---------------------------------------------------------------------

def test_parse_annotation_reads_the_real_format_as_half_open_pixels():
    text = ("# Compatible with PASCAL Annotation Version 1.00\n"
            "Image size (X x Y x C) : 559 x 536 x 3\n" + REAL_LINE + "\n"
            'Bounding box for object 2 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : (420, 171) - (535, 486)\n')
    size, boxes = F.parse_annotation(text)
    assert size == (559, 536)
    assert boxes.dtype == torch.float32
    assert boxes.tolist() == [[159, 181, 302, 431], [419, 170, 535, 486]]
    assert F.parse_annotation("no boxes here")[1].shape == (0, 4)
    with pytest.raises(ValueError, match="two bounding boxes"):
        F.parse_annotation(REAL_LINE + "\n" + REAL_LINE)


def test_format_then_parse_is_the_identity():
    boxes = [(0, 5, 40, 200), (100, 20, 180, 300)]
    text = F.format_annotation("FudanPed00001", 559, 536, boxes)
    assert "(1, 6) - (40, 200)" in text  # 1-based inclusive on disk, as the real files
    size, parsed = F.parse_annotation(text)
    assert size == (559, 536) and parsed.tolist() == [list(b) for b in boxes]


# --- generation ----------------------------------------------------------------------------

def test_layout_is_that_of_the_real_data(gen):
    names = sorted(p.stem for p in (gen / "PNGImages").iterdir())
    assert names == sorted(f"PennPed{i:05d}" for i in range(1, N + 1))
    assert sorted(p.name for p in (gen / "PedMasks").iterdir()) == [f"{n}_mask.png" for n in names]
    assert sorted(p.name for p in (gen / "Annotation").iterdir()) == [f"{n}.txt" for n in names]
    for n in names:
        with Image.open(gen / "PNGImages" / f"{n}.png") as im:
            assert (im.format, im.mode) == ("PNG", "RGB")
            w, h = im.size
        assert 330 <= w <= 600 and 300 <= h <= 560
        with Image.open(gen / "PedMasks" / f"{n}_mask.png") as im:
            assert im.mode == "P" and im.size == (w, h)
            ids = np.asarray(im)
        k = int(ids.max())
        assert set(np.unique(ids)) == set(range(k + 1)) and k >= 1  # 0 background, 1..k
        size, boxes = F.parse_annotation((gen / "Annotation" / f"{n}.txt").read_text())
        assert size == (w, h) and len(boxes) == k
    marker = (gen / "GENERATED.txt").read_text()
    assert "not the real PennFudanPed data" in marker and "seed: 0" in marker
    assert sorted(p.name for p in gen.parent.iterdir()) == ["PennFudanPed"]  # no temp folder left


def test_generation_is_deterministic_and_image_i_does_not_depend_on_the_count(gen, tmp_path):
    fewer = G.generate_pennfudan(tmp_path / "fewer", 2, seed=0)
    ref = _files(gen)
    for path, data in _files(fewer).items():
        if path != "GENERATED.txt":
            assert ref[path] == data, path
    other = G.generate_pennfudan(tmp_path / "other", 1, seed=1)
    name = "PNGImages/PennPed00001.png"
    assert (other / name).read_bytes() != ref[name]


def test_generation_is_cached_and_never_overwrites_real_data(gen, tmp_path):
    before = (gen / "GENERATED.txt").stat().st_mtime_ns
    assert G.generate_pennfudan(gen, N, seed=0) == gen
    assert (gen / "GENERATED.txt").stat().st_mtime_ns == before
    real = tmp_path / "PennFudanPed"
    (real / "PNGImages").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        G.generate_pennfudan(real, 2)
    with pytest.raises(ValueError):
        G.generate_pennfudan(tmp_path / "x", 0)
    with pytest.raises(ValueError):
        G.generate_pennfudan(tmp_path / "x", 2, seed=-1)


def test_rendered_pedestrians_have_the_real_sizes_shapes_overlaps_and_cuts(rendered):
    heights, ratios, counts, overlaps, cut = [], [], [], 0, 0
    for img, ids, boxes in rendered:
        h, w = ids.shape
        assert img.shape == (h, w, 3) and img.dtype == np.uint8
        counts.append(len(boxes))
        b = torch.tensor(boxes, dtype=torch.float32)
        # The boxes are the tight boxes of the instance masks, ids numbered 1..k.
        masks = torch.from_numpy(ids)[None] == torch.arange(1, len(boxes) + 1)[:, None, None]
        assert torch.equal(masks_to_boxes(masks) + torch.tensor([0, 0, 1, 1]), b)
        bh, bw = b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]
        heights += bh.tolist()
        ratios += (bw / bh).tolist()
        iou = box_iou(b, b) - torch.eye(len(b))
        overlaps += int((iou > 0).any())
        cut += int(((b[:, 0] == 0) | (b[:, 2] == w) | (b[:, 3] == h)).any())
    assert max(heights) <= 400 and np.median(heights) >= 220  # 180 to 390 px tall, some cut
    assert 0.25 <= np.median(ratios) <= 0.5 and max(ratios) < 0.8  # upright and thin
    assert min(counts) >= 1 and max(counts) >= 4 and 1.5 <= np.mean(counts) <= 2.6  # real: 345/170
    assert overlaps >= 5 and cut >= 5


# --- reading ---------------------------------------------------------------------------------

def test_read_gives_mask_boxes_that_agree_with_the_annotations(gen):
    records = P.read_pennfudan(gen, check_annotations="raise")
    assert [r.name for r in records] == sorted(r.name for r in records) and len(records) == N
    for r in records:
        _, ann = F.parse_annotation(r.annotation.read_text())
        assert torch.equal(ann, r.boxes)
        assert r.ids == tuple(range(1, len(r.ids) + 1))
        assert ((r.boxes[:, 2:] <= torch.tensor([r.width, r.height])).all()
                and (r.boxes[:, :2] >= 0).all())


def test_a_disagreeing_annotation_warns_or_raises_and_a_missing_one_is_fine(gen, tmp_path):
    root = tmp_path / "PennFudanPed"
    shutil.copytree(gen, root)
    ann = root / "Annotation" / "PennPed00001.txt"
    lines = ann.read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith("Bounding box for object 1 "))
    lines[k] = lines[k].split(" : ")[0] + " : (1, 1) - (5, 5)"
    ann.write_text("\n".join(lines))
    with pytest.warns(UserWarning, match=r"PennPed00001.txt: objects \[1\]") as caught:
        records = P.read_pennfudan(root)
    assert caught[0].filename == __file__  # the warning points at the caller of read_pennfudan
    assert records[0].boxes[0, 2] > 5  # the mask box is used
    with pytest.raises(ValueError, match="disagree"):
        P.read_pennfudan(root, check_annotations="raise")
    (root / "Annotation" / "PennPed00002.txt").unlink()
    ann.unlink()
    records = P.read_pennfudan(root, check_annotations="raise")
    assert records[1].annotation is None
    (root / "PedMasks" / "PennPed00003_mask.png").unlink()
    with pytest.raises(FileNotFoundError, match="PennPed00003_mask.png"):
        P.read_pennfudan(root)
    with pytest.raises(FileNotFoundError):
        P.read_pennfudan(tmp_path)


def test_split_is_seeded_120_50_and_disjoint():
    names = [f"img{i:03d}" for i in range(170)]
    train, val = P.split_pennfudan(names, seed=0)
    assert (len(train), len(val)) == (120, 50)
    assert not set(train) & set(val) and set(train) | set(val) == set(names)
    assert P.split_pennfudan(list(reversed(names)), seed=0) == (train, val)  # order of input irrelevant
    assert P.split_pennfudan(names, seed=1)[1] != val
    with pytest.raises(ValueError):
        P.split_pennfudan(names[:10], num_val=10)
    with pytest.raises(ValueError):
        P.split_pennfudan(["a", "a", "b"], num_val=1)


def test_dataset_items_are_tv_tensors_with_consistent_boxes_and_masks(gen):
    ds = P.PennFudanDataset(gen, "all")
    assert len(ds) == N
    train, val = P.PennFudanDataset(gen, "train", num_val=2), P.PennFudanDataset(gen, "val", num_val=2)
    assert (len(train), len(val)) == (4, 2) and not set(train.names) & set(val.names)
    image, target = ds[0]
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8 and image.shape[0] == 3
    boxes, masks = target["boxes"], target["masks"]
    assert isinstance(boxes, tv_tensors.BoundingBoxes) and boxes.format == tv_tensors.BoundingBoxFormat.XYXY
    assert tuple(boxes.canvas_size) == tuple(image.shape[-2:])
    assert isinstance(masks, tv_tensors.Mask) and masks.shape == (len(boxes), *image.shape[-2:])
    assert target["labels"].dtype == torch.int64 and (target["labels"] == 0).all()
    assert torch.equal(masks_to_boxes(masks.bool()) + torch.tensor([0, 0, 1, 1]), boxes.as_subclass(torch.Tensor))
    assert target["name"] == ds.names[0] and target["image_id"] == 0
    with pytest.raises(ValueError):
        P.PennFudanDataset(gen, "test")


def test_collate_gives_train_ssd_batches_whose_boxes_all_get_a_positive_anchor(gen):
    ds = P.PennFudanDataset(gen, "all", SSDEvalTransform(300))
    images, labels = collate_ssd([ds[i] for i in range(N)])
    assert images.shape == (N, 3, 300, 300) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1
    counts = [len(r.ids) for r in ds.records]
    assert labels.shape == (N, max(counts), 5) and labels.dtype == torch.float32
    for i, rec in enumerate(ds.records):
        k = counts[i]
        assert (labels[i, :k, 0] == 0).all() and (labels[i, k:, 0] == -1).all()
        scale = torch.tensor([rec.width, rec.height] * 2, dtype=torch.float32)
        torch.testing.assert_close(labels[i, :k, 1:], rec.boxes / scale)
    # Every pedestrian has a positive anchor among the ResNet-34 SSD's 7760.
    anchors = torch.cat([multibox_prior(torch.zeros(1, 1, f, f), s, r)
                         for f, s, r in zip([38, 19, 10, 5, 3, 1], PENNFUDAN_SIZES, PENNFUDAN_RATIOS)], dim=1)
    assert anchors.shape == (1, 7760, 4)
    _, _, cls = multibox_target(anchors, labels)
    assert ((cls == 1).sum(dim=1) >= torch.tensor(counts)).all()


def test_collate_rejects_what_train_ssd_cannot_take(gen):
    raw = P.PennFudanDataset(gen, "all")
    with pytest.raises(ValueError, match="float"):
        collate_ssd([raw[0]])
    a = SSDEvalTransform(300)(*raw[0])
    b = SSDEvalTransform(320)(*raw[1])
    with pytest.raises(ValueError, match="differs"):
        collate_ssd([a, b])
    with pytest.raises(ValueError):
        collate_ssd([])
    empty = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64)}
    images, labels = collate_ssd([(a[0], empty)])
    assert labels.shape == (1, 0, 5)
    nan_box = {"boxes": torch.tensor([[1.0, 2.0, float("nan"), 9.0]]), "labels": torch.zeros(1, dtype=torch.int64)}
    with pytest.raises(ValueError, match="NaN"):  # normalized by d2lssd.boxes.to_normalized, which checks
        collate_ssd([(a[0], nan_box)])


# --- obtaining: real, generated, offline --------------------------------------------------------

def _zip_of(folder: Path, dest: Path, extra: str | None = None) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, "PennFudanPed/" + p.relative_to(folder).as_posix())
        if extra:
            zf.writestr(extra, b"x")
    return dest


def test_download_streams_verifies_md5_and_extracts(gen, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "_urlopen", urllib.request.urlopen)
    (tmp_path / "src" / "evil").mkdir(parents=True)
    z = _zip_of(gen, tmp_path / "src" / "PennFudanPed.zip")
    md5 = hashlib.md5(z.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    with pytest.raises(dl.DownloadError, match="checksum mismatch"):
        P.download_pennfudan(cache, url=z.as_uri(), md5="0" * 32)
    assert not list(cache.iterdir())  # nothing left behind
    data = P.download_pennfudan(cache, url=z.as_uri(), md5=md5)
    assert data == cache / "PennFudanPed"
    assert len(P.read_pennfudan(data)) == N
    monkeypatch.setattr(dl, "_urlopen", lambda url, timeout: pytest.fail("cached: no download"))
    assert P.download_pennfudan(cache, url=z.as_uri(), md5=md5) == data
    bad = _zip_of(gen, tmp_path / "src" / "evil" / "PennFudanPed.zip", extra="../escape.txt")
    monkeypatch.setattr(dl, "_urlopen", urllib.request.urlopen)
    with pytest.raises(ValueError, match="unsafe"):
        P.download_pennfudan(tmp_path / "c2", url=bad.as_uri(), md5=hashlib.md5(bad.read_bytes()).hexdigest())
    assert not (tmp_path / "escape.txt").exists()


def test_obtain_says_which_data_and_why(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "_NUM_IMAGES", 3)
    src = P.obtain_pennfudan(tmp_path, "auto", seed=0)  # the network fails in the tests
    assert src.kind == "generated" and "could not be downloaded" in src.description
    assert src.root == tmp_path / "PennFudanPed-generated-seed0" and len(P.read_pennfudan(src.root)) == 3
    monkeypatch.setenv("D2LSSD_OFFLINE", "1")
    assert "D2LSSD_OFFLINE=1" in P.obtain_pennfudan(tmp_path, "auto").description
    with pytest.raises(RuntimeError, match="D2LSSD_OFFLINE"):
        P.obtain_pennfudan(tmp_path, "real")
    monkeypatch.delenv("D2LSSD_OFFLINE")
    with pytest.raises(dl.DownloadError):
        P.obtain_pennfudan(tmp_path, "real")
    assert P.obtain_pennfudan(tmp_path, "generated").kind == "generated"
    with pytest.raises(ValueError):
        P.obtain_pennfudan(tmp_path, "bananas")


def test_load_data_gives_train_ssd_batches_and_prints_the_source(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(P, "_NUM_IMAGES", 5)
    torch.manual_seed(0)
    train_iter, val_iter = P.load_data_pennfudan(2, tmp_path, "generated", num_val=2)
    assert "generated offline Penn-Fudan" in capsys.readouterr().out
    assert train_iter.data_source.kind == "generated" and len(train_iter.dataset) == 3
    X, Y = next(iter(train_iter))
    assert X.shape == (2, 3, 300, 300) and X.dtype == torch.float32 and Y.shape[0] == 2
    assert ((Y[:, :, 0] == 0).sum(dim=1) >= 1).all()  # augmentation never leaves an image without a box
    valid = Y[Y[:, :, 0] == 0][:, 1:]
    assert (valid >= 0).all() and (valid <= 1).all() and (valid[:, 2:] > valid[:, :2]).all()
    Xv, _ = next(iter(val_iter))
    assert Xv.shape == (2, 3, 300, 300)
