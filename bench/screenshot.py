"""The dashboard's screenshot for the README, from a real run: `mediasyncd demo` on a free port, the page
in Debian's headless Chromium (Playwright), once the gallery has filled; it also measures the first
paint, each new tile's delay after the daemon wrote its `file_synced` event, and 10,000 arrivals
pushed into a gallery.

    .venv/bin/python -m bench.screenshot [--out docs/dashboard.png] [--tiles 8]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from bench.browser import chromium

MEDIASYNCD = str(Path(sys.executable).with_name("mediasyncd"))

# In the page: the browser's own WebSocket keeps the time the daemon wrote each file_synced event (ISO,
# milliseconds); a MutationObserver stamps the moment that file's tile is in the gallery (same clock).
WATCH_TILES = """() => {
  window.__written = {}; window.__tiled = {};
  const url = new URL('/api/v1/ws', location.href); url.protocol = 'ws:';
  const ws = new WebSocket(url);
  ws.onmessage = (m) => { const d = JSON.parse(m.data);
    if (d.type === 'event' && d.data.type === 'file_synced') window.__written[d.data.data.file_id] ??= Date.parse(d.data.time); };
  new MutationObserver((records) => { for (const r of records) for (const n of r.addedNodes)
    if (n.dataset && n.dataset.id) window.__tiled[n.dataset.id] ??= Date.now(); })
    .observe(document.getElementById('gallery'), { childList: true });
}"""

# In the page: a second Gallery (the page's own module) takes 10,000 arrivals; the tiles left and the time.
GALLERY_LOAD = """async () => {
  const { Gallery } = await import('/ui/gallery.js');
  const make = (tag) => document.body.appendChild(document.createElement(tag));
  const parts = { grid: make('div'), empty: make('p'), older: make('button'), newer: make('button'),
                  latest: make('button'), note: make('span') };
  const gallery = new Gallery(parts, { onOpen: () => {}, max: 120 });
  const started = performance.now();
  const batches = [];
  for (let i = 1; i <= 10000; i++) {
    const t = performance.now();
    gallery.arrived({ id: 1000000 + i, path: `load/${i}.png`, remote: 'r1', thumbnail: false });
    if (i % 1000 === 0) batches.push(performance.now() - t);
  }
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  return { ms: performance.now() - started, tiles: parts.grid.children.length,
           first: parts.grid.firstElementChild.dataset.id, last: parts.grid.lastElementChild.dataset.id,
           batches, olderShown: !parts.older.hidden };
}"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def first_paint(page: Page, base: str) -> dict[str, float]:
    """Milliseconds from navigation start: first contentful paint, and the remote cards in the page
    (stamped in the page by a MutationObserver installed before any of its scripts run)."""
    page.add_init_script(
        "new MutationObserver((_, o) => { if (document.querySelector('article.remote')) {"
        " window.__remotesAt = performance.now(); o.disconnect(); } })"
        ".observe(document, { childList: true, subtree: true });"
    )
    page.goto(base + "/")
    page.wait_for_selector("article.remote")
    fcp = page.evaluate("() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1")
    remotes = page.evaluate("() => window.__remotesAt ?? -1")
    return {"first_contentful_paint_ms": round(fcp, 1), "remotes_shown_ms": round(remotes, 1)}


def tile_delays(page: Page, count: int, timeout: float = 60) -> list[float]:
    """Milliseconds from the daemon writing a file's `file_synced` event to its tile in the gallery
    (the event's time has millisecond precision; daemon and browser share the machine's clock)."""
    page.evaluate(WATCH_TILES)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delays = page.evaluate(
            "() => Object.keys(window.__written).filter((id) => id in window.__tiled)"
            ".map((id) => window.__tiled[id] - window.__written[id])"
        )
        if len(delays) >= count:
            return [float(d) for d in delays]
        time.sleep(0.3)
    raise TimeoutError(f"fewer than {count} arrivals in {timeout}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/dashboard.png")
    parser.add_argument("--tiles", type=int, default=8, help="arrivals to measure before the screenshot")
    args = parser.parse_args(argv)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="mediasyncd-shot-") as tmp:
        demo = subprocess.Popen(
            [MEDIASYNCD, "demo", "--library", f"{tmp}/library", "--listen", str(port), "--every", "0.6"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_up(base)
            with sync_playwright() as p, chromium(p) as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme="light")
                paint = first_paint(page, base)
                delays = tile_delays(page, args.tiles)
                page.wait_for_function(
                    "() => document.querySelectorAll('#gallery img').length >= 6"
                    " && [...document.querySelectorAll('#gallery img')].every((i) => i.complete)",
                    timeout=60_000,
                )
                page.screenshot(path=args.out, full_page=True)
                load = page.evaluate(GALLERY_LOAD)
        finally:
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(30)
            except subprocess.TimeoutExpired:
                demo.kill()
    report: dict[str, Any] = dict(paint)
    report["tile_after_file_synced_ms"] = {
        "n": len(delays),
        "median": statistics.median(delays),
        "max": max(delays),
    }
    report["gallery_10000_arrivals"] = {"ms": round(load["ms"]), "tiles_left": load["tiles"]}
    report["screenshot"] = args.out
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
