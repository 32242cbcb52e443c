"""Browser tests: the real API (uvicorn) and a real Celery worker on SQLite + the filesystem
broker, driven through Debian's headless Chromium with Playwright's Python API.

Playwright's own browser download does not work offline, so the system Chromium is launched
through ``executable_path``; without it (or without Playwright) the tests are skipped.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.common.mirror import ModelsMirror, models_mirror
from tests.common.services import REQUIRE_SERVICES, sqlite_url
from tests.common.stack import ROOT, Stack, stack_env
from tests.common.tiers import mark_tier
from tests.common.tiny_assets import install_tiny_assets

CHROMIUM = os.environ.get("SVC_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def mirror() -> Iterator[ModelsMirror]:
    """The models mirror the stack downloads from (tests put files into ``mirror.files``)."""
    with models_mirror() as m:
        yield m


@pytest.fixture(scope="session")
def stack(tmp_path_factory, mirror) -> Iterator[Stack]:
    """API + one worker (both queues) + users alice and bob, for the whole browser session."""
    data = tmp_path_factory.mktemp("browser-stack")
    logs = data / "logs"
    logs.mkdir()
    extra = {"SVC_MODELS_MIRROR": mirror.url}
    if os.environ.get("SVC_TEST_MODELS_DIR"):  # installed (tiny or real) model assets
        extra["SVC_MODELS_DIR"] = os.environ["SVC_TEST_MODELS_DIR"]
        assets = {"ppg_model": "whisper-tiny", "vec_model": "hubert-soft"}
    else:  # tiny official-format models under the registry's names
        assets = install_tiny_assets(data / "models")
    s = Stack(
        env=stack_env(data, sqlite_url(data / "svc.db"), "filesystem://", **extra),
        data_dir=data,
        log_dir=logs,
    )
    try:
        s.create_user("alice")
        s.create_user("bob")
        s.start_api()
        s.start_worker()
        s.wait_for_worker()
        s.assets = assets  # type: ignore[attr-defined]
        yield s
    finally:
        s.stop()
        for f in sorted(logs.iterdir()):
            text = f.read_text(errors="replace")
            if "Traceback" in text:
                sys.stderr.write(f"\n--- {f.name} (tail) ---\n{text[-3000:]}\n")


@pytest.fixture(scope="session")
def browser():
    if REQUIRE_SERVICES:  # CI: a missing browser is a failure, not a skip
        import playwright.sync_api as sync_api

        assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}"
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
        if not Path(CHROMIUM).exists():
            pytest.skip(f"no Chromium at {CHROMIUM}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Session:
    """A browser context (its own cookie jar) signed in as one user, plus helpers."""

    page: object
    stack: Stack
    name: str
    errors: list[str] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def goto(self, hash_route: str) -> None:
        self.page.goto(f"{self.stack.url}/{hash_route}")

    def login(self, token: str) -> None:
        self.goto("#/voices")
        self.page.get_by_label("Access token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("heading", name="Voices", exact=True).wait_for()

    def drop_files(self, selector: str, files: list[Path | tuple[str, bytes]]) -> None:
        """Drop files onto an element as a real drag-and-drop does (a DataTransfer of Files)."""
        payload = []
        for f in files:
            name, data = (f.name, f.read_bytes()) if isinstance(f, Path) else f
            payload.append({"name": name, "b64": base64.b64encode(data).decode()})
        dt = self.page.evaluate_handle(
            """(files) => {
                const dt = new DataTransfer();
                for (const f of files) {
                    const bin = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
                    dt.items.add(new File([bin], f.name, {type: 'audio/wav'}));
                }
                return dt;
            }""",
            payload,
        )
        self.page.dispatch_event(selector, "dragenter", {"dataTransfer": dt})
        self.page.dispatch_event(selector, "dragover", {"dataTransfer": dt})
        self.page.dispatch_event(selector, "drop", {"dataTransfer": dt})

    @contextmanager
    def slow_upload(self, bytes_per_s: int) -> Iterator[None]:
        """Throttle the network (Chrome DevTools Protocol) so upload progress is observable."""
        cdp = self.page.context.new_cdp_session(self.page)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": bytes_per_s,
            },
        )
        try:
            yield
        finally:
            cdp.send(
                "Network.emulateNetworkConditions",
                {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
            )
            cdp.detach()


@pytest.fixture
def open_session(browser, stack, request):
    """open_session(user) -> a signed-in Session; uncaught page errors fail the test."""
    contexts = []
    sessions: list[Session] = []

    def make(user: str | None, *, login: bool = True) -> Session:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        ctx.set_default_timeout(20_000)
        contexts.append(ctx)
        page = ctx.new_page()
        s = Session(page=page, stack=stack, name=user or "anonymous")
        page.on("pageerror", lambda exc: s.errors.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                s.errors.append(f"console: {msg.text}")
                if msg.type == "error" and not _expected_console_error(msg.text)
                else None
            ),
        )
        sessions.append(s)
        if user and login:
            s.login(stack.tokens[user])
        return s

    yield make
    failed = request.node.rep_call.failed if hasattr(request.node, "rep_call") else False
    for i, s in enumerate(sessions):
        if failed:
            s.shot(f"FAILED-{request.node.name}-{i}")
    for ctx in contexts:
        ctx.close()
    errors = [e for s in sessions for e in s.errors]
    assert not errors, f"JavaScript errors in the page: {errors}"


def _expected_console_error(text: str) -> bool:
    # Chromium logs every 4xx/5xx resource load; the UI handles those responses itself.
    return bool(re.search(r"Failed to load resource: the server responded with a status of", text))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this tier carries the ``browser`` marker (tests/common/tiers.py)."""
    mark_tier(items, Path(__file__).parent, "browser")
