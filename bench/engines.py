"""Side-by-side generation benchmark: prism's engine, Hugging Face transformers (PyTorch, CPU) and
CTranslate2 on the same checkpoints, the same inputs and the same decoding settings.

Run it through bench/engines.sh, which makes the virtual environment and passes PRISM. Commands:

  run      the whole benchmark (what engines.sh runs): prompts from `prism bench --print-inputs`,
           CTranslate2 conversion, then for each thread count, weight type, model and beam width
           prism's engine (`prism bench --json`), transformers and CTranslate2, each in a process
           of its own; a sanity check of token counts and greedy token ids; one markdown table.
  convert  convert one checkpoint for CTranslate2 (run by `run`; imports torch and transformers).
  time     time one engine on one model (run by `run`, one process per engine so that torch's
           and CTranslate2's thread pools never share a process).

The protocol is prism bench's: batch 1, `warmup` untimed runs then `runs` timed runs, run i
explaining input i mod inputs; min = max new tokens, so EOS never ends a run early and every
engine does the same number of decoder steps. Times cover the encoder and the decoding loop
(what prism's `total_ms` covers), not tokenization or detokenization. Each engine's process also
reports its load time (checkpoint to ready model) and its peak resident memory, loading included.

Weight types (`--dtypes`): `f32` runs every engine in float32; `int8` runs prism with `--dtype q8`,
CTranslate2 with `compute_type="int8"` (int8 weights with a scale per output channel) and
transformers with torch's dynamic int8 quantization of every `nn.Linear` (the int8 path PyTorch
offers on CPU).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "target", "bench")
MODELS = ("oracle", "prism")
# What prism bench takes from the configuration file written below ([decoding]); passed
# explicitly to the other engines too, so every engine decodes with the same settings.
LENGTH_PENALTY = 1.0
NO_REPEAT_NGRAM_SIZE = 0


# ----------------------------------------------------------------------------------------------
# Checkpoint facts


def checkpoint_decoding(directory):
    """The checkpoint's decoding defaults that matter here, resolved as prism (and transformers)
    do: generation_config.json when present, else the generation keys of config.json."""
    config = read_json(os.path.join(directory, "config.json"))
    path = os.path.join(directory, "generation_config.json")
    generation = read_json(path) if os.path.isfile(path) else config
    early = generation.get("early_stopping", False)
    return {
        "early_stopping": early,
        "repetition_penalty": generation.get("repetition_penalty", 1.0),
        "decoder_start_token_id": generation.get("decoder_start_token_id", config.get("decoder_start_token_id")),
        "forced_bos_token_id": generation.get("forced_bos_token_id", config.get("forced_bos_token_id")),
        "forced_eos_token_id": generation.get("forced_eos_token_id", config.get("forced_eos_token_id")),
    }


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ----------------------------------------------------------------------------------------------
# CTranslate2 conversion


class CheckpointVocab:
    """What CTranslate2's converter asks of a tokenizer, taken from tokenizer.json and config.json.

    AutoTokenizer does not fit our checkpoints: they have no tokenizer_config.json, and for T5 it
    builds a T5TokenizerFast with 100 extra ids, so its vocabulary (3,100) no longer matches the
    model's (3,000) and the converter refuses it. Here the vocabulary is exactly the tokenizer's,
    padded with placeholder names up to the model's vocab_size when the embedding has spare rows.
    """

    def __init__(self, directory):
        from tokenizers import Tokenizer

        config = read_json(os.path.join(directory, "config.json"))
        tokenizer = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
        by_id = {i: t for t, i in tokenizer.get_vocab(with_added_tokens=True).items()}
        size = config["vocab_size"]
        if len(by_id) > size:
            raise SystemExit(f"{directory}: tokenizer.json has {len(by_id)} tokens, the model only {size}")
        self.tokens = [by_id.get(i, f"<unused_{i}>") for i in range(size)]
        self.pad_token = self.tokens[config["pad_token_id"]]
        self.eos_token = self.tokens[config["eos_token_id"]]
        self.bos_token = self.tokens[config.get("bos_token_id", config["pad_token_id"])]
        self.unk_token = "<unk>" if "<unk>" in self.tokens else self.pad_token

    def get_vocab(self):
        return {token: i for i, token in enumerate(self.tokens)}

    def convert_ids_to_tokens(self, i):
        return self.tokens[i]


def convert(model_dir, out_dir):
    """Converts model_dir into out_dir once; a stamp of the source files makes later runs reuse it."""
    import ctranslate2
    from ctranslate2.converters import TransformersConverter

    stamp = {"source": os.path.abspath(model_dir), "ctranslate2": ctranslate2.__version__}
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        path = os.path.join(model_dir, name)
        if os.path.isfile(path):
            stat = os.stat(path)
            stamp[name] = [stat.st_size, int(stat.st_mtime)]
    stamp_path = os.path.join(out_dir, "converted_from.json")
    if os.path.isfile(stamp_path) and read_json(stamp_path) == stamp:
        return

    class Converter(TransformersConverter):
        def load_model(self, model_class, path, **kwargs):
            model = super().load_model(model_class, path, **kwargs)
            # CTranslate2's BART loader reads config.normalize_before, which configs written by
            # transformers do not carry (transformers' BART has no such option: it is always
            # post-norm, i.e. normalize_before = false, as in facebook/bart-*'s config.json).
            if model.config.model_type == "bart" and not hasattr(model.config, "normalize_before"):
                model.config.normalize_before = False
            return model

        def load_tokenizer(self, tokenizer_class, path, **kwargs):
            return CheckpointVocab(path)

    Converter(model_dir).convert(out_dir, force=True)
    with open(stamp_path, "w", encoding="utf-8") as f:
        json.dump(stamp, f)


# ----------------------------------------------------------------------------------------------
# Timing one engine (child process)


def percentile(sorted_values, q):
    """Nearest-rank percentile, as prism bench computes p95."""
    rank = -(-q * len(sorted_values) // 1)  # ceil
    return sorted_values[min(max(int(rank), 1), len(sorted_values)) - 1]


def summarise(engine, version, times_ms, new_tokens, outputs):
    ordered = sorted(times_ms)
    total_ms = sum(times_ms)
    return {
        "engine": engine,
        "version": version,
        "mean_ms": total_ms / len(times_ms),
        "median_ms": statistics.median(times_ms),
        "p95_ms": percentile(ordered, 0.95),
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
        "new_tokens": new_tokens,
        "mean_new_tokens": sum(new_tokens) / len(new_tokens),
        "tokens_per_s": sum(new_tokens) / (total_ms / 1000.0),
        # New token ids of each input (the same every time an input comes round: no sampling).
        "outputs": outputs,
    }


def protocol(generate, count, warmup, runs):
    """prism bench's loop: run i explains input i mod count; the first `warmup` runs are untimed."""
    times_ms, new_tokens, outputs = [], [], {}
    for run in range(warmup + runs):
        i = run % count
        start = time.perf_counter()
        ids = generate(i)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        outputs[i] = ids
        if run >= warmup:
            times_ms.append(elapsed_ms)
            new_tokens.append(len(ids))
    return times_ms, new_tokens, [outputs[i] for i in sorted(outputs)]


def time_transformers(args, prompts, decoding):
    import torch
    import transformers
    from tokenizers import Tokenizer

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(args.model).eval()
    if args.dtype == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    load_ms = (time.perf_counter() - start) * 1000.0
    tokenizer = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    inputs = [torch.tensor([tokenizer.encode(p).ids]) for p in prompts]
    settings = dict(do_sample=False, num_beams=args.beams, max_new_tokens=args.new_tokens,
                    min_new_tokens=args.new_tokens, no_repeat_ngram_size=NO_REPEAT_NGRAM_SIZE,
                    repetition_penalty=decoding["repetition_penalty"])
    if args.beams > 1:
        # Beam-only options; given with one beam, transformers warns that they are unused.
        settings.update(length_penalty=LENGTH_PENALTY, early_stopping=decoding["early_stopping"])

    def generate(i):
        ids = inputs[i]
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **settings)
        return out[0, 1:].tolist()  # without the decoder start token, as prism's token_ids

    times_ms, new_tokens, outputs = protocol(generate, len(inputs), args.warmup, args.runs)
    version = f"transformers {transformers.__version__}, torch {torch.__version__}"
    result = summarise("transformers", version, times_ms, new_tokens, outputs)
    result["load_ms"] = load_ms
    result["versions"] = {"transformers": transformers.__version__, "torch": torch.__version__}
    return result


def time_ctranslate2(args, prompts, decoding):
    import ctranslate2
    from tokenizers import Tokenizer

    start = time.perf_counter()
    translator = ctranslate2.Translator(args.ct2, device="cpu",
                                        compute_type="int8" if args.dtype == "int8" else "float32",
                                        inter_threads=1, intra_threads=args.threads)
    load_ms = (time.perf_counter() - start) * 1000.0
    vocab = read_json(os.path.join(args.ct2, "shared_vocabulary.json"))
    token_id = {t: i for i, t in enumerate(vocab)}
    tokenizer = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    # CTranslate2 reads and writes token strings: the vocabulary's strings for the ids the other
    # engines read (an added token's string there need not be the tokenizer's: the embedded
    # models' slot tokens are " [ITEM]" in tokenizer.json), which must name one id each.
    if len(token_id) != len(vocab):
        raise SystemExit(f"{args.ct2}: the vocabulary repeats token strings")
    sources = []
    for p in prompts:
        ids = tokenizer.encode(p).ids
        if max(ids) >= len(vocab):
            raise SystemExit(f"{args.ct2}: the tokenizer's ids exceed the vocabulary")
        sources.append([vocab[i] for i in ids])
    # transformers and prism force a first token (BART's <s>) when the checkpoint says so;
    # CTranslate2 does it through a target prefix, which its decoding lengths count.
    forced = decoding["forced_bos_token_id"]
    prefix = [[vocab[forced]]] if forced is not None else None

    def generate(i):
        result = translator.translate_batch([sources[i]], target_prefix=prefix, beam_size=args.beams,
                                            max_decoding_length=args.new_tokens,
                                            min_decoding_length=args.new_tokens,
                                            length_penalty=LENGTH_PENALTY,
                                            repetition_penalty=decoding["repetition_penalty"],
                                            no_repeat_ngram_size=NO_REPEAT_NGRAM_SIZE,
                                            return_end_token=True)
        return [token_id[t] for t in result[0].hypotheses[0]]

    times_ms, new_tokens, outputs = protocol(generate, len(sources), args.warmup, args.runs)
    result = summarise("ctranslate2", f"ctranslate2 {ctranslate2.__version__}", times_ms, new_tokens, outputs)
    result["load_ms"] = load_ms
    result["versions"] = {"ctranslate2": ctranslate2.__version__}
    return result


def status_kib(field):
    """A VmRSS/VmHWM-style field of /proc/self/status, in bytes (0 where unreadable)."""
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def time_command(args):
    prompts = read_json(args.inputs)[args.kind]
    decoding = checkpoint_decoding(args.model)
    # As prism bench measures it: the peak resident set's growth from just before loading, the
    # engine's libraries imported first and the kernel's high-water mark reset at that point.
    if args.engine == "transformers":
        import torch  # noqa: F401
        import transformers  # noqa: F401
    else:
        import ctranslate2  # noqa: F401
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
            f.write("5")
    except OSError:
        pass
    rss_before = status_kib("VmRSS")
    if args.engine == "transformers":
        result = time_transformers(args, prompts, decoding)
    else:
        result = time_ctranslate2(args, prompts, decoding)
    result["peak_memory_bytes"] = max(status_kib("VmHWM") - rss_before, 0)
    result["rss_before_load_bytes"] = rss_before
    print(json.dumps(result))


# ----------------------------------------------------------------------------------------------
# The whole benchmark


def run_json(command, env=None):
    """Runs a command whose stdout is one JSON document; its stderr goes to ours."""
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, env=env, text=True).stdout
    return json.loads(out)


def thread_env(threads):
    """Every thread-count knob the three engines read, set to the same number."""
    env = dict(os.environ)
    for name in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return env


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_rev():
    def git(*a):
        return subprocess.run(["git", "-C", ROOT, *a], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True).stdout.strip()
    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


PRISM_DTYPE = {"f32": "f32", "int8": "q8"}


def prism_greedy_ids(prism, config, model_dir, prompt, new_tokens, dtype):
    """prism generate's token ids for one prompt, greedy, exactly new_tokens tokens."""
    out = run_json([prism, "--config", config, "--json", "generate", "--model", model_dir, "--prompt", prompt,
                    "--beams", "1", "--max-new-tokens", str(new_tokens), "--min-new-tokens", str(new_tokens),
                    "--no-repeat-ngram-size", str(NO_REPEAT_NGRAM_SIZE),
                    "--length-penalty", str(LENGTH_PENALTY), "--dtype", PRISM_DTYPE[dtype]])
    return out["token_ids"]


def sanity(row, models, prompts, args, config):
    """Notes on what went differently from the plan: token counts, and for greedy, token ids.

    In int8 each engine quantizes differently (prism's Q8_0 blocks of 32, CTranslate2's scale per
    output channel, torch's dynamic per-tensor activations), so their greedy ids are counted, not
    expected to agree."""
    notes = []
    for engine in ("prism", "transformers", "ctranslate2"):
        counts = row[engine]["new_tokens"]
        if any(c != args.new_tokens for c in counts):
            notes.append(f"{engine} generated {sorted(set(counts))} tokens, not {args.new_tokens}")
    if row["beams"] == 1:
        exact = row["dtype"] == "f32"
        hf = row["transformers"]["outputs"]
        ours = [prism_greedy_ids(args.prism_bin, config, models[row["model"]], p, args.new_tokens, row["dtype"])
                for p in prompts[:len(hf)]]  # the inputs the runs reached
        row["prism"]["outputs"] = ours
        same = sum(a == b for a, b in zip(ours, hf))
        row["greedy_ids_prism_vs_transformers"] = f"{same}/{len(hf)}"
        if exact and same != len(hf):
            notes.append(f"greedy ids: prism and transformers agree on {same} of {len(hf)} inputs")
        # A forced EOS (BART) ends transformers' and prism's sequences at the length limit;
        # CTranslate2 has no such option, so its last token is compared only without one.
        forced_eos = checkpoint_decoding(models[row["model"]])["forced_eos_token_id"]
        cut = -1 if forced_eos is not None else None
        ct2 = row["ctranslate2"]["outputs"]
        same = sum(a[:cut] == b[:cut] for a, b in zip(ct2, hf))
        row["greedy_ids_ctranslate2_vs_transformers"] = f"{same}/{len(hf)}"
        if exact and same != len(hf):
            notes.append(f"greedy ids: CTranslate2 and transformers agree on {same} of {len(hf)} inputs")
    return notes


def fmt_ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"


def mib(n):
    return f"{n / 2**20:.0f}"


def print_report(report):
    s = report["settings"]
    v = report["versions"]
    print(f"{v['prism']}, torch {v['torch']}, transformers {v['transformers']}, "
          f"ctranslate2 {v['ctranslate2']}; CPU {report['cpu']}; "
          f"batch 1, {s['inputs']} inputs, {s['warmup']} warm-up + {s['runs']} timed runs, "
          f"exactly {s['new_tokens']} new tokens, length_penalty {LENGTH_PENALTY}, "
          f"no_repeat_ngram_size {NO_REPEAT_NGRAM_SIZE}; load average {report['load_average']}")
    for name, directory in report["models"].items():
        print(f"{name}: {directory}")
    print()
    print("| model | threads | weights | decoding | prism ms | transformers ms | CTranslate2 ms "
          "| prism/transformers | prism/CT2 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in report["rows"]:
        p, t, c = (row[e]["mean_ms"] for e in ("prism", "transformers", "ctranslate2"))
        decoding = "greedy" if row["beams"] == 1 else f"beam-{row['beams']}"
        print(f"| {row['model']} | {row['threads']} | {row['dtype']} | {decoding} | {p:.1f} | {t:.1f} | {c:.1f} "
              f"| {fmt_ratio(p, t)} | {fmt_ratio(p, c)} |")
    print()
    print("ms: mean per explanation over the timed runs; ratios below 1 mean prism is faster. "
          "Median / p95 ms and tokens/s are in --json.")
    threads = sorted({row["threads"] for row in report["rows"]})
    if len(threads) > 1:
        print()
        print(f"Speed-up from {threads[0]} to {threads[-1]} threads (mean ms at {threads[0]} / at {threads[-1]}):")
        print()
        print("| model | weights | decoding | prism | transformers | CTranslate2 |")
        print("|---|---|---|---|---|---|")
        by_key = {(r["model"], r["dtype"], r["beams"], r["threads"]): r for r in report["rows"]}
        for (model, dtype, beams, t), row in by_key.items():
            if t != threads[0] or (model, dtype, beams, threads[-1]) not in by_key:
                continue
            other = by_key[(model, dtype, beams, threads[-1])]
            decoding = "greedy" if beams == 1 else f"beam-{beams}"
            gains = [fmt_ratio(row[e]["mean_ms"], other[e]["mean_ms"])
                     for e in ("prism", "transformers", "ctranslate2")]
            print(f"| {model} | {dtype} | {decoding} | " + " | ".join(gains) + " |")
    print()
    print("Loading and memory (each engine in a process of its own; load: checkpoint to ready model; "
          "peak: growth of the peak resident set from before loading, loading included), MiB / ms:")
    print()
    print("| model | threads | weights | decoding | prism load | transformers load | CTranslate2 load "
          "| prism peak | transformers peak | CTranslate2 peak |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in report["rows"]:
        decoding = "greedy" if row["beams"] == 1 else f"beam-{row['beams']}"
        loads = [f"{row[e].get('load_ms', 0):.0f}" for e in ("prism", "transformers", "ctranslate2")]
        peaks = [mib(row[e].get("peak_memory_bytes", 0)) for e in ("prism", "transformers", "ctranslate2")]
        print(f"| {row['model']} | {row['threads']} | {row['dtype']} | {decoding} | " + " | ".join(loads + peaks) + " |")
    print()
    for row in report["rows"]:
        for key in ("greedy_ids_prism_vs_transformers", "greedy_ids_ctranslate2_vs_transformers"):
            if key in row:
                print(f"{row['model']} {row['dtype']} {row['threads']}t: {key.replace('_', ' ')}: "
                      f"{row[key]} inputs identical")
        for note in row["notes"]:
            print(f"{row['model']} {row['dtype']} {row['threads']}t beam {row['beams']}: WARNING {note}")


def run_command(args):
    models = {"oracle": os.path.abspath(args.oracle), "prism": os.path.abspath(args.prism)}
    for name, directory in models.items():
        if not os.path.isfile(os.path.join(directory, "config.json")):
            raise SystemExit(f"no {name} checkpoint at {directory} (give its directory with --{name})")
    os.makedirs(BENCH_DIR, exist_ok=True)

    # prism reads its checkpoints and decoding settings from a config file; the decoding keys are
    # written out so that no user config can make prism decode differently from the others.
    config = os.path.join(BENCH_DIR, "engines.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f'[models]\noracle = {json.dumps(models["oracle"])}\nprism = {json.dumps(models["prism"])}\n'
                f"[decoding]\nno_repeat_ngram_size = {NO_REPEAT_NGRAM_SIZE}\nlength_penalty = {LENGTH_PENALTY}\n")

    print("prompts: prism bench --print-inputs", file=sys.stderr)
    prompts = run_json([args.prism_bin, "--config", config, "bench", "--print-inputs", "--inputs", str(args.inputs)])
    inputs_file = os.path.join(BENCH_DIR, "engines-inputs.json")
    with open(inputs_file, "w", encoding="utf-8") as f:
        json.dump(prompts, f)

    ct2_dirs = {}
    for name, directory in models.items():
        # One conversion directory per source checkpoint, so runs on other models never reuse it.
        ct2_dirs[name] = os.path.join(BENCH_DIR, "ct2", f"{name}-{os.path.basename(directory)}")
        print(f"CTranslate2: {ct2_dirs[name]} (converted from {directory} unless already)", file=sys.stderr)
        subprocess.run([sys.executable, __file__, "convert", "--model", directory, "--out", ct2_dirs[name]],
                       check=True)

    protocol_args = ["--warmup", str(args.warmup), "--runs", str(args.runs)]
    # The binary does not know its commit; the checkout this script runs from is named beside it.
    binary = subprocess.run([args.prism_bin, "--version"], check=True, stdout=subprocess.PIPE, text=True).stdout
    versions = {"prism": f"{binary.strip()} (checkout {git_rev()})"}
    # Other work on the machine skews every engine, and thread pools that wait for each other
    # (OpenMP's) far more than others: the load average says how quiet the machine was.
    load_average = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = []
    for threads in args.threads:
        env = thread_env(threads)
        for dtype in args.dtypes:
            for name in MODELS:
                for beams in args.beams:
                    print(f"{name}, {threads} thread(s), {dtype}, {beams} beam(s): prism, transformers, CTranslate2",
                          file=sys.stderr)
                    ours = run_json([args.prism_bin, "--config", config, "--json", "bench", "--model", name,
                                     "--dtype", PRISM_DTYPE[dtype],
                                     "--beams", str(beams), "--max-new-tokens", str(args.new_tokens),
                                     "--min-new-tokens", str(args.new_tokens), "--inputs", str(args.inputs),
                                     *protocol_args], env=env)[name]
                    # prism bench reports the mean count; the others report every run's.
                    ours["new_tokens"] = [ours["mean_new_tokens"]]
                    row = {"model": name, "threads": threads, "dtype": dtype, "beams": beams, "prism": ours}
                    for engine in ("transformers", "ctranslate2"):
                        row[engine] = run_json([sys.executable, __file__, "time", "--engine", engine,
                                                "--model", models[name], "--ct2", ct2_dirs[name], "--kind", name,
                                                "--inputs", inputs_file, "--beams", str(beams), "--dtype", dtype,
                                                "--new-tokens", str(args.new_tokens), "--threads", str(threads),
                                                *protocol_args], env=env)
                        versions.update(row[engine]["versions"])
                    row["notes"] = sanity(row, models, prompts[name], args, config)
                    rows.append(row)

    report = {
        "versions": versions,
        "cpu": cpu_model(),
        "load_average": load_average,
        "settings": {"threads": args.threads, "inputs": args.inputs, "warmup": args.warmup, "runs": args.runs,
                     "new_tokens": args.new_tokens, "beams": args.beams, "batch_size": 1,
                     "length_penalty": LENGTH_PENALTY, "no_repeat_ngram_size": NO_REPEAT_NGRAM_SIZE,
                     "early_stopping": {n: checkpoint_decoding(d)["early_stopping"] for n, d in models.items()},
                     "dtypes": args.dtypes},
        "models": models,
        "rows": rows,
    }
    print_report(report)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="the whole benchmark")
    run.add_argument("--oracle", default=os.path.join(ROOT, "assets", "models", "oracle"),
                     help="the Oracle's checkpoint directory")
    run.add_argument("--prism", default=os.path.join(ROOT, "assets", "models", "prism"),
                     help="the Prism's checkpoint directory")
    run.add_argument("--prism-bin", default=os.environ.get("PRISM", os.path.join(ROOT, "target", "release", "prism")),
                     help="the prism binary [env PRISM, else target/release/prism]")
    run.add_argument("--threads", default="2", help='thread counts, e.g. "1 2"')
    run.add_argument("--dtypes", default="f32", help='weight types: "f32", "int8" or "f32 int8"')
    run.add_argument("--inputs", type=int, default=10)
    run.add_argument("--warmup", type=int, default=2)
    run.add_argument("--runs", type=int, default=10)
    run.add_argument("--new-tokens", type=int, default=60)
    run.add_argument("--beams", default="1 5", help='beam widths, e.g. "1 5"')
    run.add_argument("--json", help="write the raw figures to this file")

    conv = commands.add_parser("convert", help="convert one checkpoint for CTranslate2")
    conv.add_argument("--model", required=True)
    conv.add_argument("--out", required=True)

    timing = commands.add_parser("time", help="time one engine on one model")
    timing.add_argument("--engine", choices=("transformers", "ctranslate2"), required=True)
    timing.add_argument("--model", required=True)
    timing.add_argument("--ct2")
    timing.add_argument("--kind", choices=MODELS, required=True)
    timing.add_argument("--inputs", required=True, help="JSON file of prism bench --print-inputs")
    timing.add_argument("--beams", type=int, required=True)
    timing.add_argument("--new-tokens", type=int, required=True)
    timing.add_argument("--threads", type=int, required=True)
    timing.add_argument("--dtype", choices=("f32", "int8"), default="f32")
    timing.add_argument("--warmup", type=int, required=True)
    timing.add_argument("--runs", type=int, required=True)

    args = parser.parse_args()
    if args.command == "convert":
        convert(args.model, args.out)
    elif args.command == "time":
        time_command(args)
    else:
        args.beams = [int(b) for b in args.beams.split()]
        args.threads = [int(t) for t in args.threads.split()]
        args.dtypes = args.dtypes.split()
        unknown = [d for d in args.dtypes if d not in PRISM_DTYPE]
        if unknown:
            raise SystemExit(f"--dtypes: unknown {unknown}; expected f32 and/or int8")
        run_command(args)


if __name__ == "__main__":
    main()
