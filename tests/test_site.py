"""The book build, and the built site opened in a real (headless) browser.

The build runs once per test run: `jupyter-book build . --all -W --keep-going` (a cell error or any
Sphinx warning fails it). Notebooks that nbval already executed earlier in this run come from the
jupyter-cache (see conftest.py), so each chapter executes once per run.
"""
from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from course_utils.authoring import book_notebooks, repository_url

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
)

pytestmark = pytest.mark.slow


def _jupyter_book() -> str:
    return str(Path(sys.executable).with_name("jupyter-book"))


@pytest.fixture(scope="session")
def built_site():
    shutil.rmtree(HTML, ignore_errors=True)
    proc = subprocess.run(
        [_jupyter_book(), "build", str(ROOT), "--all", "-W", "--keep-going"],
        cwd=ROOT, capture_output=True, text=True,
    )
    log = proc.stdout + proc.stderr
    (ROOT / "_build").mkdir(exist_ok=True)
    (ROOT / "_build" / "book-build.log").write_text(log)
    assert proc.returncode == 0, f"jupyter-book build failed (log: _build/book-build.log):\n{log[-6000:]}"
    return log


def chapter_pages() -> list[str]:
    return [f"book/{nb.stem}.html" for nb in book_notebooks()]


def test_book_builds_every_chapter(built_site):
    assert (HTML / "index.html").exists()
    for page in chapter_pages() + ["book/intro.html", "book/references.html"]:
        assert (HTML / page).exists(), f"{page} missing from the site"


def test_each_notebook_executed_once(built_site, request):
    """When nbval executed the chapters earlier in this run, the build takes them from the cache."""
    nbval_ran = any(type(item).__name__ == "IPyNbCell" for item in request.session.items)
    if not nbval_ran:
        pytest.skip("nbval did not run in this session, so the build executed the chapters itself")
    executed = [line for line in built_site.splitlines() if "Executing notebook" in line]
    cached = [line for line in built_site.splitlines() if "Using cached notebook" in line]
    assert not executed, f"the book build executed notebooks a second time: {executed}"
    assert len(cached) == len(book_notebooks())


def test_bibliography_lists_the_lecture_papers(built_site):
    html = (HTML / "book" / "references.html").read_text()
    for author, year in [
        ("Vaswani", 2017), ("Devlin", 2019), ("Dosovitskiy", 2021), ("Girshick", 2014),
        ("Ren", 2015), ("Redmon", 2016), ("Lin", 2017), ("Goodfellow", 2014), ("Isola", 2017),
        ("Ronneberger", 2015), ("Kingma", 2014), ("Mikolov", 2013), ("Radford", 2021),
        ("Ho", 2020), ("Rombach", 2022), ("Ramesh", 2022),
    ]:
        assert author in html and str(year) in html, f"{author} {year} missing from the bibliography"


# --- the browser -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def site_url(built_site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("the site test needs Debian's chromium and chromium-driver (`make browser` installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1280,2000")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


LOADED_IMAGES = """
return Array.from(document.querySelectorAll('.cell_output img, .output img'))
    .filter(img => img.complete && img.naturalWidth > 0).length;
"""


def _open(browser, url, expected_path=None):
    """Load ``url`` (following a redirect to ``expected_path``) and return the page's text."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 30).until(
        lambda b: (expected_path is None or b.current_url.split("#")[0].endswith(expected_path))
        and b.execute_script("return document.readyState === 'complete' && document.body !== null")
    )
    return browser.execute_script("return document.body.innerText")


def test_intro_page_renders(browser, site_url):
    text = _open(browser, f"{site_url}/index.html", expected_path="book/intro.html")
    assert "Advanced Deep Learning Architectures" in browser.title
    for phrase in ("Three ways to use the course", "Two profiles", "Chapter map", "Prerequisites"):
        assert phrase in text
    links = browser.execute_script("return Array.from(document.querySelectorAll('a')).map(a => a.href)")
    for page in chapter_pages():
        assert any(link.endswith(page) for link in links), f"the intro does not link {page}"


@pytest.mark.parametrize("notebook", [nb.stem for nb in book_notebooks()])
def test_chapter_page_renders(browser, site_url, notebook):
    text = _open(browser, f"{site_url}/book/{notebook}.html")
    assert "Traceback" not in text and "Error" not in browser.title
    assert "profile:" in text, "the banner (profile, device, versions) is not on the page"
    assert "wall time:" in text, "the wall-time report is not on the page"
    assert browser.execute_script(LOADED_IMAGES) >= 3, "fewer than 3 rendered figures"
    dropdowns = browser.execute_script(
        "return document.querySelectorAll('.solution.dropdown, details.solution, div.solution').length"
    )
    assert dropdowns >= 1, "no exercise solution dropdowns on the page"
    url, branch = repository_url()
    colab = browser.execute_script(
        "return Array.from(document.querySelectorAll('a')).map(a => a.href)"
        ".filter(h => h.includes('colab.research.google.com'))"
    )
    assert colab, "no Colab launch link"
    owner_repo = url.split("github.com/")[1]
    expected = f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/student/{notebook}.ipynb"
    assert expected in colab, f"Colab link {colab} does not open the student notebook ({expected})"
