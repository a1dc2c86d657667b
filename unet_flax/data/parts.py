"""Face-part names, left/right pairs and the training targets built from part masks.

The dataset stores one 0/1 channel per part (parts overlap, as in CelebAMask-HQ).
The training target is chosen at training time from these channels:

* a binary target: the union of named parts (eyeglasses = ``eye_g``, eyes =
  ``l_eye + r_eye``, lips = ``u_lip + l_lip`` ...);
* with `config.auxiliary_target`, a binary target's training label carries a second bit:
  label = target + 2 * auxiliary (`TargetWithAuxiliary`, taken apart by `split_auxiliary`);
* a face-parsing label map: class 0 is background and class ``i + 1`` is part
  ``i`` of ``CELEBAMASK_HQ_PARTS``; parts are painted one after another in a
  painting order, later parts overwriting earlier ones. The default order is
  CelebAMask-HQ's own (the list order), as its reference label maps are made.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unet_flax.data import bitplanes
from unet_flax.errors import UserError

CELEBAMASK_HQ_PARTS = (
    'skin', 'nose', 'eye_g', 'l_eye', 'r_eye', 'l_brow', 'r_brow', 'l_ear',
    'r_ear', 'mouth', 'u_lip', 'l_lip', 'hair', 'hat', 'ear_r', 'neck_l',
    'neck', 'cloth',
)
# The folder layout holds one mask per image; which part it shows depends on the dataset
# config (the `_512` variants alike). Every other config has CelebAMask-HQ's 18 parts.
FOLDER_PARTS = {'folder': ('eye_g',), 'folder_eyes': ('eyes',)}


def dataset_parts(dataset_config: str) -> tuple[str, ...]:
  """Part names, in channel order, of a `face_segmentation` builder config."""
  return FOLDER_PARTS.get(dataset_config.removesuffix('_512'), CELEBAMASK_HQ_PARTS)
LEFT_RIGHT_PAIRS = (('l_eye', 'r_eye'), ('l_brow', 'r_brow'), ('l_ear', 'r_ear'))

# Named binary targets; a config may also give any comma-separated part list.
BINARY_TARGETS = {
    'eyeglasses': ('eye_g',),
    'eyes': ('l_eye', 'r_eye'),
    'lips': ('u_lip', 'l_lip'),
    'eyes_lips': ('l_eye', 'r_eye', 'u_lip', 'l_lip'),
}
FACE_PARSING = 'face_parsing'


class TargetError(UserError):
  """A target setting names something the dataset does not have."""


def mirror_permutation(part_names: Sequence[str]) -> np.ndarray:
  """Channel permutation that swaps left/right parts (applied with a horizontal flip)."""
  index = {name: i for i, name in enumerate(part_names)}
  perm = np.arange(len(part_names))
  for left, right in LEFT_RIGHT_PAIRS:
    if left in index and right in index:
      perm[index[left]], perm[index[right]] = index[right], index[left]
  return perm


def resolve_binary_parts(target: str, part_names: Sequence[str]) -> tuple[str, ...]:
  """Names of the parts whose union is the binary `target` (a part of the dataset names itself:
  the folder_eyes dataset's one part is `eyes`)."""
  if target in part_names:
    return (target,)
  names = BINARY_TARGETS.get(target) or tuple(
      p.strip() for p in target.replace('+', ',').split(',') if p.strip())
  unknown = [n for n in names if n not in part_names]
  if unknown:
    raise TargetError(
        f'config.target={target!r}: parts {unknown} are not in this dataset '
        f'(it has {list(part_names)}). Use one of {sorted(BINARY_TARGETS)}, '
        f'{FACE_PARSING!r}, or a comma-separated list of part names.')
  return names


def flip_safe(target: str, part_names: Sequence[str]) -> bool:
  """Whether a horizontal flip keeps `target`'s labels right. Face parsing swaps its left/right
  classes with the image; a binary target has one class, so it must hold both sides of every
  left/right pair it holds one side of."""
  if target == FACE_PARSING:
    return True
  part_names = tuple(part_names)
  channels = [part_names.index(n) for n in resolve_binary_parts(target, part_names)]
  return sorted(mirror_permutation(part_names)[channels].tolist()) == sorted(channels)


def num_classes(target: str) -> int:
  """Model output channels for a target: 1 for binary, 19 for face parsing."""
  return len(CELEBAMASK_HQ_PARTS) + 1 if target == FACE_PARSING else 1


def class_names(target: str, part_names: Sequence[str]) -> tuple[str, ...]:
  if target == FACE_PARSING:
    return ('background',) + tuple(part_names)
  return (target,)


class TargetMaker:
  """Turns a (H, W, P) 0/1 parts array into the uint8 (H, W) training label.

  For a binary target the label is 0/1; for face parsing it is a class id.
  `mirror_label_map` says how label values change under a horizontal flip:
  identity for symmetric binary targets, the l/r class swap for face parsing.
  """

  @classmethod
  def from_config(cls, config, part_names: Sequence[str]) -> TargetMaker:
    """The target an experiment config trains on, for a dataset with these parts."""
    return cls(config.target, part_names, config.painting_order)

  def __init__(self, target: str, part_names: Sequence[str],
               painting_order: Sequence[str] | None = None):
    self.target = target
    self.part_names = tuple(part_names)
    perm = mirror_permutation(self.part_names)
    if target == FACE_PARSING:
      if self.part_names != CELEBAMASK_HQ_PARTS:
        raise TargetError(
            f'config.target={FACE_PARSING!r} needs the 18 CelebAMask-HQ parts; '
            f'this dataset has {list(self.part_names)}.')
      order = tuple(painting_order or CELEBAMASK_HQ_PARTS)
      if sorted(order) != sorted(CELEBAMASK_HQ_PARTS):
        raise TargetError(
            f'config.painting_order must list each of {list(CELEBAMASK_HQ_PARTS)} '
            f'exactly once; got {list(order)}.')
      self._paint = [(self.part_names.index(p), self.part_names.index(p) + 1)
                     for p in order]
      self._rank_luts, self._class_of_rank = _paint_tables(self._paint, len(self.part_names))
      self.mirror_label_map = np.concatenate([[0], perm + 1]).astype(np.int32)
    else:
      names = resolve_binary_parts(target, self.part_names)
      self._channels = np.array([self.part_names.index(n) for n in names])
      self._byte_masks: dict[int, int] = {}
      for channel in self._channels:
        byte, bit = bitplanes.bit_of(int(channel))
        self._byte_masks[byte] = self._byte_masks.get(byte, 0) | bit
      self.mirror_label_map = np.array([0, 1], np.int32)
    self.flip_safe = flip_safe(target, self.part_names)

  @property
  def needed_planes(self) -> frozenset[int] | None:
    """Byte-planes (see `bitplanes`) this target reads; None = all."""
    return None if self.target == FACE_PARSING else frozenset(self._byte_masks)

  @property
  def num_classes(self) -> int:
    return num_classes(self.target)

  def from_planes(self, planes: np.ndarray) -> np.ndarray:
    """The label from bit-packed parts (see `bitplanes`), without unpacking them: the same
    result as `self(unpack(planes))`, several times faster."""
    if self.target == FACE_PARSING:
      # The painted class is the one painted last among the parts present: take, per byte,
      # the highest paint rank of its set bits through a 256-entry table, then the maximum.
      ranks = np.take(self._rank_luts[0], planes[0])
      for b in range(1, len(self._rank_luts)):
        np.maximum(ranks, np.take(self._rank_luts[b], planes[b]), out=ranks)
      return np.take(self._class_of_rank, ranks)
    bits = None
    for byte, mask in self._byte_masks.items():
      hit = np.bitwise_and(planes[byte], mask)
      bits = hit if bits is None else np.bitwise_or(bits, hit, out=bits)
    return np.minimum(bits, 1)  # any selected bit set -> 1

  def __call__(self, parts: np.ndarray) -> np.ndarray:
    if self.target == FACE_PARSING:
      label = np.zeros(parts.shape[:2], np.uint8)
      for channel, class_id in self._paint:
        label[parts[..., channel] > 0] = class_id
      return label
    return (parts[..., self._channels].max(axis=-1) > 0).astype(np.uint8)


def _paint_tables(paint: list[tuple[int, int]], num_parts: int):
  """Per-byte tables: byte value -> highest paint rank among its set bits (0 = none);
  and rank -> class id."""
  rank_of_channel = {channel: rank + 1 for rank, (channel, _) in enumerate(paint)}
  luts = []
  for byte in range(bitplanes.num_bytes(num_parts)):
    lut = np.zeros(256, np.uint8)
    for value in range(256):
      bits = [byte * 8 + i for i in range(8) if value & (1 << (7 - i))]
      lut[value] = max((rank_of_channel.get(c, 0) for c in bits), default=0)
    luts.append(lut)
  class_of_rank = np.array([0] + [class_id for _, class_id in paint], np.uint8)
  return luts, class_of_rank


class TargetWithAuxiliary:
  """A binary target's training label with the auxiliary target as its second bit: 0/1 for the
  target plus 2 where the auxiliary parts are. Only the train step reads the second bit
  (`split_auxiliary`); evaluation and prediction use the plain `TargetMaker`."""

  def __init__(self, target: TargetMaker, auxiliary: TargetMaker):
    self.target, self.auxiliary = target, auxiliary
    self.num_classes = target.num_classes
    # Both halves are left/right symmetric unions (config validation), so a flip keeps every value.
    self.mirror_label_map = np.arange(4, dtype=np.int32)

  @property
  def needed_planes(self) -> frozenset[int]:
    return self.target.needed_planes | self.auxiliary.needed_planes

  def from_planes(self, planes: np.ndarray) -> np.ndarray:
    return self.target.from_planes(planes) | (self.auxiliary.from_planes(planes) << 1)

  def __call__(self, parts: np.ndarray) -> np.ndarray:
    return self.target(parts) | (self.auxiliary(parts) << 1)


def training_target(config, part_names: Sequence[str]) -> TargetMaker | TargetWithAuxiliary:
  """What the training iterator labels examples with: the config's target, and its auxiliary
  target as a second bit when `config.auxiliary_target` names one."""
  target = TargetMaker.from_config(config, part_names)
  if not config.auxiliary_target:
    return target
  return TargetWithAuxiliary(target, TargetMaker(config.auxiliary_target, part_names))


def split_auxiliary(labels):
  """(target, auxiliary) 0/1 labels from `TargetWithAuxiliary`'s labels (NumPy or JAX)."""
  return labels & 1, labels >> 1
