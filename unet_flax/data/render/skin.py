"""The head: skin, ears and neck, with skin texture, blush, stubble, wrinkles, and its relief.

Skin albedo gets blotches (slow colour variation) and pores (fine grain); older faces get
forehead lines, crow's feet and nasolabial folds; some faces get stubble or a beard, which
CelebAMask-HQ labels as skin. `relief` builds the height field that `shading` lights.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from unet_flax.data.render import canvas as canvas_lib
from unet_flax.data.render import shading
from unet_flax.data.render.geometry import ellipse, spline

# Skin albedos from very light to very dark (photo sRGB, 0..1).
TONES = np.array([[0.96, 0.82, 0.74], [0.92, 0.74, 0.63], [0.86, 0.66, 0.54], [0.78, 0.58, 0.45],
                  [0.68, 0.48, 0.36], [0.55, 0.37, 0.27], [0.42, 0.28, 0.2], [0.3, 0.2, 0.15]], np.float32)


@dataclasses.dataclass
class Skin:
  tone: np.ndarray
  age: float  # 0 young .. 1 old: wrinkles
  beard: float  # 0 none .. 1 full beard
  blush: float
  oil: float  # how shiny

  @classmethod
  def sample(cls, rng: np.random.Generator, male: bool) -> 'Skin':
    tone = TONES[rng.integers(len(TONES))] * rng.uniform(0.92, 1.06) + rng.normal(0, 0.02, 3)
    beard = 0.0
    if male and rng.random() < 0.45:
      beard = rng.uniform(0.15, 0.5) if rng.random() < 0.75 else rng.uniform(0.6, 1.0)
    return cls(tone=np.clip(tone, 0.05, 1).astype(np.float32), age=float(rng.beta(1.2, 2.5)), beard=beard,
               blush=rng.uniform(0, 0.35), oil=rng.uniform(0.3, 1.5))


def _texture(rng, shape, tone):
  """Albedo over the whole canvas: blotches of redness and shade, and pores."""
  blotch = canvas_lib.fractal_noise(rng, shape, (48, 14), (1.0, 0.5), channels=3) * np.float32(0.025)
  pores = canvas_lib.smooth_noise(rng, shape, 1.6)[..., None] * np.float32(0.035)
  return np.clip(tone * (1 + blotch + pores), 0, 1)


def draw_ears(c: canvas_lib.Canvas, proj, rng, head, skin: Skin) -> None:
  u = proj.pose.unit
  height, width, y = rng.uniform(1.5, 1.9), rng.uniform(0.5, 0.75), rng.uniform(0.25, 0.6)
  for side, name in ((1, 'l_ear'), (-1, 'r_ear')):
    x = side * (head.width - 0.15)
    shape = np.array([(x, y - height * 0.45), (x + side * width * 0.9, y - height * 0.35),
                      (x + side * width, y), (x + side * width * 0.5, y + height * 0.45), (x, y + height * 0.5)])
    outline = spline(shape, 6, closed=True)
    pts = proj.flat(outline, -0.3)
    alpha = canvas_lib.poly_alpha(c.shape, [pts], 0.6)
    c.paint(alpha, skin.tone * np.array([1.0, 0.9, 0.88]), name, record_alpha=canvas_lib.poly_alpha(c.shape, [pts]))
    helix = proj.flat(spline(shape[:4] * [1, 1] + [-side * width * 0.25, 0.05], 6), -0.3)
    c.shade(1 - canvas_lib.line_alpha(c.shape, [helix], 0.05 * u, 0.04 * u) * rng.uniform(0.2, 0.45))


def draw_neck(c: canvas_lib.Canvas, proj, rng, head, skin: Skin) -> np.ndarray:
  """Paints the neck and returns its outline (pixels)."""
  half = head.width * rng.uniform(0.62, 0.8)
  pts = proj.silhouette(np.array([(-half, 1.6), (half, 1.6), (half * 1.15, 7.0), (-half * 1.15, 7.0)]))
  c.paint(canvas_lib.poly_alpha(c.shape, [pts], 0.8), skin.tone * 0.93, 'neck',
          record_alpha=canvas_lib.poly_alpha(c.shape, [pts]))
  return pts


def draw_face(c: canvas_lib.Canvas, proj, rng, head, skin: Skin, hair_colour, mouth, bald: bool) -> np.ndarray:
  """Paints the face's skin with its marks (and a bald head's scalp) and returns the face's alpha."""
  u = proj.pose.unit
  outline = proj.silhouette(head.outline())
  shapes = [outline]
  if bald:
    shapes.append(proj.silhouette(ellipse(0, head.top_y + 1.2, head.width * 1.02, 2.2, 32, np.pi, 2 * np.pi)))
  alpha = canvas_lib.poly_alpha(c.shape, [outline], 0.7)
  c.paint(canvas_lib.poly_alpha(c.shape, shapes, 0.7), _texture(rng, c.shape, skin.tone), 'skin',
          record_alpha=canvas_lib.poly_alpha(c.shape, shapes))
  if skin.blush:
    cheeks = [proj(ellipse(s * 1.35, 1.05, 0.6, 0.42, 20), 0.1) for s in (1, -1)]
    c.paint(canvas_lib.poly_alpha(c.shape, cheeks, 0.3 * u) * skin.blush * alpha,
            skin.tone * np.array([1.0, 0.7, 0.7]))
  if skin.beard:
    w, j = head.width, head.width * head.jaw
    region = spline([(-w * 0.98, 0.9), (-w * 0.6, 1.55), (-0.45, 1.8), (0, 1.75), (0.45, 1.8), (w * 0.6, 1.55),
                     (w * 0.98, 0.9), (j, 2.3), (head.chin_width, head.chin_y), (0, head.chin_y + 0.05),
                     (-head.chin_width, head.chin_y), (-j, 2.3)], 5, closed=True)
    area = canvas_lib.poly_alpha(c.shape, [proj(region, 0.15)], 0.15 * u) * alpha
    grain = np.clip(canvas_lib.smooth_noise(rng, c.shape, 1.2) * 0.8 + skin.beard * 1.6 - 0.6, 0, 1)
    if skin.beard > 0.55:
      grain = np.maximum(grain, canvas_lib.blur(grain, 1.5))
    c.paint(area * grain * min(1.0, skin.beard * 1.2), hair_colour * 0.6)
  if skin.age > 0.45:
    lines = [proj(spline([(-1.1, y), (0, y - 0.05), (1.1, y)], 6), 0.1)
             for y in np.linspace(-1.4, -2.2, rng.integers(2, 5))]
    for s in (1, -1):
      lines += [proj(spline([(s * 0.62, 1.35), (s * (mouth.half_width + 0.25), 1.85),
                             (s * (mouth.half_width + 0.2), 2.4)], 5), 0.2)]
      lines += [proj(np.array([(s * 1.4, -0.05 + k * 0.1), (s * 1.7, -0.12 + k * 0.2)]), -0.1) for k in range(3)]
    strength = (skin.age - 0.45) * rng.uniform(0.5, 1.0)
    c.shade(1 - canvas_lib.line_alpha(c.shape, lines, 0.025 * u, 0.02 * u) * strength * alpha)
  return alpha


def relief(field: shading.HeightField, proj, head, mouth, nose_width: float, neck: np.ndarray,
           hair_volume: float) -> None:
  """The height field of the posed head, neck and shoulders (pixels)."""
  u = proj.pose.unit
  outline = proj.silhouette(head.outline()).astype(np.float32)
  (cx, cy), (ma, mb), angle = cv2.fitEllipse(outline)
  angle = np.deg2rad(angle)
  field.h = np.maximum(field.dome((cx, cy), ma / 2, mb / 2, 2.1 * u, angle),
                       field.dome((cx, cy - 0.1 * mb), ma / 2 * hair_volume, mb / 2 * 1.08, 1.8 * u, angle))
  neck_top = neck[:2].mean(0)
  half = np.linalg.norm(neck[1] - neck[0]) / 2
  field.h = np.maximum(field.h, field.dome((neck_top[0], neck_top[1] + 2.5 * u), half, 3.2 * u, 0.9 * u))
  field.h = np.maximum(field.h, field.dome((proj.pose.centre[0], proj.pose.centre[1] + 9.5 * u), 4.5 * u,
                                           5.0 * u, 1.2 * u))
  p = lambda xy, r=0.0: proj(np.array([xy]), r)[0]
  field.ridge(p((0, -0.1), 0.2), p((0, 1.25), 0.7), 0.22 * u, 0.25 * u, 0.8 * u)
  field.bump(p((0, 1.32), 0.7), 0.22 * u, 0.2 * u, 0.35 * u)
  for s in (1, -1):
    field.bump(p((s * nose_width * 0.7, 1.38), 0.4), 0.18 * u, 0.16 * u, 0.25 * u)
    field.bump(p((s * 1.0, 0.02), -0.3), 0.5 * u, 0.33 * u, -head.socket * u)
    field.bump(p((s * 1.0, -0.55)), 0.6 * u, 0.18 * u, head.brow_ridge * u)
    field.bump(p((s * 1.45, 0.95)), 0.55 * u, 0.55 * u, 0.3 * u)
    field.bump(p((s * (mouth.half_width + 0.05), mouth.y)), 0.15 * u, 0.15 * u, -0.15 * u)
  field.bump(p((0, mouth.y + 0.1), 0.2), 0.9 * u, 0.3 * u, 0.3 * u)
  field.bump(p((0, head.chin_y - 0.45)), 0.45 * u, 0.4 * u, 0.25 * u)
  field.bump(p((0, 1.8), 0.1), 0.08 * u, 0.2 * u, -0.05 * u)
