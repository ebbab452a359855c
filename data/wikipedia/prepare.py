"""
Wikipedia text for real runs, in the layout every stage reads (the lab's):

    <out>/text/<lang>/train.txt, val.txt     documents separated by one blank line, none inside one
    <out>/manifest.json                       languages with their group (pretraining/adapting/other)
    <out>/raw/<lang>/*.parquet                the downloaded shards (delete them to reclaim the disk)

    python data/wikipedia/prepare.py --langs ar,zh,cs,en,et,fi,he,hi,it,ru,es,sw --max_bytes_per_lang 2e9
    python data/wikipedia/prepare.py --langs "" --adapting ja,fr,pt,nl,se,tr,da,no,ko,pl,hu,th,mr,gu
    python data/wikipedia/prepare.py --tokenize out/tokenizer/tokenizer.tiktoken      # uint32 token files

The text comes from the Hugging Face dataset wikimedia/wikipedia (config <snapshot>.<lang>, parquet
shards with columns id/url/title/text), fetched over plain HTTPS: shards are listed with the Hub's tree
API, downloaded resumably and checked (size and sha256 from the listing, parquet markers and columns)
before use; only as many shards as --max_bytes_per_lang needs are downloaded. Reading parquet needs
pyarrow (pip install -r requirements-data.txt). A language already prepared with the same settings is
skipped, so the command can be re-run after an interruption and only finishes what is missing.

--tokenize writes <txt>.<tokenizer fingerprint>.bin next to each text file: exactly the file
common.token_file would make (uint32, <|endoftext|> before every document), streamed with bounded
memory, so train.py finds it instead of tokenizing a whole Wikipedia in RAM.
"""

import argparse
import json
import os
import sys
import zlib

import numpy as np
from tqdm import tqdm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from data.shared import (  # noqa: E402
    PAPER_GROUPS,
    NotFound,
    atomic_open,
    fail,
    fetch,
    hf_files,
    hf_url,
    language_entry,
    parse_codes,
    read_parquet,
    update_manifest,
)
from pipeline.documents import read_documents  # noqa: E402
from pipeline.vocabulary import Tokenizer  # noqa: E402

DATASET = "wikimedia/wikipedia"
# the dataset repo's commit (its 20231101 snapshot); pinned so that a rerun reads the same shards. Verified
# only as the commit other projects pin for this dataset: not checked against the Hub from here
REVISION = "b04c8d1ceb2f5cd4588862100d08de323dccfbaa"
COLUMNS = ("id", "title", "text")


# ---- text -------------------------------------------------------------------------------------------

def clean_article(text):
    """One article as one document: every kind of line break becomes "\\n", trailing spaces go, and
    blank lines inside the article collapse (a blank line is the document separator)."""
    lines = (line.rstrip() for line in (text or "").splitlines())
    return "\n".join(line for line in lines if line.strip())


def is_val(code, doc_id, val_fraction):
    """A stable choice per article (not per position), so a re-run puts every article where it was."""
    return zlib.crc32(f"{code}:{doc_id}".encode()) < val_fraction * 2**32


def write_language(records, train_path, val_path, code, max_bytes=None, val_fraction=0.005, max_val_bytes=5_000_000):
    """Write articles (dicts with "id" and "text", e.g. parquet rows) into train/val text files until
    max_bytes of UTF-8 text are written. The first article always goes to val, so val is never empty.
    Both files appear only when complete. Returns {"docs": {...}, "bytes": {...}}."""
    stats = {"docs": {"train": 0, "val": 0}, "bytes": {"train": 0, "val": 0}}
    with atomic_open(train_path) as train, atomic_open(val_path) as val, \
            tqdm(total=max_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=f"{code} text") as bar:
        files = {"train": train, "val": val}
        for k, record in enumerate(records):
            doc = clean_article(record.get("text"))
            if not doc:
                continue
            n = len(doc.encode("utf-8"))
            doc_id = record.get("id", k)
            to_val = stats["docs"]["val"] == 0 or (is_val(code, doc_id, val_fraction)
                                                    and stats["bytes"]["val"] + n <= max_val_bytes)
            split = "val" if to_val else "train"
            files[split].write(("\n\n" if stats["docs"][split] else "") + doc)
            stats["docs"][split] += 1
            stats["bytes"][split] += n
            bar.update(n)
            if max_bytes and stats["bytes"]["train"] + stats["bytes"]["val"] >= max_bytes:
                break
        if stats["docs"]["train"] == 0:
            fail(f"{code}: no article left for train.txt (only {stats['docs']['val']} read); "
                 "raise --max_bytes_per_lang")
    return stats


def shard_records(out, code, shards):
    """The articles of a language, shard after shard; a shard is downloaded only when reached, so a
    byte budget that the first shards meet never downloads the rest."""
    for shard in shards:
        path = os.path.join(out, "raw", code, os.path.basename(shard["path"]))
        fetch(hf_url(DATASET, shard["path"], REVISION), path, size=shard["size"], sha256=shard["sha256"],
              desc=f"{code} {os.path.basename(shard['path'])}")
        yield from read_parquet(path, COLUMNS)


def list_shards(snapshot, code):
    try:
        files = hf_files(DATASET, REVISION, f"{snapshot}.{code}")
    except NotFound:
        fail(f"unknown language code '{code}': {DATASET} has no config {snapshot}.{code} "
             f"(see https://huggingface.co/datasets/{DATASET} for the languages it has)")
    shards = [f for f in files if f["path"].endswith(".parquet")]
    if not shards:
        fail(f"{DATASET} config {snapshot}.{code} lists no parquet shards ({[f['path'] for f in files][:5]})")
    return shards


# ---- token files --------------------------------------------------------------------------------------

def tokenize_text_file(tok, txt_path, bin_path, batch_bytes=1 << 23):
    """uint32 ids of every document of txt_path, each preceded by <|endoftext|>, into bin_path
    (atomically), encoding a batch of documents at a time so memory stays bounded."""
    eot = np.array([tok.eot_id], dtype=np.uint32)
    n_tokens = 0
    name = os.path.join(os.path.basename(os.path.dirname(txt_path)), os.path.basename(txt_path))
    with atomic_open(bin_path, "wb") as out, tqdm(total=os.path.getsize(txt_path), unit="B", unit_scale=True,
                                                  unit_divisor=1024, desc=f"tokenize {name}") as bar:
        def flush(batch):
            nonlocal n_tokens
            arrays = [a for ids in tok.encode_batch(batch) for a in (eot, np.asarray(ids, dtype=np.uint32))]
            tokens = np.concatenate(arrays)
            tokens.tofile(out)
            n_tokens += len(tokens)
            bar.update(sum(len(d.encode("utf-8")) + 2 for d in batch))

        batch, size = [], 0
        for doc in read_documents(txt_path):
            batch.append(doc)
            size += len(doc)
            if size >= batch_bytes:
                flush(batch)
                batch, size = [], 0
        if batch:
            flush(batch)
    if n_tokens == 0:
        os.remove(bin_path)
        fail(f"text file {txt_path} is empty")
    return n_tokens


def tokenize_languages(out, codes, tokenizer_path):
    tok = Tokenizer.load(tokenizer_path)
    fingerprint = tok.fingerprint()
    for code in codes:
        for split in ("train", "val"):
            txt = os.path.join(out, "text", code, f"{split}.txt")
            bin_path = f"{txt}.{fingerprint}.bin"  # the name common.token_file looks for
            if os.path.exists(bin_path):
                print(f"{bin_path} exists, skipped")
                continue
            n = tokenize_text_file(tok, txt, bin_path)
            print(f"{code} {split}: {n:,} tokens -> {bin_path}")


# ---- command line -----------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--langs", default=",".join(PAPER_GROUPS["pretraining"]),
                        help="pretraining languages, comma-separated ('' for none; default: the paper's 12)")
    parser.add_argument("--adapting", default="",
                        help="adapting languages (the paper's: " + ",".join(PAPER_GROUPS["adapting"]) + ")")
    parser.add_argument("--other", default="", help="languages of the 'other' group (never trained on; evaluated only)")
    parser.add_argument("--max_bytes_per_lang", type=float, default=None,
                        help="stop a language after this many bytes of text (default: all of it)")
    parser.add_argument("--val_fraction", type=float, default=0.005, help="share of articles that go to val.txt")
    parser.add_argument("--max_val_bytes", type=float, default=5e6, help="cap on the size of val.txt per language")
    parser.add_argument("--snapshot", default="20231101", help="the wikimedia/wikipedia dump date")
    parser.add_argument("--out", default="out/wikipedia", help="data folder (manifest.json, text/, raw/)")
    parser.add_argument("--tokenize", metavar="TOKENIZER", default=None,
                        help="also write uint32 token files for this tokenizer.tiktoken "
                        "(as common.token_file names them)")
    parser.add_argument("--overwrite", action="store_true", help="prepare languages again even if their text is there")
    args = parser.parse_args(argv)

    groups = {"pretraining": parse_codes(args.langs, "--langs"), "adapting": parse_codes(args.adapting, "--adapting"),
              "other": parse_codes(args.other, "--other")}
    group_of = {}
    for group, codes in groups.items():
        for code in codes:
            if code in group_of:
                fail(f"language '{code}' is in both {group_of[code]} and {group}")
            group_of[code] = group
    if not group_of:
        fail("no languages given (--langs, --adapting, --other)")
    for name in ("max_bytes_per_lang", "max_val_bytes"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            fail(f"--{name} must be positive")
    if not 0 <= args.val_fraction < 1:
        fail("--val_fraction must be in [0, 1)")
    if args.tokenize and not os.path.isfile(args.tokenize):
        fail(f"--tokenize: no tokenizer file at {args.tokenize}")
    max_bytes = int(args.max_bytes_per_lang) if args.max_bytes_per_lang else None
    settings = {"snapshot": args.snapshot, "max_bytes": max_bytes, "val_fraction": args.val_fraction,
                "max_val_bytes": int(args.max_val_bytes)}

    # a language already there is kept even if it was made with other settings (say a smaller
    # --max_bytes_per_lang): re-downloading a Wikipedia by accident costs hours; --overwrite asks for it
    done = _prepared(args.out)
    todo = [c for c in group_of if args.overwrite or c not in done]
    # list every language before downloading anything: a bad code fails in seconds, not after hours
    shards = {code: list_shards(args.snapshot, code) for code in todo}
    for code in group_of:
        if code in done and code not in todo:
            entry = done[code]
            changed = {k: (entry.get(k), v) for k, v in settings.items() if entry.get(k) != v}
            print(f"{code}: already prepared in {args.out}, kept" + (f" (made with other settings: {changed}; "
                  f"--overwrite to prepare it again)" if changed else ""))
        else:
            text_dir = os.path.join(args.out, "text", code)
            stats = write_language(shard_records(args.out, code, shards[code]), os.path.join(text_dir, "train.txt"),
                                   os.path.join(text_dir, "val.txt"), code, max_bytes, args.val_fraction,
                                   settings["max_val_bytes"])
            entry = {**stats, **settings, "source": f"{DATASET}@{REVISION}:{args.snapshot}.{code}"}
            for name in os.listdir(text_dir):  # token files of the old text would be taken for the new one
                if name.endswith(".bin") and name.startswith(("train.txt.", "val.txt.")):
                    os.remove(os.path.join(text_dir, name))
            print(f"{code}: {stats['docs']['train']:,} train / {stats['docs']['val']:,} val articles, "
                  f"{stats['bytes']['train'] / 1e6:,.1f} MB / {stats['bytes']['val'] / 1e6:,.1f} MB")
        _record(args.out, code, group_of[code], entry)
    if args.tokenize:
        tokenize_languages(args.out, list(group_of), args.tokenize)
    return os.path.join(args.out, "manifest.json")


def _prepared(out):
    """Languages whose text files exist: {code: manifest entry}."""
    path = os.path.join(out, "manifest.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        entries = json.load(f).get("languages", [])
    return {e["code"]: e for e in entries
            if all(os.path.exists(os.path.join(out, e.get(s, "-"))) for s in ("train", "val"))}


def _record(out, code, group, stats):
    def update(manifest):
        entry = {**language_entry(code, group), "train": f"text/{code}/train.txt", "val": f"text/{code}/val.txt"}
        entry.update({k: stats[k] for k in ("source", "snapshot", "max_bytes", "val_fraction", "max_val_bytes",
                                            "docs", "bytes") if k in stats})
        entries = [e for e in manifest.get("languages", []) if e["code"] != code] + [entry]
        manifest["languages"] = entries
        manifest["groups"] = {g: [e["code"] for e in entries if e["group"] == g]
                              for g in ("pretraining", "adapting", "other")}
        manifest.setdefault("source", {"text": f"{DATASET} (Hugging Face)"})

    update_manifest(out, update)


if __name__ == "__main__":
    main()
