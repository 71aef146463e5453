#!/usr/bin/env bash
# Side by side: prism's engine, Hugging Face transformers (PyTorch, CPU) and CTranslate2 on the
# same checkpoints, inputs, decoding settings and thread count; prints one markdown table.
# Not a test and not part of cargo test. See docs/BENCHMARKS.md ("Engines side by side").
#
#   bench/engines.sh [--oracle DIR] [--prism DIR] [--threads "1 2"] [--dtypes "f32 int8"]
#                    [--inputs 10] [--warmup 2] [--runs 10] [--new-tokens 60] [--beams "1 5"]
#                    [--json FILE]
#
# At the published shapes (random weights, real tokenizers; see bench/make_shapes.py):
#   bench/engines.sh --shapes target/shapes --oracle target/shapes/flan-t5-large \
#                    --prism target/shapes/bart-base --threads "1 2" --dtypes "f32 int8"
# (--shapes DIR first makes the checkpoints there unless they exist.)
#
# PRISM names the prism binary (default target/release/prism, built if missing). Python packages
# go into a virtual environment at target/bench/venv (PYTHON makes it, default python3); it sees
# the system's packages, so a torch already installed there is used as it is.
set -euo pipefail
# No cd: paths given on the command line stay relative to where the script was called from.
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# The versions this script was checked with (a torch already present at this version is not
# reinstalled). transformers stays on 4.x, the version the golden fixtures were made with.
PINS=(torch==2.15.0 transformers==4.57.6 ctranslate2==4.8.5)

if [ -z "${PRISM:-}" ]; then
  PRISM=$ROOT/target/release/prism
  [ -x "$PRISM" ] || (cd "$ROOT" && cargo build --release)
fi
[ -x "$PRISM" ] || { echo "no prism binary at $PRISM" >&2; exit 1; }

VENV=$ROOT/target/bench/venv
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv --system-site-packages "$VENV"
fi
# pip only once per set of pins: the stamp records what was installed.
if [ "$(cat "$VENV/.engines-pins" 2>/dev/null)" != "${PINS[*]}" ]; then
  "$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
  echo "${PINS[*]}" > "$VENV/.engines-pins"
fi

if [ "${1:-}" = "--shapes" ]; then
  shapes=$2
  shift 2
  for name in flan-t5-base flan-t5-large bart-base; do
    [ -f "$shapes/$name/model.safetensors" ] || "$VENV/bin/python" "$ROOT/bench/make_shapes.py" --out "$shapes" --shapes "$name"
  done
fi

exec "$VENV/bin/python" "$ROOT/bench/engines.py" run --prism-bin "$PRISM" "$@"
