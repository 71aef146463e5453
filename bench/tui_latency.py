#!/usr/bin/env python3
"""Explorer latency, end to end, through tmux: process start to first frame, and key press to the
redrawn frame, with whatever else the machine is doing (run it while a job trains to measure the
target "input handled < 50 ms while a job trains").

Usage: python3 bench/tui_latency.py [--binary target/release/prism] [--config FILE] [--keys 30]

A key's latency is the time from `tmux send-keys` returning to the first `capture-pane` that shows
the new selection; captures are taken back to back (each costs ~2 ms), so the numbers include up to
one capture of polling delay.
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time

SOCKET = f"prism-bench-{os.getpid()}"


def tmux(*args):
    return subprocess.run(["tmux", "-L", SOCKET, *args], check=True, capture_output=True, text=True).stdout


def capture():
    return tmux("capture-pane", "-p", "-t", "bench")


def wait(predicate, timeout=60.0):
    start = time.perf_counter()
    while True:
        screen = capture()
        if predicate(screen):
            return time.perf_counter() - start, screen
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"timed out; the pane shows:\n{screen}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/prism")
    parser.add_argument("--config", default=None)
    parser.add_argument("--keys", type=int, default=30)
    args = parser.parse_args()
    home = tempfile.mkdtemp()
    config = f"--config {args.config}" if args.config else ""
    command = f"env HOME={home} XDG_CONFIG_HOME={home} {os.path.abspath(args.binary)} {config}"
    try:
        start = time.perf_counter()
        tmux("new-session", "-d", "-s", "bench", "-x", "160", "-y", "48", command)
        wait(lambda s: "Users" in s)
        first_frame = time.perf_counter() - start
        loaded, _ = wait(lambda s: "Users 1000/1000" in s)
        latencies = []
        for i in range(args.keys):
            before = capture()
            key = "j" if i % 2 == 0 else "k"
            tmux("send-keys", "-t", "bench", key)
            t0 = time.perf_counter()
            while capture() == before:
                if time.perf_counter() - t0 > 5:
                    raise SystemExit("the screen did not change after a key")
            latencies.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.15)
        latencies.sort()
        print(f"first frame: {first_frame * 1000:.0f} ms after start (users loaded after {loaded * 1000:.0f} ms more)")
        print(
            f"key to redraw over {len(latencies)} keys: median {statistics.median(latencies):.1f} ms, "
            f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.1f} ms, max {latencies[-1]:.1f} ms"
        )
        print(f"load average: {os.getloadavg()[0]:.1f}")
    finally:
        subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True)


if __name__ == "__main__":
    main()
