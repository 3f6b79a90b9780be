"""``quag extract`` over a corpus: listing, sharding, resuming, the failures report and the feature spec.

Output layout (what :class:`quag.data.features.FeatureStore` reads, docs/data.md)::

    OUT/eva_clip_features/<id>.mp4.pt          (rows, 1024) float32, unit-norm rows (with --eva-clip-checkpoint)
    OUT/ASR/<id>.srt                           Whisper transcript
    OUT/ASR_feats_all-MiniLM-L6-v2/<id>.pt     (n_cues, 384) float32
    OUT/feature_spec.json                      encoders, dims, fps
    OUT/extraction_failures.json               every video whose last attempt failed: stage, reason, message
    OUT/.extraction_failures/<id>.json         the same, one file per video (merged into the report)

A failure record names the stage (``visual``, ``transcript``, ``embed``, or the pending ones joined by ``+`` when the
file cannot be opened at all) and a reason from :data:`quag.pipeline.video.REASONS` (``corrupt``, ``zero_length``,
``unreadable_codec``, ``truncated``, ``no_audio_track``, ``missing``, ``no_video_stream``, ``error``). The other
videos go on.

Resuming: every file is written atomically (temporary file + rename), so an output that exists is complete; a
video is skipped when all outputs of the requested stages exist, and only its missing stages run otherwise. The
temporary files a killed run leaves behind are removed when the next run starts (this shard's videos only).
A failed video is retried by the next run; its entry leaves the report once it succeeds.

Sharding: ``shard=(i, N)`` takes videos ``i, i+N, i+2N, ...`` of the sorted list; under ``torchrun`` the shard
defaults to ``(RANK, WORLD_SIZE)``. Shards write disjoint files; the spec they write is identical, and the
report is rebuilt from the per-video files by every shard when it finishes (the last one sees all).
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from quag.data.features import FeatureError, FeatureLayout, FeatureSpec
from quag.io import atomic_write_json
from quag.pipeline.extract import NO_VISUAL, STAGES, ExtractOptions, FeatureExtractor, StageFailure
from quag.pipeline.video import REASONS

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")
FAILURES_FILE = "extraction_failures.json"
FAILURE_DIR = ".extraction_failures"


# ---------------------------------------------------------------------------------------------------------
# inputs and shards


def list_videos(source: str | Path) -> list[Path]:
    """Video files of a folder (non-recursive, by extension), one video file, or a text file (one path per line).

    Paths in a list file are relative to the list file's folder; blank lines and ``#`` comments are skipped.
    Two videos with the same id (file name without extension), or no video at all, raise ``ValueError``.
    """
    source = Path(source)
    if source.is_file() and source.suffix.lower() in VIDEO_EXTENSIONS:
        videos = [source]
    elif source.is_dir():
        videos = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    elif source.is_file():
        lines = [ln.strip() for ln in source.read_text(encoding="utf-8").splitlines()]
        videos = [
            (source.parent / ln).resolve() if not Path(ln).is_absolute() else Path(ln)
            for ln in lines
            if ln and not ln.startswith("#")
        ]
    else:
        raise FileNotFoundError(f"{source}: neither a folder of videos nor a text file listing video paths")
    if not videos:
        kinds = ", ".join(sorted(VIDEO_EXTENSIONS))
        raise ValueError(f"{source}: no videos to extract (a folder needs files ending in {kinds}; a list file, paths)")
    seen: dict[str, Path] = {}
    for v in videos:
        if v.stem in seen:
            raise ValueError(f"two videos share the id {v.stem!r}: {seen[v.stem]} and {v}; ids must be unique")
        seen[v.stem] = v
    return videos


def video_key(path: Path) -> str:
    """The HiREST video key of a file: ``<id>.mp4`` whatever the container (``<id>`` = name without extension)."""
    return f"{path.stem}.mp4"


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= i < N")
    return index, count


def shard_from_env() -> tuple[int, int] | None:
    """``(RANK, WORLD_SIZE)`` when launched by torchrun, else None."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return parse_shard(f"{os.environ['RANK']}/{os.environ['WORLD_SIZE']}")
    return None


def device_for_rank(device: str) -> str:
    """``cuda`` -> ``cuda:LOCAL_RANK`` under torchrun (one GPU per process); other devices unchanged."""
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return device


# ---------------------------------------------------------------------------------------------------------
# feature spec of the output root


def _has_files(folder: Path, pattern: str) -> bool:
    return folder.is_dir() and next(folder.glob(pattern), None) is not None


def resolve_spec(out: Path, extractor: FeatureExtractor) -> FeatureSpec:
    """The spec after this run; raises if existing features in ``out`` came from other encoders.

    A root without ``feature_spec.json`` but with feature files is taken as the official release.
    """
    spec_file = out / "feature_spec.json"
    existing: FeatureSpec | None = None
    if spec_file.is_file():
        existing = FeatureSpec.load(out)
    else:
        official = FeatureSpec()
        if any(
            _has_files(out / d, "*")
            for d in (official.visual_dir, official.transcript_dir, official.transcript_feat_dir)
        ):
            existing = official
    if existing is None:
        return extractor.spec(None)
    wanted = extractor.spec(existing)
    merged = existing
    checks: dict[str, tuple[tuple[str, ...], Path, str]] = {
        "visual": (("visual_encoder", "visual_dim"), out / existing.visual_dir, "*.pt"),
        "asr": (("transcript_model",), out / existing.transcript_dir, "*.srt"),
        "embed": (
            ("transcript_encoder", "transcript_dim", "transcript_feat_dir"),
            out / existing.transcript_feat_dir,
            "*.pt",
        ),
    }
    for stage in extractor.stages:
        keys, folder, pattern = checks[stage]
        old = {k: getattr(existing, k) for k in keys}
        new = {k: getattr(wanted, k) for k in keys}
        if old != new and _has_files(folder, pattern):
            raise FeatureError(
                f"{out} already holds {stage} features made with {old}, but this run would write {new}. Mixing them "
                f"would give a root whose files disagree with its feature_spec.json: extract into another folder, "
                f"or delete {folder} first."
            )
        merged = replace(merged, **new)
    return replace(merged, fps=wanted.fps, simulated=())


# ---------------------------------------------------------------------------------------------------------
# failures


def _failure_path(out: Path, video: str) -> Path:
    return out / FAILURE_DIR / f"{FeatureLayout.stem(video)}.json"


def record_failures(out: Path, video: str, failures: list[StageFailure]) -> None:
    """Keep ``video``'s failure file in step with its latest attempt (removed once it succeeds)."""
    path = _failure_path(out, video)
    if failures:
        atomic_write_json(path, [asdict(f) for f in failures])
    elif path.is_file():
        path.unlink()


def write_failures_report(out: str | Path) -> Path:
    """Merge the per-video failure files of ``out`` into ``out/extraction_failures.json`` (atomically)."""
    out = Path(out)
    records: list[dict[str, Any]] = []
    folder = out / FAILURE_DIR
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                records.extend(json.loads(path.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, OSError) as e:
                logger.warning("ignoring unreadable failure record %s (%s)", path, e)
    by_reason = Counter(r["reason"] for r in records)
    report = {
        "n_failed_videos": len({r["video"] for r in records}),
        "by_reason": dict(sorted(by_reason.items())),
        "reasons": {k: REASONS.get(k, "") for k in sorted(by_reason)},
        "failures": records,
    }
    return atomic_write_json(out / FAILURES_FILE, report)


def remove_stale_temporaries(out: Path, layout: FeatureLayout, videos: list[str]) -> int:
    """Remove the temporary files (``.<name>.<random>.tmp``) a killed run left beside the outputs of ``videos``.

    Only this shard's videos are looked at: another shard writing into the same root at the same time keeps its
    own temporary files. Returns how many were removed.
    """
    removed = 0
    for video in videos:
        targets = (
            layout.visual_path(video),
            layout.srt_path(video),
            layout.transcript_feat_path(video),
            _failure_path(out, video),
        )
        for target in targets:
            if not target.parent.is_dir():
                continue
            for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                    removed += 1
    return removed


# ---------------------------------------------------------------------------------------------------------
# the corpus run


@dataclass
class ExtractionReport:
    """Outcome of one :func:`extract_corpus` call (this shard only)."""

    out: Path
    shard: tuple[int, int]
    spec: FeatureSpec
    n_videos: int = 0
    n_skipped: int = 0
    n_extracted: int = 0
    failures: list[StageFailure] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_video_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        return len({f.video for f in self.failures})

    def throughput(self) -> dict[str, float]:
        """Seconds of video per wall-clock second, per stage that ran (model loading excluded)."""
        return {s: self.stage_video_seconds[s] / t for s, t in self.stage_seconds.items() if t > 0}

    def summary(self) -> str:
        i, n = self.shard
        lines = [
            f"{self.n_videos} video(s) in shard {i}/{n} -> {self.out}: {self.n_extracted} extracted, "
            f"{self.n_skipped} already complete, {self.n_failed} with failures",
            f"feature spec: visual {self.spec.visual_encoder}, transcripts {self.spec.transcript_model}, "
            f"embeddings {self.spec.transcript_encoder}",
        ]
        if self.spec.visual_encoder == NO_VISUAL:
            lines.append("no EVA-CLIP checkpoint: transcripts and transcript embeddings only (speech-only features)")
        for stage, rate in self.throughput().items():
            lines.append(
                f"  {stage:6s}: {self.stage_video_seconds[stage]:.1f} s of video in "
                f"{self.stage_seconds[stage]:.1f} s ({rate:.2f} s of video per second)"
            )
        if self.failures:
            counts = Counter(f.reason for f in self.failures)
            lines.append(
                f"failures ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}): see {self.out / FAILURES_FILE}"
            )
        return "\n".join(lines)


def _progress(items: list[Path], desc: str, enabled: bool) -> Iterator[Path]:
    try:
        from tqdm import tqdm
    except ImportError:
        yield from items
        return
    yield from tqdm(items, desc=desc, unit="video", disable=not enabled, dynamic_ncols=True)


def extract_corpus(
    source: str | Path | Iterable[Path],
    out: str | Path,
    options: ExtractOptions | None = None,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    extractor: FeatureExtractor | None = None,
) -> ExtractionReport:
    """Extract features for every video of ``source`` into ``out`` (official layout), resumably.

    Args:
        source: folder of videos, text file listing them, or the paths themselves.
        out: output root (created).
        options: extraction options (ignored when ``extractor`` is given).
        shard: ``(i, N)``; default: torchrun's ``(RANK, WORLD_SIZE)``, else ``(0, 1)``.
        progress: show a progress bar.
        extractor: reuse loaded encoders.

    Returns:
        The report of this shard; ``out/extraction_failures.json`` lists failures of every shard.
    """
    extractor = extractor or FeatureExtractor(options)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    videos = list_videos(source) if isinstance(source, (str, Path)) else sorted(Path(p) for p in source)
    index, count = shard or shard_from_env() or (0, 1)
    mine = videos[index::count]
    if "visual" in extractor.options.stages and not extractor.has_visual:
        logger.warning(
            "no EVA-CLIP checkpoint given: writing transcripts and transcript embeddings only; the "
            "feature spec records visual_encoder 'none'"
        )
    spec = resolve_spec(out, extractor)
    spec.save(out)
    layout = FeatureLayout(out, spec)
    stale = remove_stale_temporaries(out, layout, [video_key(p) for p in mine])
    if stale:
        logger.info("removed %d temporary file(s) left by an interrupted run", stale)
    report = ExtractionReport(out=out, shard=(index, count), spec=spec, n_videos=len(mine))
    logger.info(
        "extracting %d of %d video(s) (shard %d/%d), stages %s",
        len(mine),
        len(videos),
        index,
        count,
        ",".join(extractor.stages),
    )
    try:
        for path in _progress(mine, f"extract {index}/{count}", progress):
            key = video_key(path)
            if not extractor.pending_stages(key, layout):
                report.n_skipped += 1
                record_failures(out, key, [])
                continue
            _, failures = extractor.extract_to(path, key, layout)
            record_failures(out, key, failures)
            report.failures.extend(failures)
            if not failures:
                report.n_extracted += 1
    finally:
        write_failures_report(out)
    report.stage_seconds = {s: extractor.stage_seconds[s] for s in STAGES}
    report.stage_video_seconds = {s: extractor.stage_video_seconds[s] for s in STAGES}
    return report
