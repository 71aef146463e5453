#!/usr/bin/env bash
# Loading, measured from outside: runs `prism generate --max-new-tokens 1 --json` on a checkpoint
# and prints the engine's own load time (`stats.load_ms`: checkpoint to ready model), the weights
# as loaded (`stats.param_bytes`), the peak of the process's RssAnon + RssFile (mapped file pages
# count: they are what made loading peak at twice the weights), sampled every 0.1 s from /proc,
# and the process's CPU seconds. Not a test. Linux only.
#   bench/load_memory.sh PRISM_BINARY CHECKPOINT_DIR [more prism generate arguments, e.g. --dtype q8]
set -euo pipefail
prism=$1
model=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/time -f "%U %S" -o "$tmp/time" "$prism" generate --model "$model" --prompt "hello world" \
  --max-new-tokens 1 --json "$@" >"$tmp/out" 2>"$tmp/err" &
timer=$!
pid=""
while [ -z "$pid" ] && kill -0 "$timer" 2>/dev/null; do
  pid=$(pgrep -P "$timer" || true)
done
peak=0
while kill -0 "$timer" 2>/dev/null; do
  rss=$(awk '/^(RssAnon|RssFile):/ {s += $2} END {print s + 0}' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ "$rss" -gt "$peak" ] && peak=$rss
  sleep 0.1
done
wait "$timer" || { cat "$tmp/err" >&2; exit 1; }
read -r user sys <"$tmp/time"
python3 - "$tmp/out" "$peak" "$user" "$sys" <<'EOF'
import json, sys
stats = json.load(open(sys.argv[1]))["stats"]
peak = int(sys.argv[2]) * 1024
print(f"load_ms={stats['load_ms']:.0f} dtype={stats['dtype']} weights={stats['param_bytes'] / 2**20:.0f}MiB "
      f"peak_rss={peak / 2**20:.0f}MiB ratio={peak / stats['param_bytes']:.2f} "
      f"cpu_s={float(sys.argv[3]) + float(sys.argv[4]):.2f}")
EOF
