"""The banana data: generated offline in the real layout, read and loaded like d2l's.

Small generated sets (20 training and 5 validation images) keep this fast. No
test touches the network: ``d2lssd.data.download._urlopen`` is replaced by a
function that fails, and tests that want a "real" download serve a zip from a
``file://`` URL.
"""

import shutil
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from d2lssd.data import bananas as B
from d2lssd.data import download as dl

N_TRAIN, N_VAL = 20, 5
HEADER = "img_name,label,xmin,ymin,xmax,ymax"


@pytest.fixture(autouse=True)
def _offline(no_network):
    """Every test of this file runs with the network off (conftest.py's ``no_network``)."""


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    """A small generated set (seed 0); tests must not modify it."""
    return B.generate_bananas(tmp_path_factory.mktemp("g") / "banana-detection",
                              N_TRAIN, N_VAL, seed=0)


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(csv_path: Path):
    lines = csv_path.read_text().splitlines()
    return lines[0], [line.split(",") for line in lines[1:]]


# --- generation ----------------------------------------------------------------------------

def test_layout_and_csv_header_are_those_of_the_real_data(gen):
    for split, n in (("bananas_train", N_TRAIN), ("bananas_val", N_VAL)):
        header, rows = _rows(gen / split / "label.csv")
        assert header == HEADER
        assert [r[0] for r in rows] == [f"{i}.png" for i in range(n)]
        assert all(r[1] == "0" for r in rows)
        assert sorted(p.name for p in (gen / split / "images").iterdir()) == \
            sorted(f"{i}.png" for i in range(n))
        with Image.open(gen / split / "images" / "0.png") as im:
            assert (im.format, im.mode, im.size) == ("PNG", "RGB", (256, 256))
    marker = (gen / "GENERATED.txt").read_text()
    assert "generated offline banana data" in marker and "seed: 0" in marker
    assert sorted(p.name for p in gen.parent.iterdir()) == ["banana-detection"]  # no temp


def test_generation_is_deterministic_by_seed(gen, tmp_path):
    again = B.generate_bananas(tmp_path / "same", N_TRAIN, N_VAL, seed=0)
    assert _files(again) == _files(gen)
    other = B.generate_bananas(tmp_path / "other", 3, 1, seed=1)
    a = (gen / "bananas_train" / "images" / "0.png").read_bytes()
    assert (other / "bananas_train" / "images" / "0.png").read_bytes() != a
    # Image i depends only on (seed, split, i), not on how many images there are.
    fewer = B.generate_bananas(tmp_path / "fewer", 3, 1, seed=0)
    for i in range(3):
        name = f"bananas_train/images/{i}.png"
        assert _files(fewer)[name] == _files(gen)[name]


@pytest.mark.parametrize("seed", range(8))
def test_label_is_the_tight_box_of_the_banana(seed):
    img, alpha, (x1, y1, x2, y2) = B._render_sample(np.random.default_rng(seed), 256)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 256
    inside = np.zeros_like(alpha, dtype=bool)
    inside[y1:y2, x1:x2] = True
    assert not alpha[~inside].any()  # nothing of the banana outside the box
    # ... and the banana touches all four sides of the box.
    assert alpha[y1, x1:x2].any() and alpha[y2 - 1, x1:x2].any()
    assert alpha[y1:y2, x1].any() and alpha[y1:y2, x2 - 1].any()
    # Its size is that of d2l's bananas: about 10% to 45% of the side.
    assert 0.08 <= max(x2 - x1, y2 - y1) / 256 <= 0.5


def test_box_statistics_suit_tinyssd_anchors():
    """The figures generate_bananas' docstring gives for version 4, on 300 boxes."""
    from d2lssd import TinySSD, box_iou

    boxes = [B._render_sample(np.random.default_rng([0, 0, i]), 256)[2] for i in range(300)]
    b = torch.tensor(boxes, dtype=torch.float32) / 256
    anchors, _, _ = TinySSD(num_classes=1)(torch.zeros(1, 3, 256, 256))
    best = box_iou(anchors[0], b).max(dim=0).values  # best anchor IoU per box
    wh = b[:, 2:] - b[:, :2]
    longer, shorter = wh.max(dim=1).values, wh.min(dim=1).values
    assert 0.21 <= longer.median() <= 0.25
    assert 0.16 <= longer.quantile(0.1) and longer.quantile(0.9) <= 0.30
    assert 0.62 <= (shorter / longer).median() <= 0.76  # compact, as the real boxes
    assert (best >= 0.5).float().mean() >= 0.97
    assert 0.72 <= best.median() <= 0.78


def test_written_boxes_are_inside_and_around_the_yellow_object(gen):
    _, rows = _rows(gen / "bananas_train" / "label.csv")
    inside_yellow, ring_yellow = [], []
    for name, _, *box in rows:
        x1, y1, x2, y2 = map(int, box)
        assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 256
        img = np.asarray(Image.open(gen / "bananas_train" / "images" / name), np.float32)
        yellow = (img[..., 0] + img[..., 1]) / 2 - img[..., 2]
        ring = np.zeros((256, 256), bool)
        ring[max(y1 - 3, 0):y2 + 3, max(x1 - 3, 0):x2 + 3] = True
        ring[y1:y2, x1:x2] = False
        inside_yellow.append(yellow[y1:y2, x1:x2].max())
        ring_yellow.append(np.median(yellow[ring]))
    assert np.mean(inside_yellow) > np.mean(ring_yellow) + 60


def test_generate_refuses_to_overwrite_other_data_and_replaces_outdated(tmp_path):
    real = tmp_path / "banana-detection"
    (real / "bananas_train").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not a generated banana data set"):
        B.generate_bananas(real, 2, 1)
    root = B.generate_bananas(tmp_path / "g", 2, 1, seed=0)
    B.generate_bananas(root, 3, 1, seed=0)  # other arguments: regenerated
    assert len(list((root / "bananas_train" / "images").iterdir())) == 3
    assert "num_train: 3" in (root / "GENERATED.txt").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["banana-detection", "g"]


@pytest.mark.parametrize("kwargs", [dict(num_train=0), dict(num_val=-1), dict(seed=-1),
                                    dict(size=32), dict(num_train=2.5)])
def test_generate_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        B.generate_bananas(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


# --- reading -------------------------------------------------------------------------------

def test_read_data_bananas_contract(gen):
    images, labels = B.read_data_bananas(is_train=True, root=gen)
    assert images.shape == (N_TRAIN, 3, 256, 256) and images.dtype == torch.uint8
    assert labels.shape == (N_TRAIN, 1, 5) and labels.dtype == torch.float32
    _, rows = _rows(gen / "bananas_train" / "label.csv")
    want = torch.tensor([[float(v) for v in r[1:]] for r in rows]) / 256
    torch.testing.assert_close(labels[:, 0], want)
    first = torch.from_numpy(np.array(Image.open(gen / "bananas_train/images/0.png")))
    assert torch.equal(images[0], first.permute(2, 0, 1))
    images, labels = B.read_data_bananas(is_train=False, root=gen)
    assert images.shape == (N_VAL, 3, 256, 256) and labels.shape == (N_VAL, 1, 5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision.io in d2l
def test_read_data_bananas_equals_d2ls(gen, d2l, monkeypatch):
    monkeypatch.setattr(d2l, "download_extract", lambda name, folder=None: str(gen))
    for is_train in (True, False):
        want_images, want_labels = d2l.read_data_bananas(is_train)
        images, labels = B.read_data_bananas(is_train, gen)
        assert torch.equal(images, torch.stack(want_images))
        torch.testing.assert_close(labels, want_labels.float())


@pytest.mark.parametrize("line, content, match", [
    (1, "img_name,label,xmin,ymin,xmax", "header must be"),
    (3, "1.png,0,10,10,300,40", "must lie inside the 256x256 image"),
    (3, "1.png,0,50,10,50,40", "xmax > xmin"),
    (3, "1.png,0,10,-1,20,40", "must lie inside"),
    (3, "1.png,0,10,10,abc,40", "must be numbers"),
    (3, "1.png,0,10,10,20", "expected 6 fields"),
    (3, "1.png,banana,10,10,20,40", "label must be an integer"),
    (3, "../1.png,0,10,10,20,40", "bad image name"),
])
def test_malformed_label_csv_names_the_file_and_line(gen, tmp_path, line, content, match):
    root = tmp_path / "copy"
    shutil.copytree(gen, root)
    csv_path = root / "bananas_train" / "label.csv"
    lines = csv_path.read_text().splitlines()
    lines[line - 1] = content
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=match) as info:
        B.read_data_bananas(is_train=True, root=root)
    assert f"{csv_path}, line {line}" in str(info.value)


def test_missing_files_are_reported(gen, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a banana data folder"):
        B.read_data_bananas(root=tmp_path)
    root = tmp_path / "copy"
    shutil.copytree(gen, root)
    (root / "bananas_val" / "images" / "2.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"line 4: image .*2\.png not found"):
        B.read_data_bananas(is_train=False, root=root)
    (root / "bananas_val" / "label.csv").write_text(HEADER + "\n")
    with pytest.raises(ValueError, match="no rows"):
        B.read_data_bananas(is_train=False, root=root)


def test_readers_take_d2ls_arguments_and_default_to_load_data_bananas_data(tmp_path, monkeypatch,
                                                                            capsys):
    # d2l's calls: read_data_bananas(is_train=True), read_data_bananas(is_train) positionally
    # (inside d2l's BananasDataset), BananasDataset(is_train=True). Without a root they read
    # what load_data_bananas(batch_size) reads: here (no network) the generated set, seed 0,
    # in the cache folder $D2LSSD_DATA. Generation is cut to 20 + 5 images for speed.
    monkeypatch.setenv("D2LSSD_DATA", str(tmp_path))
    real_generate, asked = B.generate_bananas, []

    def small(root, num_train, num_val, seed):
        asked.append((Path(root), num_train, num_val, seed))
        return real_generate(root, N_TRAIN, N_VAL, seed)

    monkeypatch.setattr(B, "generate_bananas", small)
    images, labels = B.read_data_bananas(is_train=True)
    read_line = capsys.readouterr().out.strip()
    val_images, val_labels = B.read_data_bananas(False)
    train_ds, val_ds = B.BananasDataset(is_train=True), B.BananasDataset(False)
    capsys.readouterr()
    train_iter, val_iter = B.load_data_bananas(4)
    src = train_iter.data_source
    assert src.root == tmp_path / "banana-detection-generated-seed0" and src.kind == "generated"
    assert read_line == src.description  # the same data, announced by the same line
    assert set(asked) == {(src.root, 1000, 100, 0)}  # load_data_bananas's sizes and seed
    assert images.shape == (N_TRAIN, 3, 256, 256) and val_labels.shape == (N_VAL, 1, 5)
    assert torch.equal(images, train_iter.dataset.features) and torch.equal(labels, train_iter.dataset.labels)
    assert torch.equal(val_images, val_iter.dataset.features)
    assert torch.equal(train_ds.features, images) and torch.equal(val_ds.labels, val_labels)
    assert train_ds.data_source == src == val_ds.data_source and train_ds.root == src.root
    assert (train_ds.is_train, val_ds.is_train) == (True, False)


@pytest.mark.parametrize("call", [lambda root: B.read_data_bananas(root),
                                  lambda root: B.read_data_bananas(str(root), True),
                                  lambda root: B.BananasDataset(root)])
def test_a_folder_in_is_trains_place_is_rejected(gen, call):
    # bool(path) is True: taken as is_train it would silently read the default data.
    with pytest.raises(ValueError, match="d2l's order"):
        call(gen)


def test_dataset_item_is_d2ls_convention(gen):
    ds = B.BananasDataset(is_train=False, root=gen)
    assert len(ds) == N_VAL and ds.data_source is None
    x, y = ds[0]
    assert x.shape == (3, 256, 256) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 255 and x.max() > 1  # [0, 255], not [0, 1]
    assert y.shape == (1, 5) and y[0, 0] == 0


# --- loading: which data, shapes, shuffling --------------------------------------------------

def _load(tmp_path, **kw):
    return B.load_data_bananas(4, root=tmp_path, num_train=N_TRAIN, num_val=N_VAL, **kw)


def test_loader_shapes_and_generated_source(tmp_path, capsys):
    train_iter, val_iter = _load(tmp_path, source="generated")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("generated offline banana data (seed 0) at ")
    src = train_iter.data_source
    assert src.kind == "generated" and src.description == out[0]
    assert src.root == tmp_path / "banana-detection-generated-seed0"
    assert val_iter.data_source == src and train_iter.dataset.data_source == src
    x, y = next(iter(train_iter))
    assert x.shape == (4, 3, 256, 256) and x.dtype == torch.float32
    assert y.shape == (4, 1, 5) and y.dtype == torch.float32
    assert (y[..., 1:] >= 0).all() and (y[..., 1:] <= 1).all() and (y[..., 0] == 0).all()
    assert (y[..., 3] > y[..., 1]).all() and (y[..., 4] > y[..., 2]).all()
    assert sum(len(b[0]) for b in val_iter) == N_VAL


def test_train_is_shuffled_reproducibly_and_val_is_not(tmp_path, capsys):
    def order(loader):
        return torch.cat([y[:, 0, 1:] for _, y in loader])

    train_iter, val_iter = _load(tmp_path, source="generated")
    e1, e2 = order(train_iter), order(train_iter)
    assert not torch.equal(e1, e2)  # a new order every epoch
    assert torch.equal(e1.sort(0).values, e2.sort(0).values)  # of the same examples
    again, _ = _load(tmp_path, source="generated")
    assert torch.equal(order(again), e1)  # reproducible from the seed
    assert torch.equal(order(val_iter), order(val_iter))
    assert torch.equal(order(val_iter), B.read_data_bananas(False,
                                                            val_iter.data_source.root)[1][:, 0, 1:])


def test_offline_env_uses_generated_data_without_the_network(tmp_path, monkeypatch, capsys):
    def no_call(*args, **kwargs):
        pytest.fail("the downloader was called although D2LSSD_OFFLINE=1")

    monkeypatch.setattr(dl, "_urlopen", no_call)
    monkeypatch.setattr(dl, "download_extract", no_call)
    monkeypatch.setenv("D2LSSD_OFFLINE", "1")
    train_iter, _ = _load(tmp_path)
    assert train_iter.data_source.kind == "generated"
    line = capsys.readouterr().out.strip()
    assert line.startswith("generated offline banana data (seed 0)") and "D2LSSD_OFFLINE=1" in line
    with pytest.raises(RuntimeError, match="D2LSSD_OFFLINE"):
        _load(tmp_path, source="real")


def test_auto_falls_back_when_the_download_fails(tmp_path, capsys):
    train_iter, val_iter = _load(tmp_path)  # the autouse fixture makes urlopen fail
    line = capsys.readouterr().out.strip()
    assert train_iter.data_source.kind == "generated"
    # short and path-free: it is printed on the book's pages
    assert "the real data could not be downloaded (URLError: network disabled in the tests)" in line
    assert "http" not in line.split("—")[1] and str(tmp_path) not in line.split("—")[1]
    assert not (tmp_path / "banana-detection.zip").exists()  # no partial download
    with pytest.raises(dl.DownloadError):
        _load(tmp_path, source="real")


def test_auto_uses_the_real_data_when_it_downloads(gen, tmp_path, monkeypatch, capsys):
    # Pack the generated set like d2l's zip (without the marker) and serve it.
    server = tmp_path / "server"
    server.mkdir()
    zpath = server / "banana-detection.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(gen.rglob("*")):
            if p.is_file() and p.name != "GENERATED.txt":
                zf.write(p, "banana-detection/" + p.relative_to(gen).as_posix())
    monkeypatch.setitem(dl.DATA_HUB, "banana-detection", (zpath.as_uri(), dl.sha1sum(zpath)))
    monkeypatch.setattr(dl, "_urlopen", urllib.request.urlopen)  # file:// only
    cache = tmp_path / "cache"
    train_iter, val_iter = B.load_data_bananas(5, root=cache, num_train=1, num_val=1)
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"real d2l banana data from {cache / 'banana-detection'}")
    assert train_iter.data_source.kind == "real"
    assert len(train_iter.dataset) == N_TRAIN and len(val_iter.dataset) == N_VAL
    x, y = next(iter(val_iter))
    assert x.shape == (5, 3, 256, 256) and y.shape == (5, 1, 5)


def test_unknown_source(tmp_path):
    with pytest.raises(ValueError, match="source must be one of"):
        _load(tmp_path, source="internet")
