"""Sliding windows: spans, the last window reaching back, and the streaming scheduler."""

import pytest

from ovavss_d2.inference import SlidingWindows, window_spans


def test_last_window_of_a_t_plus_one_frame_video_holds_t_frames():
    assert window_spans(6, length=5, stride=5) == [(0, 5), (1, 6)]
    # the old behaviour: a one-frame window
    assert window_spans(6, length=5, stride=5, full_last=False) == [(0, 5), (5, 6)]


@pytest.mark.parametrize("num_frames", [1, 3, 5, 6, 7, 12, 13])
@pytest.mark.parametrize("stride", [1, 2, 3, 5])
def test_every_frame_covered_and_no_short_window(num_frames, stride):
    spans = window_spans(num_frames, length=5, stride=stride)
    covered = sorted({t for a, b in spans for t in range(a, b)})
    assert covered == list(range(num_frames))
    assert all(b - a == min(5, num_frames) for a, b in spans)
    starts = [a for a, _ in spans]
    assert starts == sorted(starts)
    # regular windows start every `stride` frames; only the last one may break the step
    assert all(b - a == stride for a, b in zip(starts[:-2], starts[1:-1]))


def test_hand_computed_spans():
    assert window_spans(7, length=3, stride=2) == [(0, 3), (2, 5), (4, 7)]
    assert window_spans(8, length=3, stride=2) == [(0, 3), (2, 5), (4, 7), (5, 8)]
    assert window_spans(4, length=3, stride=1) == [(0, 3), (1, 4)]
    assert window_spans(2, length=5, stride=5) == [(0, 2)]  # a video shorter than T


def test_streaming_windows_hold_the_right_items():
    windows = SlidingWindows(length=3, stride=2)
    got = [w for w in (windows.push(f"f{t}") for t in range(6)) if w is not None]
    got.append(windows.finish())
    assert got == [(0, ["f0", "f1", "f2"]), (2, ["f2", "f3", "f4"]), (3, ["f3", "f4", "f5"])]
    assert windows.finish() is None  # nothing left


def test_bad_stride():
    with pytest.raises(ValueError, match="stride must lie in 1..5"):
        SlidingWindows(5, 6)
    with pytest.raises(ValueError, match="stride must lie in 1..5"):
        SlidingWindows(5, 0)
