"""Step-captioning evaluation: pair predicted and reference captions, then run every available scorer.

Pairing follows HiREST's ``evaluate_moment_summarization``: for every ground-truth video and every GT caption
``i``, the reference ``gt.captions[i]`` is paired with ``pred.captions[i]``; both are lowercased; each pair is one
item with a single reference. Differences, each counted in the report:

* a GT video without a prediction is scored with an empty caption for each of its steps (``missing``);
* a prediction with fewer captions than GT steps has the missing ones scored as empty strings
  (``missing_captions``; the official code raises ``IndexError``); captions beyond the GT count are ignored
  (``extra_captions``);
* captions that carry ``start``/``end`` are still paired by index; those whose span differs from the GT step
  span are counted (``span_mismatches``) so a caller can see that the pairing is off.

Corpus-level scorers (Bleu_n, METEOR, CIDEr) are rerun on each category's subset, as the official code does; item
scores (SPICE, entailment, BERTScore) are computed once and averaged per group.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

import numpy as np

from quag.evaluation.ground_truth import StepGroundTruth
from quag.evaluation.metrics import captioning as coco
from quag.evaluation.predictions import Predictions, coverage_report


@dataclass
class CaptionOptions:
    """Which caption scorers run, and where their local resources are."""

    metrics: tuple[str, ...] = coco.COCO_METRICS
    """coco-caption scorers to run: Bleu_4, METEOR, ROUGE_L, CIDEr, SPICE (any case; any output key such as "Bleu_1",
    or "BLEU", selects its scorer)."""
    java: str = "java"
    """Java executable (PTB tokenizer, METEOR, SPICE)."""
    spice_corenlp_dir: str | None = None
    """Folder with the Stanford CoreNLP 3.6.0 jars; default ``$QUAG_CORENLP_DIR`` or pycocoevalcap's spice/lib."""
    nli_model: str | None = None
    """Local transformers NLI sequence classifier for ``Entailment``; None: not computed."""
    nli_entailment_label: str | None = None
    """Name of the entailment class in the NLI model's id2label (default: the one starting "entail")."""
    bertscore_model: str | None = None
    """Local transformers encoder for ``BERTScore_F1`` (the official one is roberta-large); None: not computed."""
    bertscore_layer: int | None = None
    """Hidden state used by BERTScore (default: 17 for a 24-layer RoBERTa, else the last)."""
    device: str = "cpu"
    """torch device for the NLI and BERTScore models."""
    batch_size: int = 64

    def __post_init__(self) -> None:
        # Accept scorer names in any case and output keys too ("bleu", "Bleu_1" -> Bleu_4), keep the official order.
        alias = coco.SCORER_OF
        unknown = [m for m in self.metrics if m.lower() not in alias]
        if unknown:
            raise ValueError(f"unknown caption metrics {unknown}; expected some of {', '.join(coco.COCO_METRICS)}")
        wanted = {alias[m.lower()] for m in self.metrics}
        self.metrics = tuple(name for name in coco.COCO_METRICS if name in wanted)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def pair_captions(
    predictions: Predictions, ground_truth: dict[str, StepGroundTruth]
) -> tuple[list[str], list[str], list[str], dict[str, int], list[str]]:
    """Lowercased ``(videos, references, candidates)`` per GT step, the pairing counts and the missing videos."""
    videos, refs, cands, missing = [], [], [], []
    counts = {"missing_captions": 0, "extra_captions": 0, "span_mismatches": 0}
    for video, gt in ground_truth.items():
        pred = predictions.items.get(video)
        if pred is None:
            missing.append(video)
        for i, ref in enumerate(gt.sentences):
            cand = ""
            if pred is not None and i < len(pred.captions):
                c = pred.captions[i]
                cand = c.sentence
                span = gt.caption_spans[i] if i < len(gt.caption_spans) else None
                if c.start is not None and c.end is not None and span is not None and (c.start, c.end) != span:
                    counts["span_mismatches"] += 1
            elif pred is not None:
                counts["missing_captions"] += 1
            videos.append(video)
            refs.append(ref.lower())
            cands.append(cand.lower())
        if pred is not None:
            counts["extra_captions"] += max(0, len(pred.captions) - len(gt.sentences))
    return videos, refs, cands, counts, missing


def score_captions(
    references: Sequence[str],
    candidates: Sequence[str],
    groups: dict[str, list[int]],
    options: CaptionOptions,
    meteor: coco.MeteorScorer | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, str], dict[str, str]]:
    """Every requested caption metric for each group of items.

    Args:
        references: lowercased reference per item.
        candidates: lowercased candidate per item.
        groups: group name (``"all"``, categories) -> item indices.
        options: scorers and their resources.
        meteor: a running :class:`~quag.evaluation.metrics.captioning.MeteorScorer` to reuse; default: one is
            started here and closed before returning.

    Returns:
        ``(metrics per group, scorer description per metric, reason per metric not computed)``. coco metrics
        and Entailment are x100, BERTScore_F1 is on 0-1, as in the official output.
    """
    out: dict[str, dict[str, float]] = {g: {} for g in groups}
    scorers: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in coco.COCO_METRICS:
        if name not in options.metrics:
            for key in coco.METRIC_KEYS[name]:
                skipped[key] = "not requested"
    _coco_scores(references, candidates, groups, options, meteor, out, scorers, skipped)

    if options.nli_model is None:
        skipped["Entailment"] = "no NLI model given (nli_model / --nli-model: a local sequence-classification folder)"
    else:
        from quag.evaluation.metrics.entailment import EntailmentScorer

        nli = EntailmentScorer(options.nli_model, options.device, options.batch_size, options.nli_entailment_label)
        labels = nli.predict(references, candidates)  # premise = reference, hypothesis = prediction
        for g, idx in groups.items():
            out[g].update(nli.percentages([labels[i] for i in idx]))
        scorers["Entailment"] = nli.description

    if options.bertscore_model is None:
        skipped["BERTScore_F1"] = "no BERTScore model given (bertscore_model / --bertscore-model: a local encoder)"
    else:
        from quag.evaluation.metrics.bertscore import BertScorer

        bert = BertScorer(options.bertscore_model, options.bertscore_layer, options.device, options.batch_size)
        _, _, f1 = bert.score(candidates, references)
        for g, idx in groups.items():
            out[g]["BERTScore_F1"] = float(np.mean(f1[idx])) if idx else 0.0
        scorers["BERTScore_F1"] = bert.description
    skipped["CLIPScore"] = "not implemented: it needs raw video frames and OpenAI CLIP ViT-B/32 (optional officially)"
    return out, scorers, skipped


def _coco_scores(
    references: Sequence[str],
    candidates: Sequence[str],
    groups: dict[str, list[int]],
    options: CaptionOptions,
    meteor: coco.MeteorScorer | None,
    out: dict[str, dict[str, float]],
    scorers: dict[str, str],
    skipped: dict[str, str],
) -> None:
    wanted = [m for m in coco.COCO_METRICS if m in options.metrics]
    if not wanted:
        return
    problem = coco.java_problem(options.java)
    if importlib.util.find_spec("pycocoevalcap") is None:
        problem = "pycocoevalcap is not installed: pip install 'quag[eval]'"
    if problem is not None:
        for name in wanted:
            for key in coco.METRIC_KEYS[name]:
                skipped[key] = problem
        return
    tokens = coco.ptb_tokenize([*references, *candidates], options.java)
    refs, cands = tokens[: len(references)], tokens[len(references) :]
    version = f"pycocoevalcap {_version('pycocoevalcap')}"
    tokenization = "PTB tokens (CoreNLP 3.4.1, lowercased, punctuation removed)"

    spice_items: list[float] | None = None
    if "SPICE" in wanted:
        jars, reason = coco.find_corenlp(options.spice_corenlp_dir)
        if jars is None:
            skipped["SPICE"] = reason
        else:
            try:
                spice_items = coco.spice(cands, refs, jars, options.java)
            except RuntimeError as e:  # e.g. a JVM that SPICE 1.0 does not run on: report, keep the rest
                skipped["SPICE"] = str(e)
            else:
                unscored = sum(math.isnan(x) for x in spice_items)
                scorers["SPICE"] = (
                    f"SPICE 1.0 ({version}) with {jars[0]}, {tokenization}; "
                    f"{unscored} items without a score excluded from the mean"
                )

    own_meteor = meteor is None and "METEOR" in wanted
    if own_meteor:
        meteor = coco.MeteorScorer(options.java)
    try:
        for g, idx in groups.items():
            if not idx:
                continue
            sub_refs, sub_cands = [refs[i] for i in idx], [cands[i] for i in idx]
            if "Bleu_4" in wanted:
                for key, value in zip(coco.METRIC_KEYS["Bleu_4"], coco.bleu(sub_cands, sub_refs), strict=True):
                    out[g][key] = value * 100
            if "METEOR" in wanted and meteor is not None:
                out[g]["METEOR"] = meteor.score(sub_cands, sub_refs)[0] * 100
            if "ROUGE_L" in wanted:
                out[g]["ROUGE_L"] = coco.rouge_l(sub_cands, sub_refs) * 100
            if "CIDEr" in wanted:
                out[g]["CIDEr"] = coco.cider(sub_cands, sub_refs) * 100
            if spice_items is not None:
                values = [spice_items[i] for i in idx if not math.isnan(spice_items[i])]
                out[g]["SPICE"] = float(np.mean(values)) * 100 if values else 0.0
    finally:
        if own_meteor and meteor is not None:
            meteor.close()
    for key in coco.METRIC_KEYS["Bleu_4"]:
        if "Bleu_4" in wanted:
            scorers[key] = f"Bleu(4) ({version}), corpus level, closest reference length, {tokenization}"
    if "METEOR" in wanted:
        scorers["METEOR"] = f"METEOR 1.5 jar ({version}), -l en -norm, one process per evaluation, {tokenization}"
    if "ROUGE_L" in wanted:
        scorers["ROUGE_L"] = f"Rouge ({version}), LCS F-measure beta=1.2, mean over items, {tokenization}"
    if "CIDEr" in wanted:
        scorers["CIDEr"] = f"Cider ({version}), CIDEr-D sigma=6, IDF from the scored references, {tokenization}"


def evaluate_step_captioning(
    predictions: Predictions,
    ground_truth: dict[str, StepGroundTruth],
    video_groups: dict[str, list[str]],
    options: CaptionOptions | None = None,
    meteor: coco.MeteorScorer | None = None,
) -> dict:
    """Step-captioning report body: metrics per group, counts, scorers and metrics not computed.

    Args:
        predictions: validated step-captioning predictions.
        ground_truth: ``{video: StepGroundTruth}``.
        video_groups: group name -> videos (``"all"`` plus categories when requested).
        options: scorer options; default :class:`CaptionOptions`.
        meteor: running METEOR process to reuse (tests and training share one).
    """
    options = options or CaptionOptions()
    videos, refs, cands, counts, missing = pair_captions(predictions, ground_truth)
    member_sets = {g: set(members) for g, members in video_groups.items()}
    groups = {g: [i for i, v in enumerate(videos) if v in members] for g, members in member_sets.items()}
    metrics, scorers, skipped = score_captions(refs, cands, groups, options, meteor)
    missing_set = set(missing)
    for g, members in video_groups.items():
        metrics[g]["Total"] = len(members)
        metrics[g]["missing"] = sum(v in missing_set for v in members)
    extra = [v for v in predictions.items if v not in ground_truth]
    report = coverage_report(metrics, len(ground_truth), missing, extra, captions=len(refs), **counts)
    return {**report, "scorers": scorers, "not_computed": skipped}
