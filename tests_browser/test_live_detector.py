"""The live detector of the built book (d2lssd.live.live_detector) in headless Chromium, offline.

On every page that has one (the losses chapter must): it fits the text column, onnxruntime-web starts
from the page opened from disk; its detections on the first validation image
equal the Python pipeline's (``d2lssd.predict``, embedded in the page when
the chapter ran: same classes, boxes within a pixel, scores within 1e-3), at
the starting thresholds and at a second setting of the sliders; moving a
slider with the keyboard redraws; an image picked with the file input is
detected (the first validation image saved as a PNG, so its detections must
equal the embedded ones again); and no request leaves the machine.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

PIXEL_TOL = 1.0
SCORE_TOL = 1e-3


def _detector_pages(book: Path) -> list[str]:
    if not (book / "index.html").exists():
        return []
    return sorted(str(p.relative_to(book)) for p in book.rglob("*.html")
                  if not any(part.startswith("_") for part in p.relative_to(book).parts)
                  and "d2lssd-live-detector" in p.read_text(encoding="utf-8", errors="replace"))


def pytest_generate_tests(metafunc):
    if "live_page" in metafunc.fixturenames:
        book = Path(metafunc.config.getoption("--book")).resolve()
        pages = _detector_pages(book)
        metafunc.parametrize("live_page", pages or [pytest.param(None, marks=pytest.mark.skip(
            reason=f"no built book with a live detector at {book}"))])


def test_losses_chapter_has_a_live_detector(book):
    if not (book / "index.html").exists():
        pytest.skip(f"no built book at {book}")
    assert "notebooks/losses.html" in _detector_pages(book)


def _state(driver):
    return driver.execute_script(
        "const r = document.querySelector('.d2lssd-live-detector');"
        "return r ? {state: r.dataset.state || null, result: r.d2lssdResult || null,"
        " status: (r.querySelector('.d2lssd-live-status') || {}).textContent} : null;")


def _wait_result(driver, ok, timeout=120.0):
    end = time.time() + timeout
    s = None
    while time.time() < end:
        s = _state(driver)
        if s and s["state"] == "error":
            pytest.fail(f"the live detector failed: {s['status']}")
        if s and s["result"] and ok(s):
            return s
        time.sleep(0.2)
    pytest.fail(f"the live detector did not answer in {timeout:.0f} s: {s}")


def _same_detections(expected, got):
    """Greedy match, tie order aside: same class, score within SCORE_TOL, box within PIXEL_TOL pixels."""
    assert len(got) == len(expected), f"{len(got)} detections in the page, {len(expected)} in Python"
    used = [False] * len(got)
    worst = [0.0, 0.0]
    for e in expected:
        for j, g in enumerate(got):
            if (not used[j] and g[0] == e[0] and abs(g[1] - e[1]) <= SCORE_TOL
                    and all(abs(a - b) <= PIXEL_TOL for a, b in zip(g[2:], e[2:]))):
                used[j] = True
                worst = [max(worst[0], abs(g[1] - e[1])), max(worst[1], *(abs(a - b) for a, b in zip(g[2:], e[2:])))]
                break
        else:
            pytest.fail(f"Python's detection {e} is not in the page's {got[:5]}")
    return worst


def _set_slider(driver, kind, value):
    driver.execute_script(
        "const s = document.querySelector('.d2lssd-live-detector input[data-threshold=' + arguments[0] + ']');"
        "s.value = arguments[1]; s.dispatchEvent(new Event('input', {bubbles: true}));", kind, str(value))


def test_live_detector(driver, book, live_page, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get_log("performance")
    driver.get((book / live_page).as_uri())
    data = json.loads(driver.execute_script(
        "return document.querySelector('.d2lssd-live-detector script.d2lssd-live-data').textContent"))
    first = data["expected"][0]
    s = _wait_result(driver, lambda s: s["state"] == "ready")
    r = s["result"]
    assert (r["score_threshold"], r["iou_threshold"]) == (first["score_threshold"], first["iou_threshold"])
    assert r["detections"], "no detection on the first validation image"
    report = {"page": live_page, "status": s["status"], "settings": []}
    # it fits the text column: no horizontal scrolling of the output that holds it
    assert driver.execute_script(
        "const r = document.querySelector('.d2lssd-live-detector');"
        "for (let e = r; e && e !== document.body; e = e.parentElement) {"
        "  if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible') return false; }"
        "return true;"), "the live detector runs past the text column (a horizontal scroll bar)"
    worst = _same_detections(first["detections"], r["detections"])
    report["settings"].append({"thresholds": [r["score_threshold"], r["iou_threshold"]],
                               "detections": len(r["detections"]), "max_score_diff": worst[0],
                               "max_box_diff_px": worst[1]})

    # the sliders: a second setting equals Python's too, and differs from the first
    counts = {len(first["detections"])}
    for setting in data["expected"][1:]:
        runs = r["runs"]
        _set_slider(driver, "score", setting["score_threshold"])
        _set_slider(driver, "iou", setting["iou_threshold"])
        s = _wait_result(driver, lambda s: s["result"]["runs"] > runs and (
            s["result"]["score_threshold"], s["result"]["iou_threshold"]) == (
            setting["score_threshold"], setting["iou_threshold"]))
        worst = _same_detections(setting["detections"], s["result"]["detections"])
        report["settings"].append({"thresholds": [setting["score_threshold"], setting["iou_threshold"]],
                                   "detections": len(s["result"]["detections"]), "max_score_diff": worst[0],
                                   "max_box_diff_px": worst[1]})
        counts.add(len(setting["detections"]))
        r = s["result"]
    assert len(counts) > 1, "the sliders' settings give the same number of detections: not a test of them"

    # a reader's keyboard on the score slider redraws with the new threshold
    slider = driver.find_element(By.CSS_SELECTOR, ".d2lssd-live-detector input[data-threshold=score]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
    before, runs = r["score_threshold"], r["runs"]
    slider.send_keys(Keys.ARROW_RIGHT)
    s = _wait_result(driver, lambda s: s["result"]["runs"] > runs and s["result"]["score_threshold"] != before)
    assert abs(s["result"]["score_threshold"] - before - 0.05) < 1e-6
    assert all(d[1] >= s["result"]["score_threshold"] - 1e-6 for d in s["result"]["detections"])

    # an image the reader picks: the first validation image as a PNG file, detected like the embedded one
    png = tmp_path / "picked.png"
    png.write_bytes(base64.b64decode(data["images"][0].split(",", 1)[1]))
    _set_slider(driver, "score", first["score_threshold"])
    _set_slider(driver, "iou", first["iou_threshold"])
    runs = _wait_result(driver, lambda s: s["result"]["score_threshold"] == first["score_threshold"]
                        and s["result"]["iou_threshold"] == first["iou_threshold"])["result"]["runs"]
    driver.find_element(By.CSS_SELECTOR, ".d2lssd-live-detector input[type=file]").send_keys(str(png))
    s = _wait_result(driver, lambda s: s["result"]["image"] == "picked.png" and s["result"]["runs"] > runs)
    _same_detections(first["detections"], s["result"]["detections"])

    # nothing left the machine
    requests = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            if not url.startswith(("file:", "data:", "blob:", "about:", "chrome")):
                requests.append(url)
    assert not requests, f"requests to the network: {requests[:5]}"
    report["network"] = requests
    out = book.parent / "live-detector-report.json"
    try:
        out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    except OSError:
        pass
    print(json.dumps(report))
