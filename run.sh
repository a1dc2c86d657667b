#!/usr/bin/env bash
# Set up and run unet_flax.
#   ./run.sh                      build the synthetic dataset, train configs/quick.py, evaluate,
#                                 predict overlays and plots, print where everything is
#   ./run.sh CONFIG [overrides]   the same for any config, e.g. ./run.sh configs/base.py --config.num_epochs=1
#   ./run.sh test                 lint (ruff) and run the test suite
#   ./run.sh export ARGS          export a trained workdir (python -m experiments.export ARGS)
#   ./run.sh benchmark_inference ARGS   inference speed of JAX, ONNX Runtime and TFLite
# The virtual environment is $VENV (default .venv), created and kept in sync with requirements;
# exporting (and testing it) uses a second one, $EXPORT_VENV (default .venv-export), from
# requirements-export.txt, so the core install needs no TensorFlow.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${VENV:-.venv}"
EXPORT_VENV="${EXPORT_VENV:-$VENV-export}"
PYTHON_BIN="${PYTHON:-python3}"
REQUIREMENTS=requirements.txt
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  REQUIREMENTS=requirements-cuda.txt
fi

# ensure_venv DIR REQUIREMENTS_FILE: create DIR and keep it in sync with the requirements.
ensure_venv() {
  local venv="$1" requirements="$2"
  local stamp="$venv/.requirements-$(cat requirements*.txt pyproject.toml | sha256sum | cut -c1-16)-$(basename "$requirements" .txt)"
  if [ ! -f "$stamp" ]; then
    echo "==> Setting up $venv from $requirements (first run: several minutes)"
    [ -x "$venv/bin/python" ] || "$PYTHON_BIN" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$requirements"
    "$venv/bin/python" -m pip install --quiet --no-deps -e .  # unet_flax itself
    rm -f "$venv"/.requirements-* && touch "$stamp"
  fi
}
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

case "${1:-}" in
  test)  # the core environment runs the suite; export tests run their commands in the export one
    shift
    ensure_venv "$VENV" "$REQUIREMENTS"
    ensure_venv "$EXPORT_VENV" requirements-export.txt
    "$VENV/bin/ruff" check . || { echo "run.sh test: lint errors (ruff check . --fix mends most)" >&2; exit 1; }
    # One pytest worker a core, up to 4 (each holds its own JAX and tiny datasets); most of a
    # test is single-threaded compilation or a subprocess's wait. TEST_WORKERS=0: in pytest itself.
    cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)  # Linux and macOS alike
    workers="${TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}"
    UNET_FLAX_EXPORT_PYTHON="$EXPORT_VENV/bin/python" exec "$VENV/bin/python" -m pytest \
      -n "$workers" --dist worksteal "$@" ;;
  export|benchmark_inference)  # need TensorFlow, tf2onnx and the runtimes: their own environment
    tool="$1"; shift
    ensure_venv "$EXPORT_VENV" requirements-export.txt
    exec "$EXPORT_VENV/bin/python" -m "experiments.$tool" "$@" ;;
esac
ensure_venv "$VENV" "$REQUIREMENTS"
PY="$VENV/bin/python"

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
