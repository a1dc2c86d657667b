"""Everything around the face: backgrounds, clothes, jewellery, hats, and hands or microphones
in front of the face.

Backgrounds are pieces of real photographs (`photos`), out-of-focus lights, press walls with
lettering, or studio gradients, blurred as a portrait lens blurs them. Hats cast a shadow
over the eyes and hands and microphones hide parts of the face: the hard cases on which a
model must not see eyeglasses.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from unet_flax.data.render import canvas as canvas_lib
from unet_flax.data.render import photos
from unet_flax.data.render.geometry import ellipse, spline


def background(rng: np.random.Generator, size: int) -> np.ndarray:
  kind = rng.choice(4, p=[0.45, 0.2, 0.15, 0.2])
  if kind == 0:
    bg = photos.patch(rng, size, zoom=(0.6, 3.0))
  elif kind == 1:  # out-of-focus lights over a dim gradient
    bg = _gradient(rng, size) * rng.uniform(0.2, 0.7)
    n = rng.integers(5, 30)
    lights = np.zeros((size, size, 3), np.float32)
    for _ in range(n):
      x, r = rng.uniform(0, size, 2), rng.uniform(0.02, 0.12) * size
      disc = np.zeros_like(lights)
      cv2.circle(disc, (int(x[0]), int(x[1])), int(r), rng.uniform(0.1, 0.9, 3).tolist(), -1, cv2.LINE_AA)
      lights += disc
    bg = np.clip(bg + canvas_lib.blur(lights, rng.uniform(2, 8)), 0, 1)
  elif kind == 2:
    bg = _press_wall(rng, size)
  else:
    bg = _gradient(rng, size)
  bg = bg * (1 + 0.05 * canvas_lib.smooth_noise(rng, (size, size), 40)[..., None])
  return np.clip(canvas_lib.blur(bg, rng.uniform(0, 7) if rng.random() < 0.7 else 0), 0, 1).astype(np.float32)


def _gradient(rng, size):
  a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
  angle = rng.uniform(0, 2 * np.pi)
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
  t = np.clip((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle) + 0.5, 0, 1)[..., None]
  return (a * (1 - t) + b * t).astype(np.float32)


def _press_wall(rng, size):
  """A wall of repeated lettering and logos, as behind people at events."""
  base = tuple(int(v) for v in (rng.uniform(0.7, 1.0, 3) * 255 if rng.random() < 0.6 else rng.uniform(0, 1, 3) * 255))
  img = Image.new('RGB', (size, size), base)
  d = ImageDraw.Draw(img)
  font = ImageFont.load_default(size=float(rng.uniform(0.04, 0.12) * size))
  ink = tuple(int(v) for v in rng.uniform(0, 1, 3) * 255)
  word = ''.join(rng.choice(list('ABCDEFGHKLMNOPRSTUVWXYZ'), rng.integers(3, 9)))
  step_x, step_y = rng.uniform(0.3, 0.6) * size, rng.uniform(0.12, 0.25) * size
  for row, y in enumerate(np.arange(-step_y, size, step_y)):
    for x in np.arange(-step_x + (row % 2) * step_x / 2, size, step_x):
      d.text((float(x), float(y)), word, fill=ink, font=font)
  return np.asarray(img, np.float32) / 255


def clothes(c: canvas_lib.Canvas, proj, rng, head) -> None:
  shoulder_y = head.chin_y + rng.uniform(-0.2, 0.6)  # where the shoulders meet the image's sides
  width = head.width + rng.uniform(1.2, 2.4)
  neckline = rng.choice(3)  # round, V, shirt collar
  half = head.width * rng.uniform(0.6, 0.75)
  top = head.chin_y + rng.uniform(0.2, 0.7)
  dip = rng.uniform(0.2, 0.7) if neckline == 0 else rng.uniform(0.8, 1.8)
  edge = [(-half, top - 0.1), (0, top + dip), (half, top - 0.1)] if neckline else spline(
      [(-half, top - 0.1), (0, top + dip), (half, top - 0.1)], 5)
  shoulders = [(half * 1.3, top - 0.2), (width, shoulder_y + 0.6), (width + 1.5, 9.0), (-width - 1.5, 9.0),
               (-width, shoulder_y + 0.6), (-half * 1.3, top - 0.2)]
  pts = proj.silhouette(np.concatenate([np.asarray(edge), shoulders]))
  kind = rng.choice(3, p=[0.5, 0.3, 0.2])
  size = c.size
  if kind == 0:
    colour = rng.uniform(0, 1, 3) * (rng.uniform(0.1, 0.4) if rng.random() < 0.45 else 1.0)
    tex = np.broadcast_to(colour.astype(np.float32), (size, size, 3))
  elif kind == 1:
    tex = photos.patch(rng, size, zoom=(1.0, 4.0))
  else:
    yy, xx = np.mgrid[0:size, 0:size]
    period = rng.uniform(4, 30)
    stripes = ((xx * np.cos(rng.uniform(0, 3.14)) + yy) // period % 2)[..., None]
    a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    tex = (a * stripes + b * (1 - stripes)).astype(np.float32)
  folds = 1 + 0.12 * canvas_lib.fractal_noise(rng, (size, size), (60, 20), (1.0, 0.4))[..., None]
  c.paint(canvas_lib.poly_alpha(c.shape, [pts], 0.7), np.clip(tex * folds, 0, 1), 'cloth',
          record_alpha=canvas_lib.poly_alpha(c.shape, [pts]))
  if neckline == 2:  # collar points over the neckline
    for s in (1, -1):
      collar = proj.silhouette(np.array([(s * half * 0.9, top - 0.25), (s * 0.1, top + dip + 0.1),
                                         (s * half * 1.3, top + 0.6)]))
      c.paint(canvas_lib.poly_alpha(c.shape, [collar], 0.6), rng.uniform(0.6, 1.0, 3), 'cloth')


def earrings(c: canvas_lib.Canvas, proj, rng, head) -> None:
  u = proj.pose.unit
  metal = np.array([[0.85, 0.7, 0.35], [0.8, 0.8, 0.82], [0.95, 0.95, 0.95]])[rng.integers(3)]
  kind = rng.choice(3)  # stud, hoop, drop
  polys, lines = [], []
  for s in (1, -1):
    x, y = s * (head.width + 0.08), rng.uniform(0.9, 1.2)
    if kind == 0:
      polys.append(proj.flat(ellipse(x, y, 0.07, 0.07, 12), -0.2))
    elif kind == 1:
      r = rng.uniform(0.15, 0.45)
      lines.append(proj.flat(ellipse(x, y + r, r * 0.6, r, 24), -0.2))
    else:
      length = rng.uniform(0.5, 1.8)
      polys.append(proj.flat(np.array([(x - 0.05, y), (x + 0.05, y), (x + 0.2, y + length), (x - 0.2, y + length)]),
                             -0.2))
  alpha = canvas_lib.poly_alpha(c.shape, polys, 0.4) if polys else np.zeros(c.shape, np.float32)
  if lines:
    alpha = np.maximum(alpha, canvas_lib.line_alpha(c.shape, [np.concatenate([l, l[:1]]) for l in lines],
                                                    0.05 * u, 0.4))
  c.paint(alpha, metal, 'ear_r')


def necklace(c: canvas_lib.Canvas, proj, rng, head) -> None:
  u = proj.pose.unit
  y = head.chin_y + rng.uniform(0.6, 1.4)
  arc = proj.silhouette(ellipse(0, y - 0.5, rng.uniform(0.9, 1.4), rng.uniform(0.6, 1.1), 24, 0.1, np.pi - 0.1))
  colour = np.array([[0.85, 0.7, 0.35], [0.8, 0.8, 0.82], [0.95, 0.93, 0.88]])[rng.integers(3)]
  c.paint(canvas_lib.line_alpha(c.shape, [arc], rng.uniform(0.03, 0.09) * u, 0.4), colour, 'neck_l')


def hat(c: canvas_lib.Canvas, proj, rng, head) -> None:
  """A hat over the crown; its brim shades the forehead and often the eyes."""
  u = proj.pose.unit
  brim_y = head.top_y + rng.uniform(0.5, 1.7)
  brim = rng.uniform(0.0, 0.9)
  w = head.width + 0.25
  crown = spline([(-w, brim_y), (-w * 0.95, brim_y - 1.2), (-w * 0.6, head.top_y - 1.4), (0, head.top_y - 1.6),
                  (w * 0.6, head.top_y - 1.4), (w * 0.95, brim_y - 1.2), (w, brim_y)], 5)
  outline = np.concatenate([crown, ellipse(0, brim_y, w + brim, 0.12 + brim * 0.25, 24, 0, np.pi)])
  pts = proj.silhouette(outline)
  colour = rng.uniform(0, 1, 3) * (rng.uniform(0.1, 0.5) if rng.random() < 0.5 else 1.0)
  folds = 1 + 0.1 * canvas_lib.smooth_noise(rng, c.shape, 15)[..., None]
  shadow = canvas_lib.poly_alpha(c.shape, [proj.silhouette(np.array([(-w - brim, brim_y), (w + brim, brim_y),
                                                                     (w, brim_y + 0.6 + brim * 1.5),
                                                                     (-w, brim_y + 0.6 + brim * 1.5)]))], 0.3 * u)
  c.shade(1 - shadow * rng.uniform(0.25, 0.6))
  c.paint(canvas_lib.poly_alpha(c.shape, [pts], 0.6), np.clip(colour * folds, 0, 1), 'hat',
          record_alpha=canvas_lib.poly_alpha(c.shape, [pts]))


def occluder(c: canvas_lib.Canvas, proj, rng, head, skin_tone) -> None:
  """A hand, a microphone or an object in front of the lower face (not labelled)."""
  kind = rng.choice(3, p=[0.45, 0.35, 0.2])
  side = rng.choice([-1, 1])
  if kind == 0:  # a hand: palm and fingers reaching up the cheek or under the chin
    x, y = side * rng.uniform(0.8, 2.2), rng.uniform(2.2, 3.6)
    palm = ellipse(x, y + 0.8, 0.9, 1.1, 24)
    fingers = []
    angle = rng.uniform(-0.6, 0.6) - side * 0.3
    for k in range(4):
      fx = x + (k - 1.5) * 0.38
      tip = (fx + np.sin(angle) * 1.3, y - np.cos(angle) * 1.3 - abs(k - 1.5) * -0.15)
      fingers.append(np.concatenate([ellipse(tip[0], tip[1], 0.17, 0.17, 10, np.pi, 2 * np.pi),
                                     [(fx + 0.17, y + 0.3), (fx - 0.17, y + 0.3)]]))
    alpha = canvas_lib.poly_alpha(c.shape, [proj.silhouette(p) for p in [palm] + fingers], 0.6)
    tone = np.clip(skin_tone * rng.uniform(0.9, 1.1), 0, 1)
    gaps = [x + (k - 1) * 0.38 for k in range(3)]
    lines = [proj.silhouette(np.array([(g, y + 0.2), (g, y - 0.4)])) for g in gaps]
    c.paint(alpha, tone, hides=True)
    c.shade(1 - canvas_lib.line_alpha(c.shape, lines, 1.0, 0.8) * alpha * 0.4)
  elif kind == 1:  # a microphone: a meshed ball on a handle
    x, y = side * rng.uniform(0.3, 1.6), rng.uniform(2.6, 3.8)
    head_pts = proj.silhouette(ellipse(x, y, 0.55, 0.6, 24))
    handle = proj.silhouette(np.array([(x - 0.2, y + 0.5), (x + 0.2, y + 0.5), (x + 0.3 * side + 0.15, 7),
                                       (x + 0.3 * side - 0.15, 7)]))
    mesh = np.clip(0.25 + 0.25 * canvas_lib.smooth_noise(rng, c.shape, 1.5), 0, 1)[..., None] * np.ones(3, np.float32)
    c.paint(canvas_lib.poly_alpha(c.shape, [handle], 0.5), np.full(3, rng.uniform(0.03, 0.2)), hides=True)
    c.paint(canvas_lib.poly_alpha(c.shape, [head_pts], 0.5), mesh * rng.uniform(0.6, 1.6), hides=True)
  else:  # something held up: a phone, a cup, a glass
    x, y = side * rng.uniform(0.8, 2.4), rng.uniform(2.5, 4.0)
    w, h = rng.uniform(0.35, 0.9), rng.uniform(0.6, 1.5)
    box = proj.silhouette(np.array([(x - w, y - h), (x + w, y - h), (x + w, y + h), (x - w, y + h)]))
    c.paint(canvas_lib.poly_alpha(c.shape, [box], 0.7), rng.uniform(0, 1, 3), hides=True)


def cast(rng, size: int) -> np.ndarray:
  """A soft shadow pattern over the whole picture (leaves, window frames), as a factor."""
  pattern = canvas_lib.blur((canvas_lib.smooth_noise(rng, (size, size), rng.uniform(20, 80)) > 0.3)
                            .astype(np.float32), rng.uniform(3, 10))
  return (1 - pattern * rng.uniform(0.2, 0.5)).astype(np.float32)

