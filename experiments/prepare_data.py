"""Builds the dataset a config names, if it is not built yet (with a progress bar).

    python -m experiments.prepare_data --config=configs/quick.py
    python -m experiments.prepare_data --config=configs/base.py \
        --config.dataset.config=celebamask_hq --config.dataset.manual_dir=/data/CelebAMask-HQ

Training does this itself. Any number of these (or of trainings) may prepare one data_dir at
once: one builds, the others say whom they wait for and reuse its build.
"""

from absl import flags
from ml_collections import config_flags

from experiments import cli

config_flags.DEFINE_config_file('config', None, 'Path to a config file in configs/.')
flags.mark_flags_as_required(['config'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from unet_flax.data import dataset
  builder = dataset.prepare(FLAGS.config.dataset)
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  print(f'face_segmentation/{builder.builder_config.name} ready in {builder.data_dir}: {splits}')


if __name__ == '__main__':
  cli.run(main)
