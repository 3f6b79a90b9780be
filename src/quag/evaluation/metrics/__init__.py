"""Pure metric functions of the official HiREST protocol (docs/evaluation.md).

* :mod:`~quag.evaluation.metrics.retrieval`: continuous IoU, moment-retrieval recall, video-retrieval recall.
* :mod:`~quag.evaluation.metrics.segmentation`: step-boundary precision/recall and ``preprocess_moment_bounds``.
* :mod:`~quag.evaluation.metrics.captioning`: the coco-caption stack (PTB tokens, Bleu_1..Bleu_4, METEOR, ROUGE_L,
  CIDEr, SPICE); Java and ``pycocoevalcap`` are imported lazily.
* :mod:`~quag.evaluation.metrics.entailment` and :mod:`~quag.evaluation.metrics.bertscore`: model-based caption
  scores from local checkpoints (``transformers``, imported lazily).
"""
