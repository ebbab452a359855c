"""
Byte-level BPE for the whole project: train a base vocabulary (rustbpe), extend it for new languages
(continued BPE in which every new token is reachable), encode/decode with tiktoken, load/save, and
render ChatML conversations to (ids, loss mask).

    python tokenizer.py train  --input en.txt xx.txt --vocab_size 8192 --out out/tokenizer/tokenizer.tiktoken
    python tokenizer.py extend --base out/tokenizer/tokenizer.tiktoken --input new.txt --n_new 4096 --out ext.tiktoken
    python tokenizer.py stats  --tokenizer base.tiktoken ext.tiktoken --input en.txt new.txt

Input text is streamed a chunk at a time (read_documents), so a corpus larger than memory trains
(rustbpe keeps only its unique pieces); --max_bytes trains on an even, seeded sample of each file
instead (sample_documents). The file is longer than the usual ~450 lines because reading text is
part of what the three commands share.

Id layout: byte tokens and base merges 0..R-1, the special tokens R..R+3 (SPECIAL_TOKENS order),
extension merges from R+4 on. An id is also its BPE rank, as in tiktoken: lower ids merge first.

File format (tokenizer.tiktoken), UTF-8 text, one token per line, no blank lines:
    <base64 of the token's bytes> <id>        every mergeable token: tiktoken's own rank format
    !special <name> <id>                      every special token (names contain no whitespace)
"!" is not a base64 character, so the two kinds of line cannot be confused. The ids of all lines
together must be exactly 0..n_vocab-1; Tokenizer.load checks this and more, naming file and line.

Why the extension is reachable by construction: tiktoken encodes a pre-tokenized piece by repeatedly
merging the adjacent pair whose concatenated bytes have the lowest rank. extend() keeps every unique
piece of the new text in exactly that state (its tiktoken encoding under the vocabulary learned so
far), so any adjacent pair it merges is one tiktoken meets too, and the new token - ranked after
everything before it - is what tiktoken makes of its own bytes. Appending an independently trained
BPE instead leaves tokens tiktoken can never produce (dead embedding rows).
"""
import argparse
import base64
import binascii
import heapq
import itertools
import os
import random
import re
import sys
import tempfile
import warnings
from collections import Counter, defaultdict

import numpy as np
import regex
import tiktoken
from tqdm import tqdm

# GPT-4's pre-tokenizer, used for training, extension and encoding alike: one pattern everywhere.
SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
# docs/method.md, "Finetuning": the paper uses a fixed system prompt but does not print it; this one is ours.
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer the user's request accurately and concisely."
SPECIAL_MARKER = "!special"
ROLES = ("system", "user", "assistant")
ANSWER_SPACE = " "  # put before every assistant content (render's docstring says why)


class Tokenizer:
    """A vocabulary (mergeable token bytes -> id, special name -> id) and its tiktoken encoder."""

    def __init__(self, mergeable_ranks, special_tokens):
        ranks, specials = dict(mergeable_ranks), dict(special_tokens)
        _check_vocabulary(ranks, specials)
        self.mergeable_ranks, self.special_tokens = ranks, specials
        self.n_vocab = len(ranks) + len(specials)
        self._bytes = [b""] * self.n_vocab  # id -> bytes; b"" for special tokens
        for b, i in ranks.items():
            self._bytes[i] = b
        self._byte_lengths = np.array([len(b) for b in self._bytes], dtype=np.int64)
        # Built from our ranks, never tiktoken.get_encoding (which downloads).
        self.enc = tiktoken.Encoding("afa_bpe", pat_str=SPLIT_PATTERN, mergeable_ranks=ranks,
                                     special_tokens=specials, explicit_n_vocab=self.n_vocab)
        self.eot_id, self.im_start_id, self.im_end_id, self.pad_id = (specials[s] for s in SPECIAL_TOKENS)

    def encode(self, text):
        """Ordinary text: a special token's spelling in the text is encoded as plain text."""
        return self.enc.encode_ordinary(text)

    def encode_batch(self, texts):
        return self.enc.encode_ordinary_batch(list(texts))

    def decode(self, ids):
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        if ids and (min(ids) < 0 or max(ids) >= self.n_vocab):
            bad = next(i for i in ids if not 0 <= i < self.n_vocab)
            raise ValueError(f"token id {bad} is outside the vocabulary (0..{self.n_vocab - 1})")
        return self.enc.decode(ids, errors="replace")  # broken UTF-8 becomes U+FFFD, never an error

    def token_bytes(self, token_id):
        if not 0 <= token_id < self.n_vocab:
            raise ValueError(f"token id {token_id} is outside the vocabulary (0..{self.n_vocab - 1})")
        return self._bytes[token_id]

    def token_byte_lengths(self):
        """UTF-8 bytes per id (0 for special tokens): the denominator of bits per byte."""
        return self._byte_lengths.copy()

    def save(self, path):
        lines = [f"{base64.b64encode(self._bytes[i]).decode()} {i}\n" for i in sorted(self.mergeable_ranks.values())]
        lines += [f"{SPECIAL_MARKER} {name} {i}\n" for name, i in sorted(self.special_tokens.items(), key=lambda x: x[1])]
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tokenizer-", suffix=".tmp")
        try:  # temp file + rename: a crash never leaves a half-written vocabulary behind
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.writelines(lines)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path):
        """Read a tokenizer file, rejecting anything tiktoken would silently accept but mis-encode."""
        with open(path, "rb") as f:
            data = f.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not UTF-8 text (bad byte at offset {e.start})") from None
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        if not lines:
            raise ValueError(f"{path}: empty tokenizer file")
        ranks, specials, id_line, bytes_line, special_line = {}, {}, {}, {}, {}
        for lineno, line in enumerate(lines, 1):
            at = f"{path}, line {lineno}"
            fields = line.split(" ")
            if fields[0] == SPECIAL_MARKER:
                if len(fields) != 3 or not fields[1] or not _is_id(fields[2]):
                    raise ValueError(f"{at}: malformed special-token line {line[:80]!r}, "
                                     f"expected '{SPECIAL_MARKER} <name> <id>'")
                name, i = fields[1], int(fields[2])
                if name in specials:
                    raise ValueError(f"{at}: special token {name!r} already defined on line {special_line[name]}")
                specials[name], special_line[name] = i, lineno
            else:
                if len(fields) != 2 or not _is_id(fields[1]):
                    raise ValueError(f"{at}: malformed line {line[:80]!r}, expected '<base64 token bytes> <id>'")
                try:
                    b = base64.b64decode(fields[0], validate=True)
                except binascii.Error:
                    b = None
                if not b or base64.b64encode(b).decode() != fields[0]:
                    raise ValueError(f"{at}: bad base64 token {fields[0][:40]!r}")
                if b in ranks:
                    raise ValueError(f"{at}: duplicate token bytes {b!r}, already on line {bytes_line[b]}")
                i = int(fields[1])
                ranks[b], bytes_line[b] = i, lineno
            if i in id_line:
                raise ValueError(f"{at}: id {i} collides with the id on line {id_line[i]}")
            id_line[i] = lineno
        missing = next((i for i in range(len(id_line)) if i not in id_line), None)
        if missing is not None:
            top = max(id_line)
            raise ValueError(f"{path}: ids must run 0..{len(id_line) - 1} without gaps, but id {missing} is "
                             f"missing (line {id_line[top]} has id {top})")
        try:
            return cls(ranks, specials)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


def _is_id(s):
    return s.isascii() and s.isdigit()


def _check_vocabulary(ranks, specials):
    """The invariants every Tokenizer holds; the loader checks the same with file/line context."""
    ids = list(ranks.values()) + list(specials.values())
    if any(not isinstance(b, bytes) or not b for b in ranks):
        raise ValueError("every mergeable token must be non-empty bytes")
    if any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in ids):
        raise ValueError("token ids must be non-negative integers")
    id_set = set(ids)
    if len(id_set) != len(ids):
        raise ValueError("two tokens share an id (or a special token collides with a mergeable token)")
    missing = next((i for i in range(len(ids)) if i not in id_set), None)
    if missing is not None:
        raise ValueError(f"ids must run 0..{len(ids) - 1} without gaps, but id {missing} is missing")
    lost = [b for b in range(256) if bytes([b]) not in ranks]
    if lost:  # without all 256 byte tokens some text cannot be encoded at all
        raise ValueError(f"{len(lost)} of the 256 single-byte tokens are missing (e.g. byte {lost[0]})")
    for name in specials:
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise ValueError(f"bad special token name {name!r}: non-empty, no whitespace")
    absent = [s for s in SPECIAL_TOKENS if s not in specials]
    if absent:
        raise ValueError(f"special token(s) {', '.join(absent)} missing")


# ----------------------------------------------------------------------------------------------
# BPE on token ids, merging by bytes exactly as tiktoken does

def _merge_parts(parts, ranks, tok_bytes):
    """tiktoken's merge loop without its whole-piece shortcut: repeatedly merge the adjacent pair whose
    concatenated bytes have the lowest rank (leftmost on ties) until no pair is a token."""
    parts = list(parts)
    inf = float("inf")
    pair_rank = [ranks.get(tok_bytes[a] + tok_bytes[b], inf) for a, b in zip(parts, parts[1:])]
    while pair_rank:
        i = min(range(len(pair_rank)), key=pair_rank.__getitem__)
        if pair_rank[i] == inf:
            break
        parts[i:i + 2] = [pair_rank[i]]  # a token's rank is its id
        del pair_rank[i]
        if i > 0:
            pair_rank[i - 1] = ranks.get(tok_bytes[parts[i - 1]] + tok_bytes[parts[i]], inf)
        if i < len(pair_rank):
            pair_rank[i] = ranks.get(tok_bytes[parts[i]] + tok_bytes[parts[i + 1]], inf)
    return parts


def _bpe(data, ranks, tok_bytes):
    return _merge_parts([ranks[bytes([c])] for c in data], ranks, tok_bytes)


def is_reachable(tok, token_id):
    """True if merge-by-merge BPE on the token's own bytes ends in exactly this token, i.e. tiktoken can
    produce it inside any piece (not only through its shortcut for a piece that is a whole token)."""
    data = tok.token_bytes(token_id)
    if not data:
        raise ValueError(f"token id {token_id} is a special token; only mergeable tokens have merges")
    return _bpe(data, tok.mergeable_ranks, tok._bytes) == [token_id]


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
        if len(b) == 1 or (b not in ranks and len(_bpe(b, ranks, tok_bytes)) == 2):
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
    every base token reachable, such states have two properties (each shown by restricting tiktoken's
    merge loop on a piece to the bytes of a few adjacent tokens, where it behaves as on those bytes
    alone): a byte string is always split the same way, and merging a pair never lets its neighbours
    merge into an older token. So one merge of the pair (a, b) everywhere keeps the invariant, and the
    new token is what tiktoken makes of its own bytes."""
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
    counts, where = _count_pairs(words, freqs)
    if any(spells(p) in ranks for p in counts):  # only if `regex` split a text unlike tiktoken
        for w, word in enumerate(words):
            words[w] = "".join(map(chr, _merge_parts(list(map(ord, word)), ranks, tok_bytes)))
        counts, where = _count_pairs(words, freqs)
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
            words[w], removed, added = _merge_word(words[w], pair, new_char)
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


def _count_pairs(words, freqs):
    """Pair counts over all words, and for every pair the words holding it."""
    counts, where = Counter(), defaultdict(set)
    for w, (word, f) in enumerate(zip(words, freqs)):
        for k in range(len(word) - 1):
            counts[word[k:k + 2]] += f
            where[word[k:k + 2]].add(w)
    return counts, where


def _merge_word(word, ab, t):
    """A word holding the pair ab with every ab (leftmost first) replaced by the token t, as tiktoken
    merges it, and the pair occurrences it lost and gained. Only pairs beside a merge site change:
    (x, a) -> (x, t) on the left, (b, y) -> (t, y) on the right, and between two adjacent sites
    (b, a) -> (t, t), counted once."""
    s = word.find(ab)
    if word.find(ab, s + 2) < 0:  # one site, the common case
        x, y = word[s - 1:s], word[s + 2:s + 3]  # "" at the edges
        removed = ([x + ab[0]] if x else []) + ([ab[1] + y] if y else [])
        return word[:s] + t + word[s + 2:], removed, ([x + t] if x else []) + ([t + y] if y else [])
    sites = []
    while s >= 0:
        sites.append(s)
        s = word.find(ab, s + 2)
    removed, added, n = [], [], len(word)
    for k, s in enumerate(sites):
        if s > 0 and (k == 0 or sites[k - 1] + 2 != s):
            removed.append(word[s - 1:s + 1])
            added.append(word[s - 1] + t)
        if s + 2 < n:
            removed.append(word[s + 1:s + 3])
            added.append(t + t if k + 1 < len(sites) and sites[k + 1] == s + 2 else t + word[s + 2])
    return word.replace(ab, t), removed, added


# ----------------------------------------------------------------------------------------------
# ChatML

def render(tok, messages, system_prompt=DEFAULT_SYSTEM_PROMPT):
    """A conversation as ids and a loss mask that is 1 exactly on assistant content and its <|im_end|>.

        <|endoftext|><|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{...}<|im_end|>\\n
        <|im_start|>assistant\\n {...}<|im_end|>\\n ...

    It starts with <|endoftext|> because pretraining documents do. An assistant's content is encoded
    after one space (ANSWER_SPACE): an answer continues the user's text the way a word continues a
    sentence in pretraining text, so its first word gets the token it has inside a sentence (" yes", not
    "yes", which the lab's text never holds); SentencePiece tokenizers such as Llama's put that space there
    themselves. Without a system message, one with system_prompt is put first (system_prompt=None: no
    system message)."""
    messages = _check_messages(messages, system_prompt)
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("messages: no assistant message, so nothing to learn (the loss mask would be all 0)")
    ids, mask = [tok.eot_id], [0]
    for m in messages:
        learn = int(m["role"] == "assistant")
        for part, learned in zip(_message_parts(tok, m), (0, learn, 0)):
            ids += part
            mask += [learned] * len(part)
    return ids, mask


def render_prompt(tok, messages, system_prompt=DEFAULT_SYSTEM_PROMPT):
    """The ids render() gives for these messages, followed by '<|im_start|>assistant\\n' to generate from."""
    messages = _check_messages(messages, system_prompt)
    if messages[-1]["role"] != "user":
        raise ValueError(f"messages[-1]: a prompt must end with a user message, not {messages[-1]['role']!r}")
    ids = [tok.eot_id]
    for m in messages:
        for part in _message_parts(tok, m):
            ids += part
    return ids + [tok.im_start_id] + tok.encode("assistant\n")


def _message_parts(tok, m):
    """(header, content + <|im_end|>, newline): role and content are encoded apart, so the header
    tokens never depend on the content (render_prompt's ids are always a prefix of render's)."""
    content = ANSWER_SPACE + m["content"] if m["role"] == "assistant" else m["content"]
    return [tok.im_start_id] + tok.encode(m["role"] + "\n"), tok.encode(content) + [tok.im_end_id], tok.encode("\n")


def _check_messages(messages, system_prompt):
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...}")
    for k, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"messages[{k}]: expected a dict with 'role' and 'content', got {m!r:.80}")
        if m["role"] not in ROLES:
            raise ValueError(f"messages[{k}]: unknown role {m['role']!r} (expected one of {', '.join(ROLES)})")
        if not isinstance(m["content"], str) or not m["content"].strip():
            raise ValueError(f"messages[{k}]: content must be a non-empty string, got {m['content']!r:.80}")
        if m["role"] == "system" and k > 0:
            raise ValueError(f"messages[{k}]: a system message may only come first")
    if messages[0]["role"] != "system" and system_prompt:
        messages = [{"role": "system", "content": system_prompt}] + list(messages)
    return messages


# ----------------------------------------------------------------------------------------------
# Reading text: documents separated by a blank line, streamed a chunk at a time

# Two line ends in a row, a line end being "\r\n", "\r" or "\n" as in Python's universal newlines: the
# split is on the raw bytes (so every document's byte offset is known for sampling and for errors) yet
# gives exactly the documents of open(path).read().split("\n\n").
_BLANK_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n){2}")
_WINDOW_BYTES = 1 << 16  # --max_bytes reads the file in windows of about this much text, evenly spread


def read_documents(path, chunk_bytes=1 << 20):
    """The documents of a UTF-8 text file, one at a time: its text split on "\\n\\n" (universal newlines)
    without the whitespace-only pieces. Only about a chunk (or one document, if longer) is in memory."""
    with _open_input(path) as f:
        for at, raw in _raw_documents(f, 0, True, chunk_bytes):
            doc = _decode(raw, path, at)
            if doc.strip():
                yield doc


def sample_documents(path, max_bytes, seed=0, chunk_bytes=1 << 20):
    """Whole documents of path, at most max_bytes of them, taken evenly through the file: the file is
    cut into equal segments and each segment gives its share of documents from a seeded random point
    on (a document counts for the segment it starts in, so none is taken twice). A file no larger
    than max_bytes is read whole. Same seed, same file: same documents."""
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    size = os.path.getsize(path)
    if size <= max_bytes:
        yield from read_documents(path, chunk_bytes)
        return
    rng = random.Random(seed)
    n_windows = min(4096, max(16, max_bytes // _WINDOW_BYTES))
    taken = 0
    with _open_input(path) as f:
        for k in range(n_windows):
            begin, end = k * size // n_windows, (k + 1) * size // n_windows
            allowed = max_bytes * (k + 1) // n_windows  # a window that took less leaves the rest to the next
            start = begin + rng.randrange(max(1, end - begin - max_bytes // n_windows))
            read_size = min(chunk_bytes, 2 * (allowed - taken) + 4096)
            for at, raw in _raw_documents(f, start, start == 0, read_size):
                if at >= end or taken + len(raw) > allowed:
                    break
                doc = _decode(raw, path, at)
                if doc.strip():
                    taken += len(raw)
                    yield doc


def _raw_documents(f, position, at_boundary, chunk_bytes):
    """(byte offset, raw bytes) of the documents of a binary file from position on, blank ones included.
    Not at_boundary: position may be inside a document, so the text up to the first blank line is
    skipped, scanning from a byte that is not a line end (where the file's own split would scan too)."""
    f.seek(position)
    buffer, buffer_at, skipping_line_ends = b"", position, not at_boundary
    while True:
        chunk = f.read(max(chunk_bytes, len(buffer)))  # at least as much as is held: long documents stay linear
        buffer += chunk
        if skipping_line_ends:
            stripped = buffer.lstrip(b"\r\n")
            buffer_at, buffer = buffer_at + len(buffer) - len(stripped), stripped
            skipping_line_ends = not buffer
            if skipping_line_ends and chunk:
                continue
        # a "\r" at the end may be the start of "\r\n": scan without it until the next chunk shows
        end = len(buffer) - 1 if chunk and buffer.endswith(b"\r") else len(buffer)
        begin = 0
        for m in _BLANK_LINE.finditer(buffer, 0, end):
            if at_boundary:
                yield buffer_at + begin, buffer[begin:m.start()]
            at_boundary, begin = True, m.end()
        if not chunk:
            if at_boundary:
                yield buffer_at + begin, buffer[begin:]
            return
        buffer, buffer_at = buffer[begin:], buffer_at + begin


def _decode(raw, path, at):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SystemExit(f"error: {path} is not UTF-8 text (bad byte at offset {at + e.start})")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _open_input(path):
    try:
        return open(path, "rb")
    except OSError as e:
        raise SystemExit(f"error: cannot read {path}: {e.strerror}")


def corpus_documents(paths, max_bytes=None, seed=0):
    """The documents of several files in turn; with max_bytes, an even sample of max_bytes // len(paths)
    bytes from each (every language its share, whatever the sizes of the files)."""
    for path in paths:
        if max_bytes is None:
            yield from read_documents(path)
        else:
            yield from sample_documents(path, max_bytes // len(paths), seed)


# ----------------------------------------------------------------------------------------------
# Command line

def _load(path):
    try:
        return Tokenizer.load(path)
    except OSError as e:
        raise SystemExit(f"error: cannot read tokenizer {path}: {e.strerror}")
    except ValueError as e:
        raise SystemExit(f"error: corrupt tokenizer file: {e}")


def _short_names(paths):
    """The shortest trailing path parts that tell the files apart (en/val.txt, xx/val.txt)."""
    parts = [os.path.normpath(p).split(os.sep) for p in paths]
    for k in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-k:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return list(paths)


def stats_table(tokenizers, inputs):
    """Markdown table of UTF-8 bytes per token: a row per input file, a column per vocabulary. The
    documents of an input may be any iterable (a stream): each is read once."""
    tok_names, in_names = _short_names(list(tokenizers)), _short_names(list(inputs))
    rows = ["| input | " + " | ".join(f"{n} ({tok.n_vocab})" for n, tok in zip(tok_names, tokenizers.values())) + " |",
            "|---|" + "---:|" * len(tokenizers)]
    totals = [[0, 0] for _ in tokenizers]
    for name, docs in zip(in_names, inputs.values()):
        n_bytes, n_tokens = _bytes_and_tokens(list(tokenizers.values()), docs)
        for t, n in zip(totals, n_tokens):
            t[0], t[1] = t[0] + n_bytes, t[1] + n
        rows.append(f"| {name} | " + " | ".join(f"{n_bytes / n:.3f}" if n else "-" for n in n_tokens) + " |")
    if len(inputs) > 1:
        rows.append("| all | " + " | ".join(f"{b / n:.3f}" if n else "-" for b, n in totals) + " |")
    return "\n".join(rows)


def _bytes_and_tokens(tokenizers, docs, batch_docs=1024):
    """UTF-8 bytes of the documents and their number of tokens under each tokenizer, a batch at a time."""
    docs, n_bytes, n_tokens = iter(docs), 0, [0] * len(tokenizers)
    while batch := list(itertools.islice(docs, batch_docs)):
        n_bytes += sum(len(d.encode("utf-8")) for d in batch)
        for k, tok in enumerate(tokenizers):
            n_tokens[k] += sum(map(len, tok.encode_batch(batch)))
    return n_bytes, n_tokens


def main(argv=None):
    parser = argparse.ArgumentParser(description="Byte-level BPE: train a base vocabulary, extend it for new "
                                     "languages, or compare bytes per token. Inputs are UTF-8 text files with "
                                     "documents separated by blank lines, read a chunk at a time.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a base vocabulary with rustbpe")
    p.add_argument("--input", nargs="+", required=True, help="text files to train on")
    p.add_argument("--vocab_size", type=int, required=True, help=f"total ids, {len(SPECIAL_TOKENS)} special tokens included")
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
        raise SystemExit(f"error: --max_bytes must be at least one byte per input file, got {args.max_bytes}")
    if getattr(args, "stats_bytes", 0) and not args.stats_bytes >= n_files:
        raise SystemExit(f"error: --stats_bytes must be 0 (skip) or at least one byte per input file ({n_files}), "
                         f"got {args.stats_bytes}")
    for path in args.input:  # fail before any work, not when the stream reaches a bad file
        _open_input(path).close()
    if args.command == "stats":
        tokenizers = {path: _load(path) for path in args.tokenizer}
        inputs = {path: corpus_documents([path], args.max_bytes, args.seed) for path in args.input}
        print(stats_table(tokenizers, inputs))
        return
    if args.command == "train" and args.vocab_size < 256 + len(SPECIAL_TOKENS):
        raise SystemExit(f"error: --vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (256 bytes + "
                         f"{len(SPECIAL_TOKENS)} special tokens), got {args.vocab_size}")
    if args.command == "extend" and args.n_new <= 0:
        raise SystemExit(f"error: --n_new must be positive, got {args.n_new}")
    base = _load(args.base) if args.command == "extend" else None  # a bad base fails before reading text
    docs = corpus_documents(args.input, args.max_bytes, args.seed)  # streamed: read while training
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tok = train(docs, args.vocab_size) if args.command == "train" else extend(base, docs, args.n_new)
        except ValueError as e:
            if str(e).startswith("empty corpus"):
                raise SystemExit(f"error: empty corpus: no text in {', '.join(args.input)}")
            raise SystemExit(f"error: {e}")
    for w in caught:  # e.g. fewer merges than asked: said plainly, and the smaller vocabulary is kept
        print(f"warning: {w.message}", file=sys.stderr)
    tok.save(args.out)
    print(f"wrote {args.out}: {tok.n_vocab} ids", end="")
    if args.stats_bytes:  # a sample: re-encoding gigabytes only to print one number is not worth it
        n_bytes, (n_tokens,) = _bytes_and_tokens([tok], corpus_documents(args.input, args.stats_bytes, args.seed))
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
