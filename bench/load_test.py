"""Load test: 20 concurrent browser sessions on the Recommendations inspector.

Starts `streamlit run app.py` on a free loopback port, warms it up with one session (which loads or trains
the shared model), then opens N sessions at once (one headless Chromium, N contexts), each opening the
inspector, choosing a different member and switching the device. Times, per session: opening the page to a
rendered top-10 list, the member change and the device change, and checks that the page's URL carries the
member (the shareable view). Fails on any session error (exception box, error message, timeout). Prints p50/p95,
the app server's CPU-seconds per session, and writes JSON.

Usage: .venv/bin/python bench/load_test.py [--sessions 20] [--out bench/results/load_test.json]
       .venv/bin/python bench/load_test.py --first-page   # `make run` (warm) to a usable Home, 3 runs
Not part of `make test`: it needs chromium (apt-get install chromium) and takes a minute or two warm.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIST = "Top 10 after re-ranking"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"streamlit did not start; see {log}")


async def settle(page, timeout: float) -> float:
    """Seconds-clock time at which the script run went quiet (no 'Running' status for 0.25 s)."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    await page.wait_for_timeout(100)
    while True:
        running = await page.locator('[data-testid="stStatusWidget"]').filter(has_text="Running").count() > 0
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter()
        elif time.perf_counter() - quiet_since > 0.25:
            return quiet_since
        if time.monotonic() > deadline:
            raise TimeoutError("the app kept running")
        await page.wait_for_timeout(50)


async def step(page, action, timeout: float, url_has: str | None = None) -> float:
    """Seconds from `action` until the page answered it: the list shown, the run settled and, with `url_has`, the
    page's URL carrying the change (the server's own sign it ran the script for it; the widget itself shows a
    picked value at once, and the running indicator can lag a busy server)."""
    t = time.perf_counter()
    await action()
    await page.get_by_text(LIST).first.wait_for(timeout=timeout * 1000)
    if url_has is not None:
        await page.wait_for_function("(part) => window.location.search.includes(part)", arg=url_has,
                                     timeout=timeout * 1000)
    done = await settle(page, timeout)
    errors = await page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count()
    if errors or "Traceback" in await page.inner_text("body"):
        raise RuntimeError("the page shows an error")
    return done - t


async def choose(page, label: str, text: str) -> None:
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    await box.locator("input").first.click()
    await box.locator("input").first.fill(text)
    await page.locator('[role="option"]').filter(has_text=text).first.click()


async def session(browser, url: str, member: str, device: str, timeout: float) -> dict:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(timeout * 1000)
    out: dict = {"member": member, "device": device}
    try:
        out["open_s"] = await step(page, lambda: page.goto(f"{url}/recommendations"), timeout)
        out["member_s"] = await step(page, lambda: choose(page, "Member", member), timeout, f"member={member}")
        out["device_s"] = await step(page, lambda: choose(page, "Device", device), timeout, f"device={device}")
        box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Member").first
        shown = await box.inner_text() + " " + await box.locator("input").first.input_value()
        if member not in shown:
            raise RuntimeError(f"member {member} not selected (shows {shown!r})")
        if f"member={member}" not in page.url or f"device={device}" not in page.url:
            raise RuntimeError(f"the URL does not carry the view: {page.url}")
    except Exception as err:  # noqa: BLE001 - every failure is a session error to report
        out["error"] = f"{type(err).__name__}: {err}"[:300]
    finally:
        await context.close()
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


async def run(args) -> dict:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    port = free_port()
    log = ROOT / "test-artifacts" / "load_test_server.log"  # ignored by git
    log.parent.mkdir(parents=True, exist_ok=True)
    server = start_server(port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            t = time.perf_counter()
            warm = await session(browser, url, "u00002", "web", args.timeout)
            warm_s = time.perf_counter() - t
            if "error" in warm:
                raise SystemExit(f"warm-up session failed: {warm['error']}")
            devices = ["mobile", "tablet", "web", "tv"]
            members = [f"u{10 + 37 * i:05d}" for i in range(args.sessions)]
            t = time.perf_counter()
            cpu0 = cpu_seconds(server.pid)
            results = await asyncio.gather(*[session(browser, url, m, devices[i % len(devices)], args.timeout)
                                             for i, m in enumerate(members)])
            wall = time.perf_counter() - t
            server_cpu = cpu_seconds(server.pid) - cpu0
            await browser.close()
    finally:
        server.terminate()
        server.wait(10)
    ok = [r for r in results if "error" not in r]
    summary = {"sessions": args.sessions, "errors": len(results) - len(ok), "wall_s": round(wall, 2),
               "warm_up_session_s": round(warm_s, 2), "cores": os.cpu_count(),
               "server_cpu_s": round(server_cpu, 2),
               "server_cpu_s_per_session": round(server_cpu / max(args.sessions, 1), 2)}
    for key in ("open_s", "member_s", "device_s"):
        values = [r[key] for r in ok]
        if values:
            summary[key] = {"p50": round(statistics.median(values), 3), "p95": round(pct(values, 0.95), 3),
                            "max": round(max(values), 3)}
    return {"summary": summary, "sessions": results, "warm_up": warm}


async def first_page(chromium: str, timeout: float) -> dict:
    """Seconds from `make run` (a warm install: .venv exists) to Home showing its numbers in a browser."""
    import signal

    from playwright.async_api import async_playwright

    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                if time.perf_counter() - t0 > timeout:
                    raise SystemExit("make run did not serve the app")
                await asyncio.sleep(0.1)
        healthy = time.perf_counter() - t0
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/")
            await page.locator('[data-testid="stMetricValue"]').first.wait_for(timeout=timeout * 1000)
            usable = time.perf_counter() - t0
            await browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    return {"server_healthy_s": round(healthy, 2), "home_with_numbers_s": round(usable, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per step before a session fails")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load_test.json")
    parser.add_argument("--first-page", action="store_true",
                        help="instead: time `make run` (warm install) to a usable Home page")
    args = parser.parse_args()
    if args.first_page:
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            raise SystemExit("chromium is not installed (apt-get install chromium)")
        runs = [asyncio.run(first_page(chromium, args.timeout)) for _ in range(3)]
        for r in runs:
            print(f"make run: server healthy after {r['server_healthy_s']} s, Home with numbers after "
                  f"{r['home_with_numbers_s']} s")
        out = args.out.with_name("first_page.json")
        out.write_text(json.dumps({"runs": runs, "cores": os.cpu_count()}, indent=2) + "\n")
        print(f"wrote {out}")
        return
    result = asyncio.run(run(args))
    s = result["summary"]
    for key in ("open_s", "member_s", "device_s"):
        if key in s:
            print(f"{key:9s} p50 {s[key]['p50']:.2f} s  p95 {s[key]['p95']:.2f} s  max {s[key]['max']:.2f} s")
    print(f"{s['sessions']} sessions, {s['errors']} errors, {s['wall_s']} s wall ({s['server_cpu_s']} s of it app-server "
          f"CPU, {s['server_cpu_s_per_session']} s per session; the rest the {s['sessions']} browsers on {s['cores']} "
          f"cores); warm-up session {s['warm_up_session_s']} s")
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    if s["errors"]:
        for r in result["sessions"]:
            if "error" in r:
                print(f"  {r['member']}: {r['error']}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
