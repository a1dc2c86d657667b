"""Pure picture helpers: label maps as colours, a colour legend, masks tinted over images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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


def legend(class_names: Sequence[str], height: int | None = None, row: int = 14) -> np.ndarray:
  """uint8 [H, W, 3] panel: each class's palette colour beside its name, on white. With
  `height` (H = height) rows shrink to fit, down to 11 pixels, then wrap into more columns."""
  n = len(class_names)
  if height:
    row = max(11, min(row, height // max(n, 1)))
  per_column = max(1, (height or n * row) // row)
  font = ImageFont.load_default()  # bitmap font shipped with Pillow: nothing to download
  column = row + 8 + max(int(font.getlength(name)) for name in class_names) + 6
  columns = -(-n // per_column)
  panel = Image.new('RGB', (column * columns, height or n * row), 'white')
  draw = ImageDraw.Draw(panel)
  for i, name in enumerate(class_names):
    left, top = (i // per_column) * column, (i % per_column) * row
    draw.rectangle([left + 3, top + 1, left + row, top + row - 2],
                   fill=tuple(int(c) for c in PALETTE[i % len(PALETTE)]), outline=(128, 128, 128))
    draw.text((left + row + 5, top + (row - 11) // 2), name, fill=(0, 0, 0), font=font)
  return np.asarray(panel)


def with_legend(picture: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
  """`picture` (uint8 [H, W, 3]) with the class legend to its right."""
  return np.concatenate([picture, legend(class_names, height=picture.shape[0])], axis=1)
