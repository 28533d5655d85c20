"""`heapwatch --web`: the token and Origin checks, and the dashboard driven in a real Chromium."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.web import WebAddressError, is_loopback, parse_address

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|[PX^_].*?\x1b\\|\][^\x07]*\x07|.)", re.S)

aiohttp = pytest.importorskip("aiohttp")
pytest.importorskip("textual_serve")


def test_parse_address() -> None:
    assert parse_address("8000") == ("127.0.0.1", 8000)
    assert parse_address("localhost:0") == ("localhost", 0)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    for bad in ("", "x", "host:", "1:99999", "1.2.3.4:-1"):
        with pytest.raises(WebAddressError):
            parse_address(bad)


def test_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.0.1") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    assert not is_loopback("example.org")


def _heapwatch(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--web", "nope"), "--web takes [HOST:]PORT"),
        (("--web", "70000"), "port must be 0 to 65535"),
        (("--web", "0", "--report", "r.json"), "--report cannot be used with --web"),
        (("--web", "0", "--headless"), "--headless cannot be used with --web"),
    ],
)
def test_bad_web_flags(args: tuple[str, ...], message: str) -> None:
    result = _heapwatch(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


class Served:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.base, _, token = url.partition("/?token=")
        self.token = token
        self.hostport = self.base.removeprefix("http://")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--web", "127.0.0.1:0", "--scenario", "demo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/\?token=[\w-]+)", line)
        assert match, f"no URL in {line!r}; stderr: {process.stderr.read() if process.stderr else ''}"
        yield Served(process, match.group(1))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _status(url: str, **headers: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        return answer.status


async def _ws_status(url: str, **headers: str) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, headers=headers) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as error:
            return error.status


async def test_the_page_and_socket_need_the_token_and_the_origin(served: Served) -> None:
    base, token = served.base, served.token
    assert await _status(f"{base}/") == 403
    assert await _status(f"{base}/?token=wrong") == 403
    assert await _status(served.url) == 200
    async with aiohttp.ClientSession() as session, session.get(served.url) as page:
        assert f"/ws/{token}" in await page.text()
    ws = base.replace("http", "ws", 1)
    origin = base
    assert await _ws_status(f"{ws}/ws/wrong?width=80&height=24", Origin=origin) == 403
    assert await _ws_status(f"{ws}/ws/{token}?width=80&height=24") == 403  # no Origin at all
    assert await _ws_status(
        f"{ws}/ws/{token}?width=80&height=24", Origin="http://evil.example"
    ) == 403
    # A DNS-rebinding page reaches the same address under a host name of its own.
    assert await _status(served.url, Host="evil.example") in (403, 421)
    # The server did not start a session for any of these.
    assert served.process.poll() is None


async def test_sigterm_stops_the_server_with_status_0(served: Served) -> None:
    served.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(served.process.wait, 15) == 0


def _chromium() -> str | None:
    return os.environ.get("HEAPWATCH_CHROMIUM") or shutil.which("chromium")


class Screen:
    """What the page's terminal was sent (its websocket frames), read as plain text."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def watch(self, page) -> None:
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived",
                lambda data: self.received.append(
                    data if isinstance(data, bytes) else data.encode()
                ),
            ),
        )

    def mark(self) -> int:
        return len(self.received)

    def text(self, start: int = 0) -> str:
        return ANSI.sub("", b"".join(self.received[start:]).decode("utf-8", "replace"))

    async def wait_for(self, pattern: str, start: int, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not re.search(pattern, self.text(start)):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{pattern!r} never reached the page")
            await asyncio.sleep(0.2)


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed")
async def test_the_dashboard_in_chromium(served: Served, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    screen = Screen()

    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=_chromium(),
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
            ],
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            screen.watch(page)
            await page.goto(served.url)
            await page.wait_for_selector("body.-first-byte", timeout=30_000)
            await screen.wait_for(r"heapwatch.*demo.*seed", 0)
            shot = os.environ.get("HEAPWATCH_WEB_SCREENSHOT")
            await page.click("#terminal")

            mark = screen.mark()
            await page.keyboard.press("b")
            await screen.wait_for(r"burst of \d+", mark)

            if shot:
                await asyncio.sleep(2)
                await page.screenshot(path=shot)

            mark = screen.mark()
            await page.keyboard.press("?")
            await screen.wait_for(r"heapwatch keys", mark)
            await page.keyboard.press("Escape")
            await asyncio.sleep(0.5)  # ESC then q at once would read as alt+q

            await page.keyboard.press("q")
            await page.wait_for_selector("body.-closed", state="attached", timeout=30_000)
        finally:
            await browser.close()
    # Ending one page's session leaves the server serving the next page.
    assert served.process.poll() is None
    assert await _status(served.url) == 200
