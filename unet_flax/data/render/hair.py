"""Hair: a style's regions (behind the head, over the crown and hairline, a fringe, side locks)
painted with a texture of strands that flow from the parting, plus loose strands over the face.

Every region is labelled `hair` where it stays visible; loose strands across the forehead and
eyes are not labelled (CelebAMask-HQ's annotators leave single strands out) but hide what is
under them in the picture, which teaches the models that a dark line across an eye is hair,
not an eyeglasses frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from unet_flax.data.render import canvas as canvas_lib
from unet_flax.data.render.geometry import spline

COLOURS = np.array([[0.05, 0.04, 0.035], [0.12, 0.08, 0.06], [0.25, 0.16, 0.1], [0.42, 0.3, 0.2],
                    [0.7, 0.56, 0.36], [0.85, 0.75, 0.55], [0.45, 0.18, 0.08], [0.55, 0.53, 0.5],
                    [0.82, 0.8, 0.78]], np.float32)
WEIGHTS = np.array([0.22, 0.22, 0.17, 0.11, 0.1, 0.04, 0.05, 0.06, 0.03])
STYLES = ('short', 'bob', 'long', 'updo', 'bald', 'curly')


@dataclasses.dataclass
class Hair:
  style: str
  colour: np.ndarray
  hairline: float  # y of the hairline at the middle of the forehead
  volume: float  # how far the hair stands off the head
  length: float  # y where the hair ends
  parting: float  # x of the parting
  fringe: str  # none | straight | swept
  fringe_y: float
  side_locks: bool
  loose: int  # strands across the face
  curl: float

  @classmethod
  def sample(cls, rng: np.random.Generator, male: bool) -> 'Hair':
    p = [0.45, 0.1, 0.1, 0.15, 0.1, 0.1] if male else [0.08, 0.22, 0.45, 0.13, 0.01, 0.11]
    style = STYLES[rng.choice(len(STYLES), p=p)]
    colour = COLOURS[rng.choice(len(COLOURS), p=WEIGHTS / WEIGHTS.sum())] * rng.uniform(0.85, 1.15)
    length = {'short': rng.uniform(-0.5, 0.8), 'bob': rng.uniform(2.4, 3.4), 'long': rng.uniform(4.5, 8.0),
              'updo': rng.uniform(-1.0, 0.2), 'bald': -3.0, 'curly': rng.uniform(1.0, 4.5)}[style]
    fringe = 'none'
    if style in ('short', 'bob', 'long', 'curly') and rng.random() < 0.3:
      fringe = 'straight' if rng.random() < 0.5 else 'swept'
    return cls(style=style, colour=np.clip(colour, 0, 1).astype(np.float32), hairline=-rng.uniform(1.9, 2.6),
               volume=rng.uniform(0.55, 1.2) if style == 'curly' else rng.uniform(0.15, 0.5),
               length=length, parting=rng.uniform(-0.9, 0.9), fringe=fringe, fringe_y=-rng.uniform(0.35, 1.1),
               side_locks=style in ('long', 'bob', 'curly') and rng.random() < 0.45,
               loose=int(rng.integers(1, 7)) if rng.random() < 0.2 else 0,
               curl=rng.uniform(0.3, 0.8) if style == 'curly' else rng.uniform(0, 0.15))


def strand_texture(rng, c: canvas_lib.Canvas, proj, hair: Hair) -> np.ndarray:
  """[H, W, 3] hair colour with strands flowing down and away from the parting."""
  u = proj.pose.unit
  n = 2200
  start = np.stack([rng.uniform(-3.8, 3.8, n), rng.uniform(-4.5, max(hair.length, 0.5), n)], 1)
  steps = 7
  pts = [start]
  heading = np.stack([np.sign(start[:, 0] - hair.parting) * rng.uniform(0.1, 0.6, n), np.ones(n)], 1)
  phase = rng.uniform(0, 6.3, n)
  for k in range(steps):
    wiggle = hair.curl * np.sin(phase + k * 1.3)
    d = heading + np.stack([wiggle, np.zeros(n)], 1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    pts.append(pts[-1] + d * rng.uniform(0.06, 0.14, (n, 1)))
  lines = np.stack(pts, 1)
  buf = np.full(c.shape, 110, np.uint8)
  image_lines = proj.silhouette(lines.reshape(-1, 2)).reshape(lines.shape)
  canvas_lib.strokes(buf, image_lines, rng.uniform(30, 255, n), rng.uniform(0.8, 2.2, n) * u / 63)
  shade = buf.astype(np.float32) / 255
  shade = 0.45 + 0.8 * canvas_lib.blur(shade, 0.6)
  return np.clip(hair.colour * shade[..., None], 0, 1)


def _jagged(rng, points: np.ndarray, amount: float) -> np.ndarray:
  return points + rng.normal(0, amount, points.shape) * [0.3, 1]


def regions(rng, head, hair: Hair) -> dict[str, list[np.ndarray]]:
  """Face-unit polygons of the hair behind the head ('back') and in front of it ('front')."""
  w, v, top = head.width, hair.volume, head.top_y
  out: dict[str, list[np.ndarray]] = {'back': [], 'front': []}
  if hair.style == 'bald':
    return out
  crown = top - 0.5 - v
  if hair.style != 'updo' and hair.length > 0.6:
    end = hair.length
    side = w + v + (0.3 if hair.style == 'curly' else 0.0)
    out['back'].append(spline([(-side * 0.95, end), (-side * 1.05, 0.6), (-side, -1.8), (-w * 0.7, crown + 0.2),
                               (0, crown - 0.1), (w * 0.7, crown + 0.2), (side, -1.8), (side * 1.05, 0.6),
                               (side * 0.95, end)], 6))
  hl, p = hair.hairline, hair.parting
  temple = hl + rng.uniform(0.2, 0.6)
  sides = 0.1 if hair.style in ('short', 'updo') else rng.uniform(0.2, 0.9)
  front = [(-w - v * 0.6, sides), (-w - v, -1.4), (-w * 0.75, crown + 0.3), (p, crown), (w * 0.75, crown + 0.3),
           (w + v, -1.4), (w + v * 0.6, sides), (w * 0.93, sides), (w * 0.9, temple),
           (w * 0.45, hl + 0.12), (p * 0.3, hl), (-w * 0.45, hl + 0.12), (-w * 0.9, temple), (-w * 0.93, sides)]
  out['front'].append(spline(front, 5, closed=True))
  if hair.fringe != 'none':
    x = np.linspace(-w * 0.92, w * 0.92, 14)
    if hair.fringe == 'straight':
      edge_y = np.full(14, hair.fringe_y)
    else:  # swept to the side away from the parting
      edge_y = np.linspace(hair.fringe_y, hl + 0.4, 14)[::1 if p > 0 else -1]
    edge = np.stack([x, edge_y + rng.uniform(-0.08, 0.08, 14)], 1)
    top = np.stack([x[::-1], np.full(14, hl - 0.4)], 1)
    out['front'].append(np.concatenate([top, edge]))
  if hair.side_locks:
    end = min(hair.length, 5.5)
    for s in (1, -1):
      inner = w * rng.uniform(0.72, 0.9)
      out['front'].append(spline([(s * inner, temple), (s * (inner - 0.05), 1.0), (s * (inner + 0.1), end),
                                  (s * (w + v + 0.4), end), (s * (w + v + 0.2), 0.5), (s * (w + v), temple - 0.4)],
                                 5, closed=True))
  return out


def draw(c: canvas_lib.Canvas, proj, rng, hair: Hair, polygons: list[np.ndarray], texture: np.ndarray) -> None:
  if not polygons:
    return
  pts = [proj.silhouette(_jagged(rng, p, 0.01)) for p in polygons]
  alpha = canvas_lib.poly_alpha(c.shape, pts, 0.9)
  # A ragged edge: strands stand out of the outline by a few pixels.
  ragged = np.clip(alpha + (canvas_lib.smooth_noise(rng, c.shape, 2.0) * 0.5) * (alpha * (1 - alpha)) * 4, 0, 1)
  c.paint(ragged, texture, 'hair', record_alpha=canvas_lib.poly_alpha(c.shape, pts))


def draw_loose(c: canvas_lib.Canvas, proj, rng, hair: Hair) -> None:
  """Single strands falling across the forehead and the eyes (not labelled)."""
  if not hair.loose or hair.style == 'bald':
    return
  lines = []
  for _ in range(hair.loose):
    x0 = rng.uniform(-1.5, 1.5)
    pts = [(x0, hair.hairline + 0.1)]
    dx = rng.uniform(-0.5, 0.5)
    for k in range(1, 6):
      pts.append((x0 + dx * k * 0.4 + rng.normal(0, 0.05), hair.hairline + 0.1 + k * rng.uniform(0.3, 0.55)))
    lines.append(proj(spline(pts, 4), 0.35))
  width = rng.uniform(0.7, 1.8) * proj.pose.unit / 63
  c.paint(canvas_lib.line_alpha(c.shape, lines, width, 0.3) * rng.uniform(0.6, 0.95), hair.colour * 0.8)
