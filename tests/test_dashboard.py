"""The dashboard at `/` in a real headless Chromium (Debian's, driven by Playwright) against the real
daemon (pipeline on, so thumbnails exist) and the real sshd, with a status_token: the token prompt, the
remote and its buttons, live arrivals with their thumbnails, the viewer, search, sync now, the purge
preview and its confirm, and the gallery's cap under 10,000 arrivals."""

from __future__ import annotations

import fnmatch
import io
import itertools
import json
import re
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bench.browser import chromium
from bench.screenshot import GALLERY_LOAD
from mediasyncd.api.dashboard import load_assets
from tests.helpers import OLD, Env, start_daemon, stop, wait_for
from tests.purge.conftest import on_remote, purge_env
from tests.sshd import start_sshd
from tests.test_control_api import call, port_of

pytestmark = pytest.mark.slow
TOKEN = "dash-board-token"
ROOT = Path(__file__).resolve().parent.parent
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def a1111_png(prompt: str, seed: int, color: tuple[int, int, int]) -> bytes:
    """A PNG as A1111/Forge writes it: the generation parameters in a `parameters` text chunk."""
    info = PngInfo()
    info.add_text(
        "parameters",
        f"{prompt}\nNegative prompt: blurry, lowres\n"
        f"Steps: 23, Sampler: Euler a, CFG scale: 6.5, Seed: {seed}, Size: 64x48, Model: dreamshaper_8",
    )
    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, "PNG", pnginfo=info)
    return out.getvalue()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One daemon for the module: remote r1 on a real sshd, pipeline on, a token, `keep-*` preserved."""
    tmp = tmp_path_factory.mktemp("dashboard")
    with start_sshd(tmp / "sshd") as server:
        env = purge_env(tmp, server, purge={"preserve": ["keep-*"]}, settle="0s", poll_interval="0.3s")
        config = tomllib.loads(env.config_path.read_text())
        config["daemon"]["status_token"] = TOKEN
        config["pipeline"]["enabled"] = True
        env.config_path.write_text(tomli_w.dumps(config))
        env.write(
            "lighthouse.png", a1111_png("a lighthouse at dusk, oil painting", 7, (30, 60, 200)), mtime=OLD
        )
        env.write("keep-me.png", a1111_png("a kept harbour", 8, (30, 160, 60)), mtime=OLD)
        proc = start_daemon(env.config_path, tmp / "daemon.log")
        try:
            wait_for(lambda: len(env.landed()) == 2, timeout=60)
            yield env
        finally:
            assert stop(proc) == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright, chromium(playwright) as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, daemon: Env) -> Iterator[Page]:
    """A fresh browser context (no cookie yet) on the dashboard, not logged in."""
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    context.set_default_timeout(20_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.goto(f"http://127.0.0.1:{port_of(daemon)}/")
    yield opened
    context.close()
    assert errors == []


def log_in(page: Page, token: str = TOKEN) -> None:
    page.fill("#token", token)
    page.click("#login button[type=submit]")


def logged_in(page: Page) -> Page:
    log_in(page)
    expect(page.locator("article.remote[data-remote=r1]")).to_be_visible()
    return page


def _get(env: Env, path: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port_of(env)}{path}")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, dict(resp.headers), resp.read()


def test_the_page_and_its_assets_load_without_the_token_under_a_strict_csp(daemon: Env) -> None:
    """`/` and /ui/* hold no data: they answer without the token, with a Content-Security-Policy; the API
    still needs it."""
    code, headers, body = _get(daemon, "/")
    assert code == 200 and b'src="/ui/app.js"' in body
    assert headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert _get(daemon, "/ui/app.js")[1]["Content-Type"].startswith("text/javascript")
    assert call(daemon, "GET", "/api/v1/remotes")[0] == 401


def test_every_file_the_page_names_is_served_and_shipped() -> None:
    """Each /ui/ file index.html names and each module a module imports is served, and the package data
    globs in pyproject.toml cover every file of the page (a non-editable install ships them)."""
    assets = load_assets()
    named = set(re.findall(r'"/ui/([\w.-]+)"', assets["index.html"].body.decode()))
    for name, found in assets.items():
        if name.endswith(".js"):
            named |= set(re.findall(r'from "\./([\w.-]+)"', found.body.decode()))
    assert named and named <= set(assets)
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "mediasyncd"
    ]
    for path in (ROOT / "mediasyncd" / "web").iterdir():
        assert any(fnmatch.fnmatch(f"web/{path.name}", g) for g in globs), path.name
    assert set(assets) == {p.name for p in (ROOT / "mediasyncd" / "web").iterdir()}


def test_a_wrong_token_shows_the_prompt_again_and_the_right_one_logs_in(page: Page) -> None:
    """The API's 401 brings up the token prompt; a wrong token says so; the right one sets the session
    cookie (HttpOnly: the page's script cannot read it) and the remote is shown."""
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#main")).to_be_hidden()
    log_in(page, "not-the-token")
    expect(page.locator("#login-error")).to_have_text("That is not the token.")
    expect(page.locator("#login")).to_be_visible()
    logged_in(page)
    expect(page.locator("#login")).to_be_hidden()
    assert page.evaluate("() => document.cookie") == ""
    assert page.evaluate("() => JSON.stringify(localStorage) + location.href").find(TOKEN) == -1


def test_the_remote_is_shown_with_its_state_and_the_link_goes_live(page: Page) -> None:
    """Each remote's card: its state from the live status, its watch mode, landed files."""
    card = logged_in(page).locator("article.remote[data-remote=r1]")
    expect(card.locator(".pill")).to_have_text("connected")
    expect(card).to_contain_text("Landed")
    expect(card).to_contain_text("Watch")
    expect(page.locator("#link")).to_have_text("live")


def test_a_new_file_appears_in_the_gallery_live_with_its_thumbnail_and_metadata(
    page: Page, daemon: Env
) -> None:
    """A file created on the remote gets a tile at `file_synced` and its thumbnail at `file_processed`,
    without a reload; clicking it shows the full image and its generation metadata."""
    logged_in(page)
    expect(page.locator("#gallery figure")).to_have_count(2)
    page.evaluate("() => { window.notReloaded = true; }")
    daemon.write("fox.png", a1111_png("a red fox in the snow", 42, (200, 60, 30)), mtime=time.time() - 5)
    tile = page.locator("#gallery figure", has_text="fox.png")
    expect(tile).to_be_visible(timeout=30_000)
    expect(page.locator("#gallery figcaption").first).to_have_text("fox.png")  # newest first
    expect(tile.locator("img")).to_have_attribute(
        "src", f"/api/v1/files/{tile.get_attribute('data-id')}/thumbnail"
    )
    page.wait_for_function(
        "(id) => document.querySelector(`#gallery figure[data-id='${id}'] img`)?.naturalWidth > 0",
        arg=tile.get_attribute("data-id"),
    )
    assert page.evaluate("() => window.notReloaded") is True

    tile.locator("button").click()
    viewer = page.locator("#viewer")
    expect(viewer).to_be_visible()
    meta = viewer.locator("#viewer-meta")
    for text in ("a red fox in the snow", "blurry, lowres", "dreamshaper_8", "42", "23", "6.5", "64 × 48"):
        expect(meta).to_contain_text(text)
    page.wait_for_function("() => document.querySelector('#viewer-media img')?.naturalWidth === 64")
    viewer.locator("button", has_text="Close").click()
    expect(viewer).to_be_hidden()


def test_search_finds_a_file_by_its_prompt(page: Page) -> None:
    """The search box asks GET /api/v1/files?q= and shows the matches as thumbnails."""
    logged_in(page)
    page.fill("#q", "lighthouse")
    page.press("#q", "Enter")
    results = page.locator("#results figure")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("lighthouse.png")
    expect(page.locator("#results-count")).to_contain_text("1 found")
    page.fill("#q", "zebra-that-is-not-there")
    page.press("#q", "Enter")
    expect(page.locator("#results-count")).to_contain_text("Nothing found")
    page.click("#results-close")
    expect(page.locator("#gallery-box")).to_be_visible()


def test_sync_now_starts_a_job_and_pause_resume_hold_the_remote(page: Page, daemon: Env) -> None:
    """ "Sync now" starts a sync job (shown until done); "Pause" holds the remote, "Resume" releases it."""
    card = logged_in(page).locator("article.remote[data-remote=r1]")
    before = {j["id"] for j in call(daemon, "GET", "/api/v1/jobs", headers=BEARER)[1]["jobs"]}
    card.locator("button", has_text="Sync now").click()
    expect(card.locator("[role=status]")).to_have_text("sync done")
    jobs = [
        j for j in call(daemon, "GET", "/api/v1/jobs", headers=BEARER)[1]["jobs"] if j["id"] not in before
    ]
    assert [(j["kind"], j["result"]["remote"]) for j in jobs] == [("sync", "r1")]

    card.locator("button", has_text="Pause").click()
    expect(card.locator("button", has_text="Resume")).to_be_visible()
    assert call(daemon, "GET", "/api/v1/remotes/r1", headers=BEARER)[1]["remote"]["held"] is True
    expect(card).to_contain_text("paused by the operator")
    card.locator("button", has_text="Resume").click()
    expect(card.locator("button", has_text="Pause")).to_be_visible()
    assert call(daemon, "GET", "/api/v1/remotes/r1", headers=BEARER)[1]["remote"]["held"] is False


def test_the_purge_preview_lists_reasons_and_confirm_purges(page: Page, daemon: Env) -> None:
    """Preview is a dry-run job whose plan is shown as a table (what would go and what stays, and why);
    nothing is deleted until the confirm button is pressed twice; the schedule pauses and resumes."""
    logged_in(page)
    page.select_option("#purge-remote", "r1")
    page.click("#purge-preview")
    table = page.locator("#purge-table")
    expect(table).to_be_visible()
    go = table.locator("tr.go", has_text="lighthouse.png")
    expect(go).to_contain_text("would go")
    expect(go).to_contain_text("older than the limit")
    expect(table.locator("tr.stays", has_text="keep-me.png")).to_contain_text("matches a preserve glob")
    assert "lighthouse.png" in on_remote(daemon)

    confirm = page.locator("#purge-confirm")
    confirm.click()
    expect(confirm).to_contain_text("Really delete 1 file")
    assert "lighthouse.png" in on_remote(daemon)
    confirm.click()
    expect(page.locator("#purge-note")).to_contain_text("1 deleted")
    assert "lighthouse.png" not in on_remote(daemon) and "keep-me.png" in on_remote(daemon)

    page.click("#purge-hold")
    expect(page.locator("#purge-schedule")).to_have_text("Scheduled purges: paused")
    status = json.loads(_get_bearer(daemon, "/status"))
    assert status["purge"]["held"] is True
    page.click("#purge-hold")
    expect(page.locator("#purge-schedule")).to_have_text("Scheduled purges: on")


def _get_bearer(env: Env, path: str) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port_of(env)}{path}", headers=BEARER)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return str(resp.read().decode())


def test_the_gallery_holds_10000_arrivals_with_a_bounded_page(page: Page) -> None:
    """10,000 arrivals in a session leave at most the gallery's cap of tiles in the page, newest first,
    and the last arrivals cost no more than the first."""
    logged_in(page)
    result: dict[str, Any] = page.evaluate(GALLERY_LOAD)
    assert result["tiles"] == 120
    assert (result["first"], result["last"]) == ("1010000", str(1000000 + 10000 - 119))
    assert result["ms"] < 10_000, result
    assert result["olderShown"] is True  # the files pushed out of the page are a click away


GALLERY_PAGING = """async () => {
  const { Gallery } = await import('/ui/gallery.js');
  const make = (tag) => document.body.appendChild(document.createElement(tag));
  const parts = { grid: make('div'), empty: make('p'), older: make('button'), newer: make('button'),
                  latest: make('button'), note: make('span') };
  const gallery = new Gallery(parts, { onOpen: () => {}, max: 1 });
  const ids = () => [...parts.grid.children].map((n) => Number(n.dataset.id));
  await gallery.showLatest();
  const seen = [ids()];
  while (!parts.older.hidden) { await gallery.older(); seen.push(ids()); }
  await gallery.newer();
  const back = ids();
  await gallery.showLatest();
  return { seen, back, live: ids(), latestHidden: parts.latest.hidden };
}"""


def test_the_gallery_pages_through_older_files_with_the_cursor(page: Page, daemon: Env) -> None:
    """Older/Newer walk the library newest first, one page at a time, through the API's cursor."""
    logged_in(page)
    files = call(daemon, "GET", "/api/v1/files?limit=500", headers=BEARER)[1]["files"]
    paged: dict[str, Any] = page.evaluate(GALLERY_PAGING)
    assert paged["seen"] == [[f["id"]] for f in files] and len(files) >= 2
    assert paged["back"] == [files[-2]["id"]]
    assert paged["live"] == [files[0]["id"]] and paged["latestHidden"] is True


ETA_STALL = """async () => {
  const { EtaSmoother } = await import('/ui/eta.js');
  const eta = new EtaSmoother();
  const shown = [];
  let remaining = 200e6;
  for (let i = 0; i < 120; i++) {           // 30 s at 4 updates/s; the rate collapses for 5 s at 10 s
    const t = i / 4;
    const rate = t >= 10 && t < 15 ? 1e5 : 4e6;
    remaining = Math.max(0, remaining - rate / 4);
    shown.push([t, eta.update(remaining, rate, t)]);
  }
  return shown;
}"""


def test_the_eta_counts_down_and_never_jumps_back_up_wildly(page: Page) -> None:
    """A stall that makes the raw ETA 40x longer raises the shown one by at most 10% (or 1 s) per second."""
    shown: list[list[float]] = page.evaluate(ETA_STALL)
    for (t0, a), (t1, b) in itertools.pairwise(shown):
        assert b <= a + max(1.0, 0.1 * a) * (t1 - t0) + 1e-6, (t0, a, t1, b)
    assert shown[-1][1] < shown[0][1]
    left = 200e6 - 4e6 * 25 - 1e5 * 5  # bytes left after 30 s
    assert abs(shown[-1][1] - left / 4e6) < 1.0  # and right again 15 s after the stall


NEWER_FIELDS = """async () => {
  const { Remotes, renderSinks } = await import('/ui/remotes.js');
  const root = document.createElement('div');
  const remotes = new Remotes(root);
  remotes.render([{ name: 'pod', state: 'connected', transport: 'exec', watch_mode: 'agent',
                    watch_reason: 'inotifywait found', landed_files: 3 }]);
  const withFields = root.textContent;
  remotes.render([{ name: 'gpu', state: 'connected', transport: 'ssh', round_trip_ms: 0.412 }]);
  const near = root.textContent;
  remotes.render([{ name: 'gpu', state: 'connected', transport: 'ssh', round_trip_ms: 41.6 }]);
  const far = root.textContent;
  remotes.render([{ name: 'pod', state: 'backoff', last_error: 'connection refused' }]);
  const without = root.textContent;
  const box = document.createElement('div');
  const list = document.createElement('div');
  renderSinks(box, list, [{ name: 'db', type: 'postgresql', state: 'ok', lag_events: 4, detail: { x: 1 } }]);
  const sinks = [box.hidden, list.textContent];
  renderSinks(box, list, undefined);
  return { withFields, without, sinks, hiddenWithout: box.hidden, near, far };
}"""


WORKFLOW = """async () => {
  const { renderWorkflow } = await import('/ui/remotes.js');
  const box = document.createElement('div');
  const list = document.createElement('div');
  renderWorkflow(box, list, { stages: {
    archive: { counts: { done: 12, waiting: 2 }, oldest_waiting: '2026-11-30T10:00:00Z',
               paused: 'destination /mnt/nas has no .mediasyncd-archive marker (not mounted?)', failures: [] },
    compress: { counts: { done: 10, failed: 1 }, oldest_waiting: null, paused: null,
                failures: [{ remote: 'r1', path: 'a.png', error: 'cannot decode' }] },
  } });
  const shown = [box.hidden, list.textContent, list.querySelectorAll('article').length];
  renderWorkflow(box, list, undefined);
  return { shown, hiddenWithout: box.hidden };
}"""


def test_the_workflow_stages_show_when_status_has_them(page: Page) -> None:
    """/status's `workflow` section: a card per stage with its counts, why it is paused, the oldest
    waiting file and its failures; no section, no box."""
    result: dict[str, Any] = page.evaluate(WORKFLOW)
    hidden, text, cards = result["shown"]
    assert hidden is False and cards == 2
    assert "archive" in text and "done12" in text and "waiting2" in text and "paused" in text
    assert "no .mediasyncd-archive marker" in text and "r1: a.png: cannot decode" in text
    assert result["hiddenWithout"] is True


def test_transport_watch_mode_and_sinks_show_when_status_has_them(page: Page) -> None:
    """`transport` (with `round_trip_ms`), `watch_mode`/`watch_reason` of a remote and a top-level `sinks`
    list are shown when /status has them, and their absence leaves nothing broken."""
    shown: dict[str, Any] = page.evaluate(NEWER_FIELDS)
    assert "exec" in shown["withFields"] and "agent (inotifywait found)" in shown["withFields"]
    assert "backoff" in shown["without"] and "connection refused" in shown["without"]
    assert "Transport" not in shown["without"] and "round trip" not in shown["withFields"]
    assert "ssh · 0.41 ms round trip" in shown["near"] and "ssh · 42 ms round trip" in shown["far"]
    hidden, text = shown["sinks"]
    assert hidden is False and "db" in text and "postgresql" in text and "lag events4" in text
    assert shown["hiddenWithout"] is True


TRANSFERS = """async () => {
  const { Transfers } = await import('/ui/transfers.js');
  const root = document.createElement('div');
  const transfers = new Transfers(root);
  const file = (path, done, size, rate) => ({ path, bytes_done: done, size, rate_bps: rate, eta_s: null });
  transfers.render([
    { name: 'r1', queued: 3, in_flight: [file('a/one.png', 1048576, 4194304, 2097152), file('a/two.png', 0, 1048576, 0)] },
    { name: 'r2', in_flight: [] },
  ], 0);
  const bars = [...root.querySelectorAll('progress')].map((p) => [p.value, p.max]);
  const text = root.textContent;
  transfers.render([{ name: 'r1', in_flight: [] }], 1);
  return { bars, text, after: root.textContent };
}"""


def test_transfers_show_per_remote_and_per_file_progress_rate_and_eta(page: Page) -> None:
    """Each remote with files in flight gets a total bar and one per file, with rate and ETA; when
    nothing is in flight the panel says so."""
    shown: dict[str, Any] = page.evaluate(TRANSFERS)
    assert shown["bars"] == [[1048576, 5242880], [1048576, 4194304], [0, 1048576]]
    assert "r1: 2 file(s) · 3 queued" in shown["text"] and "one.png" in shown["text"]
    assert "2.0 MiB/s · ETA 2 s" in shown["text"]  # 4 MiB left of the remote's 5 at 2 MiB/s
    assert shown["after"] == "Nothing in flight."


def test_dark_mode_follows_the_system_and_a_phone_screen_gets_no_sideways_scroll(
    browser: Browser, daemon: Env
) -> None:
    """prefers-color-scheme: dark gives a dark page; at 390 px wide nothing overflows sideways."""
    colors = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme=scheme)
        opened = context.new_page()
        opened.goto(f"http://127.0.0.1:{port_of(daemon)}/")
        logged_in(opened)
        colors[scheme] = opened.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert opened.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        context.close()
    assert colors == {"light": "rgb(246, 247, 249)", "dark": "rgb(17, 20, 24)"}
