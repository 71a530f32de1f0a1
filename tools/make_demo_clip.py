#!/usr/bin/env python
"""Render a sample clip from real media for the demo: an mp4 with its audio track, plus a wav.

Real photo cut-outs (Debian's tuxpaint-stamps-default) drift over a real background photograph
(opencv-doc / scikit-image) while their own real recordings play. An object can sound for only
part of the clip (``KEY:START-END`` in seconds) and stays visible, silent, for the rest.

    python tools/make_demo_clip.py                              # dog + violin (violin from 3 s)
    python tools/make_demo_clip.py --objects dog cello:2-6 --output output/clip2

Writes ``<output>/demo_clip.mp4`` (H.264 + AAC) and ``<output>/demo_clip.wav`` (the same audio).
Needs the media packages: ``bash scripts/setup.sh --media``.
"""

import argparse
import sys
from pathlib import Path
from typing import List, Tuple

import _avss_synth_path  # noqa: F401  (datasets/ on sys.path, for the generator avss_synth)
import cv2
import numpy as np
import soundfile as sf

from avss_synth.media import MediaError, index_media, load_background, load_sound, load_stamp
from avss_synth.objects import alpha_paste
from ovavss_d2.utils.video_io import AudioStream, VideoWriter

OBJECT_SIZE = 0.42  # sqrt(object area) as a fraction of min(H, W)
TARGET_RMS_DB = -20.0  # loudness of each source
PEAK = 0.89  # the mix is scaled down to this peak if it would exceed it
FADE_SECONDS = 0.03  # fade in / out where a source starts or stops


def parse_object(text: str) -> Tuple[str, float, float]:
    """``"dog"`` or ``"cello:3-6"`` -> ``(key, start, end)`` (end inf: to the end of the clip)."""
    key, _, span = text.partition(":")
    if not span:
        return key, 0.0, float("inf")
    try:
        start, end = (float(v) for v in span.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected KEY or KEY:START-END, got '{text}'") from None
    if not 0 <= start < end:
        raise argparse.ArgumentTypeError(f"'{text}': need 0 <= START < END")
    return key, start, end


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--objects",
        nargs="+",
        type=parse_object,
        default=[("dog", 0.0, float("inf")), ("violin", 3.0, 6.0)],
        help="AVSS-Synth class keys, left to right, each optionally KEY:START-END "
        "(when it sounds)",
    )
    parser.add_argument(
        "--background",
        default="002.jpg",
        help="background photograph: a path, or the file name of one of the "
        "benchmark's default backgrounds",
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="clip length")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate")
    parser.add_argument("--size", default="480x360", help="frame WIDTHxHEIGHT")
    parser.add_argument("--sample-rate", type=int, default=44100, help="audio sample rate")
    parser.add_argument(
        "--stamps-dir",
        default=None,
        help="folder laid out like /usr/share/tuxpaint/stamps (default: that one)",
    )
    parser.add_argument("--output", default="output/demo_clip", help="output folder")
    return parser


def pick_background(name: str, candidates: List[str]) -> np.ndarray:
    if Path(name).is_file():
        return load_background(name)
    for path in candidates:
        if Path(path).name == name:
            return load_background(path)
    names = sorted(Path(p).name for p in candidates)
    raise MediaError(f"background '{name}' is neither a file nor one of {names}")


def fit_background(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre-crop to the output aspect ratio, then resize: ``(H, W, 3)`` float32."""
    h, w = image.shape[:2]
    scale = min(w / width, h / height)
    cw, ch = int(width * scale), int(height * scale)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    crop = image[y0 : y0 + ch, x0 : x0 + cw]
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)


def scaled_stamp(rgba: np.ndarray, side: float) -> np.ndarray:
    """Resize an RGBA stamp so that ``sqrt(area of its box) == side``."""
    h, w = rgba.shape[:2]
    factor = side / np.sqrt(h * w)
    size = (max(1, int(w * factor)), max(1, int(h * factor)))
    return cv2.resize(rgba, size, interpolation=cv2.INTER_AREA)


def paste(canvas: np.ndarray, rgba: np.ndarray, cx: float, cy: float) -> None:
    """Alpha-blend ``rgba`` onto ``canvas`` (float32, in place) centred at ``(cx, cy)``."""
    h, w = rgba.shape[:2]
    alpha_paste(canvas, rgba, int(round(cx - w / 2)), int(round(cy - h / 2)))


def source_track(sound: np.ndarray, n: int, rate: int, start: float, end: float) -> np.ndarray:
    """Loop a recording over ``n`` samples at a set loudness, audible from ``start`` to ``end``."""
    unit = np.concatenate([sound, np.zeros(int(0.3 * rate), dtype=np.float32)])  # short pause
    track = np.tile(unit, n // len(unit) + 1)[:n].astype(np.float64)
    track *= 10 ** (TARGET_RMS_DB / 20) / (np.sqrt(np.mean(track**2)) + 1e-9)
    envelope = np.zeros(n)
    a, b = int(start * rate), min(int(end * rate), n) if np.isfinite(end) else n
    envelope[a:b] = 1.0
    fade = int(FADE_SECONDS * rate)
    envelope = np.convolve(envelope, np.ones(fade) / fade, mode="same") if fade > 1 else envelope
    return track * envelope


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        sys.exit(f"make_demo_clip.py: error: --size must be WIDTHxHEIGHT, got '{args.size}'")
    keys = [key for key, _, _ in args.objects]
    try:
        media = index_media(keys, stamps_dir=args.stamps_dir)
        background = fit_background(
            pick_background(args.background, media.backgrounds), width, height
        )
        stamps = [
            scaled_stamp(load_stamp(media.stamps[k][0]), OBJECT_SIZE * min(width, height))
            for k in keys
        ]
        sounds = [load_sound(media.sounds[k][0], args.sample_rate) for k in keys]
    except MediaError as e:
        sys.exit(f"make_demo_clip.py: error: {e}")

    num_frames = int(round(args.seconds * args.fps))
    n = int(round(args.seconds * args.sample_rate))
    mix = sum(
        source_track(s, n, args.sample_rate, a, b) for s, (_, a, b) in zip(sounds, args.objects)
    )
    mix = mix / max(1.0, np.abs(mix).max() / PEAK)
    audio = mix.astype(np.float32)

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    wav_path, mp4_path = out / "demo_clip.wav", out / "demo_clip.mp4"
    sf.write(wav_path, audio, args.sample_rate, subtype="PCM_16")
    track = AudioStream(args.sample_rate, 1, iter([audio[None]]))
    with VideoWriter(mp4_path, args.fps, audio=track) as writer:
        for i in range(num_frames):
            t = i / args.fps
            canvas = background.copy()
            for k, rgba in enumerate(stamps):
                # objects stand near the bottom, left to right, each drifting on a slow ellipse
                phase = 2 * np.pi * (t / 6.0 + k / len(stamps))
                cx = width * (k + 0.5) / len(stamps) + 0.06 * width * np.sin(phase)
                cy = height * 0.9 - rgba.shape[0] / 2 + 0.03 * height * np.cos(phase)
                paste(canvas, rgba, cx, cy)
            writer.write(np.clip(np.rint(canvas), 0, 255).astype(np.uint8))
    print(f"video: {mp4_path}\naudio: {wav_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
