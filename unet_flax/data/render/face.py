"""One face, drawn back to front; `render_face(seed, index)` is the renderer's entry point."""

from __future__ import annotations

import zlib

import numpy as np

from unet_flax.data.render import camera, features, photos, scene, shading
from unet_flax.data.render import canvas as canvas_lib
from unet_flax.data.render import glasses as glasses_lib
from unet_flax.data.render import hair as hair_lib
from unet_flax.data.render import skin as skin_lib
from unet_flax.data.render.canvas import Canvas
from unet_flax.data.render.geometry import Head, Pose, Projector

# Faces come in pairs: faces 2k and 2k + 1 are the same person in the same photo, and only
# 2k + 1 wears glasses. Whatever differs between the two is the glasses, so a model cannot
# take anything else about the eyes (lashes, make-up, shadows) for them.
GLASSES_FRACTION = 0.5


class Draws:
  """Independent random streams per aspect of a face, all from (seed, index): changing how one
  aspect is drawn leaves the others' draws as they were."""

  def __init__(self, seed: int, index: int):
    self.seed, self.index = seed, index

  def __getitem__(self, name: str) -> np.random.Generator:
    return np.random.default_rng([self.seed, self.index, zlib.crc32(name.encode())])


def render_face(seed: int, index: int, size: int = 512) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """(uint8 [size, size, 3] RGB image, part name -> bool [size, size] mask) of face `index`."""
  d = Draws(seed, index // 2)
  who = d['who']
  male = who.random() < 0.45
  wears_glasses = index % 2 == 1
  make_up = 0.0 if male and who.random() < 0.95 else float(who.beta(1.2, 2.0))
  head = Head.sample(d['head'])
  pose = Pose.sample(d['pose'], size)
  proj = Projector(head, pose)
  skin = skin_lib.Skin.sample(d['skin'], male)
  hair = hair_lib.Hair.sample(d['hair'], male)
  mouth = features.Mouth.sample(d['mouth'], skin.tone, lipstick=make_up > 0.35 and d['mouth'].random() < 0.7)
  eyes = features.Eyes.sample(d['eyes'], make_up, smiling=mouth.teeth)
  brows = features.Brows.sample(d['brows'], hair.colour, heavy=d['brows'].random() < 0.25)
  nose_width = float(d['nose'].uniform(0.5, 0.7))
  extras = d['extras']
  has_hat, has_earrings, has_necklace = extras.random() < 0.08, extras.random() < 0.2, extras.random() < 0.1
  has_occluder = extras.random() < 0.1
  specs = glasses_lib.Glasses.sample(d['glasses']) if wears_glasses else None

  c = Canvas(size)
  hair_polys = hair_lib.regions(d['hair shape'], head, hair)
  texture = hair_lib.strand_texture(d['strands'], c, proj, hair)
  scene.clothes(c, proj, d['clothes'], head)
  hair_lib.draw(c, proj, d['hair back'], hair, hair_polys['back'], texture)
  neck = skin_lib.draw_neck(c, proj, d['neck'], head, skin)
  if has_necklace:
    scene.necklace(c, proj, d['necklace'], head)
  skin_lib.draw_ears(c, proj, d['ears'], head, skin)
  skin_lib.draw_face(c, proj, d['face'], head, skin, hair.colour, mouth, hair.style == 'bald')
  features.draw_nose(c, proj, d['nose'], nose_width, skin.tone)
  features.draw_eyes(c, proj, d['eyes'], eyes, skin.tone)
  features.draw_brows(c, proj, d['brows'], brows, skin.tone)
  features.draw_mouth(c, proj, d['mouth'], mouth)
  if specs is not None:
    glasses_lib.draw_temples(c, proj, d['temples'], specs, head)
  if has_earrings:
    scene.earrings(c, proj, d['earrings'], head)
  hair_lib.draw(c, proj, d['hair front'], hair, hair_polys['front'], texture)
  hair_lib.draw_loose(c, proj, d['loose'], hair)
  if has_hat:
    scene.hat(c, proj, d['hat'], head)
  if has_occluder:
    scene.occluder(c, proj, d['occluder'], head, skin.tone)

  # Light the person, put them in front of the background.
  light = shading.Light.sample(d['light'])
  field = shading.HeightField(size)
  skin_lib.relief(field, proj, head, mouth, nose_width, neck, 1.0 + hair.volume * 0.3)
  diffuse, spec = shading.shade(field, light, size)
  light_map = np.maximum(light.ambient + light.strength * diffuse, 0.9 * c.bright)
  lit = c.colour * light_map[..., None] * light.colour
  lit += (spec * light.specular * skin.oil)[..., None] * c.alpha[..., None] * light.colour
  lit += c.glints[..., None] * c.alpha[..., None]
  bg = scene.background(d['background'], size)
  img = bg * (1 - c.alpha[..., None]) + lit
  texture = d['photo detail']
  if texture.random() < 0.7:  # fine photographic detail everywhere, so that it is never a cue for glasses
    patch = photos.patch(texture, size)
    detail = (patch - canvas_lib.blur(patch, 1.5)).mean(-1) * texture.uniform(0.5, 1.5)
    img = img + (detail * c.alpha)[..., None]
  if d['cast'].random() < 0.15:
    img = img * scene.cast(d['cast'], size)[..., None]
  if specs is not None:
    glasses_lib.draw(img, c.alpha, proj, d['glasses look'], specs, head, light, c)
  img = camera.develop(np.clip(img, 0, 1), d['camera'])
  return (img * 255 + 0.5).astype(np.uint8), c.part_masks()
