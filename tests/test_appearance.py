"""Appearance randomisation (unet_flax.appearance): each option does what it says, is off by
default, and draws the same numbers on any number of devices."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from configs import base
from unet_flax import appearance, augment
from unet_flax.data import synthetic


@pytest.fixture(scope='module')
def faces():
  images = [synthetic.render_face(0, i, 64)[0] for i in range(8)]
  return np.stack(images).astype(np.float32) / 255


def _cfg(**options):
  cfg = base.get_config().augment
  cfg.update(dict(hflip=False, scale_range=(1.0, 1.0), rotation_degrees=0.0, brightness=0.0,
                  contrast=0.0, saturation=0.0), **options)
  return cfg


def _run(cfg, images, labels=None, key=0):
  labels = np.zeros(images.shape[:3], np.int32) if labels is None else labels
  out = jax.jit(lambda k, x, y: augment.augment(k, x, y, cfg, jnp.array([0, 1])))(
      jax.random.key(key), images, labels)
  return np.asarray(out[0]), np.asarray(out[1])


def test_every_option_is_off_by_default_and_each_changes_the_picture(faces):
  assert not appearance.enabled(base.get_config().augment)
  plain, _ = _run(_cfg(), faces)
  np.testing.assert_allclose(plain, faces, atol=1e-6)  # the geometric path alone, at identity
  for option in appearance.OPTIONS:
    changed, _ = _run(_cfg(**{option: 1.0}), faces)
    assert changed.shape == faces.shape and changed.min() >= 0 and changed.max() <= 1, option
    moved = np.abs(changed - faces).mean(axis=(1, 2, 3))
    assert (moved > 1e-3).mean() >= 0.75, (option, moved)


def test_cutout_hides_the_label_under_its_boxes(faces):
  labels = np.ones(faces.shape[:3], np.int32)
  images, out = _run(_cfg(cutout=1.0), faces, labels)
  hidden = out == 0
  assert hidden.any(axis=(1, 2)).all()
  assert (np.abs(images - faces).max(-1)[hidden] > 0).mean() > 0.9  # the picture changed there
  np.testing.assert_allclose(images[~hidden], faces[~hidden], atol=1e-6)


def test_on_device_jpeg_matches_a_real_jpeg_encoder(faces):
  image = faces[0]
  for quality in (30, 80):
    ours = np.asarray(appearance.jpeg_at(jnp.asarray(image), quality))
    buf = io.BytesIO()
    Image.fromarray((image * 255).round().astype(np.uint8)).save(buf, 'JPEG', quality=quality, subsampling=0)
    real = np.asarray(Image.open(buf), np.float32) / 255
    error = np.abs(image - real).mean()
    assert np.abs(ours - real).mean() < 0.25 * error, quality  # far closer to JPEG than to the input


def test_appearance_draws_do_not_depend_on_the_device_count(faces):
  cfg = _cfg(**{o: 1.0 for o in appearance.OPTIONS})
  labels = np.ones(faces.shape[:3], np.int32)
  one = _run(cfg, faces, labels, key=3)
  four = jax.pmap(lambda k, x, y: augment.augment(k, x, y, cfg, jnp.array([0, 1]), 'batch'),
                  axis_name='batch', in_axes=(None, 0, 0))(
      jax.random.key(3), faces.reshape(4, 2, *faces.shape[1:]), labels.reshape(4, 2, *labels.shape[1:]))
  np.testing.assert_array_equal(one[1], np.asarray(four[1]).reshape(one[1].shape))
  np.testing.assert_allclose(one[0], np.asarray(four[0]).reshape(one[0].shape), atol=1e-6)


def test_bad_appearance_settings_are_named():
  from unet_flax import configuration, errors
  cfg = base.get_config()
  cfg.augment.randconv = 1.5
  cfg.augment.randconv_kernels = (1, 4)
  with pytest.raises(errors.ConfigError, match=r'augment\.randconv=1\.5.*augment\.randconv_kernels'):
    configuration.validate(cfg, devices=1)
