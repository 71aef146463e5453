"""Checks that the embedded checkpoints (assets/models/{oracle,prism}) read and write as
transformers reads and writes them: for each prompt, the token ids of transformers' fast
tokenizer (tokenizer.json, entity tokens included) equal those of the `tokenizers` package, the
text decodes back exactly, and transformers' greedy tokens equal `prism generate`'s.

  prism explain --split test --limit 20 --prompts-only --out /tmp/prompts.jsonl
  python scripts/check_embedded_hf.py --prism target/release/prism --prompts /tmp/prompts.jsonl

Prints one JSON line per model and exits 1 on any difference.
"""
import argparse
import json
import subprocess
import sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForSeq2SeqLM, PreTrainedTokenizerFast


def check(prism, model_dir, prompts, max_new_tokens):
    raw = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    fast = PreTrainedTokenizerFast(tokenizer_file=f"{model_dir}/tokenizer.json")
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    added = len(raw.get_added_tokens_decoder())
    report = {"model": model_dir, "prompts": len(prompts), "added_tokens": added,
              "vocab_size": model.config.vocab_size, "ids_equal": 0, "round_trips": 0, "greedy_equal": 0,
              "first_difference": None}
    for prompt in prompts:
        ids = raw.encode(prompt).ids
        if fast(prompt)["input_ids"] == ids:
            report["ids_equal"] += 1
        if raw.decode(ids, skip_special_tokens=True) == prompt:
            report["round_trips"] += 1
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), max_new_tokens=max_new_tokens, num_beams=1,
                                 do_sample=False)
        hf = [t for t in out[0].tolist()[1:] if t != model.config.pad_token_id]
        ours = json.loads(subprocess.run(
            [prism, "generate", "--model", model_dir, "--prompt", prompt, "--beams", "1",
             "--max-new-tokens", str(max_new_tokens), "--json"],
            check=True, capture_output=True, text=True).stdout)["token_ids"]
        ours = [t for t in ours if t != model.config.pad_token_id]
        if hf == ours:
            report["greedy_equal"] += 1
        elif report["first_difference"] is None:
            report["first_difference"] = {"transformers": hf, "prism": ours}
    return report


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--prism", required=True)
    parser.add_argument("--prompts", required=True, help="prism explain --prompts-only output")
    parser.add_argument("--models", default="assets/models/oracle,assets/models/prism")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(args.prompts)]
    ok = True
    for model_dir in args.models.split(","):
        kind = "oracle" if "oracle" in model_dir else "prism"
        prompts = [r["prompt"] for r in rows if r["model"] == kind]
        report = check(args.prism, model_dir, prompts, args.max_new_tokens)
        print(json.dumps(report))
        n = report["prompts"]
        ok &= report["ids_equal"] == n and report["round_trips"] == n and report["greedy_equal"] == n
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
