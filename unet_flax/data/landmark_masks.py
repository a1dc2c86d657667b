"""Eye masks rasterised from MediaPipe face-mesh landmarks (468 points, or 478 with irises).

`eye_masks` fills the closed eyelid contour of each eye. Left and right are the subject's
own, as CelebAMask-HQ names them: MediaPipe's "left eye" ring (points 263 ... 362) is the
subject's left eye, which a frontal, unmirrored photo shows on the image's right. With
478 points the iris rings (474-477 left, 469-472 right) give iris masks too, clipped to
the visible eye. Only numpy and Pillow: running the landmarker itself is
`experiments/landmark_masks.py`'s job.
"""

from __future__ import annotations

import numpy as np

# Closed eyelid contours: the lower lid from the outer corner to the inner, then the upper
# lid back (MediaPipe's FACEMESH_LEFT_EYE / FACEMESH_RIGHT_EYE connections, in ring order).
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_IRIS = (474, 475, 476, 477)
RIGHT_IRIS = (469, 470, 471, 472)
MESH_POINTS = 468
MESH_POINTS_WITH_IRISES = 478


def _fill(points: np.ndarray, width: int, height: int) -> np.ndarray:
  """0/1 uint8 (height, width): pixels whose centre (x + 0.5, y + 0.5) lies inside the polygon
  `points` (continuous x, y), by the even-odd rule over the polygon's bounding box."""
  mask = np.zeros((height, width), np.uint8)
  x0, y0 = np.maximum(np.floor(points.min(axis=0)).astype(int), 0)
  x1, y1 = np.minimum(np.ceil(points.max(axis=0)).astype(int), [width, height])
  if x1 <= x0 or y1 <= y0:
    return mask
  py, px = np.mgrid[y0:y1, x0:x1] + 0.5
  inside = np.zeros(px.shape, bool)
  for (ax, ay), (bx, by) in zip(points, np.roll(points, -1, axis=0)):
    crosses = (ay > py) != (by > py)
    with np.errstate(divide='ignore', invalid='ignore'):
      x_at = ax + (py - ay) * (bx - ax) / (by - ay)
    inside ^= crosses & (px < x_at)
  mask[y0:y1, x0:x1] = inside
  return mask


def _ellipse(points: np.ndarray, width: int, height: int) -> np.ndarray:
  """The iris: the ellipse through its four ring points (right, top, left, bottom)."""
  centre = points.mean(axis=0)
  rx, ry = np.abs(points - centre).max(axis=0)
  py, px = np.mgrid[0:height, 0:width] + 0.5
  return ((((px - centre[0]) / max(rx, 1e-6)) ** 2 + ((py - centre[1]) / max(ry, 1e-6)) ** 2) <= 1).astype(np.uint8)


def eye_masks(landmarks, width: int, height: int, normalized: bool = True) -> dict[str, np.ndarray]:
  """{'l_eye', 'r_eye'[, 'l_iris', 'r_iris']}: 0/1 uint8 (height, width) masks.

  landmarks: [468 or 478, 2 or 3] points (x, y[, z]); `normalized` means x and y are
  fractions of the width and height, as MediaPipe returns them, else pixels.
  """
  points = np.asarray(landmarks, np.float64)
  if points.ndim != 2 or points.shape[0] not in (MESH_POINTS, MESH_POINTS_WITH_IRISES) or points.shape[1] < 2:
    raise ValueError(f'expected [{MESH_POINTS} or {MESH_POINTS_WITH_IRISES}, 2 or 3] face-mesh landmarks, '
                     f'got shape {points.shape}')
  xy = points[:, :2] * (np.array([width, height]) if normalized else 1.0)
  masks = {'l_eye': _fill(xy[list(LEFT_EYE)], width, height),
           'r_eye': _fill(xy[list(RIGHT_EYE)], width, height)}
  if points.shape[0] == MESH_POINTS_WITH_IRISES:
    masks['l_iris'] = _ellipse(xy[list(LEFT_IRIS)], width, height) & masks['l_eye']
    masks['r_iris'] = _ellipse(xy[list(RIGHT_IRIS)], width, height) & masks['r_eye']
  return masks
