"""Which frames go through the model together: sliding windows over a stream of frames.

Windows hold ``length`` (``T``) consecutive frames and start every ``stride`` frames (``1 <= stride
<= T``). When the stream ends with frames that no window covered, one last window ends at the last
frame; with ``full_last`` it reaches back to hold ``T`` frames (unless the whole video is shorter),
otherwise it holds only the uncovered frames. Every frame is covered by at least one window.
"""

from collections import deque
from typing import Any, Deque, List, Optional, Tuple

__all__ = ["SlidingWindows", "window_spans"]

Window = Tuple[int, List[Any]]  # (index of its first frame, its items in time order)


class SlidingWindows:
    """Cut a stream of per-frame items into windows, keeping only the last ``length`` items.

    Example::

        windows = SlidingWindows(length=5, stride=3)
        for item in items:
            window = windows.push(item)  # (start, items) once a window is complete, else None
        last = windows.finish()  # the window covering the leftover frames, or None
    """

    def __init__(self, length: int, stride: int, full_last: bool = True):
        if length <= 0:
            raise ValueError(f"window length must be positive, got {length}")
        if not 1 <= stride <= length:
            raise ValueError(
                f"window stride must lie in 1..{length} (the window length), got {stride}"
            )
        self.length = int(length)
        self.stride = int(stride)
        self.full_last = bool(full_last)
        self._items: Deque[Tuple[int, Any]] = deque(maxlen=self.length)
        self._next_start = 0  # first frame of the next regular window
        self.covered_end = 0  # frames [0, covered_end) are covered by the windows given so far
        self.num_frames = 0

    def push(self, item: Any) -> Optional[Window]:
        """Add the next frame's item; return the window it completes, if any."""
        self._items.append((self.num_frames, item))
        self.num_frames += 1
        if self.num_frames == self._next_start + self.length:
            start = self._next_start
            self._next_start += self.stride
            self.covered_end = self.num_frames
            return start, [it for i, it in self._items if i >= start]
        return None

    def finish(self) -> Optional[Window]:
        """The last window, when frames after the last complete window remain; else None."""
        n = self.num_frames
        if self.covered_end >= n:
            return None
        start = max(0, n - self.length) if self.full_last else self.covered_end
        self.covered_end = n
        return start, [it for i, it in self._items if i >= start]


def window_spans(
    num_frames: int, length: int, stride: int, full_last: bool = True
) -> List[Tuple[int, int]]:
    """``(start, end)`` of every window over ``num_frames`` frames, in the order they run."""
    windows = SlidingWindows(length, stride, full_last)
    spans = []
    for t in range(num_frames):
        window = windows.push(t)
        if window is not None:
            spans.append((window[0], window[0] + len(window[1])))
    last = windows.finish()
    if last is not None:
        spans.append((last[0], last[0] + len(last[1])))
    return spans
