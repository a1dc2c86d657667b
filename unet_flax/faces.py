"""Finding faces in a photo and framing each as the models were trained: CelebA-HQ's framing.

Every model here (synthetic faces, CelebAMask-HQ or a folder of CelebA-HQ-like crops) sees
a square image with one face centred in it, about 56% of the width. A photo of any size and
with any number of faces is predicted face by face: `regions` finds each face with dlib's
HOG frontal-face detector (it ships inside the `dlib-bin` wheel; nothing is downloaded),
`crop` cuts the square the model expects around it (padding with the edge pixels
where it reaches beyond the photo), and `paste` puts the labels back at the photo's size.

FRAMING says where dlib's box lies inside a CelebA-HQ image: measured on 36 CelebA-HQ
portraits (1024 px, detected at 512 px with one upsampling), box width 0.564 (std 0.050) of
the image, box centre at x 0.489 (std 0.013) and y 0.592 (std 0.020).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from PIL import Image

from unet_flax.errors import UserError

# dlib's box in CelebA-HQ framing, as fractions of the square image's side.
FRAMING = {'box_width': 0.564, 'box_centre_x': 0.489, 'box_centre_y': 0.592}
# Photos are searched at this longest side (and once upsampled): faces down to about 40 pixels
# there, 6% of the photo's width, are found in about 0.4 s on one core.
DETECT_SIDE = 640
# dlib's detection score below which a box is dropped: the 36 CelebA-HQ faces scored 0.95 to 3.4,
# a patch of the astronaut's suit 0.12.
MIN_SCORE = 0.4


@dataclasses.dataclass(frozen=True)
class Box:
  """A region of a photo in pixels, right and bottom exclusive; it may reach beyond the photo."""
  x0: int
  y0: int
  x1: int
  y1: int


@functools.cache
def _detector():
  try:
    import dlib
  except ImportError as e:
    raise UserError('finding faces needs the dlib-bin package (pip install dlib-bin, as in '
                    'requirements.txt); or give --faces=none, or --crop=x0,y0,x1,y1.') from e
  return dlib.get_frontal_face_detector()


def detect(image: Image.Image) -> list[tuple[float, float, float, float]]:
  """Face boxes (left, top, right, bottom) in the photo's pixels, largest first."""
  scale = min(1.0, DETECT_SIDE / max(image.size))
  small = image.convert('RGB')
  if scale < 1:
    small = small.resize((round(image.width * scale), round(image.height * scale)),
                         Image.Resampling.BILINEAR)
  found, scores, _ = _detector().run(np.asarray(small), 1, 0.0)
  boxes = [(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale)
           for r, score in zip(found, scores) if score >= MIN_SCORE]
  return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))


def framing(face: tuple[float, float, float, float]) -> Box:
  """The square that shows a detected face as CelebA-HQ frames it."""
  left, top, right, bottom = face
  side = (right - left) / FRAMING['box_width']
  cx = (left + right) / 2 + (0.5 - FRAMING['box_centre_x']) * side
  cy = (top + bottom) / 2 + (0.5 - FRAMING['box_centre_y']) * side
  x0, y0, side = round(cx - side / 2), round(cy - side / 2), max(1, round(side))
  return Box(x0, y0, x0 + side, y0 + side)


def regions(image: Image.Image, faces: str) -> list[Box] | None:
  """The squares to predict in a photo: one per face found with faces='auto'; None for
  the whole photo (faces='none', or no face found)."""
  if faces == 'none':
    return None
  return [framing(f) for f in detect(image)] or None


def crop(image: Image.Image, box: Box) -> Image.Image:
  """The photo inside `box`; where the box reaches beyond the photo, its edge pixels repeat."""
  arr = np.asarray(image.convert('RGB'))
  h, w = arr.shape[:2]
  pad = [(max(0, -box.y0), max(0, box.y1 - h)), (max(0, -box.x0), max(0, box.x1 - w)), (0, 0)]
  if any(p for p in pad[:2] for p in p):
    arr = np.pad(arr, pad, mode='edge')
  y0, x0 = box.y0 + pad[0][0], box.x0 + pad[1][0]
  return Image.fromarray(arr[y0:y0 + box.y1 - box.y0, x0:x0 + box.x1 - box.x0])


def widened(box: Box, factor: float) -> Box:
  """`box` made `factor` times as wide and tall about its centre: the same face, seen smaller."""
  w, h = round((box.x1 - box.x0) * factor), round((box.y1 - box.y0) * factor)
  x0, y0 = round((box.x0 + box.x1 - w) / 2), round((box.y0 + box.y1 - h) / 2)
  return Box(x0, y0, x0 + w, y0 + h)


def paste(labels: list[np.ndarray], boxes: list[Box], size: tuple[int, int]) -> np.ndarray:
  """One label at the photo's (W, H) `size` from the labels predicted inside `boxes` (each at its
  box's size). Only a face's labelled (non-zero) pixels are pasted; where faces overlap, the
  larger face, pasted last, wins."""
  w, h = size
  full = np.zeros((h, w), np.uint8)
  for i in sorted(range(len(boxes)), key=lambda i: boxes[i].x1 - boxes[i].x0):
    box, label = boxes[i], labels[i]
    ys, xs = slice(max(box.y0, 0), min(box.y1, h)), slice(max(box.x0, 0), min(box.x1, w))
    part = label[ys.start - box.y0:ys.stop - box.y0, xs.start - box.x0:xs.stop - box.x0]
    region = full[ys, xs]
    region[part > 0] = part[part > 0]
  return full
