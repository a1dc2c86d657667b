"""Pure picture helpers: label maps as colours and masks tinted over images (numpy only)."""

from __future__ import annotations

import numpy as np

# A fixed palette for face-parsing label maps: class 0 (background) is black.
PALETTE = np.array([[0, 0, 0], [204, 153, 102], [255, 178, 102], [255, 0, 255], [0, 102, 255],
                    [0, 204, 255], [153, 76, 0], [204, 102, 0], [255, 255, 0], [204, 204, 0],
                    [102, 0, 153], [255, 51, 102], [204, 0, 51], [51, 26, 0], [0, 153, 76],
                    [255, 215, 0], [153, 255, 204], [255, 204, 204], [0, 76, 153]], np.uint8)


def colourize(label: np.ndarray, num_classes: int) -> np.ndarray:
  """uint8 RGB for a label: white on black for binary, the palette for face parsing."""
  if num_classes == 1:
    return np.repeat((label > 0).astype(np.uint8)[..., None] * 255, 3, -1)
  return PALETTE[label % len(PALETTE)]


def overlay(image: np.ndarray, label: np.ndarray, num_classes: int, alpha=0.5) -> np.ndarray:
  """Image (uint8) with the label tinted over it: red for binary, the palette for face parsing."""
  colour = np.array([255, 0, 0], np.float32) if num_classes == 1 else colourize(label, num_classes)
  on = (label > 0)[..., None]
  out = image.astype(np.float32) * np.where(on, 1 - alpha, 1) + np.where(on, alpha * colour, 0)
  return out.clip(0, 255).astype(np.uint8)
