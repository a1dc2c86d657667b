"""What models trained on the built-in synthetic faces scored on real photographs.

Measured on a development set of real CelebA-HQ portraits with the product's own scoring
(`experiments.predict --masks`); the protocol, every row and its command are in
docs/benchmarks.md ("Real photographs"). `experiments.predict` prints the line for the
model's target, and an export's model card carries it, so that a user of a synthetic-trained
model reads what was measured, not a guess.
"""

from __future__ import annotations

from unet_flax.data import face_segmentation

# Target -> (the shipped recipe measured, what it scored on real photographs). The figures hold
# for the recipe at its defaults on the synthetic dataset of SYNTHETIC_VERSION.
MEASURED = {
    'eyeglasses': ('configs/quick.py',
                   'glasses marked on 5 of 35 glasses-free portraits (14%; 4 and 2 with training seeds 1 and 2) '
                   'with experiments.predict\'s wider-framing check, and on 7, 9 and 6 without it, as patches '
                   'round the eyes; Dice 0.78-0.82 and 0.76-0.87 on two hand-labelled glasses photos (thick '
                   'two-tone plastic frames; small rimless lenses, drawn larger than they are by two seeds)'),
    'eyes_lips': ('configs/lips_eyes.py at 128 px, 600 steps',
                  'Dice 0.705 on 11 portraits with reference label maps'),
    'face_parsing': ('configs/face_parsing_cpu.py',
                     'mean F1 0.62 over the 16 parts labelled in 11 portraits; skin, nose and hair 0.83-0.86, '
                     'eyes, brows, mouth and lips 0.63-0.79, clothes, earrings and hats 0-0.30'),
}
SYNTHETIC_VERSION = str(face_segmentation.Builder.BUILDER_CONFIGS[0].version)


def summary(target: str) -> str | None:
  """One line on what a synthetic-trained model of this target scored on real photographs."""
  if target not in MEASURED:
    return None
  recipe, scores = MEASURED[target]
  return f'measured on real photographs with {recipe} (synthetic faces v{SYNTHETIC_VERSION}): {scores}'
