"""Video inference beyond one window: sliding windows, tracks across windows, per-frame outputs.

``windows`` schedules the windows over a stream of frames, ``tracking`` turns each window's
(query, class) pairs into objects and associates them into tracks, ``combine`` gives each frame
one output from the windows covering it. ``VideoPredictor`` (ovavss_d2/predictor.py) runs them.
"""

from .combine import FrameCombiner  # noqa: F401
from .tracking import MaskTracker, Track, WindowObjects, window_objects  # noqa: F401
from .windows import SlidingWindows, window_spans  # noqa: F401
