"""Exports a trained workdir to ONNX, TFLite or a TF SavedModel, for apps and services.

    ./run.sh export --workdir=runs/quick --format=onnx
    python -m experiments.export --workdir=runs/quick --format=tflite --dtype=int8 [--output=DIR]
    python -m experiments.export --workdir=runs/quick --format=savedmodel --batch=0

Needs `pip install -r requirements-export.txt` (./run.sh export sets that up in .venv-export).
Writes DIR (default <workdir>/export/<format>_<dtype>) holding the model and model_card.json
(input size, layout and normalisation, output meaning and classes, source config, checkpoint
step, test metrics, and the parity figures). The export is kept only if its own runtime
reproduces the JAX model's masks on the first test examples (Dice >= 0.999 for float32 and
float16; reported for int8); otherwise nothing is written and the command fails.
"""

from absl import flags

from experiments import cli

flags.DEFINE_string('workdir', None, 'A training run directory, e.g. runs/quick.')
flags.DEFINE_enum('format', 'onnx', ['onnx', 'tflite', 'savedmodel'], 'What to export to.')
flags.DEFINE_enum('dtype', 'float32', ['float32', 'float16', 'int8'],
                  'Weights: float32, float16, or int8 (dynamic-range quantisation; tflite and onnx).')
flags.DEFINE_string('output', None, 'Folder to write; default <workdir>/export/<format>_<dtype>. Must not '
                    'hold anything yet.')
flags.DEFINE_string('checkpoint', 'best', 'best, latest or a step number.')
flags.DEFINE_integer('batch', 1, 'Batch size fixed in the model; 0 = dynamic (tflite and savedmodel; '
                     'LiteRT runs a dynamic-batch model without XNNPACK, about 14x slower).')
flags.DEFINE_enum('outputs', 'logits', ['logits', 'probabilities'],
                  'What the model returns: logits, or probabilities (sigmoid, or softmax over classes).')
flags.DEFINE_integer('parity_examples', 8, 'Test examples the export must reproduce.')
flags.DEFINE_string('parity_images', None, 'A folder of images for the parity check instead of the test '
                    'split (for a workdir whose dataset is not on this machine).')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from unet_flax import export
  if FLAGS.parity_examples < 1:
    cli.fail(f'--parity_examples={FLAGS.parity_examples} must be at least 1.')
  path = export.export_workdir(FLAGS.workdir, FLAGS.format, FLAGS.dtype, FLAGS.output, FLAGS.checkpoint,
                               FLAGS.batch, FLAGS.outputs, FLAGS.parity_examples, FLAGS.parity_images)
  print(f'Wrote {path} and model_card.json beside it.')


if __name__ == '__main__':
  cli.run(main)
