import numpy as np
import pytest

from quag.data.timestamps import frame_to_seconds, num_frames, seconds_to_frame, seconds_to_frames, window_indices


def official_frame(ts: float, duration: int) -> int:
    """The reference's timestamp_to_frame_index with n_model_frames = -1 (digitize on linspace bins)."""
    bins = np.linspace(0, duration - 1, duration)
    return int(min(np.digitize(ts, bins, right=True), duration - 1))


@pytest.mark.parametrize("ts", [0, 0.2, 1, 10, 10.5, 10.0001, 98.9, 99, 99.5, 100, 150, -3])
def test_seconds_to_frame_matches_official_digitize(ts: float) -> None:
    assert seconds_to_frame(ts, 100) == official_frame(ts, 100)


def test_round_trip_integer_seconds() -> None:
    for t in range(0, 50):
        assert seconds_to_frame(frame_to_seconds(seconds_to_frame(t, 50)), 50) == t
    assert frame_to_seconds(7) == 7.0


def test_fractional_times_round_up_and_last_second_clips() -> None:
    assert seconds_to_frame(10.5, 100) == 11
    assert seconds_to_frame(10.0, 100) == 10
    assert seconds_to_frame(99.0, 100) == 99  # last frame
    assert seconds_to_frame(99.4, 100) == 99  # past the last frame: clipped
    assert seconds_to_frame(1e9, 100) == 99


def test_zero_length_step_maps_to_one_frame() -> None:
    assert seconds_to_frame(77, 200) == seconds_to_frame(77, 200)
    assert window_indices(77, 77, 20, "resample").tolist() == [77] * 20


def test_num_frames_uses_python_round() -> None:
    assert num_frames(287.56) == 288
    assert num_frames(263.47) == 263
    assert num_frames(2.5) == 2  # half to even, as Python's round in the official loader
    assert num_frames(3.5) == 4
    assert num_frames(0.2) == 1
    with pytest.raises(ValueError, match="duration"):
        num_frames(float("nan"))


def test_vectorised_conversion_equals_scalar() -> None:
    ts = np.array([0, 0.5, 3, 9.99, 12])
    assert seconds_to_frames(ts, 10).tolist() == [seconds_to_frame(t, 10) for t in ts]
    with pytest.raises(ValueError):
        seconds_to_frames(np.array([np.inf]), 10)


def test_window_reference_truncates_and_repeats() -> None:
    assert window_indices(10, 49, 20, "reference").tolist() == list(range(10, 30))
    # 5 frames into 20 slots: each repeated 4 times (nearest-neighbour repetition of the reference)
    assert window_indices(0, 4, 20, "reference").tolist() == [k for k in range(5) for _ in range(4)]
    # 3 into 20: slots [floor(k*20/3), floor((k+1)*20/3)) -> 6, 7, 7
    assert np.bincount(window_indices(0, 2, 20, "reference")).tolist() == [6, 7, 7]


def test_window_resample_covers_whole_step() -> None:
    idx = window_indices(10, 49, 20, "resample")
    assert len(idx) == 20 and idx[0] == 10 and idx[-1] == 49 and np.all(np.diff(idx) > 0)
    assert window_indices(3, 9, 20, "full").tolist() == list(range(3, 10))
    with pytest.raises(ValueError, match="precedes"):
        window_indices(5, 4, 20, "resample")
