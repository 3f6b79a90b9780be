"""The CLIP BPE tokenizer against known ids and against OpenAI's simple_tokenizer (when installed)."""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

from quag.pipeline.clip_tokenizer import ClipTokenizer, default_bpe_path
from quag.pipeline.queries import collect_queries

try:
    BPE = default_bpe_path()
except FileNotFoundError:  # pragma: no cover - openai-clip is part of quag[extract]
    BPE = None
pytestmark = pytest.mark.skipif(BPE is None, reason="CLIP BPE vocabulary not installed (pip install openai-clip)")

QUERIES = [
    "Make an Egg and Cheese Sandwich",
    "How to tie a tie?",
    "  café   crème brûlée — 2 ways!! ",
    "Fish &amp; chips, it's what we'd've done (10/10)",
    "Ein Fahrrad reparieren: Schritt 1",
    "日本のカレーを作る",
]


@pytest.fixture(scope="module")
def tokenizer() -> ClipTokenizer:
    return ClipTokenizer(BPE)


def reference_module() -> ModuleType | None:
    """OpenAI's simple_tokenizer.py from the openai-clip distribution, loaded without its package (no torchvision)."""
    try:
        path = Path(str(metadata.distribution("openai-clip").locate_file("clip/simple_tokenizer.py")))
    except metadata.PackageNotFoundError:
        return None
    spec = importlib.util.spec_from_file_location("clip_simple_tokenizer_reference", path)
    if spec is None or spec.loader is None or not path.is_file():
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_known_ids(tokenizer: ClipTokenizer) -> None:
    assert tokenizer.encode("A person riding a motorcycle") == [320, 2533, 6765, 320, 10297]
    assert (tokenizer.sot_id, tokenizer.eot_id, len(tokenizer.encoder)) == (49406, 49407, 49408)


def test_rows_are_sot_ids_eot_then_padding(tokenizer: ClipTokenizer) -> None:
    rows = tokenizer(["a dog", "a diagram"])
    assert rows.shape == (2, 77) and rows.dtype.is_floating_point is False
    assert rows[0, :4].tolist() == [49406, 320, 1929, 49407] and rows[0, 4:].eq(0).all()
    assert (rows.argmax(-1) == rows.eq(49407).int().argmax(-1)).all()  # EOT is each row's largest id


def test_long_text_is_truncated_with_eot_last(tokenizer: ClipTokenizer) -> None:
    row = tokenizer("word " * 100)[0]
    assert row[-1].item() == 49407 and row[0].item() == 49406
    with pytest.raises(ValueError, match="more than 77"):
        tokenizer("word " * 100, truncate=False)


def test_round_trip(tokenizer: ClipTokenizer) -> None:
    assert tokenizer.decode(tokenizer.encode("Make an Egg and Cheese Sandwich")).strip() == (
        "make an egg and cheese sandwich"
    )


def test_matches_openai_simple_tokenizer(tokenizer: ClipTokenizer) -> None:
    ref = reference_module()
    if ref is None:
        pytest.skip("openai-clip's simple_tokenizer.py is not installed")
    reference = ref.SimpleTokenizer(str(BPE))
    for text in QUERIES:
        assert tokenizer.encode(text) == reference.encode(text), text
    hirest = collect_queries(Path(__file__).resolve().parents[2] / "data" / "hirest")
    assert len(hirest) > 1000
    assert [tokenizer.encode(q) for q in hirest] == [reference.encode(q) for q in hirest]
