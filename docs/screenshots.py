"""Screenshots of the Dagster UI on a demo home, for the README (docs/ui/*.png).

Generates a small demo home (or uses --home), runs the platform on it, starts `dagster dev` as
the README does and captures each page with headless Chromium (Debian's `chromium` package,
driven by Playwright's Python client; `pip install playwright`, no browser download):

    apt-get install chromium && .venv/bin/pip install playwright
    .venv/bin/python docs/screenshots.py [--home DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "ui"
BIN = Path(sys.executable).parent
PAGES = {
    "lineage": "asset-groups",
    "partitions": "assets/lake/web_events?view=partitions",
    "columns": "assets/marts/customer_profiles",
    "checks": "assets/marts/customer_profiles?view=checks",
    "automation": "automation",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(home: Path) -> None:
    if (home / "warehouse.duckdb").exists():
        return
    cli = [str(BIN / "inboxgraph"), "--home", str(home)]
    subprocess.run([*cli, "generate", "--people", "500", "--days", "30", "--quiet"], check=True)
    subprocess.run([*cli, "run"], check=True)


def _capture(url: str) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    flags += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=flags)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        for name, path in PAGES.items():
            page.goto(f"{url}/{path}", wait_until="networkidle")
            skip = page.get_by_role("button", name="Skip")
            if skip.count():
                skip.first.click()
            page.wait_for_timeout(3000)
            if name == "partitions":  # show one day's own figures
                days = page.get_by_text(re.compile(r"^\d{4}-\d{2}-\d{2}$"))
                visible = [day for day in days.all() if day.is_visible()]
                visible[min(3, len(visible) - 1)].click()
                page.wait_for_timeout(2000)
            page.screenshot(path=str(OUT / f"{name}.png"))
            print(f"docs/ui/{name}.png")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="an existing platform home (default: a new one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        home = (args.home or Path(scratch) / "home").absolute()
        _prepare(home)
        port = _free_port()
        env = {**os.environ, "INBOXGRAPH_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
        server = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", str(ROOT / "workspace.yaml"), "-p", str(port)],
            cwd=scratch,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 180
            while True:
                try:
                    if requests.get(f"{url}/server_info", timeout=2).ok:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("dagster dev did not start")
                time.sleep(1)
            time.sleep(10)  # the code location loads after the webserver answers
            OUT.mkdir(parents=True, exist_ok=True)
            _capture(url)
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
