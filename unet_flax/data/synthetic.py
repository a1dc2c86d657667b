"""Procedurally drawn faces written in the CelebAMask-HQ layout (the `synthetic` config).

Each face is a pure function of (seed, index): shapes are polygons in a
canonical face frame, moved by one pose transform (rotation, scale, offset) so
that image and every part mask share the exact same geometry. Masks are the
visible part regions, except that parts overlap as in CelebAMask-HQ: the
eyeglasses mask covers frames and lenses over the eyes and both are kept;
hair bangs and hats hide what is under them.

What varies: skin tone, face shape, pose, hair style and colour (bangs that can
cover brows and the top of frames), eyes, brows, nose, lips (open or closed
mouth), ears, earrings, necklace, neck, clothes, hat; eyeglasses on
`GLASSES_FRACTION` of faces in six frame styles (round, rectangular, aviator,
cat-eye, half-rim, rimless), thin or thick frames, clear, tinted or sunglass
lenses, with highlights; backgrounds (flat, gradient, clutter, stripes),
lighting gradients, blur, sensor noise and JPEG artefacts.

The files written are read back by exactly the CelebAMask-HQ reader.
"""

from __future__ import annotations

import ctypes
import io
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from unet_flax.data import parts as parts_lib
from unet_flax.data.celebamask_hq import ANNO_DIR, IMG_DIR, MAPPING_FILE, TEST_START, VALIDATION_START

GLASSES_FRACTION = 0.4
FRAME_STYLES = ('round', 'rectangular', 'aviator', 'cat_eye', 'half_rim', 'rimless')
LENS_KINDS = ('clear', 'tinted', 'sunglass')
CANVAS = 512  # images and masks are drawn at 512x512 (CelebAMask-HQ's mask size)

SKIN_TONES = np.array([[255, 224, 196], [241, 194, 167], [224, 172, 135], [198, 134, 96],
                       [161, 102, 68], [120, 76, 50], [88, 56, 38], [236, 204, 180]])
HAIR_COLOURS = np.array([[20, 16, 14], [60, 40, 28], [110, 72, 40], [170, 130, 80],
                         [220, 190, 130], [140, 60, 30], [180, 180, 180], [90, 90, 100]])


def _ellipse(cx, cy, rx, ry, n=48, start=0.0, end=2 * math.pi):
  t = np.linspace(start, end, n, endpoint=end - start < 2 * math.pi - 1e-6)
  return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _rounded_rect(cx, cy, hw, hh, r, n=8):
  corners = [(hw - r, hh - r, 0), (-(hw - r), hh - r, math.pi / 2),
             (-(hw - r), -(hh - r), math.pi), (hw - r, -(hh - r), 1.5 * math.pi)]
  pts = [_ellipse(cx + ox, cy + oy, r, r, n, a, a + math.pi / 2) for ox, oy, a in corners]
  return np.concatenate(pts)


def _lens_outline(style, cx, cy, w, h, outer_sign, rng_shape):
  """Lens outline centred on an eye; outer_sign is +1 for the lens on the image's right."""
  if style in ('round', 'rimless') and rng_shape < 0.5:
    return _ellipse(cx, cy, w, w * 0.9)
  if style in ('rectangular', 'half_rim', 'rimless'):
    return _rounded_rect(cx, cy, w, h, min(w, h) * 0.35)
  if style == 'round':
    return _ellipse(cx, cy, w, h * 1.1)
  pts = _ellipse(0, 0, w, h)
  x, y = pts[:, 0], pts[:, 1]
  if style == 'aviator':  # teardrop: wide top, bottom pulled down toward the nose
    y = np.where(y > 0, y * (1.35 - 0.45 * outer_sign * x / w), y * 0.95)
  else:  # cat_eye: outer-top corner swept up
    lift = np.clip(outer_sign * x / w, 0, 1) ** 2 * np.clip(-y / h + 0.3, 0, 1.3)
    y = y - lift * h * 0.6
  return np.stack([cx + x, cy + y], axis=1)


class _Face:
  """Random face parameters and the polygons derived from them (canonical frame)."""

  def __init__(self, rng: np.random.Generator, glasses: bool):
    r = rng
    self.rng = r
    self.cx, self.cy = CANVAS / 2, CANVAS * 0.46
    # CelebA-HQ framing: inter-ocular distance about 0.2 of the image width.
    self.rx = r.uniform(120, 150)
    self.ry = self.rx * r.uniform(1.18, 1.42)
    self.jaw = r.uniform(-0.15, 0.2)  # >0 narrower chin
    self.skin = np.clip(SKIN_TONES[r.integers(len(SKIN_TONES))] + r.normal(0, 10, 3), 0, 255)
    self.hair_colour = np.clip(HAIR_COLOURS[r.integers(len(HAIR_COLOURS))] + r.normal(0, 8, 3), 0, 255)
    self.hairline = r.uniform(-0.78, -0.22)  # in units of ry; below ~-0.4 covers brows
    self.long_hair = r.random() < 0.5
    self.bald = r.random() < 0.06
    self.hat = r.random() < 0.1
    self.earrings = r.random() < 0.15
    self.necklace = r.random() < 0.1
    self.mouth_open = r.random() < 0.35
    self.glasses = glasses
    self.style = FRAME_STYLES[r.integers(len(FRAME_STYLES))]
    self.lens = LENS_KINDS[r.choice(3, p=[0.5, 0.25, 0.25])]
    self.frame_px = r.uniform(1.5, 3.5) if r.random() < 0.5 else r.uniform(5, 10)
    self.eye_y = -0.12 + r.uniform(-0.05, 0.05)
    self.eye_dx = r.uniform(0.34, 0.42)

  def shapes(self) -> dict[str, list[np.ndarray]]:
    """Part name -> polygons, canonical frame. Keys also include drawing-only shapes."""
    r, cx, cy, rx, ry = self.rng, self.cx, self.cy, self.rx, self.ry
    s: dict[str, list[np.ndarray]] = {}
    t = np.linspace(0, 2 * math.pi, 72, endpoint=False)
    chin = np.where(np.sin(t) > 0, 1 - self.jaw * np.sin(t) ** 2 * np.abs(np.cos(t)) * 2, 1)
    s['skin'] = [np.stack([cx + rx * np.cos(t) * chin, cy + ry * np.sin(t)], 1)]
    s['neck'] = [np.array([[cx - 0.48 * rx, cy + 0.5 * ry], [cx + 0.48 * rx, cy + 0.5 * ry],
                           [cx + 0.55 * rx, cy + 1.45 * ry], [cx - 0.55 * rx, cy + 1.45 * ry]])]
    shoulder = r.uniform(1.9, 2.6) * rx
    top = min(cy + r.uniform(1.15, 1.3) * ry, CANVAS * 0.86)
    s['cloth'] = [np.concatenate([_ellipse(cx, top + 0.5 * rx, shoulder, 0.5 * rx, 24, math.pi, 2 * math.pi),
                                  [[cx + shoulder, CANVAS * 1.6], [cx - shoulder, CANVAS * 1.6]]])]
    for name, sign in (('l_ear', -1), ('r_ear', 1)):
      s[name] = [_ellipse(cx + sign * rx * 0.98, cy + 0.02 * ry, 0.17 * rx, 0.27 * ry, 24)]
    if self.earrings:
      s['ear_r'] = [_ellipse(cx + sg * rx * 1.0, cy + 0.3 * ry, 0.05 * rx, 0.07 * rx, 16) for sg in (-1, 1)]
    if self.necklace:
      outer = _ellipse(cx, cy + 0.85 * ry, 0.5 * rx, 0.4 * ry, 24, 0.15 * math.pi, 0.85 * math.pi)
      inner = _ellipse(cx, cy + 0.85 * ry, 0.44 * rx, 0.34 * ry, 24, 0.15 * math.pi, 0.85 * math.pi)
      s['neck_l'] = [np.concatenate([outer, inner[::-1]])]
    ey = cy + self.eye_y * ry
    eye_w, eye_h = r.uniform(0.14, 0.19) * rx, r.uniform(0.05, 0.09) * ry
    brow_y = ey - r.uniform(0.17, 0.24) * ry
    brow_th = r.uniform(0.025, 0.05) * ry
    for (eye, brow), sign in ((('l_eye', 'l_brow'), -1), (('r_eye', 'r_brow'), 1)):
      ex = cx + sign * self.eye_dx * rx
      upper = _ellipse(ex, ey + eye_h, eye_w, eye_h * 2, 16, math.pi, 2 * math.pi)
      lower = _ellipse(ex, ey - eye_h * 0.6, eye_w, eye_h * 1.6, 16, 0, math.pi)
      s[eye] = [np.concatenate([upper, lower])]
      arc = _ellipse(ex, brow_y + 0.1 * ry, eye_w * 1.35, 0.12 * ry, 16, 1.15 * math.pi, 1.85 * math.pi)
      s[brow] = [np.concatenate([arc, arc[::-1] + [0, brow_th]])]
    nose_w = r.uniform(0.13, 0.2) * rx
    s['nose'] = [np.array([[cx, ey + 0.02 * ry], [cx + nose_w * 0.5, ey + 0.25 * ry],
                           [cx + nose_w, cy + 0.33 * ry], [cx, cy + 0.38 * ry],
                           [cx - nose_w, cy + 0.33 * ry], [cx - nose_w * 0.5, ey + 0.25 * ry]])]
    my, mw = cy + r.uniform(0.54, 0.62) * ry, r.uniform(0.24, 0.33) * rx
    gap = r.uniform(0.03, 0.07) * ry if self.mouth_open else 0.0
    up_th, lo_th = r.uniform(0.04, 0.07) * ry, r.uniform(0.05, 0.09) * ry
    upper_edge = _ellipse(cx, my - gap / 2, mw, up_th, 20, math.pi, 2 * math.pi)
    s['u_lip'] = [np.concatenate([upper_edge, _ellipse(cx, my - gap / 2, mw, 0.3 * up_th, 20, 0, math.pi)])]
    lower_edge = _ellipse(cx, my + gap / 2, mw, lo_th, 20, 0, math.pi)
    s['l_lip'] = [np.concatenate([lower_edge, _ellipse(cx, my + gap / 2, mw * 0.98, 0.3 * lo_th, 20, math.pi, 2 * math.pi)])]
    if self.mouth_open:
      s['mouth'] = [_ellipse(cx, my, mw * 0.8, gap / 2 + 0.3 * up_th, 20)]
    if not self.bald:
      hl = cy + self.hairline * ry
      crown = _ellipse(cx, cy - 0.12 * ry, rx * 1.12, ry * 1.0, 40, math.pi, 2 * math.pi)
      side = cy + (0.9 * ry if self.long_hair else 0.0)
      fringe = _ellipse(cx, hl, rx * 0.98, 0.12 * ry * r.uniform(0.5, 1.5), 20, 0, math.pi)[::-1]
      # Bangs hang below the hairline: a wavy lower edge between the temples.
      fringe[:, 1] += r.uniform(0, 0.05, len(fringe)) * ry
      s['hair'] = [np.concatenate([[[cx + 1.12 * rx, side]], crown[::-1], [[cx - 1.12 * rx, side]],
                                   [[cx - 0.95 * rx, hl]], fringe, [[cx + 0.95 * rx, hl]]])]
      if self.long_hair:
        s['hair_back'] = [np.concatenate([_ellipse(cx, cy - 0.1 * ry, rx * 1.3, ry * 1.1, 40, math.pi, 2 * math.pi),
                                          [[cx + 1.35 * rx, cy + 1.2 * ry], [cx - 1.35 * rx, cy + 1.2 * ry]]])]
    if self.hat:
      brim_y = cy - r.uniform(0.45, 0.7) * ry
      s['hat'] = [np.concatenate([_ellipse(cx, brim_y, rx * 1.35, 0.12 * ry, 24, 0, math.pi),
                                  _ellipse(cx, brim_y, rx * 0.95, 0.75 * ry, 24, math.pi, 2 * math.pi)[::-1]])]
    if self.glasses:
      s.update(self._glasses(ey, eye_w))
    return s

  def _glasses(self, ey, eye_w):
    r, rx, cx = self.rng, self.rx, self.cx
    lw = max(eye_w * r.uniform(1.35, 1.7), 0.26 * rx)
    lh = lw * r.uniform(0.6, 0.85)
    gy = ey + r.uniform(-0.02, 0.05) * self.ry
    lenses, outers, frames = [], [], []
    shape_draw = r.random()
    t = self.frame_px
    for sign in (-1, 1):
      lx = cx + sign * self.eye_dx * rx
      lens = _lens_outline(self.style, lx, gy, lw, lh, sign, shape_draw)
      centre = lens.mean(0)
      outer = centre + (lens - centre) * (1 + t / max(lw, lh))
      lenses.append(lens)
      outers.append(outer)
    inner_x = [cx - self.eye_dx * rx + lw * 0.95, cx + self.eye_dx * rx - lw * 0.95]
    bridge = np.array([[inner_x[0], gy - lh * 0.45], [inner_x[1], gy - lh * 0.45],
                       [inner_x[1], gy - lh * 0.45 + max(t, 2.5)], [inner_x[0], gy - lh * 0.45 + max(t, 2.5)]])
    temples = []
    for sign in (-1, 1):
      x0 = cx + sign * (self.eye_dx * rx + lw * 0.95)
      x1 = cx + sign * rx * 1.0
      temples.append(np.array([[x0, gy - lh * 0.5], [x1, gy - lh * 0.4],
                               [x1, gy - lh * 0.4 + max(t * 0.7, 2)], [x0, gy - lh * 0.5 + max(t, 2.5)]]))
    frames = [] if self.style == 'rimless' else outers
    return {'eye_g': outers + [bridge] + temples, '_lenses': lenses, '_frames': frames,
            '_bridge': [bridge] + temples}


def _pose_matrix(rng):
  angle = math.radians(rng.normal(0, 10))
  scale = rng.uniform(0.82, 1.1)
  dx, dy = rng.normal(0, 22, 2)
  c, s = math.cos(angle) * scale, math.sin(angle) * scale
  centre = np.array([CANVAS / 2, CANVAS * 0.5])
  m = np.array([[c, -s], [s, c]])
  return lambda p: (p - centre) @ m.T + centre + [dx, dy]


def _background(rng) -> Image.Image:
  kind = rng.integers(4)  # flat, vertical gradient, clutter on horizontal gradient, stripes
  base, other = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
  ramp = np.linspace(0, 1, CANVAS, dtype=np.float32)
  ramp = ramp[:, None, None] if kind == 1 else ramp[None, :, None]
  arr = base + (other - base) * ramp * (kind != 0)
  if kind == 3:
    period = rng.integers(12, 60)
    arr = arr * (1 - 0.3 * (np.arange(CANVAS) // period % 2))[None, :, None]
  arr = np.broadcast_to(arr, (CANVAS, CANVAS, 3))
  img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
  if kind == 2 or rng.random() < 0.3:  # clutter
    d = ImageDraw.Draw(img)
    for _ in range(rng.integers(3, 12)):
      x, y = rng.integers(-50, CANVAS, 2)
      w, h = rng.integers(20, 200, 2)
      colour = tuple(int(v) for v in rng.integers(0, 256, 3))
      (d.ellipse if rng.random() < 0.5 else d.rectangle)([x, y, x + w, y + h], fill=colour)
  return img


def _poly(draw, pts, fill):
  draw.polygon([tuple(p) for p in np.round(pts, 1)], fill=fill)


def _shade(colour, factor):
  return tuple(int(v) for v in np.clip(np.asarray(colour) * factor, 0, 255))


def render_face(seed: int, index: int) -> tuple[Image.Image, dict[str, np.ndarray]]:
  """Returns the RGB image (512x512) and part name -> bool mask (512x512) for one face."""
  rng = np.random.default_rng([seed, index])
  face = _Face(rng, glasses=rng.random() < GLASSES_FRACTION)
  pose = _pose_matrix(rng)
  shapes = {k: [pose(p) for p in v] for k, v in face.shapes().items()}

  img = _background(rng)
  draw = ImageDraw.Draw(img)
  skin, hair = face.skin, face.hair_colour
  cloth_colour = tuple(int(v) for v in rng.integers(0, 256, 3))
  order = ['hair_back', 'cloth', 'neck', 'neck_l', 'l_ear', 'r_ear', 'ear_r', 'skin', 'nose',
           'l_eye', 'r_eye', 'l_brow', 'r_brow', 'u_lip', 'l_lip', 'mouth']
  lip = _shade(skin * np.array([1.0, 0.62, 0.62]) if rng.random() < 0.7 else rng.integers(60, 230, 3), 0.9)
  colours = {'hair_back': _shade(hair, 0.85), 'cloth': cloth_colour, 'neck': _shade(skin, 0.88),
             'neck_l': (230, 200, 90), 'l_ear': _shade(skin, 0.93), 'r_ear': _shade(skin, 0.93),
             'ear_r': (240, 215, 120), 'skin': _shade(skin, 1.0), 'nose': _shade(skin, 0.94),
             'l_eye': (245, 245, 240), 'r_eye': (245, 245, 240), 'l_brow': _shade(hair, 0.8),
             'r_brow': _shade(hair, 0.8), 'u_lip': lip, 'l_lip': _shade(lip, 1.08), 'mouth': (60, 20, 25)}
  for name in order:
    for pts in shapes.get(name, []):
      _poly(draw, pts, colours[name])
  iris = tuple(int(v) for v in rng.integers(20, 140, 3))
  for eye in ('l_eye', 'r_eye'):
    c = shapes[eye][0].mean(0)
    rad = np.ptp(shapes[eye][0][:, 1]) * 0.42
    draw.ellipse([c[0] - rad, c[1] - rad, c[0] + rad, c[1] + rad], fill=iris)
    draw.ellipse([c[0] - rad / 2.2, c[1] - rad / 2.2, c[0] + rad / 2.2, c[1] + rad / 2.2], fill=(10, 10, 10))
  if face.glasses:
    img = _draw_glasses(img, shapes, face, rng)
    draw = ImageDraw.Draw(img)
  for name in ('hair', 'hat'):
    for pts in shapes.get(name, []):
      _poly(draw, pts, _shade(hair, 1.0) if name == 'hair' else tuple(int(v) for v in rng.integers(0, 256, 3)))

  masks = {}
  occluders = _mask(shapes.get('hair', []) + shapes.get('hat', []))
  for name in parts_lib.CELEBAMASK_HQ_PARTS:
    if name in shapes:
      m = _mask(shapes[name])
      if name not in ('hair', 'hat', 'cloth'):
        m &= ~occluders
      if name == 'hair':
        m &= ~_mask(shapes.get('hat', []))
      if m.any():
        masks[name] = m
  if 'hair_back' in shapes:
    hair_back = _mask(shapes['hair_back'])
    covered = _mask([p for k in ('skin', 'neck', 'cloth', 'l_ear', 'r_ear') for p in shapes.get(k, [])])
    masks['hair'] = masks.get('hair', np.zeros_like(hair_back)) | (hair_back & ~covered & ~_mask(shapes.get('hat', [])))
  return _photometric(img, rng), masks


def _draw_glasses(img, shapes, face, rng):
  layer = Image.new('RGBA', img.size, (0, 0, 0, 0))
  d = ImageDraw.Draw(layer)
  frame_colour = tuple(int(v) for v in (rng.integers(0, 60, 3) if rng.random() < 0.6 else rng.integers(0, 256, 3)))
  if face.lens == 'clear':
    tint, alpha = (230, 240, 250), int(rng.uniform(15, 45))
  elif face.lens == 'tinted':
    tint, alpha = tuple(int(v) for v in rng.integers(40, 220, 3)), int(rng.uniform(80, 150))
  else:
    tint, alpha = tuple(int(v) for v in rng.integers(0, 50, 3)), int(rng.uniform(200, 245))
  for outer, lens in zip(shapes['eye_g'][:2], shapes['_lenses']):
    if face.style != 'rimless':
      _poly(d, outer, frame_colour + (255,))
    _poly(d, lens, tint + (alpha,))
    if face.style == 'rimless':
      d.line([tuple(p) for p in np.vstack([lens, lens[:1]])], fill=(200, 200, 210, 120), width=1)
    if face.style == 'half_rim':  # frame only along the top half: repaint the lower rim as lens
      top = lens[:, 1] < lens[:, 1].mean()
      lower = np.where(top[:, None], lens, outer)
      _poly(d, lower, (0, 0, 0, 0))
      _poly(d, lens, tint + (alpha,))
  for pts in shapes['_bridge']:
    _poly(d, pts, frame_colour + (255,))
  for lens in shapes['_lenses']:  # specular highlight
    c, w = lens.mean(0), np.ptp(lens[:, 0])
    x0, y0 = c[0] - w * rng.uniform(0.1, 0.3), c[1] - w * rng.uniform(0.15, 0.3)
    d.ellipse([x0, y0, x0 + w * 0.25, y0 + w * 0.08], fill=(255, 255, 255, int(rng.uniform(60, 160))))
  return Image.alpha_composite(img.convert('RGBA'), layer).convert('RGB')


def _mask(polys: Sequence[np.ndarray]) -> np.ndarray:
  m = Image.new('L', (CANVAS, CANVAS), 0)
  d = ImageDraw.Draw(m)
  for pts in polys:
    _poly(d, pts, 255)
  return np.asarray(m) > 0


def _photometric(img: Image.Image, rng) -> Image.Image:
  arr = np.asarray(img, np.float32)
  gx, gy = rng.normal(0, 0.35, 2)
  yy, xx = np.mgrid[-1:1:CANVAS * 1j, -1:1:CANVAS * 1j]
  light = rng.uniform(0.7, 1.2) * (1 + gx * xx + gy * yy)
  arr = arr * np.clip(light, 0.35, 1.7)[..., None] + rng.normal(0, rng.uniform(0, 8), arr.shape)
  img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
  if rng.random() < 0.5:
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.8)))
  return img


def _orig_number(index: int, sizes: dict[str, int]) -> int:
  """CelebA file number for a synthetic face, so CelebA's partition puts it in its split."""
  if index < sizes['train']:
    return 1 + index
  if index < sizes['train'] + sizes['validation']:
    return VALIDATION_START + index - sizes['train']
  return TEST_START + index - sizes['train'] - sizes['validation']


def _write_one(args):
  root, seed, index = args
  img, masks = render_face(seed, index)
  rng = np.random.default_rng([seed, index, 1])
  buf = io.BytesIO()
  img.save(buf, format='JPEG', quality=int(rng.integers(35, 96)))
  with open(os.path.join(root, IMG_DIR, f'{index}.jpg'), 'wb') as f:
    f.write(buf.getvalue())
  folder = os.path.join(root, ANNO_DIR, str(index // 2000))
  for name, m in masks.items():
    Image.fromarray((m * 255).astype(np.uint8)).save(os.path.join(folder, f'{index:05d}_{name}.png'))


def _die_with_parent(parent_pid: int) -> None:
  """Worker set-up: Ctrl-C is the parent's to handle, and a worker exits when its parent dies
  (even by SIGKILL), instead of drawing on for nobody."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  try:  # Linux: the kernel sends SIGKILL when the parent exits
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    pass

  def watch():  # elsewhere, or if the parent died before prctl: poll
    while os.getppid() == parent_pid:
      time.sleep(1.0)
    os._exit(1)

  threading.Thread(target=watch, daemon=True).start()


def write_tree(root: str, *, seed: int, sizes: dict[str, int], workers: int | None = None) -> None:
  """Writes a CelebAMask-HQ-layout tree of synthetic faces under `root`."""
  total = sum(sizes.values())
  os.makedirs(os.path.join(root, IMG_DIR), exist_ok=True)
  for folder in range(total // 2000 + 1):
    os.makedirs(os.path.join(root, ANNO_DIR, str(folder)), exist_ok=True)
  jobs = [(root, seed, i) for i in range(total)]
  workers = workers or os.cpu_count() or 1
  if workers > 1 and total > 16:
    # spawn, not fork: the caller may already run JAX threads, which fork can deadlock.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('spawn'),
                               initializer=_die_with_parent, initargs=(os.getpid(),))
    try:
      list(pool.map(_write_one, jobs, chunksize=8))
    finally:  # on Ctrl-C or an error, drop the queued work instead of finishing it
      pool.shutdown(wait=False, cancel_futures=True)
  else:
    for job in jobs:
      _write_one(job)
  rows = [f'{i} {i} {_orig_number(i, sizes):06d}.jpg' for i in range(total)]
  with open(os.path.join(root, MAPPING_FILE), 'w') as f:
    f.write('idx\torig_idx\torig_file\n' + '\n'.join(rows) + '\n')
