"""Backgrounds and image conditions of AVSS-Synth v2: procedural backgrounds, camera crops,
colour, blur.

Images are float32 ``(H, W, 3)`` RGB in [0, 255] until the frame is written.
"""

from typing import Sequence, Tuple

import cv2
import numpy as np

PROCEDURAL_KINDS = ("gradient", "blobs", "stripes", "checker")
PROCEDURAL_MARGIN = 1.5  # procedural backgrounds are drawn this much larger than the frame


def procedural_size(size: Tuple[int, int]) -> Tuple[int, int]:
    """``(H, W)`` of a procedural background for frames of ``size = (W, H)``."""
    return int(size[1] * PROCEDURAL_MARGIN), int(size[0] * PROCEDURAL_MARGIN)


def procedural_background(kind: str, seed: int, size: Tuple[int, int]) -> np.ndarray:
    """A textured background drawn from ``seed``: float32 ``(H', W', 3)``, see procedural_size."""
    rng = np.random.default_rng(seed)
    h, w = procedural_size(size)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        u = xx * np.cos(angle) + yy * np.sin(angle)
        u = (u - u.min()) / max(1e-6, float(u.max() - u.min()))
        img = c0 + (c1 - c0) * u[..., None]
    elif kind == "blobs":
        cells = int(rng.integers(3, 9))
        grid = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
        img = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    elif kind == "stripes":
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(0.05, 0.3) * min(h, w)
        u = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
        img = c0 + (c1 - c0) * ((u + 1) / 2)[..., None]
    elif kind == "checker":
        cell = max(2, int(rng.uniform(0.04, 0.2) * min(h, w)))
        mask = ((xx // cell + yy // cell) % 2).astype(np.float32)
        img = c0 + (c1 - c0) * cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None]
    else:
        raise ValueError(f"unknown procedural background '{kind}', expected {PROCEDURAL_KINDS}")
    img = img + rng.normal(0, rng.uniform(2, 10), img.shape)  # film grain / texture
    return np.clip(img, 0, 255).astype(np.float32)


def crop_frames(
    image: np.ndarray,
    crops: Sequence[Tuple[float, float, float, float]],
    size: Tuple[int, int],
    flip: bool,
) -> np.ndarray:
    """Resample each ``(x0, y0, w, h)`` crop of ``image`` to ``size = (W, H)``: ``(T, H, W, 3)``.

    Sub-pixel crops (a slow pan or zoom) use one affine warp per frame.
    """
    width, height = size
    image = image.astype(np.float32)
    out = np.empty((len(crops), height, width, 3), dtype=np.float32)
    for t, (x0, y0, w, h) in enumerate(crops):
        sx, sy = w / width, h / height
        src = image
        if min(sx, sy) > 1.5:  # anti-alias a strong downscale before the warp
            factor = min(sx, sy)
            src = cv2.resize(
                image,
                (max(1, int(image.shape[1] / factor)), max(1, int(image.shape[0] / factor))),
                interpolation=cv2.INTER_AREA,
            )
            x0, y0, sx, sy = x0 / factor, y0 / factor, sx / factor, sy / factor
        matrix = np.array([[sx, 0, x0], [0, sy, y0]], dtype=np.float64)
        out[t] = cv2.warpAffine(
            src,
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
    if flip:
        out = out[:, :, ::-1]
    return out


def apply_image_conditions(
    frames: np.ndarray,
    brightness: float,
    contrast: float,
    saturation: float,
    channel_gains: Sequence[float],
    blur_sigma: float,
) -> np.ndarray:
    """The same colour change and blur on every frame: float ``(T, H, W, 3)`` -> uint8."""
    x = frames.astype(np.float32) * brightness
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * contrast + mean
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = grey[..., None] + (x - grey[..., None]) * saturation
    x = x * np.asarray(channel_gains, dtype=np.float32)
    if blur_sigma > 0:
        x = np.stack([cv2.GaussianBlur(f, (0, 0), blur_sigma) for f in x])
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
