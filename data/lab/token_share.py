"""
How much of an adapting language's text is still written with the base vocabulary after [AFA]'s
vocabulary expansion: train a base vocabulary on the pretraining languages, add merges learned on the
adapting languages (as adapt.py does), and count the share of token occurrences that are base tokens.

    python data/lab/token_share.py lab --data_dir out/lab [--vocab_size 2048]
    python data/lab/token_share.py gettext [--vocab_size 2048]   # real text: the installed .mo catalogs

The second form is a stand-in for real corpora on a machine without any: the translated messages of
the gettext catalogs under /usr/share/locale (English: the message ids), at most --max_bytes per
language, with the paper's pretraining and adapting languages. Numbers: data/lab/README.md.
"""

import argparse
import gettext
import glob
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tokenizer
from pipeline import documents

PAPER_PRETRAINING = "en es it cs fi ar zh_CN hi ru".split()
PAPER_ADAPTING = "fr pt nl da nb pl tr ja ko th mr gu hu se".split()


def base_share(base, merged, texts):
    """(share of token occurrences that are base-vocabulary ids, number of tokens) of texts under merged."""
    old = total = 0
    for text in texts:
        ids = merged.encode(text)
        old += sum(i < base.n_vocab for i in ids)
        total += len(ids)
    return old / max(1, total), total


def catalog_messages(lang, ids=False):
    """The translated messages (or, with ids, the English message ids) of every .mo catalog of a locale."""
    out = []
    for path in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")):
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog
        except (OSError, ValueError, UnicodeDecodeError):
            continue  # a catalog in a legacy encoding or a broken file: skipped
        out += [k if ids else v for k, v in catalog.items() if isinstance(k, str) and k and isinstance(v, str) and v]
    return out


def capped(texts, max_bytes):
    out, n = [], 0
    for t in texts:
        if n >= max_bytes:
            break
        out.append(t)
        n += len(t.encode("utf-8"))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Share of base-vocabulary tokens in adapting text after vocabulary "
                                 "expansion.")
    ap.add_argument("source", choices=["lab", "gettext"], help="the lab's text, or the installed gettext catalogs")
    ap.add_argument("--data_dir", default="out/lab", help="lab: the folder with manifest.json")
    ap.add_argument("--vocab_size", type=int, default=2048, help="base vocabulary; half as many merges are added")
    ap.add_argument("--max_bytes", type=int, default=300_000, help="gettext: bytes per language")
    args = ap.parse_args(argv)
    if args.vocab_size < 512:
        documents.fail(f"--vocab_size must be at least 512 (got {args.vocab_size})")
    if args.source == "lab":
        manifest = documents.read_manifest(args.data_dir)
        groups = manifest["groups"]
        train = documents.language_files(args.data_dir, [e["code"] for e in manifest["languages"]], "train")
        texts = {lang: list(documents.read_documents(path)) for lang, path in train.items()}
        pretraining, measured = groups["pretraining"], {g: ls for g, ls in groups.items() if g != "pretraining"}
    else:
        texts = {lang: capped(catalog_messages(lang), args.max_bytes) for lang in PAPER_PRETRAINING + PAPER_ADAPTING}
        texts["en"] = capped(catalog_messages("fr", ids=True), args.max_bytes)
        pretraining = [lang for lang in PAPER_PRETRAINING if texts[lang]]
        measured = {"adapting": [lang for lang in PAPER_ADAPTING if texts[lang]]}
        if not pretraining or not measured["adapting"]:
            documents.fail("no gettext catalogs under /usr/share/locale for the paper's languages")
    base = tokenizer.train([t for lang in pretraining for t in texts[lang]], args.vocab_size)
    print(f"base: {args.vocab_size} tokens on {', '.join(pretraining)}")
    for group, langs in measured.items():  # merges learned on the group's text, as adapt.py learns them
        merged = tokenizer.extend(base, [t for lang in langs for t in texts[lang]], args.vocab_size // 2)
        shares = {lang: base_share(base, merged, texts[lang]) for lang in langs}
        for lang, (share, n) in shares.items():
            print(f"{group:14s} {lang:6s} base-token share {share:.3f} ({n:,} tokens)")
        print(f"{group:14s} mean   {sum(s for s, _ in shares.values()) / len(shares):.3f}")


if __name__ == "__main__":
    main()
