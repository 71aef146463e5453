#!/usr/bin/env python3
"""Teacher outputs with Hugging Face transformers, for `prism distill --teacher-outputs`.

Reads the rows of `prism explain --split train --preset NAME --model oracle --prompts-only`
({"user","item","model","prompt"}) and appends {"user","item","text"} rows, one per prompt, each
batch flushed to disk. Run it again after a kill: it skips what the output has and cuts off a line
the kill left unfinished. For any seq2seq checkpoint (FLAN-T5, T5, BART) by hub id or directory.

    python teacher_transformers.py --model google/flan-t5-xxl --prompts prompts.jsonl \
        --out teacher.jsonl --beams 5 --max-new-tokens 150 --no-repeat-ngram-size 3
"""
import argparse

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from teacher_rows import append, pending


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="hub id or checkpoint directory")
    p.add_argument("--prompts", required=True, help="prism explain --prompts-only output")
    p.add_argument("--out", required=True)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--beams", type=int, default=5)
    p.add_argument("--max-new-tokens", type=int, default=150)
    p.add_argument("--no-repeat-ngram-size", type=int, default=0)
    args = p.parse_args()

    todo, done = pending(args.prompts, args.out)
    # Similar lengths in a batch waste less padding.
    todo.sort(key=lambda r: len(r["prompt"]))

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model, dtype=dtype).to(device).eval()

    with open(args.out, "a") as out:
        for start in range(0, len(todo), args.batch_size):
            batch = todo[start : start + args.batch_size]
            # No truncation: prism already cut each prompt to the teacher's input length.
            inputs = tokenizer([r["prompt"] for r in batch], return_tensors="pt", padding=True).to(device)
            with torch.inference_mode():
                ids = model.generate(
                    **inputs,
                    do_sample=False,
                    num_beams=args.beams,
                    max_new_tokens=args.max_new_tokens,
                    no_repeat_ngram_size=args.no_repeat_ngram_size,
                )
            texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
            append(out, batch, texts, done + start + len(batch), done + len(todo))


if __name__ == "__main__":
    main()
