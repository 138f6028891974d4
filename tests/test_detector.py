"""The detector as one object (d2lssd.Detector), the model registry and the one checkpoint format."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import d2lssd
from d2lssd import Detector, PostProcess, load_detector
from d2lssd.engine.checkpoint import CHECKPOINT_FORMAT, read_checkpoint
from d2lssd.models import SSDBase, registry
from d2lssd.models.tinyssd import down_sample_blk


class _OneBoxNet(torch.nn.Module):
    """Predicts one object at normalized (0.1, 0.2, 0.5, 1.0) with probability sigmoid(5) on any input."""

    MIN_SIZE = 1

    def __init__(self, num_classes=1, sizes=None, ratios=None):
        super().__init__()
        self.num_classes = num_classes
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, X):
        self.seen.append((tuple(X.shape), float(X.max())))
        B = X.shape[0]
        anchors = torch.tensor([[[0.1, 0.2, 0.5, 1.0], [0.0, 0.0, 0.1, 0.1]]])
        cls = torch.tensor([[0.0, 5.0], [5.0, 0.0]]).expand(B, 2, 2) + self.w
        return anchors, cls, torch.zeros(B, 8)


class ToySSD(SSDBase):
    """A backbone nobody wrote before: two strided blocks, two levels of anchors."""

    NUM_LEVELS = 2
    MIN_SIZE = 32
    SIZES = [[0.3, 0.4], [0.6, 0.8]]
    RATIOS = [[1, 2, 0.5]] * 2

    def __init__(self, num_classes, sizes=None, ratios=None):
        super().__init__(num_classes, sizes, ratios)
        self.a = down_sample_blk(3, 8)
        self.b = down_sample_blk(8, 8)
        self.cls_heads, self.bbox_heads = self.make_heads([8, 8])

    def feature_maps(self, X):
        x1 = self.a(X)
        return [x1, self.b(x1)]

    def heads(self):
        return self.cls_heads, self.bbox_heads


@pytest.fixture
def registered():
    """Register the toy models for one test and leave the registry as it was."""
    before = dict(registry.MODELS)
    registry.register_model("onebox", _OneBoxNet, input_size=300, pixel_scale=255)
    registry.register_model("toy", ToySSD, input_size=64, pixel_scale=1, description="a test backbone")
    yield
    registry.MODELS.clear()
    registry.MODELS.update(before)


def test_detect_scales_boxes_back_to_each_original_image(registered, tmp_path):
    net = _OneBoxNet()
    det = Detector(net, class_names=["pedestrian"])
    assert det.model == "onebox" and det.input_size == (300, 300) and det.pixel_scale == 255.0
    a = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)  # H 300, W 400
    b = torch.randint(0, 256, (3, 600, 200), dtype=torch.uint8)
    dets = det.detect([a, b])
    assert [s for s, _ in net.seen] == [(2, 3, 300, 300)]  # resized to the input size, one batch
    assert 0.9 < net.seen[0][1] <= 1.0  # the input convention: [0, 1] for pixel_scale 255
    p = torch.sigmoid(torch.tensor(5.0)).item()
    torch.testing.assert_close(dets[0], torch.tensor([[0.0, p, 40.0, 60.0, 200.0, 300.0]]))
    torch.testing.assert_close(dets[1], torch.tensor([[0.0, p, 20.0, 120.0, 100.0, 600.0]]))
    one = det.detect(a)  # one image in, one tensor out
    torch.testing.assert_close(one, dets[0])
    assert det.detect([a], score_threshold=0.999)[0].shape == (0, 6)  # a call can change the settings


def test_detect_reads_photos_upright_as_people_see_them(registered, tmp_path):
    """A phone photo stores its pixels rotated with an EXIF orientation tag; the detector applies it."""
    pixels = Image.new("RGB", (40, 30), (200, 10, 10))  # stored 40 wide, 30 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show: 30 wide, 40 high
    pixels.save(tmp_path / "phone.jpg", exif=exif)
    det = Detector(_OneBoxNet())
    (d,) = det.detect([tmp_path / "phone.jpg"])
    torch.testing.assert_close(d[0, 2:], torch.tensor([3.0, 8.0, 15.0, 40.0]))  # boxes in the upright 30 x 40


def test_spec_round_trip_and_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = d2lssd.TinySSD(2, sizes=[[0.1, 0.2]] * 5, ratios=[[1, 2]] * 5)
    det = Detector(net, class_names=["cat", "dog"], category_ids=[3, 7], input_size=(192, 256),
                   postprocess=PostProcess(score_threshold=0.3, top_k=50))
    path = det.save(tmp_path / "det.pt")
    state = read_checkpoint(path)
    assert state["format"] == CHECKPOINT_FORMAT and state["detector"] == det.spec
    back = load_detector(path, "cpu")
    assert back.spec == det.spec and not back.training
    x = torch.randint(0, 256, (2, 3, 192, 256), dtype=torch.uint8)
    for a, b in zip(det.predict(det.scale_pixels(x)), back.predict(back.scale_pixels(x))):
        torch.testing.assert_close(a, b)


def test_bad_arguments_name_what_was_expected():
    net = d2lssd.TinySSD(2)
    with pytest.raises(ValueError, match="class_names must be 2"):
        Detector(net, class_names=["one"])
    with pytest.raises(ValueError, match="pixel_scale must be 1"):
        Detector(net, pixel_scale=2)
    with pytest.raises(ValueError, match="below TinySSD's minimum"):
        Detector(net, input_size=16)
    with pytest.raises(ValueError, match="model 'resnet34' is a SSDResNet34"):
        Detector(net, model="resnet34")
    with pytest.raises(ValueError, match="not a registered model"):
        Detector(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="semantics must be one of"):
        PostProcess(semantics="yolo")
    with pytest.raises(ValueError, match="score_threshold must be a number in"):
        PostProcess(score_threshold=2)
    with pytest.raises(ValueError, match="needs semantics='d2l'"):
        PostProcess(class_agnostic=True)
    with pytest.raises(ValueError, match="batch_size"):
        Detector(net).detect([torch.zeros(3, 8, 8, dtype=torch.uint8)], batch_size=0)


def test_postprocess_is_predict_s():
    """d2lssd.predict and the detector run the same post-processing (one place)."""
    torch.manual_seed(0)
    net = d2lssd.TinySSD(2).eval()
    x = torch.rand(2, 3, 128, 128) * 255
    for semantics in ("paper", "d2l"):
        top_k = 200 if semantics == "paper" else None
        det = Detector(net, postprocess=PostProcess(semantics=semantics, score_threshold=0.3, nms_threshold=0.5,
                                                    top_k=top_k))
        for a, b in zip(det.predict(x), d2lssd.predict(net, x, nms_threshold=0.5, score_threshold=0.3, top_k=top_k,
                                                       semantics=semantics)):
            torch.testing.assert_close(a, b)


def test_v1_checkpoints_convert_in_one_place(tmp_path):
    """The earlier format's two writers with a detector convert; weights only are refused with a way out."""
    torch.manual_seed(0)
    net = d2lssd.TinySSD(2)
    old = {"format": "d2lssd-checkpoint-v1", "epoch": 3, "model": net.state_dict(), "optimizer": None,
           "history": {}, "detector": {"model": "tinyssd", "classes": ["cat", "dog"], "category_ids": [1, 5],
                                       "size": 128, "sizes": None, "ratios": None, "score_threshold": 0.4,
                                       "nms_threshold": 0.45}}
    torch.save(old, tmp_path / "train.pt")
    det = load_detector(tmp_path / "train.pt", "cpu")
    assert det.class_names == ["cat", "dog"] and det.category_ids == [1, 5] and det.input_size == (128, 128)
    assert det.pixel_scale == 255.0  # d2lssd train fed [0, 1] before: the converted spec says so
    assert det.postprocess.score_threshold == 0.4
    pf = dict(old, detector=None)
    del pf["detector"]
    pf["pennfudan_config"] = {"size": 300, "num_classes": 1, "score_threshold": 0.5, "nms_threshold": 0.45, "top_k": 20}
    pf["model"] = d2lssd.SSDResNet34(1, pretrained=False).state_dict()
    torch.save(pf, tmp_path / "pf.pt")
    det = load_detector(tmp_path / "pf.pt", "cpu")
    assert det.model == "resnet34" and det.class_names == ["pedestrian"] and det.postprocess.top_k == 20
    bare = {k: v for k, v in old.items() if k != "detector"}
    torch.save(bare, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="without a detector spec.*load_checkpoint.*Detector"):
        load_detector(tmp_path / "bare.pt")
    assert d2lssd.load_checkpoint(tmp_path / "bare.pt", d2lssd.TinySSD(2))[0] == 3  # the weights still load


def test_registry_rejects_what_it_cannot_hold():
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model("tinyssd", ToySSD, input_size=64, pixel_scale=1)
    with pytest.raises(ValueError, match="already registered as 'tinyssd'"):
        registry.register_model("tiny2", d2lssd.TinySSD, input_size=64, pixel_scale=1)
    with pytest.raises(ValueError, match="pixel_scale"):
        registry.register_model("x", ToySSD, input_size=64, pixel_scale=100)
    with pytest.raises(ValueError, match="model must be one of"):
        registry.build_model("vgg16", 1)
    with pytest.raises(ValueError, match="no pretrained weights"):
        registry.build_model("tinyssd", 1, pretrained=True)


def test_a_new_backbone_is_one_class_and_one_registry_entry(registered, tmp_path):
    """The README's steps to add a model: train it with d2lssd train, load, detect, export, check on photos."""
    pytest.importorskip("onnxruntime")
    from d2lssd.cli import main
    from d2lssd.data.multiclass import generate_multiclass_coco
    from d2lssd.export import check_export

    root = generate_multiclass_coco(tmp_path / "data", num_train=8, num_val=4, seed=1)
    ckpt = tmp_path / "toy.pt"
    assert main(["train", "--coco", str(root / "train.json"), "--images", str(root / "images"), "--model", "toy",
                 "--checkpoint", str(ckpt), "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--no-progress",
                 "--no-augment"]) == 0
    det = load_detector(ckpt, "cpu")
    assert isinstance(det.net, ToySSD) and det.input_size == (64, 64) and det.pixel_scale == 1.0
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "toy.onnx")]) == 0
    r = check_export(tmp_path / "toy.onnx", det)
    assert r["ok"] and r["detections"] > 0, r["summary"]
