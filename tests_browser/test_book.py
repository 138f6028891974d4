"""Open every page of the built book in headless Chromium, offline, and check what a reader sees.

For each page: formulas are typeset (no raw TeX left in the text), every
image has loaded, every explorer shows its figure and changes it when any of
its sliders moves, no part of an exercise's solution (prose, code, output) is
visible before the reader opens it (and it is, after), nothing in the text
column runs past its right edge, no path of the build machine is printed, and
the page requests nothing from the network. See conftest.py for the options.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest



def _pages(config_book: Path) -> list[str]:
    skip = ("genindex.html", "search.html")
    return sorted(str(p.relative_to(config_book)) for p in config_book.rglob("*.html")
                  if not any(part.startswith("_") for part in p.relative_to(config_book).parts)
                  and p.name not in skip and p.name != "index.html")


def pytest_generate_tests(metafunc):
    if "page" in metafunc.fixturenames:
        book = Path(metafunc.config.getoption("--book")).resolve()
        pages = _pages(book) if (book / "index.html").exists() else []
        metafunc.parametrize("page", pages or [pytest.param(None, marks=pytest.mark.skip(
            reason=f"no built book at {book} (run jupyter-book build . first)"))])


# --------------------------------------------------------------------------- in the page

# Text outside code and typeset math that still looks like TeX.
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\(frac|tfrac|min|max|sqrt|mathcal|cdot|log|exp|sigma|"
                     r"epsilon|hat|sum|lvert|rvert|text|quad|dots|in|le|ge|times)\b")

# A printed float with 7 or more decimals (0.3333333432674408): round it in the chapter.
LONG_FLOAT = re.compile(r"(?<![\w.])\d+\.\d{7,}(?![\w.])")

JS_TEXT_OUTSIDE_CODE = r"""
const main = document.querySelector('main') || document.body;
const skip = 'pre, code, script, style, mjx-container, .highlight, .cell_output, .MathJax, textarea, .d2lssd-explorer';
const out = [];
const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const n = walker.currentNode;
  if (!n.textContent.trim()) continue;
  const el = n.parentElement;
  if (!el || el.closest(skip)) continue;
  out.push(n.textContent);
}
return out;
"""

JS_IMAGES = r"""
const main = document.querySelector('main') || document.body;
return Array.from(main.querySelectorAll('img')).map(img => ({
  src: img.currentSrc.slice(0, 80), ok: img.complete && img.naturalWidth > 0,
  explorer: !!img.closest('.d2lssd-explorer'), w: img.naturalWidth}));
"""

JS_OVERFLOW = r"""
const article = document.querySelector('article.bd-article') || document.querySelector('main');
const right = article.getBoundingClientRect().right + 1;
const bad = [];
const sel = 'p, li, dd, dt, h1, h2, h3, h4, blockquote, pre, .cell_output img, .d2lssd-explorer';
for (const el of article.querySelectorAll(sel)) {
  if (el.closest('.toggle-hidden, details:not([open])') || el.getClientRects().length === 0) continue;
  const r = el.getBoundingClientRect();
  const cut = el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible';
  if (r.right > right || cut) {
    bad.push(el.tagName.toLowerCase() + ': ' + (el.innerText || el.getAttribute('alt') || '').trim().slice(0, 70));
  }
}
if (document.documentElement.scrollWidth > window.innerWidth + 1) bad.push('page wider than the window');
return bad;
"""

JS_SOLUTIONS = r"""
const sols = Array.from(document.querySelectorAll('div.solution'));
const visible = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden'
                      && el.getBoundingClientRect().height > 0;
const parts = [];
const counts = [];
sols.forEach((sol, k) => {
  const body = Array.from(sol.querySelectorAll('.cell_output, .cell_input, p, li, pre, img, .math'))
    .filter(el => !el.closest('.admonition-title'));
  counts.push(body.length);
  body.filter(visible).forEach(el => parts.push(k + ': ' + el.className + ' ' + (el.innerText || '').trim().slice(0, 60)));
});
// outputs that are visible anywhere must not belong to a solution
return {count: sols.length, bodies: counts, visible: parts,
        outputs: sols.map(s => s.querySelectorAll('.cell_output').length)};
"""


def _wait(driver, condition_js: str, timeout: float = 20.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if driver.execute_script(condition_js):
            return True
        time.sleep(0.1)
    return False


def _network_requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            if not url.startswith(("file:", "data:", "blob:", "about:", "chrome")):
                urls.append(url)
    return urls


def _visit(driver, book: Path, page: str, results: dict) -> dict:
    if page in results:
        return results[page]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get_log("performance")  # drop the log of earlier pages
    driver.get((book / page).as_uri())
    _wait(driver, "return document.readyState === 'complete'")
    r: dict = {"page": page}
    # math: MathJax loaded from _static, typesetting finished
    r["mathjax_src"] = driver.execute_script(
        "const s = document.querySelector('script[src*=\"mathjax\"]'); return s ? s.src : null;")
    if r["mathjax_src"]:
        _wait(driver, "return !!(window.MathJax && MathJax.startup && MathJax.startup.document)")
        driver.execute_async_script(
            "const done = arguments[0];"
            "if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
            "  MathJax.startup.promise.then(() => done(true), () => done(false));"
            "else done(false);")
    r["math"] = driver.execute_script("return document.querySelectorAll('mjx-container').length")
    r["math_errors"] = driver.execute_script("return document.querySelectorAll('mjx-merror').length")
    texts = driver.execute_script(JS_TEXT_OUTSIDE_CODE)
    r["raw_tex"] = sorted({t.strip()[:80] for t in texts if RAW_TEX.search(t)})
    # images: make lazy ones load, then wait for all
    driver.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager');")
    _wait(driver, "return Array.from(document.images).every(i => i.complete)", timeout=30)
    images = driver.execute_script(JS_IMAGES)
    r["images"] = len(images)
    r["images_loaded"] = sum(i["ok"] for i in images)
    r["figures"] = sum(not i["explorer"] for i in images)
    r["broken_images"] = [i["src"] for i in images if not i["ok"]]
    # explorers: every slider changes the picture
    explorers = driver.find_elements(By.CSS_SELECTOR, ".d2lssd-explorer")
    r["explorers"] = len(explorers)
    r["explorer_sliders"] = []
    responding = 0
    for k, ex in enumerate(explorers):
        img = ex.find_element(By.TAG_NAME, "img")
        shown = driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
        sliders = ex.find_elements(By.CSS_SELECTOR, "input[type=range]")
        moved = 0
        for s in sliders:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", s)
            before = img.get_attribute("src")
            at_max = s.get_attribute("value") == s.get_attribute("max")
            s.send_keys(Keys.ARROW_LEFT if at_max else Keys.ARROW_RIGHT)  # as a reader would
            after = img.get_attribute("src")
            loaded = driver.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth > 0", img)
            moved += bool(after != before and loaded)
            s.send_keys(Keys.ARROW_RIGHT if at_max else Keys.ARROW_LEFT)  # back
        r["explorer_sliders"].append({"explorer": k, "sliders": len(sliders), "respond": moved,
                                      "shown_at_load": bool(shown)})
        responding += bool(shown and sliders and moved == len(sliders))
    r["explorers_responding"] = responding
    # solutions: nothing of them visible until opened
    driver.execute_script("window.scrollTo(0, 0)")
    sol = driver.execute_script(JS_SOLUTIONS)
    r["solutions"] = sol["count"]
    r["solution_outputs"] = sum(sol["outputs"])
    r["visible_solution_parts"] = sol["visible"]
    r["solutions_opening"] = 0
    for el in driver.find_elements(By.CSS_SELECTOR, "div.solution"):
        button = el.find_elements(By.CSS_SELECTOR, "button.toggle-button, .admonition-title")
        if not button:
            continue
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button[0])
        driver.execute_script("arguments[0].click()", button[0])
        time.sleep(0.3)
        opened = driver.execute_script(
            "return Array.from(arguments[0].querySelectorAll('p, .cell_input, .cell_output'))"
            ".some(e => !e.closest('.admonition-title') && e.getClientRects().length > 0"
            " && e.getBoundingClientRect().height > 0)", el)
        r["solutions_opening"] += bool(opened)
        driver.execute_script("arguments[0].click()", button[0])  # close again
    time.sleep(0.3)
    # layout, paths, network
    r["overflow"] = driver.execute_script(JS_OVERFLOW)
    text = driver.execute_script("return (document.querySelector('main') || document.body).innerText")
    home = os.path.expanduser("~")
    r["machine_paths"] = sorted({m.group(0)[:80] for m in re.finditer(
        r"(?:%s|/home/\w+|/tmp/|/root/|/Users/\w+)[^\s'\"]*" % re.escape(home), text)}) if home not in ("/", "") else []
    outputs = driver.execute_script(
        "return Array.from(document.querySelectorAll('.cell_output')).map(e => e.textContent)")
    r["long_floats"] = sorted({m.group(0) for t in outputs for m in LONG_FLOAT.finditer(t)})
    r["network"] = _network_requests(driver)
    results[page] = r
    return r


# --------------------------------------------------------------------------- the checks

@pytest.fixture
def seen(driver, page, book, results):
    return _visit(driver, book, page, results)


def test_no_raw_tex_and_math_typeset_from_static(seen):
    assert not seen["raw_tex"], f"raw TeX in the text: {seen['raw_tex'][:5]}"
    assert seen["math_errors"] == 0
    if seen["mathjax_src"]:
        assert seen["mathjax_src"].startswith("file:") and "/_static/" in seen["mathjax_src"], (
            f"MathJax not served from _static: {seen['mathjax_src']}")


def test_every_image_loaded(seen):
    assert not seen["broken_images"], f"{len(seen['broken_images'])} images did not load: {seen['broken_images'][:3]}"


def test_every_explorer_responds(seen):
    for ex in seen["explorer_sliders"]:
        assert ex["shown_at_load"], f"explorer {ex['explorer']} shows no figure at load"
        assert ex["sliders"] > 0 and ex["respond"] == ex["sliders"], (
            f"explorer {ex['explorer']}: {ex['respond']} of {ex['sliders']} sliders change the figure")


def test_no_visible_solution(seen):
    assert not seen["visible_solution_parts"], (
        f"solution parts visible before opening: {seen['visible_solution_parts'][:4]}")
    assert seen["solutions_opening"] == seen["solutions"], (
        f"only {seen['solutions_opening']} of {seen['solutions']} solutions show their content when opened")


def test_no_horizontal_overflow(seen):
    assert not seen["overflow"], f"{len(seen['overflow'])} elements run past the right edge: {seen['overflow'][:4]}"


def test_no_unrounded_floats_in_outputs(seen):
    assert not seen["long_floats"], f"unrounded floats printed: {seen['long_floats'][:5]}"


def test_no_build_machine_paths(seen):
    assert not seen["machine_paths"], f"paths of the build machine on the page: {seen['machine_paths'][:3]}"


def test_nothing_requested_from_the_network(seen):
    assert not seen["network"], f"requests to the network: {seen['network'][:5]}"
