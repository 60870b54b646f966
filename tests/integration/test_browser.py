"""What a newcomer sees in a browser, in a real one: the API's /docs page on the embedded default
lists the operations with nothing fetched from the internet, and the docs site's home and a
pitfall page have no broken image or link.

Chromium is the system's (Debian's `chromium` package, which .ci/run installs), driven by
Playwright with that executable; Playwright's own browser downloads are never used. Outside CI a
machine without Chromium skips these tests and says how to install it; in CI (`CI` set) a missing
browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import httpx
import pytest

from patterns.testing import wait_until
from patterns.testing.backends import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost"}


def chromium_path() -> str:
    found = os.environ.get("KIT_CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    message = "needs Chromium: apt-get install chromium (or set KIT_CHROMIUM to its path)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def http_ok(url: str) -> Callable[[], bool]:
    def answers() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    return answers


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A page that may load nothing but loopback addresses: anything else is recorded and
    aborted, as it would fail on a machine without internet."""
    from playwright.sync_api import Browser, Route

    assert isinstance(browser, Browser)
    context = browser.new_context()
    outside: list[str] = []
    failed: list[str] = []

    def offline(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname not in LOOPBACK:
            outside.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", offline)
    page = context.new_page()
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: failed.append(f"failed {r.url}"))
    page.outside = outside  # type: ignore[attr-defined]
    page.failed = failed  # type: ignore[attr-defined]
    yield page
    context.close()


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m reference_app serve` on the embedded default, in a directory of its own."""
    workdir = tmp_path_factory.mktemp("embedded")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIT_")}
    env["KIT_DATABASE_URL"] = f"sqlite:///{workdir / 'kit.db'}"
    command = [sys.executable, "-m", "reference_app", "serve", "--port", str(port)]
    log = workdir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            http_ok(f"{base}/health/live"),
            "the embedded server to answer",
            timeout_s=WAIT_S,
            process=proc,
        )
        yield base
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The docs site built from this checkout and served over HTTP on loopback."""
    site = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = [sys.executable, "-m", "mkdocs", "build", "--quiet", "--site-dir", str(site)]
    subprocess.run(build, cwd=ROOT, env=env, check=True)
    port = free_port()
    serve = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    proc = subprocess.Popen(
        [*serve, "--directory", str(site)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            http_ok(f"{base}/"),
            "the docs site's server to answer",
            timeout_s=WAIT_S,
            process=proc,
        )
        yield base
    finally:
        stop(proc)


def test_the_api_docs_page_lists_the_operations_without_internet(
    page: object, embedded_server: str
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    openapi = httpx.get(f"{embedded_server}/api/v1/openapi.json").json()
    operations = sum(len(methods) for methods in openapi["paths"].values())

    page.goto(f"{embedded_server}/docs")
    expect(page.locator(".opblock")).to_have_count(operations, timeout=WAIT_S * 1000)
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any(p.endswith("/auth/login") for p in paths), paths
    assert any(p.endswith("/orders") for p in paths), paths
    assert page.outside == [], page.outside  # type: ignore[attr-defined]
    assert page.failed == [], page.failed  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/", "/pitfalls/PF001/"], ids=["home", "pitfall"])
def test_a_docs_page_has_no_broken_image_or_link(page: object, docs_site: str, path: str) -> None:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    page.goto(f"{docs_site}{path}", wait_until="load")
    images = page.eval_on_selector_all(
        "img", "imgs => imgs.map(i => [i.currentSrc || i.src, i.complete && i.naturalWidth > 0])"
    )
    broken_images = [src for src, loaded in images if not loaded]
    assert broken_images == [], broken_images
    if path != "/":
        assert images, "the pitfall page shows its chart"

    links = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    local = sorted({urldefrag(link).url for link in links if link.startswith(docs_site)})
    assert len(local) > 5, local  # the navigation at least
    broken = [f"{status} {url}" for url in local if (status := page.request.get(url).status) >= 400]
    assert broken == [], broken
    anchors = [link for link in links if link.startswith(f"{docs_site}{path}#")]
    for anchor in anchors:
        fragment = urldefrag(anchor).fragment
        if fragment:
            assert page.locator(f"[id='{fragment}']").count() >= 1, f"no #{fragment} on {path}"
    assert page.outside == [], page.outside  # type: ignore[attr-defined]
    assert page.failed == [], page.failed  # type: ignore[attr-defined]
