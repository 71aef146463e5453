"""The resumable file both teacher scripts write (teacher_transformers.py, teacher_vllm.py): which
Oracle prompts are still to do, and appending their explanations durably. Imported from beside
them, so keep the three files together."""
import json
import os
import sys


def already_written(path):
    """(user, item) pairs in `path`, after cutting off an unfinished last line."""
    if not os.path.exists(path):
        return set()
    with open(path, "rb+") as f:
        data = f.read()
        keep = data.rfind(b"\n") + 1
        f.truncate(keep)
    rows = (json.loads(line) for line in data[:keep].decode().splitlines() if line.strip())
    return {(r["user"], r["item"]) for r in rows}


def pending(prompts_path, out_path):
    """The Oracle's prompt rows of `prompts_path` that `out_path` has no explanation of yet, and
    how many it has."""
    with open(prompts_path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    done = already_written(out_path)
    todo = [r for r in rows if r["model"] == "oracle" and (r["user"], r["item"]) not in done]
    return todo, len(done)


def append(out, rows, texts, written, total):
    """Appends one {"user","item","text"} line per row, fsyncs, and prints `written`/`total`."""
    for r, text in zip(rows, texts):
        out.write(json.dumps({"user": r["user"], "item": r["item"], "text": text.strip()}) + "\n")
    out.flush()
    os.fsync(out.fileno())
    print(f"{written}/{total}", file=sys.stderr)
