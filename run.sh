#!/usr/bin/env bash
# Set up and run unet_flax.
#   ./run.sh                      build the synthetic dataset, train configs/quick.py, evaluate,
#                                 predict overlays and plots, print where everything is
#   ./run.sh CONFIG [overrides]   the same for any config, e.g. ./run.sh configs/base.py --config.num_epochs=1
#   ./run.sh test                 run the test suite
# The virtual environment is $VENV (default .venv), created and kept in sync with requirements.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${VENV:-.venv}"
PYTHON_BIN="${PYTHON:-python3}"
REQUIREMENTS=requirements.txt
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  REQUIREMENTS=requirements-cuda.txt
fi
stamp="$VENV/.requirements-$(cat requirements*.txt | sha256sum | cut -c1-16)-$(basename $REQUIREMENTS .txt)"
if [ ! -f "$stamp" ]; then
  echo "==> Setting up $VENV from $REQUIREMENTS (first run: several minutes)"
  [ -x "$VENV/bin/python" ] || "$PYTHON_BIN" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r "$REQUIREMENTS"
  rm -f "$VENV"/.requirements-* && touch "$stamp"
fi
PY="$VENV/bin/python"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

if [ "${1:-}" = "test" ]; then
  shift
  exec "$PY" -m pytest "$@"
fi

CONFIG="${1:-configs/quick.py}"
[ $# -gt 0 ] && shift
if [ ! -f "$CONFIG" ]; then
  echo "run.sh: config file $CONFIG not found; choose one of: $(ls configs/*.py | tr '\n' ' ')" >&2
  exit 2
fi
WORKDIR="runs/$(basename "$CONFIG" .py)"
echo "==> Preparing the dataset (built once, then reused)"
"$PY" -m experiments.prepare_data --config="$CONFIG" "$@"
echo "==> Training $CONFIG in $WORKDIR"
"$PY" -m experiments.main --config="$CONFIG" --workdir="$WORKDIR" "$@"
echo "==> Evaluating the best checkpoint on the test split"
"$PY" -m experiments.main --config="$CONFIG" --workdir="$WORKDIR" --mode=eval "$@"
echo "==> Prediction overlays for test images"
"$PY" -m experiments.predict --workdir="$WORKDIR" --from_test_split=8 --output="$WORKDIR/predictions"
"$PY" -m experiments.report "$WORKDIR" --output="$WORKDIR/results.md"
echo
echo "Done. In $WORKDIR:"
echo "  eval_test.json            test metrics"
echo "  training_history.png      loss, Dice and accuracy curves"
echo "  sample_predictions.png    test images, ground truth and predictions"
echo "  predictions/              per-image masks and overlays"
echo "  checkpoints/, metrics.jsonl, config.json, provenance.json, results.md"
echo "  TensorBoard:              $PY -m tensorboard.main --logdir $WORKDIR"
cat "$WORKDIR/results.md"
