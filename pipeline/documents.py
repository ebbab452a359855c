"""
The data folder and its text, read without torch or the model (data preparation and run.sh use it too).
manifest.json names the languages, their groups and their text files (read_manifest, language_files,
group_languages). A corpus is UTF-8 text files in which documents are separated by a blank line.
read_documents streams a file a chunk at a time, so a corpus larger than memory passes through (tokenizer
training, token files); sample_documents takes an even, seeded sample of a file instead (tokenizer.py
--max_bytes); stats_table measures how much text a token covers under several vocabularies (tokenizer.py
stats, adapt.py). Every script writes its files through atomic_open (remove_stale_temporaries clears what a
killed write left) and reports bad input through fail. flores200_spm says where spBLEU's sentencepiece
model lives, for the script that fetches it and the metric.
"""
import contextlib
import itertools
import json
import os
import random
import re


def fail(message):
    """Stop the program with `error: message` and exit status 1: how every script reports input it cannot use."""
    raise SystemExit(f"error: {message}")


@contextlib.contextmanager
def atomic_open(path, mode="w"):
    """Open a temp file beside `path` and move it onto `path` only once the block ends without an error: a
    crash mid-write leaves the previous file whole, and a reader never sees half a file. The temp name holds
    the process id, so parallel runs (run.sh) writing the same file do not share a temp file. Text is UTF-8
    with "\n" line ends on every system. Missing folders are made, and removed again if the write fails. The
    folder is synced after the rename, so that after a power loss the new name is on disk too, not only its
    bytes."""
    folder = parent = os.path.dirname(os.path.abspath(path))
    made = []
    while not os.path.isdir(folder):
        made.append(folder)
        folder = os.path.dirname(folder)
    if made:
        os.makedirs(made[0])
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        sync_folder(parent)
    except BaseException:  # SystemExit from fail() too: no temp file or new folder is left behind
        if os.path.exists(tmp):
            os.remove(tmp)
        for d in made:  # innermost first, each only if nothing else went into it
            with contextlib.suppress(OSError):
                os.rmdir(d)
        raise


def remove_stale_temporaries(folder):
    """Delete the temporary files (`<name>.<pid>.tmp`, atomic_open's) that a process killed mid-write left in
    folder: a checkpoint's is as large as the checkpoint (33 GB at 2.8B parameters) and nothing else removes
    it. A file whose process still runs on this machine is left alone."""
    if not os.path.isdir(folder):
        return
    for name in sorted(os.listdir(folder)):
        match = re.fullmatch(r".+\.(\d+)\.tmp", name)
        if not match or _process_alive(int(match.group(1))):
            continue
        path = os.path.join(folder, name)
        size = os.path.getsize(path)
        os.remove(path)
        print(f"note: removed {path} ({size / 1e6:,.1f} MB), left by a save that was killed")


def _process_alive(pid):
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill(pid, 0) would end the process: keep its file
        return True
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (another user's), or we cannot tell: keep its file
    return True


def sync_folder(folder):
    """fsync a folder: a rename in it is durable only once the folder is. POSIX only (Windows cannot open a
    folder, and its renames need no such step)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(data_dir):
    path = os.path.join(data_dir, "manifest.json")
    if not os.path.isfile(path):
        fail(f"no manifest at {path} (generate the lab with: python data/lab/prepare.py --out {data_dir})")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def language_files(data_dir, langs, split):
    """{lang: path of its split's text file} for the requested languages, checked against the manifest."""
    manifest = read_manifest(data_dir)
    by_code = {entry["code"]: entry for entry in manifest["languages"]}
    paths = {}
    for lang in langs:
        if lang not in by_code:
            fail(f"language '{lang}' is not in {data_dir}/manifest.json (it has {', '.join(by_code)})")
        paths[lang] = os.path.join(data_dir, by_code[lang][split])
    return paths


def group_languages(data_dir, group):
    groups = read_manifest(data_dir)["groups"]
    if group not in groups:
        fail(f"no language group '{group}' in {data_dir}/manifest.json (it has {', '.join(groups)})")
    return list(groups[group])


# Two line ends in a row, a line end being "\r\n", "\r" or "\n" as in Python's universal newlines: the
# split is on the raw bytes (so every document's byte offset is known for sampling and for errors) yet
# gives exactly the documents of open(path).read().split("\n\n").
_BLANK_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n){2}")
_WINDOW_BYTES = 1 << 16  # --max_bytes reads the file in windows of about this much text, evenly spread


def read_documents(path, chunk_bytes=1 << 20):
    """The documents of a UTF-8 text file, one at a time: its text split on "\\n\\n" (universal newlines)
    without the whitespace-only pieces. Only about a chunk (or one document, if longer) is in memory."""
    with open_input(path) as f:
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
    with open_input(path) as f:
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
        fail(f"{path} is not UTF-8 text (bad byte at offset {at + e.start})")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def open_input(path):
    """The file opened to read bytes, or `error: cannot read <path>: <reason>` (tokenizer.py checks its inputs
    with it)."""
    try:
        return open(path, "rb")
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")


def corpus_documents(paths, max_bytes=None, seed=0):
    """The documents of several files in turn; with max_bytes, an even sample of max_bytes // len(paths)
    bytes from each (every language its share, whatever the sizes of the files)."""
    for path in paths:
        if max_bytes is None:
            yield from read_documents(path)
        else:
            yield from sample_documents(path, max_bytes // len(paths), seed)


def flores200_spm():
    """spBLEU's FLORES-200 sentencepiece model: (sacrebleu's own address for it, the path where sacrebleu looks
    for it: $SACREBLEU, default ~/.sacrebleu). data/benchmarks/prepare.py --tasks flores fetches it there, once;
    evaluation/metrics.py scores with it and never lets sacrebleu download it at scoring time."""
    from sacrebleu.tokenizers import tokenizer_spm  # only FLORES needs it

    url = tokenizer_spm.SPM_MODELS["flores200"]["url"]
    return url, os.path.join(tokenizer_spm.SACREBLEU_DIR, "models", os.path.basename(url))


# ----------------------------------------------------------------------------------------------
# Bytes per token: how much text a token covers, per file and vocabulary (tokenizer.py stats, adapt.py)

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
        n_bytes, n_tokens = bytes_and_tokens(list(tokenizers.values()), docs)
        for t, n in zip(totals, n_tokens):
            t[0], t[1] = t[0] + n_bytes, t[1] + n
        rows.append(f"| {name} | " + " | ".join(f"{n_bytes / n:.3f}" if n else "-" for n in n_tokens) + " |")
    if len(inputs) > 1:
        rows.append("| all | " + " | ".join(f"{b / n:.3f}" if n else "-" for b, n in totals) + " |")
    return "\n".join(rows)


def bytes_and_tokens(tokenizers, docs, batch_docs=1024):
    """UTF-8 bytes of the documents and their number of tokens under each tokenizer, a batch at a time."""
    docs, n_bytes, n_tokens = iter(docs), 0, [0] * len(tokenizers)
    while batch := list(itertools.islice(docs, batch_docs)):
        n_bytes += sum(len(d.encode("utf-8")) for d in batch)
        for k, tok in enumerate(tokenizers):
            n_tokens[k] += sum(map(len, tok.encode_batch(batch)))
    return n_bytes, n_tokens
