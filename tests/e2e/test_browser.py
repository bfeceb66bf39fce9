"""The served app in headless Chromium: every page renders without an exception, the onboarding flow adapts to
what the visitor watches, the inspector answers a context change, and uploads are validated.

Serves `streamlit run app.py` on a free loopback port and drives Debian's chromium through Playwright
(never a downloaded browser). Full-page screenshots of every page go to test-artifacts/screenshots/
and the time each interaction took to test-artifacts/e2e_timings.json.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
EXCEPTION = '[data-testid="stException"]'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """The served app's data root: a tiny CSV folder, a link leading out of the root, and beside the root a
    folder with a secret file that no browser may see."""
    base = tmp_path_factory.mktemp("served")
    root, outside = base / "root", base / "outside"
    (root / "tiny").mkdir(parents=True)
    (root / "tiny" / "items.csv").write_text("item_id,title,genres\nm1,One,drama\nm2,Two,comedy\n")
    (root / "tiny" / "events.csv").write_text("user_id,item_id,timestamp,watch_fraction\n"
                                              "a,m1,2025-07-01,0.9\nb,m2,2025-07-02,0.5\n")
    outside.mkdir()
    (outside / "secret-notes.csv").write_text("item_id,title\nx,classified-title\n")
    (root / "escape").symlink_to(outside)
    return root


@pytest.fixture(scope="module")
def server(data_root):
    port = _free_port()
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "test-artifacts" / "e2e_server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1", RECSYS_DATA_ROOT=str(data_root)))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"streamlit did not start: {(ROOT / 'test-artifacts' / 'e2e_server.log').read_text()[-2000:]}")
        time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


TIMINGS: dict[str, float] = {}


def settle(page, timeout: float = 300.0) -> float:
    """Wait until the script run has finished (no 'Running' status for 0.25 s); return when it went quiet."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    page.wait_for_timeout(100)
    while True:
        running = page.locator('[data-testid="stStatusWidget"]').filter(has_text="Running").count() > 0
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter()
        elif time.perf_counter() - quiet_since > 0.25:
            return quiet_since
        if time.monotonic() > deadline:
            raise AssertionError("the app kept running")
        page.wait_for_timeout(50)


def timed(name: str, page, action, expect: str, timeout: float = 300.0) -> float:
    """Run `action`, wait until `expect` is visible and the run settled; record the seconds it took."""
    t = time.perf_counter()
    action()
    page.get_by_text(expect).first.wait_for(timeout=timeout * 1000)
    done = settle(page, timeout)
    TIMINGS[name] = round(done - t, 3)
    return TIMINGS[name]


def check_clean(page, where: str) -> None:
    assert page.locator(EXCEPTION).count() == 0, f"exception box on {where}"
    assert "Traceback" not in page.inner_text("body"), f"traceback text on {where}"


def wait_painted(page, timeout: float = 30.0) -> None:
    """Wait until no placeholder skeleton is left and every plotly chart has drawn."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        undrawn = page.locator('[data-testid="stPlotlyChart"]:not(:has(.main-svg))').count()
        if undrawn == 0 and page.locator('[data-testid^="stSkeleton"]').count() == 0:
            return
        page.wait_for_timeout(200)


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    wait_painted(page)
    height = page.evaluate("(() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                           " return Math.max(m ? m.scrollHeight : 0, document.body.scrollHeight); })()")
    page.set_viewport_size({"width": 1400, "height": int(min(max(height + 40, 900), 8000))})
    page.wait_for_timeout(300)
    wait_painted(page)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})


def pick(page, label: str, option: str, typed: bool = False) -> None:
    """Choose `option` in the selectbox or multiselect labelled `label` (`typed`: filter a long list by typing it)."""
    box = page.locator('[data-testid="stSelectbox"], [data-testid="stMultiSelect"]').filter(has_text=label).first
    box.locator("input").first.click()
    if typed:
        page.keyboard.type(option)
    page.locator('[role="option"]').filter(has_text=option).first.click()


def wait_uploaded(page, names: list[str], timeout: float = 60.0) -> None:
    """Wait until the uploader lists every file in `names` and the rerun the upload triggered has settled."""
    deadline = time.monotonic() + timeout
    box = page.locator('[data-testid="stFileUploader"]').first
    while not all(n in box.inner_text() for n in names):
        assert time.monotonic() < deadline, f"the files did not upload: {box.inner_text()!r}"
        page.wait_for_timeout(100)
    settle(page)


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()


def test_every_page_renders_and_onboarding_adapts(server, page):
    # Home
    timed("open home", page, lambda: page.goto(server), "Members", timeout=120)
    check_clean(page, "home")
    shoot(page, "home")

    # Onboarding: pick genres, see a list, watch the first title, see the list adapt
    timed("open onboarding", page, lambda: page.goto(f"{server}/onboarding"), "Pick a few genres", timeout=180)
    check_clean(page, "onboarding")
    timed("pick a genre", page, lambda: pick(page, "Your top genres", "Comedy"), "Recommended for you")
    page.keyboard.press("Escape")
    timed("pick a second genre", page, lambda: pick(page, "Your top genres", "Horror"), "Recommended for you")
    page.keyboard.press("Escape")
    cards = page.locator('[data-testid="stMarkdownContainer"] strong').filter(has_text=". ")
    first = cards.first.inner_text()
    assert first.startswith("1. ") and cards.count() == 10
    timed("watch a title", page, lambda: page.get_by_role("button", name="Watch").first.click(),
          "Adapted to what you watched")
    check_clean(page, "onboarding after watching")
    titles = [c.inner_text() for c in cards.all()]
    assert len(titles) == 10 and first.split(". ", 1)[1] not in [t.split(". ", 1)[1] for t in titles]
    assert first.split(". ", 1)[1] in page.get_by_text("Adapted to what you watched").inner_text()
    shoot(page, "onboarding")

    # Recommendations: the inspector, then a context change
    timed("open recommendations", page, lambda: page.goto(f"{server}/recommendations"), "Top 10 after re-ranking",
          timeout=400)
    check_clean(page, "recommendations")
    timed("change device", page, lambda: pick(page, "Device", "mobile"), "Top 10 after re-ranking")
    check_clean(page, "recommendations after a device change")
    shoot(page, "recommendations")

    # Features and Metrics
    timed("open features", page, lambda: page.goto(f"{server}/features"), "Feature distributions", timeout=300)
    check_clean(page, "features")
    timed("change feature group", page,
          lambda: page.locator('[data-testid="stButtonGroup"]').get_by_text("media", exact=True).click(),
          "Feature distributions")
    check_clean(page, "features after a group change")
    shoot(page, "features")
    timed("open metrics", page, lambda: page.goto(f"{server}/metrics"), "Rankers as classifiers", timeout=120)
    check_clean(page, "metrics")
    shoot(page, "metrics")

    # A/B test: a small experiment, pipeline against popularity, runs to its results
    timed("open a/b test", page, lambda: page.goto(f"{server}/ab_test"), "Run the experiment", timeout=120)
    check_clean(page, "a/b test")
    for label, value in (("Members", "200"), ("Days", "1")):
        box = page.locator('[data-testid="stNumberInput"]').filter(has_text=label).first.locator("input")
        box.fill(value)
        box.press("Enter")
        settle(page)
    timed("run a small experiment", page, lambda: page.get_by_role("button", name="Run the experiment").click(),
          "Against the control", timeout=300)
    check_clean(page, "a/b test results")
    assert page.get_by_text("Sample ratio").count() > 0
    shoot(page, "ab_test")

    # widget changes on warm pages answer quickly (about half a second here; a loose bound for busy CI machines)
    slow = {k: v for k, v in TIMINGS.items() if not k.startswith(("open", "run")) and v > 5.0}
    assert not slow, f"widget changes slower than 5 s: {slow}"


def test_uploads_are_validated_and_good_files_become_the_data(server, page, tmp_path):
    timed("open home", page, lambda: page.goto(server), "Members", timeout=120)
    page.get_by_text("Data source:").first.click()
    page.get_by_text("Upload files", exact=True).click()
    items = tmp_path / "items.csv"
    items.write_text("item_id,title,genres\nm1,One,drama\nm2,Two,comedy\n")
    bad = tmp_path / "bad" / "events.csv"
    bad.parent.mkdir()
    bad.write_text("user_id,item_id,timestamp,watch_fraction\na,m1,01/07/2025,0.9\n")
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploader.set_input_files([str(items), str(bad)])
    wait_uploaded(page, ["items.csv", "events.csv"])
    timed("load a bad upload", page, lambda: page.get_by_role("button", name="Load uploaded files").click(),
          "Could not load that data")
    error = page.locator('[data-testid="stAlertContentError"]').first.inner_text()
    assert "events.csv" in error and "timestamp" in error and "01/07/2025" in error
    check_clean(page, "home after a bad upload")
    shoot(page, "home_upload_error")

    good = tmp_path / "good" / "events.csv"
    good.parent.mkdir()
    good.write_text("user_id,item_id,timestamp,watch_fraction\na,m1,2025-07-01,0.9\nb,m2,2025-07-02,0.5\n"
                    "c,m1,2025-07-03,0.0\n")
    page.reload()  # a fresh session with an empty uploader
    page.get_by_text("Members").first.wait_for()
    settle(page)
    page.get_by_text("Data source:").first.click()
    page.get_by_text("Upload files", exact=True).click()
    uploader.set_input_files([str(items), str(good)])
    wait_uploaded(page, ["items.csv", "events.csv"])
    try:
        timed("load a good upload", page, lambda: page.get_by_role("button", name="Load uploaded files").click(),
              "Dataset: upload-", timeout=120)
    finally:
        shoot(page, "home_upload")
    members = page.locator('[data-testid="stMetric"]').filter(has_text="Members").first.inner_text()
    assert "3" in members.split("Members")[-1]
    check_clean(page, "home after a good upload")
    # the other pages use the uploaded data in this session (navigation keeps the session)
    page.get_by_role("link", name="Onboarding").click()
    page.get_by_text("Welcome").first.wait_for()
    settle(page)
    check_clean(page, "onboarding on uploaded data")


def _load_spec(page, spec: str, expect: str) -> str:
    """Type `spec` into Home's data-spec box, load it, wait until `expect` shows (the page answered this spec,
    not the previous one: on a loaded machine a rerun can start after the first quiet moment), and return the
    error shown (empty when none)."""
    box = page.locator('input[aria-label="Dataset"]')
    box.fill(spec)
    box.press("Enter")
    settle(page)
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text(expect).first.wait_for(timeout=120_000)
    settle(page)
    errors = page.locator('[data-testid="stAlertContentError"]')
    return errors.first.inner_text() if errors.count() else ""


def test_paths_outside_the_data_root_are_refused_with_no_listing(server, page, data_root):
    timed("open home", page, lambda: page.goto(server), "Members", timeout=120)
    page.get_by_text("Data source:").first.click()
    page.get_by_text("Data spec", exact=True).click()
    settle(page)
    for spec in ("csv:../outside", "csv:../../..", f"csv:{data_root.parent / 'outside'}", "movielens:/etc",
                 "csv:escape", "parquet:tiny/../../outside"):
        error = _load_spec(page, spec, f"{spec.split(':', 1)[1]!r} is ")
        assert "outside the data root" in error and str(data_root) in error, (spec, error)
        body = page.inner_text("body")
        for leaked in ("secret-notes", "classified-title", "passwd", "hostname"):
            assert leaked not in body, (spec, leaked)
        check_clean(page, f"home after {spec}")
    assert "escape" not in page.inner_text("body").split("There:")[-1].split(".")[0]
    shoot(page, "home_outside_root")
    assert _load_spec(page, "csv:tiny", "Dataset: tiny") == ""


def _copied_link(page) -> str:
    page.get_by_role("button", name="Copy link").click()
    code = page.locator('[data-testid="stCode"]').filter(has_text="member=").first
    code.wait_for()
    link = code.inner_text().strip()
    page.keyboard.press("Escape")
    return link


def _top_titles(page) -> str:
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.wait_for()
    return grid.inner_text()


def test_a_copied_link_opens_the_same_member_view_and_side_by_side_renders(server, browser, page):
    timed("open recommendations", page, lambda: page.goto(f"{server}/recommendations"), "Top 10 after re-ranking",
          timeout=400)
    timed("pick a member", page, lambda: pick(page, "Member", "u00042", typed=True), "Top 10 after re-ranking")
    timed("change device", page, lambda: pick(page, "Device", "mobile"), "Top 10 after re-ranking")
    timed("compare with P(watch) order", page, lambda: pick(page, "Compare with", "lists by P(watch)", typed=True),
          "titles are in both lists")
    check_clean(page, "side by side")
    assert page.get_by_text("reason: lists by P(watch)").count() > 0 or "change" in page.inner_text("body")
    shoot(page, "side_by_side")
    page.wait_for_function("() => ['member=u00042', 'device=mobile', 'compare='].every("
                           "part => window.location.search.includes(part))", timeout=60_000)  # the address bar too
    link = _copied_link(page)
    assert link.startswith(server) and "member=u00042" in link and "device=mobile" in link, link
    mine = _top_titles(page)

    fresh = browser.new_context(viewport={"width": 1400, "height": 900})  # no cookies, no session: a colleague
    try:
        other = fresh.new_page()
        timed("open a copied link", other, lambda: other.goto(link), "titles are in both lists", timeout=400)
        check_clean(other, "the copied link")
        def shown(label: str) -> str:
            box = other.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
            return box.inner_text() + " " + box.locator("input").first.input_value()

        assert "u00042" in shown("Member") and "mobile" in shown("Device")
        assert "lists by P(watch)" in shown("Compare with")
        assert _top_titles(other) == mine
    finally:
        fresh.close()


def teardown_module():
    out = ROOT / "test-artifacts" / "e2e_timings.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(TIMINGS, indent=2) + "\n")
