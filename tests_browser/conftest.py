"""Browser test of the built book: options, the browser, and the summary table.

    .venv/bin/python -m pytest tests_browser/ [--book _build/html] [--report FILE]

Needs Chromium and its driver from the system packages (``apt-get install
chromium chromium-driver``) and selenium (requirements.txt). The network is
cut for the browser; the pages are opened from disk (``file://``). Without a
built book every test is skipped (build it first:
``jupyter-book build . -W --keep-going``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS: dict[str, dict] = {}  # page -> what the test saw, for the summary table and the report


def pytest_addoption(parser):
    parser.addoption("--book", default=str(ROOT / "_build" / "html"),
                     help="the built HTML book (default: _build/html)")
    parser.addoption("--report", default=None,
                     help="write what each page showed as JSON to this file "
                          "(default: <book>/../browser-report.json)")


def book_dir(config) -> Path:
    return Path(config.getoption("--book")).resolve()


def _find(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def book(pytestconfig) -> Path:
    return book_dir(pytestconfig)


@pytest.fixture(scope="session")
def results() -> dict:
    return RESULTS


@pytest.fixture(scope="session")
def driver(pytestconfig):
    selenium = pytest.importorskip("selenium")  # noqa: F841
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = _find("chromium", "chromium-browser", "google-chrome")
    chromedriver = _find("chromedriver")
    if not (chromium and chromedriver):
        pytest.fail("Chromium and chromedriver are needed: apt-get install chromium chromium-driver")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not try to download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--hide-scrollbars",
                # no network: every host name fails to resolve, and no proxy can help
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
                "--proxy-server=http://127.0.0.1:9", "--no-proxy-server-for-local",
                "--allow-file-access-from-files"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    drv = webdriver.Chrome(service=Service(chromedriver), options=options)
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(60)
    drv.execute_cdp_cmd("Network.enable", {})
    drv.execute_cdp_cmd("Network.emulateNetworkConditions",
                        {"offline": True, "latency": 0, "downloadThroughput": -1,
                         "uploadThroughput": -1})
    yield drv
    drv.quit()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("what each page shows (offline, headless Chromium)")
    head = (f"{'page':28} {'images':>7} {'loaded':>6} {'math':>5} {'raw TeX':>7} {'explorers':>9} "
            f"{'respond':>7} {'solutions':>9} {'visible':>7} {'overflow':>8} {'requests':>8}")
    tr.write_line(head)
    for page, r in sorted(RESULTS.items()):
        tr.write_line(
            f"{page:28} {r.get('images', 0):7d} {r.get('images_loaded', 0):6d} {r.get('math', 0):5d} "
            f"{len(r.get('raw_tex', [])):7d} {r.get('explorers', 0):9d} "
            f"{r.get('explorers_responding', 0):7d} {r.get('solutions', 0):9d} "
            f"{len(r.get('visible_solution_parts', [])):7d} {len(r.get('overflow', [])):8d} "
            f"{len(r.get('network', [])):8d}")
    report = config.getoption("--report") or str(book_dir(config).parent / "browser-report.json")
    try:
        Path(report).write_text(json.dumps(RESULTS, indent=1, sort_keys=True), encoding="utf-8")
        tr.write_line(f"report: {report}")
    except OSError as e:
        tr.write_line(f"could not write the report {report}: {e}")
