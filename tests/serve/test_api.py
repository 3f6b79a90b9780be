"""The JSON API with FastAPI's test client, on a tiny speech-only model: upload, ask, cache hits, refusals, traversal
attempts and concurrent questions."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server needs the serve extra: pip install quag[serve]")

from fastapi.testclient import TestClient  # noqa: E402

from quag.pipeline.predictor import Predictor  # noqa: E402
from quag.serve.app import create_app  # noqa: E402
from quag.serve.service import VideoService, wait_ready  # noqa: E402

LIMIT = 2 * 2**20  # the test app's upload limit


@pytest.fixture
def client(service: VideoService) -> Iterator[TestClient]:
    with TestClient(create_app(service, max_upload_bytes=LIMIT)) as c:
        yield c


def upload(client: TestClient, path: Path, name: str | None = None) -> tuple[int, dict]:
    with open(path, "rb") as f:
        response = client.post("/api/videos", files={"file": (name or path.name, f, "video/mp4")})
    return response.status_code, response.json()


def ready(client: TestClient, service: VideoService, video_id: str) -> dict:
    wait_ready(service, [video_id], timeout=120)
    body = client.get(f"/api/videos/{video_id}").json()
    assert body["progress"]["status"] == "ready", body
    return body


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_upload_ask_and_cache_hit(client: TestClient, service: VideoService, video_dir: Path) -> None:
    status, video = upload(client, video_dir / "cooking.mp4")
    assert status == 201, video
    assert video["name"] == "cooking.mp4" and video["media_type"] == "video/mp4"
    assert video["duration"] == pytest.approx(6.0) and video["progress"]["status"] in ("queued", "encoding", "ready")
    body = ready(client, service, video["id"])
    assert body["transcript"] and "milk" in " ".join(c["text"] for c in body["transcript"]).lower()
    assert body["progress"]["fraction"] == 1.0

    answers = []
    for query in ("Pour the milk", "Stir it in a bowl"):  # several questions about one video
        response = client.post(f"/api/videos/{video['id']}/ask", json={"query": query})
        assert response.status_code == 200, response.text
        answers.append(response.json())
    for answer, query in zip(answers, ("Pour the milk", "Stir it in a bowl"), strict=True):
        s, e = answer["moment"]
        assert answer["query"] == query and answer["video"] == "cooking.mp4" and answer["video_id"] == video["id"]
        assert 0 <= s <= e <= 6.0 and answer["steps"]
        assert all(
            s - 1 <= st["start"] <= st["end"] <= e + 1 and isinstance(st["caption"], str) for st in answer["steps"]
        )
    assert service.stats["encodes"] == 1 and service.stats["questions"] == 2

    # the same bytes under another name: the same video, no second encoding
    status, again = upload(client, video_dir / "cooking.mp4", name="copy of cooking.mp4")
    assert status == 200 and again["id"] == video["id"] and again["progress"]["status"] == "ready"
    assert service.stats["encodes"] == 1

    media = client.get(video["media_url"], headers={"Range": "bytes=0-99"})
    assert media.status_code == 206 and len(media.content) == 100
    assert media.content == (video_dir / "cooking.mp4").read_bytes()[:100]

    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["speech_only"] and health["videos"]["ready"] == 1


@pytest.mark.slow
def test_a_new_server_reuses_encoded_features(
    predictor: Predictor, tmp_path: Path, video_dir: Path, client: TestClient, service: VideoService
) -> None:
    status, video = upload(client, video_dir / "other.mp4")
    assert status == 201
    ready(client, service, video["id"])
    cached = service.stats["feature_cache_hits"]
    # a second service (a restarted server) with an empty registry reads the features from the predictor's cache
    second = VideoService(predictor, service.cache_dir, max_videos=2)
    try:
        with TestClient(create_app(second)) as c2:
            status, again = upload(c2, video_dir / "other.mp4")
            assert status == 201 and again["id"] == video["id"]
            ready(c2, second, again["id"])
            assert second.stats["feature_cache_hits"] == 1 and cached == 0
    finally:
        second.close()


def test_bad_uploads_are_refused_with_a_clear_message(
    client: TestClient, service: VideoService, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a video at all\n" * 50)
    status, body = upload(client, text)
    assert status == 415 and body["detail"].startswith("notes.txt: ") and "upload a video file" in body["detail"]
    assert str(service.cache_dir) not in body["detail"] and str(tmp_path) not in body["detail"]

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    status, body = upload(client, empty)
    assert status == 400 and "empty" in body["detail"]

    # audio only: PyAV opens it, but there is no video stream (the same refusal as `quag predict`)
    from tests.pipeline.helpers import load_speech

    audio = tmp_path / "speech.m4a"
    _write_audio(audio, load_speech())
    status, body = upload(client, audio)
    assert status == 415 and "no video stream" in body["detail"]

    response = client.post("/api/videos", data={"not_file": "x"})
    assert response.status_code == 422
    assert service.videos() == [] and files_under(service.cache_dir) == set()


def test_oversized_uploads_get_413(client: TestClient, service: VideoService, tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (LIMIT + 200_000))
    status, body = upload(client, big)
    assert status == 413 and "2.0 MiB" in body["detail"] and "--max-upload-mb" in body["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: cut off while it arrives
        boundary = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
        yield boundary
        for _ in range(40):
            yield b"\0" * 100_000

    response = client.post("/api/videos", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert response.status_code == 413
    question = client.post(f"/api/videos/{'0' * 32}/ask", json={"query": "x" * 100_000})
    assert question.status_code == 413 and "(64 KiB)" in question.json()["detail"]
    assert files_under(service.incoming_dir) == set() and service.videos() == []


def test_unknown_ids_and_path_traversal(client: TestClient, service: VideoService, video_dir: Path) -> None:
    unknown = "0123456789abcdef0123456789abcdef"
    assert client.get(f"/api/videos/{unknown}").status_code == 404
    response = client.post(f"/api/videos/{unknown}/ask", json={"query": "hello"})
    assert response.status_code == 404 and "upload it first" in response.json()["detail"]
    for bad in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "ABC", unknown + "0", "x" * 32):
        for path in (f"/api/videos/{bad}", f"/api/videos/{bad}/media"):
            response = client.get(path)
            assert response.status_code in (404, 422), (path, response.status_code)
            assert "root:" not in response.text
    for bad in ("../app.js", "..%2Fservice.py", "%2e%2e%2fservice.py", "service.py", "__init__.py"):
        response = client.get(f"/static/{bad}")
        assert response.status_code == 404, bad
    assert client.post("/api/examples/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.post("/api/examples/nothing.mp4").status_code == 404
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/quag.css").status_code == 200

    # an upload named like a path is stored under its content hash, inside the cache
    with open(video_dir / "other.mp4", "rb") as f:
        response = client.post("/api/videos", files={"file": ("../../../../tmp/evil.mp4", f, "video/mp4")})
    assert response.status_code == 201, response.text
    video = response.json()
    assert video["name"] == "evil.mp4"
    stored = files_under(service.cache_dir)
    assert stored == {service.videos_dir / f"{video['id']}.mp4"} and not Path("/tmp/evil.mp4").exists()


def test_examples_are_listed_and_registered(client: TestClient, service: VideoService) -> None:
    examples = client.get("/api/examples").json()
    assert [e["name"] for e in examples] == ["cooking.mp4", "other.mp4"] and examples[0]["id"] is None
    assert examples[0]["query"] == "Make pancakes" and examples[1]["query"] is None  # from cooking.json
    response = client.post("/api/examples/other.mp4")
    assert response.status_code == 201
    video = response.json()
    assert video["source"] == "example" and video["name"] == "other.mp4"
    again = client.post("/api/examples/other.mp4")
    assert again.status_code == 200 and again.json()["id"] == video["id"]
    assert client.get("/api/examples").json()[1]["id"] == video["id"]
    wait_ready(service, [video["id"]], timeout=120)


@pytest.mark.slow
def test_concurrent_questions_all_answered(client: TestClient, service: VideoService, video_dir: Path) -> None:
    _, first = upload(client, video_dir / "cooking.mp4")
    _, second = upload(client, video_dir / "other.mp4")
    results: list[tuple[str, int, dict]] = []
    lock = threading.Lock()

    def ask(video_id: str, n: int) -> None:  # asked while the videos may still be encoding: the questions queue
        response = client.post(f"/api/videos/{video_id}/ask", json={"query": f"question {n} about milk"})
        with lock:
            results.append((video_id, response.status_code, response.json()))

    threads = [threading.Thread(target=ask, args=(v["id"], n)) for n in range(6) for v in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert len(results) == 12 and all(code == 200 for _, code, _ in results), results
    assert all(body["video_id"] == vid for vid, _, body in results)
    assert service.stats["questions"] == 12 and service.stats["encodes"] == 2


def test_questions_are_validated(client: TestClient, service: VideoService) -> None:
    unknown = "0123456789abcdef0123456789abcdef"
    assert client.post(f"/api/videos/{unknown}/ask", json={"query": ""}).status_code == 422
    assert client.post(f"/api/videos/{unknown}/ask", json={"nothing": 1}).status_code == 422
    broken = client.post(f"/api/videos/{unknown}/ask", content=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 422


def test_openapi_schema_documents_the_api(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    assert {"/api/videos", "/api/videos/{video_id}", "/api/videos/{video_id}/ask", "/api/health"} <= set(paths)
    assert "multipart/form-data" in paths["/api/videos"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 404  # Swagger UI would load its scripts from a CDN
    page = client.get("/").text
    assert "/static/app.js" in page and "http://" not in page and "https://" not in page
    for name in ("app.js", "app.css", "quag.css"):
        assert "https://" not in client.get(f"/static/{name}").text
    assert json.dumps(schema)  # serialisable


def _write_audio(path: Path, samples: object, rate: int = 16000) -> None:
    import av
    import numpy as np

    pcm = (np.clip(np.asarray(samples), -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        for start in range(0, len(pcm), 1024):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + 1024], format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.slow
def test_registry_and_memos_stay_bounded(predictor: Predictor, tmp_path: Path, video_dir: Path) -> None:
    from tests.pipeline.helpers import load_speech, make_video

    third = make_video(tmp_path / "third.mp4", 12, 4, audio=load_speech())
    bounded = VideoService(predictor, tmp_path / "bounded", max_videos=2)
    try:
        with TestClient(create_app(bounded)) as c:
            ids = []
            for path in (video_dir / "cooking.mp4", video_dir / "other.mp4", third):
                status, video = upload(c, path)
                assert status == 201
                ids.append(video["id"])
                wait_ready(bounded, [video["id"]], timeout=120)
            assert [v.id for v in bounded.videos()] == ids[1:]  # the least recently used one is dropped
            assert c.get(f"/api/videos/{ids[0]}").status_code == 404
            assert sorted(p.name for p in bounded.videos_dir.iterdir()) == sorted(f"{i}.mp4" for i in ids[1:])
            assert set(predictor._videos) <= {v.features.sha256 for v in bounded.videos() if v.features}
            response = c.post(f"/api/videos/{ids[2]}/ask", json={"query": "milk"})
            assert response.status_code == 200
    finally:
        bounded.close()
