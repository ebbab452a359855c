"""
Byte-level BPE for the whole project, the command line: train a base vocabulary (rustbpe), extend it for new
languages (continued BPE in which every new token is reachable), compare bytes per token.

    python tokenizer.py train  --input en.txt xx.txt --vocab_size 8192 --out out/tokenizer/tokenizer.tiktoken
    python tokenizer.py extend --base out/tokenizer/tokenizer.tiktoken --input new.txt --n_new 4096 --out ext.tiktoken
    python tokenizer.py stats  --tokenizer base.tiktoken ext.tiktoken --input en.txt new.txt

Text is streamed a chunk at a time (pipeline/documents.py), so a corpus larger than memory trains (rustbpe
keeps only its unique pieces); --max_bytes trains on an even, seeded sample of each file instead. ChatML,
the conversation format built on the special tokens, is pipeline/chat.py.

The Tokenizer class itself (encode/decode, the tokenizer.tiktoken file format, load/save) is
pipeline/vocabulary.py, which the stages load without this file.

Why the extension is reachable by construction: tiktoken encodes a pre-tokenized piece by repeatedly
merging the adjacent pair whose concatenated bytes have the lowest rank. extend() keeps every unique
piece of the new text in exactly that state, so any pair it merges is one tiktoken meets too, and the
new token is what tiktoken makes of its own bytes. Appending an independently trained BPE instead
leaves tokens tiktoken can never produce (dead embedding rows).
"""
import argparse
import heapq
import sys
import warnings
from collections import Counter, defaultdict

import regex
from tqdm import tqdm

from pipeline import bpe
from pipeline.documents import bytes_and_tokens, corpus_documents, fail, open_input, stats_table
from pipeline.vocabulary import SPECIAL_TOKENS, SPLIT_PATTERN, Tokenizer

# ----------------------------------------------------------------------------------------------
# Reachability: which tokens tiktoken can produce (pipeline/bpe.py merges exactly as tiktoken does)

def is_reachable(tok, token_id):
    """True if merge-by-merge BPE on the token's own bytes ends in exactly this token, i.e. tiktoken can
    produce it inside any piece (not only through its shortcut for a piece that is a whole token)."""
    data = tok.token_bytes(token_id)
    if not data:
        raise ValueError(f"token id {token_id} is a special token; only mergeable tokens have merges")
    return bpe.encode_bytes(data, tok.mergeable_ranks, tok._bytes) == [token_id]


def unreachable_tokens(tok):
    """Ids of all mergeable tokens that tiktoken can never produce inside a longer piece (should be [])."""
    return [i for i in sorted(tok.mergeable_ranks.values()) if not is_reachable(tok, i)]


# ----------------------------------------------------------------------------------------------
# Training a base vocabulary

def train(texts, vocab_size):
    """A base vocabulary of vocab_size ids (special tokens included) trained with rustbpe."""
    import rustbpe  # only training needs it
    n_special = len(SPECIAL_TOKENS)
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 256 + n_special:
        raise ValueError(f"vocab_size must be an integer >= {256 + n_special} (256 bytes + {n_special} special "
                         f"tokens), got {vocab_size!r}")
    n_docs = 0

    def documents():
        nonlocal n_docs
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"train() expects strings, got {type(text).__name__}")
            if text:
                n_docs += 1
                yield text

    trainer = rustbpe.Tokenizer()
    trainer.train_from_iterator(documents(), vocab_size - n_special, pattern=SPLIT_PATTERN)
    if n_docs == 0:
        raise ValueError("empty corpus: no text to train a vocabulary on")
    # rustbpe merges pairs of ids, tiktoken merges by bytes; the two agree in practice, but a token
    # tiktoken cannot reach (or a repeated byte string) would be a dead row, so keep only those that
    # merge-by-merge BPE rebuilds from the tokens kept before them, renumbered without gaps.
    learned = sorted(trainer.get_mergeable_ranks(), key=lambda x: x[1])
    ranks, tok_bytes = {}, []
    for b, _ in learned:
        if len(b) == 1 or (b not in ranks and len(bpe.encode_bytes(b, ranks, tok_bytes)) == 2):
            ranks[b] = len(tok_bytes)
            tok_bytes.append(b)
    dropped = len(learned) - len(ranks)
    n_merges = len(ranks) - 256
    if n_merges < vocab_size - n_special - 256:
        warnings.warn(f"train: the text supports only {n_merges} of the {vocab_size - n_special - 256} merges "
                      f"requested ({dropped} dropped as unreachable); the vocabulary has {len(ranks) + n_special} "
                      f"ids instead of {vocab_size}", stacklevel=2)
    specials = {s: len(ranks) + k for k, s in enumerate(SPECIAL_TOKENS)}
    return Tokenizer(ranks, specials)


# ----------------------------------------------------------------------------------------------
# Extending a vocabulary: continued BPE over unique pieces, incremental pair counts, lazy-deletion heap

def extend(base, texts, n_new):
    """base + n_new merges learned on texts. Base ids (specials too) stay; new ids follow base.n_vocab.

    Every piece of the text is kept as its tiktoken encoding under the vocabulary learned so far. With
    every base token reachable, such states have two properties (restrict tiktoken's merge loop to the
    bytes of a few adjacent tokens: it behaves as on those bytes alone): a byte string is always split
    the same way, and merging a pair never lets its neighbours merge into an older token. So one merge
    of the pair everywhere keeps the invariant, and the new token is what tiktoken makes of its bytes."""
    if not isinstance(n_new, int) or isinstance(n_new, bool) or n_new <= 0:
        raise ValueError(f"n_new must be a positive integer, got {n_new!r}")
    if base.n_vocab + n_new > 0x110000:  # ids are held as characters below
        raise ValueError(f"n_new={n_new} would give more than {0x110000} ids")
    dead = unreachable_tokens(base)
    if dead:
        raise ValueError(f"the base vocabulary has {len(dead)} tokens tiktoken can never produce (e.g. id {dead[0]}); "
                         f"extend a vocabulary made by train() or extend()")
    # 1. Unique pre-tokenized pieces with their frequencies; merges never cross a piece boundary.
    split = regex.compile(SPLIT_PATTERN)
    piece_freq = Counter()
    for text in tqdm(texts, desc="counting pieces", unit=" docs", disable=None):
        if not isinstance(text, str):
            raise TypeError(f"extend() expects strings, got {type(text).__name__}")
        piece_freq.update(split.findall(text))
    if not piece_freq:
        raise ValueError("empty corpus: no text to extend the vocabulary with")
    # 2. Each piece ("word") starts as its tiktoken encoding under the base vocabulary, held as a str
    # with one character per token id: str.find/replace search and merge pairs in C, and a pair is a
    # 2-character string.
    ranks, tok_bytes = dict(base.mergeable_ranks), list(base._bytes)  # grow as tokens are learned
    words = ["".join(map(chr, base.enc.encode_ordinary(p))) for p in piece_freq]
    freqs = list(piece_freq.values())
    del piece_freq
    spells = lambda pair: tok_bytes[ord(pair[0])] + tok_bytes[ord(pair[1])]
    counts, where = bpe.count_pairs(words, freqs)
    if any(spells(p) in ranks for p in counts):  # only if `regex` split a text unlike tiktoken
        for w, word in enumerate(words):
            words[w] = "".join(map(chr, bpe.merge(list(map(ord, word)), ranks, tok_bytes)))
        counts, where = bpe.count_pairs(words, freqs)
    heap = [(-c, p) for p, c in counts.items()]
    heapq.heapify(heap)
    # 3. Merge the most frequent pair n_new times; only the words that hold it are looked at.
    n_learned = 0
    bar = tqdm(total=n_new, desc="learning merges", unit=" merges", disable=None)
    while n_learned < n_new and heap:
        neg, pair = heapq.heappop(heap)
        count = counts.get(pair, 0)
        if count != -neg:  # stale entry: counts only fall between pushes, so re-queue the lower count
            if 0 < count < -neg:
                heapq.heappush(heap, (-count, pair))
            continue
        new_bytes, new_char = spells(pair), chr(len(tok_bytes))
        if new_bytes in ranks:  # impossible by the invariant above; never write a duplicate token
            raise RuntimeError(f"extend: pair {pair!r} spells the existing token {ranks[new_bytes]}")
        ranks[new_bytes] = len(tok_bytes)
        tok_bytes.append(new_bytes)
        n_learned += 1
        bar.update()
        del counts[pair]
        # Pair occurrences lost and gained: plain lists for words seen once (counted in C by Counter),
        # a weighted dict for the others.
        lost, gained, weighted = [], [], defaultdict(int)
        for w in where.pop(pair):
            if pair not in words[w]:
                continue  # a stale entry: the word no longer holds the pair
            words[w], removed, added = bpe.merge_word(words[w], pair, new_char)
            for p in added:
                where[p].add(w)
            if freqs[w] == 1:
                lost += removed
                gained += added
            else:
                for p in removed:
                    weighted[p] -= freqs[w]
                for p in added:
                    weighted[p] += freqs[w]
        delta = Counter(gained)
        delta.subtract(Counter(lost))
        for p, d in weighted.items():
            delta[p] += d
        for p, d in delta.items():
            if d and p != pair:
                counts[p] += d
                if not counts[p]:
                    del counts[p]
                if d > 0:
                    heapq.heappush(heap, (-counts[p], p))
    bar.close()
    if n_learned < n_new:
        warnings.warn(f"extend: the text supports only {n_learned} of the {n_new} new merges requested (no "
                      f"adjacent pairs left); the vocabulary has {len(tok_bytes)} ids", stacklevel=2)
    return Tokenizer({b: i for i, b in enumerate(tok_bytes) if b}, base.special_tokens)


# ----------------------------------------------------------------------------------------------
# Command line

def main(argv=None):
    parser = argparse.ArgumentParser(description="Byte-level BPE: train a base vocabulary, extend it for new "
                                     "languages, or compare bytes per token. Inputs are UTF-8 text files with "
                                     "documents separated by blank lines, read a chunk at a time.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a base vocabulary with rustbpe")
    p.add_argument("--input", nargs="+", required=True, help="text files to train on")
    p.add_argument("--vocab_size", type=int, required=True,
                   help=f"total ids, {len(SPECIAL_TOKENS)} special tokens included")
    p.add_argument("--out", required=True, help="tokenizer file to write (e.g. out/tokenizer/tokenizer.tiktoken)")
    _sample_arguments(p)
    p = sub.add_parser("extend", help="learn new merges on new-language text on top of a base vocabulary")
    p.add_argument("--base", required=True, help="tokenizer file to extend")
    p.add_argument("--input", nargs="+", required=True, help="new-language text files")
    p.add_argument("--n_new", type=int, required=True, help="number of new tokens (merges) to learn")
    p.add_argument("--out", required=True, help="tokenizer file to write")
    _sample_arguments(p)
    p = sub.add_parser("stats", help="print a markdown table of bytes per token (higher = shorter sequences)")
    p.add_argument("--tokenizer", nargs="+", required=True, help="tokenizer files (table columns)")
    p.add_argument("--input", nargs="+", required=True, help="text files (table rows)")
    p.add_argument("--max_bytes", type=int, default=None,
                   help="read an even, seeded sample of at most this many bytes of each file (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --max_bytes sample")
    args = parser.parse_args(argv)

    n_files = len(args.input)
    if args.max_bytes is not None and args.max_bytes < (1 if args.command == "stats" else n_files):
        fail(f"--max_bytes must be at least one byte per input file, got {args.max_bytes}")
    if getattr(args, "stats_bytes", 0) and not args.stats_bytes >= n_files:
        fail(f"--stats_bytes must be 0 (skip) or at least one byte per input file ({n_files}), "
                         f"got {args.stats_bytes}")
    for path in args.input:  # fail before any work, not when the stream reaches a bad file
        open_input(path).close()
    if args.command == "stats":
        tokenizers = {path: Tokenizer.load(path) for path in args.tokenizer}
        inputs = {path: corpus_documents([path], args.max_bytes, args.seed) for path in args.input}
        print(stats_table(tokenizers, inputs))
        return
    base = Tokenizer.load(args.base) if args.command == "extend" else None  # a bad base fails before reading text
    docs = corpus_documents(args.input, args.max_bytes, args.seed)  # streamed: read while training
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tok = train(docs, args.vocab_size) if args.command == "train" else extend(base, docs, args.n_new)
        except ValueError as e:
            if str(e).startswith("empty corpus"):
                fail(f"empty corpus: no text in {', '.join(args.input)}")
            fail(str(e))
    for w in caught:  # e.g. fewer merges than asked: said plainly, and the smaller vocabulary is kept
        print(f"warning: {w.message}", file=sys.stderr)
    tok.save(args.out)
    print(f"wrote {args.out}: {tok.n_vocab} ids", end="")
    if args.stats_bytes:  # a sample: re-encoding gigabytes only to print one number is not worth it
        n_bytes, (n_tokens,) = bytes_and_tokens([tok], corpus_documents(args.input, args.stats_bytes, args.seed))
        print(f"; {n_bytes / n_tokens:.3f} bytes per token on {n_bytes / 1e6:.1f} MB of the input", end="")
    print()


def _sample_arguments(p):
    p.add_argument("--max_bytes", type=int, default=None,
                   help="use an even, seeded sample of at most this many bytes of the input, each file giving "
                        "an equal share (max_bytes / number of files) from throughout the file (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --max_bytes and --stats_bytes samples")
    p.add_argument("--stats_bytes", type=int, default=10_000_000,
                   help="print bytes per token on an even sample of this many bytes of the input (0: skip)")


if __name__ == "__main__":
    main()
