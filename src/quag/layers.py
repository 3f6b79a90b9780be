"""The package layer order: a module may import only from its own layer or a lower one.

Lowest first. ``tests/test_layers.py`` walks every import of ``src/quag`` (module- and function-level) and fails on
any import that goes to a higher layer, and on any module that is in no layer; docs/architecture.md draws the order.
"""

from __future__ import annotations

LAYERS: tuple[tuple[str, ...], ...] = (
    ("quag", "quag.layers", "quag.tasks", "quag.io", "quag.heap"),
    ("quag.config",),
    ("quag.data",),
    ("quag.models",),
    ("quag.checkpoint",),
    ("quag.evaluation",),
    ("quag.inference",),
    ("quag.training",),
    ("quag.tvsum",),
    ("quag.report",),
    ("quag.pipeline",),
    ("quag.serve",),
    ("quag.demo",),
    ("quag.commands",),
    ("quag.cli", "quag.__main__"),
)
"""Each entry names packages or modules; a name covers its submodules, except the root ``quag`` (only its
``__init__``)."""


def layer_of(module: str, layers: tuple[tuple[str, ...], ...] = LAYERS) -> int | None:
    """1-based layer of a dotted module name (the longest matching entry), or None when no entry covers it.

    Args:
        module: Dotted module name, e.g. ``quag.training.recipe``.
        layers: The layer order, lowest first.
    """
    best: tuple[int, int] | None = None  # (length of the matching entry, layer)
    for index, names in enumerate(layers, start=1):
        for name in names:
            covers = module == name or ("." in name and module.startswith(name + "."))
            if covers and (best is None or len(name) > best[0]):
                best = (len(name), index)
    return None if best is None else best[1]
