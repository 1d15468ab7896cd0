"""The dashboard in a real headless Chromium (Debian's chromium, driven by Playwright) against the
local Functions host, after a demo-like run: the examples synced, nightly-report rolled back,
orders-api suspended, demo-app's image changed out of band. Every request the pages make is
recorded: none may leave loopback. Screenshots go to docs/screenshots with `make screenshots`."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import LaunchedStack
from tests.e2e.conftest import Host, start_host
from tests.e2e.ops import Ops, example, screenshots_dir

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DRIFTED = "docker.io/library/nginx:drifted"
REASON = "waiting for the orders DB migration"

# Contrast of every visible text against its effective background (WCAG 2 relative luminance).
CONTRAST_JS = """() => {
  const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bg = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const worst = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const fg = parse(getComputedStyle(el).color), b = bg(el);
    const l1 = lum(fg), l2 = lum(b), ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    if (ratio < 4.5) worst.push({text: el.textContent.trim().slice(0, 40), ratio: ratio.toFixed(2)});
  }
  return worst;
}"""
UNLABELLED_JS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')).map(c => c.outerHTML)"""


@dataclass
class Dashboard:
    ops: Ops
    host: Host
    apps: list[dict[str, Any]]
    rolled_to: str

    def url(self, path: str = "") -> str:
        return f"{self.host.url}/api/ui{path}"


@dataclass
class Browser:
    """One headless Chromium with a fresh profile; every request and console error is kept."""

    context: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def page(self, width: int = 1280, height: int = 900) -> Any:
        page = self.context.new_page()
        page.set_viewport_size({"width": width, "height": height})
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        return page


@pytest.fixture(scope="module")
def dashboard(stack: LaunchedStack) -> Iterator[Dashboard]:
    stack.reset()
    stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.1})
    ops = Ops(stack)
    assert ops.json("sync", "--yes")["outcome"] == "succeeded"  # the demo's first pass
    ops.commit({"apps/nightly-report.yaml": example("nightly-report").replace("2.0.0", "2.1.0")})
    # Ends `partial` (exit 1): the example synthesizer's image is not registered with this stand-in,
    # so its job writes no output. Only nightly-report's new revision matters here.
    ops.json("sync", "--yes", check=None)
    rolled = ops.json("rollback", "nightly-report", "--previous", "--yes")
    ops.run("suspend", "orders-api", "--reason", REASON, "--yes")
    ops.drift_image("App", "demo-app", DRIFTED)  # no pass after this: the drift is live
    host = start_host(stack, **{k: v for k, v in ops.env.items() if k.startswith("SYNOSCD_")})
    try:
        yield Dashboard(ops, host, ops.json("get", "apps")["apps"], rolled["rolledBackTo"])
    finally:
        host.stop()


def _launch(playwright: Any, **kw: Any) -> Any:
    profile = tempfile.mkdtemp(prefix="synoscd-chromium-")
    return playwright.chromium.launch_persistent_context(
        profile, executable_path=str(CHROMIUM), headless=True, args=ARGS, **kw
    )


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    assert CHROMIUM.exists(), (
        "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def chromium(playwright: Any) -> Iterator[Any]:
    context = _launch(playwright)  # one browser for the module; each test gets its own pages and records
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Browser]:
    b = Browser(chromium)
    opened = len(chromium.pages)
    try:
        yield b
    finally:
        for page in chromium.pages[opened:]:
            page.close()
    left = {urlsplit(u).hostname for u in b.requests if not u.startswith(("data:", "blob:"))}
    assert left <= LOOPBACK, f"requests left loopback: {sorted(left - LOOPBACK)}"
    assert b.requests, "the browser made requests"
    assert b.errors == [], f"console errors: {b.errors}"


def test_overview_counts_rollback_and_suspension(
    dashboard: Dashboard, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page()
    page.goto(dashboard.url("/"))
    sync = {}
    for row in dashboard.apps:
        sync[row["syncState"]] = sync.get(row["syncState"], 0) + 1
    assert sync.get("Suspended") == 2, dashboard.apps  # orders-api, and nightly-report rolled back
    for state, n in sync.items():
        assert page.get_by_test_id(f"sync-{state}").inner_text() == str(n), state
    health: dict[str, int] = {}
    for row in dashboard.apps:
        health[row["health"]] = health.get(row["health"], 0) + 1
    for state, n in health.items():
        assert page.get_by_test_id(f"health-{state}").inner_text() == str(n), state
    assert page.get_by_role("heading", name=f"{len(dashboard.apps)} apps and jobs").is_visible()
    rollback = page.locator("section.rollback")
    assert rollback.is_visible() and "nightly-report" in rollback.inner_text()
    assert dashboard.rolled_to[:12] in rollback.inner_text()
    assert REASON in page.locator("#susp-h + ul").inner_text()
    # landmarks, labels and contrast
    for role, name in (("banner", None), ("navigation", "Main"), ("main", None), ("contentinfo", None)):
        assert page.get_by_role(role, name=name).count() == 1, role
    assert page.evaluate(CONTRAST_JS) == []
    page.get_by_role("button", name="Refresh now").click()  # the script fetches the page again
    page.locator("#refresh-status", has_text="Updated").wait_for()
    page.screenshot(path=str(screenshots_dir(tmp_path) / "overview.png"), full_page=True)


def test_filtering_finds_an_app(dashboard: Dashboard, browser: Browser) -> None:
    page = browser.page()
    page.goto(dashboard.url("/apps"))
    assert page.evaluate(UNLABELLED_JS) == []
    rows = page.locator("#apps-table tbody tr:visible")
    assert rows.count() == len(dashboard.apps)
    page.get_by_label("Name").fill("orders")  # filters as you type
    assert rows.count() == 1 and "orders-api" in rows.first.inner_text()
    assert page.get_by_test_id("shown").inner_text() == "1"
    page.get_by_label("Name").fill("")
    page.get_by_label("Sync state").select_option("Suspended")
    page.get_by_role("button", name="Filter").click()  # the form, as without JavaScript
    page.wait_for_url("**/apps?*sync=Suspended*")
    names = sorted(r.split("\t")[0] for r in rows.all_inner_texts())
    assert names == ["nightly-report", "orders-api"]
    page.get_by_role("link", name="Name").click()  # sort by name, descending
    page.wait_for_url("**dir=desc*")
    assert [r.split("\t")[0] for r in rows.all_inner_texts()] == ["orders-api", "nightly-report"]
    assert page.locator("th[aria-sort=descending]").inner_text().startswith("Name")
    assert page.evaluate(CONTRAST_JS) == []


def test_app_detail_of_a_drifted_app_shows_live_and_desired(
    dashboard: Dashboard, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page()
    page.goto(dashboard.url("/apps"))
    page.get_by_role("link", name="demo-app").click()
    page.wait_for_url("**/apps/App/demo-app")
    row = page.locator("#drift tbody tr").filter(has_text="image")
    assert row.count() == 1
    assert row.locator("th").inner_text() == "template.containers[0].image"
    assert row.locator("td.live").inner_text() == DRIFTED
    example_image = "mcr.microsoft.com/azuredocs/containerapps-helloworld:latest"
    assert row.locator("td.desired").inner_text() == example_image
    assert page.get_by_role("heading", name="Timeline").is_visible()
    assert page.locator("#rev-h + p + .scroll tbody tr").count() == 1
    assert page.evaluate(CONTRAST_JS) == []
    page.screenshot(path=str(screenshots_dir(tmp_path) / "app-detail.png"), full_page=True)


def test_suspended_and_rolled_back_apps_show_who_and_why(dashboard: Dashboard, browser: Browser) -> None:
    page = browser.page()
    page.goto(dashboard.url("/apps/App/orders-api"))
    assert page.get_by_role("heading", name="Suspended").is_visible()
    assert page.get_by_test_id("suspended-reason").inner_text() == REASON
    by = page.get_by_test_id("suspended-by").inner_text()
    assert "@" in by, "user@host of whoever ran synos suspend"
    page.goto(dashboard.url("/apps/Job/nightly-report"))
    heading = page.get_by_role("heading", name=f"Rolled back to {dashboard.rolled_to[:12]}")
    assert (
        heading.is_visible()
        and "synos resume nightly-report" in page.locator("section.rollback").inner_text()
    )
    assert page.get_by_test_id("suspended-by").inner_text() == by
    # the other pages render too
    for path, heading_text in (
        ("/operation", "Sync operation"),
        ("/history", "History"),
        ("/tombstones", "Tombstones"),
    ):
        page.goto(dashboard.url(path))
        assert page.get_by_role("heading", level=1).inner_text() == heading_text


def test_reading_works_without_javascript_and_on_a_phone(dashboard: Dashboard, playwright: Any) -> None:
    context = _launch(playwright, java_script_enabled=False)
    seen: list[str] = []
    try:
        page = context.new_page()
        page.on("request", lambda r: seen.append(r.url))
        page.goto(dashboard.url("/apps?q=demo"))
        assert page.locator("#apps-table tbody tr").all_inner_texts()[0].startswith("demo-app")
        assert page.locator("#refresh").is_hidden(), "the refresh controls need the script"
        phone = context.new_page()
        phone.set_viewport_size({"width": 375, "height": 740})
        phone.on("request", lambda r: seen.append(r.url))
        for path in ("/", "/apps", "/apps/App/demo-app"):
            phone.goto(dashboard.url(path))
            overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways on a phone by {overflow} px"
            assert phone.get_by_role("navigation", name="Main").is_visible()
    finally:
        context.close()
    assert {urlsplit(u).hostname for u in seen} <= LOOPBACK


def test_json_api_has_the_cli_shapes_and_renders_no_secret(dashboard: Dashboard) -> None:
    api = f"{dashboard.host.url}/api/v1"

    def same(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "lastSyncedAgo"} for r in rows]  # "3s ago" moves

    assert same(requests.get(f"{api}/apps", timeout=30).json()["apps"]) == same(dashboard.apps)
    described = requests.get(f"{api}/apps/orders-api", timeout=30).json()
    assert described == dashboard.ops.json("status", "app", "orders-api")
    history = requests.get(f"{api}/apps/nightly-report/history", timeout=30).json()
    assert history == dashboard.ops.json("history", "nightly-report")
    assert set(requests.get(f"{api}/status", timeout=30).json()) == set(dashboard.ops.json("get", "status"))
    assert requests.get(f"{api}/apps/nobody", timeout=30).status_code == 404
    secrets = [dashboard.ops.env[k] for k in ("SYNOSCD_STATE_STORE", "SYNOSCD_GITHUB_WEBHOOK_SECRET")]
    for path in (
        "/api/ui/",
        "/api/ui/apps",
        "/api/ui/apps/App/orders-api",
        "/api/v1/status",
        "/api/v1/apps/orders-api",
    ):
        text = requests.get(f"{dashboard.host.url}{path}", timeout=30).text
        assert not any(s in text for s in secrets) and "AccountKey" not in text, path


def test_behind_easy_auth_only_signed_in_requests_are_served(
    dashboard: Dashboard, stack: LaunchedStack
) -> None:
    env = {k: v for k, v in dashboard.ops.env.items() if k.startswith("SYNOSCD_")}
    host = start_host(stack, **{**env, "SYNOSCD_UI_AUTH": "easyauth"})
    try:
        for path in ("/api/ui/", "/api/ui/apps", "/api/v1/apps", "/api/ui/static/app.css"):
            assert requests.get(f"{host.url}{path}", timeout=30).status_code == 401, path
        signed_in = {
            "X-MS-CLIENT-PRINCIPAL-ID": "00000000-0000-0000-0000-000000000001",
            "X-MS-CLIENT-PRINCIPAL-NAME": "oncall@contoso.com",
        }
        page = requests.get(f"{host.url}/api/ui/", headers=signed_in, timeout=30)
        assert page.status_code == 200 and "Signed in as oncall@contoso.com" in page.text
        assert requests.get(f"{host.url}/api/v1/apps", headers=signed_in, timeout=30).status_code == 200
        assert requests.get(f"{host.url}/api/health", timeout=30).status_code == 200, "health stays open"
        webhook = requests.post(f"{host.url}/api/github/webhook", data=b"{}", timeout=30)
        assert webhook.status_code == 401, "the webhook keeps its signature check"
    finally:
        host.stop()
