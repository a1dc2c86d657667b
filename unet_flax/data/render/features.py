"""Eyes, brows, nose, lips and mouth: drawn in face units, posed, painted as a photo shows them.

Eyes have a sclera, an iris with radial texture and a limbal ring, a pupil and a catchlight,
a lash line, lashes, a lid crease and a shadow of the upper lid; make-up adds eyeliner and
eyeshadow. Brows are hair strokes over a faint base. Lips have a cupid's bow, vertical
texture and gloss; smiling and open mouths show teeth. The nose is mostly the light's work
(see `shading`); here it gets nostrils and the creases of its wings.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from unet_flax.data.render import canvas as canvas_lib
from unet_flax.data.render.geometry import ellipse, spline

EYE_RELIEF = -0.35  # the eyes sit in their sockets, behind the head's surface


@dataclasses.dataclass
class Eyes:
  half_width: float
  upper: float  # height of the upper lid's arc above the eye line
  lower: float  # depth of the lower lid's arc
  tilt: float  # outer corners up
  iris: float  # iris radius
  gaze: np.ndarray
  iris_colour: np.ndarray
  sclera: np.ndarray
  lash: float  # lash line thickness, face units
  liner: float  # 0 or the eyeliner wing length
  shadow_colour: np.ndarray
  shadow: float  # eyeshadow strength
  crease: float  # crease height above the lid
  circles: float  # dark circles under the eyes
  smile_lines: float  # the arc a smile pushes up under each eye

  @classmethod
  def sample(cls, rng: np.random.Generator, make_up: float, smiling: bool) -> 'Eyes':
    iris_base = [(0.25, 0.14, 0.07), (0.4, 0.25, 0.12), (0.15, 0.1, 0.06), (0.3, 0.42, 0.55),
                 (0.35, 0.45, 0.3), (0.5, 0.4, 0.25)]
    # A smile narrows the eyes and raises an arc under each: with the lid above, a ring around the
    # eye that is not a frame.
    squint = rng.uniform(0.55, 0.9) if smiling and rng.random() < 0.7 else rng.uniform(0.8, 1.0)
    return cls(
        half_width=rng.uniform(0.36, 0.44), upper=rng.uniform(0.13, 0.22) * squint,
        lower=rng.uniform(0.06, 0.1) * squint, tilt=rng.uniform(-0.03, 0.09), iris=rng.uniform(0.15, 0.19),
        gaze=rng.normal(0, [0.05, 0.02]), iris_colour=np.array(iris_base[rng.integers(len(iris_base))])
        * rng.uniform(0.7, 1.2), sclera=np.array([0.93, 0.9, 0.87]) * rng.uniform(0.75, 1.0),
        lash=rng.uniform(0.035, 0.07) + make_up * rng.uniform(0, 0.06),
        liner=rng.uniform(0.08, 0.25) if make_up > 0.5 and rng.random() < 0.5 else 0.0,
        shadow_colour=np.array([[0.3, 0.22, 0.2], [0.25, 0.2, 0.3], [0.45, 0.3, 0.25], [0.15, 0.12, 0.12],
                                [0.5, 0.4, 0.45]])[rng.integers(5)],
        shadow=make_up * rng.uniform(0.1, 0.5), crease=rng.uniform(0.1, 0.22),
        circles=rng.uniform(0, 0.25) if rng.random() < 0.4 else 0.0,
        smile_lines=rng.uniform(0.2, 0.55) if smiling else rng.uniform(0, 0.3) * (rng.random() < 0.3))

  def outline(self, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(upper lid, lower lid) curves of one eye, inner corner to outer corner; side +1 is the
    subject's left (image right)."""
    w, t = self.half_width, self.tilt
    inner, outer = (side * (1 - w), t * 0.3), (side * (1 + w), -t)
    upper = spline([inner, (side * (1 - 0.55 * w), -0.8 * self.upper), (side * (1 - 0.05 * w), -self.upper - t * 0.2),
                    (side * (1 + 0.55 * w), -0.75 * self.upper - t * 0.7), outer], 6)
    lower = spline([inner, (side * (1 - 0.45 * w), 0.85 * self.lower), (side * (1 + 0.1 * w), self.lower - t * 0.3),
                    (side * (1 + 0.65 * w), 0.55 * self.lower - t * 0.8), outer], 6)
    return upper, lower


def draw_eyes(c: canvas_lib.Canvas, proj, rng: np.random.Generator, eyes: Eyes, skin) -> None:
  u = proj.pose.unit
  for side, name in ((1, 'l_eye'), (-1, 'r_eye')):
    upper_fu, lower_fu = eyes.outline(side)
    upper, lower = proj(upper_fu, EYE_RELIEF), proj(lower_fu, EYE_RELIEF)
    opening = np.concatenate([upper, lower[::-1]])
    # Around the eye first: eyeshadow up to the brow, the lid crease, dark circles below.
    lid = np.concatenate([upper_fu, (upper_fu * [1, 1] + [0, -eyes.crease - 0.25])[::-1]])
    if eyes.shadow > 0:
      c.paint(canvas_lib.poly_alpha(c.shape, [proj(lid, EYE_RELIEF + 0.1)], 0.12 * u) * eyes.shadow,
              eyes.shadow_colour * skin)
    crease = proj(upper_fu[1:-1] + [0, -eyes.crease], EYE_RELIEF + 0.1)
    c.shade(1 - canvas_lib.line_alpha(c.shape, [crease], 0.025 * u, 0.02 * u) * rng.uniform(0.15, 0.4))
    if eyes.circles:
      bag = np.concatenate([lower_fu, (lower_fu + [0, 0.18])[::-1]])
      c.shade(1 - canvas_lib.poly_alpha(c.shape, [proj(bag, EYE_RELIEF + 0.1)], 0.08 * u) * eyes.circles)
    if eyes.smile_lines:  # a lit bulge under the lower lid, its crease below
      drop = rng.uniform(0.12, 0.22)
      arc = (lower_fu - [side, 0]) * [1.15, 1.3] + [side, drop]
      bulge = np.concatenate([lower_fu, arc[::-1]])
      c.shade(1 + canvas_lib.poly_alpha(c.shape, [proj(bulge, EYE_RELIEF + 0.15)], 0.05 * u) * eyes.smile_lines * 0.3)
      c.shade(1 - canvas_lib.line_alpha(c.shape, [proj(arc[1:-1], EYE_RELIEF + 0.1)], 0.04 * u, 0.03 * u)
              * eyes.smile_lines)
    # The eye: sclera, iris, pupil, then the upper lid's shadow across the top.
    open_alpha = canvas_lib.poly_alpha(c.shape, [opening])
    # The lids' margins and the socket's shadow ring the opening with a soft dark band; real
    # bare eyes are darker around than the skin (measured on real label maps: docs/data.md, "Synthetic faces").
    centre_px = opening.mean(0)
    margin = canvas_lib.poly_alpha(c.shape, [(opening - centre_px) * [1.12, 1.6] + centre_px], 0.04 * u)
    c.shade(1 - margin * (1 - open_alpha) * rng.uniform(0.25, 0.5))
    middle = canvas_lib.poly_alpha(c.shape, [proj(ellipse(side, 0, eyes.half_width * 0.6, eyes.upper * 0.8),
                                                  EYE_RELIEF)], 0.25 * u)
    c.paint(open_alpha, np.asarray(eyes.sclera, np.float32) * (0.82 + 0.18 * middle[..., None]), name)
    np.maximum(c.bright, open_alpha, out=c.bright)
    centre = proj([(side + eyes.gaze[0], eyes.gaze[1] - 0.01)], EYE_RELIEF)[0]
    r = eyes.iris * u
    iris = canvas_lib.poly_alpha(c.shape, [ellipse(*centre, r, r, 40)]) * open_alpha
    texture = _iris_texture(rng, c.size, centre, r, eyes.iris_colour)
    c.paint(iris, texture)
    pupil = canvas_lib.poly_alpha(c.shape, [ellipse(*centre, r * rng.uniform(0.3, 0.5), r * 0.45, 24)]) * open_alpha
    c.paint(pupil, (0.03, 0.025, 0.025))
    top = proj(np.concatenate([upper_fu, (upper_fu + [0, eyes.upper * 0.7])[::-1]]), EYE_RELIEF)
    c.shade(1 - canvas_lib.poly_alpha(c.shape, [top], 0.04 * u) * open_alpha * rng.uniform(0.3, 0.6))
    glint = proj([(side + eyes.gaze[0] + rng.uniform(-0.08, 0.08), eyes.gaze[1] - 0.06)], EYE_RELIEF)[0]
    c.glints += canvas_lib.poly_alpha(c.shape, [ellipse(*glint, 0.02 * u, 0.02 * u, 12)], 0.3) * open_alpha * 0.8
    # Lash lines, lashes and the eyeliner's wing.
    dark = np.array([0.06, 0.045, 0.04]) * rng.uniform(0.6, 1.6)
    lash_line = proj(upper_fu[1:] - [0, eyes.lash * 0.45], EYE_RELIEF)  # mostly above the opening
    c.paint(canvas_lib.line_alpha(c.shape, [lash_line], eyes.lash * u, 0.4), dark)
    c.paint(canvas_lib.line_alpha(c.shape, [lash_line[len(lash_line) // 2:]], eyes.lash * u * 1.6, 0.4), dark)
    # The lower lash line: with the upper one it outlines the eye as a frame's rim would, so
    # glasses-free faces show that outline too (kohl make-up draws it thick and dark).
    kohl = eyes.liner > 0 and rng.random() < 0.4
    c.paint(canvas_lib.line_alpha(c.shape, [lower[1:-1]], eyes.lash * u * (1.0 if kohl else rng.uniform(0.5, 0.9)),
                                  0.5) * (0.9 if kohl else rng.uniform(0.5, 0.9)), dark)
    low_idx = (np.linspace(0.35, 0.95, rng.integers(4, 12)) * (len(lower_fu) - 1)).astype(int)
    low_tips = lower_fu[low_idx] + np.stack([side * rng.uniform(0.0, 0.04, len(low_idx)),
                                             rng.uniform(0.03, 0.07, len(low_idx))], 1)
    low_lashes = proj(np.stack([lower_fu[low_idx], low_tips], 1).reshape(-1, 2), EYE_RELIEF).reshape(-1, 2, 2)
    c.paint(canvas_lib.line_alpha(c.shape, list(low_lashes), 0.8, 0.3) * rng.uniform(0.2, 0.6), dark)
    if eyes.liner:
      wing = proj([upper_fu[-1], upper_fu[-1] + [side * eyes.liner, -eyes.liner * 0.5]], EYE_RELIEF)
      c.paint(canvas_lib.line_alpha(c.shape, [wing], eyes.lash * u * 1.3, 0.4), dark)
    idx = (np.linspace(0.3, 1, rng.integers(8, 22)) * (len(upper_fu) - 1)).astype(int)
    tips = upper_fu[idx] + np.stack([side * rng.uniform(0.02, 0.08, len(idx)), -rng.uniform(0.05, 0.13, len(idx))], 1)
    lashes = proj(np.stack([upper_fu[idx], tips], 1).reshape(-1, 2), EYE_RELIEF + 0.05).reshape(-1, 2, 2)
    c.paint(canvas_lib.line_alpha(c.shape, list(lashes), 1.0, 0.3) * rng.uniform(0.4, 0.9), dark)


def _iris_texture(rng, size, centre, r, colour):
  """Radial streaks, darker toward the limbal ring, lighter around the pupil."""
  box = max(2, int(r * 2.5))
  tex = np.broadcast_to(np.asarray(colour, np.float32), (size, size, 3)).copy()
  y0, x0 = int(centre[1]) - box, int(centre[0]) - box
  ys, xs = slice(max(y0, 0), min(y0 + 2 * box, size)), slice(max(x0, 0), min(x0 + 2 * box, size))
  yy, xx = np.mgrid[ys, xs].astype(np.float32)
  dx, dy = xx - centre[0], yy - centre[1]
  rho = np.sqrt(dx * dx + dy * dy) / max(r, 1e-3)
  angle = np.arctan2(dy, dx)
  streaks = sum(np.cos(k * angle + rng.uniform(0, 6.3)) * rng.uniform(0.02, 0.08) for k in (7, 13, 23, 37))
  shade = (1 + streaks) * (1.25 - 0.5 * np.clip(rho, 0, 1) ** 2) * np.where(rho > 0.85, 0.55, 1.0)
  tex[ys, xs] *= shade[..., None]
  return np.clip(tex, 0, 1)


@dataclasses.dataclass
class Brows:
  y: float
  inner: float
  arch_x: float
  arch: float
  tail_x: float
  tail_drop: float
  thickness: float
  density: float
  colour: np.ndarray

  @classmethod
  def sample(cls, rng: np.random.Generator, hair_colour: np.ndarray, heavy: bool) -> 'Brows':
    dark = rng.uniform(0.05, 0.25) * np.array([1.0, 0.85, 0.75])  # pencilled or dyed
    base = hair_colour * rng.uniform(0.45, 0.85) if rng.random() < 0.8 else dark
    return cls(y=-rng.uniform(0.45, 0.62), inner=rng.uniform(0.28, 0.45), arch_x=rng.uniform(0.95, 1.25),
               arch=rng.uniform(0.05, 0.2), tail_x=rng.uniform(1.5, 1.78), tail_drop=rng.uniform(-0.02, 0.15),
               thickness=rng.uniform(0.22, 0.38) if heavy else rng.uniform(0.13, 0.26),
               density=rng.uniform(0.7, 1.0) if heavy else rng.uniform(0.3, 0.85),
               colour=np.clip(base, 0, 1).astype(np.float32))

  def centreline(self, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(points, thickness) along one brow from its head (inner end) to its tail."""
    pts = spline([(side * self.inner, self.y + 0.04), (side * (self.inner + self.arch_x) / 2, self.y - self.arch * 0.6),
                  (side * self.arch_x, self.y - self.arch), (side * self.tail_x, self.y + self.tail_drop)], 6)
    t = np.linspace(0, 1, len(pts))
    return pts, self.thickness * (1 - 0.75 * t ** 1.5)


def draw_brows(c: canvas_lib.Canvas, proj, rng: np.random.Generator, brows: Brows, skin) -> None:
  u = proj.pose.unit
  for side, name in ((1, 'l_brow'), (-1, 'r_brow')):
    pts, th = brows.centreline(side)
    tangent = np.gradient(pts, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    outline = np.concatenate([pts + normal * th[:, None] / 2, (pts - normal * th[:, None] / 2)[::-1]])
    shape = canvas_lib.poly_alpha(c.shape, [proj(outline, 0.1)], 0.03 * u)
    c.paint(shape * rng.uniform(0.2, 0.5) * brows.density, brows.colour * 0.7 + skin * 0.3, name,
            record_alpha=canvas_lib.poly_alpha(c.shape, [proj(outline, 0.1)]))
    n = int(brows.density * 260 * brows.thickness / 0.2)
    t = rng.random(n) ** 0.8
    idx = np.minimum((t * (len(pts) - 1)).astype(int), len(pts) - 1)
    offset = rng.uniform(-0.5, 0.5, n) * th[idx]
    start = pts[idx] + normal[idx] * offset[:, None]
    # Hairs near the head rise steeply; along the arch and tail they lie along the brow.
    angle = np.arctan2(tangent[idx, 1], tangent[idx, 0]) - side * (1 - t) ** 2 * rng.uniform(0.6, 1.2, n)
    length = rng.uniform(0.1, 0.22, n)
    end = start + np.stack([np.cos(angle), np.sin(angle)], 1) * length[:, None]
    buf = np.zeros(c.shape, np.uint8)
    lines = proj(np.stack([start, end], 1).reshape(-1, 2), 0.12).reshape(n, 2, 2)
    canvas_lib.strokes(buf, lines, rng.uniform(120, 250, n), rng.uniform(0.8, 1.6, n) * u / 63)
    c.paint(buf.astype(np.float32) / 255 * brows.density, brows.colour)


@dataclasses.dataclass
class Mouth:
  y: float
  half_width: float
  curve: float  # corners up
  top_gap: float  # how far the opening reaches above the lip line
  bottom_gap: float
  upper: float  # upper lip thickness
  lower: float
  lip_colour: np.ndarray
  teeth: bool
  lower_teeth: bool
  gloss: float

  @classmethod
  def sample(cls, rng: np.random.Generator, skin: np.ndarray, lipstick: bool) -> 'Mouth':
    kind = rng.choice(3, p=[0.35, 0.5, 0.15])  # closed, smiling with teeth, open
    stretch = 0.75 if kind else 1.0
    natural = skin * np.array([0.95, 0.62, 0.62]) * rng.uniform(0.75, 0.95)
    paints = np.array([[0.6, 0.05, 0.1], [0.75, 0.3, 0.4], [0.4, 0.08, 0.15], [0.7, 0.45, 0.4],
                       [0.45, 0.25, 0.2], [0.85, 0.15, 0.25]])
    colour = paints[rng.integers(len(paints))] * rng.uniform(0.8, 1.1) if lipstick else natural
    return cls(y=rng.uniform(2.0, 2.3), half_width=rng.uniform(0.8, 1.05) * (1.1 if kind == 1 else 1.0),
               curve=rng.uniform(-0.03, 0.08) + (0.12 if kind == 1 else 0.0),
               top_gap=0.0 if kind == 0 else rng.uniform(0.04, 0.12),
               bottom_gap=0.0 if kind == 0 else rng.uniform(0.12, 0.3) if kind == 1 else rng.uniform(0.3, 0.5),
               upper=rng.uniform(0.14, 0.26) * stretch, lower=rng.uniform(0.22, 0.4) * stretch,
               lip_colour=np.clip(colour, 0, 1).astype(np.float32), teeth=kind > 0,
               lower_teeth=kind > 0 and rng.random() < 0.35, gloss=rng.uniform(0.05, 0.5))

  def curves(self):
    """Face-unit curves left to right: upper lip's top, the opening's top and bottom, lower lip's
    bottom."""
    x = np.linspace(-1, 1, 25)
    w = self.half_width
    bend = -self.curve * x ** 2
    bow = self.upper * (1 - 0.35 * np.exp(-(x / 0.12) ** 2) + 0.15 * np.exp(-((np.abs(x) - 0.3) / 0.15) ** 2))
    open_top = bend - self.top_gap * (1 - x ** 2)
    open_bottom = bend + self.bottom_gap * (1 - x ** 4)
    top = open_top - bow * (1 - x ** 2) ** 0.6
    bottom = open_bottom + self.lower * (1 - x ** 2) ** 0.7
    xs = x * w
    return [np.stack([xs, self.y + v], 1) for v in (top, open_top, open_bottom, bottom)]


def draw_mouth(c: canvas_lib.Canvas, proj, rng: np.random.Generator, mouth: Mouth) -> None:
  u = proj.pose.unit
  top, open_top, open_bottom, bottom = (proj(v, 0.2) for v in mouth.curves())
  if mouth.teeth:
    inside = np.concatenate([open_top, open_bottom[::-1]])
    inside_alpha = canvas_lib.poly_alpha(c.shape, [inside])
    c.paint(inside_alpha, np.array([0.22, 0.06, 0.07]) * rng.uniform(0.5, 1.2), 'mouth')
    teeth_colour = np.array([0.93, 0.9, 0.8]) * rng.uniform(0.75, 1.0)
    depth = rng.uniform(0.45, 0.8)
    upper_teeth = np.concatenate([open_top, (open_top * (1 - depth) + open_bottom * depth)[::-1]])
    c.paint(canvas_lib.poly_alpha(c.shape, [upper_teeth], 0.5) * inside_alpha, teeth_colour)
    if mouth.lower_teeth:
      lower_teeth = np.concatenate([open_bottom, (open_bottom * 0.75 + open_top * 0.25)[::-1]])
      c.paint(canvas_lib.poly_alpha(c.shape, [lower_teeth], 0.5) * inside_alpha * 0.9, teeth_colour * 0.85)
    gaps = [np.stack([open_top[i], open_top[i] * 0.4 + open_bottom[i] * 0.6]) for i in (7, 9, 11, 13, 15, 17)]
    c.shade(1 - canvas_lib.line_alpha(c.shape, gaps, 0.8, 0.5) * inside_alpha * rng.uniform(0.1, 0.3))
  upper_lip = np.concatenate([top, open_top[::-1]])
  lower_lip = np.concatenate([open_bottom, bottom[::-1]])
  stripes = 1 + 0.06 * canvas_lib.smooth_noise(rng, c.shape, 3)[:, :, None] * np.ones(3, np.float32)
  for name, poly, shade in (('u_lip', upper_lip, 0.88), ('l_lip', lower_lip, 1.0)):
    alpha = canvas_lib.poly_alpha(c.shape, [poly], 0.6)
    c.paint(alpha, np.clip(mouth.lip_colour * shade * stripes, 0, 1), name,
            record_alpha=canvas_lib.poly_alpha(c.shape, [poly]))
  if not mouth.teeth:  # the line where the lips meet
    c.shade(1 - canvas_lib.line_alpha(c.shape, [open_top], 0.025 * u, 0.5) * rng.uniform(0.4, 0.7))
  gloss = proj(np.stack([np.linspace(-0.35, 0.35, 6) * mouth.half_width,
                         np.full(6, mouth.y + mouth.bottom_gap + mouth.lower * 0.45)], 1), 0.3)
  c.glints += canvas_lib.line_alpha(c.shape, [gloss], 0.05 * u, 0.04 * u) * mouth.gloss


def nose_outline(width: float) -> np.ndarray:
  """The nose's mask outline in face units, bridge to base (CelebAMask-HQ's nose: from between
  the eyes down to the wings and the base)."""
  right = [(0.2, -0.2), (0.24, 0.4), (0.33, 0.95), (width, 1.3), (width * 0.95, 1.5), (0.32, 1.62)]
  pts = spline(right + [(0, 1.66)] + [(-x, y) for x, y in right[::-1]], 5)
  return pts


def nose_relief(points: np.ndarray) -> np.ndarray:
  """How far nose points stand out of the head: little at the bridge, most at the tip."""
  y = points[:, 1]
  return np.clip(0.15 + 0.6 * (y + 0.2) / 1.5, 0.1, 0.75) * (1 - 0.6 * np.clip(np.abs(points[:, 0]) / 0.6, 0, 1))


def draw_nose(c: canvas_lib.Canvas, proj, rng: np.random.Generator, width: float, skin) -> None:
  u = proj.pose.unit
  outline = nose_outline(width)
  c.paint(canvas_lib.poly_alpha(c.shape, [proj(outline, nose_relief(outline))], 0.15 * u) * 0.35,
          skin * np.array([1.02, 0.9, 0.88]), 'nose',
          record_alpha=canvas_lib.poly_alpha(c.shape, [proj(outline, nose_relief(outline))]))
  for side in (1, -1):
    nostril = ellipse(side * width * 0.42, 1.5, width * 0.22, 0.07, 16)
    c.paint(canvas_lib.poly_alpha(c.shape, [proj(nostril, 0.35)], 0.04 * u) * rng.uniform(0.5, 0.85),
            skin * np.array([0.35, 0.22, 0.2]))
    wing = ellipse(side * width * 0.78, 1.3, width * 0.3, 0.22, 12, -math.pi / 2 - side * 1.4, math.pi / 2 + side * 0.2)
    c.shade(1 - canvas_lib.line_alpha(c.shape, [proj(wing, 0.3)], 0.03 * u, 0.03 * u) * rng.uniform(0.15, 0.35))
