"""Light on a 3D-ish head: a height field of the posed face, its normals, shadows and highlights.

The height field is a sum of smooth shapes at the posed features' places: the head's dome,
the nose's ridge, tip and wings, the eye sockets under a brow ridge, cheekbones, lips, chin
and the neck set back under the jaw. It is lit from a random direction (Lambert with a wrap
for skin's softness, ambient occlusion in hollows, shadows cast along the light, and
Blinn-Phong highlights), computed at a quarter of the resolution: shading is smooth.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from unet_flax.data.render import canvas as canvas_lib

SCALE = 4  # the height field and the light are computed at 1/SCALE of the image's resolution


@dataclasses.dataclass
class Light:
  azimuth: float  # direction in the image plane the light comes from (radians, 0 = from the right)
  elevation: float  # radians above the image plane
  ambient: float
  strength: float
  colour: np.ndarray
  shininess: float
  specular: float

  @classmethod
  def sample(cls, rng: np.random.Generator) -> 'Light':
    # Photos are mostly lit from the front and above; sometimes hard from one side.
    side = rng.random() < 0.3
    return cls(azimuth=float(rng.uniform(-math.pi, 0) if rng.random() < 0.75 else rng.uniform(0, math.pi)),
               elevation=float(rng.uniform(0.35, 0.8) if side else rng.uniform(0.8, 1.35)),
               ambient=float(rng.uniform(0.25, 0.55)), strength=float(rng.uniform(0.6, 1.0)),
               colour=np.clip(1 + rng.normal(0, 0.05, 3), 0.85, 1.15).astype(np.float32),
               shininess=float(rng.uniform(8, 40)), specular=float(rng.uniform(0.02, 0.22)))

  @property
  def vector(self) -> np.ndarray:
    ce = math.cos(self.elevation)
    return np.array([ce * math.cos(self.azimuth), ce * math.sin(self.azimuth), math.sin(self.elevation)])


class HeightField:
  """Heights (in pixels, at 1/SCALE resolution) built from Gaussian bumps and domes."""

  def __init__(self, size: int):
    n = size // SCALE
    self.n = n
    self.y, self.x = np.mgrid[0:n, 0:n].astype(np.float32) * SCALE + SCALE / 2
    self.h = np.zeros((n, n), np.float32)

  def bump(self, centre, sx, sy, height, angle=0.0) -> None:
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = self.x - centre[0], self.y - centre[1]
    u, v = (c * dx + s * dy) / sx, (-s * dx + c * dy) / sy
    self.h += height * np.exp(-0.5 * (u * u + v * v))

  def dome(self, centre, ax, ay, height, angle=0.0) -> np.ndarray:
    """An ellipsoid cap (not added: combine it with the field as the caller needs)."""
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = self.x - centre[0], self.y - centre[1]
    q = ((c * dx + s * dy) / ax) ** 2 + ((-s * dx + c * dy) / ay) ** 2
    return height * np.sqrt(np.clip(1 - q, 0, 1))

  def ridge(self, start, end, width, h0, h1, samples=8) -> None:
    for t in np.linspace(0, 1, samples):
      p = np.asarray(start) * (1 - t) + np.asarray(end) * t
      self.bump(p, width, width, (h0 * (1 - t) + h1 * t) / samples * 2.2)


def shade(field: HeightField, light: Light, size: int) -> tuple[np.ndarray, np.ndarray]:
  """(diffuse, specular) [size, size] float32 maps for the height field under `light`."""
  h = field.h
  gy, gx = np.gradient(h, SCALE)
  n = np.stack([-gx, -gy, np.ones_like(h)], -1)
  n /= np.linalg.norm(n, axis=-1, keepdims=True)
  l = light.vector.astype(np.float32)
  ndl = n @ l
  wrap = 0.35
  diffuse = np.clip((ndl + wrap) / (1 + wrap), 0, 1)
  # Shadows cast along the light: a point is shadowed where the field, marched toward the
  # light, rises above the light ray.
  shadow = np.zeros_like(h)
  step = np.array([l[0], l[1]]) / max(np.hypot(l[0], l[1]), 1e-6)
  rise = math.tan(light.elevation) * SCALE
  for k in range(1, 12):
    m = np.float32([[1, 0, -step[0] * k], [0, 1, -step[1] * k]])
    ahead = cv2.warpAffine(h, m, h.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    shadow = np.maximum(shadow, np.clip((ahead - h - rise * k) / (2.0 * SCALE), 0, 1))
  shadow = cv2.GaussianBlur(shadow, (0, 0), 1.0)
  ao = np.clip(1 - (canvas_lib.blur(h, 6) - h) / (18.0 * SCALE), 0.55, 1.0)
  diffuse = diffuse * (1 - 0.75 * shadow) * ao
  half = l + np.array([0, 0, 1.0], np.float32)
  half /= np.linalg.norm(half)
  spec = np.clip(n @ half, 0, 1) ** light.shininess * (1 - shadow)
  up = lambda a: cv2.resize(a.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
  return np.clip(up(diffuse), 0, 1), np.clip(up(spec), 0, 1)
