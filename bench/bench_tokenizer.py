"""
Speed of vocabulary extension: tokenizer.extend() against rustbpe training the same number of
merges from scratch on the same text, encode throughput with the extended vocabulary, and the
bytes-per-token table of the lab languages before and after extension.

    python bench/bench_tokenizer.py                 # quick: the lab's adapting languages (~5 MB)
    python bench/bench_tokenizer.py --full          # also ~100 MB: that text repeated with variation
    python bench/bench_tokenizer.py --lab out/lab   # an existing lab (else one is generated in a temp dir)

The base vocabulary is trained on the lab's pretraining languages, extension and rustbpe run on its
adapting languages. Wall seconds and process CPU seconds are both reported: rustbpe splits text on all
cores, extend() runs on one. Without data/lab/prepare.py a synthetic multi-script text is used.

Memory at Wikipedia scale, each mode on its own, peak RSS from the kernel:

    python bench/bench_tokenizer.py --extend_pieces 1000000     # extend() over ~1M unique pieces
    python bench/bench_tokenizer.py --train_mb 1000 [--max_bytes 200000000]
        # writes a synthetic multi-script text of that size to a temp dir, runs `tokenizer.py train` on it
        # in a child process (its peak RSS and wall time), deletes the text
    python bench/bench_tokenizer.py --train_mb 1000 --write_corpus /tmp/corpus.txt   # only write the text
"""
import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402
import rustbpe  # noqa: E402

import tokenizer as T  # noqa: E402
from pipeline.documents import read_documents, stats_table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def lab_text(lab_dir):
    """{code: (group, train documents, val documents)} of a lab folder."""
    with open(os.path.join(lab_dir, "manifest.json")) as f:
        manifest = json.load(f)
    return {lang["code"]: (lang["group"], list(read_documents(os.path.join(lab_dir, lang["train"]))),
                           list(read_documents(os.path.join(lab_dir, lang["val"])))) for lang in manifest["languages"]}


def synthetic_text():
    """A stand-in for the lab: Zipfian syllable languages in five scripts, one written without spaces."""
    scripts = {"lat": "abcdefghijklmnopqrstuvwxyz", "cyr": "абвгдежзийклмнопрстуфхцчшщыэюя",
               "gre": "αβγδεζηθικλμνξοπρστυφχψω", "kor": "".join(chr(0xAC00 + 28 * k) for k in range(60)),
               "tha": "กขคฆงจฉชซญดตถทธนบปผพฟภมยรลวสหอฮะาิีึืุู"}
    out = {}
    for seed, (code, group) in enumerate([("lat", "pretraining"), ("cyr", "pretraining"), ("lat2", "adapting"),
                                          ("gre", "adapting"), ("kor", "adapting"), ("tha", "adapting")]):
        rng, letters = random.Random(seed), scripts[code[:3]]
        syllables = ["".join(rng.choice(letters) for _ in range(rng.randint(1, 3))) for _ in range(80)]
        lexicon = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
        weights = [1 / (k + 1) for k in range(len(lexicon))]
        sep = "" if code == "tha" else " "
        docs = [" ".join(sep.join(rng.choices(lexicon, weights, k=rng.randint(4, 14))) + "."
                         for _ in range(rng.randint(2, 8))) for _ in range(2500)]
        out[code] = (group, docs[:2300], docs[2300:])
    return out


def scaled(docs, target_bytes):
    """The documents repeated until target_bytes; after the first copy every document has two of its
    letters swapped (a different pair each time), so new word forms keep appearing as they do in a real
    corpus, instead of the same few pieces being counted again."""
    rng, out, size = random.Random(0), list(docs), sum(len(d.encode()) for d in docs)
    while size < target_bytes:
        for d in docs:
            letters = sorted({c for c in d[:200] if c.isalpha()})
            if len(letters) >= 2:
                a, b = rng.sample(letters, 2)
                d = d.translate({ord(a): b, ord(b): a})
            out.append(d)
            size += len(d.encode())
            if size >= target_bytes:
                break
    return out


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - w, time.process_time() - c


def race(base, docs, merges, label):
    """Rows of the timing table; the last extended tokenizer."""
    rows, ext = [], None
    mb = sum(len(d.encode()) for d in docs) / 1e6
    for n in merges:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ext, ext_wall, ext_cpu = timed(lambda: T.extend(base, docs, n))
        trainer = rustbpe.Tokenizer()
        _, rb_wall, rb_cpu = timed(lambda: trainer.train_from_iterator(iter(docs), 256 + n, pattern=T.SPLIT_PATTERN))
        learned, rb_learned = ext.n_vocab - base.n_vocab, trainer.vocab_size - 256
        note = "; ".join(str(w.message).split(";")[0] for w in caught)
        rows.append(f"| {label} | {mb:.1f} | {n} | {learned} | {ext_wall:.2f} | {ext_cpu:.2f} | {rb_learned} | "
                    f"{rb_wall:.2f} | {rb_cpu:.2f} | {ext_wall / rb_wall:.1f}x |" + (f" {note}" if note else ""))
        print(rows[-1], flush=True)
    return rows, ext


def encode_speed(tok, docs):
    mb = sum(len(d.encode()) for d in docs) / 1e6
    _, batch_wall, _ = timed(lambda: tok.encode_batch(docs))
    _, single_wall, _ = timed(lambda: [tok.encode(d) for d in docs])
    return f"| {tok.n_vocab} | {mb:.1f} | {mb / batch_wall:.1f} | {mb / single_wall:.1f} |"


# ---- memory at Wikipedia scale ---------------------------------------------------------------------

SCRIPTS = {"lat": ("abcdefghijklmnopqrstuvwxyz", " "), "cyr": ("абвгдежзийклмнопрстуфхцчшщыэюя", " "),
           "gre": ("αβγδεζηθικλμνξοπρστυφχψω", " "), "kor": ("".join(chr(0xAC00 + 28 * k) for k in range(200)), " "),
           "hin": ("कखगघचछजझटठडढतथदधनपफबभमयरलवशसह", " "),
           "han": ("".join(chr(0x4E00 + 37 * k) for k in range(600)), "")}  # no spaces: long pieces, as in Chinese


def zipf_lexicon(rng, letters, n_words, punctuation=True):
    """n_words distinct words of 1-4 random syllables, and cumulative Zipf probabilities. With punctuation
    a word also comes with a trailing comma or full stop (which ends a piece in unspaced text)."""
    syllables = sorted({"".join(rng.choices(letters, k=rng.randint(1, 3))) for _ in range(400)})
    words = set()
    while len(words) < n_words:
        words.add("".join(rng.choices(syllables, k=rng.randint(1, 4))))
    words = sorted(words)
    rng.shuffle(words)
    zipf = 1 / np.arange(1, n_words + 1)
    if not punctuation:
        return words, np.cumsum(zipf / zipf.sum())
    p = np.concatenate([0.86 * zipf, 0.09 * zipf, 0.05 * zipf])
    return words + [w + "," for w in words] + [w + "." for w in words], np.cumsum(p / p.sum())


def synthetic_corpus(n_bytes, words_per_script=300_000, seed=0):
    """Documents (30-600 words) of six made-up languages in turn, blocks of ~1 MB each, until n_bytes."""
    rng, words_rng = np.random.default_rng(seed), random.Random(seed)
    langs = [(zipf_lexicon(words_rng, letters, words_per_script), sep) for letters, sep in SCRIPTS.values()]
    written = 0
    while written < n_bytes:
        for (lexicon, cdf), sep in langs:
            words = np.searchsorted(cdf, rng.random(150_000)).tolist()
            cuts = np.cumsum(rng.integers(30, 600, size=len(words) // 30)).tolist()
            for a, b in zip([0] + cuts, cuts):
                if b > len(words):
                    break
                doc = sep.join(map(lexicon.__getitem__, words[a:b]))
                written += len(doc.encode()) + 2
                yield doc
                if written >= n_bytes:
                    return


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bench_extend_memory(n_pieces, n_new):
    """extend() on text holding about n_pieces unique pre-tokenized pieces: peak RSS and time."""
    rng, words_rng = np.random.default_rng(1), random.Random(1)
    # every word a distinct run of letters and every document " " + words joined by " ": the unique
    # pieces are exactly the words, each with its leading space
    langs = [zipf_lexicon(words_rng, letters, n_pieces // len(SCRIPTS), punctuation=False)
             for letters, _ in SCRIPTS.values()]
    base_text = [" ".join(lex[i] for i in np.searchsorted(cdf, rng.random(20_000))) for lex, cdf in langs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = T.train(base_text, 4096)

    def docs():  # every word once (spaced), then as many Zipf draws again: streamed, never held
        for lexicon, cdf in langs:
            order = rng.permutation(len(lexicon)).tolist()
            for a in range(0, len(order), 300):
                yield " " + " ".join(lexicon[i] for i in order[a:a + 300])
            for _ in range(len(lexicon) // 300):
                yield " " + " ".join(lexicon[i] for i in np.searchsorted(cdf, rng.random(300)).tolist())

    n_unique = sum(len(lex) for lex, _ in langs)
    before = peak_rss_mb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ext, wall, cpu = timed(lambda: T.extend(base, docs(), n_new))
    print(f"extend(): {n_unique} unique pieces, base {base.n_vocab} ids, {n_new} merges "
          f"asked, {ext.n_vocab - base.n_vocab} learned: {wall:.1f} s wall, {cpu:.1f} s CPU; peak RSS "
          f"{peak_rss_mb():.0f} MB (the process held {before:.0f} MB before extend)")


def bench_train_memory(n_mb, vocab_size, max_bytes):
    """`tokenizer.py train` on an n_mb synthetic text, in a child process: its peak RSS and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "corpus.txt")
        # written by a child too: a child's peak RSS counts the parent's size when it was started
        _, wall, _ = timed(lambda: subprocess.run([sys.executable, os.path.abspath(__file__), "--train_mb", str(n_mb),
                                                   "--write_corpus", text], check=True))
        print(f"wrote {os.path.getsize(text) / 1e6:.0f} MB of synthetic text in {wall:.0f} s", flush=True)
        cmd = [sys.executable, os.path.join(ROOT, "tokenizer.py"), "train", "--input", text, "--vocab_size",
               str(vocab_size), "--out", os.path.join(tmp, "x.tiktoken")]
        cmd += ["--max_bytes", str(max_bytes)] if max_bytes else []
        log = os.path.join(tmp, "train.log")
        with open(log, "w") as out:
            wall = time.perf_counter()
            child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not all children's
            wall = time.perf_counter() - wall
        with open(log) as f:
            output = f.read().strip()
        if status:
            raise SystemExit(f"error: tokenizer.py train failed:\n{output[-2000:]}")
        print(f"tokenizer.py train{f' --max_bytes {max_bytes}' if max_bytes else ''} on {n_mb} MB, vocab "
              f"{vocab_size}: {wall:.0f} s wall, {usage.ru_utime:.0f} s user CPU, peak RSS "
              f"{usage.ru_maxrss / 1024:.0f} MB\n"
              f"{output.splitlines()[-1]}")


def _write(path, docs):
    with open(path, "w", encoding="utf-8") as f:
        for doc in docs:
            f.write(doc + "\n\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lab", default=None, help="lab folder with manifest.json (default: generate one in a temp dir)")
    ap.add_argument("--mb_per_lang", type=float, default=1.0, help="size of a generated lab")
    ap.add_argument("--base_vocab", type=int, default=8192, help="base vocabulary size (the lab may support fewer)")
    ap.add_argument("--merges", type=int, nargs="+", default=[2000, 8000, 16000], help="extension sizes to time")
    ap.add_argument("--full", action="store_true", help="also time ~--full_mb MB of scaled-up text")
    ap.add_argument("--full_mb", type=float, default=100.0, help="size of the --full text in MB")
    ap.add_argument("--extend_pieces", type=int, default=None, help="only: extend() memory at about this "
                    "many unique pieces")
    ap.add_argument("--train_mb", type=int, default=None, help="only: `tokenizer.py train` memory on this many MB")
    ap.add_argument("--write_corpus", default=None, help="only: write the --train_mb MB synthetic text here")
    ap.add_argument("--vocab_size", type=int, default=32000, help="vocabulary of --train_mb")
    ap.add_argument("--max_bytes", type=int, default=None, help="--max_bytes given to tokenizer.py train")
    ap.add_argument("--n_new", type=int, default=4096, help="merges of --extend_pieces")
    args = ap.parse_args()
    if args.extend_pieces:
        return bench_extend_memory(args.extend_pieces, args.n_new)
    if args.write_corpus:
        return _write(args.write_corpus, synthetic_corpus((args.train_mb or 1000) * 1e6))
    if args.train_mb:
        return bench_train_memory(args.train_mb, args.vocab_size, args.max_bytes)
    if args.base_vocab < 260 or min(args.merges) <= 0 or args.mb_per_lang <= 0 or args.full_mb <= 0:
        raise SystemExit("error: --base_vocab must be >= 260, --merges, --mb_per_lang and --full_mb positive")

    with tempfile.TemporaryDirectory() as tmp:
        source = args.lab
        if source is None and os.path.exists(os.path.join(ROOT, "data/lab/prepare.py")):
            source = os.path.join(tmp, "lab")
            print(f"generating a lab ({args.mb_per_lang} MB per language) in {source} ...", flush=True)
            subprocess.run([sys.executable, os.path.join(ROOT, "data/lab/prepare.py"), "--out", source,
                            "--mb_per_lang", str(args.mb_per_lang), "--examples_per_task", "5",
                            "--instructions", "5", "--progress", "0"], check=True, stdout=subprocess.DEVNULL)
        if source and not os.path.exists(os.path.join(source, "manifest.json")):
            raise SystemExit(f"error: no manifest.json in {source}")
        langs = lab_text(source) if source else synthetic_text()
    print(f"text: {source or 'synthetic (no data/lab/prepare.py)'}; machine: {os.cpu_count()} CPUs, shared")
    pretrain = [d for g, tr, _ in langs.values() if g == "pretraining" for d in tr]
    adapt = [d for g, tr, _ in langs.values() if g == "adapting" for d in tr]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a small lab supports fewer merges than asked: the size is printed
        base, wall, _ = timed(lambda: T.train(pretrain, args.base_vocab))
    print(f"base vocabulary: {base.n_vocab} ids (asked {args.base_vocab}) trained by rustbpe in {wall:.2f} s\n")

    print("| text | MB | merges asked | extend learned | extend wall s | extend CPU s | rustbpe learned | "
          "rustbpe wall s | rustbpe CPU s | wall ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    _, ext = race(base, adapt, args.merges, "lab adapting")
    if args.full:
        big = scaled(adapt, args.full_mb * 1e6)
        race(base, big, args.merges, "scaled")
        del big

    print("\nencode throughput, MB/s (encode_batch uses tiktoken's threads; encode is one call per document):")
    print("| vocab | MB | encode_batch | encode |\n|---:|---:|---:|---:|")
    print(encode_speed(base, adapt))
    print(encode_speed(ext, adapt))

    print(f"\nbytes per token on the val text, base vs extended by {ext.n_vocab - base.n_vocab} merges:")
    print(stats_table({"base": base, "extended": ext},
                      {f"{code} ({g})": val for code, (g, _, val) in langs.items()}))


if __name__ == "__main__":
    main()
