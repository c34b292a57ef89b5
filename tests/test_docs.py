"The documentation site (scripts/build_docs.py): built from the committed notebooks and opened in headless Chromium."
import functools, http.server, re, shutil, subprocess, sys, threading, urllib.parse, urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
PAGES = ["index.html", "nbs/01_bounds.html", "nbs/train.html", "api/bounds.html"]


def chromium(*args):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                           "--virtual-time-budget=10000", *args], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs"); pytest.importorskip("mkdocs_jupyter")
    d = tmp_path_factory.mktemp("docs")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_docs.py"), "--site", str(d / "site"), "--stage",
                    str(d / "stage")], check=True, timeout=600, capture_output=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(d / "site"))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield d / "site", f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_every_notebook_and_module_has_a_page(site):
    folder, _ = site
    for nb in (ROOT / "nbs").glob("*.ipynb"):
        assert (folder / ("index.html" if nb.stem == "index" else f"nbs/{nb.stem}.html")).exists(), nb.name
    assert (folder / "api" / "learner.html").exists() and "def fit" not in (folder / "api" / "learner.html").read_text()
    assert "Train <code>cfg.method</code>" in (folder / "api" / "learner.html").read_text()   # docstrings rendered


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_pages_load_with_their_figures_and_links_and_no_console_errors(site, tmp_path):
    folder, base = site
    for page in PAGES:
        r = chromium("--dump-dom", base + page)
        assert "<article" in r.stdout, (page, r.stderr[-2000:])
        errors = [l for l in r.stderr.splitlines() if ":CONSOLE" in l and re.search(r"error|uncaught|failed", l, re.I)]
        assert not errors, (page, errors)
        targets = re.findall(r'<img[^>]+src="([^"]+)"', r.stdout) + re.findall(r'<a[^>]+href="([^"#]+)[#"]', r.stdout)
        for t in {t for t in targets if not t.startswith(("data:", "http:", "https:", "mailto:"))}:
            url = urllib.parse.urljoin(base + page, t)
            assert urllib.request.urlopen(url, timeout=30).status == 200, (page, t)
    shot = tmp_path / "01_bounds.png"
    chromium("--window-size=1280,1400", f"--screenshot={shot}", base + "nbs/01_bounds.html")
    assert shot.stat().st_size > 20_000                                                     # a rendered page, kept
