"""The book build, and the built site opened in a real (headless) browser.

The build runs once per test run: `jupyter-book build . --all -W --keep-going` (a cell error or any
Sphinx warning fails it). Notebooks that nbval already executed earlier in this run come from the
jupyter-cache (see conftest.py), so each chapter executes once per run.

`COURSE_SITE_HTML=/path/to/_build/html` tests an already built site instead (no build): the
browser checks of a quick, non-executing build while editing the site's extensions.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from course_utils.authoring import all_exercises, book_notebooks, repository_url

ROOT = Path(__file__).resolve().parent.parent
PREBUILT = os.environ.get("COURSE_SITE_HTML", "").strip()
HTML = Path(PREBUILT) if PREBUILT else ROOT / "_build" / "html"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
)

pytestmark = pytest.mark.slow


def _jupyter_book() -> str:
    return str(Path(sys.executable).with_name("jupyter-book"))


@pytest.fixture(scope="session")
def built_site():
    if PREBUILT:
        assert (HTML / "index.html").exists(), f"COURSE_SITE_HTML={PREBUILT} holds no built site"
        return ""
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
    if PREBUILT:
        pytest.skip("COURSE_SITE_HTML: a site built elsewhere")
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
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
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
    # every request the page makes (the no-other-host test) and the console (errors)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(180)  # a loaded CI machine can take a minute to render a chapter
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
    WebDriverWait(browser, 120).until(
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


# --- what a reader needs from every page (issue: navigation, offline, figures, exercises) ---------
BACK_MATTER = ["book/intro.html", "book/exercises.html", "book/instructor.html", "book/references.html"]
PHONE, DESKTOP = (390, 844), (1366, 900)
# A build-machine path in an output: the repository, a home or temp directory, a virtualenv.
MACHINE_PATH = re.compile(r"(/work/|/home/\\w|/root/|/tmp/|/private/var/|[A-Z]:\\\\Users|site-packages|/\\.venv|"
                          + re.escape(str(ROOT)) + ")")


def all_pages() -> list[str]:
    return ["book/intro.html"] + chapter_pages() + BACK_MATTER[1:]


class _Window:
    """Resize the shared browser for one test, then restore the default size."""

    def __init__(self, browser, size):
        self.browser, self.size = browser, size

    def __enter__(self):
        self.browser.set_window_size(*self.size)
        return self.browser

    def __exit__(self, *exc):
        self.browser.set_window_size(1280, 2000)


def _visible(browser, selector: str) -> list:
    return [e for e in browser.find_elements("css selector", selector) if e.is_displayed()]


def _drawer_open(browser, which: str) -> bool:
    """Is the primary (chapters) or secondary (contents) drawer showing links inside the window?"""
    return browser.execute_script(
        """const which = arguments[0];
        const boxes = Array.from(document.querySelectorAll(
            `#pst-${which}-sidebar-modal[open], #pst-${which}-sidebar`));
        return boxes.some(b => {
            const r = b.getBoundingClientRect();
            return r.width > 100 && r.right > 50 && r.left < window.innerWidth - 50
                && !b.classList.contains('pst-sidebar-hidden') && b.querySelector('a') !== null;
        });""", which)


@pytest.mark.parametrize("which", ["primary", "secondary"])
def test_drawers_open_and_close_on_a_phone(browser, site_url, which):
    with _Window(browser, PHONE):
        _open(browser, f"{site_url}/book/01_attention.html")
        assert not _drawer_open(browser, which), f"the {which} drawer is open before any click at 390 px"
        buttons = _visible(browser, f".{which}-toggle")
        assert buttons, f"no visible {which} toggle button at 390 px"
        buttons[0].click()
        WebDriverWait(browser, 5).until(lambda b: _drawer_open(b, which),
                                        message=f"the {which} button does not open its drawer at 390 px")
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        ActionChains(browser).send_keys(Keys.ESCAPE).perform()
        WebDriverWait(browser, 5).until(lambda b: not _drawer_open(b, which),
                                        message=f"the {which} drawer does not close (Escape) at 390 px")


def test_sidebar_toggle_works_on_a_laptop(browser, site_url):
    with _Window(browser, DESKTOP):
        _open(browser, f"{site_url}/book/01_attention.html")
        assert _drawer_open(browser, "primary"), "the chapter list is not shown at 1366 px"
        _visible(browser, ".primary-toggle")[0].click()
        WebDriverWait(browser, 5).until(lambda b: not _drawer_open(b, "primary"),
                                        message="the ☰ button does not hide the chapter list at 1366 px")
        _visible(browser, ".primary-toggle")[0].click()
        WebDriverWait(browser, 5).until(lambda b: _drawer_open(b, "primary"),
                                        message="the ☰ button does not show the chapter list again")
        bar = browser.execute_script(
            "const h = document.querySelector('#pst-header');"
            "return h ? [h.getBoundingClientRect().height, h.querySelectorAll('button, input').length] : [0, 0]")
        assert bar[0] < 8 and bar[1] == 0, f"the theme's stray top bar is back (height, controls): {bar}"


def WebDriverWait(browser, timeout, message=""):  # noqa: N802 - selenium's name, with a message
    from selenium.webdriver.support.ui import WebDriverWait as _Wait

    class _Until:
        def until(self, condition, message=message):
            return _Wait(browser, timeout).until(condition, message)

    return _Until()


@pytest.mark.parametrize("page", all_pages())
def test_page_fits_a_phone_and_stays_offline(browser, site_url, page):
    """No sideways scrolling of the page at 390 px; no request to another host; no console error."""
    with _Window(browser, PHONE):
        browser.get_log("performance")  # drop what earlier pages logged
        browser.get_log("browser")
        _open(browser, f"{site_url}/{page}")
        browser.set_script_timeout(60)
        browser.execute_async_script(  # MathJax done: the fonts it loads are requests of the page too
            "const done = arguments[arguments.length - 1];"
            "if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
            " { MathJax.startup.promise.then(() => done(true), () => done(false)); } else { done(true); }")
        overflow = browser.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        wide = browser.execute_script(
            """return Array.from(document.querySelectorAll('.bd-article *'))
                .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                .filter(e => !e.closest('pre, .highlight, table, mjx-container, .pst-scrollable-table-container'))
                .slice(0, 3).map(e => e.tagName + '.' + e.className + ': ' + (e.innerText || '').slice(0, 60))""")
        assert overflow[0] <= overflow[1] + 1, f"{page} scrolls sideways at 390 px ({overflow}): {wide}"
        requests = set()
        for entry in browser.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                requests.add(message["params"]["request"]["url"])
        foreign = sorted(u for u in requests if not u.startswith((site_url, "data:", "blob:", "about:")))
        assert not foreign, f"{page} requests other hosts: {foreign[:5]}"
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, f"{page}: console errors: {errors[:3]}"


def test_maths_renders_from_the_site(browser, site_url):
    _open(browser, f"{site_url}/book/01_attention.html")
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.querySelectorAll('mjx-container').length > 0"),
                                     message="MathJax typeset no expression on chapter 1")
    src = browser.execute_script("return Array.from(document.scripts).map(s => s.src).filter(s => /mathjax/i.test(s))")
    assert src and all(s.startswith(site_url) for s in src), f"MathJax is not served by the site: {src}"


@pytest.mark.parametrize("notebook", [nb.stem for nb in book_notebooks()])
def test_chapter_page_for_a_reader(browser, site_url, notebook):
    """Badges, banner, figures with alt text, no stderr or machine path, exercises with starter code."""
    _open(browser, f"{site_url}/book/{notebook}.html")
    page = f"book/{notebook}.html"
    # the badge row right under the title: Colab, the student notebook, measured time, full budget
    badges = browser.execute_script(
        "const r = document.querySelector('.bd-article section > h1 + .course-badges');"
        "return r ? Array.from(r.querySelectorAll('.course-badge')).map(b => [b.innerText, b.href || '']) : null")
    assert badges, f"{page}: no badge row under the title"
    texts = " | ".join(t for t, _ in badges)
    for phrase in ("Open in Colab", "Download the student notebook", "measured:", "full profile"):
        assert phrase in texts, f"{page}: the badge row lacks {phrase!r}: {texts}"
    assert re.search(r"measured: \d+(\.\d)? (s|min)", texts), f"{page}: no measured time in the badges: {texts}"
    url, branch = repository_url()
    colab = next(h for t, h in badges if "Colab" in t)
    match = re.fullmatch(rf"https://colab\.research\.google\.com/github/{re.escape(url.split('github.com/')[1])}"
                         rf"/blob/{re.escape(branch)}/(student/[\w.-]+\.ipynb)", colab)
    assert match and match[1] == f"student/{notebook}.ipynb", f"{page}: Colab badge {colab}"
    assert (ROOT / match[1]).exists(), f"{page}: the Colab badge opens {match[1]}, which is not in the repository"
    download = next(h for t, h in badges if "Download" in t)
    assert download.startswith(site_url) and download.endswith(f"/student/{notebook}.ipynb"), download
    served = json.loads((HTML / "student" / f"{notebook}.ipynb").read_text(encoding="utf-8"))
    assert served == json.loads((ROOT / "student" / f"{notebook}.ipynb").read_text(encoding="utf-8")), \
        f"{page}: the downloadable notebook differs from student/{notebook}.ipynb"
    menu = browser.execute_script("return Array.from(document.querySelectorAll('.dropdown-download-buttons a'))"
                                  ".map(a => a.href).filter(h => h.endsWith('.ipynb'))")
    assert all("/student/" in h for h in menu), f"{page}: the download menu serves the book notebook: {menu}"
    # the run banner: one styled line, under the badges, near the top
    top = browser.execute_script(
        "const b = document.querySelector('.bd-article .course-banner');"
        "const h = document.querySelector('.bd-article h1');"
        "return b ? [b.innerText, b.getBoundingClientRect().top - h.getBoundingClientRect().top] : null")
    assert top and "profile:" in top[0], f"{page}: the run banner is not shown as one styled line"
    assert top[1] < 300, f"{page}: the run banner is {top[1]:.0f} px below the title"
    # outputs: no stderr, no build-machine path, no bare number after the wall-time line
    stderr = browser.execute_script(
        "return Array.from(document.querySelectorAll('.cell_output .stderr, .cell_output .output.stderr'))"
        ".map(e => e.innerText.slice(0, 120))")
    assert not stderr, f"{page} shows stderr output: {stderr[:3]}"
    outputs = browser.execute_script(
        "return Array.from(document.querySelectorAll('.cell_output')).map(e => e.innerText)")
    paths = [m.group(0) for text in outputs for m in [MACHINE_PATH.search(text)] if m]
    assert not paths, f"{page} shows a build-machine path in an output: {paths[:3]}"
    # figures: alt text that says something (not a file name)
    alts = browser.execute_script(
        "return Array.from(document.querySelectorAll('.bd-article .cell_output img, .bd-article figure img'))"
        ".map(i => i.getAttribute('alt') || '')")
    bad = [a for a in alts if len(a.strip()) < 10 or re.search(r"(\.png|\.svg|\.jpe?g|_images/|/)\s*$", a.strip())]
    assert not bad, f"{page}: {len(bad)} of {len(alts)} figures lack alt text (use the cell metadata mystnb.image.alt): {bad[:3]}"
    _check_exercises(browser, page, notebook)


def _check_exercises(browser, page, notebook):
    expected = [ex for ex in all_exercises().values() if ex.notebook.stem == notebook]
    starters = browser.execute_script(
        "return Array.from(document.querySelectorAll('.bd-article .course-starter'))"
        ".map(s => [s.innerText, s.offsetParent !== null && !s.closest('details:not([open]), .toggle-hidden')])")
    assert len(starters) == len(expected), f"{page}: {len(starters)} starter blocks for {len(expected)} exercises"
    for ex, (text, visible) in zip(expected, starters):
        assert visible, f"{page}: the starter code of {ex.id} is hidden"
        assert f"def {ex.name}" in text or f"class {ex.name}" in text or ex.name in text, f"{ex.id}: {text[:200]}"
        assert "NotImplementedError" in text, f"{page}: the starter code of {ex.id} is not the student's stub"
    source = browser.page_source
    assert "BEGIN SOLUTION" not in source and "END SOLUTION" not in source, f"{page} shows the solution markers"
    jumping = browser.execute_script(
        "return document.querySelectorAll('.solution .admonition-title a, .solution summary a').length")
    assert jumping == 0, f"{page}: a solution's title is a link (it jumps and opens the solution)"


def test_exercises_index_lists_every_exercise(browser, site_url):
    _open(browser, f"{site_url}/book/exercises.html")
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('table.course-exercise-index tbody tr'))"
        ".map(r => [r.innerText, Array.from(r.querySelectorAll('a')).map(a => a.href)])")
    exercises = list(all_exercises().values())
    assert len(rows) == len(exercises) >= 26, f"{len(rows)} rows for {len(exercises)} exercises"
    for ex, (text, links) in zip(exercises, rows):
        assert ex.id in text, f"the index row {text!r} is not {ex.id}"
        target = next((h for h in links if f"/{ex.notebook.stem}.html#" in h), None)
        assert target, f"{ex.id}: no link to its statement in {links}"
        anchor = target.split("#", 1)[1]
        html = (HTML / "book" / f"{ex.notebook.stem}.html").read_text(encoding="utf-8")
        assert f'id="{anchor}"' in html, f"{ex.id}: the link's anchor #{anchor} is not on the chapter page"


def test_intro_chapter_map_shows_measured_times(browser, site_url):
    _open(browser, f"{site_url}/book/intro.html")
    table = browser.execute_script(
        "const t = document.querySelector('.course-chapter-map table');"
        "return t ? [Array.from(t.querySelectorAll('th')).map(h => h.innerText),"
        " Array.from(t.querySelectorAll('tbody tr')).map(r => r.lastElementChild.innerText)] : null")
    assert table, "the intro has no generated chapter map"
    head, times = table
    assert not any(h.strip().lower() == "status" for h in head), head
    assert len(times) == len(book_notebooks())
    assert all(re.match(r"\d+(\.\d)? (s|min)", t) for t in times), f"chapter map times: {times}"


def test_footer_stamp_and_metadata(browser, site_url):
    _open(browser, f"{site_url}/book/02_vision_transformers.html")
    stamp = browser.execute_script("const s = document.querySelector('.course-build-stamp'); return s && s.innerText")
    assert stamp and re.search(r"Built \d{4}-\d\d-\d\d from commit", stamp), f"footer stamp: {stamp}"
    meta = browser.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('meta[name=description], meta[property^=\"og:\"]'))"
        ".map(m => [m.getAttribute('name') || m.getAttribute('property'), m.content]))")
    for key in ("description", "og:title", "og:description", "og:type", "og:site_name"):
        assert meta.get(key, "").strip(), f"no {key} meta tag"
    assert browser.execute_script("const l = document.querySelector('link[rel~=icon]'); return l && l.href"), "no favicon"


def test_figures_zoom_on_click(browser, site_url):
    _open(browser, f"{site_url}/book/02_vision_transformers.html")
    images = _visible(browser, ".bd-article .cell_output img.course-zoomable")
    assert images, "no zoomable figure on chapter 2"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", images[0])
    images[0].click()
    WebDriverWait(browser, 5).until(lambda b: _visible(b, "div.course-zoom img"), message="a click does not zoom")
    _visible(browser, "div.course-zoom")[0].click()
    WebDriverWait(browser, 5).until(lambda b: not _visible(b, "div.course-zoom"), message="the zoom does not close")
