"""Compares experiments: one row per workdir in a Markdown table.

    python -m experiments.report runs/* [--output=results.md]

Reads each workdir's config.json, provenance.json, metrics.jsonl and eval_test.json
(run `python -m experiments.main --mode=eval` first for the test columns).
"""

import os

from absl import flags

from experiments import cli
from unet_flax.reports import table

flags.DEFINE_string('output', 'results.md', 'Markdown file to write.')
FLAGS = flags.FLAGS


def main(argv):
  workdirs = argv[1:]
  if not workdirs:
    cli.fail('usage: python -m experiments.report runs/* [--output=results.md]')
  missing = [w for w in workdirs if not os.path.isdir(w)]
  if missing:
    cli.fail(f'not a workdir (no such folder): {", ".join(missing)}')
  text = table(workdirs)
  with open(FLAGS.output, 'w') as f:
    f.write(text)
  print(text)
  print(f'Wrote {FLAGS.output}')


if __name__ == '__main__':
  cli.run(main)
