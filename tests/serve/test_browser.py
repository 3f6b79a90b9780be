"""The page in a real browser: Playwright drives Debian's headless Chromium against ``quag serve`` on 127.0.0.1.

It uploads a video, asks a question, waits for the timeline, checks the steps shown against the API's answer, and
clicks a step to see the player move there; a screenshot is saved in the test's folder. ``.ci/run`` installs
Chromium with apt when it is missing; without it (and without Playwright) the test skips, saying why.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quag.serve.service import VideoService

pytest.importorskip("fastapi", reason="the server needs the serve extra: pip install quag[serve]")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs Playwright: pip install playwright"
)


def chromium_path() -> str | None:
    """``$QUAG_CHROMIUM``, else ``chromium`` on the PATH (Debian's package)."""
    candidates = [os.environ.get("QUAG_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server_url(service: VideoService) -> Iterator[str]:
    """The app served by uvicorn in a thread, on a free port of 127.0.0.1."""
    import uvicorn

    from quag.serve.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.slow
def test_upload_ask_and_play_a_step(server_url: str, video_dir: Path, tmp_path: Path) -> None:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium: `apt-get install chromium` (.ci/run does it when it can)")
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.goto(server_url + "/")
            assert page.title() == "quag: ask a video"
            sync_api.expect(page.locator("#model")).to_contain_text("speech-only")
            assert page.locator("#examples button").all_inner_texts() == ["cooking.mp4", "other.mp4"]

            page.set_input_files("#file", str(video_dir / "cooking.mp4"))
            sync_api.expect(page.locator("#ask")).to_be_enabled(timeout=120_000)  # transcribed and encoded
            sync_api.expect(page.locator("#video-name")).to_contain_text("cooking.mp4")
            page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=30_000)

            page.fill("#query", "Pour the milk into a bowl")
            with page.expect_response(lambda r: r.url.endswith("/ask")) as asked:
                page.click("#ask")
            answer = asked.value.json()
            steps = answer["steps"]
            assert steps, answer
            sync_api.expect(page.locator("#steps li")).to_have_count(len(steps))
            assert page.locator("#timeline g.step").count() == len(steps)
            assert page.locator("#history li").count() == 1
            assert page.locator("#answer-title").inner_text() == "Pour the milk into a bowl"

            # move the player away, then click the last step: the player jumps to its start
            target = steps[-1]["start"]
            page.evaluate("t => { const v = document.getElementById('player'); v.pause(); v.currentTime = t; }", 5.5)
            page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 5.5) < 0.3")
            page.locator("#steps li").last.click()
            page.wait_for_function(
                "t => { const v = document.getElementById('player'); return v.currentTime >= t - 0.3 "
                "&& v.currentTime < t + 1.5; }",
                arg=target,
                timeout=10_000,
            )
            # and a step on the timeline does the same
            page.evaluate("() => { const v = document.getElementById('player'); v.pause(); v.currentTime = 5.5; }")
            page.locator("#timeline g.step").first.click()
            page.wait_for_function(
                "t => Math.abs(document.getElementById('player').currentTime - t) < 1.5", arg=steps[0]["start"]
            )
            page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "serve.png").stat().st_size > 10_000
    assert not errors, errors
