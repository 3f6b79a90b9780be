import json
from pathlib import Path

import pytest

from quag.commands.data_stats import split_stats
from quag.data import annotations as A
from tests.helpers import HIREST


def test_official_counts() -> None:
    train = split_stats(A.load_split(HIREST, "train"))
    val = split_stats(A.load_split(HIREST, "val"))
    assert train["moment_retrieval"] == 865
    assert train["moment_segmentation_train_examples"] == 4128
    assert train["moment_segmentation_train_videos"] == 547
    assert train["step_captioning"] == 4145
    assert val["moment_retrieval"] == 193
    assert val["moment_segmentation_eval_videos"] == 78
    assert val["step_captioning"] == 606


def test_segmentation_training_examples_are_teacher_forced() -> None:
    v = next(v for v in A.load_split(HIREST, "val") if v.has_moment and len(v.steps) >= 3)
    ex = A.segmentation_train_examples([v])
    frames = tuple(A.seconds_to_frame(t, v.num_frames) for t in A.unique_boundaries(v))
    assert len(ex) == len(frames) - 1
    for i, e in enumerate(ex):
        assert e.prev_boundary_frames == frames[: i + 1]
        assert e.target_frame == frames[i + 1]
        assert e.region == (frames[i], A.seconds_to_frame(v.bounds[1], v.num_frames))


def test_captions_are_stripped() -> None:
    caps = [e.step.caption for e in A.caption_examples(A.load_split(HIREST, "train"))]
    assert all(c == c.strip() for c in caps)


def write(tmp_path: Path, obj: object) -> Path:
    p = tmp_path / "all_data_train.json"
    p.write_text(json.dumps(obj))
    return p


GOOD = {
    "relevant": True,
    "clip": True,
    "v_duration": 100.0,
    "bounds": [10, 50],
    "steps": [{"index": 0, "heading": "cut ", "absolute_bounds": [10, 50]}],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"v_duration": "long"}, "'v_duration' must be a finite number"),
        ({"v_duration": -1}, "'v_duration' must be > 0"),
        ({"bounds": [1]}, "'bounds' must be \\[start, end\\]"),
        ({"clip": "yes"}, "'clip' must be true/false"),
        ({"steps": [{"heading": "x", "absolute_bounds": [5, 2]}]}, "steps\\[0\\].*ends before it starts"),
        ({"steps": [{"absolute_bounds": [1, 2]}]}, "steps\\[0\\].*missing field 'heading'"),
    ],
)
def test_malformed_entries_name_file_and_field(tmp_path: Path, change: dict, message: str) -> None:
    p = write(tmp_path, {"Make tea": {"abc.mp4": {**GOOD, **change}}})
    with pytest.raises(A.AnnotationError, match=message) as err:
        A.load_split_file(p)
    assert str(p) in str(err.value) and "abc.mp4" in str(err.value)


def test_missing_field_and_bad_json(tmp_path: Path) -> None:
    entry = dict(GOOD)
    del entry["bounds"]
    with pytest.raises(A.AnnotationError, match="missing field 'bounds'"):
        A.load_split_file(write(tmp_path, {"q": {"v.mp4": entry}}))
    p = tmp_path / "broken.json"
    p.write_text('{"q": ')
    with pytest.raises(A.AnnotationError, match="broken.json: not valid JSON"):
        A.load_split_file(p)
    with pytest.raises(FileNotFoundError, match="make-sim"):
        A.load_split(tmp_path, "nope")
