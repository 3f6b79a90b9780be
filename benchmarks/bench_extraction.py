"""Extraction throughput per stage on this machine, in seconds of video per second (not collected by pytest).

Run: ``.venv/bin/python benchmarks/bench_extraction.py [--seconds 60] [--eva-frames 4]``.

* ``decode``: a generated H.264 video (``--width`` x ``--height`` at 30 fps, moving content), decoded
  sequentially with the official 1-fps selection, plus the resize/centre-crop preprocessing of the picked frames;
* ``eva-clip-g``: the full-size EVA-CLIP-g/14 image tower (1.0B parameters, random weights, fp32) on a few frames;
  one frame per second of video, so throughput = 1 / seconds per frame;
* ``whisper``: Whisper tiny.en (faster-whisper, reference decoding settings) on synthetic speech of the video's
  length (an espeak-ng paragraph when espeak-ng is installed), per compute type;
* ``minilm``: all-MiniLM-L6-v2 on the resulting cues.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch


def make_long_video(path: Path, seconds: int, width: int, height: int, fps: int = 30) -> Path:
    import av

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height, width * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps), options={"preset": "ultrafast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * fps):
            shift = (i * 4) % width  # a panning texture: every frame differs
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[:, shift : shift + width]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def bench_decode(path: Path, seconds: float) -> dict[str, float]:
    from quag.pipeline.video import iter_frames_1fps
    from quag.pipeline.visual import resize_center_crop

    start = time.perf_counter()
    n = sum(1 for _ in iter_frames_1fps(path))
    decode_only = time.perf_counter() - start
    start = time.perf_counter()
    crops = [resize_center_crop(f.to_image(), 224) for _, f in iter_frames_1fps(path)]
    with_crop = time.perf_counter() - start
    assert len(crops) == n
    return {"decode (1-fps selection)": seconds / decode_only, "decode + resize/crop": seconds / with_crop}


def bench_eva(frames: int) -> dict[str, float]:
    from quag.pipeline.eva_clip import EVA_CLIP_G14, build_vision_tower

    with torch.device("meta"):
        model = build_vision_tower(EVA_CLIP_G14)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    model.eval()
    x = torch.randn(frames, 3, 224, 224)
    with torch.inference_mode():
        model(x[:1])  # warm-up
        start = time.perf_counter()
        model(x)
        per_frame = (time.perf_counter() - start) / frames
    return {f"eva-clip-g/14 fp32 (batch {frames})": 1.0 / per_frame}


SPEECH_CLIP = Path(__file__).resolve().parents[1] / "tests" / "pipeline" / "fixtures" / "speech.ogg"
"""The speech clip of the pipeline tests, looped when espeak-ng is missing."""

SCRIPT = (
    "Welcome back to the kitchen. Today we are making a simple omelette. First, crack three eggs into a bowl. "
    "Add a pinch of salt and some black pepper, then whisk everything together until it is smooth. "
    "Next, heat a small pan over medium heat and melt a spoonful of butter. When the butter starts to foam, "
    "pour in the eggs. Let them sit for a few seconds, then gently stir with a spatula. Push the cooked edges "
    "towards the centre so the raw egg can flow to the sides. While the top is still a little soft, sprinkle "
    "some grated cheese and chopped herbs over one half. Fold the omelette in half and slide it onto a warm "
    "plate. Serve it right away with a slice of toast. Thanks for watching, and see you next time."
)


def speech_audio(seconds: float) -> tuple[np.ndarray, str]:
    """Varied synthetic speech (espeak-ng, if installed) or the test clip looped, trimmed to ``seconds``."""
    import shutil
    import subprocess

    from quag.pipeline.video import decode_audio

    if shutil.which("espeak-ng"):
        with TemporaryDirectory() as tmp:
            wav = Path(tmp) / "speech.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SCRIPT], check=True)
            speech, source = decode_audio(wav), "espeak-ng paragraph"
    else:
        speech, source = decode_audio(SPEECH_CLIP, 16000), "test clip, looped"
    reps = int(np.ceil(seconds * 16000 / len(speech)))
    return np.concatenate([speech] * reps)[: int(seconds * 16000)], source


def bench_whisper(seconds: float) -> tuple[dict[str, float], list[str]]:
    from quag.pipeline.asr import WhisperOptions, WhisperTranscriber

    audio, source = speech_audio(seconds)
    print(f"speech: {source}")
    out: dict[str, float] = {}
    texts: list[str] = []
    for compute_type in ("default", "int8"):
        model = WhisperTranscriber(options=WhisperOptions(compute_type=compute_type))
        model.transcribe(audio[:16000])  # warm-up
        start = time.perf_counter()
        cues = model.transcribe(audio)
        out[f"whisper tiny.en ({compute_type})"] = seconds / (time.perf_counter() - start)
        texts = [c.text for c in cues]
    return out, texts


def bench_minilm(texts: list[str], seconds: float) -> dict[str, float]:
    from quag.pipeline.text import MiniLMEncoder

    encoder = MiniLMEncoder()
    encoder.encode(texts[:2])  # warm-up
    start = time.perf_counter()
    encoder.encode(texts)
    return {f"minilm ({len(texts)} cues)": seconds / (time.perf_counter() - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--eva-frames", type=int, default=4)
    parser.add_argument("--skip-eva", action="store_true", help="skip the 4 GB full-size EVA-CLIP-g forward")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    results: dict[str, float] = {}
    with TemporaryDirectory() as tmp:
        start = time.perf_counter()
        video = make_long_video(Path(tmp) / "long.mp4", args.seconds, args.width, args.height)
        print(f"generated {args.seconds} s {args.width}x{args.height} video in {time.perf_counter() - start:.1f} s")
        results.update(bench_decode(video, args.seconds))
    if not args.skip_eva:
        results.update(bench_eva(args.eva_frames))
    whisper, texts = bench_whisper(args.seconds)
    results.update(whisper)
    results.update(bench_minilm(texts, args.seconds))
    print(f"{'stage':40s} {'s of video / s':>15s}")
    for stage, rate in results.items():
        print(f"{stage:40s} {rate:15.2f}")


if __name__ == "__main__":
    main()
