"""Imports go one way: down the layer order of ``quag.layers.LAYERS`` (drawn in docs/architecture.md).

The checker reads every ``.py`` file of ``src/quag`` with ``ast`` and collects all imports, at module level and inside
functions (lazy imports count), ``import x`` and ``from x import y``, with relative imports resolved. The only
exemption: imports under ``if TYPE_CHECKING:`` in the root ``quag/__init__.py``, which names its lazily exposed public
API for type checkers only.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

from quag.layers import LAYERS, layer_of

SRC = Path(__file__).resolve().parents[1] / "src"

Layers = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Import:
    line: int
    target: str
    type_checking: bool


@dataclass(frozen=True)
class BackImport:
    module: str
    line: int
    target: str
    source_layer: int
    target_layer: int

    def __str__(self) -> str:
        layers = f"layer {self.source_layer} -> layer {self.target_layer}"
        return f"{self.module}:{self.line} imports {self.target} ({layers})"


def module_files(src: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``src/<package>`` (``__init__`` names its package)."""
    out: dict[str, Path] = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, path: Path, modules: set[str]) -> list[Import]:
    """Every import statement of one file, with its resolved target module (third-party ones included).

    ``from x import y`` targets the submodule ``x.y`` when it exists, else ``x``.
    """
    is_package = path.name == "__init__.py"
    out: list[Import] = []

    def visit(node: ast.AST, type_checking: bool) -> None:
        if isinstance(node, ast.Import):
            out.extend(Import(node.lineno, alias.name, type_checking) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append(Import(node.lineno, sub if sub in modules else base, type_checking))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_checking)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, type_checking)

    visit(ast.parse(path.read_text(), filename=str(path)), False)
    return out


def check_layers(src: Path, package: str, layers: Layers) -> tuple[list[BackImport], list[str]]:
    """Imports that go to a higher layer, and modules of the package that are in no layer.

    Args:
        src: Folder that holds the package folder.
        package: Top-level package name (its ``__init__`` is the facade whose type-checking imports are exempt).
        layers: The layer order, lowest first (see ``quag.layers.LAYERS``).
    """
    files = module_files(src, package)
    unplaced = [m for m in files if layer_of(m, layers) is None]
    back: list[BackImport] = []
    for module, path in files.items():
        source = layer_of(module, layers)
        if source is None:
            continue
        seen: set[tuple[int, str]] = set()
        for imp in imports_of(module, path, set(files)):
            if imp.target != package and not imp.target.startswith(package + "."):
                continue  # third-party or stdlib
            if imp.type_checking and module == package:
                continue
            target = layer_of(imp.target, layers)
            if target is None:
                unplaced.append(imp.target)
            elif target > source and (imp.line, imp.target) not in seen:
                seen.add((imp.line, imp.target))
                back.append(BackImport(module, imp.line, imp.target, source, target))
    return back, sorted(set(unplaced))


def test_every_import_goes_down_the_layers() -> None:
    back, _ = check_layers(SRC, "quag", LAYERS)
    assert not back, f"{len(back)} import(s) go to a higher layer (see docs/architecture.md):\n" + "\n".join(
        map(str, back)
    )


def test_every_module_is_in_a_layer() -> None:
    _, unplaced = check_layers(SRC, "quag", LAYERS)
    assert not unplaced, f"modules in no layer; add them to quag.layers.LAYERS: {unplaced}"


# -- the checker itself, on a synthetic package -------------------------------------------------------------------

TOY_LAYERS: Layers = (("toy", "toy.low"), ("toy.mid",), ("toy.high",))


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_checker_reports_a_back_up_import_with_module_and_line(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "toy/__init__.py": """\
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from toy.high.api import thing  # exempt: the root facade, type checkers only
            """,
            "toy/low.py": "import os\n",
            "toy/mid/__init__.py": "",
            "toy/mid/core.py": """\
                import toy.low
                from . import helper


                def lazy() -> None:
                    from ..high import api  # line 6: back up, relative and function-level
            """,
            "toy/mid/helper.py": "from toy.mid.core import lazy\n",
            "toy/high/__init__.py": "",
            "toy/high/api.py": "from toy.mid import core\nthing = 1\n",
        },
    )
    back, unplaced = check_layers(tmp_path, "toy", TOY_LAYERS)
    assert [str(b) for b in back] == ["toy.mid.core:6 imports toy.high.api (layer 2 -> layer 3)"]
    assert unplaced == []


def test_checker_reports_type_checking_and_module_level_imports_outside_the_root(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "toy/__init__.py": "",
            "toy/low.py": """\
                from __future__ import annotations

                import typing

                from toy import mid

                if typing.TYPE_CHECKING:
                    import toy.high
            """,
            "toy/mid.py": "",
            "toy/high.py": "",
        },
    )
    back, _ = check_layers(tmp_path, "toy", TOY_LAYERS)
    assert [str(b) for b in back] == [
        "toy.low:5 imports toy.mid (layer 1 -> layer 2)",
        "toy.low:8 imports toy.high (layer 1 -> layer 3)",
    ]


def test_checker_reports_modules_in_no_layer(tmp_path: Path) -> None:
    _write(tmp_path, {"toy/__init__.py": "", "toy/low.py": "", "toy/extra/__init__.py": "", "toy/extra/x.py": ""})
    _, unplaced = check_layers(tmp_path, "toy", TOY_LAYERS)
    assert unplaced == ["toy.extra", "toy.extra.x"]


def test_layer_of_matches_the_longest_entry_and_keeps_the_root_to_itself() -> None:
    assert layer_of("quag") == 1
    assert layer_of("quag.io") == 1
    assert layer_of("quag.training.recipe") == 8
    assert layer_of("quag.tvsum.train") == 9
    assert layer_of("quag.nothing_here") is None
    assert layer_of("toy.mid.core", TOY_LAYERS) == 2
