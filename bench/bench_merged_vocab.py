"""
adapt.py's merged vocabulary at real-data scale: time and peak memory of learning the new merges, as every
expand run of run.sh did before (all the adapting text, in every run) and as it does now (an even sample of
--extend_max_bytes, built once, then reused by every run with the same inputs; two runs started at once
build it once).

    python bench/bench_merged_vocab.py                      # ~300 MB of adapting text, 13 languages
    python bench/bench_merged_vocab.py --mb 100 --extend_max_bytes 50000000

The text: per adapting language of the paper that has gettext catalogs on this machine (/usr/share/locale,
as data/lab/token_share.py reads them), its translated messages, then synthetic text of six scripts drawn
from Zipfian lexicons of its own (bench_tokenizer.synthetic_corpus, a seed per language) up to its share of
--mb. The base vocabulary is trained by rustbpe on the pretraining languages' catalogs. Every measured step
runs in a child process: wall seconds, user CPU seconds and peak RSS are that process's own.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

# what a child runs: one vocabulary step of adapt.py on the bench's files
CHILD = """
import json, sys
sys.path.insert(0, {root!r})
import adapt, tokenizer
base = tokenizer.Tokenizer.load({base!r})
paths = json.load(open({paths!r}))
if {cache!r}:
    tok = adapt.cached_vocabulary(base, paths, {n_new}, {max_bytes}, {cache!r})
else:  # what every expand run did before: extend on all the text, no cache
    tok = adapt.extend_vocabulary(base, paths, {n_new}, 0)
print("ids", tok.n_vocab)
"""


def write_text(folder, mb, words_per_script):
    """{lang: train file} of about mb MB of adapting text in all (see the module docstring)."""
    from bench_tokenizer import synthetic_corpus

    from data.lab.token_share import PAPER_ADAPTING, catalog_messages

    catalogs = {lang: catalog_messages(lang) for lang in PAPER_ADAPTING}
    langs = [lang for lang in PAPER_ADAPTING if catalogs[lang]]
    paths = {}
    for seed, lang in enumerate(langs):
        paths[lang] = os.path.join(folder, f"{lang}.txt")
        messages = catalogs[lang]
        docs = [" ".join(messages[a:a + 20]).replace("\n\n", "\n") for a in range(0, len(messages), 20)]
        real = sum(len(doc.encode()) + 2 for doc in docs)
        with open(paths[lang], "w", encoding="utf-8") as f:
            for doc in itertools.chain(docs, synthetic_corpus(mb * 1e6 / len(langs) - real, words_per_script,
                                                              seed=seed + 1)):
                f.write(doc + "\n\n")
    return paths


def base_vocabulary(path, vocab_size):
    import tokenizer
    from data.lab.token_share import PAPER_PRETRAINING, catalog_messages

    texts = [m for lang in PAPER_PRETRAINING for m in catalog_messages(lang, ids=lang == "en")]
    tokenizer.train(texts, vocab_size).save(path)


def run_children(scripts):
    """Start one child per script at once; (wall s, user CPU s, peak RSS MB, output) of each."""
    start, children = time.perf_counter(), []
    for script in scripts:
        children.append(subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True))
    results = []
    for child in children:
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage
        output = child.stdout.read()
        if status:
            raise SystemExit(f"error: a child failed:\n{output[-2000:]}")
        results.append((time.perf_counter() - start, usage.ru_utime, usage.ru_maxrss / 1024, output))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=300, help="MB of adapting text in all")
    ap.add_argument("--words_per_script", type=int, default=30_000, help="lexicon of each synthetic script and "
                    "language (distinct words; they set the memory)")
    ap.add_argument("--base_vocab", type=int, default=8192, help="base vocabulary size")
    ap.add_argument("--n_new", type=int, default=4096, help="merges to learn")
    ap.add_argument("--extend_max_bytes", type=int, default=None, help="the sample (default: adapt.py's default)")
    ap.add_argument("--skip_before", action="store_true", help="leave out the first row (the slowest)")
    args = ap.parse_args()
    import adapt

    cap = adapt.AdaptConfig.extend_max_bytes if args.extend_max_bytes is None else args.extend_max_bytes
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        paths = write_text(tmp, args.mb, args.words_per_script)
        size = sum(os.path.getsize(p) for p in paths.values())
        base = os.path.join(tmp, "base.tiktoken")
        base_vocabulary(base, args.base_vocab)
        paths_file = os.path.join(tmp, "paths.json")
        with open(paths_file, "w") as f:
            json.dump(paths, f)
        print(f"{size / 1e6:.0f} MB of adapting text in {len(paths)} languages and a {args.base_vocab}-token base "
              f"vocabulary, made in {time.perf_counter() - start:.0f} s; {args.n_new} merges; --extend_max_bytes "
              f"{cap:,}; {os.cpu_count()} CPUs (shared)\n", flush=True)

        def script(cache):
            return CHILD.format(root=ROOT, base=base, paths=paths_file, cache=cache, n_new=args.n_new, max_bytes=cap)

        print("| run | wall s | user CPU s | peak RSS MB |\n|---|---:|---:|---:|")
        rows = [("before: every expand run (all the text, no cache)", [script("")]),
                ("after: the first run (the sample, built and cached)", [script(f"{tmp}/a")]),
                ("after: every later run (reused)", [script(f"{tmp}/a")]),
                ("after: two runs started at once, fresh cache", [script(f"{tmp}/b")] * 2)]
        for label, scripts in rows[args.skip_before:]:
            results = run_children(scripts)
            for k, (wall, cpu, rss, output) in enumerate(results):
                said = "built" if "learned" in output else "reused" if "reused" in output else "-"
                print(f"| {label}{f' #{k + 1} ({said})' if len(results) > 1 else ''} | {wall:.1f} | {cpu:.1f} | "
                      f"{rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
