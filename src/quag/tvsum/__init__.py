"""Query-based video summarization on TVSum (paper Table 5): data, QUAG saliency model, losses, top-5 mAP.

- :mod:`quag.tvsum.data`: the shared feature folder read in place, the official 4/1 split, batching;
- :mod:`quag.tvsum.model`: :class:`TVSumQuag`, QUAG (MSP, QC2, encoder) with a per-clip saliency head;
- :mod:`quag.tvsum.losses`: QD-DETR's saliency losses on the 20-annotator scores;
- :mod:`quag.tvsum.metrics`: UMT / QD-DETR top-5 mAP in NumPy (no model import);
- :mod:`quag.tvsum.train` and :mod:`quag.tvsum.table`: one model per category and seed, the results table.

Run it with ``quag tvsum`` (see :mod:`quag.commands.tvsum`).
"""

from quag.tvsum.config import TVSUM_CATEGORIES, TVSumConfig, load_tvsum_config
from quag.tvsum.metrics import top5_map, video_top5_map
from quag.tvsum.model import SaliencyOutput, TVSumQuag

__all__ = [
    "TVSUM_CATEGORIES",
    "SaliencyOutput",
    "TVSumConfig",
    "TVSumQuag",
    "load_tvsum_config",
    "top5_map",
    "video_top5_map",
]
