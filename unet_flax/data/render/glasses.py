"""Eyeglasses and sunglasses as a camera sees them.

Frames are thin metal (gold, silver, gunmetal, black) with a bright edge, plastic (black,
tortoiseshell, colours, clear crystal) with a soft highlight, rimless (only the lens's
bevel shows) or half-rim; metal frames have nose pads, every frame has hinges and temples
running back to the ears. Lenses tint, refract the face behind them (minus lenses shrink it,
plus lenses magnify), reflect a scene and catch glare; frames cast a soft shadow on the
skin. The glasses stand in front of the eyes, so turning the head moves them more than the
eyes. The `eye_g` mask covers lenses, rims, bridge and the visible temples, as in
CelebAMask-HQ; behind sunglasses the eyes are not labelled.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from unet_flax.data.render import canvas as canvas_lib
from unet_flax.data.render import photos
from unet_flax.data.render.geometry import ellipse, spline

STYLES = ('round', 'oval', 'rectangular', 'browline', 'aviator', 'cat_eye', 'rimless', 'half_rim')
METALS = np.array([[0.78, 0.62, 0.32], [0.75, 0.75, 0.78], [0.32, 0.32, 0.34], [0.08, 0.08, 0.09],
                   [0.72, 0.52, 0.45]], np.float32)
PLASTICS = np.array([[0.03, 0.03, 0.035], [0.06, 0.05, 0.05], [0.3, 0.17, 0.08], [0.45, 0.08, 0.1],
                     [0.1, 0.18, 0.4], [0.55, 0.5, 0.45]], np.float32)


@dataclasses.dataclass
class Glasses:
  style: str
  metal: bool
  frame: float  # rim thickness, face units
  centre: tuple[float, float]  # lens centre of the subject's left lens (x > 0)
  half_width: float
  half_height: float
  corner: float
  colour: np.ndarray
  tortoise: bool
  lens: str  # clear | tinted | sunglass
  tint: np.ndarray
  gradient: float  # sunglasses darker at the top
  refraction: float  # > 1: the face behind looks smaller
  reflection: float
  glare: float

  @classmethod
  def sample(cls, rng: np.random.Generator) -> 'Glasses':
    style = STYLES[rng.choice(len(STYLES), p=[0.12, 0.14, 0.22, 0.08, 0.1, 0.07, 0.12, 0.15])]
    lens = ('clear', 'tinted', 'sunglass')[rng.choice(3, p=[0.68, 0.1, 0.22])]
    metal = style in ('aviator', 'rimless') or (style != 'browline' and rng.random() < 0.45)
    frame = rng.uniform(0.015, 0.045) if metal else rng.uniform(0.05, 0.15)
    # Sized as frames are sold (ISO 8624's boxing: lens width 42-58 mm, sunglasses wider, and a
    # bridge of 14-22 mm between the lenses), in face units of half an average adult's 63 mm
    # between the pupils: the lenses reach past the eye's outer corner and nearly to the nose.
    big = 1.08 if lens == 'sunglass' else 1.0
    gap = rng.uniform(0.22, 0.35)  # half the bridge
    hw = min(rng.uniform(0.66, 0.92) * big, (2.1 - gap) / 2)  # the frame at most 2.1 a side: heads are 2.0-2.4
    hh = hw * (rng.uniform(0.82, 0.98) if style == 'round' else rng.uniform(0.55, 0.82))
    colour = METALS[rng.integers(len(METALS))] if metal else PLASTICS[rng.integers(len(PLASTICS))]
    if lens == 'clear':
      tint = np.clip(1 - rng.uniform(0, 0.08, 3), 0, 1)
    elif lens == 'tinted':
      tint = np.clip(rng.uniform(0.35, 0.95, 3), 0, 1)
    else:
      tint = np.clip(rng.uniform(0.03, 0.25) * (1 + rng.normal(0, 0.3, 3)), 0.01, 0.5)
    return cls(style=style, metal=metal, frame=frame,
               centre=(hw + gap, rng.uniform(-0.02, 0.16)), half_width=hw, half_height=hh,
               corner=rng.uniform(0.15, 0.45), colour=(colour * rng.uniform(0.85, 1.15)).astype(np.float32),
               tortoise=not metal and rng.random() < 0.25, lens=lens, tint=tint.astype(np.float32),
               gradient=rng.uniform(0, 0.6) if lens != 'clear' else 0.0,
               refraction=rng.uniform(1.0, 1.07) if rng.random() < 0.7 else rng.uniform(0.94, 1.0),
               reflection=rng.uniform(0.1, 0.45) if lens == 'sunglass' else rng.uniform(0.0, 0.1),
               glare=rng.uniform(0.2, 0.8) if rng.random() < 0.35 else 0.0)

  def lens_outline(self, side: int) -> np.ndarray:
    """Face-unit outline of one lens (side +1: the subject's left, the image's right)."""
    cx, cy = side * self.centre[0], self.centre[1]
    w, h = self.half_width, self.half_height
    if self.style in ('round', 'oval'):
      return ellipse(cx, cy, w, h, 48)
    if self.style == 'aviator':  # wide at the top, the bottom drawn down toward the nose
      t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
      x, y = np.cos(t), np.sin(t)
      y = np.where(y > 0, y * (1.15 - 0.3 * side * x), y * 0.85)
      return np.stack([cx + w * x, cy + h * y], 1)
    if self.style == 'cat_eye':
      pts = ellipse(0, 0, w, h, 48)
      lift = np.clip(side * pts[:, 0] / w, 0, 1) ** 2 * np.clip(-pts[:, 1] / h + 0.3, 0, 1.3)
      return pts + [cx, cy] - np.stack([np.zeros(48), lift * h * 0.45], 1)
    r = self.corner * min(w, h)
    corners = [(w - r, h - r, 0), (-(w - r), h - r, math.pi / 2), (-(w - r), -(h - r), math.pi),
               (w - r, -(h - r), 1.5 * math.pi)]
    return np.concatenate([ellipse(cx + ox, cy + oy, r, r, 8, a, a + math.pi / 2) for ox, oy, a in corners])


def _rim_lines(g: Glasses, lens: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
  """(thick, thin) open polylines of one rim, face units."""
  closed = np.concatenate([lens, lens[:1]])
  top = lens[lens[:, 1] < lens[:, 1].mean()]
  top = top[np.argsort(top[:, 0])]
  return {'rimless': ([], []), 'half_rim': ([top], []), 'browline': ([top], [closed])}.get(g.style, ([closed], []))


def draw_temples(c: canvas_lib.Canvas, proj, rng, g: Glasses, head) -> None:
  """The arms from the hinges back to the ears, drawn before the hair (which may cover them)."""
  u = proj.pose.unit
  z = float(head.depth(1.0, 0.0)) + 0.3
  lines = []
  for side in (1, -1):
    x0, y0 = side * (g.centre[0] + g.half_width * 0.98), g.centre[1] - g.half_height * 0.45
    x1, y1 = side * (head.width + 0.05), y0 + rng.uniform(0.1, 0.3)
    xy = np.stack([np.linspace(x0, x1, 8), np.linspace(y0, y1, 8)], 1)
    lines.append(proj.flat(xy, np.linspace(z, -0.3, 8)))
  width = max(0.8, (g.frame if not g.metal else 0.035) * u * (0.9 if g.metal else 0.8))
  alpha = canvas_lib.line_alpha(c.shape, lines, width, 0.3)
  c.paint(alpha, g.colour, 'eye_g')


def draw(img: np.ndarray, person: np.ndarray, proj, rng, g: Glasses, head, light, c: canvas_lib.Canvas) -> None:
  """Draws lenses and frames on the lit `img` ([H, W, 3], in place) and records `eye_g`."""
  u, shape = proj.pose.unit, c.shape
  z = float(head.depth(1.0, 0.0)) + 0.3
  lenses = [proj.flat(g.lens_outline(s), z) for s in (1, -1)]
  lens_alpha = canvas_lib.poly_alpha(shape, lenses)
  thick, thin = [], []
  for s in (1, -1):
    a, b = _rim_lines(g, g.lens_outline(s))
    thick += [proj.flat(l, z) for l in a]
    thin += [proj.flat(l, z) for l in b]
  inner = [(g.centre[0] - g.half_width * 0.97) * s for s in (1, -1)]
  bridge_y = g.centre[1] - g.half_height * (0.3 if g.style != 'aviator' else 0.55)
  bridge = proj.flat(spline([(inner[0], bridge_y), (0, bridge_y - 0.08), (inner[1], bridge_y)], 6), z + 0.05)
  rim_w = max(0.6, g.frame * u)
  frame_alpha = canvas_lib.line_alpha(shape, thick + [bridge], rim_w, 0.35)
  if thin:
    frame_alpha = np.maximum(frame_alpha, canvas_lib.line_alpha(shape, thin, max(0.6, 0.02 * u), 0.35))
  if g.style == 'aviator':  # the second bar above the bridge
    bar = proj.flat(np.array([(inner[0] + 0.05, bridge_y - 0.25), (inner[1] - 0.05, bridge_y - 0.25)]), z + 0.05)
    frame_alpha = np.maximum(frame_alpha, canvas_lib.line_alpha(shape, [bar], rim_w, 0.35))
  hinges = []
  for s in (1, -1):
    x, y = s * (g.centre[0] + g.half_width * 0.98), g.centre[1] - g.half_height * 0.45
    hinges.append(proj.flat(np.array([(x - s * 0.05, y - 0.04), (x + s * 0.08, y - 0.04), (x + s * 0.08, y + 0.06),
                                      (x - s * 0.05, y + 0.06)]), z))
  frame_alpha = np.maximum(frame_alpha, canvas_lib.poly_alpha(shape, hinges, 0.3))
  pads = np.zeros(shape, np.float32)
  if g.metal:
    pad_polys = [proj.flat(ellipse(s * (g.centre[0] - g.half_width * 0.85), g.centre[1] + g.half_height * 0.25,
                                   0.05, 0.09, 12), z - 0.2) for s in (1, -1)]
    pads = canvas_lib.poly_alpha(shape, pad_polys, 0.3)
  # The frame's shadow on the skin, cast along the light.
  l = light.vector
  shift = np.array([l[0], l[1]]) / max(np.hypot(l[0], l[1]), 1e-6) * -0.1 * u * (1.2 - light.vector[2])
  m = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
  shadow = cv2.warpAffine(canvas_lib.blur(frame_alpha, 0.04 * u + 0.5), m, shape[::-1])
  img *= (1 - shadow * person * rng.uniform(0.25, 0.5))[..., None]
  # The lenses: refraction of the face behind, tint, a reflected scene and glare.
  box = canvas_lib.bbox(lens_alpha > 0, 4)
  if box is not None:
    region = img[box].copy()
    refracted = region.copy()
    for lens in lenses:
      centre = lens.mean(0) - [box[1].start, box[0].start]
      k = g.refraction
      m = np.float32([[k, 0, centre[0] * (1 - k)], [0, k, centre[1] * (1 - k)]])
      warped = cv2.warpAffine(region, m, region.shape[1::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REFLECT)
      one = canvas_lib.poly_alpha(shape, [lens])[box][..., None]
      refracted = refracted * (1 - one) + warped * one
    a = lens_alpha[box][..., None]
    rows = np.linspace(0, 1, region.shape[0], dtype=np.float32)[:, None, None]
    tint = g.tint * (1 - g.gradient * (1 - rows))
    lensed = refracted * tint
    scene = canvas_lib.blur(photos.patch(rng, max(region.shape[:2]))[:region.shape[0], :region.shape[1]], 2.0)
    lensed = 1 - (1 - lensed) * (1 - scene * g.reflection)
    if g.glare:
      gy, gx = rng.uniform(0.1, 0.6) * region.shape[0], rng.uniform(0.1, 0.9) * region.shape[1]
      glare = canvas_lib.poly_alpha(region.shape[:2], [ellipse(gx, gy, rng.uniform(0.15, 0.5) * u,
                                                               rng.uniform(0.06, 0.25) * u, 24,
                                                               0, 2 * math.pi)], 0.15 * u)
      lensed = lensed + glare[..., None] * g.glare
    img[box] = region * (1 - a) + np.clip(lensed, 0, 1) * a
  c.record('eye_g', lens_alpha, opaque=g.lens == 'sunglass')
  # Frames: their colour, a bright edge along the top, and for rimless lenses the bevel.
  colour = np.broadcast_to(g.colour, img.shape).copy()
  if g.tortoise:
    spots = np.clip(canvas_lib.smooth_noise(rng, shape, 3.0) * 0.6 + 0.5, 0, 1)[..., None]
    colour = colour * (0.4 + 0.9 * spots)
  lit = 0.55 + 0.6 * max(light.vector[2], 0.2)
  if g.style == 'rimless':
    bevel = canvas_lib.line_alpha(shape, [np.concatenate([lens, lens[:1]]) for lens in lenses], 1.0, 0.3)
    img[:] = img * (1 - bevel[..., None] * 0.5) + bevel[..., None] * 0.5 * rng.uniform(0.6, 1.0)
  a = frame_alpha[..., None]
  img[:] = img * (1 - a) + np.clip(colour * lit, 0, 1) * a
  img[:] = img * (1 - pads[..., None] * 0.5) + pads[..., None] * 0.5 * 0.85
  up = np.float32([[1, 0, 0], [0, 1, -max(0.5, rim_w * 0.3)]])
  edge = cv2.warpAffine(canvas_lib.line_alpha(shape, thick + [bridge], max(0.5, rim_w * 0.4), 0.3), up, shape[::-1])
  edge *= frame_alpha * (0.8 if g.metal else 0.35)
  img[:] = img + edge[..., None] * (1 - img) * 0.9
  np.clip(img, 0, 1, out=img)
  c.record('eye_g', np.maximum(frame_alpha, pads), opaque=True)
