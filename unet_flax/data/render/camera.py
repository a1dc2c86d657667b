"""What a camera and its processing do to a picture: white balance, exposure and tone curve,
vignetting, defocus or motion blur, a low-resolution source upscaled, sensor noise, and
(when the face is written to disk) JPEG compression at a random quality."""

from __future__ import annotations

import cv2
import numpy as np

from unet_flax.data.render import canvas as canvas_lib


def develop(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """float32 [H, W, 3] in [0, 1] -> the same after the camera."""
  size = img.shape[0]
  img = img * np.clip(1 + rng.normal(0, 0.07, 3), 0.8, 1.2).astype(np.float32)  # white balance
  img = np.clip(img * rng.uniform(0.75, 1.3), 0, 1) ** rng.uniform(0.8, 1.25)  # exposure, gamma
  s = rng.uniform(0, 0.35)  # an S-shaped tone curve
  img = img + s * img * (1 - img) * (2 * img - 1)
  if rng.random() < 0.6:
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j].astype(np.float32)
    img = img * (1 - rng.uniform(0, 0.35) * (xx * xx + yy * yy) / 2)[..., None]
  if rng.random() < 0.35:
    img = canvas_lib.blur(img, rng.uniform(0.5, 1.8))
  elif rng.random() < 0.1:
    length = int(rng.integers(3, 9))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2] = 1 / length
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1)
    img = cv2.filter2D(img, -1, cv2.warpAffine(kernel, rot, (length, length)))
  if rng.random() < 0.4:  # a small source upscaled, as CelebA-HQ's photos often were
    f = rng.uniform(1.5, 3.5)
    small = cv2.resize(img, (int(size / f), int(size / f)), interpolation=cv2.INTER_AREA)
    img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
  noise = rng.uniform(0, 0.03)
  grain = rng.standard_normal(img.shape).astype(np.float32) * noise
  chroma = canvas_lib.smooth_noise(rng, img.shape[:2], 2.0, channels=3) * noise * 0.5
  img = img + grain * np.sqrt(np.clip(img, 0.02, 1)) + chroma
  if rng.random() < 0.03:
    img = np.repeat(img.mean(-1, keepdims=True), 3, -1)
  return np.clip(img, 0, 1).astype(np.float32)
