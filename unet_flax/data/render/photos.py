"""Public-domain photographs that ship inside the scikit-image wheel, used as textures.

Backgrounds, clothes and the scenes reflected in lenses get real photographic texture from
these. Each is public domain or CC0 by its scikit-image documentation (skimage.data):

  brick, grass, gravel       CC0 (cc0textures.com)
  coffee, chelsea            CC0 (Rachel Michetti; Stefan van der Walt)
  camera                     CC0 (Lav Varshney)
  rocket                     public domain (SpaceX)
  hubble_deep_field          public domain (NASA)
  coins                      no known copyright restrictions (Brooklyn Museum)

The astronaut portrait is left out on purpose: it is a real face, and it is the public
photo the README shows predictions on.
"""

from __future__ import annotations

import functools
import os

import cv2
import numpy as np

FILES = ('brick.png', 'grass.png', 'gravel.png', 'coffee.png', 'chelsea.png',
         'camera.png', 'rocket.jpg', 'hubble_deep_field.jpg', 'coins.png')


@functools.cache
def library() -> tuple[np.ndarray, ...]:
  """The photographs as float32 RGB in [0, 1] (grey ones repeated over three channels)."""
  import skimage
  folder = os.path.join(os.path.dirname(skimage.__file__), 'data')
  out = []
  for name in FILES:
    img = cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR)
    if img is None:
      raise FileNotFoundError(f'{os.path.join(folder, name)} is missing from the scikit-image wheel')
    out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 255)
  return tuple(out)


def patch(rng: np.random.Generator, size: int, zoom: tuple[float, float] = (0.5, 2.0)) -> np.ndarray:
  """A [size, size, 3] piece of a random photograph: random crop, zoom, quarter turn, mirror and
  colour shift."""
  photo = library()[rng.integers(len(FILES))]
  h, w = photo.shape[:2]
  crop = int(min(h, w, size / rng.uniform(*zoom)))
  y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
  out = cv2.resize(photo[y:y + crop, x:x + crop], (size, size), interpolation=cv2.INTER_LINEAR)
  out = np.rot90(out, rng.integers(4))
  if rng.random() < 0.5:
    out = out[:, ::-1]
  grey = out.mean(-1, keepdims=True)
  out = grey + (out - grey) * rng.uniform(0.3, 1.4)  # saturation
  out = out * rng.uniform(0.7, 1.3, 3) + rng.uniform(-0.1, 0.1)  # colour cast, brightness
  return np.ascontiguousarray(np.clip(out, 0, 1), np.float32)
