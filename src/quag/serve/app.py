"""The web app and JSON API of ``quag serve`` (FastAPI): one page, its three static files, and ``/api``.

Routes (the OpenAPI schema is at ``/api/openapi.json``):

=====================================  =================================================================
``GET  /``                             the page (``static/index.html``; all assets served from the package)
``GET  /api/health``                   model, device, videos by status, queue length, counters
``GET  /api/examples``                 the example videos offered on the page
``POST /api/examples/{name}``          register an example (encoded like an upload) -> video
``POST /api/videos``                   upload a video (multipart field ``file``) -> video (201 new, 200 known)
``GET  /api/videos``                   the registered videos
``GET  /api/videos/{id}``              one video: status, encoding progress, transcript once encoded
``GET  /api/videos/{id}/media``        the stored file (range requests, for the player)
``POST /api/videos/{id}/ask``          ``{"query": "..."}`` -> moment, steps and their captions
=====================================  =================================================================

Safety: request bodies are capped while they arrive (:class:`BodyLimit`: ``max_upload_bytes`` for uploads, 64 KiB
for anything else; 413 past it, before the body is read when ``Content-Length`` says so); ids
are checked against ``[0-9a-f]{32}`` and looked up in the registry, example names against the listing, so no
request names a path; the interactive docs pages are off because they load their scripts from a CDN.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from fastapi import FastAPI, File, HTTPException, Request, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quag import __version__
from quag.serve.service import Answer, UnknownVideo, VideoEntry, VideoService
from quag.serve.uploads import VideoRejected

logger = logging.getLogger(__name__)

VIDEO_ID_PATTERN = r"^[0-9a-f]{32}$"
SMALL_BODY = 64 * 1024
"""Largest body of a request that is not an upload (a question is a few hundred bytes)."""
MULTIPART_OVERHEAD = 64 * 1024
"""Bytes allowed on top of the upload limit for the multipart envelope (boundaries, part headers)."""

VideoId = Annotated[str, PathParam(pattern=VIDEO_ID_PATTERN, description="a video id from an upload")]

STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}


# -- schema ------------------------------------------------------------------------------------------------------
class Progress(BaseModel):
    status: Literal["queued", "encoding", "ready", "failed"]
    ahead: int = Field(description="model jobs queued before this video's encoding")
    fraction: float = Field(description="estimated share of the encoding done, 0..1 (1 once ready)")
    elapsed: float = Field(description="seconds spent encoding so far")
    estimate: float | None = Field(description="estimated seconds the encoding takes")


class Cue(BaseModel):
    start: float
    end: float
    text: str


class VideoOut(BaseModel):
    id: str = Field(description="first 32 hex digits of the file's SHA-256")
    name: str = Field(description="the uploaded file's name or the example's (display only)")
    source: Literal["upload", "example"]
    duration: float = Field(description="seconds")
    size: int = Field(description="bytes")
    media_type: str
    media_url: str
    progress: Progress
    error: str | None = Field(description="why the video could not be encoded")
    transcript: list[Cue] = Field(description="the speech transcript, once encoded")


class ExampleOut(BaseModel):
    name: str
    size: int
    id: str | None = Field(description="the video id once registered")
    query: str | None = Field(description="a question to try (the query of the example's JSON file)")


class Question(BaseModel):
    query: str = Field(min_length=1, max_length=500, description="what to look for, in words")


class StepOut(BaseModel):
    start: float
    end: float
    caption: str


class AnswerOut(BaseModel):
    video_id: str
    video: str
    query: str
    duration: float
    moment: tuple[float, float] = Field(description="[start, end] in seconds")
    steps: list[StepOut]
    seconds: float = Field(description="model time, queueing excluded")


class Health(BaseModel):
    status: str
    version: str
    checkpoint: str | None
    model: str
    speech_only: bool
    device: str
    videos: dict[str, int]
    queue: dict[str, int] = Field(description="jobs waiting per lane: encoding, questions")
    stats: dict[str, int]


# -- app ---------------------------------------------------------------------------------------------------------
def _static_files() -> dict[str, tuple[bytes, str]]:
    """name -> (content, media type): the files of ``quag/serve/static`` and the reports' stylesheet."""
    from quag.report import STYLE

    files = {"quag.css": (STYLE.encode(), STATIC_TYPES[".css"])}
    for item in resources.files("quag.serve").joinpath("static").iterdir():
        suffix = Path(item.name).suffix
        if item.is_file() and suffix in STATIC_TYPES:
            files[item.name] = (item.read_bytes(), STATIC_TYPES[suffix])
    return files


def _copy_upload(source: IO[bytes], target: Path) -> int:
    """Copy a received upload (already within the body limit) to ``target``; returns its size."""
    with open(target, "wb") as out:
        shutil.copyfileobj(source, out, length=1 << 20)
    return target.stat().st_size


def byte_size(n: float) -> str:
    """``64 KiB``, ``200.0 MiB``."""
    return f"{n / 2**10:.0f} KiB" if n < 2**20 else f"{n / 2**20:.1f} MiB"


def too_large(limit: int, upload: bool) -> str:
    """The 413 message: the limit, and for uploads what to do."""
    text = f"the request body is larger than this server accepts ({byte_size(limit)})"
    if upload:
        text += "; upload a shorter or smaller video, or start `quag serve` with a larger --max-upload-mb"
    return text


class BodyLimit:
    """ASGI middleware: answer 413, with the limit and the remedy, once a request body passes its limit.

    The limit is counted as the body arrives: a ``Content-Length`` over it is refused before any byte is read, a
    body without one (chunked) is cut off at the limit and whatever the app would have answered is replaced.

    Args:
        app: the app.
        max_upload_bytes: the limit of uploads (``POST /api/videos``); other requests get :data:`SMALL_BODY`.
    """

    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        upload = scope["path"] == "/api/videos"
        limit = self.max_upload_bytes + MULTIPART_OVERHEAD if upload else SMALL_BODY
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._reject(send, upload)
            return
        received, over, started = 0, False, False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}  # the app stops reading here
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if not over:  # once over, the 413 below replaces the app's answer
                started = True
                await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._reject(send, upload)

    async def _reject(self, send: Send, upload: bool) -> None:
        detail = too_large(self.max_upload_bytes if upload else SMALL_BODY, upload)
        body = json.dumps({"detail": detail}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def video_out(service: VideoService, entry: VideoEntry) -> VideoOut:
    return VideoOut(
        id=entry.id,
        name=entry.name,
        source=entry.source,
        duration=entry.duration,
        size=entry.size,
        media_type=entry.media_type,
        media_url=f"/api/videos/{entry.id}/media",
        progress=Progress(**service.progress(entry)),
        error=entry.error,
        transcript=[Cue(start=s, end=e, text=t) for s, e, t in service.transcript(entry)],
    )


def answer_out(answer: Answer) -> AnswerOut:
    return AnswerOut(
        video_id=answer.video_id,
        video=answer.video,
        query=answer.query,
        duration=answer.duration,
        moment=answer.moment,
        steps=[StepOut(start=s, end=e, caption=c) for s, e, c in answer.steps],
        seconds=answer.seconds,
    )


def create_app(service: VideoService, max_upload_bytes: int = 200 * 2**20) -> FastAPI:
    """The FastAPI app around ``service`` (one per process: the service holds the loaded model).

    Args:
        service: the video service (its lanes are shut down with the app).
        max_upload_bytes: largest accepted upload.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(
        title="quag serve",
        version=__version__,
        description="Ask questions of a video: the moment that answers it, its steps and a caption per step.",
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN; the schema is served as JSON
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_upload_bytes=max_upload_bytes)
    static = _static_files()

    def entry_of(video_id: str) -> VideoEntry:
        try:
            return service.get(video_id)
        except UnknownVideo:
            raise HTTPException(404, f"no video {video_id}: upload it first (POST /api/videos)") from None

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(static["index.html"][0], headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        if name not in static:  # a fixed set of names: nothing else can be read
            raise HTTPException(404, f"no static file {name!r}")
        content, media_type = static[name]
        return Response(content, media_type=media_type, headers={"Cache-Control": "no-cache"})

    @app.get("/api/health", response_model=Health)
    async def health() -> dict[str, Any]:
        return service.health()

    @app.get("/api/examples", response_model=list[ExampleOut])
    async def examples() -> list[ExampleOut]:
        return [
            ExampleOut(
                name=name, size=path.stat().st_size, id=service.example_id(name), query=service.example_query(name)
            )
            for name, path in service.examples().items()
        ]

    @app.post("/api/examples/{name}", response_model=VideoOut, status_code=201)
    async def add_example(name: str, response: Response) -> VideoOut:
        try:
            entry, known = await run_in_threadpool(service.add_example, name)
        except UnknownVideo:
            raise HTTPException(404, f"no example video {name!r}: GET /api/examples lists them") from None
        except VideoRejected as e:
            raise HTTPException(415, str(e)) from None
        if known:
            response.status_code = 200
        return video_out(service, entry)

    @app.post(
        "/api/videos",
        response_model=VideoOut,
        status_code=201,
        responses={
            200: {"description": "the same content was uploaded before: its video", "model": VideoOut},
            413: {"description": "larger than the upload limit"},
            415: {"description": "not a video PyAV can read, or too short"},
        },
    )
    async def upload(response: Response, file: Annotated[UploadFile, File(description="the video file")]) -> VideoOut:
        incoming = service.new_incoming()
        size = await run_in_threadpool(_copy_upload, file.file, incoming)
        if size > max_upload_bytes:  # the envelope allowance let a slightly larger file through
            incoming.unlink()
            raise HTTPException(413, too_large(max_upload_bytes, upload=True))
        if size == 0:
            incoming.unlink()
            raise HTTPException(400, f"{file.filename or 'the upload'}: the file is empty (0 bytes)")
        try:
            entry, known = await run_in_threadpool(service.add_upload, incoming, file.filename)
        except VideoRejected as e:
            raise HTTPException(415, str(e)) from None
        if known:
            response.status_code = 200
        return video_out(service, entry)

    @app.get("/api/videos", response_model=list[VideoOut])
    async def videos() -> list[VideoOut]:
        return [video_out(service, e) for e in service.videos()]

    @app.get("/api/videos/{video_id}", response_model=VideoOut, responses={404: {"description": "unknown id"}})
    async def video(video_id: VideoId) -> VideoOut:
        return video_out(service, entry_of(video_id))

    @app.get("/api/videos/{video_id}/media", response_class=FileResponse, responses={404: {"description": "unknown"}})
    async def media(video_id: VideoId) -> FileResponse:
        entry = entry_of(video_id)
        if not entry.path.is_file():
            raise HTTPException(404, f"the file of video {video_id} is no longer stored: upload it again")
        return FileResponse(entry.path, media_type=entry.media_type, filename=None)

    @app.post(
        "/api/videos/{video_id}/ask",
        response_model=AnswerOut,
        responses={404: {"description": "unknown id"}, 422: {"description": "empty question or unusable video"}},
    )
    async def ask(video_id: VideoId, question: Question) -> AnswerOut:
        entry = entry_of(video_id)
        if entry.status == "failed":
            raise HTTPException(422, entry.error or f"{entry.name} could not be encoded")
        try:
            future = service.ask(video_id, question.query)
        except UnknownVideo:
            raise HTTPException(404, f"no video {video_id}: upload it first (POST /api/videos)") from None
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        try:
            answer = await asyncio.wrap_future(future)
        except (VideoRejected, ValueError) as e:
            raise HTTPException(422, str(e)) from None
        return answer_out(answer)

    @app.exception_handler(Exception)
    async def failure(request: Request, exc: Exception) -> JSONResponse:
        # One line for the person, never a traceback; the log has the details.
        logger.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    return app
