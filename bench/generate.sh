#!/usr/bin/env bash
# Generation throughput: our engine vs Hugging Face transformers (PyTorch) on the same randomly
# initialised t5-small-shaped checkpoint, same prompt, same thread count, exactly N new tokens.
# Not a test. Needs a Python with torch and transformers<5 (PYTHON, default python3).
#   bench/generate.sh [N] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-64}
RUNS=${2:-5}
THREADS=${THREADS:-2}
PYTHON=${PYTHON:-python3}
CKPT=${CKPT:-target/bench/t5-small-random}
if [ ! -f "$CKPT/config.json" ]; then
  mkdir -p "$CKPT"
  "$PYTHON" bench/hf_generate.py --make "$CKPT" --tokenizer tests/fixtures/hf/t5-v1_0/tokenizer.json
fi
cargo build --release --example generate_bench
RAYON_NUM_THREADS=$THREADS "${CARGO_TARGET_DIR:-target}/release/examples/generate_bench" "$CKPT" "$N" "$RUNS"
OMP_NUM_THREADS=$THREADS "$PYTHON" bench/hf_generate.py --model "$CKPT" --threads "$THREADS" --max-new-tokens "$N" --runs "$RUNS"
