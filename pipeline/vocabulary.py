"""
The Tokenizer class: a byte-level BPE vocabulary (mergeable token bytes -> id, special name -> id), its
tiktoken encoder, and the tokenizer.tiktoken file it is saved in. Every stage loads one (runtime.py, the data
scripts' --tokenize); tokenizer.py, the command line, trains a base vocabulary and extends it.

Id layout: byte tokens and base merges 0..R-1, the special tokens R..R+3 (SPECIAL_TOKENS order),
extension merges from R+4 on. An id is also its BPE rank, as in tiktoken: lower ids merge first.

File format (tokenizer.tiktoken), UTF-8 text, one token per line, no blank lines:
    <base64 of the token's bytes> <id>        every mergeable token: tiktoken's own rank format
    !special <name> <id>                      every special token (names contain no whitespace)
"!" is not a base64 character, so the two kinds of line cannot be confused. The ids of all lines
together must be exactly 0..n_vocab-1; Tokenizer.load checks this and more, naming file and line.
"""
import base64
import binascii
import hashlib

import numpy as np
import tiktoken

from pipeline.documents import atomic_open, fail

# GPT-4's pre-tokenizer, used for training, extension and encoding alike: one pattern everywhere.
SPLIT_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|"""
                 r"""\s*[\r\n]|\s+(?!\S)|\s+""")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
SPECIAL_MARKER = "!special"


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
        lines += [f"{SPECIAL_MARKER} {name} {i}\n"
                  for name, i in sorted(self.special_tokens.items(), key=lambda x: x[1])]
        with atomic_open(path) as f:  # a crash never leaves a half-written vocabulary behind
            f.writelines(lines)

    def fingerprint(self):
        """A short hash of the vocabulary: token files made with another vocabulary are never mixed up
        (common.token_file and data/wikipedia/prepare.py --tokenize name their files with it)."""
        h = hashlib.sha256()
        for b in self._bytes:
            h.update(len(b).to_bytes(4, "little") + b)
        return h.hexdigest()[:12]

    @classmethod
    def load(cls, path):
        """The one way to read a tokenizer file: a missing, unreadable or corrupt one (anything tiktoken
        would silently accept but mis-encode) stops the program with `error: <file>: line N: ...`."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            fail(f"cannot read tokenizer {path}: {e.strerror}")
        try:
            return cls(*_parse(data))
        except ValueError as e:
            fail(f"{path}: {e}")


def _parse(data):
    """(mergeable ranks, special tokens) of a tokenizer file's bytes; a ValueError names the line at fault."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text (bad byte at offset {e.start})") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise ValueError("empty tokenizer file")
    ranks, specials, id_line, bytes_line, special_line = {}, {}, {}, {}, {}
    for lineno, line in enumerate(lines, 1):
        at = f"line {lineno}"
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
    return ranks, specials  # gaps in the ids and missing tokens: Tokenizer's own checks name them


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
