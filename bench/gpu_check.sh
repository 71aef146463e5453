#!/usr/bin/env bash
# The GPU path, checked end to end on a machine that has a GPU: builds `--features cuda`, then runs
# CUDA-vs-transformers logits parity and generation on the Hugging Face fixtures, CUDA-vs-CPU greedy
# tokens through the binary, `prism bench` on the device, and a short distillation run on it.
# Prints one verdict line per check (PASS / FAIL, with the log to read) and exits non-zero if any
# check failed. Not part of cargo test. See docs/BENCHMARKS.md ("GPU").
#
#   bench/gpu_check.sh [--device cuda:0] [--out DIR]
#
# nvcc: taken from PATH, else the CUDA 13 wheels of ../shared/cuda/setup.sh (the driver stub it
# builds is for linking only: here the real driver runs, so only $CUDA_HOME/lib joins the path).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DEVICE=cuda:0
OUT=target/gpu-check
while [ $# -gt 0 ]; do
  case $1 in
    --device) DEVICE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: bench/gpu_check.sh [--device cuda:0] [--out DIR]" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
failed=0

verdict() { # NAME STATUS DETAIL
  if [ "$2" = 0 ]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; failed=1; fi
}

if ! command -v nvcc >/dev/null 2>&1; then
  cargo fetch --locked >/dev/null
  # shellcheck source=/dev/null
  . ../shared/cuda/setup.sh || { echo "FAIL setup: no nvcc and ../shared/cuda/setup.sh failed"; exit 1; }
  export LD_LIBRARY_PATH="$CUDA_HOME/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

start=$SECONDS
cargo build --release --locked --features cuda >"$OUT/build.log" 2>&1
status=$?
verdict build $status "cargo build --release --features cuda in $((SECONDS - start)) s (log $OUT/build.log)"
[ $status = 0 ] || exit 1
PRISM=target/release/prism

PRISM_TEST_DEVICE=$DEVICE cargo test --release --locked --features cuda --test device_parity -- --ignored \
  >"$OUT/parity.log" 2>&1
verdict parity $? "logits (f32 1e-3, bf16/f16 5% of scale) and greedy/beam-4 ids vs transformers on $DEVICE (log $OUT/parity.log)"

# The same prompt through the binary on the device and on the CPU: the same greedy tokens.
model=tests/fixtures/hf/t5-v1_1
prompt=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generations"][0]["prompt"])' "$model/golden.json")
gpu=$("$PRISM" --json generate --model "$model" --prompt "$prompt" --max-new-tokens 20 --device "$DEVICE" 2>"$OUT/generate.log")
cpu=$("$PRISM" --json generate --model "$model" --prompt "$prompt" --max-new-tokens 20 --device cpu 2>>"$OUT/generate.log")
ids() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token_ids"])' "$1" 2>/dev/null; }
[ -n "$(ids "$gpu")" ] && [ "$(ids "$gpu")" = "$(ids "$cpu")" ]
verdict generate $? "prism generate greedy ids on $DEVICE vs cpu: $(ids "$gpu") vs $(ids "$cpu")"

"$PRISM" --json bench --device "$DEVICE" --warmup 5 --runs 50 --inputs 10 >"$OUT/bench.json" 2>"$OUT/bench.log"
status=$?
summary=$(python3 -c '
import json, sys
b = json.load(open(sys.argv[1]))
print("Oracle %.1f ms, Prism %.1f ms, speed-up %.2fx, memory ratio %.2fx" %
      (b["oracle"]["mean_ms"], b["prism"]["mean_ms"], b["speedup"], b["memory_ratio"]))' "$OUT/bench.json" 2>/dev/null)
verdict bench $status "prism bench --device $DEVICE: ${summary:-no result} (json $OUT/bench.json)"

rm -rf "$OUT/distill"
start=$SECONDS
"$PRISM" distill --preset quick --device "$DEVICE" --out "$OUT/distill" >"$OUT/distill.json" 2>"$OUT/distill.log"
status=$?
verdict distill $status "prism distill --preset quick --device $DEVICE in $((SECONDS - start)) s (summary $OUT/distill.json)"

exit $failed
