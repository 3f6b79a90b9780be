"""Run by ``torchrun`` in test_distributed.py: train, then dump this rank's parameters and losses."""

import sys
from pathlib import Path

import torch

from quag.config import load_config
from quag.training import distributed as D
from quag.training.recipe import TrainRecipe

out, overrides = Path(sys.argv[1]), sys.argv[2:]
recipe = TrainRecipe(load_config(None, overrides), device="cpu", progress=False)
recipe.setup()
result = recipe.train()
flat = torch.cat([p.detach().flatten() for p in recipe.raw_model.parameters()])
torch.save({"params": flat, "losses": result.losses, "metrics": result.val_metrics}, out / f"rank{recipe.dist.rank}.pt")
recipe.cleanup()
D.shutdown(0)
