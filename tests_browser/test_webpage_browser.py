"""The detector as one web page (``d2lssd export --html``) in headless Chromium, offline, from disk.

    .venv/bin/python -m pytest tests_browser/test_webpage_browser.py -q -s

Needs no built book: a seeded TinySSD with two classes is exported and
written as a page (:func:`d2lssd.webpage.write_detector_page`), opened from
``file://`` with the network cut (``conftest.py``'s driver), and given two of
the package's real photos through its file input at once: chelsea as a PNG
(451x300) and coffee as a JPEG stored on its side with EXIF orientation 6
(so the page must turn it upright to 600x400, as ``detect`` does). Then:

* the pixels the page feeds the model equal ``TF.resize(...,
  antialias=True)``'s of the upright photo, byte for byte (the page's
  JavaScript resize is torch's uint8 kernel; a canvas resize is not);
* its detections (``window.d2lssdDetections``, boxes in each photo's pixels)
  equal ``detector.detect``'s on the same files: same number, same classes,
  scores within :data:`SCORE_TOL` and boxes within :data:`PIXEL_TOL` pixels
  (measured: scores within 3e-7, boxes within 1e-4 pixel), at the sliders'
  starting thresholds and after moving both sliders;
* a photo dropped on the page is detected too;
* nothing was requested from the network.
"""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

#: The tolerances asserted (the brief's); what was measured is printed and far below.
SCORE_TOL = 1e-2
PIXEL_TOL = 2.0


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    import d2lssd
    from d2lssd import export as E
    from d2lssd import webpage

    try:
        webpage.onnxruntime_web_tarball()
    except (RuntimeError, OSError) as e:
        pytest.skip(f"onnxruntime-web is not available here: {e}")
    tmp = tmp_path_factory.mktemp("webpage")
    torch.manual_seed(0)
    det = d2lssd.Detector(d2lssd.TinySSD(num_classes=2).eval(), class_names=["banana", "apple"])
    onnx_path = E.export_onnx(det, tmp / "tiny.onnx", check=False)
    return det, onnx_path, webpage.write_detector_page(onnx_path, tmp / "tiny.html")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """chelsea.png (upright) and coffee-exif6.jpg (stored rotated, EXIF orientation 6: upright 600x400)."""
    from PIL import Image

    from d2lssd.photos import load_photo

    tmp = tmp_path_factory.mktemp("photos")
    chelsea = tmp / "chelsea.png"
    Image.fromarray(load_photo("chelsea")).save(chelsea)
    coffee = tmp / "coffee-exif6.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    Image.fromarray(load_photo("coffee")).transpose(Image.Transpose.ROTATE_90).save(coffee, quality=92, exif=exif)
    with Image.open(coffee) as im:
        assert im.size == (400, 600)  # as stored: on its side
    return [chelsea, coffee]


def _wait(driver, condition, what, timeout=120.0):
    end = time.time() + timeout
    s = None
    while time.time() < end:
        s = driver.execute_script(
            "const p = window.d2lssdPage; return p ? {state: p.state, error: p.error, runs: p.runs,"
            " detections: window.d2lssdDetections, status: document.getElementById('status').textContent} : null")
        if s and s["state"] == "error":
            pytest.fail(f"the page failed: {s['error']}")
        if s and condition(s):
            return s
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout:.0f} s: {s and {k: s[k] for k in ('state', 'runs', 'status')}}")


def _set_slider(driver, id_, value):
    driver.execute_script(
        "const s = document.getElementById(arguments[0]); s.value = arguments[1];"
        "s.dispatchEvent(new Event('input', {bubbles: true}));", id_, f"{value:.2f}")


def _page_input(driver, name, h, w):
    b64 = driver.execute_script(
        "const a = window.d2lssdPage.inputs[arguments[0]]; let s = '';"
        "for (let i = 0; i < a.length; i += 8192) s += String.fromCharCode.apply(null, a.subarray(i, i + 8192));"
        "return btoa(s);", name)
    return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(3, h, w)


def _compare(det, photos, results, top_k):
    from d2lssd import export as E

    out = []
    for path, r in zip(photos, results):
        expected = det.detect(str(path), score_threshold=r["score_threshold"], nms_threshold=r["iou_threshold"],
                              top_k=top_k).numpy()
        got = np.asarray(r["detections"], dtype=np.float64).reshape(-1, 6)
        c = E.compare_detections([expected], [got], atol=SCORE_TOL, box_atol=PIXEL_TOL)
        assert c["ok"], f"{path.name} at {r['score_threshold']}, {r['iou_threshold']}: {c['summary']}"
        assert c["detections"] > 0, f"no detection on {path.name}: not a test"
        out.append({"photo": path.name, "thresholds": [r["score_threshold"], r["iou_threshold"]],
                    "detections": c["detections"], "classes": sorted({int(v) for v in got[:, 0]}),
                    "max_score_diff": c["max_score_diff"], "max_box_diff_px": c["max_box_diff"]})
    return out


def test_page_detects_like_detect(driver, page, photos):
    from selenium.webdriver.common.by import By
    from torchvision.transforms.v2 import functional as TF

    from d2lssd.photos import as_uint8_image

    det, onnx_path, html = page
    top_k = int(json.loads({p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}["top_k"]))
    driver.get_log("performance")
    driver.get(html.as_uri())
    s = _wait(driver, lambda s: s["state"] == "ready", "the page starting onnxruntime-web")
    driver.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in photos))  # two files at once
    s = _wait(driver, lambda s: len(s["detections"]) == 2, "detections on the two photos")
    results = s["detections"]
    assert [r["name"] for r in results] == [p.name for p in photos]
    h, w = det.input_size
    report = {"status": s["status"], "inputs": [], "settings": []}
    for path, r in zip(photos, results):
        upright = as_uint8_image(path)  # EXIF applied, as detect reads it
        assert (r["width"], r["height"]) == (upright.shape[2], upright.shape[1]), (path.name, r)
        ref = TF.resize(upright, [h, w], antialias=True).numpy()
        got = _page_input(driver, path.name, h, w)
        diff = int(np.abs(got.astype(int) - ref.astype(int)).max())
        report["inputs"].append({"photo": path.name, "max_pixel_diff": diff})
        assert diff == 0, f"{path.name}: the page's resized pixels differ from TF.resize's by up to {diff}"
    # at the sliders' starting values: the detector's own thresholds
    assert (results[0]["score_threshold"], results[0]["iou_threshold"]) == (
        det.postprocess.score_threshold, det.postprocess.nms_threshold)
    report["settings"] += _compare(det, photos, results, top_k)
    # both sliders moved: more detections, and the same as detect's again
    runs, before = s["runs"], sum(len(r["detections"]) for r in results)
    _set_slider(driver, "score", 0.4)
    _set_slider(driver, "iou", 0.3)
    s = _wait(driver, lambda s: s["runs"] > runs and s["detections"]
              and (s["detections"][0]["score_threshold"], s["detections"][0]["iou_threshold"]) == (0.4, 0.3),
              "detections after moving the sliders")
    assert sum(len(r["detections"]) for r in s["detections"]) != before
    report["settings"] += _compare(det, photos, s["detections"], top_k)
    # a photo dropped on the page (a drop event carrying the PNG's bytes) joins the others
    runs = s["runs"]
    driver.execute_script(
        "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));"
        "const dt = new DataTransfer(); dt.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));"
        "window.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
        base64.b64encode(photos[0].read_bytes()).decode())
    s = _wait(driver, lambda s: s["runs"] > runs and len(s["detections"]) == 3, "detections on a dropped photo")
    assert s["detections"][2]["name"] == "dropped.png"
    assert s["detections"][2]["detections"] == s["detections"][0]["detections"]  # the same photo as chelsea.png
    # nothing left the machine
    requests = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            if not url.startswith(("file:", "data:", "blob:", "about:", "chrome")):
                requests.append(url)
    assert not requests, f"requests to the network: {requests[:5]}"
    print(json.dumps(report))
