"""Where a face's parts lie: shapes in face units, lifted onto a 3D-ish head and posed.

Face units: the origin is midway between the eyes and one unit is half the distance between
the eye centres; x points to the image's right and y down. The subject's left eye (`l_eye`
in CelebAMask-HQ) is on the image's right, at (+1, 0). Every point gets a depth z from an
ellipsoid head plus the relief of its feature, so turning the head (yaw, pitch) moves the
nose more than the eyes and the eyes more than the ears, as in a photo. The posed face is
framed as CelebA-HQ frames faces: the eyes' midpoint at (0.5, 0.48) of the image and the
eyes 0.247 of the image width apart (measured on CelebA-HQ label maps), then jittered.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

EYE_MID = (0.5, 0.48)  # the eyes' midpoint, as fractions of the image
HALF_EYE_DISTANCE = 0.1235  # one face unit, as a fraction of the image width


def ellipse(cx, cy, rx, ry, n=32, start=0.0, end=2 * math.pi) -> np.ndarray:
  closed = abs(end - start - 2 * math.pi) < 1e-6
  t = np.linspace(start, end, n, endpoint=not closed)
  return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def spline(points, n: int = 8, closed: bool = False) -> np.ndarray:
  """A Catmull-Rom curve through `points` with `n` samples per segment."""
  p = np.asarray(points, np.float64)
  if closed:
    p = np.concatenate([p[-1:], p, p[:2]])
  else:
    p = np.concatenate([p[:1], p, p[-1:]])
  t = np.linspace(0, 1, n, endpoint=False)[:, None]
  out = []
  for i in range(1, len(p) - 2):
    p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
    out.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                      + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
  if not closed:
    out.append(p[-2:-1])
  return np.concatenate(out)


def mirror(points) -> np.ndarray:
  return np.asarray(points) * [-1, 1]


@dataclasses.dataclass
class Head:
  """The head's shape (face units): half-width at the cheekbones, jaw, chin and forehead."""
  width: float
  jaw: float
  chin_y: float
  chin_width: float
  top_y: float
  socket: float  # how deep the eyes are set: deep sockets ring the eyes with shadow
  brow_ridge: float

  @classmethod
  def sample(cls, rng: np.random.Generator) -> 'Head':
    return cls(width=rng.uniform(2.0, 2.4), jaw=rng.uniform(0.68, 0.9), chin_y=rng.uniform(3.1, 3.6),
               chin_width=rng.uniform(0.35, 0.75), top_y=-rng.uniform(2.7, 3.1),
               socket=rng.uniform(0.15, 0.7), brow_ridge=rng.uniform(0.1, 0.4))

  def outline(self) -> np.ndarray:
    """The face's contour (hairline to chin), a closed polygon."""
    w, j = self.width, self.width * self.jaw
    right = [(0, self.top_y), (0.55 * w, self.top_y + 0.15), (0.88 * w, self.top_y + 0.8),
             (w, -0.9), (w * 1.01, 0.3), (0.97 * w, 1.2), (j, 2.3),
             ((j + self.chin_width) / 2 + 0.05, 0.5 * (2.3 + self.chin_y) + 0.25),
             (self.chin_width, self.chin_y - 0.08)]
    left = mirror(right[1:])[::-1]
    return spline(np.concatenate([right, [(0, self.chin_y)], left]), 6, closed=True)

  def depth(self, x, y) -> np.ndarray:
    """z of the head's surface (an ellipsoid) at face-unit (x, y); 0 at its silhouette."""
    a, b, c = self.width * 1.02, 3.6, self.width * 1.1
    return c * np.sqrt(np.clip(1 - (np.asarray(x) / a) ** 2 - ((np.asarray(y) - 0.5) / b) ** 2, 0, 1))


@dataclasses.dataclass
class Pose:
  """Head turn (yaw, pitch; radians) and the image transform: pixels per face unit, roll,
  and where the eyes' midpoint lands."""
  yaw: float
  pitch: float
  roll: float
  unit: float
  centre: np.ndarray

  @classmethod
  def sample(cls, rng: np.random.Generator, size: int) -> 'Pose':
    unit = HALF_EYE_DISTANCE * size * rng.uniform(0.9, 1.1)
    centre = np.array(EYE_MID) * size + rng.normal(0, 0.012 * size, 2)
    return cls(yaw=float(np.clip(rng.normal(0, 0.17), -0.45, 0.45)),
               pitch=float(np.clip(rng.normal(0, 0.08), -0.2, 0.2)),
               roll=float(np.clip(rng.normal(0, 0.09), -0.3, 0.3)), unit=unit, centre=centre)


class Projector:
  """Face units with depth -> image pixels under a `Pose`, keeping the eyes' midpoint fixed."""

  def __init__(self, head: Head, pose: Pose):
    self.head, self.pose = head, pose
    cy, sy = math.cos(pose.yaw), math.sin(pose.yaw)
    cp, sp = math.cos(pose.pitch), math.sin(pose.pitch)
    self._rot = np.array([[cy, 0, sy], [sy * sp, cp, -cy * sp]])  # yaw, then pitch: rows give x, y
    self._origin = np.zeros(2)
    eye_z = float(head.depth(1.0, 0.0)) - 0.35
    self._origin = self._turn(np.array([[0.0, 0.0]]), np.array([eye_z]))[0]
    c, s = math.cos(pose.roll), math.sin(pose.roll)
    self._image = np.array([[c, -s], [s, c]]) * pose.unit

  def _turn(self, xy, z):
    return np.concatenate([xy, z[:, None]], 1) @ self._rot.T - self._origin

  def __call__(self, xy, relief: float | np.ndarray = 0.0) -> np.ndarray:
    """Pixels of face-unit points lying `relief` units in front of the head's surface."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    z = self.head.depth(xy[:, 0], xy[:, 1]) + relief
    return self._turn(xy, z) @ self._image.T + self.pose.centre

  def flat(self, xy, z) -> np.ndarray:
    """Pixels of points at given depths z (not on the head's surface), e.g. ears or glasses."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    return self._turn(xy, np.broadcast_to(np.asarray(z, np.float64), len(xy))) @ self._image.T + self.pose.centre

  def silhouette(self, xy) -> np.ndarray:
    """Pixels of the head's outline: turning the head widens it toward the side turned to."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    a = self.head.width
    c = a * 1.1
    widen = math.sqrt(math.cos(self.pose.yaw) ** 2 + (c / a * math.sin(self.pose.yaw)) ** 2)
    turned = np.stack([xy[:, 0] * widen, xy[:, 1] * math.cos(self.pose.pitch)], 1)
    return (turned - self._origin) @ self._image.T + self.pose.centre

  def direction(self) -> np.ndarray:
    """Image-plane unit vectors of the face's x and y axes (for strokes drawn in face units)."""
    return self._image / self.pose.unit
