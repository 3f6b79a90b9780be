"""Tests of quag.tvsum: TVSum top-5 mAP, data, model, losses and the training command."""
