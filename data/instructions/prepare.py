"""
English instruction data for finetune.py, as {"messages": [{"role", "content"}, ...]} JSONL:

    <out>/instructions/train.jsonl, val.jsonl     and the "instructions" key of <out>/manifest.json

    python data/instructions/prepare.py                          # OpenOrca, GPT-4 part (the paper's data)
    python data/instructions/prepare.py --sources dolly          # databricks-dolly-15k: small, permissive
    python data/instructions/prepare.py --sources openorca,dolly --orca_parts all --max_examples 200000

Sources (Hugging Face datasets, fetched over HTTPS, resumably):
  openorca  Open-Orca/OpenOrca: parquet files with id/system_prompt/question/response (needs pyarrow:
            pip install -r requirements-data.txt). --orca_parts gpt4 (1M-GPT4-Augmented.parquet),
            gpt35 (3_5M-GPT3_5-Augmented.parquet) or all. Released under the MIT licence, but its
            responses are GPT-4 and GPT-3.5 outputs on FLAN collection prompts: OpenAI's terms for
            those outputs and the FLAN sources' own licences apply too.
  dolly     databricks/databricks-dolly-15k: one JSONL file with instruction/context/response/category.
            CC BY-SA 3.0.
Every file is checked against the Hub's listing (size and, for files stored in Git LFS, sha256) at the
revision below, and every line is checked for its fields.
A conversation is [system (OpenOrca's own system prompt, when it has one), user, assistant]; without a
system message the finetuning stage puts the project's fixed system prompt first. Examples with an empty
question or answer are dropped and counted. The val split is a stable ~--val_fraction of the examples
(by a hash of source and id), at most --max_val of them.
"""

import argparse
import json
import os
import sys
import zlib

from tqdm import tqdm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from data.shared import atomic_open, fail, fetch, hf_files, hf_url, read_parquet, update_manifest  # noqa: E402

ORCA = "Open-Orca/OpenOrca"
ORCA_PARTS = {"gpt4": ["1M-GPT4-Augmented.parquet"], "gpt35": ["3_5M-GPT3_5-Augmented.parquet"]}
ORCA_PARTS["all"] = ORCA_PARTS["gpt4"] + ORCA_PARTS["gpt35"]
ORCA_COLUMNS = ("id", "system_prompt", "question", "response")
DOLLY = "databricks/databricks-dolly-15k"
# dataset repo commits, so that a rerun reads the same files. Dolly's is the commit other projects pin
# (its last change, June 2023); for OpenOrca we found no commit to check, so it stays the moving "main"
DOLLY_REVISION = "bdd27f4d94b9c1f951818a7da7fd7aeea5dbff1a"
ORCA_REVISION = "main"  # not verified: no commit hash found to pin
DOLLY_FILE = "databricks-dolly-15k.jsonl"
DOLLY_FIELDS = ("instruction", "context", "response")


# ---- converters: one raw record -> {"messages": [...]} or None ------------------------------------

def orca_example(record):
    question, response = (record.get("question") or "").strip(), (record.get("response") or "").strip()
    if not question or not response:
        return None
    system = (record.get("system_prompt") or "").strip()
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": question}, {"role": "assistant", "content": response}]
    return {"messages": messages}


def dolly_example(record):
    instruction, response = (record.get("instruction") or "").strip(), (record.get("response") or "").strip()
    if not instruction or not response:
        return None
    context = (record.get("context") or "").strip()
    # Dolly's context is reference text for the instruction (closed QA, summarisation): it goes after it
    user = f"{instruction}\n\n{context}" if context else instruction
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": response}]}


# ---- raw records -----------------------------------------------------------------------------------

def orca_records(raw_dir, parts):
    files = {f["path"]: f for f in hf_files(ORCA, ORCA_REVISION)}
    for name in ORCA_PARTS[parts]:
        if name not in files:
            fail(f"{ORCA} has no file {name} any more (it has {sorted(files)[:10]})")
        path = fetch(hf_url(ORCA, name, ORCA_REVISION), os.path.join(raw_dir, name), size=files[name]["size"],
                     sha256=files[name]["sha256"], desc=f"openorca {name}")
        for k, row in enumerate(read_parquet(path, ORCA_COLUMNS)):
            yield row.get("id") or f"{name}:{k}", row


def dolly_records(raw_dir):
    # size and sha256 from the Hub's listing at the pinned commit, as for OpenOrca: a file that changed
    # or broke on the way is refused (we found no published checksum to write down here instead)
    files = {f["path"]: f for f in hf_files(DOLLY, DOLLY_REVISION)}
    if DOLLY_FILE not in files:
        fail(f"{DOLLY} at {DOLLY_REVISION} has no file {DOLLY_FILE} (it has {sorted(files)[:10]})")
    entry = files[DOLLY_FILE]
    path = fetch(hf_url(DOLLY, DOLLY_FILE, DOLLY_REVISION), os.path.join(raw_dir, DOLLY_FILE), size=entry["size"],
                 sha256=entry["sha256"], desc="dolly")
    yield from read_jsonl(path, DOLLY_FIELDS)


def read_jsonl(path, fields):
    """(line number, record) of a JSONL file; a line that is not JSON or lacks a field stops with a
    message naming the file and line (a truncated or changed download, not something to guess around)."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                fail(f"{path}: line {n} is not JSON ({e}); delete the file and run again")
            missing = [k for k in fields if k not in record]
            if missing:
                fail(f"{path}: line {n} lacks the fields {missing} (it has {sorted(record)})")
            yield n, record


# ---- writing ---------------------------------------------------------------------------------------

def write_split(examples, train_path, val_path, val_fraction=0.01, max_val=1000):
    """Stream (key, example) pairs into train/val JSONL files (atomically). An example goes to val when
    the hash of its key falls under val_fraction (and val has room); the first one always does, so
    val is never empty. Returns counts."""
    counts = {"train": 0, "val": 0}
    with atomic_open(train_path) as train, atomic_open(val_path) as val, tqdm(desc="examples", unit=" ex") as bar:
        for key, example in examples:
            to_val = counts["val"] == 0 or (zlib.crc32(key.encode()) < val_fraction * 2**32 and counts["val"] < max_val)
            split = "val" if to_val else "train"
            (val if to_val else train).write(json.dumps(example, ensure_ascii=False) + "\n")
            counts[split] += 1
            bar.update()
        if counts["train"] == 0:
            fail("no example left for train.jsonl; raise --max_examples")
    return counts


def converted(source, records, convert, max_examples, dropped):
    kept = 0
    for key, record in records:
        if max_examples and kept >= max_examples:
            return
        example = convert(record)
        if example is None:
            dropped[source] = dropped.get(source, 0) + 1
            continue
        kept += 1
        yield f"{source}:{key}", example


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--sources", default="openorca", help="comma-separated: openorca, dolly")
    parser.add_argument("--orca_parts", default="gpt4", choices=sorted(ORCA_PARTS), help="which OpenOrca files")
    parser.add_argument("--max_examples", type=int, default=None, help="at most this many examples per source")
    parser.add_argument("--val_fraction", type=float, default=0.01, help="share of examples that go to val")
    parser.add_argument("--max_val", type=int, default=1000, help="at most this many val examples")
    parser.add_argument("--out", default="out/wikipedia", help="data folder (its manifest.json gets the "
                        "'instructions' key)")
    args = parser.parse_args(argv)

    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = [s for s in sources if s not in ("openorca", "dolly")]
    if unknown or not sources:
        fail(f"--sources: unknown source(s) {unknown or [args.sources]} (openorca, dolly)")
    if args.max_examples is not None and args.max_examples <= 0:
        fail("--max_examples must be positive")
    if not 0 <= args.val_fraction < 1:
        fail("--val_fraction must be in [0, 1)")

    raw_dir = os.path.join(args.out, "raw", "instructions")
    dropped = {}

    def examples():
        for source in sources:
            records = orca_records(raw_dir, args.orca_parts) if source == "openorca" else dolly_records(raw_dir)
            convert = orca_example if source == "openorca" else dolly_example
            yield from converted(source, records, convert, args.max_examples, dropped)

    folder = os.path.join(args.out, "instructions")
    counts = write_split(examples(), os.path.join(folder, "train.jsonl"), os.path.join(folder, "val.jsonl"),
                         args.val_fraction, args.max_val)

    def update(manifest):
        manifest["instructions"] = {"train": "instructions/train.jsonl", "val": "instructions/val.jsonl",
                                    "sources": sources, "examples": counts, "dropped": dropped}

    update_manifest(args.out, update)
    print(f"{counts['train']:,} train / {counts['val']:,} val conversations in {folder}"
          + (f" (dropped as empty: {dropped})" if dropped else ""))
    return counts


if __name__ == "__main__":
    main()
