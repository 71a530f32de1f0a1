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
        img = resize_bicubic(grid, (w, h))
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


def _reflect(index: np.ndarray, n: int) -> np.ndarray:
    """Indices outside ``[0, n)`` mirrored at the borders, the border pixel repeated
    (``fedcba|abcdef|fedcba``)."""
    period = 2 * n
    index = np.mod(index, period)
    return np.where(index < n, index, period - 1 - index)


def sample_bilinear(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples of a float ``(H, W, C)`` image at columns ``xs`` (``(W',)``) and rows
    ``ys`` (``(H',)``), pixel centres at integers, mirrored borders: float32 ``(H', W', C)``.

    NumPy's elementwise float64 arithmetic only, so that the result does not depend on the OpenCV
    version or the CPU (cv2.warpAffine rounds the weights to 1/32 pixel in OpenCV 4 and not in 5:
    the frames of the two differed by up to 6 grey levels).
    """
    image = np.asarray(image, dtype=np.float64)
    h, w = image.shape[:2]
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = (xs - x0)[None, :, None], (ys - y0)[:, None, None]
    xa, xb = _reflect(x0.astype(np.int64), w), _reflect(x0.astype(np.int64) + 1, w)
    ya, yb = _reflect(y0.astype(np.int64), h), _reflect(y0.astype(np.int64) + 1, h)
    top = image[ya][:, xa] * (1 - fx) + image[ya][:, xb] * fx
    bottom = image[yb][:, xa] * (1 - fx) + image[yb][:, xb] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _cubic_weights(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution weights of the 4 taps around each position, ``(N, 4)``."""
    d = np.stack([1 + t, t, 1 - t, 2 - t], axis=1)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, far)


def _resize_axis_bicubic(image: np.ndarray, size: int, axis: int) -> np.ndarray:
    n = image.shape[axis]
    pos = (np.arange(size) + 0.5) * (n / size) - 0.5  # pixel centres aligned (as cv2.resize)
    base = np.floor(pos)
    weights = _cubic_weights(pos - base)
    out = 0.0
    for k in range(4):  # a sum of four weighted taps, edge pixels repeated
        index = np.clip(base.astype(np.int64) - 1 + k, 0, n - 1)
        shape = [1] * image.ndim
        shape[axis] = size
        out = out + np.take(image, index, axis=axis) * weights[:, k].reshape(shape)
    return out


def resize_bicubic(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Bicubic resize (Keys, a = -0.75, as cv2.INTER_CUBIC) of a float ``(H, W, C)`` image to
    ``size = (W', H')``, in NumPy float64: float32 ``(H', W', C)``."""
    image = np.asarray(image, dtype=np.float64)
    rows = _resize_axis_bicubic(image, size[1], 0)
    return _resize_axis_bicubic(rows, size[0], 1).astype(np.float32)


def crop_frames(
    image: np.ndarray,
    crops: Sequence[Tuple[float, float, float, float]],
    size: Tuple[int, int],
    flip: bool,
) -> np.ndarray:
    """Resample each ``(x0, y0, w, h)`` crop of ``image`` to ``size = (W, H)``: ``(T, H, W, 3)``.

    Sub-pixel crops (a slow pan or zoom) are sampled bilinearly (``sample_bilinear``), output
    pixel ``(x, y)`` at ``(x0 + x * w / W, y0 + y * h / H)`` of the image.
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
        out[t] = sample_bilinear(src, x0 + sx * np.arange(width), y0 + sy * np.arange(height))
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
    # elementwise, not a matrix product: BLAS kernels differ between CPUs in their last bits
    grey = x[..., 0] * np.float32(0.299) + x[..., 1] * np.float32(0.587)
    grey = grey + x[..., 2] * np.float32(0.114)
    x = grey[..., None] + (x - grey[..., None]) * saturation
    x = x * np.asarray(channel_gains, dtype=np.float32)
    if blur_sigma > 0:
        x = np.stack([cv2.GaussianBlur(f, (0, 0), blur_sigma) for f in x])
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
