"""The committed example (``make example`` / ``quag example``): a real video, the speech-only model, a score.

1. Build HiREST-sim if it is missing (real annotations, simulated features; about 2 minutes).
2. Train the speech-only model of ``configs/sim_speech_cpu.yaml`` if its run has no checkpoint (resumes an
   interrupted run; a finished one is reused). It reads transcripts and queries only.
3. For each example video (``examples/<name>.mp4`` with its script's timings in ``examples/<name>.json``), do what
   ``quag predict VIDEO -q QUERY --checkpoint CKPT`` does: transcribe with Whisper, embed the cues with MiniLM,
   predict the moment, its steps and a caption per step; print them and write the JSON and HTML pages.
4. Score the prediction against the script (:func:`score_prediction`): moment IoU, step precision and recall at
   IoU > 0.5 (the official segmentation rule, :func:`~quag.evaluation.metrics.segmentation.step_bound_scores`),
   and each script step's sentence beside the caption of the predicted step that overlaps it most.

The example's ground truth is a file like ``examples/grilled_cheese.json``::

    {"video": "grilled_cheese.mp4", "query": "Make a Grilled Cheese Sandwich", "duration": 126.5,
     "moment": [s, e], "steps": [{"start": s, "end": e, "sentence": "butter one side of each slice of bread"}, ...],
     "narration": [...], "license": "CC0-1.0: ..."}

Nothing here chooses a setting from the example: the model and its decoding are the config's, chosen on
HiREST-sim train/val.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quag.evaluation.caption_diversity import CaptionDiversity, caption_diversity
from quag.evaluation.metrics.retrieval import temporal_iou
from quag.evaluation.metrics.segmentation import step_bound_scores
from quag.pipeline.predictor import Prediction, Step

logger = logging.getLogger(__name__)

SPEECH_CONFIG = "configs/sim_speech_cpu.yaml"
EXAMPLES_DIR = "examples"
STEP_IOU = 0.5


class ExampleError(ValueError):
    """A malformed example ground-truth file; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class ExampleTruth:
    """The script's timings of one example video (the JSON beside it)."""

    path: Path
    """The ground-truth JSON file."""
    video: str
    query: str
    duration: float
    moment: tuple[float, float]
    steps: tuple[Step, ...]
    license: str = ""

    @property
    def video_path(self) -> Path:
        """The video file, beside the JSON."""
        return self.path.parent / self.video

    @classmethod
    def load(cls, path: str | Path) -> ExampleTruth:
        """Read and check an example's ground truth.

        Raises:
            ExampleError: the file is missing, not JSON, or a field is missing or malformed (the message names
                the file and the field).
        """
        path = Path(path)
        if not path.is_file():
            raise ExampleError(f"{path}: example ground truth not found (run `python examples/make_examples.py`)")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ExampleError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); rebuild it") from e

        def bad(name: str, what: str) -> ExampleError:
            return ExampleError(f"{path}: field {name!r} must be {what}; fix it or rebuild the example")

        def span(value: Any, name: str) -> tuple[float, float]:
            if not (isinstance(value, list | tuple) and len(value) == 2 and all(_is_number(x) for x in value)):
                raise bad(name, "[start, end] in seconds")
            lo, hi = float(value[0]), float(value[1])
            if not 0 <= lo < hi:
                raise bad(name, f"[start, end] with 0 <= start < end (got [{lo}, {hi}])")
            return lo, hi

        if not isinstance(data, dict):
            raise ExampleError(f"{path}: expected a JSON object with video, query, duration, moment and steps")
        for name in ("video", "query"):
            if not isinstance(data.get(name), str) or not data[name].strip():
                raise bad(name, "a non-empty string")
        if not _is_number(data.get("duration")) or float(data["duration"]) <= 0:
            raise bad("duration", "a positive number of seconds")
        moment = span(data.get("moment"), "moment")
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise bad("steps", "a non-empty list of {start, end, sentence}")
        steps = []
        for i, st in enumerate(raw_steps):
            if not isinstance(st, dict) or not isinstance(st.get("sentence"), str):
                raise bad(f"steps[{i}]", "an object {start, end, sentence}")
            lo, hi = span([st.get("start"), st.get("end")], f"steps[{i}].start/end")
            steps.append(Step(lo, hi, st["sentence"]))
        return cls(
            path=path,
            video=data["video"],
            query=data["query"],
            duration=float(data["duration"]),
            moment=moment,
            steps=tuple(steps),
            license=str(data.get("license", "")),
        )

    def to_record(self) -> dict[str, Any]:
        """The end-to-end record format of :meth:`Prediction.to_record`."""
        return Prediction(self.video, self.query, self.duration, self.moment, list(self.steps)).to_record()


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


@dataclass
class CaptionPair:
    """A script step beside the predicted step that overlaps it most."""

    sentence: str
    """The script's step sentence."""
    caption: str
    """The caption of the best-overlapping predicted step ("" when no predicted step overlaps)."""
    iou: float
    """Temporal IoU of the two steps."""


@dataclass
class ExampleScore:
    """How a prediction matches an example's script. Scores are on a 0-1 scale."""

    moment_iou: float
    step_precision: float
    """Share of predicted steps whose IoU with some script step is > :data:`STEP_IOU`."""
    step_recall: float
    """Share of script steps whose IoU with some predicted step is > :data:`STEP_IOU`."""
    predicted_steps: int
    script_steps: int
    captions: list[CaptionPair] = field(default_factory=list)
    diversity: CaptionDiversity = field(default_factory=lambda: caption_diversity([]))
    """How varied the predicted captions are (flags a decoder that repeats one caption)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "moment_iou": self.moment_iou,
            f"step_precision@{STEP_IOU}": self.step_precision,
            f"step_recall@{STEP_IOU}": self.step_recall,
            "predicted_steps": self.predicted_steps,
            "script_steps": self.script_steps,
            "captions": [c.__dict__ for c in self.captions],
            "caption_diversity": self.diversity.to_dict(),
        }


def score_prediction(prediction: Prediction, truth: ExampleTruth) -> ExampleScore:
    """Score a prediction against an example's script.

    * moment IoU: ``|P ∩ G| / |P ∪ G|`` of the predicted and the script's moment;
    * step precision / recall at IoU > 0.5: many-to-many coverage, as the official moment-segmentation metric
      (no predicted step: both 0);
    * captions: for each script step, the predicted step with the largest IoU (ties: the earlier one), and how
      varied the predicted captions are (:func:`~quag.evaluation.caption_diversity.caption_diversity`).

    Args:
        prediction: what the model said (times in seconds).
        truth: the script's timings.
    """
    pred = [(s.start, s.end) for s in prediction.steps]
    gt = [(s.start, s.end) for s in truth.steps]
    precision, recall = step_bound_scores(pred, gt, (STEP_IOU,))[STEP_IOU]
    pairs = []
    for g in truth.steps:
        ious = [temporal_iou((g.start, g.end), p) for p in pred]
        best = max(range(len(ious)), key=lambda i: (ious[i], -i)) if ious else -1
        if best >= 0 and ious[best] > 0:
            pairs.append(CaptionPair(g.caption, prediction.steps[best].caption, ious[best]))
        else:
            pairs.append(CaptionPair(g.caption, "", 0.0))
    return ExampleScore(
        moment_iou=temporal_iou(prediction.moment, truth.moment),
        step_precision=precision,
        step_recall=recall,
        predicted_steps=len(pred),
        script_steps=len(gt),
        captions=pairs,
        diversity=caption_diversity([s.caption for s in prediction.steps]),
    )


def format_prediction(prediction: Prediction) -> str:
    """The moment, the steps and their captions as ``quag predict`` prints them."""
    s, e = prediction.moment
    lines = [f"query {prediction.query!r}: moment {s:.0f}-{e:.0f} s of {prediction.duration:.0f} s, "]
    lines[0] += f"{len(prediction.steps)} step{'s' if len(prediction.steps) != 1 else ''}"
    lines += [f"  {st.start:6.0f}-{st.end:<6.0f} {st.caption}" for st in prediction.steps]
    return "\n".join(lines)


def format_score(score: ExampleScore, truth: ExampleTruth) -> str:
    """The score as a few lines of text: IoU, step P/R, then the script's sentences beside the captions."""
    s, e = truth.moment
    lines = [
        f"script: moment {s:.0f}-{e:.0f} s, {score.script_steps} steps",
        f"moment IoU {score.moment_iou:.2f}; steps at IoU > {STEP_IOU}: precision {score.step_precision:.2f} "
        f"({score.predicted_steps} predicted), recall {score.step_recall:.2f} ({score.script_steps} in the script)",
    ]
    width = max(len(c.sentence) for c in score.captions)
    lines.append(f"  {'script step':<{width}}  IoU   caption of the best-overlapping predicted step")
    for c in score.captions:
        lines.append(f"  {c.sentence:<{width}}  {c.iou:.2f}  {c.caption or '-'}")
    lines.append(f"predicted captions: {score.diversity.summary()}")
    return "\n".join(lines)


def score_table_html(score: ExampleScore) -> str:
    """The score as an HTML table (moment IoU, step P/R) followed by sentence / caption pairs."""
    head = (
        "<table><tr><th>moment IoU</th><th>step precision @ IoU &gt; 0.5</th><th>step recall @ IoU &gt; 0.5</th>"
        "<th>predicted steps</th><th>script steps</th></tr>"
        f'<tr><td class="num">{score.moment_iou:.2f}</td><td class="num">{score.step_precision:.2f}</td>'
        f'<td class="num">{score.step_recall:.2f}</td><td class="num">{score.predicted_steps}</td>'
        f'<td class="num">{score.script_steps}</td></tr></table>'
    )
    rows = "".join(
        f'<tr><td class="num">{i + 1}</td><td>{html.escape(c.sentence)}</td><td class="num">{c.iou:.2f}</td>'
        f"<td>{html.escape(c.caption)}</td></tr>"
        for i, c in enumerate(score.captions)
    )
    return (
        head + "<table><tr><th>#</th><th>script step</th><th>IoU</th><th>caption of the best-overlapping "
        f"predicted step</th></tr>{rows}</table><p>Predicted captions: {html.escape(score.diversity.summary())}.</p>"
    )


def find_examples(folder: str | Path = EXAMPLES_DIR) -> list[Path]:
    """The ground-truth files of a folder's examples (``*.json`` with a video beside them), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExampleError(f"{folder}: no such folder of examples (the repository's examples/ folder holds them)")
    found = [p for p in sorted(folder.glob("*.json")) if p.with_suffix(".mp4").is_file()]
    if not found:
        raise ExampleError(f"{folder}: no <name>.json beside a <name>.mp4; run `python examples/make_examples.py`")
    return found


def ensure_speech_model(
    config_path: str | Path = SPEECH_CONFIG,
    overrides: list[str] | None = None,
    annotations: str | Path = "data/hirest",
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> Path:
    """Build HiREST-sim and train the speech-only model when they are missing; returns its best checkpoint.

    Args:
        config_path: the speech-only config (``model.visual_dim: 0``).
        overrides: ``key=value`` config overrides.
        annotations: the HiREST annotation root HiREST-sim is built from.
        progress: progress bars.
        say: where progress lines go.
    """
    from quag.checkpoint import read_checkpoint_info
    from quag.config import load_config
    from quag.data.sim import SimConfig, build_sim, check_sim_root
    from quag.training.recipe import train

    cfg = load_config(config_path, overrides)
    if cfg.model.visual_dim != 0:
        raise ValueError(f"{config_path}: the example runs a speech-only model; set model.visual_dim: 0")
    root = Path(cfg.data.root)
    try:
        check_sim_root(root)
    except FileExistsError as e:  # an old build: the message says how to rebuild it
        raise RuntimeError(str(e)) from None
    if not (root / "feature_spec.json").is_file():
        say(f"[1/3] building HiREST-sim in {root} (real annotations, simulated features; about 2 minutes)")
        from quag.pipeline.text import MiniLMEncoder

        build_sim(annotations, root, SimConfig(), encode=MiniLMEncoder(), progress=progress)
    else:
        say(f"[1/3] HiREST-sim found in {root}")
    last, best = cfg.run_dir / "checkpoints" / "last", cfg.run_dir / "checkpoints" / "best"
    if last.is_dir():
        _, _, meta = read_checkpoint_info(last)
        say(f"[2/3] speech-only model {cfg.name}: checkpoint found ({last}, step {meta.step}); resuming if unfinished")
        train(cfg, resume=last, device="cpu", progress=progress)
    else:
        say(
            f"[2/3] training the speech-only model {cfg.name} on CPU ({cfg.model.arch}, width "
            f"{cfg.model.hidden_dim}, {cfg.train.epochs} epochs; a few minutes) -> {cfg.run_dir}"
        )
        train(cfg, device="cpu", progress=progress, overwrite=True)
    if not best.is_dir():
        raise RuntimeError(f"training {cfg.name} wrote no best checkpoint in {best}; see {cfg.run_dir}/train.log")
    return best


def run_example(
    examples: list[str | Path] | None = None,
    config_path: str | Path = SPEECH_CONFIG,
    overrides: list[str] | None = None,
    checkpoint: str | Path | None = None,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Predict on the example videos with the speech-only model and score each against its script.

    Args:
        examples: ground-truth JSON files (default: every example in ``examples/``).
        config_path: the speech-only config, trained when ``checkpoint`` is None and its run has no checkpoint.
        overrides: ``key=value`` overrides of that config.
        checkpoint: a checkpoint folder to use instead (nothing is built or trained).
        out_dir: where the JSON, HTML and score files go (default: ``<run>/example``).
        device: torch device of the model and the encoders.
        cache_dir: feature cache of the predictor (None: none).
        progress: progress bars.
        say: where the printed lines go.

    Returns:
        ``{"checkpoint", "results": [{"video", "prediction", "score", "files"}]}``.
    """
    from quag.pipeline.predictor import Predictor, prediction_section
    from quag.report import video_section, write_report

    truths = [ExampleTruth.load(p) for p in (examples or find_examples())]
    for t in truths:
        if not t.video_path.is_file():
            raise ExampleError(f"{t.path}: its video {t.video_path} is missing; run `python examples/make_examples.py`")
    if checkpoint is None:
        checkpoint = ensure_speech_model(config_path, overrides, progress=progress, say=say)
    checkpoint = Path(checkpoint)
    out = Path(out_dir) if out_dir is not None else checkpoint.resolve().parents[1] / "example"
    say(f"[3/3] predicting with {checkpoint} (speech only: Whisper tiny.en transcript + all-MiniLM-L6-v2)")
    predictor = Predictor.from_checkpoint(checkpoint, device=device, cache_dir=cache_dir)
    results = []
    for truth in truths:
        video = predictor.encode_video(truth.video_path)
        prediction = predictor.predict(truth.query, video)
        score = score_prediction(prediction, truth)
        stem = truth.video_path.stem
        say(f"\n{truth.video_path}: {video.duration:.1f} s, {len(video.cues)} transcript cues")
        say(f"  = quag predict {truth.video_path} -q {json.dumps(truth.query)} --checkpoint {checkpoint}")
        say(format_prediction(prediction))
        say(format_score(score, truth))
        from quag.io import atomic_write_json

        json_path = atomic_write_json(out / f"{stem}.json", [prediction.to_record()])
        score_path = atomic_write_json(out / f"{stem}_score.json", {"truth": str(truth.path), **score.to_dict()})
        html_path = write_report(
            out / f"{stem}.html",
            f"quag example: {truth.video}",
            [
                f"<h2>Score against the script ({html.escape(truth.path.name)})</h2>",
                score_table_html(score),
                "<h2>Script vs prediction</h2>",
                video_section(truth.to_record(), prediction.to_record()),
                "<h2>Prediction with the transcript Whisper heard</h2>",
                prediction_section(prediction, video),
            ],
            note=f"speech-only model {checkpoint}; example {truth.video} ({truth.license or 'license: see examples/'})",
        )
        say(f"wrote {json_path}, {score_path} and {html_path}")
        results.append(
            {
                "video": str(truth.video_path),
                "prediction": prediction.to_record(),
                "score": score.to_dict(),
                "files": [str(json_path), str(score_path), str(html_path)],
            }
        )
    return {"checkpoint": str(checkpoint), "results": results}
