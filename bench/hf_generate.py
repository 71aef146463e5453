"""Hugging Face transformers side of the generation benchmark (see bench/generate.sh).

Creates (once) a randomly initialised T5 checkpoint of t5-small's shape (about 60M parameters)
in Hugging Face layout, then times greedy and beam-5 decoding of exactly N new tokens (EOS is
suppressed with min_new_tokens = max_new_tokens, so both engines do the same work) on CPU with a
fixed thread count. Prints one JSON line per mode: median and best of the timed runs (the best
is the steadier figure on a shared machine).

  python bench/hf_generate.py --make DIR --tokenizer tests/fixtures/hf/t5-v1_0/tokenizer.json
  python bench/hf_generate.py --model DIR --threads 2 --max-new-tokens 64 --runs 5
"""
import argparse
import json
import os
import shutil
import statistics
import time

import torch
from tokenizers import Tokenizer
from transformers import T5Config, T5ForConditionalGeneration

PROMPT = ("Explain why the user who liked space travel films and quiet dramas about lonely robots "
          "would enjoy this new science fiction drama.")


def make(directory, tokenizer):
    torch.manual_seed(0)
    config = T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    model = T5ForConditionalGeneration(config).eval()
    model.save_pretrained(directory, safe_serialization=True)
    shutil.copy(tokenizer, os.path.join(directory, "tokenizer.json"))
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"made": directory, "parameters": params}))


def bench(directory, threads, max_new_tokens, runs, warmup):
    torch.set_num_threads(threads)
    model = T5ForConditionalGeneration.from_pretrained(directory).eval()
    ids = Tokenizer.from_file(os.path.join(directory, "tokenizer.json")).encode(PROMPT).ids
    input_ids = torch.tensor([ids])
    mask = torch.ones_like(input_ids)
    for beams in (1, 5):
        kwargs = dict(do_sample=False, num_beams=beams, max_new_tokens=max_new_tokens,
                      min_new_tokens=max_new_tokens, early_stopping=False)
        times = []
        with torch.inference_mode():
            for i in range(warmup + runs):
                start = time.perf_counter()
                out = model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
                elapsed = time.perf_counter() - start
                if i >= warmup:
                    times.append(elapsed)
        new_tokens = out.shape[1] - 1
        median = statistics.median(times)
        best = min(times)
        print(json.dumps({"engine": "transformers", "version": __import__("transformers").__version__,
                          "torch": torch.__version__, "mode": "greedy" if beams == 1 else f"beam-{beams}",
                          "threads": threads, "input_tokens": len(ids), "new_tokens": new_tokens,
                          "median_ms": round(median * 1000, 1), "best_ms": round(best * 1000, 1),
                          "tokens_per_s": round(new_tokens / median, 1),
                          "best_tokens_per_s": round(new_tokens / best, 1)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--make")
    parser.add_argument("--tokenizer")
    parser.add_argument("--model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    if args.make:
        make(args.make, args.tokenizer)
    if args.model:
        bench(args.model, args.threads, args.max_new_tokens, args.runs, args.warmup)
