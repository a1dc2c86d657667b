"""TFDS builder for `face_segmentation`: face images with one 0/1 mask channel per face part.

Configs (S = 256, or 512 for the `_512` variants):
  synthetic       procedurally drawn faces, no download (the default)
  celebamask_hq   the unzipped CelebAMask-HQ download as manual dir; 18 parts
  folder          train/ val/ test/ each with images/ and masks/; 1 part, eye_g
  folder_eyes     the same layout with eye masks (experiments.landmark_masks writes it); 1 part, eyes

Build with `tfds build unet_flax/data/face_segmentation --config=NAME --manual_dir=DIR` (needs
TensorFlow, and the package installed: `pip install -e .`) or, without TensorFlow, through
`unet_flax.data.dataset.prepare`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image
from tensorflow_datasets.core.utils.lazy_imports_utils import tensorflow as tf

from unet_flax.data import bitplanes, celebamask_hq, checks, folder, synthetic
from unet_flax.data import parts as parts_lib


class BitPackedMasks(tfds.features.Tensor):
  """uint8 (S, S, P) 0/1 masks, serialized as zlib-compressed bit-planes."""

  def __init__(self, *, shape, doc=None):
    super().__init__(shape=shape, dtype=np.uint8, encoding='zlib', doc=doc)

  def encode_example(self, example_data):
    parts = np.asarray(example_data)
    if parts.shape != tuple(self.shape):
      raise ValueError(f'parts shape {parts.shape} != {tuple(self.shape)}')
    if parts.dtype != np.uint8 or parts.max(initial=0) > 1:
      raise ValueError('parts must be uint8 with values 0/1')
    return bitplanes.pack(parts)

  def decode_example_np(self, example_data):
    size, _, num_parts = self.shape
    if isinstance(example_data, np.ndarray):  # a 0-d object array from tf.numpy_function
      example_data = example_data.item()
    return bitplanes.unpack(bitplanes.planes(bytes(example_data), size, num_parts), num_parts)

  def decode_example(self, tfexample_data):
    """TensorFlow path (`as_dataset`): the NumPy decoder inside the graph."""
    parts = tf.numpy_function(lambda b: self.decode_example_np(b), [tfexample_data], tf.uint8,
                              stateful=False)
    parts.set_shape(self.shape)
    return parts


SOURCE_FILE = 'unet_flax_source.json'  # beside dataset_info.json: what the build was made from
SYNTHETIC_SIZES = {'train': 2000, 'validation': 250, 'test': 250}


@dataclasses.dataclass
class FaceSegmentationConfig(tfds.core.BuilderConfig):
  source: str = 'synthetic'  # synthetic | celebamask_hq | folder
  image_size: int = 256
  synthetic_seed: int = 0
  synthetic_sizes: dict = dataclasses.field(default_factory=lambda: dict(SYNTHETIC_SIZES))

  @property
  def part_names(self) -> tuple[str, ...]:
    return parts_lib.dataset_parts(self.name)


# The synthetic configs have their own version: a new renderer is a new dataset, while the
# CelebAMask-HQ and folder builds stay valid.
SYNTHETIC_VERSION = tfds.core.Version('2.3.0')


def _config(name, source, size, description):
  return FaceSegmentationConfig(name=name, source=source, image_size=size, description=description,
                                version=SYNTHETIC_VERSION if source == 'synthetic' else None)


class Builder(tfds.core.GeneratorBasedBuilder):
  """Face-part segmentation: image, overlapping part masks, id."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release: synthetic, CelebAMask-HQ and folder sources.',
                   '2.0.0': 'synthetic only: faces rendered as photographs (unet_flax.data.render), '
                            'left/right parts on the subject\'s side as in CelebAMask-HQ.',
                   '2.1.0': 'synthetic only: bare eyes shaded as real ones measure (darker sclera, lid '
                            'margins, upper-lid shadow); lenses refract less.',
                   '2.2.0': 'synthetic only: lines (frames, temples, lashes, strands, creases) are drawn '
                            'opaque across their width instead of as a faint glow, so frames, bridges '
                            'and temples are in the eye_g mask.',
                   '2.3.0': 'synthetic only: glasses sized as frames are sold (lenses 42-58 mm wide, '
                            'bridges 14-22 mm), not lenses that hug the eyes.'}
  BUILDER_CONFIGS = [
      _config('synthetic', 'synthetic', 256, 'Procedurally drawn faces, 2000/250/250, 256x256.'),
      _config('synthetic_512', 'synthetic', 512, 'Procedurally drawn faces at 512x512.'),
      _config('celebamask_hq', 'celebamask_hq', 256, 'CelebAMask-HQ, 18 parts, 256x256.'),
      _config('celebamask_hq_512', 'celebamask_hq', 512, 'CelebAMask-HQ, 18 parts, 512x512.'),
      _config('folder', 'folder', 256, 'Eyeglasses folder layout (train/val/test), 256x256.'),
      _config('folder_512', 'folder', 512, 'Eyeglasses folder layout at 512x512.'),
      _config('folder_eyes', 'folder', 256, 'Eyes folder layout (e.g. from experiments.landmark_masks), '
              '256x256.'),
      _config('folder_eyes_512', 'folder', 512, 'Eyes folder layout at 512x512.'),
  ]
  DEFAULT_CONFIG_NAME = 'synthetic'
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  celebamask_hq: unzip CelebAMask-HQ.zip and pass the folder holding CelebA-HQ-img/,
    CelebAMask-HQ-mask-anno/ and CelebA-HQ-to-CelebA-mapping.txt.
  folder: pass the folder holding train/, val/ and test/, each with images/ and masks/.
  synthetic: needs no manual dir.
  """

  def __init__(self, *, file_format=None, **kwargs):
    # array_record gives random access, which Grain's data source needs.
    super().__init__(file_format=file_format or 'array_record', **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    size, names = self.builder_config.image_size, self.builder_config.part_names
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=(size, size, 3), encoding_format='jpeg'),
            'parts': BitPackedMasks(shape=(size, size, len(names))),
            'id': tfds.features.Text(),
        }),
        metadata=tfds.core.MetadataDict(part_names=list(names)),
        homepage='https://github.com/switchablenorms/CelebAMask-HQ',
    )

  def _download_and_prepare(self, dl_manager, download_config):
    super()._download_and_prepare(dl_manager=dl_manager, download_config=download_config)
    if self.builder_config.source != 'synthetic':
      # Written into TFDS's unfinished folder (self.data_dir while building), which is renamed
      # into place whole: no finished build is ever seen without its record.
      manual_dir = os.path.abspath(str(dl_manager.manual_dir))
      with open(os.path.join(self.data_dir, SOURCE_FILE), 'w') as f:
        json.dump({'manual_dir': manual_dir, 'fingerprint': checks.fingerprint(manual_dir)}, f,
                  indent=2)

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    if cfg.source == 'synthetic':
      # The drawn tree is named by everything that shapes it, so no other renderer's, seed's or
      # size's tree is ever taken for it.
      root = os.path.join(str(dl_manager.download_dir),
                          f'synthetic_v{self.version}_seed{cfg.synthetic_seed}_' + '_'.join(
                              str(cfg.synthetic_sizes[s]) for s in celebamask_hq.SPLITS) + f'_{cfg.image_size}px')
      done = os.path.join(root, '.complete')
      if not os.path.exists(done):
        synthetic.write_tree(root, seed=cfg.synthetic_seed, sizes=cfg.synthetic_sizes, size=cfg.image_size)
        open(done, 'w').close()
    else:
      root = str(dl_manager.manual_dir)
    # Every input is checked before the first example is written.
    if cfg.source == 'folder':
      pairs = {s: folder.list_pairs(root, s) for s in folder.SPLIT_DIRS}
      checks.preflight([(stem, image, [mask]) for s in pairs for stem, image, mask in pairs[s]],
                       what=f'folder dataset in {root}', image_size=cfg.image_size, threads=_threads())
      return {s: self._generate_examples(folder.iter_examples(pairs[s], s, cfg.image_size, _threads()))
              for s in folder.SPLIT_DIRS}
    splits = celebamask_hq.read_split_indices(root)
    if cfg.source != 'synthetic':  # drawn by us just now
      checks.preflight([celebamask_hq.example_files(root, i) for s in splits for i in splits[s]],
                       what=f'CelebAMask-HQ in {root}', image_size=cfg.image_size, mask_shape='aspect',
                       threads=_threads())
    return {s: self._generate_examples(
        celebamask_hq.iter_examples(root, splits[s], cfg.image_size, _threads()))
            for s in celebamask_hq.SPLITS if splits[s]}

  def _generate_examples(self, examples):
    for key, ex in examples:
      buf = io.BytesIO()
      Image.fromarray(ex['image']).save(buf, format='JPEG', quality=95)
      yield key, {'image': buf.getvalue(), 'parts': ex['parts'], 'id': ex['id']}


def _threads() -> int:
  return 2 * (os.cpu_count() or 1)
