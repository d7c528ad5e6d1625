"""The leaderboard's static site, opened in a real headless Chromium (Debian's chromium + chromium-driver)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from test_leaderboard import _row

from ddbench.cli import main
from ddbench.data import load_dataset
from ddbench.distill.registry import create_method
from ddbench.kinds import load_protocol
from ddbench.store.results import ResultStore
from ddbench.sweep.evaluate import EvalOptions, distill_cached

ARTEFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"  # screenshots (git-ignored)
EVIL = "<script>window.injected=1</script><b>x</b>"


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium and chromium-driver (.ci/run does)")
        pytest.skip("chromium / chromedriver not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                f"--user-data-dir={tempfile.mkdtemp(prefix='ddbench-chromium-')}", "--window-size=1280,2400"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(options=opts, service=Service(driver))
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A store with MNIST IPC 1/10/50 rows (one with a real set on disk), a cross-arch card and hostile names."""
    root = tmp_path_factory.mktemp("site")
    opts = EvalOptions(device=torch.device("cpu"), store=ResultStore(root / "lb"), progress=False, cache_dir=root / "cache")
    dset = distill_cached(create_method("random"), load_protocol("digits-quick"), load_dataset("digits"), 0, opts)
    store = ResultStore(root / "lb")
    store.append([_row("random", s, 60.0 + 10 * i + s, protocol=f"mnist-ipc{ipc}", set_id=dset.set_id, distill_time_s=0.2,
                       peak_mem_mb=900.0) for i, ipc in enumerate((1, 10, 50)) for s in (0, 1)])
    store.append([_row("herding", s, 70.0 + 10 * i + s, protocol=f"mnist-ipc{ipc}") for i, ipc in enumerate((1, 10)) for s in (0, 1)])
    store.append([_row(EVIL, 0, 50.0, protocol="mnist-ipc10", run_id=EVIL)])
    xarch = load_protocol("cifar10-ipc10-xarch")
    store.append([_row("mtt", s, 60.0 - 5 * j + s, protocol=xarch.id, arch=a) for j, a in enumerate(xarch.archs) for s in (0, 1)])
    code = main(["leaderboard", "--results", str(root / "lb"), "--html", str(root / "html"), "--sets", str(root / "cache")])
    assert code == 0
    return root / "html"


def _open(browser, page: Path) -> dict:
    browser.get(page.as_uri())
    ARTEFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTEFACTS / f"site-{page.stem}.png"))
    return browser.execute_script("""return {
        tables: [...document.querySelectorAll('table')].map(t => t.tBodies[0].rows.length),
        images: [...document.images].map(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0),
        scripts: document.querySelectorAll('script').length, injected: window.injected === 1,
        text: document.body.innerText};""")


def test_every_page_renders_its_tables_plots_and_images_without_console_errors(browser, site):
    pages = sorted(site.glob("*.html"))
    assert [p.name for p in pages] == ["cifar10.html", "index.html", "mnist.html"]
    seen = {}
    for page in pages:
        seen[page.stem] = _open(browser, page)
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], (page.name, errors)
        assert all(seen[page.stem]["images"]), page.name  # every plot and image grid decoded
        assert all(n > 0 for n in seen[page.stem]["tables"]), page.name
    mnist, cifar = seen["mnist"], seen["cifar10"]
    assert len(mnist["tables"]) == 1 + 3 and len(mnist["images"]) == 1 + 3 + 3  # method × IPC + a table per card; plots
    assert "method × images per class" in mnist["text"] and "partial, n=2" in mnist["text"]  # 2 of the card's 5 seeds
    assert "make cost (device-s)" in mnist["text"] and "storage" in mnist["text"]
    assert "accuracy against IPC" not in mnist["text"]  # plots are images, not text
    assert len(cifar["images"]) == 1 and "mean over archs" in cifar["text"]  # the heat-map; the matrix
    assert "64.3" in cifar["text"] and "Table 3" in cifar["text"]  # MTT's published cross-arch row and its source
    assert "mnist" in seen["index"]["text"] and seen["index"]["tables"]
    assert (ARTEFACTS / "site-mnist.png").stat().st_size > 10_000


def test_names_are_escaped_in_html(browser, site):
    state = _open(browser, site / "mnist.html")
    assert not state["injected"] and state["scripts"] == 1  # only the page's own sorting script
    assert EVIL in state["text"]  # shown as text
    assert "<b>x</b>" not in (site / "mnist.html").read_text()


def test_tables_sort_when_a_header_is_clicked(browser, site):
    _open(browser, site / "mnist.html")
    table = browser.find_elements("css selector", "table")[2]  # after method × IPC and mnist-ipc1: mnist-ipc10
    col = [th.text for th in table.find_elements("css selector", "th")].index("accuracy")

    def accuracies():
        return [float(r.find_elements("css selector", "td")[col].text.split(" ")[0])
                for r in table.find_elements("css selector", "tbody tr")]

    assert accuracies() == sorted(accuracies(), reverse=True)  # ranked
    table.find_elements("css selector", "th")[col].click()
    assert accuracies() == sorted(accuracies())
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


@pytest.mark.parametrize("width", [420, 1400])
def test_pages_fit_the_screen_at_phone_and_desktop_width(browser, site, width):
    """No page-level horizontal scroll at 420 px or 1400 px (a wide table scrolls inside its own container); every
    card has an anchor link; every image says what it shows; methods link to their paper and code."""
    browser.set_window_size(width, 1600)
    try:
        for page in sorted(site.glob("*.html")):
            browser.get(page.as_uri())
            ARTEFACTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(ARTEFACTS / f"site-{page.stem}-{width}px.png"))
            state = browser.execute_script("""return {
                page: document.documentElement.scrollWidth, view: window.innerWidth,
                viewport: !!document.querySelector('meta[name=viewport]'),
                wideTables: [...document.querySelectorAll('table')].filter(t => t.scrollWidth > window.innerWidth)
                            .map(t => getComputedStyle(t.parentElement).overflowX),
                anchors: [...document.querySelectorAll('h2[id]')].map(h => !!h.querySelector(`a[href="#${h.id}"]`)),
                alts: [...document.images].map(i => i.alt),
                links: [...document.querySelectorAll('a')].map(a => a.href)};""")
            assert state["page"] <= state["view"], (page.name, width, state["page"], state["view"])
            assert state["viewport"] and all(o == "auto" for o in state["wideTables"]), page.name
            assert state["anchors"] and all(state["anchors"]), page.name
            assert all(len(alt) > 30 and alt != "plot" for alt in state["alts"]), state["alts"]
            if page.stem == "cifar10":
                assert "https://arxiv.org/abs/2203.11932" in state["links"]  # MTT's paper
                assert "https://github.com/GeorgeCazenavette/mtt-distillation" in state["links"]
    finally:
        browser.set_window_size(1280, 2400)
