"""`quag import-checkpoint`: the authors' state dicts (synthetic, from the manifests) -> quag checkpoint folders
that `quag infer`, `quag predict` and `Predictor.from_checkpoint` read; unknown files get one error line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from quag.checkpoint import load_checkpoint
from quag.cli import main
from quag.data import annotations as A
from quag.data.features import FeatureSpec
from quag.inference.reference_import import import_reference_checkpoint
from quag.models.reference_compat import (
    ARCH_MARKERS,
    ReferenceFormatError,
    random_reference_state_dict,
    read_reference_state_dict,
    reference_key_map,
)
from tests.models.helpers import MANIFESTS

MANIFEST = {"quag": MANIFESTS / "quag_state_dict.txt", "joint": MANIFESTS / "joint_state_dict.txt"}
WORDS = "clip4cap_model.decoder.embeddings.word_embeddings.weight"


def _write_release(arch: str, path: Path) -> dict[str, torch.Tensor]:
    """A synthetic release file of ``arch``: DDP ``module.`` names under a ``state_dict`` key, plus a frozen
    ``clip_model.*`` tensor, the variations a real file may carry."""
    sd = random_reference_state_dict(MANIFEST[arch], seed=1)
    wrapped = {f"module.{k}": v for k, v in sd.items()}
    wrapped["module.clip_model.text.positional_embedding"] = torch.zeros(2, 3)
    torch.save({"state_dict": wrapped, "epoch": 7}, path)
    return sd


@pytest.fixture(scope="module")
def joint_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    path = tmp_path_factory.mktemp("release") / "HiREST_BEST.pth"
    return path, _write_release("joint", path)


@pytest.mark.slow  # a paper-size model (63M parameters) written and read back: ~15 s
def test_import_writes_a_checkpoint_folder_with_the_official_spec(
    joint_release: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, sd = joint_release
    out = tmp_path / "hirest_joint_release"
    assert main(["import-checkpoint", str(path), str(out), "--arch", "joint"]) == 0
    assert "1 frozen EVA-CLIP keys left out" in capsys.readouterr().out
    model, cfg, spec, meta = load_checkpoint(out)
    assert spec == FeatureSpec() and spec.visual_encoder == "eva-clip-g14" and spec.query_encoder == "eva-clip-g14-text"
    assert (cfg.model.arch, cfg.model.hidden_dim, cfg.model.query_dim, cfg.eval.num_beams) == ("joint", 768, 1024, 3)
    assert meta.step == 0
    ours = model.state_dict()
    for ref_key, target in reference_key_map("joint").items():
        expected = torch.cat([ours[t] for t in target]) if isinstance(target, tuple) else ours[target]
        assert torch.equal(sd[ref_key], expected), ref_key
    source = json.loads((out / "source.json").read_text())
    assert source["arch"] == "joint" and source["dropped_clip_model_keys"] == 1 and len(source["sha256"]) == 64


def test_unknown_files_get_one_line_naming_the_file_and_the_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    cases = {
        "text.pth": b"not a checkpoint",
        "list.pth": None,  # a pickled list
        "ours.pth": None,  # a quag state dict
    }
    (tmp_path / "text.pth").write_bytes(cases["text.pth"] or b"")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    torch.save({"heads.step_captioning.word_embeddings.weight": torch.zeros(2, 2)}, tmp_path / "ours.pth")
    for name in cases:
        assert main(["import-checkpoint", str(tmp_path / name), str(out), "--arch", "joint"]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert str(tmp_path / name) in err and "HiREST_BEST.pth" in err, err
    assert main(["import-checkpoint", str(tmp_path), str(out)]) == 1
    assert "a folder: pass the checkpoint file inside it" in capsys.readouterr().err
    assert not out.exists()


def test_the_arch_is_detected_and_a_wrong_one_refused(tmp_path: Path) -> None:
    quag_like = {WORDS: torch.zeros(2, 2), ARCH_MARKERS["quag"]: torch.zeros(1), ARCH_MARKERS["joint"]: torch.zeros(1)}
    path = tmp_path / "quag.pth"
    torch.save(quag_like, path)
    with pytest.raises(ReferenceFormatError, match="a quag checkpoint, not joint; pass --arch quag"):
        import_reference_checkpoint(path, tmp_path / "out", "joint")
    torch.save({WORDS: torch.zeros(2, 2), ARCH_MARKERS["joint"]: torch.zeros(1)}, path)
    state, dropped = read_reference_state_dict(path)
    assert dropped == [] and set(state) == {WORDS, ARCH_MARKERS["joint"]}
    with pytest.raises(ValueError, match="cannot load the reference joint state dict strictly"):
        import_reference_checkpoint(path, tmp_path / "out")  # detected as joint, then the strict load lists keys


def _official_root(sim_root: Path, dest: Path) -> Path:
    """A copy of the test HiREST-sim root presented as the official release: its spec, 1024-d EVA-CLIP-text
    query embeddings (random here; only the layout and the widths matter)."""
    root = dest / "hirest-features"
    shutil.copytree(sim_root, root)
    FeatureSpec().save(root)
    queries = sorted({v.query for split in ("train", "val") for v in A.load_split(root, split)})
    emb = torch.nn.functional.normalize(torch.randn(len(queries), 1024, generator=torch.Generator().manual_seed(0)))
    torch.save({"queries": queries, "embeddings": emb}, root / FeatureSpec().query_file)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["quag", "joint"])
def test_imported_checkpoints_decode_a_split_and_load_in_the_predictor(
    arch: str, sim_root: Path, tmp_path: Path
) -> None:
    path = tmp_path / f"{arch}.pth"
    _write_release(arch, path)
    out = tmp_path / f"{arch}_release"
    assert main(["import-checkpoint", str(path), str(out), "--arch", arch]) == 0
    root = _official_root(sim_root, tmp_path)
    pred = tmp_path / "pred"
    args = ["infer", str(out), "--data", str(root), "--split", "val", "--out", str(pred), "--device", "cpu"]
    assert main([*args, "--tasks", "moment_retrieval", "moment_segmentation", "--evaluate"]) == 0
    assert (pred / "val_moment_retrieval.json").is_file() and (pred / "val_metrics.json").is_file()
    # a root of other encoders is refused, stream by stream
    assert main(["infer", str(out), "--data", str(sim_root), "--split", "val", "--out", str(pred)]) == 1

    from quag.pipeline.predictor import Predictor

    eva = tmp_path / "eva_clip_psz14.pt"  # the predictor reads only the architecture before the first video
    torch.save({"visual.cls_token": torch.zeros(1, 1, 1408)}, eva)
    predictor = Predictor.from_checkpoint(out, eva_clip_checkpoint=eva)
    assert predictor.spec == FeatureSpec() and predictor.config.model.arch == arch
