"""Procedural face photographs with exact part masks: the faces of the `synthetic` dataset.

`render_face(seed, index)` draws one face, a pure function of (seed, index): a posed head
with shaded, textured skin, eyes, brows, nose, lips and mouth, hair, clothes, jewellery,
eyeglasses on one face of each pair, hats and occluders, in front of a background, through a camera.
Its part masks are what the picture shows of each CelebAMask-HQ part.
"""

from unet_flax.data.render.face import GLASSES_FRACTION, render_face

__all__ = ['GLASSES_FRACTION', 'render_face']
