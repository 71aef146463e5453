#!/usr/bin/env python3
"""Teacher outputs with vLLM, for `prism distill --teacher-outputs`.

vLLM runs decoder-only models (Llama, Qwen, Mistral, Gemma…): it has no T5 implementation and no
longer runs encoder-decoder models, so a FLAN-T5 teacher goes through teacher_transformers.py.
Each prompt of `prism explain --split train --preset NAME --model oracle --prompts-only` becomes
one user turn of the model's chat template; greedy decoding. Appends {"user","item","text"} rows,
a chunk at a time, flushed to disk; run it again after a kill to continue.

    python teacher_vllm.py --model Qwen/Qwen2.5-7B-Instruct --prompts prompts.jsonl \
        --out teacher.jsonl --max-new-tokens 150 --tensor-parallel-size 1
"""
import argparse

from vllm import LLM, SamplingParams

from teacher_rows import append, pending


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="hub id or checkpoint directory of a chat model")
    p.add_argument("--prompts", required=True, help="prism explain --prompts-only output")
    p.add_argument("--out", required=True)
    p.add_argument("--max-new-tokens", type=int, default=150)
    p.add_argument("--tensor-parallel-size", type=int, default=1)
    p.add_argument("--chunk", type=int, default=2000, help="prompts per call (and per flush)")
    args = p.parse_args()

    todo, done = pending(args.prompts, args.out)

    llm = LLM(model=args.model, tensor_parallel_size=args.tensor_parallel_size)
    params = SamplingParams(temperature=0.0, max_tokens=args.max_new_tokens)
    with open(args.out, "a") as out:
        for start in range(0, len(todo), args.chunk):
            chunk = todo[start : start + args.chunk]
            conversations = [[{"role": "user", "content": r["prompt"]}] for r in chunk]
            results = llm.chat(conversations, sampling_params=params, use_tqdm=True)
            texts = [result.outputs[0].text for result in results]
            append(out, chunk, texts, done + start + len(chunk), done + len(todo))


if __name__ == "__main__":
    main()
