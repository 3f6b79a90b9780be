"""``quag serve`` itself: option checks, and the real command in a subprocess answering over HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quag.cli import main
from quag.serve.server import ServeOptions, url
from tests.helpers import REPO

pytest.importorskip("fastapi", reason="the server needs the serve extra: pip install quag[serve]")


def test_missing_checkpoint_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--checkpoint", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nothing not found" in err and "--checkpoint" in err


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="--port"):
        ServeOptions(checkpoint=Path("x"), port=70000)
    with pytest.raises(ValueError, match="--max-upload-mb"):
        ServeOptions(checkpoint=Path("x"), max_upload_mb=0)
    assert ServeOptions(checkpoint=Path("x")).host == "127.0.0.1"
    assert url(ServeOptions(checkpoint=Path("x"), host="::1", port=9000)) == "http://[::1]:9000/"


@pytest.mark.slow
def test_quag_serve_answers_over_http(speech_checkpoint: Path, video_dir: Path, tmp_path: Path) -> None:
    import httpx

    from tests.serve.test_browser import free_port

    port = free_port()
    command = [
        sys.executable, "-m", "quag", "serve", "--checkpoint", str(speech_checkpoint), "--port", str(port),
        "--cache-dir", str(tmp_path / "cache"), "--examples", str(video_dir), "--whisper-compute-type", "int8",
        "--device", "cpu",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "quag serve did not answer within 120 s"
                try:
                    health = client.get("/api/health").json()
                    break
                except httpx.HTTPError:
                    time.sleep(0.3)
            assert health["checkpoint"] == str(speech_checkpoint) and health["speech_only"]
            video = client.post("/api/examples/other.mp4").json()
            answer = client.post(f"/api/videos/{video['id']}/ask", json={"query": "Pour the milk"})  # waits
            assert answer.status_code == 200 and answer.json()["video"] == "other.mp4"
            assert client.get("/").status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert f"http://127.0.0.1:{port}/" in log.read_text()
