"""Official HiREST evaluation (docs/evaluation.md) for prediction files of any system.

* :func:`~quag.evaluation.evaluate.evaluate_files` / :func:`~quag.evaluation.evaluate.evaluate_predictions`:
  score a task's predictions (what ``quag evaluate`` and training call);
* :mod:`~quag.evaluation.predictions`: the official prediction formats, JSONL records, validation;
* :mod:`~quag.evaluation.ground_truth`: split files, formatted step files, categories;
* :mod:`~quag.evaluation.metrics`: pure metric functions; caption scorers are imported lazily;
* :mod:`~quag.evaluation.selection`: per-task scores of a split and the checkpoint selection score;
* :mod:`~quag.evaluation.baselines`: trivial baselines built from train annotations.

Nothing in this package imports the model or torch (the optional NLI and BERTScore scorers import
``transformers`` when asked for).
"""

from quag.evaluation.evaluate import evaluate_files, evaluate_predictions, flat_metrics

__all__ = ["evaluate_files", "evaluate_predictions", "flat_metrics"]
