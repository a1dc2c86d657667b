"""Drawing primitives for the face renderer: anti-aliased shapes, layered paint, visible masks.

A `Canvas` holds the picture being drawn and, for every labelled part, the record of where
it was drawn. Layers are painted back to front; a part's mask is where it was drawn minus
where an opaque layer painted later covers it, so the masks are what a photo shows. Face
features (nose, eyes, brows, lips, mouth) are inlays: they cover the skin in the picture
but not in the skin's mask, as CelebAMask-HQ's skin masks include them.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

SHIFT = 4  # sub-pixel bits for OpenCV's polygon and line drawing
ONE = 1 << SHIFT


def _fixed(points) -> np.ndarray:
  return np.round(np.asarray(points, np.float64) * ONE).astype(np.int32)


def _window(shape, shapes, margin: float):
  """Row and column slices of the image around the points of `shapes`, `margin` pixels wider."""
  pts = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in shapes])
  m = int(np.ceil(margin)) + 2
  x0, y0 = np.floor(pts.min(0)).astype(int) - m
  x1, y1 = np.ceil(pts.max(0)).astype(int) + m
  h, w = shape
  return slice(max(y0, 0), max(min(y1, h), 0)), slice(max(x0, 0), max(min(x1, w), 0))


def _draw(shape, shapes, feather, draw, reach: float = 0.0) -> np.ndarray:
  """float32 [H, W] coverage drawn by `draw(window, offset)` into the part of the image the
  shapes can reach (`reach` pixels beyond their points, for a line's half width), softened
  by a Gaussian of `feather` pixels."""
  a = np.zeros(shape, np.float32)
  shapes = [p for p in shapes if len(p)]
  if not shapes:
    return a
  rows, cols = _window(shape, shapes, 3 * feather + reach)
  if rows.start >= rows.stop or cols.start >= cols.stop:
    return a
  window = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.uint8)
  draw(window, (-cols.start * ONE, -rows.start * ONE))
  sub = window.astype(np.float32) * (1 / 255)
  a[rows, cols] = blur(sub, feather) if feather > 0 else sub
  return a


def poly_alpha(shape: tuple[int, int], polys, feather: float = 0.0) -> np.ndarray:
  """float32 [H, W] coverage in [0, 1] of the union of polygons (anti-aliased edges), softened
  by a Gaussian of `feather` pixels."""
  polys = [p for p in polys if len(p) >= 3]

  def fill(window, offset):  # one call per polygon: OpenCV would leave their overlaps empty
    for p in polys:
      cv2.fillPoly(window, [_fixed(p) + offset], 255, cv2.LINE_AA, SHIFT)
  return _draw(shape, polys, feather, fill)


def line_alpha(shape: tuple[int, int], lines, width: float, feather: float = 0.0) -> np.ndarray:
  """float32 [H, W] coverage of open polylines `width` pixels wide (fainter when thinner than a
  pixel, as a camera would see them)."""
  lines = [l for l in lines if len(l) >= 2]
  thickness = max(1, int(round(width)))
  # Feathered by `feather` alone: a line `width` wide stays opaque across its width (blurring
  # it by its own width, as renderers 2.0 and 2.1 did, left a faint glow under the mask's threshold).
  a = _draw(shape, lines, feather, lambda w, off: cv2.polylines(
      w, [_fixed(l) + off for l in lines], False, 255, thickness, cv2.LINE_AA, SHIFT), reach=width / 2)
  return a * width if width < 1 else a


def strokes(a: np.ndarray, lines: np.ndarray, values, widths, levels: int = 6) -> None:
  """Draws many polylines ([N, K, 2] pixels) into uint8 `a` in place, each with about its own
  value and width (grouped into `levels` values and two widths: one OpenCV call per group)."""
  values = np.asarray(values, np.float64)
  thick = np.asarray(widths) >= 1.5
  bins = np.minimum(((values - values.min()) / max(np.ptp(values), 1e-6) * levels).astype(int), levels - 1)
  fixed = _fixed(lines)
  for b in range(levels):
    for t in (False, True):
      sel = (bins == b) & (thick == t)
      if sel.any():
        cv2.polylines(a, list(fixed[sel]), False, int(values[sel].mean()), 2 if t else 1, cv2.LINE_AA, SHIFT)


def blur(a: np.ndarray, sigma: float) -> np.ndarray:
  """Gaussian blur; wide ones run at a lower resolution (the result is as smooth either way)."""
  if sigma <= 0.3:
    return a
  if sigma < 6:
    return cv2.GaussianBlur(a, (0, 0), sigma)
  f = int(min(8, sigma // 3))
  h, w = a.shape[:2]
  small = cv2.resize(a, (w // f, h // f), interpolation=cv2.INTER_AREA)
  small = cv2.GaussianBlur(small, (0, 0), sigma / f)
  return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float,
                 channels: int = 0) -> np.ndarray:
  """Smooth random field (zero mean, unit-ish std) with features about `cell` pixels wide."""
  h, w = shape
  gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
  grid = rng.standard_normal((gh, gw, channels) if channels else (gh, gw)).astype(np.float32)
  return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def fractal_noise(rng: np.random.Generator, shape, cells=(64, 16, 4), weights=(1.0, 0.5, 0.25),
                  channels: int = 0) -> np.ndarray:
  return sum(wt * smooth_noise(rng, shape, c, channels) for c, wt in zip(cells, weights))


def bbox(alpha: np.ndarray, margin: int = 0):
  """Row and column slices around where `alpha` is above 1/255 (None when nowhere)."""
  x, y, w, h = cv2.boundingRect((alpha > 1 / 255).view(np.uint8))
  if not w:
    return None
  H, W = alpha.shape[:2]
  return (slice(max(y - margin, 0), min(y + h + margin, H)), slice(max(x - margin, 0), min(x + w + margin, W)))


@dataclasses.dataclass
class Record:
  part: str | None  # a CelebAMask-HQ part name, or None for an unlabelled layer
  mask: np.ndarray  # bool [H, W]: where it was drawn
  opaque: bool  # hides the parts drawn before it (in their masks)
  inlay: bool  # a face feature: hides nothing of the skin's mask


INLAYS = ('nose', 'l_eye', 'r_eye', 'l_brow', 'r_brow', 'mouth', 'u_lip', 'l_lip')


class Canvas:
  """A premultiplied RGB picture of the person, its coverage, and the records of every layer."""

  def __init__(self, size: int):
    self.size = size
    self.shape = (size, size)
    self.colour = np.zeros((size, size, 3), np.float32)  # premultiplied by `alpha`
    self.alpha = np.zeros(self.shape, np.float32)
    self.records: list[Record] = []
    self.glints = np.zeros(self.shape, np.float32)  # highlights added after the light
    self.bright = np.zeros(self.shape, np.float32)  # where the light keeps most of its strength (wet eyes)

  def paint(self, alpha: np.ndarray, colour, part: str | None = None, opaque: bool = True,
            record_alpha: np.ndarray | None = None, hides: bool = False) -> None:
    """Paints `colour` (RGB triple or [H, W, 3] texture, 0..1) where `alpha` covers. A `part`
    is recorded (its mask: where `record_alpha`, default `alpha`, is at least one half); so is
    an unlabelled layer that `hides` the parts under it (a hand). Other unlabelled paint (make-up,
    strokes, lines) is texture and changes no mask."""
    box = bbox(alpha)
    if box is not None:
      a = alpha[box][..., None]
      c = colour[box] if np.ndim(colour) == 3 else np.asarray(colour, np.float32)
      self.colour[box] = self.colour[box] * (1 - a) + c * a
      self.alpha[box] = self.alpha[box] * (1 - a[..., 0]) + a[..., 0]
    if part is not None or hides:
      self.record(part, record_alpha if record_alpha is not None else alpha, opaque)

  def record(self, part: str | None, alpha: np.ndarray, opaque: bool = True) -> None:
    self.records.append(Record(part, alpha >= 0.5, opaque, part in INLAYS))

  def shade(self, factor: np.ndarray) -> None:
    """Multiplies what is painted so far by `factor` ([H, W], 1 where unchanged): a shadow
    (below 1) or a highlight (above 1)."""
    box = bbox(np.abs(1 - factor))
    if box is not None:
      self.colour[box] *= factor[box][..., None]

  def part_masks(self) -> dict[str, np.ndarray]:
    """Part name -> bool mask of what stays visible of it."""
    front = np.zeros(self.shape, bool)  # opaque layers in front of the current one
    front_of_skin = np.zeros(self.shape, bool)  # the same without face features
    masks: dict[str, np.ndarray] = {}
    for r in reversed(self.records):
      if r.part is not None:
        visible = r.mask & ~(front_of_skin if r.part == 'skin' else front)
        masks[r.part] = masks[r.part] | visible if r.part in masks else visible
      if r.opaque:
        front |= r.mask
        if not r.inlay:
          front_of_skin |= r.mask
    return {k: v for k, v in masks.items() if v.any()}
