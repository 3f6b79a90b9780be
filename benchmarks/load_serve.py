"""Load on ``quag serve``: concurrent questions about cached videos while new videos are uploaded (not collected by
pytest). Everything runs on this machine: the server listens on 127.0.0.1 only, every loop is bounded in count and
time, and the script stops the server it started.

Run: ``.venv/bin/python benchmarks/load_serve.py [--clients 8] [--questions 5] [--uploads 4]``
(default checkpoint: the example model of ``make example``, ``runs/sim_speech_cpu/checkpoints/best``).

1. Start ``quag serve`` in a subprocess with a fresh cache folder and wait for ``/api/health``.
2. Warm-up: upload the example videos (``examples/*.mp4``) and wait until they are encoded.
3. Load: ``--clients`` threads each ask ``--questions`` questions about those (cached) videos, while ``--uploads``
   threads each upload a new generated video (distinct content: it is transcribed and encoded) and wait for it.
4. Print a Markdown table: latency p50/p95/max per request kind (and the model's own time per question, the
   answers' ``seconds``), errors, and the server's peak memory (VmHWM of its process) after the warm-up and at
   the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SPEECH = REPO / "tests" / "pipeline" / "fixtures" / "speech.ogg"
QUESTIONS = (
    "How do I make a grilled cheese sandwich?",
    "Butter the bread",
    "How do I repot a plant?",
    "Water the plant",
    "Cook until golden",
    "Loosen the roots",
    "Heat the pan",
    "Add fresh soil",
)


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float | None, error: str | None = None) -> None:
        with self.lock:
            self.latencies.setdefault(kind, [])
            self.errors.setdefault(kind, [])
            if error is None and seconds is not None:
                self.latencies[kind].append(seconds)
            else:
                self.errors[kind].append(error or "no answer")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mib(pid: int) -> tuple[float, float]:
    """(VmHWM, VmRSS) of a process in MiB, from /proc (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmHWM"], fields["VmRSS"]


def make_clip(path: Path, seconds: int, colour: tuple[int, int, int]) -> Path:
    """A ``seconds`` long H.264 + AAC video of one colour, with the speech fixture repeated on its audio track."""
    import av

    from quag.pipeline.video import decode_audio

    speech = decode_audio(SPEECH, 16000)
    audio = np.resize(speech, seconds * 16000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(4))
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        astream = container.add_stream("aac", rate=16000, layout="mono")
        img = np.empty((64, 96, 3), np.uint8)
        img[:] = colour
        for _ in range(seconds * 4):
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        for start in range(0, len(pcm), 1024):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + 1024], format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            for packet in astream.encode(frame):
                container.mux(packet)
        for packet in astream.encode():
            container.mux(packet)
    return path


def upload_and_wait(client: object, path: Path, deadline: float, results: Results | None) -> str | None:
    """Upload ``path``, then poll until it is encoded; records ``upload`` and ``upload -> ready`` latencies."""
    import httpx

    assert isinstance(client, httpx.Client)
    start = time.perf_counter()
    try:
        with open(path, "rb") as f:
            response = client.post("/api/videos", files={"file": (path.name, f, "video/mp4")})
    except httpx.HTTPError as e:
        if results is not None:
            results.add("upload (new video)", None, f"{type(e).__name__}: {e}")
        return None
    if response.status_code not in (200, 201):
        if results is not None:
            results.add("upload (new video)", None, f"{response.status_code}: {response.text[:200]}")
        return None
    if results is not None:
        results.add("upload (new video)", time.perf_counter() - start)
    video = response.json()
    while video["progress"]["status"] in ("queued", "encoding") and time.monotonic() < deadline:
        time.sleep(0.25)
        video = client.get(f"/api/videos/{video['id']}").json()
    ok = video["progress"]["status"] == "ready"
    if results is not None:
        error = None if ok else f"{video['progress']['status']}: {video.get('error')}"
        results.add("upload -> encoded", time.perf_counter() - start if ok else None, error)
    return str(video["id"]) if ok else None


def asker(client: object, ids: list[str], n: int, offset: int, deadline: float, results: Results) -> None:
    import httpx

    assert isinstance(client, httpx.Client)
    for k in range(n):
        if time.monotonic() > deadline:
            results.add("ask (cached video)", None, "deadline passed before the question was sent")
            continue
        video_id = ids[(offset + k) % len(ids)]
        query = QUESTIONS[(offset * n + k) % len(QUESTIONS)]
        start = time.perf_counter()
        try:
            response = client.post(f"/api/videos/{video_id}/ask", json={"query": query})
        except httpx.HTTPError as e:
            results.add("ask (cached video)", None, f"{type(e).__name__}: {e}")
            continue
        if response.status_code == 200 and response.json().get("steps") is not None:
            results.add("ask (cached video)", time.perf_counter() - start)
            results.add("ask: model time", float(response.json()["seconds"]))
        else:
            results.add("ask (cached video)", None, f"{response.status_code}: {response.text[:200]}")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "runs/sim_speech_cpu/checkpoints/best")
    parser.add_argument("--examples", type=Path, default=REPO / "examples", help="videos uploaded in the warm-up")
    parser.add_argument("--clients", type=int, default=8, help="concurrent question threads")
    parser.add_argument("--questions", type=int, default=5, help="questions per client")
    parser.add_argument("--uploads", type=int, default=4, help="new videos uploaded during the questions")
    parser.add_argument("--upload-seconds", type=int, default=20, help="length of each generated upload")
    parser.add_argument("--timeout", type=float, default=600.0, help="deadline for the whole run, seconds")
    args = parser.parse_args(argv)
    import httpx

    if not args.checkpoint.is_dir():
        print(f"checkpoint {args.checkpoint} not found: train the example model with `make example`", file=sys.stderr)
        return 2
    videos = sorted(args.examples.glob("*.mp4"))
    if not videos:
        print(f"no example videos in {args.examples}", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.timeout
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="quag-load-") as work:
        cache = Path(work) / "cache"
        command = [
            sys.executable, "-m", "quag", "serve", "--checkpoint", str(args.checkpoint), "--host", "127.0.0.1",
            "--port", str(port), "--cache-dir", str(cache), "--examples", str(args.examples), "--device", "cpu",
            "--whisper-compute-type", "int8",
        ]  # fmt: skip
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log: list[str] = []
        threading.Thread(target=lambda: log.extend(iter(server.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=300.0) as client:
                t0 = time.perf_counter()
                while True:
                    if server.poll() is not None or time.monotonic() > deadline:
                        print("the server did not start:\n" + "".join(log[-30:]), file=sys.stderr)
                        return 1
                    try:
                        if client.get("/api/health").status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.25)
                startup = time.perf_counter() - t0
                t0 = time.perf_counter()
                ids = [upload_and_wait(client, v, deadline, None) for v in videos]
                if not all(ids):
                    print("the example videos could not be encoded:\n" + "".join(log[-30:]), file=sys.stderr)
                    return 1
                warm = time.perf_counter() - t0
                warm_peak, _ = peak_rss_mib(server.pid)

                clips = [
                    make_clip(Path(work) / f"upload_{i}.mp4", args.upload_seconds, (40 * i % 256, 90, 160))
                    for i in range(args.uploads)
                ]
                results = Results()
                threads = [
                    threading.Thread(
                        target=asker,
                        args=(client, [str(i) for i in ids], args.questions, c, deadline, results),
                    )
                    for c in range(args.clients)
                ]
                threads += [
                    threading.Thread(target=upload_and_wait, args=(client, clip, deadline, results)) for clip in clips
                ]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=max(1.0, deadline - time.monotonic()))
                load = time.perf_counter() - t0
                health = client.get("/api/health").json()
            peak, rss = peak_rss_mib(server.pid)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    total_errors = sum(len(v) for v in results.errors.values())
    given = " ".join(sys.argv[1:] if argv is None else argv)
    print(f"`python benchmarks/load_serve.py{' ' + given if given else ''}` (checkpoint {args.checkpoint})")
    print(
        f"server start {startup:.1f} s; warm-up: {len(videos)} example videos uploaded and encoded in {warm:.1f} s; "
        f"load phase {load:.1f} s; {os.cpu_count()} CPU cores\n"
    )
    print("| requests | count | errors | p50 (s) | p95 (s) | max (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in ("ask (cached video)", "ask: model time", "upload (new video)", "upload -> encoded"):
        values = results.latencies.get(kind, [])
        errors = results.errors.get(kind, [])
        top = max(values) if values else float("nan")
        print(
            f"| {kind} | {len(values) + len(errors)} | {len(errors)} | {percentile(values, 50):.2f} | "
            f"{percentile(values, 95):.2f} | {top:.2f} |"
        )
    print(
        f"\nserver memory: peak RSS {warm_peak:.0f} MiB after the warm-up, {peak:.0f} MiB at the end "
        f"(now {rss:.0f} MiB); questions answered {health['stats']['questions']}, "
        f"encodings {health['stats']['encodes']}"
    )
    for kind, errors in results.errors.items():
        for e in errors[:5]:
            print(f"error ({kind}): {e}", file=sys.stderr)
    return 1 if total_errors else 0


if __name__ == "__main__":
    sys.exit(main())
