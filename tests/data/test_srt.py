import numpy as np
import pytest

from quag.data.srt import Cue, SrtError, format_srt, parse_srt, spread_cues

SRT = """1
00:00:01,000 --> 00:00:04,500
okay so first

2
00:00:03,200 --> 00:00:06,900
we cut the
onions

3
00:00:08,100 --> 00:00:08,900
mm
"""


def test_parse_srt() -> None:
    cues = parse_srt(SRT)
    assert [c.index for c in cues] == [1, 2, 3]
    assert cues[1].start == 3.2 and cues[1].end == 6.9 and cues[1].text == "we cut the\nonions"
    assert parse_srt("") == []


def test_format_parse_round_trip() -> None:
    cues = [Cue(1, 0.0, 2.345, "a"), Cue(2, 3661.5, 3662.0, "b c")]
    assert parse_srt(format_srt(cues)) == cues


def test_official_spreading_rule() -> None:
    cues = parse_srt(SRT)
    emb = np.eye(3, dtype=np.float32)
    out = spread_cues(cues, emb, 10)
    # cue 1 fills seconds 1..3 (floor(4.5) = 4 exclusive), cue 2 overwrites 3..5, cue 3 is sub-second: no row
    assert out[:, 0].tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert out[:, 1].tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    assert out[:, 2].sum() == 0
    assert out.shape == (10, 3)


def test_spreading_clips_at_video_end_and_overlap_mode() -> None:
    cues = [Cue(1, 7.0, 15.0, "long")]
    assert spread_cues(cues, np.ones((1, 2), np.float32), 10)[:, 0].tolist() == [0] * 7 + [1] * 3
    cues = parse_srt(SRT)
    out = spread_cues(cues, np.eye(3, dtype=np.float32), 10, mode="overlap")
    assert out[8, 2] == 1  # the sub-second cue keeps its second
    # second 3 = [3, 4): cue 1 covers 1.0 s, cue 2 covers 0.8 s -> cue 1; second 4: cue 1 0.5 s, cue 2 1.0 s
    assert out[3].tolist() == [1, 0, 0]
    assert out[4].tolist() == [0, 1, 0]
    assert out[0].tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x\n00:00:01,000 --> 00:00:02,000\nhi\n", "index line 'x' is not an integer"),
        ("1\n00:00:01,000 -> 00:00:02,000\nhi\n", "lacks '-->'"),
        ("1\n00:00:01 --> 00:00:02,000\nhi\n", "is not HH:MM:SS,mmm"),
        ("1\n00:00:05,000 --> 00:00:02,000\nhi\n", "ends .* before it starts"),
        ("1\n", "expected an index line"),
    ],
)
def test_malformed_srt_names_file_and_cue(text: str, message: str) -> None:
    with pytest.raises(SrtError, match=message) as err:
        parse_srt(text, "v.srt")
    assert "v.srt: cue 1" in str(err.value)


def test_embedding_rows_must_match_cues() -> None:
    with pytest.raises(ValueError, match="2 cues need"):
        spread_cues(parse_srt(SRT)[:2], np.zeros((3, 4), np.float32), 10)
