"""The model side of ``quag serve``: stored videos, two model lanes, progress, bounded memory. No web framework.

A :class:`VideoService` owns one :class:`~quag.pipeline.predictor.Predictor` (loaded once per process) and a
registry of videos keyed by their content hash. Model calls run on two lanes, each one thread working in arrival
order, so concurrent requests queue instead of failing:

* the encoding lane transcribes and encodes new videos (Whisper, MiniLM cue embeddings: seconds to minutes);
* the question lane answers questions about encoded videos (query embedding and the model: milliseconds), so a
  long encoding never holds up questions about videos that are ready. A question about a video that is still
  being encoded joins this lane once the encoding is done.

The lanes share no encoder: the question lane has its own view of the same model (:func:`question_predictor`)
with its own query encoder, as one tokenizer must not serve two threads at once.

Files. Everything the server writes lives under ``cache_dir``:

* ``videos/<sha256[:32]><ext>``: each accepted video, named by its content (the uploaded file name is only shown,
  never used as a path); the extension comes from the container PyAV found;
* ``features/``: the predictor's feature cache, so a video encoded before (by this server or an earlier one) is
  answered without transcribing it again;
* ``incoming/``: uploads being received (removed once checked).

Memory stays bounded: the registry keeps at most ``max_videos`` videos (the least recently used one is dropped,
with its stored file; its features stay in the feature cache on disk), and the predictor's own memo of encoded
videos and query embeddings is trimmed to match.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from quag.serve.lanes import Lane, settle
from quag.serve.uploads import VIDEO_SUFFIXES, VideoRejected, display_name, probe_upload

if TYPE_CHECKING:
    from quag.pipeline.predictor import EncodedVideo, Predictor

logger = logging.getLogger(__name__)

Status = Literal["queued", "encoding", "ready", "failed"]

VIDEO_ID = re.compile(r"^[0-9a-f]{32}$")
"""A video id: the first 32 hex digits of the file's SHA-256."""

MAX_QUERY_MEMO = 4096
"""Query embeddings the predictor may memoise before the memo is cleared (384 floats each)."""


class UnknownVideo(KeyError):
    """No video with this id (never uploaded, or dropped from the registry)."""


@dataclass
class VideoEntry:
    """One stored video and the state of its encoding."""

    id: str
    name: str
    path: Path
    media_type: str
    size: int
    duration: float
    source: Literal["upload", "example"]
    status: Status = "queued"
    error: str | None = None
    features: EncodedVideo | None = None
    ticket: int = 0
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    encode_seconds: float | None = None
    done: Future[None] = field(default_factory=Future)


@dataclass(frozen=True)
class Answer:
    """The model's answer to one question about one video (times in seconds)."""

    video_id: str
    video: str
    query: str
    duration: float
    moment: tuple[float, float]
    steps: list[tuple[float, float, str]]
    seconds: float
    """Time the model took (queueing excluded)."""


def question_predictor(predictor: Predictor) -> Predictor:
    """A predictor over the same model, config and features spec with a query encoder of its own.

    Used by the question lane while the encoding lane uses ``predictor`` (whose MiniLM embeds transcript cues):
    for MiniLM queries it loads a second MiniLM (about 90 MB), for EVA-CLIP text queries the predictor makes its
    own text tower anyway.
    """
    from quag.pipeline.predictor import Predictor
    from quag.pipeline.text import MINILM_NAME, MiniLMEncoder

    own = MiniLMEncoder(device=str(predictor.device)) if predictor.spec.query_encoder == MINILM_NAME else None
    return Predictor(
        predictor.model,
        predictor.config,
        predictor.spec,
        predictor.extractor,  # never used by predict(): only the query encoder and the model are
        query_encoder=own,
        eva_clip_checkpoint=predictor.eva_clip_checkpoint,
        bpe=predictor.bpe,
        device=predictor.device,
    )


class VideoService:
    """Stored videos, their encodings and the answers, around one predictor.

    Args:
        predictor: the loaded model and encoders (its ``cache_dir`` should be ``<cache_dir>/features``).
        cache_dir: the server's folder (videos, features, incoming uploads).
        examples_dir: a folder of example videos offered on the page; None = no examples.
        max_videos: videos kept in the registry (least recently used dropped beyond it).
        checkpoint: the checkpoint path, shown by the health check.
    """

    def __init__(
        self,
        predictor: Predictor,
        cache_dir: str | Path,
        examples_dir: str | Path | None = None,
        max_videos: int = 32,
        checkpoint: str | Path | None = None,
    ) -> None:
        if max_videos < 1:
            raise ValueError(f"max_videos must be at least 1, got {max_videos}")
        self.predictor = predictor
        self.cache_dir = Path(cache_dir)
        self.videos_dir = self.cache_dir / "videos"
        self.incoming_dir = self.cache_dir / "incoming"
        for folder in (self.videos_dir, self.incoming_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.examples_dir = Path(examples_dir) if examples_dir is not None else None
        self.max_videos = max_videos
        self.checkpoint = str(checkpoint) if checkpoint is not None else None
        self.encoding = Lane("quag-encode")
        self.questions = Lane("quag-ask")
        self._asker: Predictor | None = None  # made on the question lane when first needed
        self._videos: OrderedDict[str, VideoEntry] = OrderedDict()  # id -> entry, least recently used first
        self._lock = threading.RLock()
        self.stats = {"uploads": 0, "encodes": 0, "feature_cache_hits": 0, "questions": 0}
        self._speed: float | None = None  # seconds of encoding per second of video, measured

    @property
    def asker(self) -> Predictor:
        """The question lane's predictor (:func:`question_predictor`); only the question lane calls this."""
        if self._asker is None:
            self._asker = question_predictor(self.predictor)
        return self._asker

    # -- registry ------------------------------------------------------------------------------------------
    def get(self, video_id: str) -> VideoEntry:
        """The entry of ``video_id`` (marked as recently used).

        Raises:
            UnknownVideo: no such video.
        """
        with self._lock:
            entry = self._videos.get(video_id) if VIDEO_ID.match(video_id) else None
            if entry is None:
                raise UnknownVideo(video_id)
            self._videos.move_to_end(video_id)
            return entry

    def videos(self) -> list[VideoEntry]:
        with self._lock:
            return list(self._videos.values())

    def examples(self) -> dict[str, Path]:
        """Example name -> file: the video files directly inside ``examples_dir``, by name."""
        if self.examples_dir is None or not self.examples_dir.is_dir():
            return {}
        files = sorted(p for p in self.examples_dir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        return {p.name: p for p in files}

    def example_query(self, name: str) -> str | None:
        """The question suggested for example ``name``: the ``query`` of ``<stem>.json`` beside it, if any."""
        import json

        path = self.examples().get(name)
        sidecar = path.with_suffix(".json") if path is not None else None
        if sidecar is None or not sidecar.is_file():
            return None
        try:
            query = json.loads(sidecar.read_text()).get("query")
        except (OSError, ValueError, AttributeError):
            return None  # a hint only: a malformed file just gives none
        return query.strip() if isinstance(query, str) and query.strip() else None

    def example_id(self, name: str) -> str | None:
        """Id of example ``name`` if it is in the registry."""
        with self._lock:
            return next((e.id for e in self._videos.values() if e.source == "example" and e.name == name), None)

    def add_upload(self, received: Path, filename: str | None) -> tuple[VideoEntry, bool]:
        """Register a received upload: probe it, store it by content, queue its encoding.

        Args:
            received: the uploaded bytes in a file of this service's ``incoming/`` folder (moved or removed).
            filename: the client's file name (display only).

        Returns:
            ``(entry, known)``; ``known`` is True when the same content was already in the registry.

        Raises:
            VideoRejected: not a usable video (the file is removed).
        """
        self.stats["uploads"] += 1
        try:
            return self._add(received, display_name(filename), "upload")
        finally:
            with contextlib.suppress(FileNotFoundError):
                received.unlink()

    def add_example(self, name: str) -> tuple[VideoEntry, bool]:
        """Register example ``name`` (a copy goes into the cache, so the server reads only its own folder).

        Raises:
            UnknownVideo: no example of that name.
        """
        source = self.examples().get(name)
        if source is None:
            raise UnknownVideo(name)
        known = self.example_id(name)
        if known is not None:
            return self.get(known), True
        copy = self.incoming_dir / f"{uuid.uuid4().hex}.part"
        shutil.copyfile(source, copy)
        try:
            return self._add(copy, name, "example")
        finally:
            with contextlib.suppress(FileNotFoundError):
                copy.unlink()

    def _known(self, video_id: str) -> VideoEntry | None:
        with self._lock:
            entry = self._videos.get(video_id)
            if entry is None or entry.status == "failed":  # a failed video is tried again
                return None
            self._videos.move_to_end(video_id)
            return entry

    def _add(self, received: Path, name: str, source: Literal["upload", "example"]) -> tuple[VideoEntry, bool]:
        from quag.pipeline.predictor import file_sha256

        video_id = file_sha256(received)[:32]
        known = self._known(video_id)
        if known is not None:
            return known, True
        duration, ext, media_type = probe_upload(received, name)
        stored = self.videos_dir / f"{video_id}{ext}"
        if not stored.is_file():
            os.replace(received, stored)
        entry = VideoEntry(
            id=video_id,
            name=name,
            path=stored,
            media_type=media_type,
            size=stored.stat().st_size,
            duration=duration,
            source=source,
        )
        with self._lock:
            known = self._known(video_id)  # the same content may have arrived meanwhile
            if known is not None:
                return known, True
            self._videos[video_id] = entry
            self._evict()
            entry.ticket, _ = self.encoding.submit(lambda: self._encode(entry))
        logger.info("queued %s (%s, %.1f s) as %s", name, media_type, duration, video_id)
        return entry, False

    def _evict(self) -> None:
        """Drop the least recently used finished videos beyond ``max_videos`` (called with the lock held)."""
        excess = len(self._videos) - self.max_videos
        for video_id in list(self._videos):
            if excess <= 0:
                break
            entry = self._videos[video_id]
            if entry.status in ("ready", "failed"):
                del self._videos[video_id]
                with contextlib.suppress(FileNotFoundError):
                    entry.path.unlink()
                excess -= 1
                logger.info("dropped %s (%s) from the registry", entry.name, video_id)

    # -- model work (lane threads) -----------------------------------------------------------------------------
    def _encode(self, entry: VideoEntry) -> None:
        entry.status, entry.started = "encoding", time.monotonic()
        cache = self.predictor.cache_dir
        cached = cache is not None and (cache / f"{entry.id}-{self.predictor.cache_key()}.pt").is_file()
        try:
            entry.features = self.predictor.encode_video(entry.path)
        except Exception as e:  # the message reaches the page as is: it names the file and the remedy
            entry.status, entry.error = "failed", str(e).replace(str(entry.path), entry.name)
            logger.warning("encoding %s failed: %s", entry.name, entry.error)
        else:
            entry.status = "ready"
            if cached:
                self.stats["feature_cache_hits"] += 1
        finally:
            entry.finished = time.monotonic()
            entry.encode_seconds = entry.finished - entry.started
            self.stats["encodes"] += 1
            if entry.status == "ready" and not cached and entry.duration > 0:
                self._speed = entry.encode_seconds / entry.duration
            self._trim_predictor_memory()
            entry.done.set_result(None)

    def _trim_predictor_memory(self) -> None:
        # A predictor memoises every video it encodes and every query it embeds, without a bound; a server that
        # runs for weeks must not grow with them. Keep only what the registry holds; the disk cache stays.
        with self._lock:
            keep = {e.features.sha256 for e in self._videos.values() if e.features is not None}
        memo = getattr(self.predictor, "_videos", None)
        if isinstance(memo, dict):
            for sha in [s for s in memo if s not in keep]:
                memo.pop(sha, None)
        queries = getattr(self._asker, "_queries", None)
        if isinstance(queries, dict) and len(queries) > MAX_QUERY_MEMO:
            queries.clear()

    def _answer(self, entry: VideoEntry, query: str) -> Answer:
        if entry.status != "ready" or entry.features is None:
            raise VideoRejected(entry.error or f"{entry.name} is not encoded")
        start = time.perf_counter()
        prediction = self.asker.predict(query, entry.features)
        self.stats["questions"] += 1
        if self.stats["questions"] % 256 == 0:
            self._trim_predictor_memory()
        return Answer(
            video_id=entry.id,
            video=entry.name,
            query=prediction.query,
            duration=prediction.duration,
            moment=prediction.moment,
            steps=[(s.start, s.end, s.caption) for s in prediction.steps],
            seconds=time.perf_counter() - start,
        )

    def ask(self, video_id: str, query: str) -> Future[Answer]:
        """Queue a question (after the video's encoding, if that is not done yet).

        Returns:
            A future of the :class:`Answer`; it raises :class:`VideoRejected` when the video could not be encoded.

        Raises:
            UnknownVideo: no such video.
            ValueError: an empty question.
        """
        entry = self.get(video_id)
        query = query.strip()
        if not query:
            raise ValueError("the question is empty: type what you are looking for in the video")
        answer: Future[Answer] = Future()

        def enqueue(_: object = None) -> None:
            try:
                _, future = self.questions.submit(lambda: self._answer(entry, query))
            except RuntimeError as e:  # the service is shutting down
                answer.set_exception(e)
                return
            future.add_done_callback(lambda f: settle(answer, f))

        entry.done.add_done_callback(enqueue)  # at once when the video is already encoded
        return answer

    def warm_up(self) -> None:
        """Load the encoders on their lanes (Whisper, the cue and query embedders) before the first request."""

        def encoders() -> None:
            self.predictor.extractor.transcriber  # noqa: B018 (the properties load the models)
            self.predictor.extractor.embedder  # noqa: B018

        encoding = self.encoding.submit(encoders)[1]
        self.questions.submit(lambda: self.asker.encode_query("hi"))[1].result()
        encoding.result()

    # -- state for the page ------------------------------------------------------------------------------------
    def progress(self, entry: VideoEntry) -> dict[str, Any]:
        """Status, queue position and an estimate of how far the encoding is (0..1, capped below 1 until done)."""
        out: dict[str, Any] = {"status": entry.status, "ahead": 0, "fraction": 0.0, "elapsed": 0.0, "estimate": None}
        if entry.status == "queued":
            out["ahead"] = self.encoding.ahead(entry.ticket)
        elif entry.status == "encoding" and entry.started is not None:
            elapsed = time.monotonic() - entry.started
            # Before the first measured encoding: Whisper tiny on two CPU cores runs at about a tenth of real time,
            # plus loading it; afterwards the rate this server measured.
            estimate = 3.0 + 0.15 * entry.duration if self._speed is None else self._speed * entry.duration
            out.update(elapsed=elapsed, estimate=estimate, fraction=min(0.95, elapsed / max(estimate, 1e-3)))
        else:
            out["fraction"] = 1.0
            out["elapsed"] = entry.encode_seconds or 0.0
        return out

    def transcript(self, entry: VideoEntry) -> list[tuple[float, float, str]]:
        if entry.features is None:
            return []
        return [(c.start, c.end, c.text) for c in entry.features.cues]

    def health(self) -> dict[str, Any]:
        from quag import __version__

        spec = self.predictor.spec
        with self._lock:
            counts = {s: sum(e.status == s for e in self._videos.values()) for s in ("queued", "encoding", "ready")}
        return {
            "status": "ok",
            "version": __version__,
            "checkpoint": self.checkpoint,
            "model": self.predictor.config.model.arch,
            "speech_only": bool(spec.speech_only),
            "device": str(self.predictor.device),
            "videos": counts,
            "queue": {"encoding": self.encoding.pending, "questions": self.questions.pending},
            "stats": dict(self.stats),
        }

    def new_incoming(self) -> Path:
        """A fresh file name under ``incoming/`` for an upload being received."""
        return self.incoming_dir / f"{uuid.uuid4().hex}.part"

    def close(self) -> None:
        self.encoding.close()
        self.questions.close()


def wait_ready(service: VideoService, ids: Iterable[str], timeout: float = 600.0) -> None:
    """Block until the given videos are encoded (or failed); for scripts and tests."""
    deadline = time.monotonic() + timeout
    for video_id in ids:
        service.get(video_id).done.result(timeout=max(0.0, deadline - time.monotonic()))
