#!/usr/bin/env python3
"""How well can any model score against the demo's references? Writes the demo's references again
with K other random streams (`prism data synth --reference-stream`, noise 0: the same pairs and
links, other choices of link and wording) and scores, on the test split, (a) one such sample per
pair and (b) per pair the sample that agrees most with the other K-1 (a minimum-Bayes-risk choice
by a plain LCS ROUGE-L over lower-case words), with `prism eval explain --from-file`.

    python3 scripts/reference_ceiling.py --prism target/release/prism --k 20 --work target/ceiling

Prints `prism eval explain`'s JSON. docs/EMBEDDED_MODELS.md ("Tenth sitting") quotes its ROUGE-L.
"""

import argparse
import gzip
import json
import re
import subprocess
from pathlib import Path


def words(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def rouge_l(candidate, reference):
    a, b = words(candidate), words(reference)
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def test_pairs(interactions):
    """Each user's last interaction: the test split of `Split::leave_last_out`."""
    last = {}
    with gzip.open(interactions, "rt") as f:
        for line in f:
            row = json.loads(line)
            if row["user"] not in last or row["timestamp"] >= last[row["user"]][1]:
                last[row["user"]] = (row["item"], row["timestamp"])
    return {(user, item) for user, (item, _) in last.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prism", default="target/release/prism")
    parser.add_argument("--k", type=int, default=20, help="how many other reference streams")
    parser.add_argument("--work", type=Path, default=Path("target/ceiling"))
    args = parser.parse_args()
    if args.k < 2:
        parser.error("--k must be at least 2 (the choice compares samples with each other)")
    args.work.mkdir(parents=True, exist_ok=True)
    pairs = test_pairs("assets/demo/interactions.jsonl.gz")
    samples = {pair: [] for pair in pairs}
    for stream in range(2, args.k + 2):
        out = args.work / f"stream{stream}"
        subprocess.run(
            [args.prism, "data", "synth", "--reference-stream", str(stream), "--noise", "0", "--out", str(out),
             "--quiet", "--json"],
            check=True, stdout=subprocess.DEVNULL,
        )
        with gzip.open(out / "interactions.jsonl.gz", "rt") as f:
            for line in f:
                row = json.loads(line)
                pair = (row["user"], row["item"])
                if pair in samples:
                    samples[pair].append(row["reference"])
    rows = args.work / "ceiling.jsonl"
    with open(rows, "w") as f:
        for (user, item), texts in sorted(samples.items()):
            best = max(range(len(texts)),
                       key=lambda i: sum(rouge_l(texts[i], t) for j, t in enumerate(texts) if j != i))
            for model, text in [("sample", texts[0]), (f"mbr{args.k}", texts[best])]:
                f.write(json.dumps({"user": user, "item": item, "model": model, "text": text}) + "\n")
    subprocess.run([args.prism, "eval", "explain", "--from-file", str(rows), "--json", "--quiet"], check=True)


if __name__ == "__main__":
    main()
