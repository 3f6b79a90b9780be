"""Rebuild the example how-to videos of this folder from their scripts (CC0-1.0, made here).

    python examples/make_examples.py            # every script below -> examples/<name>.mp4 + examples/<name>.json

Each video is a narrated how-to: the script's lines are spoken by espeak-ng (``apt-get install espeak-ng``) and
shown as simple title cards rendered with Pillow; PyAV muxes H.264 video (2 fps, 640x360) and AAC audio (mono,
22.05 kHz). A line is followed by a short pause, and a step by the seconds its work would take on camera
(``work``): the card stays, nobody speaks, as in a real video.

The JSON beside each video is its ground truth, measured on the timeline that was built: the query, the moment
(first step's card to last step's end), each step's span and sentence, and every spoken line with its time. Step
``k`` starts when its card appears (half a second before its first line) and ends where the next step's card
appears; the last step ends after its work pause. Needs numpy, Pillow and PyAV (all in requirements.txt).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RATE = 22050  # espeak-ng's output rate
FPS = 2
SIZE = (640, 360)
VOICE, WORDS_PER_MINUTE, WORD_GAP = "en-us", 140, 4  # word gap in 10 ms units: clearer words for Whisper
LINE_PAUSE, CARD_LEAD = 0.6, 0.5
LICENSE = "CC0-1.0: script, narration, title cards and timings made for quag; no rights reserved"


@dataclass
class Part:
    """A stretch of the video under one title card: its spoken lines, then ``work`` seconds without speech."""

    card: str
    lines: list[str]
    step: str | None = None
    """The step sentence (ground truth) if this part is a step of the moment; None for talk outside it."""
    work: float = 1.0


@dataclass
class Script:
    name: str
    title: str
    query: str
    parts: list[Part] = field(default_factory=list)


SCRIPTS = [
    Script(
        name="grilled_cheese",
        title="Grilled cheese sandwich",
        query="Make a Grilled Cheese Sandwich",
        parts=[
            Part(
                "Hello!",
                [
                    "Hi everyone, and welcome back to my kitchen.",
                    "It has been a busy week, so today I want something quick.",
                    "Before we start, if you like these videos, please subscribe.",
                ],
            ),
            Part(
                "Grilled cheese sandwich",
                ["Today I'm going to show you how I make a grilled cheese sandwich.", "You only need three things."],
            ),
            Part(
                "Step 1: butter the bread",
                [
                    "First, spread a thin layer of butter on one side of each slice of bread.",
                    "Go all the way to the edges.",
                ],
                step="butter one side of each slice of bread",
                work=4.0,
            ),
            Part(
                "Step 2: heat the pan",
                ["Next, heat a frying pan over medium heat.", "You don't need any oil, the butter does the job."],
                step="heat a frying pan over medium heat",
                work=4.0,
            ),
            Part(
                "Step 3: bread and cheese in the pan",
                [
                    "Now put one slice in the pan, butter side down.",
                    "Then lay two slices of cheddar cheese on top of it.",
                ],
                step="put a slice in the pan and add the cheese",
                work=4.0,
            ),
            Part(
                "Step 4: close and cook",
                [
                    "Put the second slice on top, butter side up.",
                    "Let it cook for about three minutes, until the bottom is golden brown.",
                ],
                step="put the second slice on top and cook",
                work=6.0,
            ),
            Part(
                "Step 5: flip",
                [
                    "Now flip the sandwich with a spatula.",
                    "Press it down gently and cook the other side for two more minutes, so the cheese melts.",
                ],
                step="flip the sandwich and cook the other side",
                work=6.0,
            ),
            Part(
                "Enjoy!",
                [
                    "And that's it, a perfect grilled cheese.",
                    "I like to have it with a bowl of tomato soup.",
                    "Thanks for watching, and see you next week.",
                ],
            ),
        ],
    ),
    Script(
        name="repot_plant",
        title="Repotting a houseplant",
        query="Repot a Houseplant",
        parts=[
            Part(
                "Hello!",
                [
                    "Hey guys, welcome back to the channel.",
                    "A lot of you asked about my plants in the comments, so here we go.",
                ],
            ),
            Part(
                "Repotting a houseplant",
                [
                    "In this video I'll show you how to repot a houseplant that has outgrown its pot.",
                    "It only takes a few minutes.",
                ],
            ),
            Part(
                "Step 1: a bigger pot",
                [
                    "First, pick a new pot that is about five centimeters wider than the old one.",
                    "Make sure it has a drainage hole.",
                ],
                step="pick a slightly bigger pot with a drainage hole",
                work=3.0,
            ),
            Part(
                "Step 2: fresh soil",
                ["Next, put a layer of fresh potting soil in the bottom of the new pot."],
                step="put fresh potting soil in the new pot",
                work=4.0,
            ),
            Part(
                "Step 3: out of the old pot",
                [
                    "Now turn the old pot on its side and gently slide the plant out.",
                    "Hold it by the base of the stems, not by the leaves.",
                ],
                step="slide the plant out of the old pot",
                work=4.0,
            ),
            Part(
                "Step 4: loosen the roots",
                ["Loosen the roots with your fingers and shake off some of the old soil."],
                step="loosen the roots",
                work=5.0,
            ),
            Part(
                "Step 5: plant and water",
                [
                    "Set the plant in the new pot and fill in around it with soil.",
                    "Then water it well, until the water runs out of the bottom.",
                ],
                step="put the plant in the new pot, fill with soil and water it",
                work=5.0,
            ),
            Part(
                "Happy plant",
                [
                    "And that's all there is to it.",
                    "Keep it out of direct sun for a week while it settles in.",
                    "Thanks for watching, and happy planting.",
                ],
            ),
        ],
    ),
]


def speak(text: str, work: Path) -> np.ndarray:
    """``text`` spoken by espeak-ng, as float32 samples at :data:`RATE`."""
    out = work / "line.wav"
    try:
        subprocess.run(
            ["espeak-ng", "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-g", str(WORD_GAP), "-w", str(out), text],
            check=True,
            capture_output=True,
        )
    except FileNotFoundError as e:
        raise SystemExit("espeak-ng is not installed: apt-get install espeak-ng (or brew install espeak-ng)") from e
    with wave.open(str(out)) as w:
        if w.getframerate() != RATE or w.getnchannels() != 1:
            raise SystemExit(f"espeak-ng wrote {w.getframerate()} Hz x {w.getnchannels()}; expected {RATE} Hz mono")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0


def espeak_version() -> str:
    """e.g. ``eSpeak NG text-to-speech: 1.51`` (without the data path that follows)."""
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    return out.split("  Data at")[0].strip()


def build_timeline(script: Script, work: Path) -> tuple[np.ndarray, list[dict], list[tuple[float, str]]]:
    """The audio track, the spoken lines with their times, and the card changes ``(time, card)``."""
    audio: list[np.ndarray] = []
    lines: list[dict] = []
    cards: list[tuple[float, str]] = []
    t = 0.0

    def silence(seconds: float) -> None:
        nonlocal t
        audio.append(np.zeros(round(seconds * RATE), np.float32))
        t = sum(len(a) for a in audio) / RATE

    for part in script.parts:
        cards.append((t, part.card))
        silence(CARD_LEAD)
        for text in part.lines:
            samples = speak(text, work)
            lines.append({"start": round(t, 2), "end": round(t + len(samples) / RATE, 2), "text": text})
            audio.append(samples)
            silence(LINE_PAUSE)
        silence(part.work)
    track = np.concatenate(audio)
    whole = int(np.ceil(len(track) / RATE * FPS)) * RATE // FPS  # end on a frame boundary: audio and video agree
    return np.concatenate([track, np.zeros(whole - len(track), np.float32)]), lines, cards


def ground_truth(script: Script, lines: list[dict], cards: list[tuple[float, str]], duration: float) -> dict:
    """The JSON beside the video (see the module docstring)."""
    bounds = [t for t, _ in cards] + [duration]
    steps = [
        {"start": round(bounds[i], 2), "end": round(bounds[i + 1], 2), "sentence": part.step}
        for i, part in enumerate(script.parts)
        if part.step is not None
    ]
    return {
        "video": f"{script.name}.mp4",
        "query": script.query,
        "duration": round(duration, 2),
        "moment": [steps[0]["start"], steps[-1]["end"]],
        "steps": steps,
        "narration": lines,
        "license": LICENSE,
        "made_with": f"examples/make_examples.py; {espeak_version()}, voice {VOICE}, {WORDS_PER_MINUTE} words per "
        f"minute, word gap {WORD_GAP}",
    }


def render_card(text: str, title: str, progress: float) -> np.ndarray:
    """A 640x360 title card: the video's title, the card text, a progress bar."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", SIZE, (32, 40, 56))
    draw = ImageDraw.Draw(img)
    small, big = ImageFont.load_default(size=22), ImageFont.load_default(size=40)
    draw.text((32, 24), title, font=small, fill=(170, 190, 220))
    words, rows, row = text.split(), [], ""
    for w in words:  # wrap to the card's width
        trial = f"{row} {w}".strip()
        if draw.textlength(trial, font=big) > SIZE[0] - 64 and row:
            rows.append(row)
            row = w
        else:
            row = trial
    rows.append(row)
    y = SIZE[1] // 2 - 26 * len(rows)
    for r in rows:
        draw.text((32, y), r, font=big, fill=(250, 250, 250))
        y += 52
    draw.rectangle((32, SIZE[1] - 30, 32 + int((SIZE[0] - 64) * progress), SIZE[1] - 22), fill=(240, 170, 60))
    return np.asarray(img)


def write_video(path: Path, audio: np.ndarray, cards: list[tuple[float, str]], title: str) -> float:
    """Mux the cards (H.264) and the narration (AAC) into ``path``; returns the duration in seconds."""
    import av

    duration = len(audio) / RATE
    n_frames = int(np.ceil(duration * FPS))
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=Fraction(FPS), options={"crf": "30", "preset": "slow"})
        video.width, video.height, video.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        sound = container.add_stream("aac", rate=RATE, layout="mono")
        sound.bit_rate = 48000
        rendered: dict[str, np.ndarray] = {}
        for i in range(n_frames):
            t = i / FPS
            card = [c for start, c in cards if start <= t + 1e-6][-1]
            key = f"{card}|{round(t / duration, 2)}"
            if key not in rendered:
                rendered = {key: render_card(card, title, min(1.0, t / duration))}
            frame = av.VideoFrame.from_ndarray(rendered[key], format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        for start in range(0, len(pcm), 1024):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + 1024], format="s16", layout="mono")
            frame.sample_rate, frame.pts = RATE, start
            for packet in sound.encode(frame):
                container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    return duration


def main() -> None:
    for script in SCRIPTS:
        with tempfile.TemporaryDirectory() as tmp:
            audio, lines, cards = build_timeline(script, Path(tmp))
        path = HERE / f"{script.name}.mp4"
        duration = write_video(path, audio, cards, script.title)
        truth = ground_truth(script, lines, cards, duration)
        (HERE / f"{script.name}.json").write_text(json.dumps(truth, indent=1) + "\n")
        size = path.stat().st_size / 2**20
        print(f"{path.name}: {duration:.1f} s, {len(truth['steps'])} steps, {size:.2f} MB; truth in {script.name}.json")
        if size > 2:
            raise SystemExit(f"{path} is {size:.2f} MB, over the 2 MB budget of an example")


if __name__ == "__main__":
    main()
