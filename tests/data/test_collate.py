import numpy as np
import pytest
import torch

from quag.data.collate import Sample, collate


def sample(task: str, t: int, **kw: object) -> Sample:
    return Sample(
        task=task,
        video_id=f"v{t}.mp4",
        query="q",
        duration=float(t),
        video=np.ones((t, 4), np.float32),
        transcript=np.ones((t, 3), np.float32),
        query_embedding=np.ones(2, np.float32),
        moment_mask=np.ones(t, bool),
        **kw,
    )  # type: ignore[arg-type]


def test_padding_and_masks() -> None:
    b = collate(
        [
            sample("moment_retrieval", 3, start_frame=0, end_frame=2),
            sample("moment_retrieval", 5, start_frame=1, end_frame=4),
        ]
    )
    assert b.video.shape == (2, 5, 4) and b.transcript.shape == (2, 5, 3) and b.query_embedding.shape == (2, 2)
    assert b.video_mask.dtype == torch.bool
    assert b.video_mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert b.moment_mask.tolist() == b.video_mask.tolist()  # never True on padding
    assert b.video[0, 3:].abs().sum() == 0
    assert b.start_target.tolist() == [0, 1] and b.end_target.tolist() == [2, 4]


def test_segmentation_and_caption_fields() -> None:
    bm = np.zeros(4, bool)
    bm[1] = True
    b = collate([sample("moment_segmentation", 4, boundary_mask=bm, segment_target=3, moment_frames=(1, 3))])
    assert b.boundary_mask.tolist() == [[False, True, False, False]]
    assert b.segment_target.tolist() == [3] and b.moment_frames.tolist() == [[1, 3]]
    ids = np.array([101, 7, 8, 0, 0])
    tg = np.array([7, 8, 102, 0, 0])
    c = collate([sample("step_captioning", 2, caption="cut", caption_ids=ids, caption_targets=tg, step_index=0)])
    assert c.caption_mask.tolist() == [[True, True, True, False, False]]
    assert c.captions == ["cut"] and c.caption_targets.tolist() == [tg.tolist()]
    assert c.to("cpu").video.shape == c.video.shape


def test_mixed_tasks_rejected() -> None:
    with pytest.raises(ValueError, match="one task"):
        collate([sample("moment_retrieval", 2), sample("step_captioning", 2)])
    with pytest.raises(ValueError, match="empty"):
        collate([])
