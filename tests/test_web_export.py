"""In the browser, `w` in a detail screen is a download, not a file on the serving machine."""

from __future__ import annotations

import asyncio

import pytest
from test_web import Screen, Served, _chromium, served  # noqa: F401  (the served fixture)


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed")
async def test_w_in_a_detail_is_a_download_in_the_browser(served: Served, tmp_path) -> None:  # noqa: F811
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=_chromium(),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800},
                                          accept_downloads=True)
            screen = Screen()
            screen.watch(page)
            await page.goto(served.url)
            await page.wait_for_selector("body.-first-byte", timeout=30_000)
            await screen.wait_for(r"heapwatch.*demo.*seed", 0)
            await page.click("#terminal", position={"x": 5, "y": 5})
            mark = screen.mark()
            await page.keyboard.press("b")  # items on the heap, whose table has the focus
            await screen.wait_for(r"burst of \d+", mark)
            mark = screen.mark()
            await page.keyboard.press("Enter")  # the first queued item's detail
            await screen.wait_for(r"queued item at priority", mark)
            # textual-serve opens the single-use download URL in a new window.
            downloads: asyncio.Queue = asyncio.Queue()
            page.context.on("page", lambda popup: popup.on("download", downloads.put_nowait))
            page.on("download", downloads.put_nowait)
            await page.keyboard.press("w")
            download = await asyncio.wait_for(downloads.get(), 20)
            assert download.suggested_filename.startswith("heapwatch-item-")
            text = (tmp_path / "got.txt")
            await download.save_as(text)
            assert "queued item at priority" in text.read_text()
        finally:
            await browser.close()
    # Nothing was written where the server runs (its cwd is the served fixture's tmp_path).
    assert not list(tmp_path.glob("heapwatch-item-*.txt"))
